"""HTML pages from the packaged Jinja2 templates, and the dashboard's signed session cookie."""

from __future__ import annotations

import hmac
import secrets
import time
from hashlib import sha256

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from pipeline.messages import usd

COOKIE = "feature_crew_session"
SESSION_S = 12 * 3600


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.1f} h"


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at))


class Sessions:
    """Cookies signed with a key made at process start: a restart ends every session.

    The cookie is never derived from the token itself, so a stolen cookie does not outlive
    its expiry or the process, and says nothing about the token.
    """

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def _mac(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), sha256).hexdigest()

    def start(self, response: Response, *, secure: bool) -> None:
        payload = f"{int(time.time()) + SESSION_S}.{secrets.token_urlsafe(12)}"
        response.set_cookie(
            COOKIE,
            f"{payload}.{self._mac(payload)}",
            max_age=SESSION_S,
            httponly=True,
            samesite="strict",
            secure=secure,
        )

    def valid(self, cookie: str) -> bool:
        payload, _, mac = cookie.rpartition(".")
        expires = payload.partition(".")[0]
        if not hmac.compare_digest(mac.encode(), self._mac(payload).encode()):
            return False
        return expires.isdigit() and int(expires) > time.time()

    def authorized(self, request: Request, token: str) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            return True
        return self.valid(request.cookies.get(COOKIE, ""))

    def sign(self, value: str) -> str:
        """A value this process made (the setup page's state), checkable later by `signed`."""
        return f"{value}.{self._mac('state:' + value)}"

    def signed(self, text: str) -> bool:
        value, _, mac = text.rpartition(".")
        return bool(value) and hmac.compare_digest(
            mac.encode(), self._mac("state:" + value).encode()
        )


class Pages:
    def __init__(self) -> None:
        self.sessions = Sessions()
        self.env = Environment(
            loader=PackageLoader("bot", "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(usd=usd, percent=_percent, seconds=_seconds, when=_when)

    def render(self, template: str, *, status: int = 200, **context: object) -> HTMLResponse:
        html = self.env.get_template(template).render(**context)
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})
