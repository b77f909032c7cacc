"""Short answers to a writer whose review or command cannot be acted on as asked."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.messages import render_reply, reply_marker
from pipeline.publish import find_own_comment

if TYPE_CHECKING:
    from bot.github_repo import RepoClient
    from handlers.context import HandlerContext


def reply_once(gh: RepoClient, number: int, text: str, ctx: HandlerContext) -> None:
    """One reply per delivery: a redelivered or retried event finds its reply by marker."""
    marker = reply_marker(ctx.delivery_id)
    if find_own_comment(gh, number, marker, ctx.github.identity().bot_login) is None:
        gh.comment_on_issue(number, render_reply(text, ctx.delivery_id))
