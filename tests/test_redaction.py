"""No repr of a settings or runtime object shows a secret; the Sentry scrubber removes them."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.github import GitHubApp
from bot.local_repo import client_for_task
from bot.runtime import WebRuntime
from bot.settings import Settings
from bot.telemetry import REDACTED, OneLineFormatter, Scrubber
from pipeline.context import Context
from pipeline.gitauth import TokenCallbacks
from pipeline.workspace import Workspace
from tests.doubles.github.auth import generate_key
from tests.helpers import settings_with

TOKEN = "ghs_" + "R3prT0ken" * 4
SECRETS = {
    "GITHUB_WEBHOOK_SECRET": "webhook-secret-in-repr-test",
    "OPENAI_API_KEY": "openai-key-in-repr-test",
    "ANTHROPIC_API_KEY": "anthropic-key-in-repr-test",
    "FEATURE_CREW_DASHBOARD_TOKEN": "dashboard-token-in-repr-test",
}


@pytest.fixture
def settings(clean_env: None, monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Settings:
    _, pem = generate_key()
    env = {"GITHUB_APP_ID": "7", "GITHUB_PRIVATE_KEY": pem, "REDIS_URL": redis_url, **SECRETS}
    return settings_with(monkeypatch, env)


def _fragments(settings: Settings) -> list[str]:
    assert settings.private_key is not None
    pem = settings.private_key.get_secret_value()
    return [TOKEN, *SECRETS.values(), *[line for line in pem.splitlines() if "-----" not in line]]


def _shown(obj: Any) -> str:
    """What a log line, a traceback or an error report would print of it."""
    return f"{obj!r}\n{obj!s}\n{obj}"


def test_no_settings_or_runtime_object_shows_a_secret(settings: Settings, tmp_path: Path) -> None:
    runtime = WebRuntime.build(settings)
    github = GitHubApp.from_settings(settings, runtime.redis)
    assert github is not None
    repo = github.for_repo(1, "o/r", 2)
    repos = client_for_task(github, runtime.redis)
    deps = Context(
        settings.config,
        settings.endpoints,
        runtime.store,
        runtime.queue,
        Workspace(tmp_path),
        repos,
        github,
    )
    objects = [
        settings,
        settings.env,
        settings.private_key,
        settings.env.github_webhook_secret,
        settings.config,
        runtime,
        github,
        github.app_client,
        github.app_client.auth,
        github.token_client(TOKEN),
        github.token_client(TOKEN).auth,
        repo,
        deps,
        TokenCallbacks(TOKEN, "https://github.com/o/r.git", "https://github.com"),
    ]
    shown = "\n".join(_shown(obj) for obj in objects)
    assert [f for f in _fragments(settings) if f in shown] == []
    assert "PRIVATE KEY" not in shown


def test_the_scrubber_removes_secrets_and_anything_shaped_like_one(settings: Settings) -> None:
    assert settings.private_key is not None
    pem = settings.private_key.get_secret_value()
    scrub = Scrubber(settings.secrets)
    event = {
        "message": f"push failed for https://x-access-token:{TOKEN}@github.com/o/r.git",
        "exception": {"values": [{"value": f"key {pem[:200]}", "type": "RuntimeError"}]},
        "extra": {"args": [TOKEN, pem.splitlines()[5]], "note": f"secret={SECRETS}"},
        "request": {"headers": {"Authorization": "token abc", "X-Trace": "Bearer abcdefghijkl"}},
        "breadcrumbs": {"values": [{"message": "github_pat_" + "A1" * 20}]},
        "logentry": {
            "params": ["ghp_" + "z" * 36, "sk-ant-api03-" + "k" * 30, "sk-proj-" + "o" * 30]
        },
        "jwt": "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiI3In0.c2lnbmF0dXJlc2lnbmF0dXJl",
        "fine": "task 12 failed: the model asked a question",
    }
    cleaned = scrub.event(event)
    text = repr(cleaned)
    assert [f for f in _fragments(settings) if f in text] == []
    for shaped in ("github_pat_", "ghp_", "sk-ant-", "sk-proj-", "eyJ", "abcdefghijkl", "abc'"):
        assert shaped not in text
    assert cleaned["fine"] == event["fine"]
    assert cleaned["request"]["headers"]["Authorization"] == REDACTED
    assert cleaned["exception"]["values"][0]["type"] == "RuntimeError"


def test_a_log_record_is_one_scrubbed_line_without_frames() -> None:
    formatter = OneLineFormatter(Scrubber(["held-secret-value"]))
    try:
        raise ValueError(f"bad {TOKEN}")
    except ValueError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "issue said %s", ("hi\nFAKE INFO line",), None
        )
        record.exc_info = sys.exc_info()
    line = formatter.format(record)
    assert "\n" not in line and "hi\\nFAKE INFO line" in line
    assert "ValueError: bad [redacted] at tests/test_redaction.py:" in line
    assert TOKEN not in line and "Traceback" not in line


def test_a_redis_password_and_any_url_credential_are_scrubbed(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "redis://:Redis-Pa55word-here@10.0.0.5:6379/0"
    settings = settings_with(monkeypatch, {"REDIS_URL": url})
    assert "Redis-Pa55word-here" in settings.secrets
    scrub = Scrubber(settings.secrets)
    said = scrub.text(f"cannot reach {url}; index https://ci:idx-t0ken@pypi.example/simple")
    assert "Redis-Pa55word-here" not in said
    assert "idx-t0ken" not in said
    assert "10.0.0.5:6379" in said and "pypi.example/simple" in said


_KEY = generate_key()[1]
_SHAPED = Scrubber(["webhook-secret-x", _KEY])
_PIECES = [
    "-----BEGIN RSA PRIVATE KEY-----", "-----END", "ghp_", "ghs_", "github_pat_", "sk-", "ant-",
    "proj-", "eyJ", ".", "x-access-token:", "X-Access-Token:", "Bearer ", "BASIC\t", "token ",
    "ToKeN  ", "baſic ", "\u212aey", "webhook-secret-x", _KEY.splitlines()[3], "/", "@", " ",
    "delivery 0b6bd4a0-8f2d-11ee issues.labeled queued", "A1b2C3d4E5f6G7h8I9j0", "://", ":",
]  # fmt: skip


_TAIL = "A1b2C3d4E5f6G7h8I9j0"
_SHAPES = [
    f"-----BEGIN X-----{_TAIL}", f"ghr_{_TAIL}", f"github_pat_{_TAIL}", f"sk-{_TAIL}",
    f"eyJ{_TAIL}.{_TAIL}.x", f"x-access-token:{_TAIL}@", f"X-ACCESS-TOKEN:{_TAIL}@",
    f"Bearer {_TAIL}", f"BASIC\t{_TAIL}", f"ToKen {_TAIL}", f"baſic {_TAIL}", f"\u212aey {_TAIL}",
    f"tO\u212aen {_TAIL}", "webhook-secret-x", f"redis://:{_TAIL}@h", f"https://u:{_TAIL}@h/",
]  # fmt: skip


@pytest.mark.parametrize("shape", _SHAPES)
def test_the_scrubbers_shortcut_never_skips_a_shape(shape: str) -> None:
    for text in (shape, f"delivery 12 {shape} queued"):
        assert _SHAPED.text(text) == _SHAPED._pattern.sub(REDACTED, text)
        assert _SHAPED.text(text) != text or "\u212a" in shape  # the regex has no Kelvin sign


@given(st.lists(st.sampled_from(_PIECES) | st.text(max_size=8), max_size=12))
@hypothesis.settings(max_examples=400, deadline=None)
def test_the_scrubbers_shortcut_changes_nothing(pieces: list[str]) -> None:
    # A text holding none of what any pattern needs is left alone without the regex's scan:
    # the answer must be the scan's own, whatever the text.
    text = "".join(pieces)
    assert _SHAPED.text(text) == _SHAPED._pattern.sub(REDACTED, text)
