"""The worker's horse is forked before its job arrives: real worker processes on a real Redis.

Each test starts `build_worker(...).work()` in a process of its own, as `feature-crew worker`
does, on a queue of its own, and finds the worker's idle horse among its children.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from rq import Queue, Retry, Worker
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from bot.follow import BurstWorker
from bot.horse import PreforkWorker
from bot.queue import rq_redis
from tests.sockets import blocked_sockets, sockets_of
from tests.world import wait_for

ROOT = Path(__file__).resolve().parents[1]
WORKER = (
    "import sys\n"
    "from bot.settings import load_settings\n"
    "from bot.worker import build_worker\n"
    "build_worker(load_settings(), queues=(sys.argv[1],)).work()\n"
)
# The worker, told to stop in the middle of forking its first spare: the signal arrives while
# the interpreter runs its after-fork callbacks in the parent (logging's among them).
STOPPED_WHILE_FORKING = (
    "import os, signal, sys\n"
    "def stop_once():\n"
    "    frames = sys._getframe()\n"
    "    while frames is not None and frames.f_code.co_name != '_fork_spare':\n"
    "        frames = frames.f_back\n"
    "    if frames is not None and not os.environ.get('STOPPED'):\n"
    "        os.environ['STOPPED'] = '1'\n"
    "        os.kill(os.getpid(), signal.SIGTERM)\n"
    "os.register_at_fork(after_in_parent=stop_once)\n"
) + WORKER


def _state(pid: int) -> str:
    """The process's state letter, "" when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return ""
    return stat.rsplit(")", 1)[1].split()[0]


def _running(pid: int) -> bool:
    return _state(pid) not in ("", "Z", "X")


def _live_where(field: int, value: int) -> list[int]:
    """The live processes whose /proc stat field (counted after the command) is value."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[field]) == value and fields[0] not in ("Z", "X"):
                    found.append(int(entry.name))
    return found


def _children(pid: int) -> list[int]:
    return _live_where(1, pid)  # ppid


def _in_session(session: int) -> list[int]:
    return _live_where(3, session)  # session id


# Deadlines, not timed assertions: a worker imports the whole pipeline before it starts, which
# took over a minute on this machine's two cores while other suites ran.
START_S = 240


def _spare(worker: subprocess.Popen[bytes], not_: int = 0) -> int:
    """The worker's one idle horse (waiting for it to be forked)."""
    wait_for(lambda: [p for p in _children(worker.pid) if p != not_], START_S)
    (spare,) = _children(worker.pid)
    return spare


@pytest.fixture
def queue(clean_env: None, redis_url: str) -> Queue:
    os.environ["REDIS_URL"] = redis_url  # clean_env's monkeypatch restores the environment
    # A queue of the test's own: no earlier test's worker, if one outlived its test, listens here.
    name = f"prefork-{uuid.uuid4().hex[:8]}"
    return Queue(name, connection=rq_redis(redis_url), serializer=JSONSerializer)


