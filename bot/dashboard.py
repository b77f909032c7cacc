"""GET /: the dashboard of recent tasks, or the setup page while the App has no credentials."""

from __future__ import annotations

import hashlib
import hmac
import time
from html import escape

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from bot.runtime import WebRuntime
from bot.taskstats import summarize
from pipeline.messages import usd
from pipeline.models import TaskRecord

SUMMARY_WINDOW_S = 7 * 24 * 3600

_COOKIE = "feature_crew_dashboard"

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Feature Crew</title><meta name="viewport" content="width=device-width">
<style>body{{font:15px system-ui,sans-serif;margin:2rem;max-width:70rem}}
table{{border-collapse:collapse;width:100%}}td,th{{padding:.3rem .6rem;border-bottom:1px solid #ddd;
text-align:left}}code{{background:#f4f4f4;padding:0 .2rem}}</style></head>
<body><h1>Feature Crew</h1>{body}</body></html>"""

_SETUP = """<p><strong>Setup needed.</strong> This server has no GitHub App credentials yet, so it
refuses every webhook delivery.</p><ol>
<li>Register a GitHub App from <code>app.yml</code> (permissions, events) with its webhook URL
pointing at <code>https://&lt;this host&gt;/webhooks</code>.</li>
<li>Set <code>GITHUB_APP_ID</code>, <code>GITHUB_PRIVATE_KEY_PATH</code> (or
<code>GITHUB_PRIVATE_KEY</code>) and <code>GITHUB_WEBHOOK_SECRET</code>, then restart
<code>web</code> and <code>worker</code>.</li></ol><p>Missing now: {missing}.</p>"""

_LOGIN = """<form method="post" action="/login"><label>Dashboard token
<input type="password" name="token" autocomplete="current-password"></label>
<button type="submit">Open</button></form>{error}"""


def _digest(token: str) -> str:
    return hashlib.sha256(b"feature-crew-dashboard:" + token.encode()).hexdigest()


def _authorized(request: Request, token: str) -> bool:
    header = request.headers.get("authorization", "")
    if header.startswith("Bearer ") and hmac.compare_digest(header[7:], token):
        return True
    return hmac.compare_digest(request.cookies.get(_COOKIE, ""), _digest(token))


def _row(record: TaskRecord) -> str:
    p, s = record.progress, record.spec
    pr = f'<a href="{escape(p.pr_url)}">#{p.pr_number}</a>' if p.pr_url else ""
    cells = (
        escape(s.id),
        escape(s.repo_full_name),
        f"#{s.issue_number}",
        escape(p.state.value),
        str(p.tier or ""),
        usd(p.cost_usd),
        f"{record.duration_s:.0f}s",
        pr,
    )
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _missing(rt: WebRuntime) -> str:
    env = rt.settings.env
    names = [
        name
        for name, present in (
            ("GITHUB_APP_ID", env.github_app_id is not None),
            ("GITHUB_PRIVATE_KEY", rt.settings.private_key is not None),
            ("GITHUB_WEBHOOK_SECRET", env.github_webhook_secret is not None),
        )
        if not present
    ]
    return ", ".join(f"<code>{n}</code>" for n in names) or "nothing"


async def show_dashboard(request: Request) -> Response:
    rt: WebRuntime = request.app.state.runtime
    token = rt.settings.env.dashboard_token
    if token is not None and not _authorized(request, token.get_secret_value()):
        return HTMLResponse(_PAGE.format(body=_LOGIN.format(error="")), status_code=401)
    if not rt.settings.app_configured or rt.settings.webhook_secret is None:
        return HTMLResponse(_PAGE.format(body=_SETUP.format(missing=_missing(rt))))
    body = await run_in_threadpool(_render_tasks, rt)  # Redis calls stay off the event loop
    return HTMLResponse(_PAGE.format(body=body))


def _render_tasks(rt: WebRuntime) -> str:
    head = "".join(
        f"<th>{h}</th>"
        for h in ("Task", "Repository", "Issue", "State", "Tier", "Cost", "Duration", "PR")
    )
    rows = "".join(_row(r) for r in rt.store.recent(50))
    rows = rows or '<tr><td colspan="8">No tasks yet.</td></tr>'
    return _tier_summary(rt) + f"<h2>Recent tasks</h2><table><tr>{head}</tr>{rows}</table>"


def _tier_summary(rt: WebRuntime) -> str:
    stats = summarize(rt.store.iter_all(since=time.time() - SUMMARY_WINDOW_S)).by_tier
    if not stats:
        return ""
    head = "".join(f"<th>{h}</th>" for h in ("Tier", "Tasks", "Success", "Cost", "Median latency"))
    rows = "".join(
        f"<tr><td>{escape(tier)}</td><td>{s.tasks}</td>"
        f"<td>{'-' if s.success_rate is None else f'{s.success_rate:.0%}'}</td>"
        f"<td>{usd(s.cost_usd)}</td>"
        f"<td>{'-' if s.median_latency_s is None else f'{s.median_latency_s:.0f} s'}</td></tr>"
        for tier, s in sorted(stats.items())
    )
    return f"<h2>Last 7 days</h2><table><tr>{head}</tr>{rows}</table>"


async def log_in(request: Request) -> Response:
    rt: WebRuntime = request.app.state.runtime
    token = rt.settings.env.dashboard_token
    if token is None:
        return RedirectResponse("/", status_code=303)
    form = await request.form()
    given = str(form.get("token", ""))
    if not hmac.compare_digest(given, token.get_secret_value()):
        body = _LOGIN.format(error="<p>Wrong token.</p>")
        return HTMLResponse(_PAGE.format(body=body), status_code=401)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        _COOKIE,
        _digest(given),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=12 * 3600,
    )
    return response
