"""`.github/feature-crew.toml`: a repository narrows, never widens, the operator's config."""

from __future__ import annotations

import tomllib
from typing import Any

from pydantic import Field, ValidationError

from pipeline.config import AuditToolName, OperatorConfig
from pipeline.errors import PermanentError
from pipeline.frozen import Frozen as _Section
from pipeline.invalid import describe_invalid

PATH = ".github/feature-crew.toml"


class RepoAudit(_Section):
    tools: tuple[AuditToolName, ...] | None = None  # only tools the operator enabled count
    pytest_args: tuple[str, ...] | None = None
    ruff_args: tuple[str, ...] | None = None
    mypy_args: tuple[str, ...] | None = None
    timeout_s: float | None = Field(default=None, gt=0)
    # The repository's own environment: a setup command and the extras to install. Read from
    # the default branch only, so code a model wrote never decides what runs with network.
    setup: str | None = Field(default=None, min_length=1)
    extras: tuple[str, ...] | None = None


class RepoReview(_Section):
    protected_paths: tuple[str, ...] = ()  # added to the operator's
    max_files_per_tier1: int | None = Field(default=None, ge=1)
    max_files_per_tier2: int | None = Field(default=None, ge=1)
    max_files_per_tier3: int | None = Field(default=None, ge=1)


class RepoConfig(_Section):
    self_audit: RepoAudit = Field(default_factory=RepoAudit)
    review: RepoReview = Field(default_factory=RepoReview)


def parse_repo_config(text: str | None) -> RepoConfig:
    """The repository's file, or an error naming the key, for the status comment."""
    if text is None:
        return RepoConfig()
    try:
        return RepoConfig.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as err:
        raise PermanentError(f"{PATH}: not valid TOML: {err}") from None
    except ValidationError as err:
        problem = describe_invalid(err, where=PATH, limit=1, show_input=False)
        raise PermanentError(problem) from None


def _smaller(mine: Any, theirs: Any) -> Any:
    return mine if theirs is None else min(mine, theirs)


def narrow(config: OperatorConfig, repo: RepoConfig) -> OperatorConfig:
    audit, review = config.self_audit, config.review
    ra, rr = repo.self_audit, repo.review
    tools = audit.tools if ra.tools is None else tuple(t for t in audit.tools if t in ra.tools)
    narrowed_audit = audit.model_copy(
        update={
            "tools": tools,
            "pytest_args": ra.pytest_args if ra.pytest_args is not None else audit.pytest_args,
            "ruff_args": ra.ruff_args if ra.ruff_args is not None else audit.ruff_args,
            "mypy_args": ra.mypy_args if ra.mypy_args is not None else audit.mypy_args,
            "timeout_s": _smaller(audit.timeout_s, ra.timeout_s),
            "setup": ra.setup if ra.setup is not None else audit.setup,
            "extras": ra.extras if ra.extras is not None else audit.extras,
        }
    )
    extra = tuple(p for p in rr.protected_paths if p not in review.protected_paths)
    narrowed_review = review.model_copy(
        update={
            "protected_paths": review.protected_paths + extra,
            "max_files_per_tier1": _smaller(review.max_files_per_tier1, rr.max_files_per_tier1),
            "max_files_per_tier2": _smaller(review.max_files_per_tier2, rr.max_files_per_tier2),
            "max_files_per_tier3": _smaller(review.max_files_per_tier3, rr.max_files_per_tier3),
        }
    )
    return config.model_copy(update={"self_audit": narrowed_audit, "review": narrowed_review})
