"""issue_comment.created: the `/crew` slash commands of writers, on issues and pull requests."""

from __future__ import annotations

import re
from typing import Any

from handlers.context import HandlerContext, Outcome, writer_client
from handlers.tasks import cancel_task, refresh_status, task_for_thread

PREFIX = "/crew"
_COMMAND = re.compile(r"^/crew\s+(?P<name>[a-z]+)\b(?P<rest>.*)$", re.DOTALL)


def is_slash_command(event: dict[str, Any]) -> bool:
    """Cheap enough for the web process: decides whether the delivery is queued at all."""
    body = str((event.get("comment") or {}).get("body") or "")
    return body.lstrip().startswith(PREFIX)


def run_slash_command(event: dict[str, Any], ctx: HandlerContext) -> Outcome:
    sender = event.get("sender") or {}
    match = _COMMAND.match(str((event.get("comment") or {}).get("body") or "").strip())
    if match is None:
        return Outcome.ignore("not a /crew command")
    gh = writer_client(event, ctx)
    if isinstance(gh, Outcome):
        return gh
    name = match.group("name")
    if name == "cancel":
        return cancel_task(event, ctx, f"cancelled by @{sender['login']} with /crew cancel")
    if name == "status":
        record = task_for_thread(event, ctx)
        if record is None:
            return Outcome.ignore("no task on this thread")
        refresh_status(record, event, ctx)
        return Outcome("refreshed", f"status of {record.id} refreshed", task_id=record.id)
    return Outcome.ignore(f"/crew {name} is not a command this version knows")
