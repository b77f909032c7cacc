"""The audit's failures as the model's next attempt reads them: new findings only, trimmed."""

from __future__ import annotations

import re

from pipeline.findings import Finding
from pipeline.models import AuditReport, ToolResult, ToolStatus

FEEDBACK_TAIL = 2500
LISTED_FINDINGS = 30  # per tool
LISTED_TESTS = 5  # failing tests whose assertion output is shown
DETAIL_TAIL = 1200


def _fenced(text: str) -> str:
    # A fence longer than any backtick run in the output, so tool output cannot close it.
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _trimmed(text: str, limit: int) -> str:
    text = text.strip() or "(no output)"
    return text if len(text) <= limit else "…" + text[-limit:]


def _finding_line(f: Finding) -> str:
    what = f"{f.test}: {f.message}" if f.test else f.message
    return f"- `{f.path}:{f.line}` {f.rule}: {what}"


def _tool_section(tool: ToolResult) -> str:
    how = "timed out" if tool.status is ToolStatus.TIMED_OUT else f"exit {tool.exit_code}"
    head = f"### {tool.name}: {tool.status.value} ({how})"
    if not tool.findings:
        return f"{head}\n{_fenced(_trimmed(tool.output, FEEDBACK_TAIL))}"
    lines = [head]
    if tool.known_count:
        lines.append(f"({tool.known_count} already on the base commit are not listed.)")
    lines += [_finding_line(f) for f in tool.findings[:LISTED_FINDINGS]]
    if tool.new_count > LISTED_FINDINGS:
        lines.append(f"- … and {tool.new_count - LISTED_FINDINGS} more")
    for f in [f for f in tool.findings if f.detail][:LISTED_TESTS]:
        lines.append(f"\n`{f.test or f.path}`:\n{_fenced(_trimmed(f.detail, DETAIL_TAIL))}")
    return "\n".join(lines)


def audit_feedback(report: AuditReport) -> str:
    """The failures as compact Markdown for the model's next attempt; empty when none."""
    failures = report.failures
    if not failures:
        return ""
    parts = ["The self-audit of your change failed. Fix these problems and keep the rest:"]
    parts += [_tool_section(tool) for tool in failures]
    return "\n\n".join(parts)
