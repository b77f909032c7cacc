"""Local mode's tasks: a spec on a git repository of this machine, queued with no GitHub at all."""

from __future__ import annotations

import getpass
import hashlib
import uuid
from pathlib import Path

import pygit2
from redis import Redis

from bot import keys
from bot.local_repo import client_for_task
from bot.queue import TaskQueue
from bot.store import TaskStore
from handlers.issues import MAX_SPEC_CHARS, slugify, task_id_for
from pipeline.labels import tier_label
from pipeline.messages import NEEDS_INFO_LABEL
from pipeline.models import Clarification, TaskRecord, TaskSpec, TaskState
from pipeline.status import Reporter

S = TaskState


class LocalUsageError(Exception):
    """The command was given something it cannot work on (exit status 2)."""


class LocalBusy(Exception):
    """A live task already works on that branch (exit status 1)."""


def open_repository(path: Path) -> tuple[Path, str]:
    """The repository's root and its checked-out branch, the base of the change."""
    found = pygit2.discover_repository(str(path))
    if found is None:
        raise LocalUsageError(f"{path}: not a git repository")
    repo = pygit2.Repository(found)
    root = Path(repo.path if repo.is_bare else str(repo.workdir)).resolve()
    if repo.head_is_unborn:
        raise LocalUsageError(f"{root}: no commit yet to base the change on")
    if repo.head_is_detached:
        raise LocalUsageError(f"{root}: HEAD is detached; check out the branch to build on")
    return root, repo.head.shorthand


def repo_id_for(root: Path) -> int:
    """Negative, so a local repository never shares a mirror or a key with a GitHub one."""
    return -int.from_bytes(hashlib.sha256(str(root).encode()).digest()[:6], "big")


def _thread_number(redis: Redis, repo_id: int, slug: str) -> int:
    # One number per branch: the issue claim then keeps two live tasks off one branch.
    key = keys.local_threads(repo_id)
    found = redis.hget(key, slug)
    if found is None:
        redis.hsetnx(key, slug, int(redis.incr(keys.local_seq(repo_id))))
        found = redis.hget(key, slug)
    return int(found or 0)


def local_spec(redis: Redis, path: Path, text: str, slug: str | None, tier: int | None) -> TaskSpec:
    root, base = open_repository(path)
    text = text.strip()
    if not text:
        raise LocalUsageError("--spec is empty")
    title = text.splitlines()[0][:100]
    clean = slugify(slug or title)
    branch = f"feature-crew/{clean}"
    if base == branch:
        raise LocalUsageError(f"{branch} is checked out in {root}: switch to its base first")
    repo_id = repo_id_for(root)
    number = _thread_number(redis, repo_id, clean)
    return TaskSpec(
        id=task_id_for(root.name, number, f"local{uuid.uuid4().hex}"),
        installation_id=0,
        repo_full_name=str(root),
        repo_id=repo_id,
        clone_url=root.as_uri(),
        default_branch=base,
        issue_number=number,
        issue_title=title,
        spec=text[:MAX_SPEC_CHARS],
        branch=branch,
        requested_by=getpass.getuser(),
        labels=() if tier is None else (tier_label(tier),),
    )


def queue_local_task(store: TaskStore, queue: TaskQueue, spec: TaskSpec, tier: int) -> TaskRecord:
    """A new task on the branch, or the waiting one when it only needs an answer."""
    claim = store.create(spec, note=f"enqueued from the command line on {spec.repo_full_name}")
    if claim.busy:
        live = store.require(claim.task_id)
        if live.progress.state is S.ASKING:
            return live
        if live.progress.state is not S.PR_OPEN:
            state = live.progress.state
            raise LocalBusy(f"task {live.id} is still working on {spec.branch} ({state})")
        # Reviewed and done as far as local mode goes: the new task replaces it.
        store.transition(live.id, S.CANCELLED, f"replaced by a new task on {spec.branch}")
        return queue_local_task(store, queue, spec, tier)
    queue.enqueue_task(spec.id, tier=tier)
    return store.require(spec.id)


def answer_question(
    store: TaskStore, queue: TaskQueue, record: TaskRecord, answer: str, max_attempts: int
) -> TaskRecord:
    """The answer goes into the spec and the task is queued again, as an issue comment would."""
    by = getpass.getuser()
    clarification = Clarification(question=record.progress.question or "", answer=answer, by=by)
    record = store.transition(
        record.id,
        S.QUEUED,
        f"{by} answered the question",
        expect=frozenset({S.ASKING}),
        clarifications=(*record.progress.clarifications, clarification),
        question=None,
    )
    queue.enqueue_task(record.id, attempt_key=f"answer-{len(record.progress.clarifications)}")
    gh = client_for_task(None, store.redis)(record)
    gh.remove_label(record.spec.issue_number, NEEDS_INFO_LABEL)
    return Reporter(store, gh, gh.identity().bot_login, max_attempts).refresh(record)
