"""One module per webhook event family; each turns an event into a decision."""

from __future__ import annotations

from typing import Any

from handlers.context import Handler, HandlerContext, Outcome
from handlers.installation import note_installation
from handlers.issue_comment import is_slash_command, run_slash_command
from handlers.issues import cancel_task_on_close, cancel_task_on_unlabel, queue_task_for_label

__all__ = ["HANDLERS", "Handler", "HandlerContext", "Outcome", "dispatch", "wants"]

HANDLERS: dict[tuple[str, str], Handler] = {
    ("issues", "labeled"): queue_task_for_label,
    ("issues", "unlabeled"): cancel_task_on_unlabel,
    ("issues", "closed"): cancel_task_on_close,
    ("issue_comment", "created"): run_slash_command,
    ("installation", "created"): note_installation,
    ("installation", "deleted"): note_installation,
    ("installation", "suspend"): note_installation,
    ("installation", "unsuspend"): note_installation,
}


def wants(event: str, action: str, payload: dict[str, Any]) -> bool:
    """Whether a delivery is worth queueing at all: pure, decided before anything is stored."""
    if (event, action) not in HANDLERS:
        return False
    if event == "issue_comment":
        return is_slash_command(payload)  # not every comment, the App's own included
    return True


def dispatch(event: str, payload: dict[str, object], ctx: HandlerContext) -> Outcome:
    handler = HANDLERS.get((event, str(payload.get("action") or "")))
    if handler is None:
        return Outcome.ignore(f"no handler for {event}.{payload.get('action')}")
    return handler(payload, ctx)
