"""GET /: the dashboard of tasks and per-tier figures, its task pages and its login."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bot.metrics import read_window
from bot.pages import Pages
from bot.runtime import WebRuntime
from bot.setup import show_setup
from bot.taskstats import TierWindow
from pipeline.models import TaskRecord, TaskState

WINDOWS = {"1d": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
DEFAULT_WINDOW = "7d"
REFRESH_S = 30
RECENT_READ, RECENT_SHOWN = 200, 50
CHART_W, CHART_H = 168, 28


@dataclass(frozen=True)
class Filters:
    window: str
    repo: str
    tier: str
    state: str

    @classmethod
    def of(cls, request: Request) -> Filters:
        """Only known values count: anything else is the same as no filter."""
        q = request.query_params
        window = q.get("window", "")
        tier, state = q.get("tier", ""), q.get("state", "")
        return cls(
            window=window if window in WINDOWS else DEFAULT_WINDOW,
            repo=q.get("repo", "")[:200],
            tier=tier if tier in ("1", "2", "3") else "",
            state=state if state in {s.value for s in TaskState} else "",
        )

    @property
    def narrow(self) -> bool:
        return bool(self.repo or self.tier or self.state)

    def keep(self, record: TaskRecord) -> bool:
        p = record.progress
        return (
            (not self.repo or record.spec.repo_full_name == self.repo)
            and (not self.tier or str(p.tier) == self.tier)
            and (not self.state or p.state.value == self.state)
        )


@dataclass(frozen=True)
class Bar:
    day: str
    usd: float
    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    top: float
    bars: list[Bar]


def cost_chart(stats: TierWindow) -> Chart:
    """Bar geometry for a tier's cost per day; days without spend get a 1 px baseline."""
    points = stats.chart_points()
    top = max((usd for _, usd in points), default=0.0)
    step = CHART_W / max(len(points), 1)
    bars = []
    for i, (day, usd) in enumerate(points):
        h = max(round(CHART_H * usd / top, 1), 1.0) if top > 0 else 1.0
        bars.append(Bar(day, round(usd, 6), round(i * step, 1), CHART_H - h, step * 0.8, h))
    return Chart(CHART_W, CHART_H, top, bars)


@dataclass(frozen=True)
class TaskRow:
    record: TaskRecord
    issue_url: str | None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.record, name)


def _row(rt: WebRuntime, record: TaskRecord) -> TaskRow:
    spec = record.spec
    if spec.installation_id <= 0 or "/" not in spec.repo_full_name:
        return TaskRow(record, None)  # a local task: no issue anywhere
    return TaskRow(
        record, f"{rt.settings.web_url}/{spec.repo_full_name}/issues/{spec.issue_number}"
    )


def _gate(request: Request) -> Response | None:
    """The login page unless the request carries the token or a live session."""
    rt: WebRuntime = request.app.state.runtime
    pages: Pages = request.app.state.pages
    token = rt.settings.env.dashboard_token
    if token is None or pages.sessions.authorized(request, token.get_secret_value()):
        return None
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return pages.render("login.html", status=401, next=target, error="")


async def show_dashboard(request: Request) -> Response:
    if (refused := _gate(request)) is not None:
        return refused
    rt: WebRuntime = request.app.state.runtime
    if not rt.settings.app_configured or rt.settings.webhook_secret is None:
        return await show_setup(request)
    filters = Filters.of(request)
    pages: Pages = request.app.state.pages
    try:
        data = await run_in_threadpool(_dashboard_data, rt, filters)  # Redis off the loop
    except RedisError:
        return _store_down(pages)
    return pages.render("dashboard.html", refresh_s=REFRESH_S, filters=filters, **data)


def _store_down(pages: Pages) -> Response:
    message = "Redis is unreachable, so there is nothing to show; /health says more."
    return pages.render("message.html", status=503, refresh_s=REFRESH_S, message=message)


def _dashboard_data(rt: WebRuntime, filters: Filters) -> dict[str, Any]:
    window = read_window(rt.store, WINDOWS[filters.window], filters.tier or None)
    # Records cost a parse each: read past the rows shown only to fill a filtered list.
    recent = rt.store.recent(RECENT_READ if filters.narrow else RECENT_SHOWN)
    return {
        "windows": list(WINDOWS),
        "states": [s.value for s in TaskState],
        "repos": sorted({r.spec.repo_full_name for r in recent} | ({filters.repo} - {""})),
        "days": window.days,
        "tiers": window.by_tier,
        "charts": {tier: cost_chart(stats) for tier, stats in window.by_tier.items()},
        "tasks": [_row(rt, r) for r in recent if filters.keep(r)][:RECENT_SHOWN],
    }


async def show_task(request: Request) -> Response:
    if (refused := _gate(request)) is not None:
        return refused
    rt: WebRuntime = request.app.state.runtime
    pages: Pages = request.app.state.pages
    task_id = str(request.path_params["task_id"])
    try:
        record = await run_in_threadpool(rt.store.get, task_id)
    except RedisError:
        return _store_down(pages)
    if record is None:
        return pages.render("message.html", status=404, message=f"No task {task_id!r}.")
    return pages.render("task.html", refresh_s=REFRESH_S, task=_row(rt, record))


def _safe_next(target: str) -> str:
    # Only a path on this server: never an open redirect to another host.
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return quote(target, safe="/?&=%-._~")


async def log_in(request: Request) -> Response:
    rt: WebRuntime = request.app.state.runtime
    pages: Pages = request.app.state.pages
    token = rt.settings.env.dashboard_token
    form = await request.form()
    target = _safe_next(str(form.get("next", "/")))
    if token is None:
        return RedirectResponse(target, status_code=303)
    given = str(form.get("token", "")).encode()
    if not hmac.compare_digest(given, token.get_secret_value().encode()):
        return pages.render("login.html", status=401, next=target, error="Wrong token.")
    response = RedirectResponse(target, status_code=303)
    pages.sessions.start(response, secure=request.url.scheme == "https")
    return response
