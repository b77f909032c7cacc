"""Prometheus metrics: ingress counters in the web process, task figures read from Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from bot.queue import TaskQueue
from bot.store import TaskStore
from bot.taskstats import summarize

WINDOW_S = 7 * 24 * 3600


class TaskCollector(Collector):
    """Reads task records at scrape time, so every process sees the same figures."""

    def __init__(self, store: TaskStore, queue: TaskQueue) -> None:
        self.store = store
        self.queue = queue

    def collect(self) -> Iterator[Metric]:
        try:
            depths = self.queue.depths()
            stats = summarize(self.store.iter_all(since=time.time() - WINDOW_S))
        except RedisError:
            return
        queued = GaugeMetricFamily("feature_crew_queue_depth", "Jobs waiting", labels=["queue"])
        for name, depth in depths.items():
            queued.add_metric([name], depth)
        yield queued
        states = GaugeMetricFamily(
            "feature_crew_tasks", "Tasks of the last 7 days by state", labels=["state"]
        )
        for state, count in stats.by_state.items():
            states.add_metric([state], count)
        yield states
        yield from stats.tier_metrics()


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
