"""The App's GitHub calls share a process's connections: one TCP (and TLS) handshake, not one
per call, and never a socket shared with a forked parent."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bot.github import GitHubApp
from pipeline.errors import GitHubError
from tests.doubles.github import GitHubDouble
from tests.helpers import in_a_fork


@pytest.fixture
def gh(tmp_path: Path) -> Iterator[GitHubDouble]:
    double = GitHubDouble(tmp_path / "github").start()
    installation = double.add_installation(account="octo-org")
    double.add_repo("octo-org", "hello", files={"a.py": "x = 1\n"}, installation_id=installation)
    yield double
    double.stop()


def _app(gh: GitHubDouble, client: redis.Redis) -> GitHubApp:
    return GitHubApp(
        app_id=gh.app_id, private_key=gh.private_key_pem, api_url=gh.api_url, redis=client
    )


def _a_jobs_calls(app: GitHubApp) -> None:
    installation = app.installation_for("octo-org/hello")
    repo = app.for_repo(installation, "octo-org/hello", 0)  # mints a token: the App's client
    repo.repository()
    repo.role_of("octocat")
    issue = repo.open_issue(title="A change", body="Please.", labels=[])
    repo.comment_on_issue(int(issue["number"]), "On it.")
    list(repo.issue_comments(int(issue["number"])))
    list(repo.open_pulls(base="main"))


def test_the_calls_of_a_job_reuse_one_connection(
    gh: GitHubDouble, redis_client: redis.Redis
) -> None:
    # Two Apps, as two jobs run by one worker process (tests' BurstWorker, local mode): each
    # built its own client per call before, a connection and a CA bundle load each.
    _a_jobs_calls(_app(gh, redis_client))
    _a_jobs_calls(_app(gh, redis_client))

    peers = gh.peers
    assert len(peers) >= 10
    assert len(set(peers)) == 1, peers


def test_a_forked_child_opens_its_own_connection(
    gh: GitHubDouble, redis_client: redis.Redis
) -> None:
    app = _app(gh, redis_client)
    app.installation_for("octo-org/hello")  # the parent's connection, idle in the pool

    def horse() -> bytes:  # the App it inherited must not write to the parent's socket
        app.installation_for("octo-org/hello")
        return b"ok"

    answer = in_a_fork(horse)
    app.installation_for("octo-org/hello")

    assert answer == b"ok"
    parent_first, child, parent_again = gh.peers
    assert child != parent_first
    assert parent_again == parent_first


class RecordingProxy:
    """A forward proxy that refuses every request (502) and keeps each request line."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.lines: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                head = b""
                while b"\r\n\r\n" not in head and (chunk := conn.recv(4096)):
                    head += chunk
                self.lines.append(head.split(b"\r\n", 1)[0].decode())
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")


def test_a_proxy_in_the_environment_still_carries_the_calls(
    gh: GitHubDouble, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = RecordingProxy()
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, proxy.url)

    with pytest.raises(GitHubError):
        _app(gh, redis_client).installation_for("octo-org/hello")

    assert proxy.lines
    assert proxy.lines[0].startswith(f"GET {gh.api_url}/repos/octo-org/hello/installation ")
    assert gh.peers == []  # nothing went around the proxy
    proxy.server.close()
