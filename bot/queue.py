"""RQ queues and the enqueue calls: JSON serializer, explicit timeouts, stable job ids."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis
from redis.client import Pipeline
from rq import Callback, Queue, Retry
from rq.exceptions import DuplicateJobError
from rq.serializers import JSONSerializer

from bot.config import WorkerConfig

log = logging.getLogger(__name__)

EVENTS = "feature-crew-events"
REVIEWS = "feature-crew-reviews"
TASKS = "feature-crew-tasks"
ALL_QUEUES = (EVENTS, REVIEWS, TASKS)  # a worker takes them in this order of priority

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

    def enqueue_task(self, task_id: str, attempt_key: str = "1", at: datetime | None = None) -> str:
        return self._enqueue_unique(
            TASKS,
            "bot.jobs.run_task",
            (task_id,),
            _safe_id(f"task-{task_id}-{attempt_key}"),
            self.worker.task_timeout_s,
            Retry(max=2, interval=[10, 300]),  # the first also re-runs a killed worker's job
            at=at,
        )

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