@pytest.fixture
def start_worker(queue: Queue) -> Iterator[type[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(code: str = WORKER) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-c", code, queue.name], cwd=ROOT,
                                env=dict(os.environ), start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        started.append(proc)
        return proc

    yield start  # type: ignore[misc]
    for proc in started:
        for pid in [*_children(proc.pid), proc.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=30)


def _finished(job: Job) -> bool:
    job.refresh()
    return job.is_finished or job.is_failed


def test_a_job_runs_in_the_horse_forked_before_it_came(queue: Queue, start_worker) -> None:
    worker = start_worker()
    spare = _spare(worker)
    job = queue.enqueue("tests.horse_jobs.pid")
    wait_for(lambda: _finished(job), START_S)
    assert job.is_finished and job.return_value() == spare
    # The next job gets a new horse: one job per process, as RQ's own horses.
    following = _spare(worker, not_=spare)
    second = queue.enqueue("tests.horse_jobs.pid")
    wait_for(lambda: _finished(second), START_S)
    assert second.return_value() == following != spare
    assert not _running(spare)


def test_a_job_timeout_still_ends_the_horse_and_fails_the_job(
    queue: Queue, start_worker, tmp_path: Path
) -> None:
    worker = start_worker()
    spare = _spare(worker)
    job = queue.enqueue("tests.horse_jobs.hold", str(tmp_path / "started"),
                        str(tmp_path / "never"), job_timeout=1)  # fmt: skip
    wait_for(lambda: _finished(job), START_S)
    assert job.is_failed
    result = job.latest_result()
    assert result is not None and "JobTimeoutException" in (result.exc_string or "")
    assert (tmp_path / "started").read_text() == str(spare)
    wait_for(lambda: not _running(spare), 30)
    assert worker.poll() is None  # the worker itself goes on


def test_a_killed_workers_job_is_recovered_by_maintenance(
    queue: Queue, start_worker, tmp_path: Path
) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    worker = start_worker()
    job = queue.enqueue("tests.horse_jobs.hold", str(started), str(release), retry=Retry(max=1))
    wait_for(started.exists, START_S)
    horse = int(started.read_text())
    os.kill(worker.pid, signal.SIGKILL)  # the worker, then its horse, as tests/test_kills.py
    os.kill(horse, signal.SIGKILL)
    worker.wait(timeout=30)
    # What the next maintenance pass does once the job's heartbeat lapsed.
    StartedJobRegistry(queue=queue).cleanup(timestamp=int(1e10))
    job.refresh()
    assert job.get_status() == "queued"
    release.touch()
    start_worker()
    wait_for(lambda: _finished(job), START_S)
    assert job.is_finished and job.return_value() != horse


def test_warm_shutdown_finishes_the_running_job_and_leaves_no_horse(
    queue: Queue, start_worker, tmp_path: Path
) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    worker = start_worker()
    job = queue.enqueue("tests.horse_jobs.hold", str(started), str(release))
    wait_for(started.exists, START_S)
    horse = int(started.read_text())
    assert _children(worker.pid) == [horse]  # no spare while a job runs
    worker.send_signal(signal.SIGTERM)
    wait_for(lambda: _shutdown_requested(queue), 30)
    assert job.get_status() == "started" and _running(horse)
    release.touch()
    assert worker.wait(timeout=60) == 0
    job.refresh()
    assert job.is_finished and job.return_value() == horse
    assert not _running(horse)


def test_stopping_an_idle_worker_ends_its_idle_horse(queue: Queue, start_worker) -> None:
    worker = start_worker()
    spare = _spare(worker)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0
    assert not _running(spare)


def test_a_stop_signal_during_the_spares_fork_still_stops_the_worker(
    queue: Queue, start_worker
) -> None:
    # Not deferred, RQ's handler ran inside logging's after-fork callback, which swallowed the
    # StopRequested it raised, and the worker went on waiting for jobs (a CI run's worker that
    # ignored its SIGTERM).
    worker = start_worker(STOPPED_WHILE_FORKING)
    assert worker.wait(timeout=START_S) == 0
    wait_for(lambda: not _in_session(worker.pid), 30)  # its spare went with it


def test_a_killed_workers_idle_horse_dies_with_it(queue: Queue, start_worker) -> None:
    worker = start_worker()
    spare = _spare(worker)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)
    wait_for(lambda: not _running(spare), 30)


def test_cold_shutdown_kills_the_running_horse(queue: Queue, start_worker, tmp_path: Path) -> None:
    started = tmp_path / "started"
    worker = start_worker()
    job = queue.enqueue("tests.horse_jobs.hold", str(started), str(tmp_path / "never"))
    wait_for(started.exists, START_S)
    horse = int(started.read_text())
    worker.send_signal(signal.SIGTERM)
    wait_for(lambda: _shutdown_requested(queue), 30)
    # RQ ignores a second signal within a second of the first (duplicate signals from pools).
    time.sleep(1.5)
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=60)
    wait_for(lambda: not _running(horse), 30)
    assert job.get_status() == "started"  # abandoned: maintenance recovers it as before


