"""The Procfile as an operator runs it (honcho), and the dashboard in front of it."""

from __future__ import annotations

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

from bot.app import create_app
from tests.doubles.server import ServerThread, free_port
from tests.helpers import SECRET, settings_with

ROOT = Path(__file__).resolve().parents[1]


def _wait_for(url: str, timeout: float = 30) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_honcho_runs_web_and_worker_from_the_procfile(redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    honcho = Path(sys.executable).with_name("honcho")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "FEATURE_CREW"))}
    env.update(
        REDIS_URL=redis_url,
        GITHUB_WEBHOOK_SECRET=SECRET,
        FEATURE_CREW_HOME=str(tmp_path),
        PATH=f"{honcho.parent}:{env['PATH']}",
    )
    proc = subprocess.Popen(
        [str(honcho), "start", "-p", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        health = _wait_for(f"http://127.0.0.1:{port}/health")
        assert health.status_code == 200 and health.json()["redis"] == "ok"
        client = redis.Redis.from_url(redis_url)
        deadline = time.monotonic() + 30
        while not Worker.all(connection=client):
            assert time.monotonic() < deadline, "the worker never registered"
            time.sleep(0.2)
        deadline = time.monotonic() + 30
        while len(Worker.all(connection=client)) < 2:
            assert time.monotonic() < deadline, "the events sidecar never registered"
            time.sleep(0.2)
        queues = sorted(sorted(w.queue_names()) for w in Worker.all(connection=client))
        assert queues == [
            ["feature-crew-events"],
            [
                "feature-crew-events",
                "feature-crew-reviews",
                "feature-crew-tasks",
                "feature-crew-tasks-tier-1",
                "feature-crew-tasks-tier-2",
                "feature-crew-tasks-tier-3",
            ],
        ]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.fixture
def dashboard(clean_env: None, redis_url: str, monkeypatch: pytest.MonkeyPatch):
    settings = settings_with(
        monkeypatch,
        {
            "REDIS_URL": redis_url,
            "GITHUB_WEBHOOK_SECRET": SECRET,
            "GITHUB_APP_ID": "7",
            "GITHUB_PRIVATE_KEY": "unused",
            "FEATURE_CREW_DASHBOARD_TOKEN": "s3cret",
        },
    )
    server = ServerThread(create_app(settings)).start()
    yield server.url
    server.stop()


def test_the_dashboard_needs_its_token(dashboard: str) -> None:
    with httpx.Client(base_url=dashboard) as client:
        assert client.get("/").status_code == 401
        assert client.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = client.get("/", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and "No tasks yet" in ok.text
        assert client.post("/login", data={"token": "nope"}).status_code == 401
        login = client.post("/login", data={"token": "s3cret"}, follow_redirects=True)
        assert login.status_code == 200 and "No tasks yet" in login.text
        assert "s3cret" not in str(client.cookies.jar)
