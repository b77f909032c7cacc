"""The installation token goes to the repository's clone URL on the API's git host, nowhere else."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pygit2
import pytest
from pygit2.enums import CredentialType
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pipeline.errors import WorkspaceError
from pipeline.gitauth import TokenCallbacks, git_host_for
from pipeline.workspace import Workspace
from tests.doubles.git_http import create_bare_repo, git_http_app, rev_parse
from tests.doubles.server import ServerThread

TOKEN = "ghs_" + "t0k3n" * 8
FILES = {"README.md": "# demo\n"}


@dataclass
class Listener:
    """An HTTP server that asks for credentials and records every Authorization it gets."""

    url: str = ""
    seen: list[tuple[str, str | None]] = field(default_factory=list)

    @property
    def authorizations(self) -> list[str]:
        return [auth for _, auth in self.seen if auth]


def recording_app(listener: Listener, redirect_to: str | None = None) -> Starlette:
    async def record(request: Request) -> Response:
        listener.seen.append((request.url.path, request.headers.get("authorization")))
        if redirect_to is not None:
            target = f"{redirect_to}{request.url.path}?{request.url.query}"
            return Response(status_code=301, headers={"Location": target})
        return Response("auth", status_code=401, headers={"WWW-Authenticate": 'Basic realm="x"'})

    return Starlette(routes=[Route("/{path:path}", record, methods=["GET", "POST"])])


@pytest.fixture
def listener() -> Iterator[Listener]:
    found = Listener()
    server = ServerThread(recording_app(found)).start()
    found.url = server.url
    yield found
    server.stop()


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    bare = tmp_path / "remote" / "octo" / "demo.git"
    create_bare_repo(bare, FILES)
    server = ServerThread(git_http_app(tmp_path / "remote", lambda t, r: t == TOKEN)).start()
    yield server.url, bare
    server.stop()


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://git.example:8080/octo/demo.git", True),
        ("http://GIT.example:8080/octo/demo", True),  # what libgit2 may ask after a redirect
        ("http://git.example:8080/octo/other.git", False),  # the token is scoped, still no
        ("http://evil.example:8080/octo/demo.git", False),
        ("http://git.example:9090/octo/demo.git", False),
        ("https://git.example:8080/octo/demo.git", False),
    ],
)
def test_the_callback_answers_only_for_the_clone_url(url: str, allowed: bool) -> None:
    clone_url = "http://git.example:8080/octo/demo.git"
    callbacks = TokenCallbacks(TOKEN, clone_url, "http://git.example:8080")
    if allowed:
        cred = callbacks.credentials(url, None, CredentialType.USERPASS_PLAINTEXT)
        assert cred.credential_tuple == ("x-access-token", TOKEN)
    else:
        with pytest.raises(WorkspaceError, match="refusing to send the installation token"):
            callbacks.credentials(url, None, CredentialType.USERPASS_PLAINTEXT)
    assert TOKEN not in repr(callbacks)


def test_the_callback_refuses_a_clone_url_off_the_apis_git_host() -> None:
    callbacks = TokenCallbacks(TOKEN, "https://evil.example/o/r.git", "https://github.com")
    with pytest.raises(WorkspaceError):
        callbacks.credentials(
            "https://evil.example/o/r.git", None, CredentialType.USERPASS_PLAINTEXT
        )


@pytest.mark.parametrize(
    ("api_url", "git_host"),
    [
        ("https://api.github.com", "https://github.com"),
        ("https://api.github.com/", "https://github.com"),
        ("https://ghe.example.com/api/v3", "https://ghe.example.com"),
        ("https://api.corp.example/api/v3", "https://api.corp.example"),
        ("https://api.octo.ghe.com", "https://octo.ghe.com"),
        ("http://127.0.0.1:4567/api/v3", "http://127.0.0.1:4567"),
    ],
)
def test_the_git_host_comes_from_the_api_url(api_url: str, git_host: str) -> None:
    assert git_host_for(api_url) == git_host


def _redirect_mirror_config(workspace: Workspace, remote_url: str, listener: Listener) -> None:
    # What audit code did through the worktree's .git file: the next fetch or push goes there.
    mirror = pygit2.Repository(str(workspace.mirror_path(1)))
    mirror.config[f"url.{listener.url}/.insteadOf"] = f"{remote_url}/"


def test_an_insteadof_in_the_mirrors_config_gets_no_token(
    tmp_path: Path, remote: tuple[str, Path], listener: Listener
) -> None:
    url, _ = remote
    clone_url = f"{url}/octo/demo.git"
    workspace = Workspace(tmp_path / "home", git_host=url)
    workspace.sync_mirror(1, clone_url, TOKEN)
    worktree = workspace.prepare_worktree(1, "t1", "feature-crew/x", "main")
    (worktree.path / "new.txt").write_text("new\n")
    worktree.commit_all("add", "a", "a@example.com", paths=["new.txt"])

    _redirect_mirror_config(workspace, url, listener)

    with pytest.raises(WorkspaceError, match="insteadOf"):
        workspace.sync_mirror(1, clone_url, TOKEN)
    with pytest.raises(WorkspaceError, match="insteadOf"):
        worktree.push(clone_url, TOKEN)
    assert listener.authorizations == []


def test_a_push_insteadof_in_the_mirrors_config_gets_no_token(
    tmp_path: Path, remote: tuple[str, Path], listener: Listener
) -> None:
    url, bare = remote
    clone_url = f"{url}/octo/demo.git"
    workspace = Workspace(tmp_path / "home", git_host=url)
    workspace.sync_mirror(1, clone_url, TOKEN)
    worktree = workspace.prepare_worktree(1, "t1", "feature-crew/x", "main")
    pygit2.Repository(str(workspace.mirror_path(1))).config[
        f"url.{listener.url}/.pushInsteadOf"
    ] = f"{url}/"

    with pytest.raises(WorkspaceError):
        worktree.push(clone_url, TOKEN)
    assert listener.authorizations == []
    assert rev_parse(bare, "refs/heads/feature-crew/x") is None


def test_a_redirect_to_another_host_gets_no_token(
    tmp_path: Path, remote: tuple[str, Path], listener: Listener
) -> None:
    # A public repository never challenges, so the first credentials request libgit2 makes
    # is the one for wherever the redirect pointed.
    front = ServerThread(recording_app(Listener(), redirect_to=listener.url)).start()
    try:
        clone_url = f"{front.url}/octo/demo.git"
        workspace = Workspace(tmp_path / "home", git_host=front.url)
        with pytest.raises(WorkspaceError, match="refusing to send the installation token"):
            workspace.sync_mirror(1, clone_url, TOKEN)
    finally:
        front.stop()
    assert listener.seen, "the redirect was never followed: the test proves nothing"
    assert listener.authorizations == []
