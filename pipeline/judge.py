"""A tool run's exit code and findings, against the base commit's, turned into a ToolResult."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from pipeline.findings import Finding, new_findings
from pipeline.models import ToolResult, ToolStatus

KEPT_FINDINGS = 100  # per tool in the report; new_count says how many there were in all

# The base commit's findings for a tool on some files; None: no baseline for it.
BaseFindings = Callable[[str, tuple[str, ...]], Sequence[Finding] | None]


@dataclass(frozen=True)
class Run:
    exit_code: int | None  # None: killed at the timeout
    output: str
    duration_s: float
    files: dict[str, bytes] = field(default_factory=dict)  # collected from the scratch folder


def missing_module(module: str, run: Run) -> bool:
    # `python -m x` without x prints "<python>: No module named x" (no quotes) and exits 1.
    pattern = rf"No module named {re.escape(module)}\s*$"
    return run.exit_code == 1 and re.search(pattern, run.output, re.MULTILINE) is not None


def by_exit_code(
    name: str, module: str, run: Run, *, skip_codes: Iterable[int] = (), timeout_s: float
) -> ToolResult:
    """The verdict of a tool whose output is not itemised (compile, bandit, a crashed tool)."""
    if run.exit_code is None:
        status = ToolStatus.TIMED_OUT
        output = f"{run.output}\n[killed after {timeout_s:g} s]".lstrip()
    else:
        output = run.output
        if missing_module(module, run):
            status = ToolStatus.UNAVAILABLE
        elif run.exit_code in skip_codes:
            status = ToolStatus.SKIPPED
        else:
            status = ToolStatus.PASSED if run.exit_code == 0 else ToolStatus.FAILED
    return ToolResult(
        name=name, status=status, exit_code=run.exit_code, duration_s=run.duration_s, output=output
    )


def with_findings(
    result: ToolResult,
    found: Sequence[Finding],
    files: tuple[str, ...],
    base: BaseFindings | None,
) -> ToolResult:
    """Only findings the base commit did not have fail the tool; the rest are counted."""
    known_base = base(result.name, files) if (found and base is not None) else None
    fresh, known = new_findings(found, known_base or ())
    status = ToolStatus.FAILED if fresh else ToolStatus.PASSED
    output = result.output
    if known and result.name == "pytest":
        output += f"\n[feature-crew] {known} failing test(s) already fail on the base commit"
    elif known:
        output += f"\n[feature-crew] {known} finding(s) already on the base commit, not counted"
    return result.model_copy(
        update={
            "status": status,
            "output": output.strip(),
            "findings": tuple(fresh),
            "new_count": len(fresh),
            "known_count": known,
        }
    )


def capped(result: ToolResult) -> ToolResult:
    """The result as the report keeps it: a bounded list of findings, the full count beside."""
    if len(result.findings) <= KEPT_FINDINGS:
        return result
    return result.model_copy(update={"findings": result.findings[:KEPT_FINDINGS]})
