"""The `worker` process: one RQ worker with its scheduler on every queue the app uses."""

from __future__ import annotations

import logging

from rq import Queue, Worker
from rq.serializers import JSONSerializer

from bot import jobs
from bot.queue import ALL_QUEUES, rq_redis
from bot.settings import Settings
from bot.telemetry import init_sentry

log = logging.getLogger(__name__)


def build_worker(settings: Settings, *, name: str | None = None) -> Worker:
    redis = rq_redis(settings.env.redis_url)
    queues = [Queue(q, connection=redis, serializer=JSONSerializer) for q in ALL_QUEUES]
    return Worker(
        queues,
        connection=redis,
        serializer=JSONSerializer,
        name=name,
        # Abandoned jobs (a killed worker) are found by this maintenance pass: keep it short.
        maintenance_interval=settings.config.worker.maintenance_interval_s,
    )


def run_worker(settings: Settings) -> None:
    init_sentry(settings, process="worker")
    jobs.configure(settings)
    settings.env.home.mkdir(parents=True, exist_ok=True)
    worker = build_worker(settings)
    log.info("worker %s listening on %s", worker.name, ", ".join(ALL_QUEUES))
    worker.work(with_scheduler=True)
