"""What a process holds for its lifetime: settings and the clients built from them."""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from bot.backends import Backends
from bot.embedded_redis import describe_redis
from bot.metrics import Metrics
from bot.queue import TaskQueue, async_redis
from bot.settings import Settings
from bot.store import TaskStore


@dataclass
class WebRuntime:
    settings: Settings
    redis: Redis
    queue: TaskQueue
    store: TaskStore
    metrics: Metrics
    # The webhook route's own client: one script call per delivery, awaited on the loop.
    aredis: AsyncRedis
    redis_in_use: str  # for /health: which server, never its password

    @classmethod
    def build(cls, settings: Settings) -> WebRuntime:
        b = Backends.connect(settings)
        return cls(
            settings, b.redis, b.queue, b.store, Metrics(b.store, b.queue),
            async_redis(settings.env.redis_url), describe_redis(settings),
        )  # fmt: skip
