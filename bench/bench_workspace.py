"""Workspace: a task's git overhead against the plain git CLI doing the same steps.

Both sides work against the same repository behind the real `git http-backend` (the tests'
smart-HTTP remote), with token auth, over HTTPS as GitHub serves it (a certificate made at run
time; `--http` for plain HTTP). Per task: fetch what changed, a fresh worktree on a new
branch at the base, one commit, one push. The floor is git: `git fetch`, `git worktree add
-b`, `git commit -a`, `git push`. Prints medians and the ratio against its target.

It also times, at the remote, each POST from its headers to its last body byte: libgit2 sets no
TCP_NODELAY and writes a POST's headers and its body (each chunk, for a push) separately, so
Nagle holds the body until the receiver ACKs the headers, and a receiver in delayed-ACK mode
waits ~40 ms to do so, over HTTPS as over HTTP. `--quickack` makes the remote ACK at once
(TCP_QUICKACK after every read), which shows what the steps cost without that stall.
`python bench/bench_workspace.py [TASKS] [FILES] [--http] [--quickack]`.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import verdict
from pipeline.workspace import Workspace
from tests.doubles.git_http import commit_files, create_bare_repo, git_http_app
from tests.doubles.server import ServerThread
from tests.doubles.tls import self_signed, trust_in_libgit2

TOKEN = "ghs_bench"
TARGET_RATIO = 1.5  # our steps may cost at most this much of the git CLI's


POST_WAITS: dict[str, list[float]] = {"libgit2": [], "git CLI": []}


def timing_posts(app: Any) -> Any:
    """The app, noting for each POST how long its body took to follow its headers."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await app(scope, receive, send)
        start = time.perf_counter()
        agent = dict(scope["headers"]).get(b"user-agent", b"")
        waits = POST_WAITS["libgit2" if b"libgit2" in agent else "git CLI"]

        async def timed_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body"):
                waits.append(time.perf_counter() - start)
            return message

        return await app(scope, timed_receive, send)

    return wrapped


class QuickAckProtocol(HttpToolsProtocol):
    """uvicorn's protocol, but the kernel ACKs every segment at once instead of delaying."""

    def _quickack(self) -> None:
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._quickack()

    def data_received(self, data: bytes) -> None:
        self._quickack()
        super().data_received(data)


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def ours(ws: Workspace, url: str, n: int) -> float:
    start = time.perf_counter()
    ws.sync_mirror(1, url, TOKEN)
    tree = ws.prepare_worktree(1, f"ours-{n}", f"ours/{n}", "main")
    (tree.path / "module_0.py").write_text(f"VALUE = {n}\n")
    tree.commit_all("bench", "bench", "bench@example.com", paths=["module_0.py"])
    tree.push(url, TOKEN)
    elapsed = time.perf_counter() - start
    ws.remove_worktree(1, f"ours-{n}")
    return elapsed


def floor(clone: Path, authed_url: str, n: int) -> float:
    start = time.perf_counter()
    _git("fetch", "-q", "origin", cwd=clone)
    tree = clone.parent / f"floor-{n}"
    _git("worktree", "add", "-q", "-b", f"floor/{n}", str(tree), "origin/main", cwd=clone)
    (tree / "module_0.py").write_text(f"VALUE = {n}\n")
    _git("-c", "user.name=b", "-c", "user.email=b@e", "commit", "-qam", "bench", cwd=tree)
    _git("push", "-q", authed_url, f"floor/{n}", cwd=tree)
    elapsed = time.perf_counter() - start
    _git("worktree", "remove", "--force", str(tree), cwd=clone)
    return elapsed


def main(tasks: int, files: int, quickack: bool, https: bool) -> None:
    root = Path(tempfile.mkdtemp())
    bare = root / "git" / "octo" / "bench.git"
    create_bare_repo(bare, {f"module_{i}.py": f"VALUE = {i}\n" * 20 for i in range(files)})
    tls = self_signed(root / "tls") if https else None
    if tls:
        trust_in_libgit2(tls)
        os.environ["GIT_SSL_CAINFO"] = str(tls.cert)  # the git CLI floor trusts it too
    app = timing_posts(git_http_app(root / "git", lambda t, r: t == TOKEN))
    server = ServerThread(app, tls=tls)
    if quickack:
        server._server.config.http = QuickAckProtocol  # bench only: uvicorn takes a class
    server.start()
    url = f"{server.url}/octo/bench.git"
    authed = url.replace("://", f"://x-access-token:{TOKEN}@")
    try:
        ws = Workspace(root / "home")
        start = time.perf_counter()
        ws.sync_mirror(1, url, TOKEN)
        first_ours = time.perf_counter() - start
        start = time.perf_counter()
        _git("clone", "-q", authed, str(root / "clone"), cwd=root)
        first_git = time.perf_counter() - start
        ours_t, floor_t = [], []
        for n in range(tasks):
            commit_files(bare, {"CHANGES.md": f"change {n}\n"}, message=f"upstream {n}")
            ours_t.append(ours(ws, url, n))
            floor_t.append(floor(root / "clone", authed, n))
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    transport = "HTTPS" if https else "plain HTTP"
    for client, waits in POST_WAITS.items():
        print(
            f"{transport}, remote with {'quick' if quickack else 'delayed'} ACKs, {client:<8} "
            f"POST headers -> body median {statistics.median(waits) * 1e3:5.1f} ms "
            f"({len(waits)} POSTs)"
        )
    print(f"first sync     ours {first_ours * 1e3:7.1f} ms   git clone {first_git * 1e3:7.1f} ms")
    med_o, med_f = statistics.median(ours_t), statistics.median(floor_t)
    print(f"per task       ours {med_o * 1e3:7.1f} ms   git CLI   {med_f * 1e3:7.1f} ms")
    ratio = med_o / med_f
    print(f"ratio {ratio:.2f}x the git CLI floor (target <= {TARGET_RATIO:.1f}x)")
    verdict("bench_workspace", ratio, TARGET_RATIO, ratio <= TARGET_RATIO)


if __name__ == "__main__":
    flags = [a for a in sys.argv[1:] if a.startswith("--")]
    args = [int(a) for a in sys.argv[1:] if not a.startswith("--")][:2]
    tasks, files = args + [15, 200][len(args) :]
    main(tasks, files, quickack="--quickack" in flags, https="--http" not in flags)
