"""Success rate, cost and latency per tier, computed from task records."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily, Metric

from pipeline.models import TaskRecord, TaskState

_SUCCESS = {TaskState.PR_OPEN, TaskState.MERGED}
_FINISHED = _SUCCESS | {TaskState.FAILED}


@dataclass
class TierStats:
    tasks: int = 0
    finished: int = 0
    succeeded: int = 0
    cost_usd: float = 0.0
    durations: list[float] = field(default_factory=list)

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.finished if self.finished else None

    @property
    def median_latency_s(self) -> float | None:
        if not self.durations:
            return None
        ordered = sorted(self.durations)
        return ordered[len(ordered) // 2]

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "tasks": self.tasks,
            "finished": self.finished,
            "succeeded": self.succeeded,
            "success_rate": self.success_rate,
            "cost_usd": round(self.cost_usd, 6),
            "median_latency_s": self.median_latency_s,
        }


@dataclass
class Summary:
    by_state: Counter[str] = field(default_factory=Counter)
    by_tier: dict[str, TierStats] = field(default_factory=lambda: defaultdict(TierStats))

    def tier_metrics(self) -> Iterator[Metric]:
        rate = GaugeMetricFamily(
            "feature_crew_success_ratio", "Finished tasks that opened a PR", labels=["tier"]
        )
        cost = GaugeMetricFamily("feature_crew_cost_usd", "Model spend", labels=["tier"])
        latency = GaugeMetricFamily(
            "feature_crew_latency_seconds", "Median task latency", labels=["tier"]
        )
        for tier, stats in sorted(self.by_tier.items()):
            if stats.success_rate is not None:
                rate.add_metric([tier], stats.success_rate)
            cost.add_metric([tier], stats.cost_usd)
            if stats.median_latency_s is not None:
                latency.add_metric([tier], stats.median_latency_s)
        yield from (rate, cost, latency)


def summarize(records: Iterable[TaskRecord], tier: int | None = None) -> Summary:
    summary = Summary()
    for record in records:
        progress = record.progress
        if tier is not None and progress.tier != tier:
            continue
        summary.by_state[progress.state.value] += 1
        stats = summary.by_tier[str(progress.tier or "unrouted")]
        stats.tasks += 1
        stats.cost_usd += progress.cost_usd
        if progress.state in _FINISHED:
            stats.finished += 1
            stats.durations.append(record.duration_s)
        if progress.state in _SUCCESS:
            stats.succeeded += 1
    return summary
