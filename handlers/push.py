"""push: the default branch moved, so every open Feature Crew PR on it is brought up to date."""

from __future__ import annotations

from typing import Any

from handlers.context import Action, Outcome, repo_of
from pipeline.context import Context
from pipeline.models import PUBLISHED_STATES
from pipeline.uptodate import DEBOUNCE_S, request_update


def pushed_to_default_branch(event: dict[str, Any]) -> bool:
    repository = event.get("repository") or {}
    default = repository.get("default_branch")
    return (
        bool(default) and event.get("ref") == f"refs/heads/{default}" and not event.get("deleted")
    )


def update_pulls_on_base_push(event: dict[str, Any], ctx: Context) -> Outcome:
    """One delayed update per open bot PR; a later push in the window replaces it."""
    if not pushed_to_default_branch(event):
        return Outcome.ignore(f"push to {event.get('ref')} is not to the default branch")
    if not (event.get("installation") or {}).get("id"):
        return Outcome.ignore("delivery has no installation")
    gh = repo_of(event, ctx)
    base = str(event["repository"]["default_branch"])
    bot = ctx.app().identity().bot_login
    queued = []
    for pull in gh.open_pulls(base=base):
        if (pull.get("user") or {}).get("login") != bot:
            continue
        task_id = ctx.store.task_for_pull(gh.repo_id, int(pull["number"]))
        record = ctx.store.get(task_id) if task_id else None
        if record is None or record.progress.state not in PUBLISHED_STATES:
            continue
        request_update(ctx.store, ctx.queue, record.id, ctx.delivery_id, DEBOUNCE_S)
        queued.append(record.id)
    if not queued:
        return Outcome.ignore(f"no open Feature Crew pull request on {base}")
    return Outcome(Action.QUEUED, f"update of {', '.join(queued)} onto {str(event['after'])[:8]}")
