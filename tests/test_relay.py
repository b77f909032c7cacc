"""The git relay: it tunnels libgit2's HTTPS to its one git host, and nowhere else.

Fetches and pushes through it run in tests/test_workspace.py and tests/test_branches.py (each
test there also runs over HTTPS); these are the relay's own edges.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import WorkspaceError
from pipeline.models import ToolStatus
from pipeline.relay import GitRelay, relay_for
from pipeline.workspace import Workspace
from tests.doubles.git_http import create_bare_repo, git_http_app
from tests.doubles.server import ServerThread
from tests.doubles.tls import Certificate
from tests.test_sandbox import audit_pytest, needs_sandbox, reaching_test

TOKEN = "ghs_relay"


@pytest.fixture
def bystander() -> Iterator[socket.socket]:
    """A listening port the relay must never connect to."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.3)
    yield listener
    listener.close()


@pytest.fixture
def relay() -> Iterator[GitRelay]:
    made = GitRelay("https://git.example.test/octo/demo.git")
    yield made
    made.close()


def _ask(relay: GitRelay, request: bytes) -> bytes:
    port = int(relay.proxy.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(request)
        return conn.recv(1024)


def _connected(listener: socket.socket) -> bool:
    try:
        listener.accept()[0].close()
    except TimeoutError:
        return False
    return True


@pytest.mark.parametrize(
    "request_head",
    [
        b"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n",
        b"CONNECT git.example.test:{port} HTTP/1.1\r\n\r\n",  # the host, another port
        b"GET http://127.0.0.1:{port}/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n",
        b"POST /octo/demo.git/git-upload-pack HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n",
    ],
)
def test_anything_but_a_connect_to_its_host_gets_a_403_and_goes_nowhere(
    relay: GitRelay, bystander: socket.socket, request_head: bytes
) -> None:
    port = str(bystander.getsockname()[1]).encode()
    answer = _ask(relay, request_head.replace(b"{port}", port))
    assert answer.startswith(b"HTTP/1.1 403 ")
    assert not _connected(bystander)
    assert relay.tunnels == 0


def test_a_client_that_hangs_up_mid_request_leaves_the_relay_serving(
    relay: GitRelay, bystander: socket.socket
) -> None:
    port = int(relay.proxy.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"CONNECT git.exam")  # and goes away
    port_text = str(bystander.getsockname()[1]).encode()
    assert _ask(relay, b"CONNECT 10.0.0.1:" + port_text + b" HTTP/1.1\r\n\r\n").startswith(
        b"HTTP/1.1 403 "
    )


def test_only_https_remotes_get_a_relay() -> None:
    assert relay_for("http://127.0.0.1:8080/octo/demo.git") is None
    https = relay_for("https://git.example.test/octo/demo.git")
    assert https is not None and https.startswith("http://127.0.0.1:")
    assert relay_for("https://git.example.test/octo/other.git") == https  # one per host


def test_a_forked_job_process_fetches_through_a_relay_of_its_own(
    tmp_path: Path, certificate: Certificate
) -> None:
    """RQ runs each job in a forked horse, where the parent's relay thread does not exist."""
    root = tmp_path / "remote"
    create_bare_repo(root / "octo" / "demo.git", {"a.py": "A = 1\n"})
    server = ServerThread(git_http_app(root, lambda t, _: t == TOKEN), tls=certificate).start()
    url = f"{server.url}/octo/demo.git"
    try:
        parents = relay_for(url)
        Workspace(tmp_path / "parent").sync_mirror(1, url, TOKEN)  # the parent's relay, used
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the horse: report its relay and whether its fetch worked, then leave
            try:
                Workspace(tmp_path / "child").sync_mirror(1, url, TOKEN)
                os.write(write, f"ok {relay_for(url)}".encode())
            except BaseException as err:  # noqa: BLE001 - reported to the parent
                os.write(write, f"failed {type(err).__name__}: {err}".encode())
            finally:
                os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            said = pipe.read()
        os.waitpid(pid, 0)
    finally:
        server.stop()
    outcome, _, childs = said.partition(" ")
    assert outcome == "ok", said
    assert childs != parents


@needs_sandbox
def test_code_the_audit_runs_cannot_reach_the_relay(tmp_path: Path) -> None:
    """The relay listens in the job's process while its audit runs: the confined tests, in a
    network namespace of their own, must not find it (nor, through it, the git host)."""
    proxy = relay_for("https://git.example.test/octo/demo.git")
    assert proxy is not None
    probe = reaching_test(int(proxy.rsplit(":", 1)[1]))

    confined = audit_pytest(tmp_path, probe, sandbox="required")
    unconfined = audit_pytest(tmp_path, probe, sandbox="off")  # the relay is there to reach

    assert confined.tools[0].status is ToolStatus.FAILED, confined.tools[0].output
    assert "ConnectionRefusedError" in confined.tools[0].output
    assert unconfined.tools[0].status is ToolStatus.PASSED, unconfined.tools[0].output


def test_a_redirect_to_another_host_is_refused_for_good_and_says_so(
    tmp_path: Path, certificate: Certificate
) -> None:
    """The git host redirects to another host (`localhost`, not `127.0.0.1`) and closes the
    connection: libgit2 asks the relay for a tunnel there, which it refuses; the task is told
    why instead of retrying. (Over a connection kept open, libgit2 1.9 sends that CONNECT into
    the old tunnel instead, to the first host, and fails on the answer: refused all the same.)"""

    async def redirect(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        there = f"https://localhost:{scope['server'][1]}{scope['path']}"
        query = scope["query_string"].decode()
        headers = [(b"location", f"{there}?{query}".encode()), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 301, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    server = ServerThread(redirect, tls=certificate).start()
    try:
        with pytest.raises(WorkspaceError) as caught:
            Workspace(tmp_path / "home").sync_mirror(1, f"{server.url}/octo/demo.git", TOKEN)
    finally:
        server.stop()
    assert "another host" in caught.value.public
