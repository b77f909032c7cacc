"""Small helpers shared by tests: settings from a given environment, signed deliveries, a fork."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.settings import Settings, load_settings
from bot.signature import signature_for

SECRET = "test-webhook-secret"
# GitHub's example payloads, kept in the repository (MIT, see tests/payloads/LICENSE).
PAYLOADS = Path(__file__).resolve().parent / "payloads"


def settings_with(
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    config: str | None = None,
    tmp_path: Path | None = None,
) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if config is not None:
        assert tmp_path is not None
        path = tmp_path / "config.toml"
        path.write_text(config)
        monkeypatch.setenv("FEATURE_CREW_CONFIG", str(path))
    return load_settings()


def example(name: str) -> dict[str, Any]:
    """One of GitHub's own example payloads, e.g. "issues/labeled"."""
    return json.loads((PAYLOADS / f"{name}.payload.json").read_text())


def signed(
    event: str,
    payload: dict[str, Any] | bytes,
    secret: str = SECRET,
    delivery: str | None = None,
) -> tuple[dict[str, str], bytes]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": signature_for(secret.encode(), body),
        "Content-Type": "application/json",
    }
    return headers, body


def in_a_fork(work: Callable[[], bytes]) -> bytes:
    """What work() returns when run in a forked child (as RQ runs a job in its horse);
    b"" when it raised."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            os.write(write, work())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as answer:
        said = answer.read()
    os.waitpid(pid, 0)
    return said
