"""The dashboard in headless Chromium, its login, and /metrics agreeing with it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from bot.app import create_app
from bot.store import TaskStore
from pipeline.models import ReviewAction, TaskState
from tests.conftest import RedisServer
from tests.doubles.server import ServerThread
from tests.helpers import SECRET, settings_with
from tests.test_taskstats import _task, _to_pr

ARTIFACTS = Path(__file__).parent / "artifacts"
TOKEN = "dashboard-s3cret"
CHROMIUM = "/usr/bin/chromium"
# As root in a container: no sandbox, no GPU, nothing that phones home.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _seed(client: redis.Redis) -> None:
    store = TaskStore(client)
    _to_pr(store, _task(store, 1, 2, "octo-org/hello"), 0.5, ReviewAction.APPROVE)
    _to_pr(store, _task(store, 2, 2, "octo-org/hello"), 0.25, ReviewAction.REJECT)
    store.transition(_task(store, 3, 1, "octo-org/other"), TaskState.FAILED, "x", cost_usd=0.125)
    _task(store, 4, 3, "octo-org/other")


@pytest.fixture
def dashboard(
    clean_env: None, redis_url: str, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    env = {
        "REDIS_URL": redis_url,
        "GITHUB_WEBHOOK_SECRET": SECRET,
        "GITHUB_APP_ID": "7",
        "GITHUB_PRIVATE_KEY": "unused",
        "GITHUB_API_URL": "https://ghe.example.com/api/v3",
        "FEATURE_CREW_DASHBOARD_TOKEN": TOKEN,
    }
    _seed(redis_client)
    server = ServerThread(create_app(settings_with(monkeypatch, env))).start()
    yield server.url
    server.stop()


def _metrics(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{url}/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_dashboard_in_chromium_needs_the_token_and_draws_its_charts(
    dashboard: str, tmp_path: Path
) -> None:
    if shutil.which(CHROMIUM) is None:
        pytest.fail("chromium is not installed; .ci/run installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh --user-data-dir
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        page = browser.new_page()
        first = page.goto(f"{dashboard}/?window=7d")
        assert first is not None and first.status == 401
        assert page.locator("#tasks").count() == 0
        page.fill("input[name=token]", TOKEN)
        page.click("button[type=submit]")
        page.wait_for_selector("#tasks")
        assert "window=7d" in page.url
        bars = page.locator("tr[data-tier='2'] svg.chart rect")
        assert bars.count() == 7
        spent = [float(bars.nth(i).get_attribute("data-usd") or 0) for i in range(7)]
        assert spent[-1] == 0.75 and sum(spent) == 0.75
        assert page.locator("#tasks tr").count() == 5  # a header and four tasks
        tier2 = page.locator("#tiers tr[data-tier='2']")
        success = tier2.locator("[data-success-rate]").get_attribute("data-success-rate")
        cost = tier2.locator("[data-cost-usd]").get_attribute("data-cost-usd")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        issue = page.locator("#tasks a[href*='/issues/']").first.get_attribute("href")
        assert issue is not None and issue.startswith("https://ghe.example.com/octo-org/")
        page.select_option("select[name=repo]", "octo-org/other")
        page.click("form.filters button")
        page.wait_for_selector("#tasks")
        assert page.locator("#tasks tr").count() == 3
        page.click("#tasks a[href^='/tasks/']")
        page.wait_for_selector("#transitions")
        assert page.locator("#transitions tr").count() >= 2
        page.screenshot(path=str(ARTIFACTS / "task.png"), full_page=True)
        browser.close()
    figures = _metrics(dashboard)
    assert figures[("feature_crew_success_ratio", (("tier", "2"),))] == float(success or "nan")
    assert figures[("feature_crew_cost_usd", (("tier", "2"),))] == float(cost or "nan")
    assert figures[("feature_crew_tasks", (("outcome", "rejected"), ("tier", "2")))] == 1
    p50 = figures[("feature_crew_latency_seconds", (("quantile", "0.5"), ("tier", "2")))]
    assert 60 <= p50 <= 120


def test_sessions_are_signed_by_this_process_and_the_bearer_header_works(
    dashboard: str, clean_env: None, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with httpx.Client(base_url=dashboard) as client:
        assert client.get("/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert client.get("/tasks/t-1").status_code == 401
        login = client.post("/login", data={"token": TOKEN, "next": "//evil.example/"})
        assert login.status_code == 303 and login.headers["location"] == "/"
        cookie = client.cookies["feature_crew_session"]
        assert TOKEN not in cookie
        assert client.get("/tasks/t-1").status_code == 200
        expires, nonce, mac = cookie.split(".")
        forged = f"{int(expires) + 86400}.{nonce}.{mac}"
        client.cookies.set("feature_crew_session", forged)
        assert client.get("/").status_code == 401
    other = ServerThread(create_app(settings_with(monkeypatch, {}))).start()
    try:
        # The same token, another process: its key differs, so the cookie means nothing there.
        stolen = httpx.get(f"{other.url}/", cookies={"feature_crew_session": cookie})
        assert stolen.status_code == 401
    finally:
        other.stop()


def test_a_dashboard_without_redis_says_so_instead_of_failing(
    dashboard: str, redis_server: RedisServer
) -> None:
    redis_server.stop()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    page = httpx.get(f"{dashboard}/", headers=auth)
    task = httpx.get(f"{dashboard}/tasks/t-1", headers=auth)
    assert page.status_code == task.status_code == 503
    assert "Redis is unreachable" in page.text and "Traceback" not in page.text
