"""installation.*: nothing to do yet but record it in the log."""

from __future__ import annotations

import logging
from typing import Any

from handlers.context import HandlerContext, Outcome

log = logging.getLogger(__name__)


def note_installation(event: dict[str, Any], ctx: HandlerContext) -> Outcome:
    installation = event.get("installation") or {}
    account = (installation.get("account") or {}).get("login", "?")
    log.info("installation %s %s for %s", installation.get("id"), event.get("action"), account)
    return Outcome("noted", f"installation {event.get('action')} for {account}")
