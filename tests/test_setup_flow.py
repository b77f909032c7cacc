"""Setup in one click: app.yml through the manifest flow of the GitHub double, into `.env`."""

from __future__ import annotations

import html
import json
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from bot.app import create_app
from bot.github import GitHubApp
from bot.queue import rq_redis
from bot.settings import load_settings
from tests.doubles.github import GitHubDouble
from tests.doubles.server import ServerThread
from tests.helpers import settings_with

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Setup:
    github: GitHubDouble
    web: ServerThread
    env_file: Path


@pytest.fixture
def setup(
    clean_env: None, tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Setup]:
    github = GitHubDouble(tmp_path / "github").start()
    github.add_user("octo-org")
    github.state.users["octo-org"].type = "Organization"
    env = {"REDIS_URL": redis_url, "GITHUB_API_URL": github.api_url}
    web = ServerThread(create_app(settings_with(monkeypatch, env))).start()
    try:
        yield Setup(github, web, tmp_path / ".env")
    finally:
        web.stop()
        github.stop()


def _form(page: str) -> tuple[str, dict]:
    action = re.search(r'<form id="manifest-form" method="post" action="([^"]+)"', page)
    manifest = re.search(r'name="manifest" value="([^"]+)"', page)
    assert action and manifest, page
    return html.unescape(action.group(1)), json.loads(html.unescape(manifest.group(1)))


def test_one_click_creates_the_app_and_saves_its_credentials(setup: Setup) -> None:
    gh, web = setup.github, setup.web
    with httpx.Client(base_url=web.url) as browser:
        page = browser.get("/")
        assert page.status_code == 200 and "Setup needed" in page.text
        action, manifest = _form(page.text)
        # GitHub Enterprise: the web host comes from GITHUB_API_URL (HOST/api/v3 -> HOST).
        assert action.startswith(f"{gh.url}/settings/apps/new?state=")
        packaged = yaml.safe_load((ROOT / "app.yml").read_text())
        assert manifest["default_permissions"] == packaged["default_permissions"]
        assert "check_run" in manifest["default_events"]
        assert manifest["hook_attributes"]["url"] == f"{web.url}/webhooks"
        assert manifest["redirect_url"] == f"{web.url}/setup/callback"
        done = browser.post(action, data={"manifest": json.dumps(manifest)}, follow_redirects=True)
        assert done.status_code == 200, done.text
        assert "Restart" in done.text and gh.app_slug in done.text
        again = browser.get(str(done.url))  # the same redirect once more
        assert again.status_code == 409
    assert stat.S_IMODE(os.stat(setup.env_file).st_mode) == 0o600
    settings = load_settings()  # what web and worker read after the restart
    assert settings.env.github_app_id == gh.app_id
    assert settings.private_key.get_secret_value() == gh.private_key_pem
    assert settings.webhook_secret == (gh.hookshot.secret or "").encode()
    app = GitHubApp.from_settings(settings, rq_redis(settings.env.redis_url))
    assert app is not None and app.identity().slug == gh.app_slug
    restarted = ServerThread(create_app(settings)).start()
    try:
        assert "Recent tasks" in httpx.get(f"{restarted.url}/").text
    finally:
        restarted.stop()


def test_a_callback_this_browser_did_not_start_is_refused(setup: Setup) -> None:
    gh, web = setup.github, setup.web
    with httpx.Client(base_url=web.url) as operator:
        action, manifest = _form(operator.get("/").text)
        github = operator.post(action, data={"manifest": json.dumps(manifest)})
        assert github.status_code == 302
        callback = github.headers["location"]
    # Someone else's browser, lured to the callback: no state cookie, so nothing is written.
    assert httpx.get(callback).status_code == 403
    forged = re.sub(r"state=[^&]+", "state=forged", callback)
    with httpx.Client(base_url=web.url) as operator:
        operator.get("/")
        assert operator.get(forged).status_code == 403
    assert not setup.env_file.exists()
    code = re.search(r"code=([^&]+)", callback)
    assert code is not None
    conversions = f"{gh.api_url}/app-manifests/{code.group(1)}/conversions"
    assert httpx.post(conversions).status_code == 201
    assert httpx.post(conversions).status_code == 404  # a code converts once
    assert httpx.post(f"{gh.api_url}/app-manifests/nope/conversions").status_code == 404


def test_an_expired_code_says_to_start_again_and_organisations_get_their_form(
    setup: Setup,
) -> None:
    gh, web = setup.github, setup.web
    with httpx.Client(base_url=web.url) as browser:
        hooks = "https://hooks.example.com/crew"
        page = browser.get("/", params={"org": "octo-org", "name": "Crew of Octo", "url": hooks})
        action, manifest = _form(page.text)
        assert action.startswith(f"{gh.url}/organizations/octo-org/settings/apps/new?state=")
        assert manifest["name"] == "Crew of Octo"
        assert manifest["hook_attributes"]["url"] == f"{hooks}/webhooks"
        assert manifest["redirect_url"] == f"{web.url}/setup/callback"  # never elsewhere
        github = browser.post(action, data={"manifest": json.dumps(manifest)})
        gh.expire_manifest_codes()
        late = browser.get(github.headers["location"])
        assert late.status_code == 502 and "over an hour old" in late.text
        unknown = browser.post(
            f"{gh.url}/organizations/nobody/settings/apps/new",
            data={"manifest": json.dumps(manifest)},
        )
        assert unknown.status_code == 404
    assert not setup.env_file.exists()


def test_the_web_host_follows_the_api_url(monkeypatch: pytest.MonkeyPatch, clean_env: None) -> None:
    for api, web in (
        ("https://api.github.com", "https://github.com"),
        ("https://ghe.example.com/api/v3/", "https://ghe.example.com"),
        ("https://api.octo.ghe.com", "https://octo.ghe.com"),
    ):
        assert settings_with(monkeypatch, {"GITHUB_API_URL": api}).web_url == web
