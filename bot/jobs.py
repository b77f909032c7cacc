"""RQ job entry points: build per-job clients, run the work, turn errors into task state."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import sentry_sdk
from redis import Redis
from rq import get_current_job
from rq.job import Job
from rq.timeouts import JobTimeoutException

from bot import forgotten, retention
from bot.backends import Backends
from bot.deliveries import load_delivery, reopen_delivery
from bot.queue import rq_redis, tier_queue
from bot.settings import Settings, load_settings
from handlers import dispatch
from pipeline import land, review_job, run, uptodate
from pipeline.context import Context
from pipeline.errors import (
    FeatureCrewError,
    PermanentError,
    SandboxUnavailable,
    Superseded,
    TaskCancelled,
    TransientError,
)
from pipeline.messages import AUDIT_CHECK
from pipeline.models import TERMINAL_STATES, TaskState
from pipeline.publish import close_open_checks, upsert_check_run
from pipeline.router import planned_tier

log = logging.getLogger(__name__)
T = TypeVar("T")

_settings: Settings | None = None


def configure(settings: Settings) -> None:
    """Called once by the worker process (or a test) before it takes jobs."""
    global _settings  # noqa: PLW0603 - the process's one settings object, read at start
    _settings = settings


def _current_settings() -> Settings:
    global _settings  # noqa: PLW0603
    if _settings is None:  # a bare `rq worker`: read the environment once
        _settings = load_settings()
    return _settings


def _deadline(settings: Settings) -> float:
    # Leave time to push and open the PR after the last attempt that fits.
    limit = settings.config.worker.task_timeout_s
    return time.monotonic() + limit - min(120, limit // 4)


def _deps(redis: Redis, backends: Backends | None = None) -> Context:
    settings = _current_settings()
    backends = backends or Backends.on(redis, settings)
    return backends.context(settings, deadline=_deadline(settings))


def _with_backends(work: Callable[[Backends, Context], T]) -> T:
    # Clients are built inside the job: RQ forks a child per job and sockets do not survive.
    settings = _current_settings()
    backends = Backends.on(rq_redis(settings.env.redis_url), settings)
    try:
        return work(backends, _deps(backends.redis, backends))
    finally:
        backends.redis.close()


def _with_deps(work: Callable[[Context], T]) -> T:
    return _with_backends(lambda _, deps: work(deps))


def handle_delivery(delivery_id: str) -> str:
    def work(backends: Backends, deps: Context) -> str:
        found = load_delivery(backends.redis, delivery_id)
        if found is None:
            return "expired: delivery payload no longer stored"
        event, body = found
        deps.app()  # no App configured: raises, as no handler could act
        ctx = replace(deps, delivery_id=delivery_id)
        try:
            outcome = dispatch(event, json.loads(body), ctx)
        except PermanentError as err:
            # Retrying cannot help (the App lost access, the issue is gone): say so and stop.
            log.warning("delivery %s not handled: %s", delivery_id, err)
            return f"failed: {err.public}"
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            # A payload without the fields its event promises: the same bytes fail every time.
            log.warning("delivery %s malformed: %s: %s", delivery_id, type(err).__name__, err)
            return "failed: malformed payload"
        log.info("delivery %s: %s (%s)", delivery_id, outcome.action, outcome.reason)
        return f"{outcome.action}: {outcome.reason}"

    return _with_backends(work)


def run_task(task_id: str) -> str:
    def work(backends: Backends, deps: Context) -> str:
        job = get_current_job()
        moved = _move_to_its_tier(task_id, job, backends, deps)
        if moved is not None:
            return moved
        owner = job.id if job is not None else f"local-{uuid.uuid4().hex}"
        # One run per task at a time; the same job re-run after a crash takes its lease back.
        with backends.store.lease(task_id, owner, deps.config.worker.task_timeout_s):
            return _guarded(task_id, deps, lambda: run.run_task(task_id, deps))

    return _with_backends(work)


def _move_to_its_tier(
    task_id: str, job: Job | None, backends: Backends, deps: Context
) -> str | None:
    """A job not on its task's tier queue (a new task, routed here) moves there instead."""
    record = backends.store.get(task_id)
    if job is None or record is None or record.progress.state in TERMINAL_STATES:
        return None
    tier = planned_tier(record, deps.config.triage)
    if job.origin != tier_queue(tier):
        backends.queue.move_to_tier(task_id, tier, job.id)
        return f"routed to tier {tier}"
    if record.progress.notice:  # a worker for its tier has come: the wait is over
        backends.store.update(task_id, notice=None)
    return None


