"""Per-tier counters kept as tasks change state, and the window figures read back from them."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily, Metric
from redis.client import Pipeline

from bot import keys
from pipeline.frozen import Frozen
from pipeline.models import ReviewAction, TaskProgress, TaskState

TIERS = ("1", "2", "3", "unrouted")
OUTCOMES = ("succeeded", "rejected", "failed", "cancelled")
# Upper bounds (seconds) of the latency histogram: percentiles interpolate inside a bucket.
LATENCY_BOUNDS = (5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200, 86400)
QUANTILES = (0.5, 0.9, 0.99)
DAY_S = 86400
STATS_TTL_S = 400 * 24 * 3600  # outlives every task record, so an outcome can be taken back


class Tally(Frozen):
    """What a task has already added to the counters: kept in its record, so re-runs add nothing."""

    cost_usd: float = 0.0
    attempts: int = 0
    outcome: str | None = None
    outcome_tier: str = "unrouted"
    outcome_day: str = ""
    latency_s: float | None = None

    @classmethod
    def parse(cls, raw: object) -> Tally:
        """The tally stored in a record (none yet: all zero)."""
        return cls.model_validate_json(raw) if isinstance(raw, bytes | str) else cls()


# (tier, UTC day, field, amount): one HINCRBY/HINCRBYFLOAT on that tier's hash for that day.
Increment = tuple[str, str, str, float]


def add_counts(pipe: Pipeline, increments: list[Increment]) -> None:
    """Queue the increments on `pipe`: the caller's transaction adds them with its write."""
    for tier, day, name, amount in increments:
        key = keys.stats(tier, day)
        if isinstance(amount, int):
            pipe.hincrby(key, name, amount)
        else:
            pipe.hincrbyfloat(key, name, amount)
        pipe.expire(key, STATS_TTL_S)


def utc_day(at: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(at))


