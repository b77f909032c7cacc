"""Per-tier daily budgets: over it, a task (or its review) waits for budget and says so."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from rq import Queue
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from bot.keys import redis_key
from bot.queue import rq_redis, tier_queue
from bot.store import utc_day
from pipeline.messages import STATUS_MARKER
from pipeline.models import TaskState
from tests.doubles.models import Turn
from tests.test_end_to_end import _approves, _writes_greet
from tests.world import REPO, World, build_world


@pytest.fixture
def world(
    clean_env: None, tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    yield from build_world(
        tmp_path, redis_url, monkeypatch, config="[tier2]\ncost_budget = 0.05\nmax_tokens = 1024\n"
    )


def _expensive_last(turns: list[Turn]) -> list[Turn]:
    return [*turns[:-1], replace(turns[-1], input_tokens=1_000_000)]


def test_a_spent_budget_parks_the_next_task_until_tomorrow(world: World) -> None:
    world.anthropic.script("claude-sonnet-5-5", _writes_greet())
    world.anthropic.script("claude-haiku-5-5", _expensive_last(_approves()))  # $0.10
    first = world.issue("Add greet()", "Add `greet()`.", labels=["feature-crew:tier-2"])
    world.label(first)
    world.work()
    assert world.store.recent(1)[0].progress.state is TaskState.PR_OPEN
    assert world.store.spent(2) > 0.05

    second = world.issue("Greet too", "Add `greet()`.", labels=["feature-crew:tier-2"])
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
    assert "of its $0.0500 daily budget" in status
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


def test_a_review_that_would_pass_the_budget_waits_and_then_reviews_the_same_head(
    world: World,
) -> None:
    world.anthropic.script("claude-sonnet-5-5", _expensive_last(_writes_greet()))  # $2
    number = world.issue("Add greet()", "Add `greet()`.", labels=["feature-crew:tier-2"])
    world.label(number)
    world.work()
    task = world.store.recent(1)[0]
    assert task.progress.state is TaskState.BUDGET_WAIT
    assert task.progress.parked_review == task.progress.head_sha
    assert [t.state for t in task.transitions][-2:] == ["reviewing", "budget_wait"]
    assert world.anthropic.bodies("claude-haiku-5-5") == []
    with world.github.state.lock:
        (pull,) = world.github.state.open_pulls(REPO)
        assert world.github.state.reviews_on(REPO, pull.number) == []
        (check,) = [c for c in world.github.state.check_runs.values()
                    if c.name == "Feature Crew / review"]  # fmt: skip
    assert check.status == "in_progress" and "budget" in check.output["title"]

    rq_redis(world.redis_url).delete(redis_key("spend", 2, utc_day()))  # a new day
    world.anthropic.script("claude-haiku-5-5", _approves())
    assert world.release_scheduled() == 1
    world.work()
    task = world.store.require(task.id)
    assert task.progress.state is TaskState.PR_OPEN and task.progress.parked_review is None
    assert [t.state for t in task.transitions][-3:] == ["budget_wait", "reviewing", "pr_open"]
    with world.github.state.lock:
        (review,) = world.github.state.reviews_on(REPO, pull.number)
    assert review.commit_id == task.progress.head_sha
    assert world.anthropic.remaining("claude-sonnet-5-5") == 0  # nothing generated again
