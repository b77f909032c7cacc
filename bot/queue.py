"""RQ queues and the enqueue calls: JSON serializer, explicit timeouts, stable job ids.

Tasks wait on their tier's queue, so a worker can take only the tiers its machine serves.
A task whose tier is not known yet (a new issue) waits on the routing queue, which every
worker takes: the job routes it (no model call) and moves it to its tier's queue.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from redis import Redis
from redis.client import Pipeline
from rq import Callback, Queue, Retry
from rq.exceptions import DuplicateJobError
from rq.serializers import JSONSerializer

from bot.config import WorkerConfig
from bot.store import TaskStore

log = logging.getLogger(__name__)

EVENTS = "feature-crew-events"
REVIEWS = "feature-crew-reviews"
TASKS = "feature-crew-tasks"  # tasks not routed yet
TIERS = (1, 2, 3)
_TIER_SUFFIX = re.compile(r"-tier-[0-9]+$")


def tier_queue(tier: int) -> str:
    return f"{TASKS}-tier-{tier}"


def queues_for(tiers: Iterable[int]) -> tuple[str, ...]:
    """What a worker for these tiers takes, in its order of priority (routing is instant)."""
    return (EVENTS, REVIEWS, TASKS, *(tier_queue(t) for t in sorted(set(tiers))))


ALL_QUEUES = queues_for(TIERS)

RESULT_TTL_S = 24 * 3600
FAILURE_TTL_S = 7 * 24 * 3600
_ON_FAILURE = Callback("bot.jobs.on_job_failure")


def rq_redis(url: str) -> Redis:
    """A client for RQ: bytes responses, short connect timeout so a dead Redis answers fast."""
    return Redis.from_url(
        url,
        decode_responses=False,
        socket_connect_timeout=2,
        socket_timeout=10,
        health_check_interval=30,
    )


def _safe_id(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text)


class TaskQueue:
    """The app's three queues on one connection."""

    def __init__(self, redis: Redis, worker: WorkerConfig) -> None:
        self.redis = redis
        self.worker = worker
        self.queues = {
            name: Queue(name, connection=redis, serializer=JSONSerializer) for name in ALL_QUEUES
        }

    def enqueue_delivery(self, delivery_id: str, pipeline: Pipeline | None = None) -> str:
        job_id = _safe_id(f"event-{delivery_id}")
        self.queues[EVENTS].enqueue_call(
            "bot.jobs.handle_delivery",
            args=(delivery_id,),
            job_id=job_id,
            timeout=self.worker.delivery_timeout_s,
            result_ttl=RESULT_TTL_S,
            failure_ttl=FAILURE_TTL_S,
            retry=Retry(max=3, interval=[5, 30, 120]),
            on_failure=_ON_FAILURE,
            pipeline=pipeline,
        )
        return job_id

    def enqueue_task(
        self,
        task_id: str,
        attempt_key: str = "1",
        at: datetime | None = None,
        tier: int | None = None,
    ) -> str:
        """On the tier's queue when the tier is known (given, routed before, or a label)."""
        tier = tier or self._known_tier(task_id)
        return self._enqueue_unique(
            tier_queue(tier) if tier else TASKS,
            "bot.jobs.run_task",
            (task_id,),
            _safe_id(f"task-{task_id}-{attempt_key}"),
            self.worker.task_timeout_s,
            Retry(max=2, interval=[30, 300]),
            at=at,
        )

    def move_to_tier(self, task_id: str, tier: int, job_id: str) -> str:
        """The routed job again, on its tier's queue; the same job moved twice is queued once."""
        return self._enqueue_unique(
            tier_queue(tier),
            "bot.jobs.run_task",
            (task_id,),
            _safe_id(f"{_TIER_SUFFIX.sub('', job_id)}-tier-{tier}"),
            self.worker.task_timeout_s,
            Retry(max=2, interval=[30, 300]),
        )

    def _known_tier(self, task_id: str) -> int | None:
        record = TaskStore(self.redis).get(task_id)
        if record is None:
            return None
        return record.progress.tier or record.spec.tier_override

    def enqueue_next_attempt(self, task_id: str, attempts_so_far: int) -> str:
        """One job per attempt number: a second request for the same attempt joins the first."""
        return self.enqueue_task(task_id, attempt_key=f"attempt-{attempts_so_far + 1}")

    def enqueue_review(self, task_id: str, head_sha: str) -> str:
        return self._enqueue_unique(
            REVIEWS,
            "bot.jobs.review_task",
            (task_id, head_sha),
            _safe_id(f"review-{task_id}-{head_sha[:12]}"),
            self.worker.review_timeout_s,
            Retry(max=2, interval=[15, 120]),
        )

    def enqueue_merge(self, task_id: str, head_sha: str) -> str:
        return self._enqueue_unique(
            REVIEWS,
            "bot.jobs.merge_task",
            (task_id, head_sha),
            _safe_id(f"merge-{task_id}-{head_sha[:12]}"),
            self.worker.review_timeout_s,
            Retry(max=2, interval=[15, 120]),
        )

    def _enqueue_unique(
        self,
        queue: str,
        func: str,
        args: tuple[Any, ...],
        job_id: str,
        timeout: int,
        retry: Retry,
        at: datetime | None = None,
    ) -> str:
        options: dict[str, Any] = {
            "job_id": job_id,
            "job_timeout": timeout,
            "result_ttl": RESULT_TTL_S,
            "failure_ttl": FAILURE_TTL_S,
            "retry": retry,
            "on_failure": _ON_FAILURE,
            "unique": True,
        }
        try:
            if at is None:
                self.queues[queue].enqueue(func, *args, **options)
            else:
                self.queues[queue].enqueue_at(at, func, *args, **options)
        except DuplicateJobError:
            log.info("job %s already queued or ran; not enqueued again", job_id)
        return job_id

    def depths(self) -> dict[str, int]:
        return {name: q.count for name, q in self.queues.items()}
