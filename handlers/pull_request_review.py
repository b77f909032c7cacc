"""pull_request_review.submitted: a writer's approval merges; requested changes start an attempt."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from handlers.context import Action, Outcome, writer_client
from handlers.replies import reply_once
from handlers.tasks import request_changes
from pipeline.context import Context
from pipeline.errors import GitHubError
from pipeline.messages import render_approval_noted
from pipeline.models import PUBLISHED_STATES, TERMINAL_STATES, TaskRecord
from pipeline.prompts import human_feedback

if TYPE_CHECKING:
    from pipeline.ports import Repo

log = logging.getLogger(__name__)


def act_on_human_review(event: dict[str, Any], ctx: Context) -> Outcome:
    review, pull = event.get("review") or {}, event.get("pull_request") or {}
    state = str(review.get("state") or "").lower()
    if state not in ("approved", "changes_requested"):
        return Outcome.ignore(f"review state {state!r} asks for nothing")
    gh = writer_client(event, ctx)
    if isinstance(gh, Outcome):
        return gh
    number = int(pull["number"])
    task_id = ctx.store.task_for_pull(gh.repo_id, number)
    record = ctx.store.get(task_id) if task_id else None
    if record is None:
        return Outcome.ignore("not a Feature Crew pull request")
    if state == "approved":
        return _merge_on_approval(record, str(review["commit_id"]), number, gh, ctx)
    feedback, unread = _review_feedback(event, gh, number)
    outcome = request_changes(record, feedback, event, ctx)
    notes = [unread] if unread else []
    if outcome.action is Action.IGNORED:
        notes.append(f"Feature Crew cannot start a new attempt for this review: {outcome.reason}.")
    if notes:
        reply_once(gh, number, "\n\n".join(notes), ctx)
    return outcome


def _merge_on_approval(
    record: TaskRecord, sha: str, number: int, gh: Repo, ctx: Context
) -> Outcome:
    """Merge exactly what was approved, never a head pushed after the approval."""
    if not ctx.config.github.merge_on_approval:
        reply_once(gh, number, "Feature Crew does not merge on approval here "
                   "(`merge_on_approval` is off): merge it yourself.", ctx)  # fmt: skip
        return Outcome.ignore("merge_on_approval is off")
    progress = record.progress
    if progress.state in PUBLISHED_STATES and progress.requested_changes is None:
        ctx.queue.enqueue_merge(record.id, sha)
        return Outcome(Action.QUEUED, f"merge of {record.id} at {sha[:8]}", record.id)
    if progress.state in TERMINAL_STATES:
        why = progress.error or "nothing left to do"
        text = f"Feature Crew will not merge this: its task is {progress.state.value} ({why})."
        reply_once(gh, number, text, ctx)
        return Outcome.ignore(f"task {record.id} is {progress.state}")
    # An attempt is running: its end applies the approval, or says the head it named is gone.
    record = ctx.store.update(record.id, pending_approval=sha)
    if record.progress.state in PUBLISHED_STATES and record.progress.requested_changes is None:
        # The attempt ended while we looked.
        ctx.store.update(record.id, pending_approval=None)
        ctx.queue.enqueue_merge(record.id, sha)
        return Outcome(Action.QUEUED, f"merge of {record.id} at {sha[:8]}", record.id)
    reply_once(gh, number, render_approval_noted(sha), ctx)
    return Outcome(
        Action.NOTED, f"approval of {sha[:8]} kept until the running attempt ends", record.id
    )


def _review_feedback(event: dict[str, Any], gh: Repo, number: int) -> tuple[str, str]:
    """The review's words with its inline comments; if those cannot be read, the words alone
    and a note saying so (never the whole review dropped)."""
    review, login = event["review"], event["sender"]["login"]
    body = str(review.get("body") or "")
    try:
        inline = list(gh.review_comments(number, int(review["id"])))
    except GitHubError as err:
        log.warning("inline comments of review %s on #%s unreadable: %s", review["id"], number, err)
        note = (
            "Feature Crew could not read this review's inline comments (GitHub answered "
            f"{err.status}), so the next attempt works from the review's summary alone. Repeat "
            "anything important with `/crew retry <feedback>`."
        )
        return human_feedback(login, body, []), note
    return human_feedback(login, body, inline), ""
