"""The per-tier counters: kept with each state change, once per change, read back per window."""

from __future__ import annotations

import time

import redis

from bot.metrics import read_window
from bot.store import TaskStore
from pipeline.models import ReviewAction, ReviewVerdict, TaskSpec, TaskState

S = TaskState


def _task(store: TaskStore, n: int, tier: int, repo: str = "octo/hello") -> str:
    spec = TaskSpec(
        id=f"t-{n}",
        installation_id=1,
        repo_full_name=repo,
        repo_id=9,
        clone_url="http://x",
        default_branch="main",
        issue_number=n,
        issue_title=f"task {n}",
        spec="s",
        slug="s",
        branch=f"feature-crew/issue-{n}-s",
        requested_by="alice",
        delivery_id=f"d-{n}",
        created_at=time.time() - 90,  # 90 s old: its latency falls in the (60, 120] bucket
    )
    assert store.create(spec).created
    store.transition(spec.id, S.GENERATING, "routed", tier=tier, model="m")
    return spec.id


def _verdict(action: ReviewAction) -> ReviewVerdict:
    return ReviewVerdict(action=action, reason="r")


def _to_pr(store: TaskStore, task_id: str, cost: float, action: ReviewAction) -> None:
    store.transition(task_id, S.AUDITING, "attempt 1", attempts=1, cost_usd=cost)
    store.transition(task_id, S.REVIEWING, "PR open")
    store.transition(task_id, S.PR_OPEN, "reviewed", review=_verdict(action))


def test_outcomes_cost_and_latency_per_tier(redis_client: redis.Redis) -> None:
    store = TaskStore(redis_client)
    _to_pr(store, _task(store, 1, 2), 0.5, ReviewAction.APPROVE)
    _to_pr(store, _task(store, 2, 2), 0.25, ReviewAction.REJECT)
    store.transition(_task(store, 3, 1), S.FAILED, "no passing change", cost_usd=0.125)
    store.transition(_task(store, 4, 2), S.CANCELLED, "cancelled by @alice")
    window = read_window(store, 7 * 86400)
    tier2, tier1 = window.by_tier["2"], window.by_tier["1"]
    assert tier2.outcomes == {"succeeded": 1, "rejected": 1, "failed": 0, "cancelled": 1}
    assert tier2.success_rate == 0.5 and tier2.cost_usd == 0.75 and tier2.attempts == 2
    assert tier1.success_rate == 0.0 and tier1.cost_usd == 0.125
    p50 = tier2.latency_quantile(0.5)
    assert p50 is not None and 60 <= p50 <= 120
    assert len(window.days) == 7 and set(window.by_tier) == {"1", "2"}


def test_a_rerun_of_the_same_transition_counts_nothing_twice(redis_client: redis.Redis) -> None:
    store = TaskStore(redis_client)
    task_id = _task(store, 1, 2)
    _to_pr(store, task_id, 0.5, ReviewAction.APPROVE)
    before = store.tier_counts(read_window(store, 86400).days)
    store.transition(task_id, S.PR_OPEN, "reviewed", review=_verdict(ReviewAction.APPROVE))
    store.update(task_id, cost_usd=0.5)
    assert store.tier_counts(read_window(store, 86400).days) == before


def test_a_new_attempt_takes_the_earlier_outcome_back(redis_client: redis.Redis) -> None:
    store = TaskStore(redis_client)
    task_id = _task(store, 1, 2)
    _to_pr(store, task_id, 0.5, ReviewAction.APPROVE)
    store.transition(task_id, S.GENERATING, "a human asked for changes")
    tier2 = read_window(store, 86400).by_tier["2"]
    assert tier2.finished == 0 and tier2.latency_count == 0 and tier2.cost_usd == 0.5
    store.transition(task_id, S.FAILED, "used all attempts")
    tier2 = read_window(store, 86400).by_tier["2"]
    assert tier2.outcomes["failed"] == 1 and tier2.outcomes["succeeded"] == 0


def test_a_window_reads_the_counters_never_the_task_records(redis_client: redis.Redis) -> None:
    store = TaskStore(redis_client)
    for n in range(30):
        store.transition(_task(store, n, 1 + n % 3), S.FAILED, "x", cost_usd=0.01)
    redis_client.config_resetstat()
    window = read_window(store, 30 * 86400)
    used = redis_client.info("commandstats")
    assert sum(t.finished for t in window.by_tier.values()) == 30
    assert used["cmdstat_hgetall"]["calls"] == 4 * 30  # one per tier and day
    assert not {"cmdstat_hmget", "cmdstat_lrange", "cmdstat_zrangebyscore"} & set(used)
