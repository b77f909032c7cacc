"""The one way a process reaches Redis (the connection, the task store and queue on it), and
the one place the domain's Context is built from them."""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from bot.queue import TaskQueue, rq_redis
from bot.settings import Settings
from bot.store import TaskStore
from pipeline.context import Context
from pipeline.gitauth import git_host_for
from pipeline.workspace import Workspace


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

    def context(self, settings: Settings, *, deadline: float | None = None) -> Context:
        """What handlers and stages are given: mypy checks here that the store, queue, App and
        repository clients fit the Protocols of pipeline/ports.py."""
        # Imported here: the web process never builds a Context, nor loads the GitHub client.
        from bot.github import GitHubApp
        from bot.local_repo import client_for_task

        github = GitHubApp.from_settings(settings, self.redis)  # None: only local tasks can run
        return Context(
            config=settings.config,
            endpoints=settings.endpoints,
            store=self.store,
            queue=self.queue,
            workspace=Workspace(settings.home, git_host=git_host_for(settings.api_url)),
            repos=client_for_task(github, self.redis),
            github=github,
            deadline=deadline,
        )
