"""Short answers to a writer whose review or command cannot be acted on as asked."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.messages import render_reply, reply_marker
from pipeline.publish import find_own_comment

if TYPE_CHECKING:
    from pipeline.context import Context
    from pipeline.ports import Repo


def reply_once(gh: Repo, number: int, text: str, ctx: Context) -> None:
    """One reply per delivery: a redelivered or retried event finds its reply by marker."""
    marker = reply_marker(ctx.delivery_id)
    if find_own_comment(gh, number, marker, ctx.app().identity().bot_login) is None:
        gh.comment_on_issue(number, render_reply(text, ctx.delivery_id))
