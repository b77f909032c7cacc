"""Local mode never waits forever: a task whose job vanished fails with the reason."""

from __future__ import annotations

import io

import pytest
from rq.job import Job
from rq.serializers import JSONSerializer

from bot.follow import Follower, summary
from bot.queue import rq_redis
from bot.settings import load_settings
from pipeline.models import TaskState
from tests.test_end_to_end import _approves, _writes_greet
from tests.test_local_mode import Local, local  # noqa: F401 - the fixture


def test_a_task_whose_job_was_deleted_fails_and_a_new_enqueue_runs(
    local: Local,  # noqa: F811 - the fixture
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert local.enqueue("--detach") == 0
    task = capsys.readouterr().out.strip()
    redis = rq_redis(local.redis_url)
    Job.fetch(f"task-{task}-1", connection=redis, serializer=JSONSerializer).delete()
    err = io.StringIO()
    follower = Follower(load_settings(), redis, task, None, io.StringIO(), err, 0.5)
    text, status = summary(follower.follow())
    assert status == 1
    assert "gone from Redis" in err.getvalue() and len(err.getvalue().splitlines()) >= 1
    assert f"task {task}: failed" in text and "stopped: " in text and "enqueue it again" in text
    assert local.store.require(task).progress.state is TaskState.FAILED
    # The branch is free again: the same command starts a new task and runs it.
    local.anthropic.script("claude-sonnet-5-5", _writes_greet())
    local.anthropic.script("claude-haiku-5-5", _approves())
    assert local.enqueue() == 0
    assert local.store.recent(1)[0].progress.state is TaskState.PR_OPEN


def test_a_task_with_a_waiting_job_is_not_taken_for_vanished(
    local: Local,  # noqa: F811 - the fixture
    capsys: pytest.CaptureFixture[str],
) -> None:
    local.anthropic.script("claude-sonnet-5-5", _writes_greet())
    local.anthropic.script("claude-haiku-5-5", _approves())
    assert local.enqueue("--detach") == 0
    task = capsys.readouterr().out.strip()
    # With no grace at all, the follower still runs the waiting job rather than giving up.
    follower = Follower(load_settings(), rq_redis(local.redis_url), task, None, io.StringIO(),
                        io.StringIO(), 0.0)  # fmt: skip
    text, status = summary(follower.follow())
    assert status == 0 and "verdict: approve" in text
