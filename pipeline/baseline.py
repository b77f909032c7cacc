"""The audit's baseline: tests already failing on the base commit do not sink a task."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from bot.config import SelfAuditConfig
from pipeline.audit import AuditContext, check_pytest, use_sandbox
from pipeline.models import AuditReport, AuditVerdict, ToolResult, ToolStatus

_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)


def failing_tests(result: ToolResult) -> frozenset[str] | None:
    """Test ids pytest reported as failed; None when a failure cannot be itemised."""
    if result.status is not ToolStatus.FAILED:
        return frozenset()
    found = frozenset(_FAILED.findall(result.output))
    return found or None


def base_failures(root: Path, config: SelfAuditConfig, cache_dir: Path | None) -> list[str]:
    """Run pytest on the untouched worktree (the base commit); [] when all pass or no pytest."""
    if "pytest" not in config.tools:
        return []
    # The base commit's own conftest.py runs here: confined exactly as the audit is.
    isolate = use_sandbox(config.sandbox)
    result = check_pytest(AuditContext(root, (), config, cache_dir=cache_dir, isolate=isolate))
    return sorted(failing_tests(result) or ())


def forgive_known_failures(report: AuditReport, known: Iterable[str]) -> AuditReport:
    """Pytest passes when every test it saw failing was already failing on the base commit."""
    known = frozenset(known)
    tools = tuple(_forgive(tool, known) for tool in report.tools)
    blocked = any(t.blocking for t in tools)
    verdict = AuditVerdict.NEEDS_RETRY if blocked else AuditVerdict.READY_FOR_REVIEW
    return report.model_copy(update={"tools": tuple(tools), "verdict": verdict})


def _forgive(tool: ToolResult, known: frozenset[str]) -> ToolResult:
    failed = failing_tests(tool) if tool.name == "pytest" else frozenset()
    if not (known and failed and failed <= known):
        return tool
    note = f"\n[feature-crew] {len(failed)} failing test(s) already fail on the base commit"
    return tool.model_copy(update={"status": ToolStatus.PASSED, "output": tool.output + note})
