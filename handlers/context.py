"""What a handler gets: the settings and the adapters it may use to decide and enqueue."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.github import GitHubApp
    from bot.github_repo import RepoClient
    from bot.queue import TaskQueue
    from bot.settings import Settings
    from bot.store import TaskStore

WRITER_ROLES = frozenset({"admin", "maintain", "write"})


class Action(StrEnum):
    """What a handler did with an event."""

    QUEUED = "queued"
    IGNORED = "ignored"
    NOTED = "noted"
    REFRESHED = "refreshed"
    RESUMED = "resumed"
    STOPPED = "stopped"
    CANCELLED = "cancelled"
    MERGED = "merged"


@dataclass(frozen=True)
class Outcome:
    """A handler's decision, logged by the job; `ignored` carries the reason."""

    action: Action
    reason: str
    task_id: str | None = None

    @classmethod
    def ignore(cls, reason: str) -> Outcome:
        return cls(Action.IGNORED, reason)


@dataclass(frozen=True)
class HandlerContext:
    settings: Settings
    github: GitHubApp
    store: TaskStore
    queue: TaskQueue
    delivery_id: str

    def repo(self, event: dict[str, Any]) -> RepoClient:
        repository = event["repository"]
        return self.github.for_repo(
            int(event["installation"]["id"]), repository["full_name"], int(repository["id"])
        )

    def may_write(self, gh: RepoClient, login: str) -> bool:
        """Write, maintain or admin on the repository, asked from the API and cached briefly."""
        ttl = self.settings.config.github.permission_cache_s
        cached = self.store.cache_get("perm", gh.repo_id, login)
        if cached is None:
            cached = gh.role_of(login)
            self.store.cache_set(cached, ttl, "perm", gh.repo_id, login)
        return cached in WRITER_ROLES


def writer_client(event: dict[str, Any], ctx: HandlerContext) -> RepoClient | Outcome:
    """The repository's client when a human writer sent this event; else why it is ignored."""
    sender = event.get("sender") or {}
    if sender.get("type") == "Bot":
        return Outcome.ignore(f"sender {sender.get('login')} is a bot")
    if not (event.get("installation") or {}).get("id"):
        return Outcome.ignore("delivery has no installation")
    gh = ctx.repo(event)
    if not ctx.may_write(gh, sender["login"]):
        return Outcome.ignore(f"{sender['login']} may not write to {gh.full_name}")
    return gh


Handler = Callable[[dict[str, Any], HandlerContext], Outcome]
