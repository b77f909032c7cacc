"""The GitHub App client: app JWT calls, installation tokens sealed in Redis, REST with retries."""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
from githubkit import AppAuthStrategy, GitHub, TokenAuthStrategy
from githubkit.cache import MemCacheStrategy
from githubkit.exception import GitHubException, RequestFailed
from redis import Redis

from bot import keys
from bot.github_repo import RepoClient
from bot.sealed import TokenSeal
from bot.settings import Settings
from pipeline.errors import PermanentGitHubError, TransientGitHubError
from pipeline.identity import AppIdentity

log = logging.getLogger(__name__)

API_VERSION = "2022-11-28"
TOKEN_MARGIN_S = 600  # a token handed out stays valid for at least this long (a push, a call)
MAX_INLINE_WAIT_S = 20.0  # longer rate-limit waits go back to the queue as a delayed retry
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})
# What the App's tokens may do; narrower than the App's grant is fine, wider is a 422.
TOKEN_PERMISSIONS = {
    "contents": "write",
    "issues": "write",
    "pull_requests": "write",
    "checks": "write",
    "metadata": "read",
}


class _AppAuth(AppAuthStrategy):
    def __repr__(self) -> str:  # the dataclass repr would print the private key
        return f"AppAuth(app_id={self.app_id!r})"


class _TokenAuth(TokenAuthStrategy):
    def __repr__(self) -> str:
        return "TokenAuth()"


# An idle connection is dropped before a server's idle timeout could close it under a request
# (uvicorn's default is 5 s, GitHub's longer): a POST lost that way is not safe to repeat.
_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=4.0)


class SharedPool(httpx.BaseTransport):
    """The process's one pool of connections to GitHub, behind every client made here.

    githubkit builds and closes an httpx.Client for each request made outside a `with` block:
    each call would load the CA bundle again (~17 ms of CPU) and open a new connection (a TCP
    and a TLS handshake with GitHub). A pool inherited through a fork (RQ's horse) stays the
    parent's: the child starts its own and never writes to the parent's sockets.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: httpx.HTTPTransport | None = None
        self._inherited: list[httpx.HTTPTransport] = []
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        self._lock = threading.Lock()  # another thread may have held it at the fork
        if self._pool is not None:
            # Kept, not closed: closing would shut connections the parent is still using.
            self._inherited.append(self._pool)
            self._pool = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            if self._pool is None:
                self._pool = httpx.HTTPTransport(limits=_LIMITS)
            pool = self._pool
        return pool.handle_request(request)

    def close(self) -> None:
        """A client's close, after each of githubkit's requests: the pool outlives it."""


@functools.cache
def shared_pool() -> SharedPool:
    return SharedPool()


def _transport() -> SharedPool | None:
    # httpx ignores HTTP(S)_PROXY and NO_PROXY for a client given its own transport: behind a
    # proxy each call builds its client as githubkit would, through the proxy.
    return None if urllib.request.getproxies() else shared_pool()


def _client(auth: Any, base_url: str) -> GitHub[Any]:
    # Our own retry policy decides what is safe to repeat; githubkit's would re-POST on 5xx.
    return GitHub(
        auth,
        base_url=base_url,
        transport=_transport(),
        auto_retry=False,
        http_cache=False,
        # githubkit's default cache is process-wide and keyed by app id: keep JWTs per client.
        cache_strategy=MemCacheStrategy(),
        timeout=30.0,
        user_agent="feature-crew",
        rest_api_validate_body=False,
    )


def _message(err: RequestFailed) -> str:
    try:
        body = err.response.json()
    except ValueError:
        return err.response.text[:200]
    if not isinstance(body, dict):
        return str(body)[:200]
    message = str(body.get("message", ""))
    details = body.get("errors")
    if details:
        message += ": " + json.dumps(details)[:300]
    return message


def _retry_after(err: RequestFailed) -> float | None:
    """GitHub's rate limits: 429, or 403 with Retry-After or an exhausted primary quota."""
    status, headers = err.response.status_code, err.response.headers
    if status not in (403, 429):
        return None
    if "retry-after" in headers:
        return float(headers["retry-after"])
    if headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in headers:
        return max(float(headers["x-ratelimit-reset"]) - time.time(), 1.0)
    if status == 429 or "secondary rate limit" in err.response.text.lower():
        return 60.0  # GitHub: without Retry-After, wait at least a minute
    return None


def _classify(err: GitHubException, method: str, path: str) -> tuple[TransientGitHubError, bool]:
    """A transient failure and whether repeating the request is safe; permanent ones raise."""
    if not isinstance(err, RequestFailed):
        # The request may or may not have reached GitHub: only idempotent calls are repeated.
        name = type(getattr(err, "exc", err)).__name__
        failure = TransientGitHubError(0, f"network error: {name}", method=method, path=path)
        return failure, method in _IDEMPOTENT
    status = err.response.status_code
    wait = _retry_after(err)
    if wait is None and status < 500:
        raise PermanentGitHubError(status, _message(err), method=method, path=path) from None
    failure = TransientGitHubError(
        status, _message(err), method=method, path=path, retry_after=wait
    )
    # A rate-limited request was not processed, so even a POST may be sent again.
    return failure, wait is not None or method in _IDEMPOTENT


