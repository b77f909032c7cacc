"""Real `web` and `worker` processes keep their secrets: /proc, git config, Sentry reports.

The worker runs as an operator runs it, with a `$HOME/.gitconfig` and an XDG git config that
redirect the git host to a listener, a Sentry DSN pointing at a local recorder, and the real
test PEM and secrets in its environment. Probe jobs (tests/probes.py) run in its job horses.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from rq import Queue, Worker
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.queue import TASKS
from tests.conftest import RedisServer
from tests.doubles.git_http import create_bare_repo, git_http_app, rev_parse
from tests.doubles.github.auth import generate_key
from tests.doubles.server import ServerThread, free_port
from tests.test_gitauth import Listener, recording_app

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "ghs_" + "Pr0beT0ken" * 4
SECRETS = {
    "GITHUB_WEBHOOK_SECRET": "webhook-secret-for-the-process-test",
    "ANTHROPIC_API_KEY": "sk-ant-api03-" + "a" * 40,
    "OPENAI_API_KEY": "test-openai-key-" + "b" * 24,
    "FEATURE_CREW_DASHBOARD_TOKEN": "dashboard-token-" + "c" * 24,
}
# Audit code runs as the worker's user with no privileges: so does the reader (and, when the
# tests run as root, the processes too, or root's capabilities would let the reader in).
UNPRIVILEGED = ["setpriv", "--inh-caps=-all", "--bounding-set=-all"] if os.geteuid() == 0 else []


@dataclass
class Envelopes:
    """What the Sentry recorder received, one decompressed envelope per POST."""

    bodies: list[bytes] = field(default_factory=list)

    @property
    def text(self) -> str:
        return b"\n".join(self.bodies).decode("utf-8", errors="replace")


def sentry_app(envelopes: Envelopes) -> Starlette:
    async def envelope(request: Request) -> Response:
        body = await request.body()
        encoding = request.headers.get("content-encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding:
            raise AssertionError(f"unexpected Content-Encoding {encoding}")
        envelopes.bodies.append(body)
        return Response('{"id": "0"}', media_type="application/json")

    return Starlette(routes=[Route("/api/{project}/envelope/", envelope, methods=["POST"])])


def _wait(condition: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never happened")
        time.sleep(0.1)
    return found


def environ_readable(pid: int) -> bool:
    """Whether our own user, unprivileged, can read the process's environment."""
    if not UNPRIVILEGED and os.geteuid() == 0:
        pytest.skip("needs setpriv to drop root's capabilities")
    done = subprocess.run(
        [*UNPRIVILEGED, "cat", f"/proc/{pid}/environ"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return done.returncode == 0 and bool(done.stdout)


def descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        children = [child for child, parent in parents.items() if parent == current]
        found += children
        todo += children
    return found


@dataclass
class WorkerWorld:
    proc: subprocess.Popen[bytes]
    redis: redis.Redis
    envelopes: Envelopes
    listener: Listener
    git_url: str
    bare: Path
    home: Path
    pem: str

    def run(self, func: str, *args: Any) -> Any:
        queue = Queue(TASKS, connection=self.redis, serializer=JSONSerializer)
        job = queue.enqueue(func, *args, job_timeout=120)
        finished = (JobStatus.FINISHED, JobStatus.FAILED)
        _wait(lambda: job.get_status(refresh=True) in finished, f"job {func}")
        job = Job.fetch(job.id, connection=self.redis, serializer=JSONSerializer)
        return job


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("needs setpriv (util-linux) to run the processes unprivileged")
    return subprocess.Popen(
        [*UNPRIVILEGED, sys.executable, "-m", "bot", *argv],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def _redirecting_git_config(home: Path, xdg: Path, git_url: str, listener: str) -> None:
    # What audit code running as the worker's user can write: both files steer libgit2.
    (home / ".gitconfig").write_text(
        f'[url "{listener}/"]\n\tinsteadOf = {git_url}/\n'
        f'[url "{listener}/push/"]\n\tpushInsteadOf = {git_url}/\n'
        f"[http]\n\tproxy = {listener}\n"
    )
    (xdg / "git").mkdir(parents=True)
    (xdg / "git" / "config").write_text(f'[url "{listener}/xdg/"]\n\tinsteadOf = {git_url}/\n')


def _base_env(tmp: Path, redis_url: str) -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "VIRTUAL_ENV", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if k in keep}
    (tmp / "config.toml").write_text("")
    return env | {
        "REDIS_URL": redis_url,
        "FEATURE_CREW_HOME": str(tmp / "crew"),
        "FEATURE_CREW_CONFIG": str(tmp / "config.toml"),
    }


@pytest.fixture(scope="module")
def worker(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerWorld]:
    tmp = tmp_path_factory.mktemp("worker")
    redis_url = redis_server.url.rsplit("/", 1)[0] + "/3"  # a database of its own
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    envelopes, listener = Envelopes(), Listener()
    sentry = ServerThread(sentry_app(envelopes)).start()
    trap = ServerThread(recording_app(listener)).start()
    listener.url = trap.url
    bare = tmp / "remote" / "octo" / "demo.git"
    create_bare_repo(bare, {"README.md": "# demo\n"})
    git = ServerThread(git_http_app(tmp / "remote", lambda t, r: t == TOKEN)).start()
    home, xdg = tmp / "home", tmp / "xdg"
    home.mkdir()
    _redirecting_git_config(home, xdg, git.url, trap.url)
    _, pem = generate_key()
    env = _base_env(tmp, redis_url) | SECRETS
    env |= {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(xdg),
        "SENTRY_DSN": f"http://publickey@127.0.0.1:{sentry.port}/1",
        "GITHUB_APP_ID": "4242",
        "GITHUB_PRIVATE_KEY": pem,
        "GITHUB_API_URL": f"{git.url}/api/v3",
    }
    proc = _start(["worker"], env, tmp / "worker.log")
    try:
        _wait(lambda: len(Worker.all(connection=client)) >= 2, "worker and sidecar registering")
        yield WorkerWorld(proc, client, envelopes, listener, git.url, bare, tmp / "jobs", pem)
    finally:
        _stop(proc)
        for server in (git, trap, sentry):
            server.stop()
        client.close()


def test_a_dumpable_process_is_readable_so_the_check_can_fail(tmp_path: Path) -> None:
    control = subprocess.Popen(
        [*UNPRIVILEGED, sys.executable, "-c", "import time; time.sleep(60)"],
        env={"MARKER": "x"},
    )
    try:
        cmdline = Path(f"/proc/{control.pid}/cmdline")
        # setpriv's own command line holds the script too: wait until it has become python.
        started = sys.executable.encode()
        _wait(lambda: cmdline.read_bytes().startswith(started), "the control process starting")
        assert environ_readable(control.pid)
    finally:
        control.kill()
        control.wait()


def test_no_worker_process_environment_is_readable(worker: WorkerWorld) -> None:
    pids = [worker.proc.pid, *descendants(worker.proc.pid)]
    assert len(pids) >= 2, "the events sidecar should be a child of the worker"
    registered = {w.pid for w in Worker.all(connection=worker.redis)}
    assert registered <= set(pids)
    for pid in pids:
        assert not environ_readable(pid), f"/proc/{pid}/environ is readable"


def test_a_job_horse_is_not_dumpable(worker: WorkerWorld) -> None:
    job = worker.run("tests.probes.dumpable")
    assert job.get_status() == JobStatus.FINISHED
    horse, flag = job.return_value()
    assert horse not in (worker.proc.pid, *[w.pid for w in Worker.all(connection=worker.redis)])
    assert flag == 0


def test_user_git_config_redirects_neither_fetch_nor_push(worker: WorkerWorld) -> None:
    job = worker.run(
        "tests.probes.sync_and_push",
        str(worker.home),
        f"{worker.git_url}/octo/demo.git",
        TOKEN,
        f"{worker.git_url}/api/v3",
    )
    assert job.get_status() == JobStatus.FINISHED, job.latest_result().exc_string
    assert rev_parse(worker.bare, "refs/heads/feature-crew/probe") == job.return_value()
    assert worker.listener.seen == []


def test_a_crash_reported_to_sentry_holds_no_secret(worker: WorkerWorld) -> None:
    before = len(worker.envelopes.bodies)
    job = worker.run("tests.probes.crash_with_secrets", TOKEN)
    assert job.get_status() == JobStatus.FAILED
    _wait(lambda: "RuntimeError" in worker.envelopes.text, "the crash report")
    _wait(lambda: len(worker.envelopes.bodies) > before, "the envelopes")
    report = worker.envelopes.text
    assert "crash_with_secrets" in report and "push failed" in report  # the report is there
    leaked = [TOKEN, TOKEN.removeprefix("ghs_"), *SECRETS.values()]
    leaked += [line for line in worker.pem.splitlines() if len(line) >= 16]
    assert [s for s in leaked if s in report] == []
    assert "PRIVATE KEY" not in report


def test_the_workers_log_holds_no_secret_and_no_traceback(worker: WorkerWorld) -> None:
    job = worker.run("tests.probes.crash_with_secrets", TOKEN)
    assert job.get_status() == JobStatus.FAILED
    log_file = worker.home.parent / "worker.log"
    _wait(lambda: "push failed" in log_file.read_text(errors="replace"), "the crash's log line")
    text = log_file.read_text(errors="replace")
    assert "about to push with" in text and "RuntimeError" in text  # the lines are there
    leaked = [TOKEN, TOKEN.removeprefix("ghs_"), *SECRETS.values()]
    leaked += [line for line in worker.pem.splitlines() if len(line) >= 16]
    assert [s for s in leaked if s in text] == []
    assert "PRIVATE KEY" not in text
    assert "Traceback (most recent call last)" not in text
    assert 'File "' not in text  # no frames either
    # Nothing of the key's body either, not even the fragment of a line the message cut short.
    body = "".join(worker.pem.splitlines()[1:-1])
    assert [w for w in re.findall(r"[A-Za-z0-9+/]{12,}", text) if w in body] == []


def test_no_web_process_environment_is_readable(redis_server: RedisServer, tmp_path: Path) -> None:
    port = free_port()
    env = _base_env(tmp_path, redis_server.url) | SECRETS | {"PORT": str(port)}
    proc = _start(["web"], env, tmp_path / "web.log")
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
            except httpx.TransportError:
                assert proc.poll() is None, (tmp_path / "web.log").read_text()
                return False

        _wait(healthy, "the web process answering /health")
        for pid in [proc.pid, *descendants(proc.pid)]:
            assert not environ_readable(pid), f"/proc/{pid}/environ is readable"
    finally:
        _stop(proc)
