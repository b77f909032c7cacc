"""The worker's Redis connections: a forked horse's new connection skips the client-name chatter."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import redis
from rq import Queue
from rq.serializers import JSONSerializer

from bot.queue import TASKS, rq_redis
from bot.worker import build_worker
from tests.helpers import settings_with
from tests.sockets import blocked_sockets, sockets_of
from tests.world import World, descendants, wait_for


def test_a_jobs_horse_opens_its_connection_without_client_setinfo(
    clean_env: None, redis_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = settings_with(monkeypatch, {"REDIS_URL": redis_url}, tmp_path=tmp_path)
    worker = build_worker(settings, queues=(TASKS,))
    queue = Queue(TASKS, connection=worker.connection, serializer=JSONSerializer)
    job = queue.enqueue("bench.noop.noop")
    seen: list[str] = []
    watching = threading.Event()

    def watch() -> None:
        with redis.Redis.from_url(redis_url).monitor() as monitor:
            watching.set()
            for command in monitor.listen():
                seen.append(str(command["command"]))
                if "SHUTDOWN-PROBE" in seen[-1]:
                    return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    watching.wait(10)
    worker.work(burst=True)  # forks a horse for the job, as `feature-crew worker` does
    redis.Redis.from_url(redis_url).echo("SHUTDOWN-PROBE")
    watcher.join(10)
    job.refresh()
    assert job.is_finished
    assert any("HSET" in c and "started_at" in c for c in seen)  # the horse's own writes
    # A Redis older than 7.2 refuses SETINFO, and MONITOR shows no refused command: the
    # connection's own settings say it too.
    assert not [c for c in seen if c.upper().startswith("CLIENT SETINFO")]
    kwargs = worker.connection.connection_pool.connection_kwargs
    assert kwargs["driver_info"] is None


def test_no_other_process_holds_a_connection_a_worker_waits_for_jobs_on(world: World) -> None:
    # A worker's sidecars and idle horses are forks: one holding the socket its worker
    # blocks on keeps that BLMOVE alive after the worker is killed, and Redis hands the
    # next job to it (the job then sits in the dead worker's intermediate queue).
    # The idle horses of both the main worker and its events sidecar are in the tree.
    redis = rq_redis(world.redis_url)
    with world.worker_process() as worker:
        # The main worker on its tiers' queues, its events sidecar on the events queue.
        wait_for(
            lambda: len(blocked_sockets(redis, [worker.pid, *descendants(worker.pid)])) == 2, 120
        )
        tree = [worker.pid, *descendants(worker.pid)]
        for blocked in blocked_sockets(redis, tree):
            holders = [pid for pid in tree if blocked in sockets_of(pid)]
            assert len(holders) == 1, f"socket {blocked} held by {holders}"
