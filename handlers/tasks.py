"""Decisions about an existing task that several event families share: cancel, refresh."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handlers.context import Action, Outcome, repo_of
from pipeline.context import Context
from pipeline.messages import NEEDS_INFO_LABEL, render_stopped
from pipeline.models import PUBLISHED_STATES, TERMINAL_STATES, Clarification, TaskRecord, TaskState
from pipeline.status import Reporter

if TYPE_CHECKING:
    from pipeline.ports import Repo


def task_for_thread(event: dict[str, Any], ctx: Context) -> TaskRecord | None:
    """The task an issue (by its live task) or a pull request (by its link) belongs to."""
    repo_id, number = int(event["repository"]["id"]), int(event["issue"]["number"])
    if "pull_request" in event["issue"]:
        task_id = ctx.store.task_for_pull(repo_id, number)
    else:
        task_id = ctx.store.active_task_for_issue(repo_id, number)
    return ctx.store.get(task_id) if task_id else None


def cancel_task(
    event: dict[str, Any], ctx: Context, reason: str, *, only_before_pr: bool = False
) -> Outcome:
    return cancel_record(task_for_thread(event, ctx), event, ctx, reason, only_before_pr)


def cancel_record(
    record: TaskRecord | None,
    event: dict[str, Any],
    ctx: Context,
    reason: str,
    only_before_pr: bool = False,
) -> Outcome:
    if record is not None and record.progress.state is TaskState.CANCELLED:
        refresh_status(
            record, repo_of(event, ctx), ctx
        )  # a retried delivery: finish what it started
        return Outcome.ignore(f"task {record.id} is already cancelled")
    if record is None or record.progress.state in TERMINAL_STATES:
        return Outcome.ignore("no live task to cancel")
    if only_before_pr and record.progress.state in PUBLISHED_STATES:
        return Outcome.ignore(f"task {record.id} already has its pull request")
    record = ctx.store.transition(record.id, TaskState.CANCELLED, reason)
    refresh_status(record, repo_of(event, ctx), ctx)
    return Outcome(Action.CANCELLED, reason, task_id=record.id)


def refresh_status(record: TaskRecord, gh: Repo, ctx: Context) -> None:
    """The issue's status comment, rendered again from the record, through `gh`."""
    attempts = ctx.config.github.max_attempts
    Reporter(ctx.store, gh, ctx.app().identity().bot_login, attempts).refresh(record)


def request_changes(
    record: TaskRecord, feedback: str, event: dict[str, Any], ctx: Context
) -> Outcome:
    """A human asked for changes: a new attempt on the same branch, within max_attempts.

    Feedback that arrives while an attempt runs is kept and starts the next one after it.
    """
    state = record.progress.state
    if state in TERMINAL_STATES or state is TaskState.ASKING:
        return Outcome.ignore(f"task {record.id} is {state}")
    limit = ctx.config.github.max_attempts
    if state in PUBLISHED_STATES and record.progress.attempts >= limit:
        return _stop_for_attempts(record, limit, event, ctx)
    pending = record.progress.requested_changes
    combined = feedback if pending is None else f"{pending}\n\n{feedback}"
    record = ctx.store.update(record.id, requested_changes=combined, continue_branch=True)
    if state not in PUBLISHED_STATES:
        return Outcome(Action.NOTED, f"feedback kept for after the running attempt of {record.id}")
    ctx.queue.enqueue_next_attempt(record.id, record.progress.attempts)
    return Outcome(
        Action.QUEUED, f"attempt {record.progress.attempts + 1} of {record.id}", record.id
    )


def _stop_for_attempts(
    record: TaskRecord, limit: int, event: dict[str, Any], ctx: Context
) -> Outcome:
    gh = repo_of(event, ctx)
    record = ctx.store.transition(
        record.id,
        TaskState.FAILED,
        f"used all {limit} attempts",
        error=f"stopped after {limit} attempts",
    )
    if record.progress.pr_number is not None:
        gh.comment_on_issue(record.progress.pr_number, render_stopped(limit))
    refresh_status(record, gh, ctx)
    return Outcome(Action.STOPPED, f"task {record.id} has used its {limit} attempts")


def resume_on_answer(record: TaskRecord, event: dict[str, Any], ctx: Context) -> Outcome:
    """The answer to the model's question: into the spec, and the task goes on."""
    answer = str(event["comment"].get("body") or "").strip()
    by = event["sender"]["login"]
    clarification = Clarification(question=record.progress.question or "", answer=answer, by=by)
    record = ctx.store.transition(
        record.id,
        TaskState.QUEUED,
        f"@{by} answered the question",
        expect=frozenset({TaskState.ASKING}),
        clarifications=(*record.progress.clarifications, clarification),
        question=None,
    )
    # Queued before any GitHub call, so a failing call retried by RQ cannot strand the task.
    ctx.queue.enqueue_task(record.id, attempt_key=f"answer-{len(record.progress.clarifications)}")
    gh = repo_of(event, ctx)
    gh.remove_label(record.spec.issue_number, NEEDS_INFO_LABEL)
    refresh_status(record, gh, ctx)
    return Outcome(Action.RESUMED, f"task {record.id} resumed with @{by}'s answer", record.id)
