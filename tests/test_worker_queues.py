"""A worker told to leave the events and reviews queues takes only its tiers' tasks."""

from __future__ import annotations

import pytest
from rq import Queue, Worker
from rq.serializers import JSONSerializer

from bot.queue import EVENTS, REVIEWS, TASKS, rq_redis, tier_queue
from pipeline.models import TaskState
from tests.test_end_to_end import _approves, _writes_greet
from tests.test_local_mode import Local, local  # noqa: F401 - the fixture
from tests.test_tiers import _enqueue, _worker
from tests.world import wait_for


def test_a_tasks_only_worker_leaves_events_and_reviews_to_another(
    local: Local,  # noqa: F811 - the fixture
    capsys: pytest.CaptureFixture[str],
) -> None:
    local.openai.script("qwen3-235b", _writes_greet())
    local.anthropic.script("claude-haiku-5-5", _approves())
    redis, store = rq_redis(local.redis_url), local.store
    events = Queue(EVENTS, connection=redis, serializer=JSONSerializer)
    events.enqueue("bot.jobs.forget_repositories", [987654], job_id="forget-probe")
    task = _enqueue("solo", 1, local, capsys)
    with _worker("--tiers", "1", "--no-events", "--no-reviews"):
        # It generates and audits, then the review waits for a worker that takes reviews.
        wait_for(lambda: store.require(task).progress.state is TaskState.REVIEWING, timeout=120)
        (names,) = [sorted(w.queue_names()) for w in Worker.all(connection=redis)]
        assert names == [TASKS, tier_queue(1)]
        reviews = Queue(REVIEWS, connection=redis, serializer=JSONSerializer)
        wait_for(lambda: reviews.count == 1, timeout=60)
        assert events.get_job_ids() == ["forget-probe"]  # untouched
        assert local.anthropic.remaining("claude-haiku-5-5") == 1
        with _worker("--tiers", "2"):
            wait_for(lambda: store.require(task).progress.state is TaskState.PR_OPEN, timeout=120)
            wait_for(lambda: events.count == 0, timeout=60)
    assert local.openai.remaining("qwen3-235b") == 0
