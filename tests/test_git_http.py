"""The git smart-HTTP double: GitHub-style auth in front of the real `git http-backend`."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from tests.doubles.git_http import (
    commit_files,
    create_bare_repo,
    git_http_app,
    read_file_at,
    rev_parse,
)
from tests.doubles.server import serve

TOKEN = "ghs_good"


def basic(token: str, user: str = "x-access-token") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    create_bare_repo(tmp_path / "octo" / "demo.git", {"a.txt": "a\n"})
    return tmp_path


@pytest.fixture
def base_url(root: Path) -> Iterator[str]:
    # Mounted under a prefix, as the GitHub double does, to prove PATH_INFO ignores it.
    inner = git_http_app(root, lambda token, repo: token == TOKEN and repo == "octo/demo")
    with serve(Starlette(routes=[Mount("/git", app=inner)])) as server:
        yield f"{server.url}/git"


def test_refs_need_credentials(base_url: str) -> None:
    url = f"{base_url}/octo/demo.git/info/refs?service=git-upload-pack"
    missing = httpx.get(url)
    wrong = httpx.get(url, headers=basic("ghs_bad"))
    wrong_user = httpx.get(url, headers=basic(TOKEN, user="someone"))

    for response in (missing, wrong, wrong_user):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Basic realm="GitHub"'


def test_refs_are_advertised_with_a_good_token(base_url: str, root: Path) -> None:
    for service in ("git-upload-pack", "git-receive-pack"):
        response = httpx.get(
            f"{base_url}/octo/demo.git/info/refs?service={service}", headers=basic(TOKEN)
        )
        assert response.status_code == 200
        assert response.headers["content-type"] == f"application/x-{service}-advertisement"
        assert rev_parse(root / "octo" / "demo.git", "main") in response.text  # type: ignore[operator]


def test_unknown_repository_is_404(base_url: str) -> None:
    url = f"{base_url}/octo/missing.git/info/refs?service=git-upload-pack"
    assert httpx.get(url, headers=basic(TOKEN)).status_code == 404
    assert httpx.get(f"{base_url}/octo/demo.git/HEAD", headers=basic(TOKEN)).status_code == 404


def test_git_cli_clones_and_pushes(base_url: str, root: Path, tmp_path: Path) -> None:
    authed = base_url.replace("http://", f"http://x-access-token:{TOKEN}@")
    clone = tmp_path / "clone"
    env = {
        "PATH": "/usr/bin:/bin",
        "GIT_TERMINAL_PROMPT": "0",
        "HOME": str(tmp_path),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
    }
    subprocess.run(
        ["git", "clone", "-q", f"{authed}/octo/demo.git", str(clone)],
        env=env,
        check=True,
        capture_output=True,
    )
    (clone / "b.txt").write_text("b\n")
    subprocess.run(["git", "-C", str(clone), "add", "b.txt"], env=env, check=True)
    subprocess.run(["git", "-C", str(clone), "commit", "-qm", "b"], env=env, check=True)
    subprocess.run(
        ["git", "-C", str(clone), "push", "-q", "origin", "HEAD:refs/heads/feat"],
        env=env,
        check=True,
        capture_output=True,
    )

    assert read_file_at(root / "octo" / "demo.git", "feat", "b.txt") == "b\n"


def test_helpers_commit_and_read(root: Path) -> None:
    bare = root / "octo" / "demo.git"
    first = rev_parse(bare, "main")
    second = commit_files(bare, {"dir/c.txt": "c\n"}, message="c")

    assert rev_parse(bare, "main") == second != first
    assert read_file_at(bare, "main", "a.txt") == "a\n"
    assert read_file_at(bare, "main", "dir/c.txt") == "c\n"
    assert read_file_at(bare, "main", "nope.txt") is None
    assert read_file_at(bare, first or "", "dir/c.txt") is None
