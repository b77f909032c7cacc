"""The operator's TOML config: every section and key has a default; unknown keys are errors."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal, NamedTuple, get_args

from pydantic import Field, ValidationError, field_validator

from pipeline.frozen import Frozen as Section
from pipeline.invalid import describe_invalid
from pipeline.models import Provider, ReviewCheckName
from pipeline.paths import ALWAYS_PROTECTED


class TierConfig(Section):
    provider: Provider = Provider.ANTHROPIC
    model: str = "claude-sonnet-5-5"
    base_url: str | None = None
    cost_budget: float | None = Field(default=None, ge=0)  # USD per day; None: unlimited
    max_task_cost: float = Field(default=4.0, ge=0)  # USD per task: attempts, questions, reviews
    max_steps: int = Field(default=40, ge=1, le=500)
    max_tokens: int = Field(default=8192, ge=256, le=64000)
    timeout_s: float = Field(default=300.0, gt=0)


def _tier1() -> TierConfig:
    return TierConfig(provider=Provider.OPENAI, model="qwen3-235b")


def _tier3() -> TierConfig:
    return TierConfig(model="claude-opus-5-5")


DEFAULT_CHECKS: tuple[ReviewCheckName, ...] = get_args(ReviewCheckName)


class TierLimits(NamedTuple):
    """What one tier's change may touch before the reviewer's size checks fail it."""

    files: int
    lines: int


class ReviewConfig(Section):
    enabled: bool = True
    provider: Provider = Provider.ANTHROPIC
    model: str = "claude-haiku-5-5"
    base_url: str | None = None
    checks: tuple[ReviewCheckName, ...] = DEFAULT_CHECKS
    # The contract's TOML keys, one per tier and limit; the checks read them by `limits(tier)`.
    max_files_per_tier1: int = Field(default=3, ge=1)
    max_files_per_tier2: int = Field(default=10, ge=1)
    max_files_per_tier3: int = Field(default=30, ge=1)
    max_lines_per_tier1: int = Field(default=100, ge=1)
    max_lines_per_tier2: int = Field(default=600, ge=1)
    max_lines_per_tier3: int = Field(default=3000, ge=1)
    protected_paths: tuple[str, ...] = ALWAYS_PROTECTED
    max_tokens: int = Field(default=2048, ge=256)
    timeout_s: float = Field(default=120.0, gt=0)

    def limits(self, tier: int) -> TierLimits:
        """A tier's limits; a tier outside 1..3 gets the nearest one's."""
        by_tier = {
            1: TierLimits(files=self.max_files_per_tier1, lines=self.max_lines_per_tier1),
            2: TierLimits(files=self.max_files_per_tier2, lines=self.max_lines_per_tier2),
            3: TierLimits(files=self.max_files_per_tier3, lines=self.max_lines_per_tier3),
        }
        return by_tier[min(max(tier, 1), 3)]


AuditToolName = Literal["compile", "ruff", "mypy", "pytest", "bandit"]


class SelfAuditConfig(Section):
    tools: tuple[AuditToolName, ...] = ("compile", "ruff", "mypy", "pytest")
    pytest_args: tuple[str, ...] = ("-q", "--tb=short")
    ruff_args: tuple[str, ...] = ("check",)
    # Where the repository has no ruff config: the seed's fatal set (syntax errors, undefined
    # names), pinned here, not whatever the installed ruff considers its default.
    ruff_default_select: tuple[str, ...] = ("E9", "F63", "F7", "F82")
    # Imports resolve in the repository's own environment, so none are ignored.
    mypy_args: tuple[str, ...] = ()
    timeout_s: float = Field(default=600.0, gt=0)  # per tool
    setup_timeout_s: float = Field(default=900.0, gt=0)  # building the target's environment
    # How the target's environment is built, when its declarations are not enough: a shell
    # command run in a fresh virtualenv (activated), and the project's extras to install.
    # Usually set by the repository in .github/feature-crew.toml.
    setup: str | None = None
    extras: tuple[str, ...] | None = None
    # required: the tools run confined (pipeline/sandbox.py) or the audit refuses; off, only
    # by the operator's explicit choice: resource limits and a process group, nothing more.
    sandbox: Literal["required", "off"] = "required"

    @field_validator("sandbox", mode="before")
    @classmethod
    def _auto_is_gone(cls, value: object) -> object:
        # "auto" used to mean "unconfined where confinement fails": a choice the operator made
        # for fail-open, so it is refused at start-up rather than quietly turned into another.
        if value == "auto":
            raise ValueError(
                '"auto" is no longer accepted: audits run confined or not at all; write'
                ' "required" (the default: remove the line) or, to run generated code'
                ' unconfined, "off"'
            )
        return value


class TriageConfig(Section):
    xs_threshold: int = 20
    s_threshold: int = 100
    m_threshold: int = 500
    l_threshold: int = 2000
    high_risk_keywords: tuple[str, ...] = (
        "auth",
        "payment",
        "secret",
        "security",
        "crypto",
        "delete",
        "drop",
        "admin",
    )
    low_risk_keywords: tuple[str, ...] = ("docs", "log", "format", "typo", "rename", "comment")


class GitHubConfig(Section):
    trigger_label: str = "feature-crew"
    merge_on_approval: bool = True
    merge_method: str = Field(default="squash", pattern="^(merge|squash|rebase)$")
    max_attempts: int = Field(default=3, ge=1, le=10)
    permission_cache_s: int = Field(default=300, ge=0)


class ServerConfig(Section):
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)


class WorkerConfig(Section):
    task_timeout_s: int = Field(default=3600, ge=60)
    review_timeout_s: int = Field(default=900, ge=30)
    delivery_timeout_s: int = Field(default=120, ge=10)
    maintenance_interval_s: int = Field(default=30, ge=10)
    # A task waiting this long on a tier's queue that no live worker takes says so.
    unserved_tier_notice_s: int = Field(default=300, ge=10)
    # Task records, their keys and indexes, and mirror branches of finished tasks go after this.
    retention_days: int = Field(default=30, ge=1, le=3650)


class Price(Section):
    """USD per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_write: float | None = Field(default=None, ge=0)  # default: 1.25 x input (5 m cache)
    cache_read: float | None = Field(default=None, ge=0)  # default: 0.1 x input


