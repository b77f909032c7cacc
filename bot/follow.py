"""Following a task from the terminal: live progress, the model's question, the verdict.

When no live worker takes the queue the task's next job waits on, the command works that
queue itself (a burst worker in this process), so one command is enough on a laptop and it
never waits on a queue nobody reads.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO

from redis import Redis
from rq import Queue, SimpleWorker
from rq.registry import ScheduledJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer

from bot import jobs
from bot.backends import Backends
from bot.local import answer_question
from bot.local_repo import client_for_task
from bot.queue import ALL_QUEUES
from bot.settings import Settings
from bot.store import TaskStore
from bot.tiers import live_listeners
from bot.unsubscribe import PromptUnsubscribe
from bot.vanished import VanishWatch, is_task_job, vanished_reason
from pipeline.errors import Superseded
from pipeline.messages import audit_line, usd
from pipeline.models import TERMINAL_STATES, ReviewAction, TaskRecord, TaskState
from pipeline.status import Reporter

S = TaskState
_DONE = TERMINAL_STATES | {S.PR_OPEN, S.BUDGET_WAIT}  # PR_OPEN: reviewed, the branch is ready
_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


@dataclass
class Display:
    """One live line on a terminal; elsewhere a plain line per stage and attempt."""

    stream: TextIO
    max_attempts: int
    last: tuple[str, int] | None = None
    spin: Iterator[str] = field(default_factory=lambda: itertools.cycle(_SPINNER))
    lock: threading.Lock = field(default_factory=threading.Lock)
    paused: bool = False

    def show(self, record: TaskRecord) -> None:
        p = record.progress
        parts = [p.state.value]
        if p.tier is not None:
            parts.append(f"tier {p.tier} ({p.model or '?'})")
        if p.attempts:
            parts.append(f"attempt {p.attempts} of {self.max_attempts}")
        parts += [usd(p.cost_usd), f"{time.time() - record.spec.created_at:.0f} s"]
        line = " · ".join(parts)
        with self.lock:
            if self.paused:
                return
            if self.stream.isatty():
                self.stream.write(f"\r\033[K{next(self.spin)} {line}")
            elif (p.state.value, p.attempts) != self.last:
                self.stream.write(line + "\n")
            self.last = (p.state.value, p.attempts)
            self.stream.flush()

    def end_line(self) -> None:
        with self.lock:
            if self.stream.isatty() and self.last is not None:
                self.stream.write("\n")
                self.stream.flush()

    @contextmanager
    def live(self, read: Callable[[], TaskRecord | None]) -> Iterator[None]:
        """Refresh from Redis in the background while this thread runs the task's jobs."""
        stop = threading.Event()

        def refresh() -> None:
            while not stop.wait(0.2):
                record = read()
                if record is not None:
                    self.show(record)

        thread = threading.Thread(target=refresh, name="fc-progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)
            self.end_line()


def unserved_queue(redis: Redis, task_id: str) -> str | None:
    """The queue where the task's next job waits, is due, or was left by a dead worker, and
    no live worker listens."""
    now = int(time.time())
    for name in ALL_QUEUES:
        queue = Queue(name, connection=redis, serializer=JSONSerializer)
        scheduled = ScheduledJobRegistry(queue=queue)  # type: ignore[no-untyped-call]
        started = StartedJobRegistry(queue=queue)
        ids = (
            *queue.get_job_ids(),
            *scheduled.get_jobs_to_schedule(timestamp=now),
            *started.get_job_ids(),  # its cleanup re-queues what a killed worker abandoned
        )
        if any(is_task_job(j, task_id) for j in ids) and not live_listeners(redis, name):
            return name
    return None


class BurstWorker(PromptUnsubscribe, SimpleWorker):
    """The job runs in this process; stopping does not wait out the pubsub thread's read."""


def work_queue_here(settings: Settings, redis: Redis, name: str) -> bool:
    """A burst worker in this process: it takes what waits on the queue, then returns."""
    jobs.configure(settings)
    queue = Queue(name, connection=redis, serializer=JSONSerializer)
    worker = BurstWorker([queue], connection=redis, serializer=JSONSerializer)
    worked = worker.work(burst=True, with_scheduler=True, logging_level="WARNING")
    if worker._stop_requested:  # Ctrl-C: RQ took the signal to finish the job first
        raise KeyboardInterrupt
    return worked


@dataclass
class Follower:
    settings: Settings
    redis: Redis
    task_id: str
    answer: str | None
    stdin: TextIO
    err: TextIO
    vanished_after_s: float = 10.0

    def follow(self) -> TaskRecord:
        """Until the task is reviewed, stopped, or waits on something this command cannot give."""
        backends = Backends.on(self.redis, self.settings)
        store = backends.store
        attempts = self.settings.config.github.max_attempts
        display = Display(self.err, attempts)
        watch = VanishWatch(self.vanished_after_s)
        while True:
            record = store.require(self.task_id)
            display.show(record)
            if record.progress.state in _DONE:
                display.end_line()
                return record
            if record.progress.state is S.ASKING:
                display.end_line()
                text = self._answer_for(record.progress.question or "")
                if text is None:
                    return record
                answer_question(store, backends.queue, record, text, attempts)
                continue
            name = unserved_queue(self.redis, self.task_id)
            if name is None and watch.vanished(self.redis, record):
                display.end_line()
                return self._give_up(store, record)
            if name is None:
                time.sleep(0.25)  # a live worker has it, or a retry is not due yet
                continue
            with display.live(lambda: store.get(self.task_id)):
                worked = work_queue_here(self.settings, self.redis, name)
            if not worked:
                time.sleep(1)  # an abandoned job not yet expired: look again in a moment

    def _give_up(self, store: TaskStore, record: TaskRecord) -> TaskRecord:
        """Nothing will run the task: it fails with the reason, so the next enqueue can start."""
        reason = vanished_reason(record.id)
        now = frozenset({record.progress.state})
        try:
            record = store.transition(record.id, S.FAILED, reason, expect=now, error=reason)
        except Superseded:  # a job moved it on after all: follow it again
            return self.follow()
        self.err.write(f"{reason}\n")
        gh = client_for_task(None, self.redis)(record)
        max_attempts = self.settings.config.github.max_attempts
        return Reporter(store, gh, gh.identity().bot_login, max_attempts).refresh(record)

    def _answer_for(self, question: str) -> str | None:
        self.err.write(f"The model asks: {question}\n")
        if self.answer is not None:
            given, self.answer = self.answer, None
            self.err.write(f"Answering: {given}\n")
            return given
        if not self.stdin.isatty():
            self.err.write("Run the same enqueue again with --answer TEXT to go on.\n")
            return None
        self.err.write("Your answer (an empty line to stop here): ")
        self.err.flush()
        return self.stdin.readline().strip() or None


def summary(record: TaskRecord) -> tuple[str, int]:
    """What stdout gets at the end, and the exit status: 0 only for an approved change."""
    p, spec = record.progress, record.spec
    lines = [f"task {spec.id}: {p.state.value}"]
    if p.audit is not None:
        lines.append(f"audit: {audit_line(p.audit)}")
    if p.review is not None:
        lines.append(f"verdict: {p.review.action.value}: {p.review.reason.strip()}")
        if p.review.feedback.strip():
            lines.append(f"feedback: {p.review.feedback.strip()}")
    if p.state is S.ASKING:
        lines.append(f"question: {p.question}")
    if p.error:
        lines.append(f"stopped: {p.error}")
    if p.head_sha:
        lines.append(f"branch: {spec.branch} at {p.head_sha[:12]} in {spec.repo_full_name}")
    approved = p.review is not None and p.review.action is ReviewAction.APPROVE
    return "\n".join(lines), 0 if approved and p.state is S.PR_OPEN else 1
