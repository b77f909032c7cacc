"""Telling that a followed task's job is gone: no queue, schedule or worker holds any of it.

A job deleted by hand, lost with a flushed Redis, or dropped with a worker that died before
it could be recovered leaves its task in a working state that nothing will ever move on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis import Redis
from rq import Queue
from rq.job import Job
from rq.registry import DeferredJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer

from bot.queue import ALL_QUEUES
from pipeline.models import TaskRecord


def is_task_job(job_id: str, task_id: str) -> bool:
    return job_id.startswith((f"task-{task_id}-", f"review-{task_id}-"))


def pending_job(redis: Redis, task_id: str) -> bool:
    """True while a job of the task waits, is scheduled or deferred, or runs somewhere."""
    for name in ALL_QUEUES:
        queue = Queue(name, connection=redis, serializer=JSONSerializer)
        ids = [
            *queue.get_job_ids(),
            *ScheduledJobRegistry(queue=queue).get_job_ids(),  # type: ignore[no-untyped-call]
            *StartedJobRegistry(queue=queue).get_job_ids(),
            *DeferredJobRegistry(queue=queue).get_job_ids(),
        ]
        if any(is_task_job(j, task_id) and redis.exists(Job.key_for(j)) for j in ids):
            return True
    return False


def vanished_reason(task_id: str) -> str:
    return (
        f"task {task_id}'s job is gone from Redis (deleted, flushed, or lost with its worker) "
        "and nothing will run it; enqueue it again"
    )


@dataclass
class VanishWatch:
    """A task counts as vanished once it has had no job and no change for `grace_s`."""

    grace_s: float
    seen: str = ""
    since: float | None = None

    def vanished(self, redis: Redis, record: TaskRecord) -> bool:
        snapshot = record.model_dump_json()
        if snapshot != self.seen or pending_job(redis, record.id):
            # Between one job's end and its follow-up's queueing there is a moment with
            # neither: only a lasting absence, with the record standing still, counts.
            self.seen, self.since = snapshot, None
            return False
        now = time.monotonic()
        if self.since is None:
            self.since = now
        return now - self.since >= self.grace_s
