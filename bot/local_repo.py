"""The per-repository client of a local task: what would go to GitHub is kept in Redis instead.

Local mode (`enqueue --repo PATH`) runs the same pipeline with no GitHub at all. Every side
effect the pipeline has on GitHub (status comment, question, labels, pull request, check runs,
review) lands here, beside the task's record, so `run.py` and its stages never ask "local or
not"; this class is the only place that knows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from redis import Redis

from bot import keys
from bot.github_repo import RepoClient
from bot.keys import TASK_TTL_S
from pipeline.errors import PermanentError, PermanentGitHubError
from pipeline.identity import AppIdentity
from pipeline.models import TaskRecord, TaskSpec

if TYPE_CHECKING:
    from bot.github import GitHubApp

LOCAL_LOGIN = "feature-crew[local]"
LOCAL_IDENTITY = AppIdentity(id=0, slug="feature-crew", bot_login=LOCAL_LOGIN)


def is_local(spec: TaskSpec) -> bool:
    """A local task's repository is a path on this machine, never a URL from GitHub's API."""
    return spec.clone_url.startswith("file://")


class LocalRepo(RepoClient):
    """RepoClient's effects, recorded under the task in Redis instead of sent to GitHub."""

    def __init__(self, redis: Redis, spec: TaskSpec) -> None:  # no App, no token: no super()
        self.redis = redis
        self.task_id = spec.id
        self.installation_id = 0
        self.full_name = spec.repo_full_name
        self.name = spec.repo_full_name.rstrip("/").rsplit("/", 1)[-1]
        self.repo_id = spec.repo_id
        self.clone_url = spec.clone_url
        self.number = spec.issue_number

    def _key(self, kind: str) -> str:
        return keys.task_local(self.task_id, kind)

    def _put(self, kind: str, field: str, value: dict[str, Any]) -> dict[str, Any]:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self._key(kind), field, json.dumps(value))
        pipe.expire(self._key(kind), TASK_TTL_S)
        pipe.execute()
        return value

    def _all(self, kind: str) -> list[dict[str, Any]]:
        raw = self.redis.hgetall(self._key(kind))
        items = [json.loads(v) for v in raw.values()]
        return sorted(items, key=lambda item: int(item.get("id") or 0))

    def _new_id(self) -> int:
        return int(self.redis.incr(keys.LOCAL_IDS))

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        raise PermanentError(f"local task: no GitHub for {method} {path}", public="no GitHub here")

    def _items(self, path: str, **params: Any) -> Iterator[Any]:
        raise PermanentError(f"local task: no GitHub for GET {path}", public="no GitHub here")

    def token(self) -> str:
        return ""  # a local path needs no credentials

    def identity(self) -> AppIdentity:
        return LOCAL_IDENTITY

    def repository(self) -> dict[str, Any]:
        return {"full_name": self.full_name, "id": self.repo_id, "clone_url": self.clone_url}

    def role_of(self, login: str) -> str:
        return "admin"  # whoever runs the command owns the repository on disk

    # Issues: the task's thread
    def react_to_issue(self, number: int, content: str) -> None:
        return None

    def issue_comments(self, number: int) -> Iterator[dict[str, Any]]:
        return iter([c for c in self._all("comments") if c["issue"] == number])

    def comment_on_issue(self, number: int, body: str) -> dict[str, Any]:
        comment_id = self._new_id()
        value = {"id": comment_id, "issue": number, "user": {"login": LOCAL_LOGIN}, "body": body}
        return self._put("comments", str(comment_id), value)

    def edit_comment(self, comment_id: int, body: str) -> dict[str, Any]:
        raw = self.redis.hget(self._key("comments"), str(comment_id))
        if raw is None:
            raise PermanentGitHubError(404, "Not Found", method="PATCH", path="local comment")
        return self._put("comments", str(comment_id), {**json.loads(raw), "body": body})

    def open_issue(self, *, title: str, body: str, labels: list[str]) -> dict[str, Any]:
        raise PermanentError("local tasks have no issues to open", public="no GitHub here")

    def remove_label(self, number: int, name: str) -> None:
        self.redis.srem(self._key("labels"), name)

    def add_labels(self, number: int, labels: list[str]) -> None:
        if labels:
            self.redis.sadd(self._key("labels"), *labels)
            self.redis.expire(self._key("labels"), TASK_TTL_S)

    # The branch stands in for the pull request, numbered like the task's thread
    def open_pull_for(self, owner: str, branch: str) -> dict[str, Any] | None:
        raw = self.redis.hget(self._key("pulls"), branch)
        return dict(json.loads(raw)) if raw is not None else None

    def create_pull(self, *, title: str, head: str, base: str, body: str) -> dict[str, Any]:
        number = self.number
        value = {"id": number, "number": number, "title": title, "head": {"ref": head}}
        return self._put("pulls", head, {**value, "base": {"ref": base}, "body": body})

    def update_pull(self, number: int, *, body: str) -> dict[str, Any]:
        pull = self.pull(number)
        return self._put("pulls", pull["head"]["ref"], {**pull, "body": body})

    def pull(self, number: int) -> dict[str, Any]:
        for pull in self._all("pulls"):
            if pull["number"] == number:
                return pull
        raise PermanentGitHubError(404, "Not Found", method="GET", path="local pull")

    def reviews(self, number: int) -> Iterator[dict[str, Any]]:
        return iter(self._all("reviews"))

    def review_pull(self, number: int, *, body: str, event: str, commit_id: str) -> dict[str, Any]:
        review_id = self._new_id()
        value = {"id": review_id, "user": {"login": LOCAL_LOGIN}, "body": body, "event": event}
        return self._put("reviews", str(review_id), {**value, "commit_id": commit_id})

    def review_comments(self, number: int, review_id: int) -> Iterator[dict[str, Any]]:
        return iter(())

    def merge_pull(self, number: int, *, sha: str, method: str, title: str) -> dict[str, Any]:
        raise PermanentError("local tasks are not merged", public="merge it yourself")

    # Check runs
    def check_runs(self, sha: str, name: str) -> list[dict[str, Any]]:
        return [c for c in self._all("checks") if c["head_sha"] == sha and c["name"] == name]

    def create_check_run(self, **fields: Any) -> dict[str, Any]:
        run_id = self._new_id()
        return self._put("checks", str(run_id), {**fields, "id": run_id})

    def update_check_run(self, run_id: int, **fields: Any) -> dict[str, Any]:
        raw = self.redis.hget(self._key("checks"), str(run_id))
        if raw is None:
            raise PermanentGitHubError(404, "Not Found", method="PATCH", path="local check run")
        return self._put("checks", str(run_id), {**json.loads(raw), **fields})


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def recorded(redis: Redis, task_id: str) -> dict[str, Any]:
    """What a local task would have posted on GitHub, by kind."""
    labels = redis.smembers(keys.task_local(task_id, "labels"))
    found: dict[str, Any] = {"labels": sorted(_text(m) for m in labels)}
    for kind in ("comments", "pulls", "checks", "reviews"):
        raw = redis.hgetall(keys.task_local(task_id, kind))
        items = [json.loads(v) for v in raw.values()]
        found[kind] = sorted(items, key=lambda item: int(item.get("id") or 0))
    return found


def client_for_task(github: GitHubApp | None, redis: Redis) -> Callable[[TaskRecord], RepoClient]:
    """The one seam between GitHub and local mode: which client a task's effects go to."""

    def client(record: TaskRecord) -> RepoClient:
        spec = record.spec
        if is_local(spec):
            return LocalRepo(redis, spec)
        if github is None:
            raise PermanentError("GitHub App credentials missing", public="App not configured")
        return github.for_repo(spec.installation_id, spec.repo_full_name, spec.repo_id)

    return client
