"""Holds on the budgets in Redis: atomic under concurrency, settled, released, expiring."""

from __future__ import annotations

import threading

import pytest
import redis

from bot.store import TaskStore
from pipeline.config import Price
from pipeline.cost import Hold, OverBudget, TaskCostCapped
from pipeline.pricing import estimate_cost


def _hold(n: int, amount: float = 1.0, task: str = "t-1", ttl_s: int = 600) -> Hold:
    return Hold(id=f"h{n}", tier=2, task_id=task, day="2026-12-02", amount=amount, ttl_s=ttl_s)


def test_concurrent_holds_never_pass_the_budget(redis_url: str) -> None:
    granted: list[int] = []

    def reserve(n: int) -> None:
        store = TaskStore(redis.Redis.from_url(redis_url))
        try:
            store.reserve_spend(_hold(n, task=f"t-{n}"), budget=5.0, task_cap=None)
            granted.append(n)
        except OverBudget:
            pass

    threads = [threading.Thread(target=reserve, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 5


def test_settling_records_the_real_cost_and_frees_the_rest(redis_client: redis.Redis) -> None:
    store = TaskStore(redis_client)
    store.reserve_spend(_hold(1, 3.0), budget=4.0, task_cap=None)
    with pytest.raises(OverBudget) as over:
        store.reserve_spend(_hold(2, 2.0), budget=4.0, task_cap=None)
    assert over.value.held == pytest.approx(3.0)
    store.settle_spend(_hold(1, 3.0), 0.5)
    assert store.spent(2, "2026-12-02") == pytest.approx(0.5)
    assert store.task_spent("t-1") == pytest.approx(0.5)
    store.reserve_spend(_hold(2, 2.0), budget=4.0, task_cap=None)  # fits now
    store.release_spend(_hold(2, 2.0))
    store.reserve_spend(_hold(3, 3.5), budget=4.0, task_cap=None)


def test_the_task_cap_counts_what_the_task_spent(redis_client: redis.Redis) -> None:
    store = TaskStore(redis_client)
    store.reserve_spend(_hold(1, 1.0), budget=None, task_cap=4.0)
    store.settle_spend(_hold(1, 1.0), 3.5)
    with pytest.raises(TaskCostCapped) as capped:
        store.reserve_spend(_hold(2, 1.0), budget=None, task_cap=4.0)
    assert capped.value.spent == pytest.approx(3.5)
    store.reserve_spend(_hold(3, 1.0, task="t-2"), budget=None, task_cap=4.0)  # another task


def test_a_hold_left_by_a_killed_worker_becomes_spend_at_its_estimate(
    redis_client: redis.Redis,
) -> None:
    """The dead worker's call may have been billed: it counts, for the tier and its task."""
    store = TaskStore(redis_client)
    store.reserve_spend(_hold(1, 3.0, ttl_s=-1), budget=4.0, task_cap=None)  # already stale
    with pytest.raises(OverBudget):
        store.reserve_spend(_hold(2, 3.0, task="t-2"), budget=4.0, task_cap=None)
    assert store.spent(2, "2026-12-02") == pytest.approx(3.0)
    assert store.task_spent("t-1") == pytest.approx(3.0)
    assert not redis_client.hgetall("fc:reserved:2:2026-12-02")  # not held as well
    store.reserve_spend(_hold(3, 1.0, task="t-2"), budget=4.0, task_cap=None)


def test_a_late_settle_of_an_expired_hold_corrects_it_without_counting_twice(
    redis_client: redis.Redis,
) -> None:
    store = TaskStore(redis_client)
    store.reserve_spend(_hold(1, 3.0, ttl_s=-1), budget=None, task_cap=None)
    store.reserve_spend(_hold(2, 0.5, task="t-2"), budget=None, task_cap=None)  # converts h1
    store.settle_spend(_hold(1, 3.0, ttl_s=-1), 1.25)  # the slow call did end, after all
    store.release_spend(_hold(2, 0.5, task="t-2"))
    assert store.spent(2, "2026-12-02") == pytest.approx(1.25)
    assert store.task_spent("t-1") == pytest.approx(1.25)
    assert store.task_spent("t-2") == pytest.approx(0.0)


def test_a_hold_left_before_midnight_counts_on_its_own_day_once_the_next_day_reserves(
    redis_client: redis.Redis,
) -> None:
    """A call begun at 23:59 UTC whose worker died: yesterday's spend, not a lost hold."""
    store = TaskStore(redis_client)
    store.reserve_spend(_hold(1, 3.0, ttl_s=-1), budget=None, task_cap=None)  # 2026-12-02
    tomorrow = Hold(id="h2", tier=2, task_id="t-2", day="2026-12-03", amount=1.0, ttl_s=600)
    store.reserve_spend(tomorrow, budget=1.0, task_cap=None)  # yesterday's hold is not today's
    assert store.spent(2, "2026-12-02") == pytest.approx(3.0)
    assert store.task_spent("t-1") == pytest.approx(3.0)
    assert not redis_client.hgetall("fc:reserved:2:2026-12-02")
    assert store.spent(2, "2026-12-03") == pytest.approx(0.0)


def test_the_estimate_covers_every_input_token_and_the_whole_output_allowance() -> None:
    price = Price(input=2.0, output=10.0, cache_write=2.5)
    assert estimate_cost(price, 3_000_000, 1000) == pytest.approx((1_000_001 * 2.5 + 10_000) / 1e6)
    assert estimate_cost(None, 10**9, 10**6) == 0.0
