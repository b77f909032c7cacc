"""Landing an approved pull request: merge exactly the approved head, or say why not."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pipeline.errors import PermanentGitHubError
from pipeline.messages import render_merge_refused
from pipeline.models import PUBLISHED_STATES, TaskState
from pipeline.uptodate import update_before_merge

if TYPE_CHECKING:
    from pipeline.context import Context

log = logging.getLogger(__name__)
S = TaskState


def merge_approved(task_id: str, approved_sha: str, ctx: Context) -> TaskState:
    record = ctx.store.require(task_id)
    progress = record.progress
    if progress.state not in PUBLISHED_STATES or progress.pr_number is None:
        log.info("merge of %s skipped: task is %s", task_id, progress.state)
        return progress.state
    gh = ctx.repo(record)
    if not update_before_merge(record, approved_sha, gh, ctx):
        return progress.state  # the approved head lacks the base: updated and reviewed first
    reporter = ctx.reporter(gh)
    title = f"{record.spec.issue_title} (#{progress.pr_number})"
    try:
        gh.merge_pull(
            progress.pr_number,
            sha=approved_sha,
            method=ctx.config.github.merge_method,
            title=title,
        )
    except PermanentGitHubError as err:
        if err.status not in (405, 409, 422):
            raise
        # 409: the head moved after the approval; 405: not mergeable (conflicts, protection).
        gh.comment_on_issue(progress.pr_number, render_merge_refused(err.public))
        return progress.state
    record = reporter.move(record, S.MERGED, f"merged at {approved_sha[:8]} after approval")
    return record.progress.state