class GitHubApp:
    """App-level calls (JWT) and per-repository clients with scoped installation tokens."""

    def __init__(self, *, app_id: int, private_key: str, api_url: str, redis: Redis) -> None:
        self.app_id = app_id
        self.api_url = api_url.rstrip("/")
        self.redis = redis
        self.app_client = _client(_AppAuth(str(app_id), private_key), self.api_url)
        self._seal = TokenSeal(private_key)

    @classmethod
    def from_settings(cls, settings: Settings, redis: Redis) -> GitHubApp | None:
        """The App's client, or None while its id or key is not configured."""
        if settings.env.github_app_id is None or settings.private_key is None:
            return None  # the same test as Settings.app_configured, spelled out for mypy
        return cls(
            app_id=settings.env.github_app_id,
            private_key=settings.private_key.get_secret_value(),
            api_url=settings.api_url,
            redis=redis,
        )

    def call(
        self, client: GitHub[Any], method: str, path: str, *, retries: int = 3, **kw: Any
    ) -> Any:
        """One REST call; transient failures retried here only when repeating is safe."""
        headers = {"X-GitHub-Api-Version": API_VERSION, "Accept": "application/vnd.github+json"}
        for attempt in range(retries):
            try:
                return client.request(method, path, headers=headers, **kw)
            except GitHubException as err:
                failure, safe = _classify(err, method, path)
            wait = failure.retry_after
            delay = wait if wait is not None else 0.5 * 2**attempt
            if not safe or attempt == retries - 1 or delay > MAX_INLINE_WAIT_S:
                raise failure
            log.warning("%s; retrying in %.1fs", failure, delay)
            time.sleep(delay)
        raise AssertionError("unreachable")

    def identity(self) -> AppIdentity:
        """The App's slug and bot login, cached for an hour."""
        key = keys.app(self.app_id)
        raw = self.redis.get(key)
        if isinstance(raw, bytes | str):
            return AppIdentity.model_validate_json(raw)
        app = self.call(self.app_client, "GET", "/app").json()
        ident = AppIdentity.of_app(int(app["id"]), str(app["slug"]))
        self.redis.set(key, ident.model_dump_json(), ex=3600)
        return ident

    def installation_token(self, installation_id: int, repo_name: str) -> str:
        """A token scoped to one repository, minted on demand and shared, sealed, through Redis.

        Redis rather than process memory: RQ forks a horse per job, so a memory cache would
        mint a token for every job.
        """
        key = keys.token(installation_id, repo_name)
        cached = self.redis.get(key)
        if isinstance(cached, bytes) and (token := self._seal.open(key, cached)) is not None:
            return token
        data = self._mint(installation_id, repo_name)
        expires = datetime.fromisoformat(data["expires_at"].replace("Z", "+00:00")).timestamp()
        ttl = int(expires - time.time() - TOKEN_MARGIN_S)
        if ttl > 0:
            self.redis.set(key, self._seal.seal(key, data["token"]), ex=ttl)
        return str(data["token"])

    def _mint(self, installation_id: int, repo_name: str) -> dict[str, Any]:
        path = f"/app/installations/{installation_id}/access_tokens"
        body: dict[str, Any] = {"repositories": [repo_name], "permissions": TOKEN_PERMISSIONS}
        try:
            return dict(self.call(self.app_client, "POST", path, json=body).json())
        except PermanentGitHubError as err:
            if err.status != 422:
                raise
        # The installation was granted fewer permissions than we ask for: take what it has,
        # still scoped to the one repository; a missing one then fails where it is needed.
        log.warning("installation %s lacks some of %s", installation_id, TOKEN_PERMISSIONS)
        body = {"repositories": [repo_name]}
        return dict(self.call(self.app_client, "POST", path, json=body).json())

    def forget_token(self, installation_id: int, repo_name: str) -> None:
        self.redis.delete(keys.token(installation_id, repo_name))

    def installation_for(self, full_name: str) -> int:
        data = self.call(self.app_client, "GET", f"/repos/{full_name}/installation").json()
        return int(data["id"])

    def for_repo(self, installation_id: int, full_name: str, repo_id: int) -> RepoClient:
        return RepoClient(self, installation_id, full_name, repo_id)

    def token_client(self, token: str) -> GitHub[Any]:
        return _client(_TokenAuth(token), self.api_url)

    def paginate(self, client: GitHub[Any], path: str, **params: Any) -> Iterator[Any]:
        """Every item of a list endpoint, following GitHub's Link headers."""
        url: str | None = path
        query: dict[str, Any] | None = {"per_page": 100, **params}
        while url is not None:
            response = self.call(client, "GET", url, params=query)
            yield from response.json()
            url = response.raw_response.links.get("next", {}).get("url")
            query = None  # the next link carries the query