def _shutdown_requested(queue: Queue) -> bool:
    workers = Worker.all(queue=queue)
    return bool(workers) and workers[0].shutdown_requested_date is not None


def test_an_idle_horse_killed_from_outside_is_replaced(queue: Queue, start_worker) -> None:
    worker = start_worker()
    spare = _spare(worker)
    os.kill(spare, signal.SIGKILL)
    wait_for(lambda: not _running(spare), 30)
    job = queue.enqueue("tests.horse_jobs.pid")
    wait_for(lambda: _finished(job), START_S)
    assert job.is_finished and job.return_value() not in (spare, None)
    assert worker.poll() is None


def test_heartbeats_go_on_while_the_horse_runs_its_job(
    queue: Queue, start_worker, tmp_path: Path
) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    start_worker()
    job = queue.enqueue("tests.horse_jobs.hold", str(started), str(release))
    wait_for(started.exists, START_S)
    job.refresh()
    first = job.last_heartbeat
    assert first is not None
    # The worker beats for the job every HEARTBEAT_S (10 s) while its horse works.
    wait_for(lambda: job.refresh() or (job.last_heartbeat or first) > first, 60)
    release.touch()
    wait_for(lambda: _finished(job), START_S)
    assert job.is_finished


def test_the_idle_horse_does_not_hold_the_connection_its_worker_waits_for_jobs_on(
    queue: Queue, start_worker
) -> None:
    # A spare sharing that socket keeps it open after its worker is killed, until the spare
    # dies too; meanwhile Redis hands the next job to the dead worker's BLMOVE, and the job
    # sits in the intermediate queue (found in CI: a job that never started).
    worker = start_worker()
    spare = _spare(worker)
    wait_for(lambda: blocked_sockets(queue.connection, [worker.pid]), START_S)
    (blocked,) = blocked_sockets(queue.connection, [worker.pid])
    assert blocked not in sockets_of(spare)


def _waiting_for_a_subscription(thread: threading.Thread, event: threading.Event) -> bool:
    frame = sys._current_frames().get(thread.ident or 0)
    while frame is not None:
        if frame.f_code.co_name == "wait" and frame.f_locals.get("self") is event:
            return True
        frame = frame.f_back
    return False


@pytest.mark.parametrize("worker_class", [PreforkWorker, BurstWorker])
def test_a_stopping_worker_does_not_wait_out_its_pubsub_threads_sleep(
    queue: Queue, worker_class: type[Worker]
) -> None:
    # redis-py 8.2's PubSubWorkerThread.stop() waits for the thread; RQ calls it after
    # UNSUBSCRIBE, and a thread that read the reply first waited for a new subscription for
    # RQ's 60 s sleep_time (a CI run's worker that took over a minute to stop).
    worker = worker_class([queue], connection=queue.connection, serializer=JSONSerializer)
    worker.subscribe()
    pubsub, thread = worker.pubsub, worker.pubsub_thread
    wait_for(lambda: pubsub.subscribed, 30)
    send = pubsub.unsubscribe

    def unsubscribe_and_let_the_thread_read_the_reply(*args: object) -> object:
        sent = send(*args)
        # The losing side of the race, made certain: the thread reads the reply before the
        # stop flag goes down (or, with the flag already down, ends).
        wait_for(lambda: not thread.is_alive()
                 or _waiting_for_a_subscription(thread, pubsub.subscribed_event), 30)  # fmt: skip
        return sent

    pubsub.unsubscribe = unsubscribe_and_let_the_thread_read_the_reply
    stopped = threading.Event()
    threading.Thread(target=lambda: (worker.unsubscribe(), stopped.set()), daemon=True).start()
    assert stopped.wait(timeout=30)  # a deadline half the sleep_time the old code waited out
    assert not thread.is_alive()
