"""Mirrors of uninstalled repositories go on every worker, not only the one that got the event.

The `installation.deleted` job records the repositories in Redis; each worker sweeps that
record at start and now and then, removing the mirrors it holds of them under its own home.
A mirror touched after the uninstall (the App installed again and the repository fetched)
is newer than the record and stays.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from redis import Redis

from bot.keys import FORGOTTEN_REPOS
from pipeline import branches
from pipeline.workspace import Workspace

log = logging.getLogger(__name__)
_KEEP_S = 30 * 24 * 3600  # a worker offline longer than this keeps its stale mirrors


def record_forgotten(redis: Redis, repo_ids: Iterable[int], now: float | None = None) -> None:
    at = time.time() if now is None else now
    mapping = {str(int(r)): str(at) for r in repo_ids}
    if mapping:
        redis.hset(FORGOTTEN_REPOS, mapping=mapping)  # type: ignore[arg-type]


def _last_touched(ws: Workspace, repo_id: int) -> float:
    path = ws.mirror_path(repo_id)
    times = [p.stat().st_mtime for p in (path, path / "FETCH_HEAD") if p.exists()]
    return max(times, default=0.0)


def sweep_forgotten(redis: Redis, ws: Workspace, now: float | None = None) -> list[int]:
    """Remove this machine's mirrors of repositories the App lost; the ids removed."""
    now = time.time() if now is None else now
    removed, stale = [], []
    for raw_id, raw_at in redis.hgetall(FORGOTTEN_REPOS).items():
        repo_id, at = int(raw_id), float(raw_at)
        if at < now - _KEEP_S:
            stale.append(raw_id)
        elif 0 < _last_touched(ws, repo_id) <= at and branches.remove_mirror(ws, repo_id):
            removed.append(repo_id)
    if stale:
        redis.hdel(FORGOTTEN_REPOS, *stale)
    if removed:
        log.info("mirrors of uninstalled repositories removed: %s", removed)
    return removed
