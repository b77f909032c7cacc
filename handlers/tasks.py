"""Decisions about an existing task that several event families share: cancel, refresh."""

from __future__ import annotations

from typing import Any

from handlers.context import HandlerContext, Outcome
from pipeline.models import TERMINAL_STATES, TaskRecord, TaskState
from pipeline.status import Reporter

_PUBLISHED = frozenset({TaskState.REVIEWING, TaskState.PR_OPEN})


def task_for_thread(event: dict[str, Any], ctx: HandlerContext) -> TaskRecord | None:
    """The task an issue (by its live task) or a pull request (by its link) belongs to."""
    repo_id, number = int(event["repository"]["id"]), int(event["issue"]["number"])
    if "pull_request" in event["issue"]:
        task_id = ctx.store.task_for_pull(repo_id, number)
    else:
        task_id = ctx.store.active_task_for_issue(repo_id, number)
    return ctx.store.get(task_id) if task_id else None


def cancel_task(
    event: dict[str, Any], ctx: HandlerContext, reason: str, *, only_before_pr: bool = False
) -> Outcome:
    record = task_for_thread(event, ctx)
    if record is None or record.progress.state in TERMINAL_STATES:
        return Outcome.ignore("no live task to cancel")
    if only_before_pr and record.progress.state in _PUBLISHED:
        return Outcome.ignore(f"task {record.id} already has its pull request")
    record = ctx.store.transition(record.id, TaskState.CANCELLED, reason)
    refresh_status(record, event, ctx)
    return Outcome("cancelled", reason, task_id=record.id)


def refresh_status(record: TaskRecord, event: dict[str, Any], ctx: HandlerContext) -> None:
    gh = ctx.repo(event)
    Reporter(ctx.store, gh, ctx.github.identity()["bot_login"]).refresh(record)
