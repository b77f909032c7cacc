"""Every text the App posts on GitHub, rendered from the record the decision came from."""

from __future__ import annotations

from pipeline.models import (
    AuditReport,
    AuditVerdict,
    ReviewVerdict,
    TaskRecord,
    TaskSpec,
    TaskState,
    ToolStatus,
)

STATUS_MARKER = "<!-- feature-crew:status -->"
ASK_MARKER = "<!-- feature-crew:ask -->"
NEEDS_INFO_LABEL = "feature-crew:needs-info"
AUDIT_CHECK = "Feature Crew / audit"
REVIEW_CHECK = "Feature Crew / review"

_STATE_TITLES = {
    TaskState.QUEUED: "⏳ Queued",
    TaskState.GENERATING: "🛠️ Writing the change",
    TaskState.ASKING: "❓ Waiting for an answer",
    TaskState.AUDITING: "🔍 Auditing the change",
    TaskState.REVIEWING: "🧐 Reviewing the pull request",
    TaskState.PR_OPEN: "✅ Pull request ready for a human review",
    TaskState.MERGED: "🎉 Merged",
    TaskState.CANCELLED: "🛑 Cancelled",
    TaskState.FAILED: "❌ Stopped",
    TaskState.BUDGET_WAIT: "💤 Waiting for budget",
}
_EXPLAINED = {TaskState.BUDGET_WAIT: "Waiting", TaskState.CANCELLED: "Why"}
_TOOL_ICONS = {
    ToolStatus.PASSED: "✅",
    ToolStatus.FAILED: "❌",
    ToolStatus.TIMED_OUT: "⏱️",
    ToolStatus.SKIPPED: "⏭️",
    ToolStatus.UNAVAILABLE: "⚠️",
}


def usd(amount: float) -> str:
    """Dollars with enough digits to tell small amounts apart ($0.0042, $12.50)."""
    return f"${amount:.2f}" if amount >= 1 else f"${amount:.4f}"


def review_marker(head_sha: str) -> str:
    return f"<!-- feature-crew:review {head_sha} -->"


def audit_line(report: AuditReport) -> str:
    tools = ", ".join(f"{_TOOL_ICONS[t.status]} {t.name}" for t in report.tools)
    verdict = "passed" if report.verdict is AuditVerdict.READY_FOR_REVIEW else "failed"
    return f"{verdict} ({tools})" if tools else verdict


def render_status(record: TaskRecord, max_attempts: int) -> str:
    spec, p = record.spec, record.progress
    rows = [("Task", f"`{spec.id}`")]
    if p.tier is not None:
        why = f" — {'; '.join(p.route_reasons)}" if p.route_reasons else ""
        rows.append(("Tier", f"{p.tier} ({p.model or 'unknown model'}){why}"))
    rows.append(("Branch", f"`{spec.branch}`"))
    if p.attempts:
        rows.append(("Attempts", f"{p.attempts} of {max_attempts}"))
    if p.audit is not None:
        rows.append(("Audit", audit_line(p.audit)))
    if p.review is not None:
        rows.append(("Review", f"{p.review.action.value}: {_one_line(p.review.reason)}"))
    if p.pr_number is not None:
        rows.append(("Pull request", f"#{p.pr_number}"))
    if p.not_changed:
        rows.append(("Not changed", not_changed_line(p.not_changed)))
    if p.hidden_text:
        rows.append(("Hidden text", f"removed before the model saw it: {p.hidden_text}"))
    rows.append(("Cost", usd(p.cost_usd)))
    rows.append(("Duration", f"{record.duration_s:.0f} s"))
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    lines = [
        STATUS_MARKER,
        f"### Feature Crew · {_STATE_TITLES[p.state]}",
        "",
        "| | |",
        "|---|---|",
        table,
    ]
    if p.error and p.state is TaskState.FAILED:
        lines += ["", f"**Why it stopped:** {_one_line(p.error)}"]
    if _stopped_retrying(record, max_attempts):
        lines += ["", f"**Stopped retrying:** the reviewer rejected attempt {p.attempts} of "
                  f"{max_attempts}. The pull request waits for a human."]  # fmt: skip
    if p.notice and p.state is TaskState.QUEUED:
        lines += ["", f"**Waiting:** {_one_line(p.notice)}"]
    if p.state in _EXPLAINED and record.transitions:
        lines += ["", f"**{_EXPLAINED[p.state]}:** {_one_line(record.transitions[-1].note)}"]
    return "\n".join(lines) + "\n"


