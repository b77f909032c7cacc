"""State changes that also refresh the issue's status comment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.messages import render_approval_after_failure, render_status
from pipeline.models import TaskRecord, TaskState
from pipeline.publish import upsert_status_comment

if TYPE_CHECKING:
    from pipeline.ports import Repo, Store


@dataclass(frozen=True)
class Reporter:
    store: Store
    gh: Repo
    bot_login: str
    max_attempts: int

    def move(self, record: TaskRecord, state: TaskState, note: str, **changes: Any) -> TaskRecord:
        record = self.store.transition(record.id, state, note, **changes)
        return self.refresh(record)

    def update(self, record: TaskRecord, **changes: Any) -> TaskRecord:
        return self.store.update(record.id, **changes)

    def fail(self, record: TaskRecord, reason: str) -> TaskRecord:
        record = self.move(record, TaskState.FAILED, reason, error=reason)
        approved, pr = record.progress.pending_approval, record.progress.pr_number
        if approved is not None and pr is not None:  # noted during this attempt: say its end
            self.gh.comment_on_issue(pr, render_approval_after_failure(approved, reason))
            record = self.store.update(record.id, pending_approval=None)
        return record

    def refresh(self, record: TaskRecord) -> TaskRecord:
        comment_id = upsert_status_comment(
            self.gh, record, render_status(record, self.max_attempts), self.bot_login
        )
        if comment_id != record.progress.status_comment_id:
            record = self.store.update(record.id, status_comment_id=comment_id)
        return record
