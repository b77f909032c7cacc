"""The GitHub double's world: plain dataclasses behind one lock, readable by tests."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ROLES = ("admin", "maintain", "write", "triage", "read", "none")
REACTIONS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class User:
    login: str
    id: int
    type: str = "User"


@dataclass
class Installation:
    id: int
    account: str
    permissions: dict[str, str]
    repository_selection: str = "all"
    created_at: datetime = field(default_factory=now)


@dataclass
class Repo:
    id: int
    owner: str
    name: str
    private: bool
    default_branch: str
    installation_id: int | None
    git_dir: str
    permissions: dict[str, str] = field(default_factory=dict)  # login -> role
    labels: dict[str, Label] = field(default_factory=dict)
    created_at: datetime = field(default_factory=now)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class Label:
    id: int
    name: str
    color: str = "ededed"
    description: str | None = None


@dataclass
class Reaction:
    id: int
    user: str
    content: str
    created_at: datetime = field(default_factory=now)


@dataclass
class Issue:
    id: int
    repo: str  # full name
    number: int
    title: str
    body: str | None
    user: str
    labels: list[str] = field(default_factory=list)
    state: str = "open"
    state_reason: str | None = None
    is_pull: bool = False
    reactions: list[Reaction] = field(default_factory=list)
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)
    closed_at: datetime | None = None


@dataclass
class Comment:
    id: int
    repo: str
    issue_number: int
    user: str
    body: str
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)


@dataclass
class Pull:
    id: int
    repo: str
    number: int
    head_ref: str
    base_ref: str
    user: str
    draft: bool = False
    merged: bool = False
    merged_by: str | None = None
    merged_at: datetime | None = None
    merge_commit_sha: str | None = None
    head_sha_at_close: str | None = None
    base_sha_at_close: str | None = None


@dataclass
class Review:
    id: int
    repo: str
    pull_number: int
    user: str
    body: str
    state: str  # APPROVED | CHANGES_REQUESTED | COMMENTED | PENDING
    commit_id: str
    comments: list[dict[str, Any]] = field(default_factory=list)
    submitted_at: datetime = field(default_factory=now)


@dataclass
class CheckRun:
    id: int
    repo: str
    name: str
    head_sha: str
    status: str
    conclusion: str | None
    output: dict[str, Any]
    details_url: str | None
    external_id: str
    started_at: datetime | None
    completed_at: datetime | None
    check_suite_id: int
    annotations: list[dict[str, Any]] = field(default_factory=list)  # accumulate, as on GitHub
    annotation_batches: list[int] = field(default_factory=list)  # how many each request sent
    actions: list[dict[str, str]] = field(default_factory=list)  # the buttons on its page


@dataclass
class Token:
    value: str
    installation_id: int
    expires_at: datetime
    permissions: dict[str, str]
    repositories: list[str] | None  # full names; None = every repo of the installation
    revoked: bool = False


@dataclass
class Delivery:
    guid: str
    id: int
    event: str
    action: str | None
    installation_id: int | None
    body: bytes
    headers: dict[str, str]
    status: int | None = None  # receiver's answer; 0 = connection failed; None = not sent
    redelivery: bool = False
    delivered_at: datetime = field(default_factory=now)


@dataclass
class Fault:
    method: str
    path_regex: str
    status: int
    count: int
    headers: dict[str, str]
    body: Any
    hold_s: float = 0.0  # status 0: answer normally, but only after this long (or a release)


@dataclass
class RequestRecord:
    method: str
    path: str
    status: int
    actor: str | None
    peer: tuple[str, int] | None = None  # the client's address: one per TCP connection


@dataclass
class State:
    """Everything the double knows; hold `lock` to read consistent values while it serves."""

    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    users: dict[str, User] = field(default_factory=dict)
    installations: dict[int, Installation] = field(default_factory=dict)
    repos: dict[str, Repo] = field(default_factory=dict)  # full name -> repo
    issues: dict[tuple[str, int], Issue] = field(default_factory=dict)
    comments: dict[int, Comment] = field(default_factory=dict)
    pulls: dict[tuple[str, int], Pull] = field(default_factory=dict)
    reviews: dict[int, Review] = field(default_factory=dict)
    check_runs: dict[int, CheckRun] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)
    deliveries_sent: list[Delivery] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    held: threading.Event = field(default_factory=threading.Event, repr=False)  # set: let go
    requests: list[RequestRecord] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000), repr=False)

    def next_id(self) -> int:
        return next(self._ids)

    def next_number(self, repo: str) -> int:
        return 1 + max((n for (r, n) in self.issues if r == repo), default=0)

    def user(self, login: str) -> User:
        if login not in self.users:
            self.users[login] = User(login=login, id=self.next_id())
        return self.users[login]

    def reactions(self, repo: str, number: int) -> list[Reaction]:
        return list(self.issues[(repo, number)].reactions)

    def comments_on(self, repo: str, number: int) -> list[Comment]:
        found = [c for c in self.comments.values() if (c.repo, c.issue_number) == (repo, number)]
        return sorted(found, key=lambda c: c.id)

    def labels_of(self, repo: str, number: int) -> list[str]:
        return list(self.issues[(repo, number)].labels)

    def reviews_on(self, repo: str, number: int) -> list[Review]:
        found = [r for r in self.reviews.values() if (r.repo, r.pull_number) == (repo, number)]
        return sorted(found, key=lambda r: r.id)

    def open_pulls(self, repo: str) -> list[Pull]:
        return [
            p
            for (r, n), p in self.pulls.items()
            if r == repo and self.issues[(r, n)].state == "open"
        ]
