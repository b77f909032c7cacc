"""The `worker` process: an RQ worker with its scheduler on its tiers' queues, plus sidecars.

A task can hold a worker for many minutes. Deliveries (a new label's 👀, a cancel) must not
wait behind it, so the process also forks a second RQ worker that takes only the events queue
(unless told to leave it), and a watcher that tells tasks waiting on a tier no live worker
takes and sweeps the mirrors of uninstalled repositories.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import signal
import time
from collections.abc import Sequence

from rq import Queue
from rq.serializers import JSONSerializer

# Loaded before the horses fork: every job builds the App's client, and each horse imported
# githubkit afresh (~40 ms of CPU per job, several jobs per task).
import bot.github  # noqa: F401
from bot import jobs
from bot.backends import Backends
from bot.forgotten import sweep_forgotten
from bot.hardening import PR_SET_PDEATHSIG, make_non_dumpable, prctl
from bot.horse import PreforkWorker
from bot.queue import ALL_QUEUES, EVENTS, REVIEWS, TIERS, queues_for, rq_redis
from bot.settings import Settings
from bot.telemetry import init_sentry
from bot.tiers import notice_unserved_tiers
from pipeline import sandbox
from pipeline.workspace import Workspace, ignore_user_git_config

log = logging.getLogger(__name__)
HEARTBEAT_S = 10


def build_worker(
    settings: Settings, *, queues: Sequence[str] = ALL_QUEUES, name: str | None = None
) -> PreforkWorker:
    redis = rq_redis(settings.env.redis_url)
    # Every job runs in a forked horse, whose first Redis call opens a new connection (the
    # parent's is not shared across a fork). Without these, that connection reads redis-py's
    # package metadata and sends two CLIENT SETINFO first: ~3 ms of a job's pickup, measured.
    # (driver_info=None is redis-py's way to say so; lib_name/lib_version are deprecated.)
    redis.connection_pool.connection_kwargs["driver_info"] = None
    # Each job's horse is forked before the job arrives, not after it is dequeued (bot/horse.py).
    return PreforkWorker(
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
    prctl(PR_SET_PDEATHSIG, signal.SIGTERM)  # never outlive the main worker
    build_worker(settings, queues=(EVENTS,), name=f"{parent_name}-events").work()


def _watch_unserved_tiers(settings: Settings) -> None:
    prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    redis = rq_redis(settings.env.redis_url)
    pause = max(5, min(60, settings.config.worker.unserved_tier_notice_s // 4))
    while True:
        try:
            notice_unserved_tiers(settings, redis)
            sweep_forgotten(redis, Workspace(settings.env.home))
        except Exception:  # the watcher must outlive a Redis blip
            log.exception("unserved-tier watch failed; trying again")
        time.sleep(pause)


def run_worker(
    settings: Settings, tiers: Sequence[int] = TIERS, *, events: bool = True, reviews: bool = True
) -> None:
    make_non_dumpable()  # generated code runs as our user during the audit
    ignore_user_git_config(settings.env.home / "no-git-config")
    init_sentry(settings, process="worker")
    jobs.configure(settings)
    settings.env.home.mkdir(parents=True, exist_ok=True)
    skipped = {EVENTS} if not events else set()
    skipped |= {REVIEWS} if not reviews else set()
    queues = tuple(q for q in queues_for(tiers) if q not in skipped)
    worker = build_worker(settings, queues=queues)
    sweep_forgotten(worker.connection, Workspace(settings.env.home))  # uninstalled meanwhile
    # Retention runs daily; each pass queues the next, this one starts the chain (once a day).
    Backends.on(worker.connection, settings).queue.enqueue_tidy()
    sandbox.probe_before_forking()
    # Every job runs in a forked horse (the sidecar's too): keep what is loaded by now out of
    # the collector, so a horse's full collection does not write to, and so copy, every page it
    # inherited (measured: 477 ms in a fork of a 143 MB parent, 5 ms frozen).
    gc.freeze()
    fork = multiprocessing.get_context("fork")
    sidecars = [fork.Process(target=_watch_unserved_tiers, args=(settings,), name="fc-tier-watch")]
    if events:
        events_args = (settings, worker.name)
        sidecars.append(fork.Process(target=_run_events_worker, args=events_args, name="fc-events"))
    for sidecar in sidecars:
        sidecar.start()
    extra = " (+ events sidecar)" if events else ""
    log.info("worker %s listening on %s%s", worker.name, ", ".join(queues), extra)
    try:
        worker.work(with_scheduler=True)
    finally:
        for sidecar in sidecars:
            sidecar.terminate()
            sidecar.join(timeout=30)
