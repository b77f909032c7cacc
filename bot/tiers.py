"""Who serves which tier: live workers per queue, and the notice on tasks no worker takes."""

from __future__ import annotations

import logging
import os
import socket
import time
from datetime import UTC, datetime

from redis import Redis
from rq import Queue, Worker
from rq.serializers import JSONSerializer
from rq.worker import BaseWorker

from bot.backends import Backends
from bot.queue import TIERS, tier_queue
from bot.settings import Settings
from pipeline.models import TaskRecord, TaskState

log = logging.getLogger(__name__)


def _alive(worker: BaseWorker, host: str) -> bool:
    # A worker killed outright stays registered until its key expires (minutes): on this
    # machine its pid tells at once.
    if worker.hostname != host or not worker.pid:
        return True
    try:
        os.kill(worker.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_listeners(redis: Redis, queue_name: str) -> list[str]:
    """Names of the live workers that take jobs from this queue."""
    host = socket.gethostname()
    return [
        str(w.name)
        for w in Worker.all(connection=redis)
        if queue_name in w.queue_names() and _alive(w, host)
    ]


def _waited_s(enqueued_at: datetime | None, now: float) -> float:
    if enqueued_at is None:
        return 0.0
    at = enqueued_at if enqueued_at.tzinfo else enqueued_at.replace(tzinfo=UTC)
    return now - at.timestamp()


def notice_unserved_tiers(settings: Settings, redis: Redis, now: float | None = None) -> list[str]:
    """Tasks waiting longer than the configured time on a tier nobody serves say so, once."""
    now = time.time() if now is None else now
    wait = settings.config.worker.unserved_tier_notice_s
    backends, noticed = Backends.on(redis, settings), []
    store = backends.store
    for tier in TIERS:
        name = tier_queue(tier)
        queue = Queue(name, connection=redis, serializer=JSONSerializer)
        if not queue.count or live_listeners(redis, name):
            continue
        for job in queue.get_jobs():
            record = store.get(str((job.args or ("",))[0]))
            if record is None or _waited_s(job.enqueued_at, now) < wait:
                continue
            if record.progress.state is not TaskState.QUEUED or record.progress.notice:
                continue
            note = (
                f"no worker takes tier {tier} tasks (queue `{name}`) and this one has waited "
                f"{wait // 60} min; start one with `feature-crew worker --tiers {tier}`"
            )
            _say(settings, backends, store.update(record.id, notice=note))
            noticed.append(record.id)
    return noticed


def _say(settings: Settings, backends: Backends, record: TaskRecord) -> None:
    try:
        ctx = backends.context(settings)
        ctx.reporter(ctx.repo(record)).refresh(record)
    except Exception:  # best effort: forget the notice so the next pass posts it again
        log.exception("could not post the unserved-tier notice of %s", record.id)
        backends.store.update(record.id, notice=None)
