"""Installation tokens are shared through Redis sealed, never in plain text."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bot.github import GitHubApp
from tests.doubles.github import GitHubDouble
from tests.doubles.github.auth import generate_key


@pytest.fixture
def gh(tmp_path: Path) -> Iterator[GitHubDouble]:
    double = GitHubDouble(tmp_path / "github").start()
    yield double
    double.stop()


@pytest.fixture
def installation(gh: GitHubDouble) -> int:
    found = gh.add_installation(account="octo-org")
    gh.add_repo("octo-org", "hello", files={"a.py": "x = 1\n"}, installation_id=found)
    return found


def _app(gh: GitHubDouble, client: redis.Redis, pem: str | None = None) -> GitHubApp:
    return GitHubApp(
        app_id=gh.app_id, private_key=pem or gh.private_key_pem, api_url=gh.api_url, redis=client
    )


def _mints(gh: GitHubDouble) -> int:
    return sum(1 for m, path, status, _ in gh.requests if path.endswith("/access_tokens"))


def test_the_cached_token_is_sealed(
    gh: GitHubDouble, installation: int, redis_client: redis.Redis
) -> None:
    token = _app(gh, redis_client).installation_token(installation, "hello")

    keys = redis_client.keys("fc:token:*")
    assert len(keys) == 1
    stored = redis_client.get(keys[0])
    assert stored is not None
    secret_part = token.removeprefix("ghs_").encode()
    assert secret_part not in stored
    assert base64.b64encode(token.encode()) not in stored
    assert secret_part not in base64.b64decode(base64.b64encode(stored))
    assert b"ghs_" not in stored


def test_another_process_with_the_same_key_reuses_it(
    gh: GitHubDouble, installation: int, redis_client: redis.Redis
) -> None:
    # Each RQ job is a new fork: a second client (same App key) must find the cached token.
    first = _app(gh, redis_client).installation_token(installation, "hello")
    second = _app(gh, redis_client).installation_token(installation, "hello")
    assert second == first
    assert _mints(gh) == 1


def test_a_value_sealed_under_another_key_is_a_miss(
    gh: GitHubDouble, installation: int, redis_client: redis.Redis
) -> None:
    ours = _app(gh, redis_client).installation_token(installation, "hello")
    key = redis_client.keys("fc:token:*")[0]
    # Someone who can write Redis but lacks the key cannot plant a token for us to use.
    _, other_pem = generate_key()
    planted = GitHubApp(app_id=1, private_key=other_pem, api_url=gh.api_url, redis=redis_client)
    redis_client.set(key, planted._seal.seal(key.decode(), "ghs_planted"))

    fresh = _app(gh, redis_client).installation_token(installation, "hello")

    assert fresh not in ("ghs_planted", ours)
    assert gh.check_git_token(fresh, "octo-org/hello")
    assert _mints(gh) == 2


def test_a_sealed_token_cannot_move_to_another_repository(
    gh: GitHubDouble, installation: int, redis_client: redis.Redis
) -> None:
    gh.add_repo("octo-org", "other", files={"b.py": "y = 2\n"}, installation_id=installation)
    app = _app(gh, redis_client)
    hello = app.installation_token(installation, "hello")
    hello_key = redis_client.keys("fc:token:*")[0]
    other_key = hello_key.replace(b"hello", b"other")
    redis_client.set(other_key, redis_client.get(hello_key) or b"")

    other = _app(gh, redis_client).installation_token(installation, "other")

    assert other != hello
    assert gh.check_git_token(other, "octo-org/other")
