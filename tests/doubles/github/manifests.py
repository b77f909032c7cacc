"""GitHub's App manifest flow: the /settings/apps/new form and the code conversion."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.doubles.github import auth
from tests.doubles.github.errors import ApiError, not_found
from tests.doubles.github.http import json_response
from tests.doubles.github.state import now

if TYPE_CHECKING:
    from tests.doubles.github.double import GitHubDouble

CODE_TTL = timedelta(hours=1)
SIGNED_IN = "octocat"  # the person whose browser posts the form


@dataclass
class PendingApp:
    """A manifest the person confirmed: its code converts once, within an hour."""

    code: str
    manifest: dict[str, Any]
    owner: str
    created_at: datetime = field(default_factory=now)
    used: bool = False


def _problem(status: int, text: str) -> HTMLResponse:
    return HTMLResponse(f"<!doctype html><p>{text}</p>", status_code=status)


def _checked_manifest(raw: object) -> dict[str, Any] | str:
    """The manifest, or what GitHub would complain about."""
    try:
        manifest = json.loads(str(raw))
    except ValueError:
        return "The manifest is not valid JSON."
    if not isinstance(manifest, dict):
        return "The manifest must be a JSON object."
    if not isinstance(manifest.get("url"), str):
        return "url is required."
    hook = manifest.get("hook_attributes") or {}
    if not isinstance(hook, dict) or not isinstance(hook.get("url"), str):
        return "hook_attributes.url is required."
    if not isinstance(manifest.get("redirect_url"), str):
        return "redirect_url is required for the manifest flow."
    return manifest


async def new_app_form(request: Request) -> Response:
    """The person confirms at once: GitHub sends the browser to redirect_url with a code."""
    gh: GitHubDouble = request.app.state.github_double
    form = await request.form()
    manifest = _checked_manifest(form.get("manifest"))
    if isinstance(manifest, str):
        return _problem(422, manifest)
    org = request.path_params.get("org")
    with gh.state.lock:
        if org is not None:
            account = gh.state.users.get(org)
            if account is None or account.type != "Organization":
                return _problem(404, "Not Found")
        pending = PendingApp(secrets.token_hex(10), manifest, org or SIGNED_IN)
        gh.manifest_codes[pending.code] = pending
    query = {"code": pending.code}
    if request.query_params.get("state") is not None:
        query["state"] = request.query_params["state"]
    return RedirectResponse(f"{manifest['redirect_url']}?{urlencode(query)}", status_code=302)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "app"


def _convert(gh: GitHubDouble, code: str) -> dict[str, Any]:
    with gh.state.lock:
        pending = gh.manifest_codes.get(code)
        if pending is None or pending.used or now() - pending.created_at > CODE_TTL:
            raise not_found()
        pending.used = True
        key, pem = auth.generate_key()
        manifest = pending.manifest
        secret = secrets.token_hex(20)
        gh.adopt_app(
            app_id=gh.state.next_id(),
            slug=_slug(str(manifest.get("name") or "app")),
            key=key,
            pem=pem,
            owner=pending.owner,
        )
        gh.set_webhook(manifest["hook_attributes"]["url"], secret)
        app = gh.app_shape()
        app["permissions"] = dict(manifest.get("default_permissions") or {})
        app["events"] = list(manifest.get("default_events") or [])
        return app | {
            "client_id": app["client_id"],
            "client_secret": secrets.token_hex(20),
            "webhook_secret": secret,
            "pem": pem,
        }


async def convert_manifest_code(request: Request) -> Response:
    """POST /app-manifests/{code}/conversions: no authentication, as on GitHub."""
    gh: GitHubDouble = request.app.state.github_double
    try:
        app = await run_in_threadpool(_convert, gh, str(request.path_params["code"]))
    except ApiError as error:
        return error.response()
    return json_response(app, status=201)


WEB_ROUTES = [
    Route("/settings/apps/new", new_app_form, methods=["POST"]),
    Route("/organizations/{org}/settings/apps/new", new_app_form, methods=["POST"]),
]
API_ROUTES = [
    Route("/app-manifests/{code}/conversions", convert_manifest_code, methods=["POST"]),
]
