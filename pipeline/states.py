"""The task state machine: which transitions are allowed."""

from pipeline.models import TaskState

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
