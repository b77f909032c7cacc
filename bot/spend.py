"""The spend ledger in Redis: each model call's hold, its settlement, and spend per tier and task.

A call first reserves its estimated cost (atomically against the tier's daily budget and the
task's cap), then settles it at what it really cost, or releases it when the call failed. A
worker killed mid-call leaves its hold behind; it expires, and the next reserve on that tier
counts it as spent at its estimate, since the API may well have billed it.
"""

from __future__ import annotations

import calendar
import time
from typing import Any, cast

from redis import Redis

from bot import keys
from pipeline.cost import Hold, OverBudget, TaskCostCapped

SPEND_TTL_S = 3 * 86400
DAY_S = 86400

# Reserves a model call's estimated cost unless it would pass the task's cap or the tier's
# daily budget, counting what was spent and what other calls hold. An expired hold (a worker
# killed mid-call) becomes spend at its estimate, for its tier on its own day and for its
# task; a late settle or release then corrects it (_SETTLE). Today's holds are KEYS[1..2],
# yesterday's KEYS[4..5] (a call that began before midnight UTC and whose worker died after).
# Returns {0, held} reserved, {1, held} over budget, {2, task spent} over the task's cap.
_RESERVE = """
local now, amount = tonumber(ARGV[3]), tonumber(ARGV[2])
local held, task_held = 0, 0
local function sweep(spend_key, reserved_key, count_live)
  local entries = redis.call('HGETALL', reserved_key)
  for i = 1, #entries, 2 do
    local value, expires, task = string.match(entries[i + 1], '^([^|]+)|([^|]+)|(.*)$')
    if tonumber(expires) < now then
      redis.call('HDEL', reserved_key, entries[i])
      redis.call('INCRBYFLOAT', spend_key, value)
      redis.call('EXPIRE', spend_key, ARGV[8])
      local spent_key = ARGV[9] .. task .. ARGV[10]
      redis.call('INCRBYFLOAT', spent_key, value)
      redis.call('EXPIRE', spent_key, ARGV[11])
    elseif count_live then
      held = held + tonumber(value)
      if task == ARGV[5] then task_held = task_held + tonumber(value) end
    end
  end
end
sweep(KEYS[4], KEYS[5], false)
sweep(KEYS[1], KEYS[2], true)
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
local task_spent = tonumber(redis.call('GET', KEYS[3]) or '0')
local cap, budget = tonumber(ARGV[7]), tonumber(ARGV[6])
if cap >= 0 and task_spent + task_held + amount > cap then
  return {2, tostring(task_spent + task_held)}
end
if budget >= 0 and spent + held + amount > budget then return {1, tostring(spent + held)} end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. '|' .. ARGV[4] .. '|' .. ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[8])
return {0, tostring(spent + held + amount)}
"""
# A call's end: its hold becomes its real cost (ARGV[2]; 0 for a failed call). When another
# reserve already turned the expired hold into spend at its estimate (ARGV[3]), only the
# difference is added, so nothing is counted twice.
_SETTLE = """
local add = tonumber(ARGV[2])
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then add = add - tonumber(ARGV[3]) end
if add ~= 0 then
  redis.call('INCRBYFLOAT', KEYS[2], tostring(add))
  redis.call('EXPIRE', KEYS[2], ARGV[4])
  redis.call('INCRBYFLOAT', KEYS[3], tostring(add))
  redis.call('EXPIRE', KEYS[3], ARGV[5])
end
return 1
"""


def utc_day(at: float | None = None) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(time.time() if at is None else at))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisSpendLedger:
    """Holds, settlements and spend, per tier and day and per task (a base of TaskStore)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._reserve = redis.register_script(_RESERVE)
        self._settle = redis.register_script(_SETTLE)

    def spent(self, tier: int, day: str | None = None) -> float:
        value = self.redis.get(keys.spend(tier, day or utc_day()))
        return float(value) if value is not None else 0.0

    def held(self, tier: int) -> float:
        """Today's spend of a tier plus what calls hold (an expired hold is spend-to-be)."""
        holds = self.redis.hvals(keys.reserved(tier, utc_day()))
        return self.spent(tier) + sum(float(_text(h).split("|")[0]) for h in holds)

    def task_spent(self, task_id: str) -> float:
        value = self.redis.get(keys.task_spent(task_id))
        return float(value) if value is not None else 0.0

    def reserve_spend(self, hold: Hold, *, budget: float | None, task_cap: float | None) -> None:
        """Set a call's estimate aside, atomically; raises OverBudget or TaskCostCapped."""
        now = time.time()
        yesterday = utc_day(calendar.timegm(time.strptime(hold.day, "%Y-%m-%d")) - DAY_S / 2)
        status, amount = cast(
            "list[Any]",
            self._reserve(
                keys=[
                    keys.spend(hold.tier, hold.day),
                    keys.reserved(hold.tier, hold.day),
                    keys.task_spent(hold.task_id),
                    keys.spend(hold.tier, yesterday),
                    keys.reserved(hold.tier, yesterday),
                ],
                args=[
                    hold.id,
                    repr(hold.amount),
                    repr(now),
                    repr(now + hold.ttl_s),
                    hold.task_id,
                    -1 if budget is None else repr(budget),
                    -1 if task_cap is None else repr(task_cap),
                    SPEND_TTL_S,
                    keys.TASK_PREFIX,
                    ":spent",
                    keys.TASK_TTL_S,
                ],
            ),
        )
        if int(status) == 2:
            raise TaskCostCapped(float(_text(amount)), float(task_cap or 0))
        if int(status) == 1:
            raise OverBudget(hold.tier, float(_text(amount)), float(budget or 0))

    def settle_spend(self, hold: Hold, actual: float) -> None:
        """The call is done: its hold becomes what it really cost, for the tier and the task."""
        self._end_hold(hold, max(actual, 0.0))

    def release_spend(self, hold: Hold) -> None:
        """A failed call: the API bills nothing for it, so its hold goes back."""
        self._end_hold(hold, 0.0)

    def _end_hold(self, hold: Hold, actual: float) -> None:
        self._settle(
            keys=[
                keys.reserved(hold.tier, hold.day),
                keys.spend(hold.tier, hold.day),
                keys.task_spent(hold.task_id),
            ],
            args=[hold.id, repr(actual), repr(hold.amount), SPEND_TTL_S, keys.TASK_TTL_S],
        )
