"""Per-tier queues: routing moves a task to its tier, and a worker takes only its tiers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from rq import Queue, Worker
from rq.job import Job
from rq.serializers import JSONSerializer

from bot.cli import main
from bot.local_repo import recorded
from bot.queue import EVENTS, REVIEWS, TASKS, rq_redis, tier_queue
from pipeline.messages import STATUS_MARKER
from pipeline.models import TaskState
from tests.test_end_to_end import _approves, _writes_greet
from tests.test_local_mode import Local, local  # noqa: F401 - the fixture
from tests.world import World, stop_worker, wait_for

ROOT = Path(__file__).resolve().parents[1]


def test_a_new_task_is_routed_onto_its_tiers_queue(world: World) -> None:
    number = world.issue("Add greet()", "Add a function `greet()` returning 'Hello'.")
    world.openai.script("qwen3-235b", _writes_greet())
    world.anthropic.script("claude-haiku-5-5", _approves())
    world.label(number)
    world.work()
    task = world.store.recent(1)[0]
    assert task.progress.tier == 1 and task.progress.state is TaskState.PR_OPEN
    redis = rq_redis(world.redis_url)
    routed = Job.fetch(f"task-{task.id}-1", connection=redis, serializer=JSONSerializer)
    assert routed.origin == TASKS and routed.return_value() == "routed to tier 1"
    ran = Job.fetch(f"task-{task.id}-1-tier-1", connection=redis, serializer=JSONSerializer)
    assert ran.origin == tier_queue(1) and ran.return_value() == "reviewing"


@contextmanager
def _worker(*args: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "worker", *args],
        cwd=ROOT,
        env=dict(os.environ),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        stop_worker(proc)


def _enqueue(slug: str, tier: int, project: Local, capsys: pytest.CaptureFixture[str]) -> str:
    spec = f"Add greet() ({slug})\n\nAdd a function `greet()` returning 'Hello'."
    args = ["--repo", str(project.repo), "--spec", spec, "--spec-slug", slug, "--tier", str(tier)]
    assert main(["enqueue", *args, "--detach"]) == 0
    return capsys.readouterr().out.strip()


def test_a_tier_1_worker_leaves_tier_2_tasks_to_a_tier_2_worker(
    local: Local,  # noqa: F811 - the fixture
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[worker]\nunserved_tier_notice_s = 10\n")
    monkeypatch.setenv("FEATURE_CREW_CONFIG", str(config))
    local.openai.script("qwen3-235b", _writes_greet())
    local.anthropic.script("claude-sonnet-5-5", _writes_greet())
    local.anthropic.script("claude-haiku-5-5", _approves() * 2)
    small, big = _enqueue("one", 1, local, capsys), _enqueue("two", 2, local, capsys)
    redis, store = rq_redis(local.redis_url), local.store
    with _worker("--tiers", "1"):
        wait_for(lambda: store.require(small).progress.state is TaskState.PR_OPEN, timeout=120)
        queues = sorted(sorted(w.queue_names()) for w in Worker.all(connection=redis))
        assert queues == [[EVENTS], [EVENTS, REVIEWS, TASKS, tier_queue(1)]]

        # Nobody takes tier 2: after the configured wait its status says so, and it waits.
        def statuses() -> list[str]:
            comments = recorded(redis, big)["comments"]
            return [c["body"] for c in comments if STATUS_MARKER in c["body"]]

        # The notice is stored first, then posted: wait for the comment, not the field.
        wait_for(lambda: store.require(big).progress.notice is not None, timeout=120)
        wait_for(statuses, timeout=60)
        assert store.require(big).progress.state is TaskState.QUEUED
        waiting = Queue(tier_queue(2), connection=redis, serializer=JSONSerializer)
        assert waiting.get_job_ids() == [f"task-{big}-1"]
        (status,) = statuses()
        assert "no worker takes tier 2 tasks" in status and "--tiers 2" in status
        with _worker("--tiers", "2"):
            wait_for(lambda: store.require(big).progress.state is TaskState.PR_OPEN, timeout=120)
    done = store.require(big)
    assert done.progress.tier == 2 and done.progress.model == "claude-sonnet-5-5"
    assert done.progress.notice is None
    assert local.openai.remaining("qwen3-235b") == 0
