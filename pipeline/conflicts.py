"""One model attempt at a rebase's conflicts, with the markers in front of it; else a human's."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import pygit2

from pipeline import branches, budget
from pipeline.cost import OverBudget, TaskCostCapped
from pipeline.editor import EditorTool
from pipeline.errors import TransientError
from pipeline.messages import base_moved_marker, render_conflicts
from pipeline.models import GenerationOutcome, GenerationResult, TaskRecord, TaskState
from pipeline.prompts import generation_prompt, generation_system, repository_map
from pipeline.publish import find_own_comment

if TYPE_CHECKING:
    from pipeline.context import Context, TaskRun
    from pipeline.status import Reporter

log = logging.getLogger(__name__)
MAX_FILE_CHARS = 12_000
MAX_FEEDBACK_CHARS = 40_000


def conflict_feedback(root: Path, paths: tuple[str, ...]) -> str:
    """What the model sees: each conflicting file, markers and all."""
    parts = [
        "The base branch moved and your change no longer applies cleanly. The files hold your "
        "change merged onto the new base; where both touched the same lines, git left conflict "
        "markers: between the `<<<<<<<` line and `=======` is the new base, between `=======` "
        "and the `>>>>>>>` line is your change. Edit every file below so that it keeps the base's "
        "changes and still does what the issue asks, with no conflict markers left. Change "
        "nothing else."
    ]
    for path in paths:
        file = root / path
        text = file.read_text(errors="replace") if file.is_file() else "(deleted on one side)"
        parts.append(f"### `{path}`\n\n```\n{text[:MAX_FILE_CHARS]}\n```")
    return "\n\n".join(parts)[:MAX_FEEDBACK_CHARS]


def resolve_conflicts(
    record: TaskRecord,
    pos: branches.Position,
    paths: tuple[str, ...],
    committer: pygit2.Signature,
    run: TaskRun,
) -> str | None:
    """The resolved commit on the base (in the mirror), or None once the PR lists the files.

    One model attempt per base and head, even when the job runs again after a crash.
    """
    spec, ctx, config, reporter = record.spec, run.ctx, run.config, run.reporter
    attempt_blob = f"conflict-attempt-{pos.base_sha[:12]}-{pos.head_sha[:12]}"
    if ctx.store.load_blob(spec.id, attempt_blob):
        _leave_conflicts(record, pos, paths, "The model's attempt did not resolve them.", reporter)
        return None
    tier = int(record.progress.tier or 2)
    budget = config.tier(tier).cost_budget
    if budget is not None and ctx.store.spent(tier) >= budget:
        why = f"Tier {tier} has spent its daily budget, so the model did not try."
        _leave_conflicts(record, pos, paths, why, reporter)
        return None
    files = ", ".join(paths)
    note = f"base moved to {pos.base_sha[:8]}: conflicts in {files}; one model attempt"
    record = reporter.move(record, TaskState.PR_OPEN, note)
    ctx.store.save_blob(spec.id, attempt_blob, "started")
    ws = ctx.workspace
    worktree, paths = branches.conflict_worktree(
        ws, spec.repo_id, spec.id, spec.branch, spec.default_branch
    )
    try:
        try:
            result = _model_attempt(record, worktree.path, paths, tier, ctx)
        except TransientError:
            ctx.store.save_blob(spec.id, attempt_blob, "")  # the model was never reached
            raise
        except (OverBudget, TaskCostCapped):
            why = "The tier's budget or the task's cost cap leaves no room for a model attempt."
            _leave_conflicts(record, pos, paths, why, reporter)
            return None
        record = reporter.update(record, cost_usd=ctx.store.task_spent(record.id))
        left = branches.files_with_markers(worktree.path, paths)
        if result.outcome is GenerationOutcome.ASKED or left:
            why = "The model's attempt left conflict markers in them."
            _leave_conflicts(record, pos, left or paths, why, reporter)
            return None
        message = (
            f"Rebase onto {pos.base_sha[:8]}, resolving conflicts\n\nIn {files}. Task {spec.id}."
        )
        return worktree.commit_all(
            message,
            committer.name,
            committer.email,
            config.review.protected_paths,
            paths=worktree.changed_files(),
        )
    finally:
        ws.remove_worktree(spec.repo_id, spec.id)


def _model_attempt(
    record: TaskRecord,
    root: Path,
    paths: tuple[str, ...],
    tier: int,
    ctx: Context,
) -> GenerationResult:
    """The generation path, with the conflicting files as the feedback to address."""
    # Here, not at the top: the web process reaches this module through its handlers, and the
    # model SDKs that generate imports cost it seconds of CPU at every start.
    from pipeline.generate import generate

    config = ctx.config
    return generate(
        system=generation_system(tier),
        prompt=generation_prompt(
            record.spec,
            repository_map(root),
            conflict_feedback(root, paths),
            record.progress.clarifications,
        ).text,
        tier=config.tier(tier),
        editor=EditorTool(root, config.review.protected_paths),
        endpoints=ctx.endpoints,
        price_for=config.price,
        meter=budget.meter_for(record, tier, ctx),
    )


def _leave_conflicts(
    record: TaskRecord,
    pos: branches.Position,
    paths: tuple[str, ...],
    why: str,
    reporter: Reporter,
) -> None:
    """List the files on the PR, once per base and head; the task waits for a human."""
    pr = int(record.progress.pr_number or 0)
    key = f"{pos.base_sha[:12]}-{pos.head_sha[:12]}"
    if find_own_comment(reporter.gh, pr, base_moved_marker(key), reporter.bot_login) is None:
        reporter.gh.comment_on_issue(pr, render_conflicts(key, pos.base_sha, paths, why))
        note = f"base moved to {pos.base_sha[:8]}: conflicts in {', '.join(paths)}; waiting"
        reporter.move(record, TaskState.PR_OPEN, note)
    log.info("task %s waits: conflicts in %s", record.id, ", ".join(paths))
