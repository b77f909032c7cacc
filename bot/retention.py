"""Retention: old task records leave Redis; mirrors lose finished tasks' branches and repack."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from bot.store import TaskStore
from pipeline import branches
from pipeline.models import PUBLISHED_STATES, TERMINAL_STATES, TaskState
from pipeline.workspace import Workspace

log = logging.getLogger(__name__)
DAY_S = 86400
# A human can still act on these (review, merge, answer): they stay while their PR is open.
WAITING = PUBLISHED_STATES | {TaskState.ASKING}


@dataclass(frozen=True)
class Tidied:
    tasks: int
    branches: int
    worktrees: int
    mirrors: int


def trim_old_tasks(store: TaskStore, retention_days: int, now: float | None = None) -> int:
    """Forget tasks untouched for `retention_days`, unless a human may still act on them."""
    cutoff = (time.time() if now is None else now) - retention_days * DAY_S
    ids = store.tasks_created_before(cutoff, limit=100_000)
    doomed: list[str] = []
    for start in range(0, len(ids), 200):
        batch = ids[start : start + 200]
        for task_id, record in zip(batch, store.get_many(batch), strict=True):
            if record is None or (
                record.progress.updated_at < cutoff and record.progress.state not in WAITING
            ):
                doomed.append(task_id)
    return store.forget_tasks(doomed)


def tidy_mirrors(store: TaskStore, ws: Workspace) -> tuple[int, int, int]:
    """Drop branches and worktrees of tasks no longer live, then let git repack if due."""
    live = [r for r in store.iter_all() if r.progress.state not in TERMINAL_STATES]
    worktrees = {ws.worktree_path(r.id).name for r in live}
    dropped_branches = dropped_worktrees = mirrors = 0
    for repo_id in branches.mirror_ids(ws):
        keep = {r.spec.branch for r in live if r.spec.repo_id == repo_id}
        dropped_worktrees += len(branches.drop_worktrees_except(ws, repo_id, worktrees))
        dropped_branches += len(branches.prune_task_branches(ws, repo_id, keep))
        branches.repack_mirror(ws, repo_id)
        mirrors += 1
    return dropped_branches, dropped_worktrees, mirrors


def tidy(store: TaskStore, ws: Workspace, retention_days: int) -> Tidied:
    tasks = trim_old_tasks(store, retention_days)
    dropped_branches, dropped_worktrees, mirrors = tidy_mirrors(store, ws)
    done = Tidied(tasks, dropped_branches, dropped_worktrees, mirrors)
    log.info("retention: %s", done)
    return done
