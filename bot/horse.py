"""Job horses forked in advance, so a job's pickup does not wait for fork() of a big worker.

RQ's `Worker` forks a work horse per job *after* dequeuing it. Our worker holds ~150 MB (the
pipeline imported), so that fork takes 5.6-7.2 ms on this machine, more under load, and sits
between the job's enqueue and its start. `PreforkWorker` forks the horse while it waits for a
job instead: the spare horse opens its own Redis connection and blocks on a pipe. The parent
dequeues and prepares the job as RQ does, writes the job's and the execution's ids down the
pipe, and waits for the horse's one-byte "taken". The horse then runs the job through RQ's own
`main_work_horse` and exits: one job per process, as before. The parent monitors it with RQ's
own code (heartbeats, the timeout kill, `kill_horse` on its process group, the stop command),
and the next spare is forked when the parent goes back to its queues.

A spare that died while idle is reaped and replaced before a job is handed to it; a spare dies
with the worker (PR_SET_PDEATHSIG) and is killed when the worker stops, warm or cold. A spare
holds none of the Redis connections its worker blocks on for jobs (they are opened after it).
Once it has taken a job it no longer dies with the worker, like RQ's own horses: a killed
worker's job lapses and is recovered by maintenance as before.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rq import Queue, Worker
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.executions import Execution
from rq.job import Job

from bot.hardening import PR_SET_PDEATHSIG, prctl
from bot.scheduler import DyingScheduler
from bot.unsubscribe import PromptUnsubscribe

TAKEN = b"1"
ACK_TIMEOUT_S = 30.0  # a live horse answers in microseconds; this only bounds a stuck one
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)  # RQ's warm and cold stop
_MAX_MESSAGE = 4096  # one pipe write of at most PIPE_BUF bytes is atomic


@dataclass
class Spare:
    """A forked horse waiting for its job, and the parent's ends of its two pipes."""

    pid: int
    handoff: int  # the parent writes the job here
    ack: int  # the horse answers TAKEN here
    reaped: bool = False  # once reaped, its pid may belong to another process: never signal it


class PreforkWorker(PromptUnsubscribe, Worker):
    """An RQ Worker whose next job's horse is already forked when the job arrives."""

    _spare: Spare | None = None

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        # At start and after every job: the horse is forked while nothing waits for it.
        self.ensure_spare()
        result: tuple[Job, Queue] | None = super().dequeue_job_and_maintain_ttl(
            timeout, max_idle_time
        )
        return result

    def fork_work_horse(self, job: Job, queue: Queue) -> None:
        """Hand the job to the spare horse (RQ's own fork is the last resort)."""
        os.environ["RQ_WORKER_ID"] = self.name
        os.environ["RQ_JOB_ID"] = job.id
        message = _message(job, queue, self.execution)  # the one prepare_execution made
        for _ in range(2):  # the spare, else a fresh one if the spare died before taking it
            spare = self.ensure_spare()
            if self._hand_over(spare, message):
                self._horse_pid = spare.pid
                self._spare = None
                self.procline(f"Handed to {spare.pid} at {time.time()}")  # type: ignore[no-untyped-call]
                return
            self._spare = None
        self.log.warning("Worker %s: no spare horse took job %s; forking one", self.name, job.id)
        super().fork_work_horse(job, queue)

    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
    ) -> None:
        """RQ's own, with a scheduler process that dies with this worker (bot/scheduler.py)."""
        if burst:  # no process to start: RQ enqueues the scheduled jobs and returns
            super()._start_scheduler(burst, logging_level, date_format, log_format)
            return
        self.scheduler = DyingScheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
        )
        self.scheduler.acquire_locks()  # type: ignore[no-untyped-call]
        if self.scheduler.acquired_locks:
            self.scheduler.start()

    def teardown(self) -> None:
        if not self.is_horse and self._spare is not None:
            _discard(self._spare)
            self._spare = None
        super().teardown()  # type: ignore[no-untyped-call]

    def ensure_spare(self) -> Spare:
        """The idle horse; a new one if there is none or it died while waiting."""
        if self._spare is not None and _alive(self._spare):
            return self._spare
        if self._spare is not None:
            self.log.warning("Worker %s: spare horse %s died idle", self.name, self._spare.pid)
            _discard(self._spare)
        self._spare = None
        with _stops_deferred():
            spare = self._spare = self._fork_spare()
        return spare

    def _fork_spare(self) -> Spare:
        handoff_r, handoff_w = os.pipe()
        ack_r, ack_w = os.pipe()
        parent = os.getpid()
        # A fork shares every open socket. A spare holding the connection its parent then
        # blocks on for a job keeps it open after the parent is killed, until the spare dies
        # too, and Redis hands the next job to that dead BLMOVE: it sits in the intermediate
        # queue until maintenance finds it. So the idle connections close first; the parent's
        # next command opens a new one before it blocks (the pubsub thread keeps its own).
        self.connection.connection_pool.disconnect(inuse_connections=False)
        pid = os.fork()
        if pid == 0:  # the horse: never return into the parent's code
            code = 1
            try:
                os.close(handoff_w)
                os.close(ack_r)
                self._wait_as_spare(handoff_r, ack_w, parent)
                code = 0  # told to go without a job
            except BaseException:
                self.log.exception("spare horse %s failed", os.getpid())
            finally:
                os._exit(code)
        os.close(handoff_r)
        os.close(ack_w)
        return Spare(pid, handoff_w, ack_r)

    def _wait_as_spare(self, handoff: int, ack: int, parent: int) -> None:
        os.setpgrp()  # as RQ's horse: kill_horse signals the horse's own process group
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # an idle horse never outlives its worker
        if os.getppid() != parent:
            return
        # The Redis pool saw the new pid and dropped the parent's connections: open ours now,
        # off the job's clock (the server version is what RQ asks once per job otherwise).
        # A Redis blip here: the job meets it as a fresh horse would.
        with contextlib.suppress(Exception):
            self.connection.ping()
            self.get_redis_server_version()  # type: ignore[no-untyped-call]
        message = _read_message(handoff)
        if not message:
            return  # the parent closed the pipe: no job for us
        os.write(ack, TAKEN)
        os.close(ack)
        os.close(handoff)
        prctl(PR_SET_PDEATHSIG, 0)  # from here on, a horse like RQ's own
        job, queue = self._restore(json.loads(message))
        self.main_work_horse(job, queue)  # runs the job and exits

    def _restore(self, handed: dict[str, Any]) -> tuple[Job, Queue]:
        """The job, queue and execution the parent prepared, as a fresh fork would hold them."""
        os.environ["RQ_WORKER_ID"] = self.name
        os.environ["RQ_JOB_ID"] = handed["job"]
        job = self.job_class.fetch(handed["job"], connection=self.connection,
                                   serializer=self.serializer)  # fmt: skip
        job.redis_server_version = self.get_redis_server_version()  # type: ignore[no-untyped-call]
        execution = Execution(handed["execution"], job.id, self.connection, self.name)
        execution.created_at = datetime.fromtimestamp(handed["created_at"], tz=UTC)
        execution.last_heartbeat = datetime.fromtimestamp(handed["last_heartbeat"], tz=UTC)
        execution._job = job
        self.executions = {execution.id: execution}
        queue = next((q for q in self.queues if q.name == handed["queue"]), None)
        if queue is None:
            queue = self.queue_class(handed["queue"], connection=self.connection,
                                     job_class=self.job_class, serializer=self.serializer,
                                     death_penalty_class=self.death_penalty_class)  # fmt: skip
        return job, queue

    def _hand_over(self, spare: Spare, message: bytes) -> bool:
        """Whether the spare took the job; a spare that did not is reaped."""
        taken = False
        if _alive(spare):
            try:
                os.write(spare.handoff, message)
                ready, _, _ = select.select([spare.ack], [], [], ACK_TIMEOUT_S)
                taken = bool(ready) and os.read(spare.ack, 1) == TAKEN
            except BrokenPipeError:  # it died between the check and the write
                taken = False
        if not taken:
            self.log.warning("Worker %s: spare horse %s did not take the job", self.name, spare.pid)
            _discard(spare)
            return False
        os.close(spare.handoff)
        os.close(spare.ack)
        return True


