"""Installation-scoped calls on one repository, each named for its effect."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from pipeline.errors import PermanentGitHubError
from pipeline.identity import AppIdentity

if TYPE_CHECKING:
    from githubkit import GitHub


class InstallationApp(Protocol):
    """What a repository's client needs of the App (bot.github.GitHubApp is the one)."""

    def identity(self) -> AppIdentity: ...
    def installation_token(self, installation_id: int, repo_name: str) -> str: ...
    def forget_token(self, installation_id: int, repo_name: str) -> None: ...
    def token_client(self, token: str) -> GitHub[Any]: ...
    def call(self, client: GitHub[Any], method: str, path: str, **kw: Any) -> Any: ...
    def paginate(self, client: GitHub[Any], path: str, **params: Any) -> Iterator[Any]: ...


class RepoClient:
    def __init__(
        self, app: InstallationApp, installation_id: int, full_name: str, repo_id: int
    ) -> None:
        self.app = app
        self.installation_id = installation_id
        self.full_name = full_name
        self.name = full_name.split("/", 1)[1]
        self.repo_id = repo_id
        self._client: GitHub[Any] | None = None

    def identity(self) -> AppIdentity:
        """The App's id, slug and bot login: who our comments, reviews and commits are by."""
        return self.app.identity()

    def token(self) -> str:
        """A token valid for several more minutes: call it again right before a push."""
        return self.app.installation_token(self.installation_id, self.name)

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        if self._client is None:
            self._client = self.app.token_client(self.token())
        try:
            return self.app.call(self._client, method, path, **kw)
        except PermanentGitHubError as err:
            if err.status != 401:
                raise
        # The cached token was revoked or expired early: mint a fresh one, once.
        self.app.forget_token(self.installation_id, self.name)
        self._client = self.app.token_client(self.token())
        return self.app.call(self._client, method, path, **kw)

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        return self._call(method, f"/repos/{self.full_name}{path}", **kw).json()

    def _items(self, path: str, **params: Any) -> Iterator[Any]:
        if self._client is None:
            self._client = self.app.token_client(self.token())
        return self.app.paginate(self._client, f"/repos/{self.full_name}{path}", **params)

    # Repository and people
    def repository(self) -> dict[str, Any]:
        return dict(self._call("GET", f"/repos/{self.full_name}").json())

    def role_of(self, login: str) -> str:
        """admin, maintain, write, triage, read or none; unknown users are none."""
        try:
            data = self._json("GET", f"/collaborators/{login}/permission")
        except PermanentGitHubError as err:
            if err.status == 404:
                return "none"
            raise
        return str(data.get("role_name") or data.get("permission") or "none")

    # Issues
    def react_to_issue(self, number: int, content: str) -> None:
        self._json("POST", f"/issues/{number}/reactions", json={"content": content})

    def issue_comments(self, number: int) -> Iterator[dict[str, Any]]:
        return self._items(f"/issues/{number}/comments")

    def comment_on_issue(self, number: int, body: str) -> dict[str, Any]:
        return dict(self._json("POST", f"/issues/{number}/comments", json={"body": body}))

    def edit_comment(self, comment_id: int, body: str) -> dict[str, Any]:
        return dict(self._json("PATCH", f"/issues/comments/{comment_id}", json={"body": body}))

    def open_issue(self, *, title: str, body: str, labels: list[str]) -> dict[str, Any]:
        data = {"title": title, "body": body, "labels": labels}
        return dict(self._json("POST", "/issues", json=data))

    def remove_label(self, number: int, name: str) -> None:
        try:
            self._call("DELETE", f"/repos/{self.full_name}/issues/{number}/labels/{name}")
        except PermanentGitHubError as err:
            if err.status != 404:  # already gone: the goal is reached
                raise

    def add_labels(self, number: int, labels: list[str]) -> None:
        self._json("POST", f"/issues/{number}/labels", json={"labels": labels})

    # Pull requests
    def open_pull_for(self, owner: str, branch: str) -> dict[str, Any] | None:
        pulls = list(self._items("/pulls", state="open", head=f"{owner}:{branch}"))
        return dict(pulls[0]) if pulls else None

    def open_pulls(self, *, base: str) -> Iterator[dict[str, Any]]:
        return self._items("/pulls", state="open", base=base)

    def create_pull(self, *, title: str, head: str, base: str, body: str) -> dict[str, Any]:
        data = {"title": title, "head": head, "base": base, "body": body}
        return dict(self._json("POST", "/pulls", json=data))

    def update_pull(self, number: int, *, body: str) -> dict[str, Any]:
        return dict(self._json("PATCH", f"/pulls/{number}", json={"body": body}))

    def pull(self, number: int) -> dict[str, Any]:
        return dict(self._json("GET", f"/pulls/{number}"))

    def reviews(self, number: int) -> Iterator[dict[str, Any]]:
        return self._items(f"/pulls/{number}/reviews")

    def review_pull(self, number: int, *, body: str, event: str, commit_id: str) -> dict[str, Any]:
        data = {"body": body, "event": event, "commit_id": commit_id}
        return dict(self._json("POST", f"/pulls/{number}/reviews", json=data))

    def review_comments(self, number: int, review_id: int) -> Iterator[dict[str, Any]]:
        return self._items(f"/pulls/{number}/reviews/{review_id}/comments")

    def merge_pull(self, number: int, *, sha: str, method: str, title: str) -> dict[str, Any]:
        """Merge exactly `sha`: GitHub answers 409 if the head moved since it was approved."""
        data = {"sha": sha, "merge_method": method, "commit_title": title}
        return dict(self._json("PUT", f"/pulls/{number}/merge", json=data))

    # Check runs
    def check_runs(self, sha: str, name: str) -> list[dict[str, Any]]:
        data = self._json("GET", f"/commits/{sha}/check-runs", params={"check_name": name})
        return list(data.get("check_runs", []))

    def create_check_run(self, **fields: Any) -> dict[str, Any]:
        return dict(self._json("POST", "/check-runs", json=fields))

    def update_check_run(self, run_id: int, **fields: Any) -> dict[str, Any]:
        return dict(self._json("PATCH", f"/check-runs/{run_id}", json=fields))
