"""One module per webhook event family; each turns an event into a decision."""

from __future__ import annotations

from typing import Any

from handlers.check_run import act_on_check_button
from handlers.context import Handler, Outcome
from handlers.installation import forget_installation, note_installation
from handlers.issue_comment import act_on_comment
from handlers.issues import cancel_task_on_close, cancel_task_on_unlabel, queue_task_for_label
from handlers.pull_request import record_pull_closed
from handlers.pull_request_review import act_on_human_review
from handlers.push import pushed_to_default_branch, update_pulls_on_base_push
from pipeline.context import Context

__all__ = ["HANDLERS", "Handler", "Outcome", "dispatch", "wants"]

# check_run: GitHub echoes our own check runs too; only a person clicks their buttons.
HUMAN_ONLY = frozenset({"issues", "issue_comment", "pull_request_review", "check_run"})

HANDLERS: dict[tuple[str, str], Handler] = {
    ("issues", "labeled"): queue_task_for_label,
    ("issues", "unlabeled"): cancel_task_on_unlabel,
    ("issues", "closed"): cancel_task_on_close,
    ("issue_comment", "created"): act_on_comment,
    ("pull_request", "closed"): record_pull_closed,
    ("pull_request_review", "submitted"): act_on_human_review,
    ("check_run", "requested_action"): act_on_check_button,
    ("check_run", "rerequested"): act_on_check_button,
    ("push", ""): update_pulls_on_base_push,
    ("installation", "created"): note_installation,
    ("installation", "deleted"): forget_installation,
    ("installation", "suspend"): note_installation,
    ("installation", "unsuspend"): note_installation,
}


def wants(event: str, action: str, payload: dict[str, Any]) -> bool:
    """Whether a delivery is worth queueing at all: pure, decided before anything is stored."""
    if (event, action) not in HANDLERS:
        return False
    if event == "push":  # the App's own branch pushes are the most common: not even stored
        return pushed_to_default_branch(payload)
    sender = payload.get("sender")
    # GitHub echoes the App's own comments, labels and reviews: bots never drive these.
    is_bot = isinstance(sender, dict) and sender.get("type") == "Bot"
    return not (is_bot and event in HUMAN_ONLY)


def dispatch(event: str, payload: dict[str, object], ctx: Context) -> Outcome:
    handler = HANDLERS.get((event, str(payload.get("action") or "")))
    if handler is None:
        return Outcome.ignore(f"no handler for {event}.{payload.get('action')}")
    return handler(payload, ctx)
