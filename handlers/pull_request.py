"""pull_request.closed: a merged PR ends its task as merged; a closed one as cancelled."""

from __future__ import annotations

from typing import Any

from handlers.context import Action, Outcome, repo_of
from handlers.tasks import refresh_status
from pipeline.context import Context
from pipeline.models import TERMINAL_STATES, TaskState


def record_pull_closed(event: dict[str, Any], ctx: Context) -> Outcome:
    pull, repo = event.get("pull_request") or {}, event.get("repository") or {}
    task_id = ctx.store.task_for_pull(int(repo.get("id") or 0), int(pull.get("number") or 0))
    record = ctx.store.get(task_id) if task_id else None
    if record is None or record.progress.state in TERMINAL_STATES:
        return Outcome.ignore("no live Feature Crew task for this pull request")
    sender = (event.get("sender") or {}).get("login", "someone")
    if pull.get("merged"):
        state, note = TaskState.MERGED, f"merged by @{sender}"
    else:
        state, note = TaskState.CANCELLED, f"pull request closed by @{sender} without merging"
    record = ctx.store.transition(record.id, state, note)
    refresh_status(record, repo_of(event, ctx), ctx)
    return Outcome(Action(state.value), note, record.id)
