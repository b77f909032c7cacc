"""The `worker` process: an RQ worker with its scheduler on every queue, plus an events sidecar.

A task can hold a worker for many minutes. Deliveries (a new label's 👀, a cancel) must not
wait behind it, so the process also forks a second RQ worker that takes only the events queue.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import signal
from collections.abc import Sequence

from rq import Queue, Worker
from rq.serializers import JSONSerializer

from bot import jobs
from bot.queue import ALL_QUEUES, EVENTS, TaskQueue, rq_redis
from bot.settings import Settings
from bot.telemetry import init_sentry

log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
HEARTBEAT_S = 10


def _prctl(option: int, value: int) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: nothing to harden
        log.debug("prctl(%s) unavailable", option)


def build_worker(
    settings: Settings, *, queues: Sequence[str] = ALL_QUEUES, name: str | None = None
) -> Worker:
    redis = rq_redis(settings.env.redis_url)
    return Worker(
        [Queue(q, connection=redis, serializer=JSONSerializer) for q in queues],
        connection=redis,
        serializer=JSONSerializer,
        name=name,
        # A killed worker's job counts as abandoned once its heartbeat lapses (this interval
        # + 60 s), and is found by the next maintenance pass: together, recovery in < 2 min.
        maintenance_interval=settings.config.worker.maintenance_interval_s,
        job_monitoring_interval=HEARTBEAT_S,
        # An idle worker waits in one BLPOP of worker_ttl - 15 s (405 s by default) between
        # maintenance passes: keep that wait no longer than the maintenance interval.
        worker_ttl=settings.config.worker.maintenance_interval_s + 15,
    )


def _run_events_worker(settings: Settings, parent_name: str) -> None:
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)  # never outlive the main worker
    build_worker(settings, queues=(EVENTS,), name=f"{parent_name}-events").work()


def run_worker(settings: Settings) -> None:
    init_sentry(settings, process="worker")
    jobs.configure(settings)
    settings.env.home.mkdir(parents=True, exist_ok=True)
    # Generated code runs under this user during the audit: keep our /proc (environment,
    # memory) unreadable to it.
    _prctl(_PR_SET_DUMPABLE, 0)
    worker = build_worker(settings)
    # Retention runs daily; each pass queues the next, this one starts the chain (once a day).
    TaskQueue(worker.connection, settings.config.worker).enqueue_tidy()
    sidecar = multiprocessing.get_context("fork").Process(
        target=_run_events_worker, args=(settings, worker.name), name="feature-crew-events"
    )
    sidecar.start()
    log.info("worker %s listening on %s (+ events sidecar)", worker.name, ", ".join(ALL_QUEUES))
    try:
        worker.work(with_scheduler=True)
    finally:
        sidecar.terminate()
        sidecar.join(timeout=30)
