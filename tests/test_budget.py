"""Per-tier daily budgets: over it, a task waits for the next UTC day and says so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rq import Queue
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from bot.queue import rq_redis, tier_queue
from bot.store import redis_key, utc_day
from pipeline.messages import STATUS_MARKER
from pipeline.models import TaskState
from tests.test_end_to_end import _approves, _writes_greet
from tests.world import REPO, World, build_world


@pytest.fixture
def world(
    clean_env: None, tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    yield from build_world(
        tmp_path, redis_url, monkeypatch, config="[tier2]\ncost_budget = 0.001\n"
    )


def test_a_spent_budget_parks_the_next_task_until_tomorrow(world: World) -> None:
    world.anthropic.script("claude-sonnet-5-5", _writes_greet())
    world.anthropic.script("claude-haiku-5-5", _approves())
    first = world.issue("Add greet()", "Add `greet()`.", labels=["feature-crew:tier-2"])
    world.label(first)
    world.work()
    assert world.store.recent(1)[0].progress.state is TaskState.PR_OPEN
    assert world.store.spent(2) > 0.001

    second = world.issue("Add wave()", "Add `wave()`.", labels=["feature-crew:tier-2"])
    world.label(second)
    world.work()
    task = world.store.recent(1)[0]
    assert task.spec.issue_number == second
    assert task.progress.state is TaskState.BUDGET_WAIT
    with world.github.state.lock:
        (status,) = [
            c.body for c in world.github.state.comments_on(REPO, second) if STATUS_MARKER in c.body
        ]
    assert "Waiting for budget" in status
    assert "of its $0.0010 daily budget" in status
    redis = rq_redis(world.redis_url)
    scheduled = ScheduledJobRegistry(
        queue=Queue(tier_queue(2), connection=redis, serializer=JSONSerializer)
    )
    assert len(scheduled.get_job_ids()) == 1
    assert world.anthropic.remaining("claude-sonnet-5-5") == 0  # no model call was made

    # A new day: the budget is fresh and the parked task runs.
    redis.delete(redis_key("spend", 2, utc_day()))
    world.anthropic.script("claude-sonnet-5-5", _writes_greet())
    world.anthropic.script("claude-haiku-5-5", _approves())
    assert world.release_scheduled() == 1
    world.work()
    assert world.store.require(task.id).progress.state is TaskState.PR_OPEN
