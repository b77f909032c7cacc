"""The task state machine: which transitions are allowed, and what a write makes of a task."""

from __future__ import annotations

import time
from typing import Any

from pipeline.errors import PermanentError, Superseded, TaskCancelled
from pipeline.models import TaskProgress, TaskRecord, TaskState, Transition

S = TaskState

ALLOWED: dict[TaskState, frozenset[TaskState]] = {
    S.QUEUED: frozenset({S.GENERATING, S.BUDGET_WAIT, S.CANCELLED, S.FAILED}),
    # A review parked for budget goes back to reviewing the same head.
    S.BUDGET_WAIT: frozenset({S.QUEUED, S.GENERATING, S.REVIEWING, S.CANCELLED, S.FAILED}),
    # A re-run (crash, human feedback) checks the budget again before it spends.
    S.GENERATING: frozenset({S.AUDITING, S.ASKING, S.BUDGET_WAIT, S.CANCELLED, S.FAILED}),
    S.ASKING: frozenset({S.QUEUED, S.GENERATING, S.CANCELLED, S.FAILED}),
    # A failed audit sends the task back to generating with the report as feedback.
    S.AUDITING: frozenset({S.GENERATING, S.REVIEWING, S.BUDGET_WAIT, S.CANCELLED, S.FAILED}),
    S.REVIEWING: frozenset(
        {S.PR_OPEN, S.GENERATING, S.MERGED, S.BUDGET_WAIT, S.CANCELLED, S.FAILED}
    ),
    # The base moved under an open PR: its rebased head is audited again, then reviewed.
    S.PR_OPEN: frozenset(
        {S.MERGED, S.GENERATING, S.AUDITING, S.REVIEWING, S.BUDGET_WAIT, S.CANCELLED, S.FAILED}
    ),
    S.MERGED: frozenset(),
    S.CANCELLED: frozenset(),
    S.FAILED: frozenset(),
}


def can_move(current: TaskState, target: TaskState) -> bool:
    """Staying in a state is allowed: a re-run job repeats its stage's transition."""
    return current == target or target in ALLOWED[current]


def next_progress(
    record: TaskRecord,
    state: TaskState | None,
    note: str,
    changes: dict[str, Any],
    expect: frozenset[TaskState] | None,
) -> tuple[TaskProgress, Transition | None]:
    """The task's progress after this write, and its transition when the state is set."""
    current, now = record.progress.state, time.time()
    if state is None:
        return record.progress.model_copy(update={**changes, "updated_at": now}), None
    if current is TaskState.CANCELLED and state is not TaskState.CANCELLED:
        raise TaskCancelled(f"task {record.id} was cancelled", public="cancelled")
    if expect is not None and current not in expect:
        raise Superseded(f"task {record.id} is {current}, not {sorted(expect)}")
    if not can_move(current, state):
        raise PermanentError(
            f"task {record.id}: illegal transition {current} -> {state}",
            public=f"internal state error ({current} -> {state})",
        )
    progress = record.progress.model_copy(update={**changes, "state": state, "updated_at": now})
    return progress, Transition(state=state, at=now, note=note)
