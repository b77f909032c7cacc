"""Request plumbing shared by the REST routes: auth, scoping, pagination, faults, the log."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.doubles.github import auth
from tests.doubles.github.errors import ApiError, invalid, not_found
from tests.doubles.github.state import Fault, Repo, RequestRecord, Token

if TYPE_CHECKING:
    from tests.doubles.github.double import GitHubDouble

API_PREFIX = "/api/v3"
ACTOR_KEY = "github_double.actor"


@dataclass
class Ctx:
    """One authenticated request, handed to a route's synchronous body under the state lock."""

    gh: GitHubDouble
    request: Request
    body: Any
    token: Token | None
    repo: Repo | None

    @property
    def actor(self) -> str:
        return self.gh.bot_login

    def param(self, name: str) -> str:
        return str(self.request.path_params[name])

    def number(self, name: str) -> int:
        return int(self.request.path_params[name])

    def query(self, name: str, default: str | None = None) -> str | None:
        return self.request.query_params.get(name, default)

    def field(self, name: str, kind: type | tuple[type, ...], required: bool = False) -> Any:
        value = self.body.get(name) if isinstance(self.body, dict) else None
        if value is None:
            if required:
                raise invalid({"resource": "Body", "code": "missing_field", "field": name})
            return None
        if not isinstance(value, kind):
            raise invalid({"resource": "Body", "code": "invalid", "field": name})
        return value

    @property
    def owned_repo(self) -> Repo:
        assert self.repo is not None
        return self.repo


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(data, status_code=status, headers=headers)


def paginate(ctx: Ctx, items: list[Any]) -> Response:
    """GitHub's page/per_page slicing with a Link header (next, last, first, prev)."""
    try:
        per_page = max(1, min(100, int(ctx.query("per_page") or 30)))
        page = max(1, int(ctx.query("page") or 1))
    except ValueError as exc:
        raise invalid(message="Invalid pagination parameters") from exc
    last = max(1, -(-len(items) // per_page))
    chunk = items[(page - 1) * per_page : page * per_page]
    base = str(ctx.request.url.replace(query=""))
    params = dict(ctx.request.query_params)

    def link(number: int, rel: str) -> str:
        return (
            f'<{base}?{urlencode({**params, "per_page": per_page, "page": number})}>; rel="{rel}"'
        )

    links = []
    if page < last:
        links += [link(page + 1, "next"), link(last, "last")]
    if page > 1:
        links += [link(1, "first"), link(min(page - 1, last), "prev")]
    return json_response(chunk, headers={"Link": ", ".join(links)} if links else None)


Handler = Callable[[Ctx], Response]


def endpoint(
    auth_kind: str = "token", perms: tuple[str, ...] = ()
) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wrap a synchronous route body: parse JSON, authenticate, scope to the repo, lock.

    auth_kind is "jwt" (the App itself) or "token" (an installation); perms lists
    `name:level` alternatives the token must hold (GitHub answers 403 otherwise).
    """

    def wrap(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            gh: GitHubDouble = request.app.state.github_double
            raw = await request.body()
            try:
                body = json.loads(raw) if raw.strip() else {}
            except ValueError:
                return ApiError(400, "Problems parsing JSON").response()

            def run() -> Response:
                with gh.state.lock:
                    return fn(_context(gh, request, body, auth_kind, perms))

            try:
                return await run_in_threadpool(run)
            except ApiError as error:
                return error.response()

        return handler

    return wrap


def _context(
    gh: GitHubDouble, request: Request, body: Any, auth_kind: str, perms: tuple[str, ...]
) -> Ctx:
    token: Token | None = None
    if auth_kind == "jwt":
        auth.verify_jwt(request.headers, gh.private_key, gh.app_id)
        request.scope[ACTOR_KEY] = f"app:{gh.app_id}"
    else:
        token = auth.token_from_headers(gh.state, request.headers)
        request.scope[ACTOR_KEY] = gh.bot_login
    repo = None
    if "owner" in request.path_params:
        full = f"{request.path_params['owner']}/{request.path_params['repo']}"
        repo = gh.state.repos.get(full)
        if repo is None or (token is not None and not auth.covers(token, repo)):
            raise not_found()
    if token is not None and perms:
        auth.require(token, *perms)
    return Ctx(gh=gh, request=request, body=body, token=token, repo=repo)


async def not_found_route(request: Request) -> Response:
    return not_found().response()


class Recorder:
    """ASGI middleware: answer injected faults first, then log (method, path, status, actor)."""

    def __init__(self, app: ASGIApp, gh: GitHubDouble) -> None:
        self.app, self.gh = app, gh

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        short = path[len(API_PREFIX) :] if path.startswith(API_PREFIX) else path
        fault = self._take_fault(scope["method"], short)
        status = 0

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        if fault is not None and fault.status == 0:
            await self._hold(fault.hold_s)
            fault = None
        if fault is not None:
            response = JSONResponse(fault.body, status_code=fault.status, headers=fault.headers)
            await response(scope, receive, recording_send)
        else:
            await self.app(scope, receive, recording_send)
        with self.gh.state.lock:
            self.gh.state.requests.append(
                RequestRecord(
                    scope["method"], short, status, scope.get(ACTOR_KEY), scope.get("client")
                )
            )

    async def _hold(self, seconds: float) -> None:
        # Polled, so a test can let the request go (or the server stop) without waiting it out.
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.gh.state.held.is_set():
            await asyncio.sleep(0.05)

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.gh.state.lock:
            for fault in self.gh.state.faults:
                if fault.method in (method, "*") and re.search(fault.path_regex, path):
                    fault.count -= 1
                    if fault.count <= 0:
                        self.gh.state.faults.remove(fault)
                    return fault
        return None