PULL_BODY_MARK = "Written by Feature Crew for @"


def render_pull_body(spec: TaskSpec, record: TaskRecord) -> str:
    audit = record.progress.audit
    parts = [
        f"Closes #{spec.issue_number}",
        "",
        f"{PULL_BODY_MARK}{spec.requested_by} (task `{spec.id}`).",
    ]
    if audit is not None:
        parts += ["", f"**Audit:** {audit_line(audit)}"]
    if record.progress.not_changed:
        parts += ["", f"**Not changed:** {not_changed_line(record.progress.not_changed)}"]
    return "\n".join(parts) + "\n"


def not_changed_line(paths: tuple[str, ...]) -> str:
    """The edits the bot refused to make, so nobody thinks that part of the issue was done."""
    return ", ".join(f"`{p}`" for p in paths) + ", protected"


def _stopped_retrying(record: TaskRecord, max_attempts: int) -> bool:
    p = record.progress
    return (
        p.state is TaskState.PR_OPEN
        and p.review is not None
        and p.review.starts_next_attempt
        and p.attempts >= max_attempts
    )


def render_review(verdict: ReviewVerdict) -> str:
    lines = [f"**Verdict: {verdict.action.value}**", "", verdict.reason.strip()]
    if verdict.feedback.strip():
        lines += ["", verdict.feedback.strip()]
    if verdict.checks:
        checks = "\n".join(
            f"- {'✅' if c.passed else '❌'} `{c.name}`{': ' + c.detail if c.detail else ''}"
            for c in verdict.checks
        )
        lines += ["", "<details><summary>Checks</summary>", "", checks, "", "</details>"]
    lines += ["", f"_Decided by {verdict.decided_by}._", review_marker(verdict.head_sha)]
    return "\n".join(lines) + "\n"


def render_audit_summary(report: AuditReport) -> tuple[str, str]:
    """The audit check run's title and its Markdown summary (bounded by GitHub's 65 535)."""
    title = f"Audit {audit_line(report)}"[:120]
    rows = [
        f"| {_TOOL_ICONS[t.status]} {t.name} | {t.status.value} | {t.duration_s:.1f} s "
        f"| {t.new_count} | {t.known_count} |"
        for t in report.tools
    ]
    sections = [
        "| Tool | Status | Duration | New findings | Already on the base |",
        "|---|---|---|---|---|",
        *rows,
    ]
    sections = ["\n".join(sections)]
    sections += [f"> **Note:** {_one_line(note, 600)}" for note in report.notes]
    for tool in report.tools:
        if tool.blocking and not tool.findings and tool.output.strip():
            sections.append(f"### {tool.name}\n```\n{tool.output.strip()[-3000:]}\n```")
        elif tool.findings:
            listed = "\n".join(
                f"- `{f.path}:{f.line}` {f.rule}: {_one_line(f.test or f.message, 200)}"
                for f in tool.findings[:50]
            )
            sections.append(f"### {tool.name}: new findings\n{listed}")
    return title, "\n\n".join(sections)[:60000]


def audit_annotations(report: AuditReport) -> list[dict[str, object]]:
    """One annotation per new finding or failing test, at its file and line."""
    return [
        {
            "path": f.path,
            "start_line": f.line,
            "end_line": f.line,
            "annotation_level": "failure",
            "title": f"{f.tool} {f.rule}"[:255],
            "message": (f"{f.test}: {f.message}" if f.test else f.message)[:4000] or f.rule,
            **({"raw_details": f.detail[:4000]} if f.detail else {}),
        }
        for tool in report.tools
        for f in tool.findings
    ]


def render_unjudged_audit(reason: str, detail: str) -> tuple[str, str]:
    """The neutral check run of an audit that could not judge: why, and the tool's last words."""
    summary = (
        f"Feature Crew could not audit this task: {_one_line(reason, 600)}.\n\n"
        "This is not a verdict on any change. The repository can name a `setup` command or "
        "its `extras` under `[self_audit]` in `.github/feature-crew.toml`."
    )
    if detail.strip():
        summary += f"\n\n```\n{detail.strip()[-3000:]}\n```"
    return "Could not audit", summary