DEFAULT_PRICES: dict[str, Price] = {
    "claude-opus-5-5": Price(input=4.0, output=20.0, cache_write=5.0, cache_read=0.2),
    "claude-sonnet-5-5": Price(input=2.0, output=10.0, cache_write=2.5, cache_read=0.1),
    "claude-haiku-5-5": Price(input=0.10, output=0.50, cache_write=0.125, cache_read=0.01),
}


class OperatorConfig(Section):
    tier1: TierConfig = Field(default_factory=_tier1)
    tier2: TierConfig = Field(default_factory=TierConfig)
    tier3: TierConfig = Field(default_factory=_tier3)
    review: ReviewConfig = Field(default_factory=ReviewConfig)
    self_audit: SelfAuditConfig = Field(default_factory=SelfAuditConfig)
    triage: TriageConfig = Field(default_factory=TriageConfig)
    github: GitHubConfig = Field(default_factory=GitHubConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    worker: WorkerConfig = Field(default_factory=WorkerConfig)
    prices: dict[str, Price] = Field(default_factory=dict)

    @field_validator("tier1", "tier3", mode="before")
    @classmethod
    def _keep_the_tiers_own_model(cls, value: Any, info: Any) -> Any:
        """`[tier3]` with only a budget keeps Opus, `[tier1]` its local model: a section fills
        in its tier's defaults instead of the generic ones, unless it names another provider."""
        if not isinstance(value, dict):
            return value
        default = (_tier1 if info.field_name == "tier1" else _tier3)()
        if value.get("provider", default.provider.value) != default.provider.value:
            return value
        return {"provider": default.provider.value, "model": default.model, **value}

    def tier(self, n: int) -> TierConfig:
        return {1: self.tier1, 2: self.tier2, 3: self.tier3}[n]

    def price(self, model: str) -> Price | None:
        return self.prices.get(model) or DEFAULT_PRICES.get(model)


class ConfigError(Exception):
    """The operator's config cannot be used; the message names the file and the key."""


def parse_config(data: dict[str, Any], source: str = "config") -> OperatorConfig:
    try:
        return OperatorConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(describe_invalid(err, where=source)) from None


def load_config(path: Path | None) -> OperatorConfig:
    """Read the operator's TOML; `None` means the built-in defaults."""
    if path is None:
        return OperatorConfig()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    return parse_config(data, str(path))