def update_branch(task_id: str, request_id: str) -> str:
    """The base moved under the task's PR: rebase, push, audit and review again."""

    def work(backends: Backends, deps: Context) -> str:
        job = get_current_job()
        owner = job.id if job is not None else f"local-{uuid.uuid4().hex}"
        # Never while an attempt of the same task runs: both would push the one branch.
        with backends.store.lease(task_id, owner, deps.config.worker.task_timeout_s):
            return _guarded(
                task_id, deps, lambda: uptodate.bring_up_to_date(task_id, request_id, deps)
            )

    return _with_backends(work)


def tidy() -> str:
    """Retention: old task records and finished tasks' mirror branches go; then tomorrow's."""

    def work(backends: Backends, deps: Context) -> str:
        days = deps.config.worker.retention_days
        done = retention.tidy(backends.store, deps.workspace, days)
        tomorrow = datetime.now(UTC).replace(hour=3, minute=0, second=0) + timedelta(days=1)
        backends.queue.enqueue_tidy(at=tomorrow)
        return f"{done}"

    return _with_backends(work)


def forget_repositories(repo_ids: list[int]) -> str:
    """The App lost these repositories (uninstalled): their mirrors and worktrees go, here
    now and on every other worker at its next sweep."""

    def work(backends: Backends, deps: Context) -> str:
        forgotten.record_forgotten(backends.redis, repo_ids)
        removed = forgotten.sweep_forgotten(backends.redis, deps.workspace)
        return f"removed {len(removed)} mirrors"

    return _with_backends(work)


def review_task(task_id: str, head_sha: str) -> str:
    return _with_deps(
        lambda deps: _guarded(
            task_id, deps, lambda: review_job.review_task(task_id, head_sha, deps)
        )
    )


def merge_task(task_id: str, approved_sha: str) -> str:
    return _with_deps(
        lambda deps: _guarded(
            task_id, deps, lambda: land.merge_approved(task_id, approved_sha, deps)
        )
    )


def _guarded(task_id: str, deps: Context, work: Callable[[], TaskState]) -> str:
    """The job boundary: permanent errors stop the task; transient ones go back to RQ."""
    try:
        return work().value
    except TransientError:
        raise
    except TaskCancelled:
        log.info("task %s was cancelled while its job ran; stopped", task_id)
        return TaskState.CANCELLED.value
    except Superseded as err:
        log.info("task %s moved on while its job ran: %s", task_id, err)
        return "superseded"
    except PermanentError as err:
        log.warning("task %s stopped: %s", task_id, err)
        _stop_task(task_id, deps, err.public, audit_refused=isinstance(err, SandboxUnavailable))
        return TaskState.FAILED.value
    except JobTimeoutException:
        limit = deps.config.worker.task_timeout_s
        log.warning("task %s hit the job timeout (%s s)", task_id, limit)
        _stop_task(task_id, deps, f"the task took longer than its {limit} s limit")
        return TaskState.FAILED.value
    except Exception:
        ref = uuid.uuid4().hex[:8]
        log.exception("task %s crashed (ref %s)", task_id, ref)
        sentry_sdk.capture_exception()  # caught here, so the RQ integration would not see it
        _stop_task(task_id, deps, f"internal error (reference {ref} in the worker log)")
        return TaskState.FAILED.value


def _stop_task(task_id: str, deps: Context, reason: str, *, audit_refused: bool = False) -> None:
    """Mark the task failed and say so on the issue; best effort, never raises.

    audit_refused: the confinement could not be built, so the open pull request's audit check
    says so (neutral: our side failed, not the change).
    """
    try:
        record = deps.store.get(task_id)
        if record is None or record.progress.state in TERMINAL_STATES:
            return
        gh = deps.repo(record)
        deps.reporter(gh).fail(record, reason)
        head = record.progress.head_sha
        if head and audit_refused:
            title = "Audit refused: no confinement on this worker"
            upsert_check_run(
                gh, sha=head, name=AUDIT_CHECK, title=title, summary=reason, conclusion="neutral"
            )
        if head:
            close_open_checks(gh, head, reason)
    except Exception:
        log.exception("could not record the failure of task %s", task_id)


def on_job_failure(job: Job, connection: Any, exc_type: Any, exc: Any, tb: Any) -> None:
    """RQ calls this on every failed attempt; only the last one stops the task."""
    if job.retries_left not in (0, None):
        return
    args = list(job.args or ())
    name = job.func_name or ""
    if name.endswith(("run_task", "review_task", "merge_task")) and args:
        reason = exc.public if isinstance(exc, FeatureCrewError) else "a dependency kept failing"
        _with_deps(lambda deps: _stop_task(str(args[0]), deps, f"gave up after retries: {reason}"))
    elif name.endswith("handle_delivery") and args:
        # Let a manual redelivery of this id through the dedupe, instead of losing the event.
        reopen_delivery(rq_redis(_current_settings().env.redis_url), str(args[0]))
        log.error("delivery %s failed for good (%s); it may be redelivered", args[0], exc_type)
    else:
        log.error("job %s failed for good: %s", job.id, exc_type)
