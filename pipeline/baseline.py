"""The audit's baseline: what the base commit already had, so only the change's findings count.

pytest runs on the base before generation (a suite that cannot be collected there means the
audit cannot judge, said before any model spend); ruff and mypy run on the base versions of
the changed files only when the change's run found something. Both run confined like the
audit, on an export of the base commit, and are cached per base commit and tool settings.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pipeline import basetree
from pipeline.audit_tools import AUDIT_TOOLS, check_pytest
from pipeline.config import SelfAuditConfig
from pipeline.findings import Finding
from pipeline.models import ToolStatus
from pipeline.runner import audit_context
from pipeline.target_env import TargetEnv

TTL_S = 7 * 24 * 3600
UNJUDGEABLE_EXITS = (2, 3, 4)  # interrupted (collection errors), internal error, usage error
TEST_GLOBS = ("test_*.py", "*_test.py")


class Cache(Protocol):
    def cache_get(self, *parts: object) -> Any: ...

    def cache_set(self, value: Any, ttl_s: int, *parts: object) -> None: ...


@dataclass(frozen=True)
class CouldNotAudit:
    """The base commit gives the audit nothing to compare with: said, never forgiven."""

    reason: str
    output: str = ""


def _has_tests(tree: Path) -> bool:
    return any(
        not any(part.startswith(".") for part in path.relative_to(tree).parts)
        for pattern in TEST_GLOBS
        for path in tree.rglob(pattern)
    )


def judge_base_tests(
    tree: Path,
    config: SelfAuditConfig,
    *,
    target: TargetEnv | None,
    cache_dir: Path | None,
    sandbox_supported: bool | None = None,
) -> list[Finding] | CouldNotAudit:
    """The base commit's failing tests, or why its suite cannot be judged at all."""
    ctx = audit_context(
        tree,
        (),
        config,
        sandbox_supported=sandbox_supported,
        target=target,
        cache_dir=cache_dir,
    )
    result = check_pytest(ctx)
    where = "on the base commit"
    if result.status is ToolStatus.TIMED_OUT:
        return CouldNotAudit(f"the tests did not finish {where} within {ctx.limit_s:g} s")
    if result.status is ToolStatus.UNAVAILABLE:
        return CouldNotAudit("pytest is not available in the repository's environment")
    if result.status is ToolStatus.SKIPPED:
        if _has_tests(tree):
            return CouldNotAudit(f"pytest collected no tests {where}, yet it has test files")
        return []
    collection = [f for f in result.findings if f.rule == "collection"]
    if result.exit_code in UNJUDGEABLE_EXITS or collection:
        first = f"{collection[0].path}: {collection[0].message}" if collection else ""
        why = f"the test suite cannot be collected {where}" + (f" ({first})" if first else "")
        return CouldNotAudit(why, result.output)
    if result.status is ToolStatus.FAILED and not result.findings:
        return CouldNotAudit(f"pytest failed {where} without naming a test", result.output)
    return list(result.findings)


def tests_key(config: SelfAuditConfig, target: TargetEnv | None) -> str:
    settings = [config.pytest_args, config.timeout_s, target.key if target else ""]
    return _digest(settings)


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, default=str).encode()).hexdigest()[:16]


def _dump(findings: Sequence[Finding]) -> list[dict[str, Any]]:
    return [f.model_dump() for f in findings]


def _load(raw: list[dict[str, Any]]) -> list[Finding]:
    return [Finding.model_validate(item) for item in raw]


class Baseline:
    """The base commit's findings per tool, as the audit asks for them (a BaseFindings)."""

    def __init__(  # noqa: PLR0913 - keyword-only, each named at the call
        self,
        *,
        cache: Cache,
        repo_id: int,
        repo_path: Path,
        base_sha: str,
        config: SelfAuditConfig,
        target: TargetEnv | None,
        cache_dir: Path | None,
        scratch: Path,
        tests: Sequence[Finding] = (),
        sandbox_supported: bool | None = None,
    ) -> None:
        self.cache, self.repo_id, self.repo_path = cache, repo_id, repo_path
        self.base_sha, self.config, self.target = base_sha, config, target
        self.cache_dir, self.scratch, self.tests = cache_dir, scratch, list(tests)
        self.sandbox_supported = sandbox_supported
        self._tree: Path | None = None
        self._lock = threading.Lock()  # ruff and mypy ask from their own threads

    def __call__(self, tool: str, files: tuple[str, ...]) -> Sequence[Finding] | None:
        if tool == "pytest":
            return self.tests
        if tool not in ("ruff", "mypy"):
            return None
        key = ("base-findings", self.repo_id, self.base_sha, tool, self._settings(tool, files))
        cached = self.cache.cache_get(*key)
        if cached is not None:
            return _load(cached)
        found = self._measure(tool, files)
        self.cache.cache_set(_dump(found), TTL_S, *key)
        return found

    def _settings(self, tool: str, files: tuple[str, ...]) -> str:
        # The base commit's own config is fixed by base_sha, which is in the key too.
        c = self.config
        tool_args = [c.ruff_args, c.ruff_default_select] if tool == "ruff" else [c.mypy_args]
        return _digest([*tool_args, sorted(files), self.target.key if self.target else ""])

    def _measure(self, tool: str, files: tuple[str, ...]) -> list[Finding]:
        tree = self.tree()
        ctx = audit_context(
            tree,
            files,  # those the base does not have are left out by python_files
            self.config,
            sandbox_supported=self.sandbox_supported,
            target=self.target,
            cache_dir=self.tool_cache,
        )
        if not ctx.python_files:
            return []
        return list(AUDIT_TOOLS[tool](ctx).findings)

    @property
    def tool_cache(self) -> Path | None:
        """The ruff/mypy cache only the base commit's runs write: a change's audit starts from
        a copy of it (pipeline.audit.run_audit) and its own code never writes it."""
        return self.cache_dir / "base" if self.cache_dir else None

    def tree(self) -> Path:
        """The base commit's files, exported the first time they are needed."""
        with self._lock:
            if self._tree is None:
                self.scratch.mkdir(parents=True, exist_ok=True)
                folder = Path(tempfile.mkdtemp(prefix="base-", dir=self.scratch))
                self._tree = basetree.export(self.repo_path, self.base_sha, folder / "tree")
            return self._tree

    def close(self) -> None:
        if self._tree is not None:
            shutil.rmtree(self._tree.parent, ignore_errors=True)
            self._tree = None