def question_marker(task_id: str, number: int) -> str:
    """Tells a task's `number`th question (0 for its first) from its earlier ones."""
    return f"<!-- feature-crew:ask {task_id}:{number} -->"


def render_question(question: str, task_id: str, number: int) -> str:
    """The question, with a second marker that tells this question from earlier ones."""
    return (
        f"{ASK_MARKER}\n{question_marker(task_id, number)}\n"
        f"**Feature Crew has a question before it starts:**\n\n{question}\n\n"
        "_Answer in a comment here: the issue's author or a maintainer with write access._\n"
    )


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def render_stopped(attempts: int) -> str:
    return (
        f"Feature Crew has stopped: this task used its {attempts} attempts. The pull request "
        "stays open for a human to finish or close."
    )


def render_merge_refused(reason: str) -> str:
    return f"Feature Crew did not merge this pull request: {_one_line(reason)}"


def stopped_marker(task_id: str) -> str:
    return f"<!-- feature-crew:stopped {task_id} -->"


def render_stopped_after_rejection(task_id: str, attempts: int, reason: str) -> str:
    return (
        f"{stopped_marker(task_id)}\nFeature Crew has stopped: the reviewer rejected attempt "
        f"{attempts}, the last one allowed (`max_attempts`). Its reason: {_one_line(reason)}\n\n"
        "The pull request stays open for a human to finish, approve or close."
    )


def render_approval_noted(sha: str) -> str:
    return (
        f"Approval of `{sha[:8]}` noted while an attempt is running. When the attempt ends, "
        f"Feature Crew merges `{sha[:8]}` if it is still the head, and says so if it is not."
    )


def render_approval_not_applied(approved: str, head: str) -> str:
    return (
        f"The approval of `{approved[:8]}` was not applied: the attempt that was running pushed "
        f"`{head[:8]}`, which nobody has approved yet. Review the new head to merge it."
    )


def render_approval_after_failure(approved: str, reason: str) -> str:
    return (
        f"The approval of `{approved[:8]}` was not applied: the attempt that was running when it "
        f"came failed ({_one_line(reason)}), and a failed task does not merge. `{approved[:8]}` "
        "is unchanged on the branch: merge it yourself, or comment `/crew retry` to try again."
    )


def reply_marker(delivery_id: str) -> str:
    return f"<!-- feature-crew:reply {delivery_id} -->"


def render_reply(text: str, delivery_id: str) -> str:
    """A short answer to a human whose review or command could not be acted on as asked."""
    return f"{reply_marker(delivery_id)}\n{text}\n"


def base_moved_marker(key: str) -> str:
    """Tells one base-move notice (per base and head) from the others on the PR."""
    return f"<!-- feature-crew:base-moved {key} -->"


def render_human_commits_left_alone(key: str, base_sha: str, commits: tuple[str, ...]) -> str:
    listed = "\n".join(f"- {_one_line(c, 120)}" for c in commits[:20])
    return (
        f"{base_moved_marker(key)}\nThe base branch moved (now at `{base_sha[:8]}`), but this "
        f"branch has commits Feature Crew did not make:\n\n{listed}\n\nSo it left the branch "
        "alone: update it yourself (rebase or merge the base branch) if you want it current."
    )


def render_conflicts(key: str, base_sha: str, paths: tuple[str, ...], why: str) -> str:
    listed = "\n".join(f"- `{p}`" for p in paths[:50])
    return (
        f"{base_moved_marker(key)}\nThe base branch moved (now at `{base_sha[:8]}`) and this "
        f"branch no longer applies to it. These files conflict:\n\n{listed}\n\n{why} The task "
        "waits: resolve the conflicts on the branch, or comment `/crew retry` with guidance."
    )


def render_update_before_merge(key: str, approved_sha: str, base_sha: str) -> str:
    return (
        f"{base_moved_marker(key)}\nNot merged yet: the base branch moved (now at "
        f"`{base_sha[:8]}`) since `{approved_sha[:8]}` was approved. Feature Crew is bringing "
        "the branch up to date; it will be audited and reviewed again. Approve the new head "
        "to merge it."
    )
