"""Prometheus metrics: ingress counters in the web process, task figures from the tier counters."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from bot.queue import TaskQueue
from bot.store import TaskStore
from bot.taskstats import Window, summarize, window_days

WINDOW_S = 7 * 24 * 3600  # the dashboard's default window too, so the figures agree


def read_window(store: TaskStore, duration_s: float, tier: str | None = None) -> Window:
    """Per-tier figures of the last `duration_s` (whole UTC days), from the counters alone."""
    days = window_days(duration_s, time.time())
    return summarize(store.tier_counts(days), days, tier)


class TaskCollector(Collector):
    """Reads the counters at scrape time, so every process sees the same figures."""

    def __init__(self, store: TaskStore, queue: TaskQueue) -> None:
        self.store = store
        self.queue = queue

    def collect(self) -> Iterator[Metric]:
        try:
            depths = self.queue.depths()
            window = read_window(self.store, WINDOW_S)
        except RedisError:
            return
        queued = GaugeMetricFamily("feature_crew_queue_depth", "Jobs waiting", labels=["queue"])
        for name, depth in depths.items():
            queued.add_metric([name], depth)
        yield queued
        yield from window.tier_metrics()


class Metrics:
    def __init__(self, store: TaskStore, queue: TaskQueue) -> None:
        self.registry = CollectorRegistry()
        self.deliveries = Counter(
            "feature_crew_webhook_deliveries",
            "Webhook deliveries by outcome",
            ["event", "outcome"],
            registry=self.registry,
        )
        self.registry.register(TaskCollector(store, queue))
        self._delivery_counts: dict[tuple[str, str], Counter] = {}

    def count_delivery(self, event: str, outcome: str) -> None:
        """deliveries.labels(...).inc(), with each labelled child looked up once: labels()
        validates and locks on every call, ~6 us of the webhook route's time."""
        child = self._delivery_counts.get((event, outcome))
        if child is None:
            child = self._delivery_counts[event, outcome] = self.deliveries.labels(
                event=event, outcome=outcome
            )
        child.inc()
