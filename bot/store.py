"""Task records in Redis: claims, the state machine on every write, leases and blobs.

The spend ledger the store also carries (holds, settlements) is its base, bot/spend.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from redis import Redis
from redis.exceptions import WatchError

from bot import keys
from bot.keys import TASK_TTL_S
from bot.spend import RedisSpendLedger
from bot.taskstats import TIERS, Tally, add_counts, count_changes
from pipeline.errors import PermanentError, TaskCancelled, TransientError
from pipeline.models import (
    TERMINAL_STATES,
    TaskProgress,
    TaskRecord,
    TaskSpec,
    TaskState,
    Transition,
)
from pipeline.ports import Claim
from pipeline.states import next_progress

# The delivery records (bot/deliveries.py) still build their keys through this name.
DELIVERY_TTL_S = 3 * 24 * 3600 + 3600  # GitHub redelivers up to 3 days back

# Claims the issue for this task unless another live task holds it, and creates the record.
# A task is live unless its state is one of the terminal states, ARGV[9] on.
# Returns {status, task_id}: 1 created, 2 already existed (a re-run), 0 another task is live.
_CLAIM = """
local current = redis.call('GET', KEYS[2])
if current and current ~= ARGV[1] then
  local state = redis.call('HGET', ARGV[7] .. current, 'state')
  local live = state ~= false
  for i = 9, #ARGV do
    if state == ARGV[i] then live = false end
  end
  if live then return {0, current} end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {2, ARGV[1]} end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'spec', ARGV[2], 'progress', ARGV[3], 'state', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[8])
