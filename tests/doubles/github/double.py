"""GitHubDouble: seed, serve and inspect a GitHub Enterprise-like REST API with a git remote."""

from __future__ import annotations

import subprocess
import time
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from tests.doubles import git_http
from tests.doubles.github import (
    actions,
    auth,
    manifests,
    pushes,
    rest_app,
    rest_checks,
    rest_issues,
    rest_pulls,
)
from tests.doubles.github.errors import ApiError
from tests.doubles.github.http import API_PREFIX, Recorder, not_found_route
from tests.doubles.github.shapes import Shapes, user_shape
from tests.doubles.github.state import ROLES, Fault, Installation, Issue, Repo, State
from tests.doubles.github.webhooks import Hookshot, payload
from tests.doubles.server import ServerThread

DEFAULT_PERMISSIONS = {
    "checks": "write",
    "contents": "write",
    "issues": "write",
    "metadata": "read",
    "pull_requests": "write",
}
EVENTS = ["issues", "issue_comment", "pull_request", "pull_request_review", "check_run", "push"]


class GitHubDouble:
    """A stateful GitHub for end-to-end tests; see tests/doubles/github/__init__.py."""

    def __init__(self, root: Path, app_slug: str = "feature-crew-test", app_id: int = 4242) -> None:
        self.root = Path(root)
        self.git_root = self.root / "git"
        self.git_root.mkdir(parents=True, exist_ok=True)
        self.app_slug, self.app_id = app_slug, app_id
        self.bot_login = f"{app_slug}[bot]"
        self.private_key, self.private_key_pem = auth.generate_key()
        self.state = State()
        self.state.user(self.bot_login).type = "Bot"
        self.hookshot = Hookshot(self.state, app_id)
        self.manifest_codes: dict[str, manifests.PendingApp] = {}
        self._server = ServerThread(self._build_app())
        self.url = self._server.url
        self.api_url = f"{self.url}{API_PREFIX}"
        self.shapes = Shapes(self.state, self.url, self.api_url, self.app_shape())

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> GitHubDouble:
        self.hookshot.start()
        self._server.start()
        return self

    def stop(self) -> None:
        self.release_held()
        self._server.stop()
        self.hookshot.stop()

    def __enter__(self) -> GitHubDouble:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _build_app(self) -> Any:
        async def not_found(request: Request, exc: Exception) -> Response:
            return ApiError(404, "Not Found").response()

        routes = (
            rest_app.ROUTES
            + rest_issues.ROUTES
            + rest_pulls.ROUTES
            + rest_checks.ROUTES
            + manifests.API_ROUTES
        )
        api = Starlette(
            routes=[
                *routes,
                Route(
                    "/{path:path}",
                    not_found_route,
                    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                ),
            ],
            exception_handlers={404: not_found, 405: not_found},
        )
        api.state.github_double = self
        git = git_http.git_http_app(
            self.git_root, self.check_git_token, refs_of=pushes.list_refs, on_push=self._git_pushed
        )
        app = Starlette(
            routes=[Mount(API_PREFIX, app=api), *manifests.WEB_ROUTES, Mount("/", app=git)]
        )
        app.state.github_double = self
        return Recorder(app, self)

    def app_shape(self) -> dict[str, Any]:
        owner = user_shape(self.url, self.api_url, "feature-crew", 1, "Organization")
        return {
            "id": self.app_id,
            "slug": self.app_slug,
            "node_id": f"MDM6QXBw{self.app_id}",
            "client_id": f"Iv1.{self.app_id:016x}",
            "owner": owner,
            "name": self.app_slug.replace("-", " ").title(),
            "description": "Feature Crew under test",
            "external_url": "https://example.invalid/feature-crew",
            "html_url": f"{self.url}/apps/{self.app_slug}",
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
            "permissions": dict(DEFAULT_PERMISSIONS),
            "events": list(EVENTS),
            "installations_count": len(self.state.installations),
        }

    def adopt_app(self, *, app_id: int, slug: str, key: Any, pem: str, owner: str) -> None:
        """The double serves one App: from now on, the one just made from a manifest."""
        with self.state.lock:
            self.app_id, self.app_slug = app_id, slug
            self.bot_login = f"{slug}[bot]"
            self.private_key, self.private_key_pem = key, pem
            self.state.user(self.bot_login).type = "Bot"
            self.state.user(owner)
            self.hookshot.app_id = app_id
            self.shapes.app = self.app_shape()

    def expire_manifest_codes(self) -> None:
        """Age every manifest code past GitHub's one hour."""
        with self.state.lock:
            for pending in self.manifest_codes.values():
                pending.created_at -= manifests.CODE_TTL + timedelta(seconds=1)

    # -- seeding -----------------------------------------------------------------------------
    def add_installation(
        self,
        account: str,
        permissions: dict[str, str] | None = None,
        account_type: str = "Organization",
    ) -> int:
        with self.state.lock:
            self.state.user(account).type = account_type
            inst = Installation(
                id=self.state.next_id(),
                account=account,
                permissions=dict(permissions or DEFAULT_PERMISSIONS),
            )
            self.state.installations[inst.id] = inst
            return inst.id

    def add_repo(
        self,
        owner: str,
        name: str,
        files: dict[str, str],
        installation_id: int | None = None,
        private: bool = True,
        default_branch: str = "main",
    ) -> Repo:
        git_dir = self.git_root / owner / f"{name}.git"
        git_http.create_bare_repo(git_dir, files, branch=default_branch)
        with self.state.lock:
            self.state.user(owner)
            repo = Repo(
                id=self.state.next_id(),
                owner=owner,
                name=name,
                private=private,
                default_branch=default_branch,
                installation_id=installation_id,
                git_dir=str(git_dir),
            )
            self.state.repos[repo.full_name] = repo
            return repo

    def add_user(self, login: str, permission_on: dict[str, str] | None = None) -> None:
        with self.state.lock:
            self.state.user(login)
            for full_name, role in (permission_on or {}).items():
                if role not in ROLES:
                    raise ValueError(f"unknown role {role!r}")
                self.state.repos[full_name].permissions[login] = role

    def add_issue(
        self,
        repo: str,
        title: str,
        body: str | None = "",
        user: str = "alice",
        labels: list[str] | None = None,
    ) -> int:
        with self.state.lock:
            self.state.user(user)
            number = self.state.next_number(repo)
            issue = Issue(
                id=self.state.next_id(), repo=repo, number=number, title=title, body=body, user=user
            )
            for name in labels or []:
                actions.ensure_label(self, repo, name)
                issue.labels.append(name)
            self.state.issues[(repo, number)] = issue
            return number

    def push_branch(
        self,
        repo: str,
        branch: str,
        files: dict[str, str],
        base: str | None = None,
        message: str = "update",
        sender: str | None = None,
    ) -> str:
        """Commit `files` on `branch`, created from `base` (default branch) if missing.

        With no files, only create the branch at the base (no commit); returns the head sha.
        Like a push to GitHub, it sends a `push` webhook from `sender` (default: the owner).
        """
        with self.state.lock:
            record = self.state.repos[repo]
        git_dir = Path(record.git_dir)
        before = pushes.list_refs(str(git_dir))
        sha = self._commit_on_branch(record, git_dir, branch, files, base, message)
        self._pushed(repo, sender or record.owner, before)
        return sha

    def _commit_on_branch(
        self,
        record: Repo,
        git_dir: Path,
        branch: str,
        files: dict[str, str],
        base: str | None,
        message: str,
    ) -> str:
        if git_http.rev_parse(git_dir, f"refs/heads/{branch}") is None:
            start = git_http.rev_parse(git_dir, f"refs/heads/{base or record.default_branch}")
            subprocess.run(
                [
                    "git",
                    "--git-dir",
                    str(git_dir),
                    "update-ref",
                    f"refs/heads/{branch}",
                    str(start),
                ],
                check=True,
                timeout=30,
            )
        if not files:
            return str(git_http.rev_parse(git_dir, f"refs/heads/{branch}"))
        return git_http.commit_files(git_dir, files, branch=branch, message=message)

    def _git_pushed(self, full_name: str, token: str, before: dict[str, str]) -> None:
        # Only installation tokens can push here, so every git push is the App's own.
        if self.check_git_token(token, full_name):
            self._pushed(full_name, self.bot_login, before)

    def _pushed(self, full_name: str, sender: str, before: dict[str, str]) -> None:
        with self.state.lock:
            after = pushes.list_refs(self.state.repos[full_name].git_dir)
            for ref, old, new in pushes.ref_updates(before, after):
                pushes.send_push(self, full_name, sender, ref, old, new)

    def set_webhook(self, url: str | None, secret: str | None) -> None:
        self.hookshot.configure(url, secret)

    # -- human actions (each sends the webhook GitHub would) --------------------------------
    def _issue(self, repo: str, number: int) -> Issue:
        return self.state.issues[(repo, number)]

    def label_issue(self, repo: str, number: int, label: str, sender: str) -> str | None:
        with self.state.lock:
            delivery = actions.add_label(
                self, self._issue(repo, number), label, self.state.user(sender).login
            )
            return delivery.guid if delivery else None

    def unlabel_issue(self, repo: str, number: int, label: str, sender: str) -> str:
        with self.state.lock:
            return actions.remove_label(self, self._issue(repo, number), label, sender).guid

    def comment_on_issue(self, repo: str, number: int, body: str, user: str) -> int:
        with self.state.lock:
            self.state.user(user)
            return actions.add_comment(self, self._issue(repo, number), user, body).id

    def close_issue(self, repo: str, number: int, sender: str) -> None:
        with self.state.lock:
            actions.set_state(self, self._issue(repo, number), "closed", sender)

    def submit_review(
        self,
        repo: str,
        number: int,
        user: str,
        event: str,
        body: str = "",
        comments: list[dict[str, Any]] | None = None,
    ) -> int:
        """A human review (APPROVE, REQUEST_CHANGES or COMMENT); raises ApiError if refused."""
        from tests.doubles.github.rest_pulls import review_pull

        with self.state.lock:
            self.state.user(user)
            pull = self.state.pulls[(repo, number)]
            fields = {"event": event, "body": body, "comments": comments or []}
            return review_pull(self, pull, user, fields).id

    def click_check_run_button(self, repo: str, run_id: int, identifier: str, user: str) -> str:
        """A person presses one of a check run's `actions` buttons; only offered ones exist."""
        with self.state.lock:
            run = self.state.check_runs[run_id]
            if identifier not in {a["identifier"] for a in run.actions}:
                raise ValueError(f"check run {run_id} offers no button {identifier!r}")
            delivery = actions.send(
                self,
                "check_run",
                "requested_action",
                repo,
                self.state.user(user).login,
                check_run=self.shapes.check_run(run),
                requested_action={"identifier": identifier},
            )
            return delivery.guid

    def rerequest_check_run(self, repo: str, run_id: int, user: str) -> str:
        """A person clicks "Re-run" on a check run's page."""
        with self.state.lock:
            run = self.state.check_runs[run_id]
            delivery = actions.send(
                self,
                "check_run",
                "rerequested",
                repo,
                self.state.user(user).login,
                check_run=self.shapes.check_run(run),
            )
            return delivery.guid

    def build_delivery(
        self, event: str, action: str | None = None, *, secret: str | None = None, **objects: Any
    ) -> tuple[dict[str, str], bytes]:
        """Headers and body of a delivery, without sending it.

        Keywords: repo (full name, required), sender (login; default the repo owner),
        issue (number), comment (id), label (name), pull (number), review (id),
        check_run (id), extra (dict merged into the payload last).
        """
        with self.state.lock:
            repo_name = objects.pop("repo")
            record = self.state.repos[repo_name]
            extra = objects.pop("extra", {})
            sender = objects.pop("sender", record.owner)
            parts = self._delivery_parts(record, objects)
            data = payload(self.shapes, action, repo_name, sender, record.installation_id, **parts)
            data.update(extra)
            previous = self.hookshot.secret
            if secret is not None:
                self.hookshot.secret = secret
            try:
                delivery = self.hookshot.build(event, data)
            finally:
                self.hookshot.secret = previous
            return delivery.headers, delivery.body

    def _delivery_parts(self, record: Repo, objects: dict[str, Any]) -> dict[str, Any]:
        parts: dict[str, Any] = {}
        if "issue" in objects:
            parts["issue"] = self.shapes.issue(self._issue(record.full_name, objects["issue"]))
        if "comment" in objects:
            parts["comment"] = self.shapes.comment(self.state.comments[objects["comment"]])
        if "label" in objects:
            label = actions.ensure_label(self, record.full_name, objects["label"])
            parts["label"] = self.shapes.label(record, label)
        if "pull" in objects:
            parts["number"] = objects["pull"]
            pull = self.state.pulls[(record.full_name, objects["pull"])]
            parts["pull_request"] = self.shapes.pull(pull)
        if "review" in objects:
            review = self.shapes.review(self.state.reviews[objects["review"]])
            parts["review"] = review | {"state": review["state"].lower()}
        if "check_run" in objects:
            parts["check_run"] = self.shapes.check_run(self.state.check_runs[objects["check_run"]])
        return parts

    # -- faults and inspection ---------------------------------------------------------------
    def expire_tokens(self) -> None:
        with self.state.lock:
            for token in self.state.tokens.values():
                token.revoked = True

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        count: int = 1,
        headers: dict[str, str] | None = None,
        body: Any = None,
    ) -> None:
        """The next `count` requests matching answer `status` (path without /api/v3)."""
        default = {"message": "Server Error", "documentation_url": "https://docs.github.com/rest"}
        with self.state.lock:
            self.state.faults.append(
                Fault(
                    method.upper(),
                    path_regex,
                    status,
                    count,
                    dict(headers or {}),
                    body if body is not None else default,
                )
            )

    def hold_next(self, method: str, path_regex: str, seconds: float) -> None:
        """The next matching request is answered normally, but only after `seconds`, or once
        `release_held()` is called: time for a test to kill a worker waiting on it."""
        with self.state.lock:
            self.state.held.clear()
            self.state.faults.append(Fault(method.upper(), path_regex, 0, 1, {}, None, seconds))

    def held_request_arrived(self) -> bool:
        with self.state.lock:
            return not any(f.status == 0 for f in self.state.faults)

    def release_held(self) -> None:
        self.state.held.set()

    def secondary_rate_limit(self, method: str, path_regex: str, retry_after: int = 1) -> None:
        body = {
            "message": "You have exceeded a secondary rate limit. Please wait a few minutes "
            "before you try again.",
            "documentation_url": "https://docs.github.com/rest/overview/rate-limits",
        }
        self.fail_next(
            method, path_regex, 403, headers={"Retry-After": str(retry_after)}, body=body
        )

    @property
    def requests(self) -> list[tuple[str, str, int, str | None]]:
        with self.state.lock:
            return [(r.method, r.path, r.status, r.actor) for r in self.state.requests]

    @property
    def peers(self) -> list[tuple[str, int] | None]:
        """Each request's client address, in order: a new one is a new connection."""
        with self.state.lock:
            return [r.peer for r in self.state.requests]

    def wait_for_deliveries(self, timeout: float = 10) -> bool:
        return self.hookshot.wait(timeout)

    def wait_until(self, predicate: Any, timeout: float = 10, interval: float = 0.02) -> bool:
        """Poll `predicate(state)` under the lock until it is truthy or the timeout passes."""
        deadline = time.monotonic() + timeout
        while True:
            with self.state.lock:
                if predicate(self.state):
                    return True
            if time.monotonic() > deadline:
                return False
            time.sleep(interval)

    def check_git_token(self, token: str, full_name: str) -> bool:
        with self.state.lock:
            found = auth.valid_token(self.state, token)
            repo = self.state.repos.get(full_name)
            return found is not None and repo is not None and auth.covers(found, repo)
