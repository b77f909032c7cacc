"""Faults: a worker killed mid-task, transient failures retried by RQ itself."""

from __future__ import annotations

import time
from pathlib import Path

from rq import Queue
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from bot.queue import rq_redis, tier_queue
from pipeline.generate import EDIT_TOOL_NAME
from pipeline.messages import STATUS_MARKER
from pipeline.models import TaskState
from tests.doubles.models import tool_turn
from tests.test_end_to_end import _approves, _writes_greet
from tests.world import REPO, World, wait_for

ROOT = Path(__file__).resolve().parents[1]


def _one_of_each(world: World, number: int) -> None:
    with world.github.state.lock:
        state = world.github.state
        assert len(state.open_pulls(REPO)) == 1
        assert len({p.head_ref for p in state.pulls.values()}) == 1
        statuses = [c for c in state.comments_on(REPO, number) if STATUS_MARKER in c.body]
        assert len(statuses) == 1
        names = [c.name for c in state.check_runs.values()]
        assert sorted(names) == ["Feature Crew / audit", "Feature Crew / review"]


def test_a_worker_killed_mid_generation_is_recovered_by_the_next(world: World) -> None:
    number = world.issue("Add greet()", "Add `greet()`.", labels=["feature-crew:tier-2"])
    slow = tool_turn(EDIT_TOOL_NAME, {"command": "view", "path": "hello.py"}, delay_s=60)
    world.anthropic.script("claude-sonnet-5-5", [slow, *_writes_greet()])
    world.anthropic.script("claude-haiku-5-5", _approves())
    world.label(number)
    world.github.wait_for_deliveries()
    with world.worker_process():
        # The worker handles the label, then blocks in the slow model call; it is killed there.
        wait_for(lambda: world.anthropic.remaining("claude-sonnet-5-5") == 4)
        assert world.store.recent(1)[0].progress.state is TaskState.GENERATING
    # RQ's maintenance pass, run as if its heartbeat deadline had passed.
    redis = rq_redis(world.redis_url)
    queue = Queue(tier_queue(2), connection=redis, serializer=JSONSerializer)
    StartedJobRegistry(queue=queue).cleanup(timestamp=time.time() + 10**6)
    assert world.release_scheduled() == 1
    world.work()
    task = world.store.recent(1)[0]
    assert task.progress.state is TaskState.PR_OPEN
    _one_of_each(world, number)


def test_a_flaky_github_is_retried_by_rq_without_duplicates(world: World) -> None:
    number = world.issue("Add greet()", "Add `greet()`.", labels=["feature-crew:tier-2"])
    world.anthropic.script("claude-sonnet-5-5", _writes_greet() * 2)
    world.anthropic.script("claude-haiku-5-5", _approves())
    # The PR POST fails once; the status comment PATCH fails for all its inline retries once.
    world.github.fail_next("POST", r"^/repos/octo-org/hello/pulls$", 502)
    world.label(number)
    world.work()
    assert world.store.recent(1)[0].progress.state is TaskState.AUDITING
    assert world.release_scheduled() == 1
    world.work()
    assert world.store.recent(1)[0].progress.state is TaskState.PR_OPEN
    _one_of_each(world, number)


def test_a_model_outage_beyond_sdk_retries_goes_back_to_the_queue(world: World) -> None:
    number = world.issue("Add greet()", "Add `greet()`.", labels=["feature-crew:tier-2"])
    world.anthropic.fail_next(count=3, status=529, retry_after_s=0.001)
    world.anthropic.script("claude-sonnet-5-5", _writes_greet())
    world.anthropic.script("claude-haiku-5-5", _approves())
    world.label(number)
    world.work()
    task = world.store.recent(1)[0]
    assert task.progress.state is TaskState.GENERATING
    assert world.release_scheduled() == 1
    world.work()
    assert world.store.recent(1)[0].progress.state is TaskState.PR_OPEN
    _one_of_each(world, number)


def test_a_new_label_is_acknowledged_while_a_long_task_runs(world: World) -> None:
    first = world.issue("Add greet()", "Add `greet()`.", labels=["feature-crew:tier-2"])
    slow = tool_turn(EDIT_TOOL_NAME, {"command": "view", "path": "hello.py"}, delay_s=30)
    world.anthropic.script("claude-sonnet-5-5", [slow])
    world.label(first)
    with world.worker_process():
        # The slow turn is taken when the call starts: the task job is now busy in it.
        wait_for(lambda: world.anthropic.remaining("claude-sonnet-5-5") == 0)
        second = world.issue("Add wave()", "Add `wave()`.", labels=["feature-crew:tier-2"])
        world.label(second)

        def acknowledged() -> bool:
            with world.github.state.lock:
                return any(r.content == "eyes" for r in world.github.state.reactions(REPO, second))

        wait_for(acknowledged, timeout=10)


def test_a_job_timeout_stops_the_task_and_says_so(world: World) -> None:
    from rq.timeouts import JobTimeoutException, UnixSignalDeathPenalty

    from bot import jobs

    # Were it not killed, the suite's own timeout would fail this test: no clock is read here.
    slow_test = "import time\n\n\ndef test_slow() -> None:\n    time.sleep(3600)\n"
    world.github.push_branch(REPO, "main", {"tests/test_slow.py": slow_test})
    number = world.issue("Add greet()", "Add `greet()`.", labels=["feature-crew:tier-2"])
    world.label(number)
    world.work_events()
    task = world.store.recent(1)[0]
    # RQ's own death penalty, as a worker applies it, fires during the audit's baseline run.
    with UnixSignalDeathPenalty(3, JobTimeoutException, job_id="t"):
        assert jobs.run_task(task.id) == "failed"
    task = world.store.require(task.id)
    assert task.progress.state is TaskState.FAILED
    assert "took longer than" in (task.progress.error or "")


def test_an_attempt_past_the_deadline_is_not_started(world: World) -> None:
    import dataclasses

    from bot import jobs
    from bot.queue import rq_redis
    from pipeline import run

    number = world.issue("Add greet()", "Add `greet()`.", labels=["feature-crew:tier-2"])
    world.label(number)
    world.work_events()
    task = world.store.recent(1)[0]
    deps = dataclasses.replace(jobs._deps(rq_redis(world.redis_url)), deadline=0.0)
    assert jobs._guarded(task.id, deps, lambda: run.run_task(task.id, deps)) == "failed"
    assert world.anthropic.bodies() == []  # no model call was paid for
    error = world.store.require(task.id).progress.error or ""
    assert "took longer than its 3600 s limit" in error
