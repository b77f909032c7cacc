"""pull_request_review.submitted: a writer's approval merges; requested changes start an attempt."""

from __future__ import annotations

from typing import Any

from handlers.context import HandlerContext, Outcome, writer_client
from handlers.tasks import request_changes
from pipeline.models import TaskState
from pipeline.prompts import human_feedback


def act_on_human_review(event: dict[str, Any], ctx: HandlerContext) -> Outcome:
    review, pull = event.get("review") or {}, event.get("pull_request") or {}
    state = str(review.get("state") or "").lower()
    if state not in ("approved", "changes_requested"):
        return Outcome.ignore(f"review state {state!r} asks for nothing")
    gh = writer_client(event, ctx)
    if isinstance(gh, Outcome):
        return gh
    task_id = ctx.store.task_for_pull(gh.repo_id, int(pull["number"]))
    record = ctx.store.get(task_id) if task_id else None
    if record is None:
        return Outcome.ignore("not a Feature Crew pull request")
    if state == "approved":
        if not ctx.settings.config.github.merge_on_approval:
            return Outcome.ignore("merge_on_approval is off")
        if record.progress.state not in (TaskState.REVIEWING, TaskState.PR_OPEN):
            return Outcome.ignore(f"task {record.id} is {record.progress.state}")
        # Merge exactly what was approved, never a head pushed after the approval.
        ctx.queue.enqueue_merge(record.id, str(review["commit_id"]))
        return Outcome("queued", f"merge of {record.id} at {review['commit_id'][:8]}", record.id)
    inline = list(gh.review_comments(int(pull["number"]), int(review["id"])))
    feedback = human_feedback(event["sender"]["login"], str(review.get("body") or ""), inline)
    return request_changes(record, feedback, event, ctx)