redis.call('RPUSH', KEYS[4], ARGV[4])
redis.call('EXPIRE', KEYS[4], ARGV[8])
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[1])
return {1, ARGV[1]}
"""


# Deletes an issue's or a pull's pointer only while it still names this task.
_DROP_POINTER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


# Take the lease if it is free or already ours (the same RQ job re-run after a crash).
_LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return holder end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return false
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _record(fields: list[Any], events: list[Any]) -> TaskRecord | None:
    spec, progress = fields
    if spec is None or progress is None:
        return None
    return TaskRecord(
        spec=TaskSpec.model_validate_json(spec),
        progress=TaskProgress.model_validate_json(progress),
        transitions=tuple(Transition.model_validate_json(e) for e in events),
    )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class TaskStore(RedisSpendLedger):
    """Task records: spec, progress and transitions, with a state machine on every write."""

    def __init__(self, redis: Redis) -> None:
        super().__init__(redis)
        self._claim = redis.register_script(_CLAIM)
        self._lease = redis.register_script(_LEASE)
        self._release = redis.register_script(_RELEASE)
        self._drop_pointer = redis.register_script(_DROP_POINTER)

    def create(self, spec: TaskSpec, note: str = "") -> Claim:
        now = time.time()
        event = Transition(state=TaskState.QUEUED, at=now, note=note or "task created")
        status, task_id = cast(
            "list[Any]",
            self._claim(
                keys=[
                    keys.task(spec.id),
                    keys.issue(spec.repo_id, spec.issue_number),
                    keys.TASKS,
                    keys.task_events(spec.id),
                ],
                args=[
                    spec.id,
                    spec.model_dump_json(),
                    TaskProgress(updated_at=now).model_dump_json(),
                    event.model_dump_json(),
                    TaskState.QUEUED.value,
                    spec.created_at,
                    keys.TASK_PREFIX,
                    TASK_TTL_S,
                    *sorted(state.value for state in TERMINAL_STATES),
                ],
            ),
        )
        task_id = task_id.decode() if isinstance(task_id, bytes) else str(task_id)
        return Claim(created=int(status) in (1, 2), task_id=task_id)

    def get(self, task_id: str) -> TaskRecord | None:
        (record,) = self.get_many([task_id])
        return record

    def get_many(self, task_ids: list[str]) -> list[TaskRecord | None]:
        """Records in one round trip, in order; None where a task is gone."""
        pipe = self.redis.pipeline(transaction=False)
        for task_id in task_ids:
            pipe.hmget(keys.task(task_id), "spec", "progress")
            pipe.lrange(keys.task_events(task_id), 0, -1)
        replies = pipe.execute()
        return [_record(*replies[i : i + 2]) for i in range(0, len(replies), 2)]

    def require(self, task_id: str) -> TaskRecord:
        record = self.get(task_id)
        if record is None:
            raise PermanentError(f"task {task_id} not found", public="task record missing")
        return record

    def update(self, task_id: str, **changes: Any) -> TaskRecord:
        """Change progress fields without changing state."""
        return self._write(task_id, None, "", changes, expect=None)

    def transition(
        self,
        task_id: str,
        state: TaskState,
        note: str = "",
        *,
        expect: frozenset[TaskState] | None = None,
        **changes: Any,
    ) -> TaskRecord:
        """Move to `state`, if the state machine allows it and, given `expect`, only from those.

        Raises TaskCancelled when the task was cancelled meanwhile, Superseded when it is no
        longer in an expected state (another job moved it on), PermanentError when illegal.
        """
        return self._write(task_id, state, note, changes, expect=expect)

    def _write(
        self,
        task_id: str,
        state: TaskState | None,
        note: str,
        changes: dict[str, Any],
        *,
        expect: frozenset[TaskState] | None,
    ) -> TaskRecord:
        # Optimistic locking: handlers and jobs of one task may write at the same moment.
        key = keys.task(task_id)
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    record = self.require(task_id)
                    progress, event = next_progress(record, state, note, changes, expect)
                    tally, increments = count_changes(
                        Tally.parse(pipe.hget(key, "tally")),
                        progress,
                        record.spec.created_at,
                        progress.updated_at,
                    )
                    pipe.multi()
                    pipe.hset(
                        key,
                        mapping={
                            "progress": progress.model_dump_json(),
                            "state": progress.state.value,
                            "tally": tally.model_dump_json(),
                        },
                    )
                    if event is not None:
                        pipe.rpush(keys.task_events(task_id), event.model_dump_json())
                    add_counts(pipe, increments)  # in the same transaction as the state
                    pipe.execute()
                except WatchError:
                    continue
                events = (*record.transitions, event) if event else record.transitions
                return record.model_copy(update={"progress": progress, "transitions": events})

    def tier_counts(self, days: list[str]) -> dict[tuple[str, str], dict[str, float]]:
        """The raw per-tier, per-day counters of those days, in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        pairs = [(tier, day) for tier in TIERS for day in days]
        for tier, day in pairs:
            pipe.hgetall(keys.stats(tier, day))
        return {
            pair: {_text(k): float(v) for k, v in raw.items()}
            for pair, raw in zip(pairs, pipe.execute(), strict=True)
            if raw
        }

    @contextmanager
    def lease(self, task_id: str, owner: str, ttl_s: int) -> Iterator[None]:
        """One job works on a task at a time; a busy task is a transient error (retry later)."""
        key = keys.lease(task_id)
        holder = self._lease(keys=[key], args=[owner, ttl_s])
        if holder:
            raise TransientError(f"task {task_id} is busy with job {_text(holder)}")
        try:
            yield
        finally:
            self._release(keys=[key], args=[owner])

    def ensure_live(self, task_id: str) -> TaskRecord:
        """The record, unless the task was cancelled meanwhile (then TaskCancelled)."""
        record = self.require(task_id)
        if record.progress.state is TaskState.CANCELLED:
            raise TaskCancelled(f"task {task_id} was cancelled", public="cancelled")
        return record

    def link_pull(self, repo_id: int, pr_number: int, task_id: str) -> None:
        self.redis.set(keys.pull(repo_id, pr_number), task_id, ex=TASK_TTL_S)

    def task_for_pull(self, repo_id: int, pr_number: int) -> str | None:
        value = self.redis.get(keys.pull(repo_id, pr_number))
        return _text(value) if value is not None else None

    def active_task_for_issue(self, repo_id: int, issue_number: int) -> str | None:
        value = self.redis.get(keys.issue(repo_id, issue_number))
        return value.decode() if isinstance(value, bytes) else None

    def recent(self, limit: int = 20) -> list[TaskRecord]:
        ids = self.redis.zrevrange(keys.TASKS, 0, max(limit - 1, 0))
        return [r for r in self.get_many([_text(i) for i in ids]) if r is not None]

    def iter_all(self, since: float = 0.0, batch: int = 200) -> Iterator[TaskRecord]:
        ids = [_text(i) for i in self.redis.zrangebyscore(keys.TASKS, since, "+inf")]
        for start in range(0, len(ids), batch):
            yield from (r for r in self.get_many(ids[start : start + batch]) if r is not None)

    def save_blob(self, task_id: str, name: str, value: str) -> None:
        self.redis.set(keys.task_blob(task_id, name), value.encode(), ex=TASK_TTL_S)

    def load_blob(self, task_id: str, name: str) -> str | None:
        value = self.redis.get(keys.task_blob(task_id, name))
        return value.decode() if isinstance(value, bytes) else None

    def cache_get(self, *parts: object) -> Any:
        raw = self.redis.get(keys.cache(*parts))
        return json.loads(raw) if raw is not None else None

    def cache_set(self, value: Any, ttl_s: int, *parts: object) -> None:
        if ttl_s > 0:
            self.redis.set(keys.cache(*parts), json.dumps(value), ex=ttl_s)

    def tasks_created_before(self, cutoff: float, limit: int = 500) -> list[str]:
        """The oldest task ids in the index, created before `cutoff`."""
        ids = self.redis.zrangebyscore(keys.TASKS, "-inf", cutoff, start=0, num=limit)
        return [_text(i) for i in ids]

    def forget_tasks(self, task_ids: list[str]) -> int:
        """Delete tasks whole: record, transitions, blobs, lease, pointers, index entry."""
        if not task_ids:
            return 0
        records = dict(zip(task_ids, self.get_many(task_ids), strict=True))
        for task_id, record in records.items():
            if record is not None:
                spec, pr = record.spec, record.progress.pr_number
                self._drop_pointer(
                    keys=[keys.issue(spec.repo_id, spec.issue_number)], args=[task_id]
                )
                if pr is not None:
                    self._drop_pointer(keys=[keys.pull(spec.repo_id, pr)], args=[task_id])
        wanted = set(task_ids)
        doomed = [
            key
            for key in self.redis.scan_iter(match=keys.TASK_KEYS, count=1000)
            if keys.task_id_of(_text(key)) in wanted
        ]
        doomed += [keys.lease(task_id) for task_id in task_ids]
        pipe = self.redis.pipeline(transaction=False)
        for start in range(0, len(doomed), 500):
            pipe.delete(*doomed[start : start + 500])
        pipe.zrem(keys.TASKS, *task_ids)
        pipe.execute()
        return len(task_ids)
