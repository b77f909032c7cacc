"""The one way a process reaches Redis: the connection, and the task store and queue on it."""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from bot.queue import TaskQueue, rq_redis
from bot.settings import Settings
from bot.store import TaskStore


@dataclass(frozen=True)
class Backends:
    redis: Redis
    store: TaskStore
    queue: TaskQueue

    @classmethod
    def on(cls, redis: Redis, settings: Settings) -> Backends:
        """The store and queue over a connection the caller already holds (a job's, RQ's)."""
        return cls(redis, TaskStore(redis), TaskQueue(redis, settings.config.worker))

    @classmethod
    def connect(cls, settings: Settings) -> Backends:
        return cls.on(rq_redis(settings.env.redis_url), settings)
