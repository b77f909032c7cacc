"""CLI commands that act through the App: enqueue a spec, redeliver failed deliveries."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.backends import Backends
from bot.github import GitHubApp
from bot.queue import rq_redis
from bot.settings import Settings
from handlers.issues import slugify, spec_from_event
from pipeline.errors import PermanentGitHubError
from pipeline.labels import tier_label

CLI_SENDER = "feature-crew-cli"


class ActionError(Exception):
    """A one-line reason the command could not do its work."""


def _app(settings: Settings) -> GitHubApp:
    app = GitHubApp.from_settings(settings, rq_redis(settings.env.redis_url))
    if app is None:
        raise ActionError("GITHUB_APP_ID and GITHUB_PRIVATE_KEY[_PATH] are needed for this")
    return app


def enqueue_spec(
    settings: Settings, *, repo: str, spec: str, slug: str | None, tier: int | None
) -> str:
    """Open an issue for the spec on an installed repository and queue its task directly."""
    if Path(repo).exists() or repo.count("/") != 1:
        raise ActionError(f"{repo!r}: give OWNER/NAME of a repository the App is installed on")
    if not spec.strip():
        raise ActionError("--spec is empty")
    app = _app(settings)
    try:
        installation = app.installation_for(repo)
    except PermanentGitHubError as err:
        raise ActionError(f"the App is not installed on {repo} ({err.status})") from None
    repository = app.for_repo(installation, repo, 0).repository()
    gh = app.for_repo(installation, repository["full_name"], int(repository["id"]))
    labels = [settings.config.github.trigger_label]
    if tier is not None:
        labels.append(tier_label(tier))
    title = spec.strip().splitlines()[0][:100]
    issue = gh.open_issue(title=title, body=spec, labels=labels)
    event: dict[str, Any] = {
        "issue": issue,
        "repository": repository,
        "installation": {"id": installation},
        "sender": {"login": CLI_SENDER},
    }
    task = spec_from_event(event, f"cli-{uuid.uuid4().hex}")
    if slug:
        clean = slugify(slug)
        task = task.model_copy(update={"branch": f"feature-crew/issue-{issue['number']}-{clean}"})
    backends = Backends.on(app.redis, settings)
    backends.store.create(task, note="enqueued from the CLI")
    backends.queue.enqueue_task(task.id)
    return f"{task.id} queued for {repo}#{issue['number']}"


def redeliver_failed(settings: Settings, *, since_s: float) -> list[str]:
    """Ask GitHub to redeliver every delivery since then whose every attempt failed."""
    app = _app(settings)
    cutoff = time.time() - since_s
    attempts: dict[str, list[dict[str, Any]]] = {}
    for delivery in app.paginate(app.app_client, "/app/hook/deliveries"):
        at = datetime.fromisoformat(str(delivery["delivered_at"]).replace("Z", "+00:00"))
        if at.timestamp() < cutoff:
            break  # newest first
        attempts.setdefault(delivery["guid"], []).append(delivery)
    redelivered = []
    for guid, tries in attempts.items():
        if any(200 <= int(t.get("status_code") or 0) < 300 for t in tries):
            continue
        first = min(tries, key=lambda t: int(t["id"]))
        app.call(app.app_client, "POST", f"/app/hook/deliveries/{first['id']}/attempts")
        redelivered.append(guid)
    return redelivered
