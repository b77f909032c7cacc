"""`config --check`: can this process reach Redis, the GitHub App and every configured model?"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anthropic
import openai
from redis import Redis
from redis.exceptions import RedisError

from bot.github import GitHubApp
from bot.settings import Settings
from pipeline.errors import GitHubError, PermanentGitHubError
from pipeline.models import Provider

TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _where(url: str) -> str:
    """A URL without its credentials: a Redis password never reaches the terminal."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def check_redis(settings: Settings) -> Check:
    url = settings.env.redis_url
    client = Redis.from_url(url, socket_connect_timeout=3, socket_timeout=5)
    try:
        client.ping()
    except RedisError as err:
        fix = "start Redis there, or set REDIS_URL to the Redis this App should use"
        return Check("redis", False, f"{_where(url)}: {type(err).__name__}", fix)
    finally:
        client.close()
    return Check("redis", True, _where(url))


def check_github(settings: Settings) -> Iterator[Check]:
    redis = Redis.from_url(settings.env.redis_url)  # only stored: these calls never use it
    app = GitHubApp.from_settings(settings, redis)
    if app is None:
        fix = "run `feature-crew web` and open / to create the App, or set GITHUB_APP_ID and "
        yield Check("github app", False, "no credentials", fix + "GITHUB_PRIVATE_KEY[_PATH]")
        return
    try:
        me = app.call(app.app_client, "GET", "/app", retries=1).json()
    except GitHubError as err:
        yield Check("github app", False, f"{settings.api_url}: {err.public}", _app_fix(err))
        return
    yield Check("github app", True, f"{me.get('slug')} (id {me.get('id')}) on {settings.api_url}")
    try:
        found = app.call(app.app_client, "GET", "/app/installations", retries=1).json()
    except GitHubError as err:
        yield Check("installations", False, err.public, _app_fix(err))
        return
    if not found:
        fix = f"install the App: {me.get('html_url')}/installations/new"
        yield Check("installations", False, "the App is installed nowhere", fix)
    else:
        names = ", ".join(str((i.get("account") or {}).get("login")) for i in found[:5])
        yield Check("installations", True, f"{len(found)}: {names}")


def _app_fix(err: GitHubError) -> str:
    if isinstance(err, PermanentGitHubError) and err.status == 401:
        return "the key does not belong to GITHUB_APP_ID (or this clock is off): use the App's key"
    if isinstance(err, PermanentGitHubError) and err.status == 404:
        return "GITHUB_API_URL has no App with this GITHUB_APP_ID"
    return "check GITHUB_API_URL (Enterprise: https://HOST/api/v3) and the network"


def check_webhook_secret(settings: Settings) -> Check:
    if settings.webhook_secret is None:
        fix = "set GITHUB_WEBHOOK_SECRET to the App's webhook secret"
        return Check("webhook secret", False, "not set: every delivery is refused", fix)
    return Check("webhook secret", True, "set")


def _model_users(settings: Settings) -> dict[tuple[Provider, str | None, str], list[str]]:
    """Each distinct endpoint and model, with the config sections that use it."""
    config = settings.config
    users: dict[tuple[Provider, str | None, str], list[str]] = {}
    sections: list[tuple[str, Any]] = [(f"tier{n}", config.tier(n)) for n in (1, 2, 3)]
    if config.review.enabled:
        sections.append(("review", config.review))
    for name, section in sections:
        users.setdefault((section.provider, section.base_url, section.model), []).append(name)
    return users


def check_models(settings: Settings) -> Iterator[Check]:
    for (provider, base_url, model), users in _model_users(settings).items():
        name = "/".join(users)
        probe = _probe_openai if provider is Provider.OPENAI else _probe_anthropic
        try:
            detail = probe(settings, base_url, model)
        except ProbeFailed as err:
            yield Check(name, False, f"{model}: {err}", err.fix)
            continue
        yield Check(name, True, f"{model}: {detail}")


class ProbeFailed(Exception):
    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(detail)
        self.fix = fix


def _api_failure(err: Exception, where: str, key_name: str, section_hint: str) -> ProbeFailed:
    if isinstance(err, openai.APIConnectionError | anthropic.APIConnectionError):
        return ProbeFailed(f"{where} unreachable", f"start the model server, or fix {section_hint}")
    status = getattr(err, "status_code", None)
    if status in (401, 403):
        return ProbeFailed(f"{where} refused the key ({status})", f"set {key_name}")
    if status == 404:
        return ProbeFailed(f"{where} does not serve this model", "check the section's model")
    return ProbeFailed(f"{where} answered {status or type(err).__name__}", "see the server's log")


def _probe_openai(settings: Settings, base_url: str | None, model: str) -> str:
    """The models list: free, and it says whether the server has this model loaded."""
    env = settings.env
    base = base_url or env.openai_base_url or "https://api.openai.com/v1"
    key = env.openai_api_key.get_secret_value() if env.openai_api_key else "not-needed"
    client = openai.OpenAI(base_url=base, api_key=key, timeout=TIMEOUT_S, max_retries=0)
    try:
        served = [m.id for m in client.models.list()]
    except openai.OpenAIError as err:
        raise _api_failure(err, base, "OPENAI_API_KEY", "base_url or OPENAI_BASE_URL") from None
    if model not in served:
        listed = ", ".join(served[:8]) or "nothing"
        raise ProbeFailed(f"{base} serves {listed}", "load the model, or set the section's model")
    return f"listed by {base}"


def _probe_anthropic(settings: Settings, base_url: str | None, model: str) -> str:
    """A one-token request: the only call that proves both the key and the model."""
    base = base_url or settings.env.anthropic_base_url or None
    client = anthropic.Anthropic(base_url=base, timeout=TIMEOUT_S, max_retries=0)
    where = base or "api.anthropic.com"
    if client.api_key is None and client.auth_token is None:
        raise ProbeFailed("no API key", "set ANTHROPIC_API_KEY")
    try:
        client.messages.create(
            model=model, max_tokens=1, messages=[{"role": "user", "content": "ping"}]
        )
    except anthropic.AnthropicError as err:
        hint = "base_url or ANTHROPIC_BASE_URL"
        raise _api_failure(err, where, "ANTHROPIC_API_KEY", hint) from None
    return f"answered by {where}"


CHECKS: list[Callable[[Settings], Check | Iterator[Check]]] = [
    check_redis,
    check_github,
    check_webhook_secret,
    check_models,
]


def check_setup(settings: Settings) -> int:
    """Print what works and what does not, with the fix for each failure; 1 if anything fails."""
    results: list[Check] = []
    for check in CHECKS:
        found = check(settings)
        results.extend([found] if isinstance(found, Check) else found)
    width = max(len(r.name) for r in results)
    print(f"\n{'check':<{width}}  result  detail")
    for r in results:
        print(f"{r.name:<{width}}  {'ok' if r.ok else 'FAIL':<6}  {r.detail}")
        if not r.ok and r.fix:
            print(f"{'':<{width}}  {'':<6}  fix: {r.fix}")
    failed = sum(not r.ok for r in results)
    print(f"\n{failed} of {len(results)} checks failed" if failed else "\nall checks passed")
    return 1 if failed else 0
