"""RQ queues and the enqueue calls: JSON serializer, explicit timeouts, stable job ids.

Tasks wait on their tier's queue, so a worker can take only the tiers its machine serves.
A task whose tier is not known yet (a new issue) waits on the routing queue, which every
worker takes: the job routes it (no model call) and moves it to its tier's queue.
"""

from __future__ import annotations

import json
import logging
import re
import zlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis
from redis.asyncio import BlockingConnectionPool
from redis.asyncio import Redis as AsyncRedis
from rq import Callback, Queue, Retry
from rq.exceptions import DuplicateJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from rq.utils import get_call_string, now, utcformat

from bot.store import TaskStore
from pipeline.config import WorkerConfig

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
_HANDLE_DELIVERY = "bot.jobs.handle_delivery"
_OWN_FIELDS = ("data", "description", "created_at", "enqueued_at")


def rq_redis(url: str) -> Redis:
    """A client for RQ: bytes responses, short connect timeout so a dead Redis answers fast."""
    return Redis.from_url(
        url,
        decode_responses=False,
        socket_connect_timeout=2,
        socket_timeout=10,
        health_check_interval=30,
    )


def async_redis(url: str) -> AsyncRedis:
    """The same client settings, for the web process's event loop, on a few connections.

    Unbounded, the pool opens one connection per request in flight (64 at 64 concurrent
    deliveries), which cost ~0.1 ms more CPU per delivery than sharing four; a request
    waits at most 5 s for one (GitHub gives 10), then gets a 503 and can be redelivered.
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=4,
        timeout=5,
        decode_responses=False,
        socket_connect_timeout=2,
        socket_timeout=10,
        health_check_interval=30,
    )
    return AsyncRedis(connection_pool=pool)


def _safe_id(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text)


def delivery_job_id(delivery_id: str) -> str:
    return _safe_id(f"event-{delivery_id}")


class TaskQueue:
    """The app's three queues on one connection."""

    def __init__(self, redis: Redis, worker: WorkerConfig) -> None:
        self.redis = redis
        self.worker = worker
        self.queues = {
            name: Queue(name, connection=redis, serializer=JSONSerializer) for name in ALL_QUEUES
        }
        self._delivery_fixed: str | None = None

    def delivery_job(self, delivery_id: str) -> Job:
        """The job that handles one delivery, as RQ builds it (not saved)."""
        job = self.queues[EVENTS].create_job(
            _HANDLE_DELIVERY,
            args=(delivery_id,),
            job_id=delivery_job_id(delivery_id),
            timeout=self.worker.delivery_timeout_s,
            result_ttl=RESULT_TTL_S,
            failure_ttl=FAILURE_TTL_S,
            retry=Retry(max=3, interval=[5, 30, 120]),
            on_failure=_ON_FAILURE,
            status=JobStatus.QUEUED,
        )
        job.enqueued_at = now()
        return job

    def delivery_job_hash(self, delivery_id: str) -> dict[str, bytes | str]:
        """The hash RQ would save for delivery_job(delivery_id), from a template built once."""
        fixed, own = self.delivery_job_parts(delivery_id)
        return {**json.loads(fixed), **own}

    def delivery_job_parts(self, delivery_id: str) -> tuple[str, dict[str, bytes | str]]:
        """That hash as (the fields every delivery job shares, as JSON; this job's own fields).

        RQ's Job.create + to_dict cost more than the rest of the webhook route, and every
        field sent to Redis costs more again: only the call, its description and the
        timestamps differ from one delivery to the next.
        """
        if self._delivery_fixed is None:
            template = self.delivery_job("template").to_dict()
            # Strings as they are (a str enum as its value, as redis-py sends it), numbers as text.
            fixed = {k: v if isinstance(v, str) else str(v) for k, v in template.items()
                     if v != "" and k not in _OWN_FIELDS}  # fmt: skip
            self._delivery_fixed = json.dumps(fixed)
        args = (delivery_id,)
        stamp = utcformat(now())
        call: bytes = JSONSerializer.dumps((_HANDLE_DELIVERY, None, args, {}))  # type: ignore[no-untyped-call]
        return self._delivery_fixed, {
            "data": zlib.compress(call),
            "description": str(get_call_string(_HANDLE_DELIVERY, args, {}, max_length=75)),
            "created_at": stamp,
            "enqueued_at": stamp,
        }

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
            Retry(max=2, interval=[10, 300]),  # the first also re-runs a killed worker's job
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

    def enqueue_review(self, task_id: str, head_sha: str, round_key: str = "") -> str:
        """`round_key` tells a review resumed after a budget wait from the first one."""
        suffix = f"-{round_key}" if round_key else ""
        return self._enqueue_unique(
            REVIEWS,
            "bot.jobs.review_task",
            (task_id, head_sha),
            _safe_id(f"review-{task_id}-{head_sha[:12]}{suffix}"),
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

    def enqueue_branch_update(self, task_id: str, request_id: str, delay_s: float) -> str:
        """Bring a PR's branch onto its moved base after `delay_s`; one job per request."""
        at = datetime.now(UTC) + timedelta(seconds=delay_s) if delay_s > 0 else None
        return self._enqueue_unique(
            TASKS,
            "bot.jobs.update_branch",
            (task_id, request_id),
            _safe_id(f"update-{task_id}-{request_id}"),
            self.worker.task_timeout_s,
            Retry(max=3, interval=[30, 120, 300]),
            at=at,
        )

    def enqueue_tidy(self, at: datetime | None = None) -> str:
        """The retention pass, once per UTC day whoever asks for it."""
        day = (at or datetime.now(UTC)).strftime("%Y%m%d")
        return self._enqueue_unique(
            TASKS,
            "bot.jobs.tidy",
            (),
            f"tidy-{day}",
            self.worker.task_timeout_s,
            Retry(max=2, interval=[60, 600]),
            at=at,
        )

    def enqueue_forget_repositories(self, repo_ids: list[int], key: str) -> str:
        return self._enqueue_unique(
            EVENTS,
            "bot.jobs.forget_repositories",
            (repo_ids,),
            _safe_id(f"forget-{key}"),
            self.worker.delivery_timeout_s,
            Retry(max=3, interval=[5, 30, 120]),
        )

    def _enqueue_unique(  # noqa: PLR0913 - RQ's enqueue options, one per knob, private
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
