"""Money limits of a task: park it when its tier's budget is spent, stop it at its own cap."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from pipeline.cost import Meter, OverBudget, TaskCostCapped
from pipeline.messages import usd
from pipeline.models import TaskRecord, TaskState

if TYPE_CHECKING:
    from pipeline.context import Context
    from pipeline.status import Reporter

S = TaskState
# A parked task looks again this often, so a budget the operator raised is used within minutes.
BUDGET_RECHECK_S = 600


def meter_for(record: TaskRecord, tier: int, ctx: Context) -> Meter:
    """Every model call of the task (generation, reviewer, security review) goes through it."""
    config = ctx.config.tier(tier)
    return Meter(
        ledger=ctx.store,
        task_id=record.id,
        tier=tier,
        budget=config.cost_budget,
        task_cap=config.max_task_cost,
    )


def check_before_work(
    record: TaskRecord, tier: int, reporter: Reporter, ctx: Context, review_sha: str | None = None
) -> bool:
    """False when the task cannot spend now: it was parked or stopped, and says so."""
    config = ctx.config.tier(tier)
    spent = ctx.store.task_spent(record.id)
    if spent >= config.max_task_cost:
        stop_at_cap(record, TaskCostCapped(spent, config.max_task_cost), reporter, ctx)
        return False
    held = ctx.store.held(tier)
    if config.cost_budget is not None and held >= config.cost_budget:
        over = OverBudget(tier, held, config.cost_budget)
        park(record, over, reporter, ctx, review_sha=review_sha)
        return False
    return True


def park(
    record: TaskRecord,
    over: OverBudget,
    reporter: Reporter,
    ctx: Context,
    *,
    review_sha: str | None = None,
    **changes: Any,
) -> TaskState:
    """BUDGET_WAIT until the next UTC day, looking again every few minutes for a raised budget."""
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), time(0, 1), tzinfo=UTC)
    recheck = min(midnight, now + timedelta(seconds=BUDGET_RECHECK_S))
    what = "the review" if review_sha else "the next model call"
    note = (
        f"tier {over.tier} has spent or reserved {usd(over.held)} of its "
        f"{usd(over.budget)} daily budget, and {what} could pass it; resuming after "
        f"{midnight:%Y-%m-%d %H:%M} UTC, or within {BUDGET_RECHECK_S // 60} minutes of the "
        "budget being raised"
    )
    record = reporter.move(
        ctx.store.require(record.id),
        S.BUDGET_WAIT,
        note,
        tier=over.tier,
        parked_review=review_sha,
        cost_usd=ctx.store.task_spent(record.id),
        **changes,
    )
    # One check per park: the job id names the transition that parked the task.
    ctx.queue.enqueue_task(record.id, attempt_key=f"budget-{len(record.transitions)}", at=recheck)
    return S.BUDGET_WAIT


def stop_at_cap(
    record: TaskRecord, capped: TaskCostCapped, reporter: Reporter, ctx: Context
) -> TaskState:
    reason = f"{capped.public} (max_task_cost)"
    record = reporter.move(
        ctx.store.require(record.id),
        S.FAILED,
        reason,
        error=reason,
        cost_usd=ctx.store.task_spent(record.id),
    )
    return record.progress.state


def resume_parked_review(record: TaskRecord, reporter: Reporter, ctx: Context) -> TaskState:
    """A review that waited for budget: queue it again once the budget has room."""
    head = str(record.progress.parked_review)
    tier = int(record.progress.tier or 2)
    if not check_before_work(record, tier, reporter, ctx, review_sha=head):
        return ctx.store.require(record.id).progress.state
    reporter.move(record, S.REVIEWING, "budget available; reviewing", parked_review=None)
    round_key = f"after-budget-{len(record.transitions)}"
    ctx.queue.enqueue_review(record.id, head, round_key=round_key)
    return S.REVIEWING
