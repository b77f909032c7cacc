"""Shared fixtures: a real redis-server of our own, temporary homes."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bot.telemetry import _StderrHandler
from tests.doubles.server import free_port
from tests.doubles.tls import Certificate, self_signed, trust_in_libgit2
from tests.world import World, build_world


class RedisServer:
    """A redis-server process started for the test session, so tests can stop and restart it."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed; .ci/run installs it")
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    if redis_server.proc is None:
        redis_server.start()
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield redis_server.url
    if redis_server.proc is None:
        redis_server.start()
    client.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An environment with none of the operator's variables, so tests see only what they set."""
    for name in list(os.environ):
        if name.startswith(("GITHUB_", "ANTHROPIC_", "OPENAI_", "FEATURE_CREW_", "SENTRY_")):
            monkeypatch.delenv(name)
    for name in ("REDIS_URL", "PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FEATURE_CREW_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def world(
    clean_env: None, tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    """GitHub, model doubles, the web app and a burst worker, with the default config."""
    yield from build_world(tmp_path, redis_url, monkeypatch)


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for HTTPS doubles, which this process's libgit2 trusts."""
    made = self_signed(tmp_path_factory.mktemp("tls"))
    trust_in_libgit2(made)
    return made


@pytest.fixture(autouse=True)
def _no_cli_logging_left_behind() -> Iterator[None]:
    """A CLI run in-process (`bot.cli.main`) puts the product's stderr handler on the root
    logger at INFO; left there, a later test's background servers (a webhook the GitHub double
    sends after its test ended) write lines into pytest's output between tests."""
    root = logging.getLogger()
    level = root.level
    yield
    for handler in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(handler)
    root.setLevel(level)
