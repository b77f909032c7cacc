"""Setup in one click: app.yml through GitHub's manifest flow, its credentials into `.env`."""

from __future__ import annotations

import hmac
import json
import os
import re
import secrets
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import yaml
from starlette.requests import Request
from starlette.responses import Response

from bot.pages import Pages
from bot.runtime import WebRuntime

STATE_COOKIE = "feature_crew_setup"
STATE_S = 3600  # GitHub's codes live an hour; a state outliving that is of no use
ENV_FILE = Path(".env")
ENV_KEYS = ("GITHUB_APP_ID", "GITHUB_PRIVATE_KEY", "GITHUB_WEBHOOK_SECRET")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,33}$")  # GitHub: App names up to 34 chars
_ORG = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
_CODE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def load_manifest() -> dict[str, Any]:
    """app.yml as packaged: the permissions and events the App asks for."""
    text = resources.files("bot").joinpath("app.yml").read_text(encoding="utf-8")
    return dict(yaml.safe_load(text))


def manifest_for(hook_base: str, own_base: str, name: str | None) -> dict[str, Any]:
    """GitHub sends webhooks to `hook_base`; the browser comes back to this very server."""
    manifest = load_manifest()
    hook = {**manifest.get("hook_attributes", {}), "url": f"{hook_base}/webhooks"}
    manifest["hook_attributes"] = hook
    # Never an address from the query: the code (worth the App's key) must come back here.
    manifest["redirect_url"] = f"{own_base}/setup/callback"
    if name:
        manifest["name"] = name
    return manifest


def _hook_base(request: Request, own_base: str) -> str:
    given = request.query_params.get("url", "").strip().rstrip("/")
    if re.match(r"^https?://[^/\s?#]+(/[^\s?#]*)?$", given):
        return given
    return own_base


def env_file_has_app() -> bool:
    try:
        text = ENV_FILE.read_text(encoding="utf-8")
    except OSError:
        return False
    return any(line.strip().startswith("GITHUB_APP_ID=") for line in text.splitlines())


async def show_setup(request: Request) -> Response:
    """The manifest form, already filled in: one click on "Create" and GitHub does the rest."""
    rt: WebRuntime = request.app.state.runtime
    pages: Pages = request.app.state.pages
    if env_file_has_app():
        return pages.render("setup_done.html", path=str(ENV_FILE.resolve()), app=None)
    org = request.query_params.get("org", "").strip()
    name = request.query_params.get("name", "").strip()
    org = org if _ORG.match(org) else ""
    name = name if _NAME.match(name) else ""
    own = str(request.base_url).rstrip("/")
    base = _hook_base(request, own)
    state = pages.sessions.sign(secrets.token_urlsafe(24))
    where = f"/organizations/{quote(org)}/settings/apps/new" if org else "/settings/apps/new"
    response = pages.render(
        "setup.html",
        action=f"{rt.settings.web_url}{where}?{urlencode({'state': state})}",
        manifest=json.dumps(manifest_for(base, own, name or None)),
        missing=_missing(rt),
        org=org,
        name=name,
        base=base,
        web_url=rt.settings.web_url,
    )
    # Lax, not Strict: the cookie must come back on GitHub's redirect to the callback.
    response.set_cookie(
        STATE_COOKIE,
        state,
        max_age=STATE_S,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


def _missing(rt: WebRuntime) -> list[str]:
    env = rt.settings.env
    present = (
        env.github_app_id is not None,
        rt.settings.private_key is not None,
        env.github_webhook_secret is not None,
    )
    return [name for name, ok in zip(ENV_KEYS, present, strict=True) if not ok]


def _state_ok(request: Request, pages: Pages) -> bool:
    """CSRF: the state GitHub hands back is the one this process gave this browser."""
    given = request.query_params.get("state", "")
    kept = request.cookies.get(STATE_COOKIE, "")
    if not given or not hmac.compare_digest(given.encode(), kept.encode()):
        return False
    return pages.sessions.signed(given)


async def finish_setup(request: Request) -> Response:
    """GitHub's redirect: trade the code for the App's credentials and keep them in `.env`."""
    rt: WebRuntime = request.app.state.runtime
    pages: Pages = request.app.state.pages
    if rt.settings.app_configured and rt.settings.webhook_secret is not None:
        return pages.render("message.html", status=409, message="The App is already set up.")
    if env_file_has_app():
        return pages.render("setup_done.html", status=409, path=str(ENV_FILE.resolve()), app=None)
    if not _state_ok(request, pages):
        message = "This setup link was not started from this server: start again from /."
        return pages.render("message.html", status=403, message=message)
    code = request.query_params.get("code", "")
    if not _CODE.match(code):
        return pages.render("message.html", status=400, message="GitHub sent no usable code.")
    app, problem = await _convert(rt.settings.api_url, code)
    if app is None:
        return pages.render("message.html", status=502, message=problem)
    write_env(ENV_FILE, app)
    response = pages.render("setup_done.html", path=str(ENV_FILE.resolve()), app=app)
    response.delete_cookie(STATE_COOKIE)
    return response


async def _convert(api_url: str, code: str) -> tuple[dict[str, Any] | None, str]:
    """POST /app-manifests/{code}/conversions (no auth); the App, or why there is none."""
    url = f"{api_url}/app-manifests/{quote(code)}/conversions"
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    try:
        async with httpx.AsyncClient(timeout=15) as client:
            reply = await client.post(url, headers=headers)
    except httpx.HTTPError as err:
        return None, f"Could not reach {api_url} ({type(err).__name__}); check GITHUB_API_URL."
    if reply.status_code == 404:
        return None, "GitHub does not know this code: it was used already or is over an hour old."
    try:
        app = reply.json()
    except ValueError:
        app = None
    fields = ("id", "slug", "pem", "webhook_secret")
    if reply.status_code != 201 or not isinstance(app, dict) or not all(app.get(f) for f in fields):
        return None, f"GitHub answered {reply.status_code} to the code exchange; start again."
    return app, ""


def _quoted(value: str) -> str:
    # Both python-dotenv and honcho read "\n" inside double quotes as a newline.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def write_env(path: Path, app: dict[str, Any]) -> None:
    """Set the three credentials in `.env`, keeping its other lines; only the owner may read it."""
    try:
        kept = [
            line
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.split("=", 1)[0].strip() not in ENV_KEYS
        ]
    except FileNotFoundError:
        kept = []
    values = (str(int(app["id"])), str(app["pem"]), str(app["webhook_secret"]))
    lines = [*kept, f"# GitHub App {app['slug']}, created by the setup page"]
    lines += [f"{key}={_quoted(value)}" for key, value in zip(ENV_KEYS, values, strict=True)]
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    path.chmod(0o600)