def _message(job: Job, queue: Queue, execution: Execution | None) -> bytes:
    if execution is None:
        raise RuntimeError(f"job {job.id} has no execution to hand over")
    handed = {
        "job": job.id,
        "queue": queue.name,
        "execution": execution.id,
        "created_at": execution.created_at.timestamp(),
        "last_heartbeat": execution.last_heartbeat.timestamp(),
    }
    message = json.dumps(handed).encode() + b"\n"
    if len(message) > _MAX_MESSAGE:
        raise RuntimeError(f"job {job.id}: hand-over message too long")
    return message


def _read_message(fd: int) -> bytes:
    """One newline-ended message, or b"" when the writer went away first."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, _MAX_MESSAGE)
        if not chunk:
            return b""
        data += chunk
    return data


@contextlib.contextmanager
def _stops_deferred() -> Iterator[None]:
    """A stop signal sent inside the `with` is taken as it ends, by RQ's own handler.

    Caught inside a fork, RQ's handler would raise its StopRequested in logging's after-fork
    callback, where the interpreter swallows it: the worker then goes back to waiting for jobs
    as if never told to stop. Blocking the signal is no cure: the mask is the calling thread's,
    and the pubsub thread takes the signal for it. Python runs every handler in the main
    thread, so one that only notes the signal is safe anywhere.
    """
    caught: list[int] = []
    previous = {s: signal.signal(s, lambda signum, _: caught.append(signum)) for s in _STOP_SIGNALS}
    try:
        yield
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, signal.SIG_DFL if handler is None else handler)
        for noted in dict.fromkeys(caught):
            signal.raise_signal(noted)


def _alive(spare: Spare) -> bool:
    if spare.reaped:
        return False
    try:
        pid, _ = os.waitpid(spare.pid, os.WNOHANG)
    except ChildProcessError:
        pid = spare.pid
    spare.reaped = pid != 0
    return not spare.reaped


def _discard(spare: Spare) -> None:
    """Kill the spare if it lives, reap it, close the parent's ends of its pipes."""
    if not spare.reaped:
        with contextlib.suppress(ProcessLookupError):
            os.kill(spare.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(spare.pid, 0)
        spare.reaped = True
    for fd in (spare.handoff, spare.ack):
        with contextlib.suppress(OSError):
            os.close(fd)
