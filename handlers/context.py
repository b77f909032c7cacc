"""What a handler decides (an Outcome), and the guards all share: who sent it, may they write."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pipeline.context import Context

if TYPE_CHECKING:
    from pipeline.ports import Repo

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


def repo_of(event: dict[str, Any], ctx: Context) -> Repo:
    """The client of the repository an event is about, through the App's installation."""
    repository = event["repository"]
    return ctx.app().for_repo(
        int(event["installation"]["id"]), repository["full_name"], int(repository["id"])
    )


def may_write(ctx: Context, gh: Repo, login: str) -> bool:
    """Write, maintain or admin on the repository, asked from the API and cached briefly."""
    ttl = ctx.config.github.permission_cache_s
    cached = ctx.store.cache_get("perm", gh.repo_id, login)
    if cached is None:
        cached = gh.role_of(login)
        ctx.store.cache_set(cached, ttl, "perm", gh.repo_id, login)
    return cached in WRITER_ROLES


def writer_client(event: dict[str, Any], ctx: Context) -> Repo | Outcome:
    """The repository's client when a human writer sent this event; else why it is ignored."""
    sender = event.get("sender") or {}
    if sender.get("type") == "Bot":
        return Outcome.ignore(f"sender {sender.get('login')} is a bot")
    if not (event.get("installation") or {}).get("id"):
        return Outcome.ignore("delivery has no installation")
    gh = repo_of(event, ctx)
    if not may_write(ctx, gh, sender["login"]):
        return Outcome.ignore(f"{sender['login']} may not write to {gh.full_name}")
    return gh


Handler = Callable[[dict[str, Any], Context], Outcome]
