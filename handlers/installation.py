"""installation.*: recorded in the log; an uninstall also removes the repositories' mirrors."""

from __future__ import annotations

import logging
from typing import Any

from handlers.context import Action, Outcome
from pipeline.context import Context

log = logging.getLogger(__name__)


def note_installation(event: dict[str, Any], ctx: Context) -> Outcome:
    installation = event.get("installation") or {}
    account = (installation.get("account") or {}).get("login", "?")
    log.info("installation %s %s for %s", installation.get("id"), event.get("action"), account)
    return Outcome(Action.NOTED, f"installation {event.get('action')} for {account}")


def forget_installation(event: dict[str, Any], ctx: Context) -> Outcome:
    """The App can no longer read these repositories: their mirrors must not linger."""
    note_installation(event, ctx)
    repo_ids = sorted({int(r["id"]) for r in event.get("repositories") or [] if r.get("id")})
    if not repo_ids:
        return Outcome.ignore("installation deleted; no repositories listed")
    ctx.queue.enqueue_forget_repositories(repo_ids, ctx.delivery_id)
    return Outcome(Action.QUEUED, f"mirrors of {len(repo_ids)} repositories to remove")