def window_days(duration_s: float, now: float) -> list[str]:
    """The UTC days a window covers, oldest first; counters are per day, so whole days."""
    count = max(1, -(-int(duration_s) // DAY_S))
    return [utc_day(now - i * DAY_S) for i in reversed(range(count))]


def outcome_of(progress: TaskProgress) -> str | None:
    """A task's current outcome; None while it is still on its way."""
    state = progress.state
    if state is TaskState.MERGED:
        return "succeeded"
    if state is TaskState.FAILED:
        return "failed"
    if state is TaskState.CANCELLED:
        return "cancelled"
    if state is TaskState.PR_OPEN and progress.review is not None:
        approved = progress.review.action is ReviewAction.APPROVE and progress.review.conclusive
        return "succeeded" if approved else "rejected"
    return None


def _bucket(latency_s: float) -> str:
    for bound in LATENCY_BOUNDS:
        if latency_s <= bound:
            return f"lat_le_{bound}"
    return "lat_le_inf"


def _outcome_fields(tally: Tally, sign: int) -> Iterator[Increment]:
    tier, day = tally.outcome_tier, tally.outcome_day
    yield tier, day, str(tally.outcome), sign
    if tally.latency_s is not None:
        yield tier, day, _bucket(tally.latency_s), sign
        yield tier, day, "lat_count", sign
        yield tier, day, "lat_sum", sign * tally.latency_s


def count_changes(
    tally: Tally, progress: TaskProgress, created_at: float, now: float
) -> tuple[Tally, list[Increment]]:
    """The counter increments that bring `tally` up to `progress`, and the new tally."""
    tier, day = str(progress.tier or "unrouted"), utc_day(now)
    changes: list[Increment] = []
    if (cost := progress.cost_usd - tally.cost_usd) > 0:
        changes.append((tier, day, "cost_usd", cost))
    if (attempts := progress.attempts - tally.attempts) > 0:
        changes.append((tier, day, "attempts", attempts))
    new = tally.model_copy(
        update={
            "cost_usd": max(progress.cost_usd, tally.cost_usd),
            "attempts": max(progress.attempts, tally.attempts),
        }
    )
    outcome = outcome_of(progress)
    if outcome == tally.outcome:
        return new, changes
    if tally.outcome is not None:  # a new attempt or a later end replaces the earlier outcome
        changes += _outcome_fields(tally, -1)
    latency = None if outcome in (None, "cancelled") else max(now - created_at, 0.0)
    new = new.model_copy(
        update={"outcome": outcome, "outcome_tier": tier, "outcome_day": day, "latency_s": latency}
    )
    if outcome is not None:
        changes += _outcome_fields(new, +1)
    return new, changes


@dataclass
class TierWindow:
    """One tier's figures over a window of days."""

    days: list[str]
    outcomes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    cost_by_day: dict[str, float] = field(default_factory=dict)
    attempts: int = 0
    latency_buckets: dict[str, int] = field(default_factory=dict)
    latency_sum_s: float = 0.0

    @property
    def finished(self) -> int:
        return sum(self.outcomes[o] for o in ("succeeded", "rejected", "failed"))

    @property
    def tasks(self) -> int:
        return self.finished + self.outcomes["cancelled"]

    @property
    def success_rate(self) -> float | None:
        return self.outcomes["succeeded"] / self.finished if self.finished else None

    @property
    def cost_usd(self) -> float:
        return sum(self.cost_by_day.values())

    @property
    def latency_count(self) -> int:
        return sum(self.latency_buckets.values())

    def latency_quantile(self, q: float) -> float | None:
        """Prometheus' histogram_quantile: linear inside the bucket the rank falls in."""
        total = self.latency_count
        if total <= 0:
            return None
        rank, seen, lower = q * total, 0, 0.0
        for bound in LATENCY_BOUNDS:
            count = self.latency_buckets.get(f"lat_le_{bound}", 0)
            if count > 0 and seen + count >= rank:
                return lower + (bound - lower) * (rank - seen) / count
            seen += count
            lower = float(bound)
        return float(LATENCY_BOUNDS[-1])  # beyond the last bound: all we can say

    def chart_points(self) -> list[tuple[str, float]]:
        return [(day, self.cost_by_day.get(day, 0.0)) for day in self.days]

    def as_dict(self) -> dict[str, object]:
        return {
            "tasks": self.tasks,
            "finished": self.finished,
            **self.outcomes,
            "success_rate": self.success_rate,
            "cost_usd": round(self.cost_usd, 6),
            "cost_by_day": {d: round(c, 6) for d, c in self.chart_points()},
            "attempts": self.attempts,
            "latency_p50_s": self.latency_quantile(0.5),
            "latency_p90_s": self.latency_quantile(0.9),
            "latency_p99_s": self.latency_quantile(0.99),
        }


@dataclass
class Window:
    days: list[str]
    by_tier: dict[str, TierWindow]

    def tier_metrics(self) -> Iterator[Metric]:
        span = f"the last {len(self.days)} UTC days"
        tasks = GaugeMetricFamily(
            "feature_crew_tasks", f"Task outcomes in {span}", labels=["tier", "outcome"]
        )
        rate = GaugeMetricFamily(
            "feature_crew_success_ratio",
            f"Finished tasks approved or merged, {span}",
            labels=["tier"],
        )
        cost = GaugeMetricFamily("feature_crew_cost_usd", f"Model spend in {span}", labels=["tier"])
        latency = GaugeMetricFamily(
            "feature_crew_latency_seconds",
            f"Task latency (creation to outcome) percentiles in {span}",
            labels=["tier", "quantile"],
        )
        for tier, stats in self.by_tier.items():
            for outcome, count in stats.outcomes.items():
                tasks.add_metric([tier, outcome], count)
            if stats.success_rate is not None:
                rate.add_metric([tier], stats.success_rate)
            cost.add_metric([tier], stats.cost_usd)
            for q in QUANTILES:
                value = stats.latency_quantile(q)
                if value is not None:
                    latency.add_metric([tier, str(q)], value)
        yield from (tasks, rate, cost, latency)


def summarize(
    hashes: Mapping[tuple[str, str], Mapping[str, float]], days: list[str], tier: str | None = None
) -> Window:
    """Window figures from the raw per-tier, per-day hashes; tiers with nothing are left out."""
    by_tier: dict[str, TierWindow] = {}
    for name in TIERS if tier is None else (tier,):
        stats = TierWindow(days=days)
        for day in days:
            raw = hashes.get((name, day)) or {}
            for outcome in OUTCOMES:
                stats.outcomes[outcome] += int(raw.get(outcome, 0))
            if raw.get("cost_usd"):
                stats.cost_by_day[day] = float(raw["cost_usd"])
            stats.attempts += int(raw.get("attempts", 0))
            stats.latency_sum_s += float(raw.get("lat_sum", 0.0))
            for key, value in raw.items():
                if key.startswith("lat_le_"):
                    stats.latency_buckets[key] = stats.latency_buckets.get(key, 0) + int(value)
        if stats.tasks or stats.cost_usd or stats.attempts or tier is not None:
            by_tier[name] = stats
    return Window(days=days, by_tier=by_tier)
