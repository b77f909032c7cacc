"""One module per webhook event family; each turns an event into a decision."""

from __future__ import annotations

from handlers.context import Handler, HandlerContext, Outcome
from handlers.installation import note_installation
from handlers.issues import queue_task_for_label

__all__ = ["HANDLERS", "Handler", "HandlerContext", "Outcome", "dispatch", "wants"]

HANDLERS: dict[tuple[str, str], Handler] = {
    ("issues", "labeled"): queue_task_for_label,
    ("installation", "created"): note_installation,
    ("installation", "deleted"): note_installation,
    ("installation", "suspend"): note_installation,
    ("installation", "unsuspend"): note_installation,
}


def wants(event: str, action: str) -> bool:
    """Whether a delivery is worth queueing at all; decided before anything is stored."""
    return (event, action) in HANDLERS


def dispatch(event: str, payload: dict[str, object], ctx: HandlerContext) -> Outcome:
    handler = HANDLERS.get((event, str(payload.get("action") or "")))
    if handler is None:
        return Outcome.ignore(f"no handler for {event}.{payload.get('action')}")
    return handler(payload, ctx)
