"""issues.labeled: the trigger label starts a task for a writer's open issue."""

from __future__ import annotations

import re
from typing import Any

from handlers.context import Action, Outcome, writer_client
from handlers.tasks import cancel_task
from pipeline.context import Context
from pipeline.labels import label_names, same_label
from pipeline.models import TaskSpec

MAX_SPEC_CHARS = 20_000


def slugify(title: str, limit: int = 40) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return slug[:limit].rstrip("-") or "task"


def task_id_for(repo_name: str, issue_number: int, delivery_id: str) -> str:
    base = re.sub(r"[^A-Za-z0-9]+", "-", repo_name).strip("-")[:40]
    return f"{base}-{issue_number}-{re.sub(r'[^A-Za-z0-9]', '', delivery_id)[:8]}"


def spec_from_event(event: dict[str, Any], delivery_id: str) -> TaskSpec:
    issue, repo = event["issue"], event["repository"]
    slug = slugify(issue["title"])
    number = int(issue["number"])
    body = (issue.get("body") or "").strip()
    return TaskSpec(
        id=task_id_for(repo["name"], number, delivery_id),
        installation_id=int(event["installation"]["id"]),
        repo_full_name=repo["full_name"],
        repo_id=int(repo["id"]),
        clone_url=repo["clone_url"],
        default_branch=repo.get("default_branch") or "main",
        issue_number=number,
        issue_title=issue["title"],
        spec=f"{issue['title']}\n\n{body}"[:MAX_SPEC_CHARS],
        branch=f"feature-crew/issue-{number}-{slug}",
        requested_by=event["sender"]["login"],
        labels=label_names(issue.get("labels") or []),
    )


def queue_task_for_label(event: dict[str, Any], ctx: Context) -> Outcome:
    label = (event.get("label") or {}).get("name")
    issue = event.get("issue") or {}
    if not same_label(label, ctx.config.github.trigger_label):
        return Outcome.ignore(f"label {label!r} is not the trigger")
    if issue.get("state") != "open" or "pull_request" in issue:
        return Outcome.ignore("not an open issue")
    gh = writer_client(event, ctx)
    if isinstance(gh, Outcome):
        return gh
    spec = spec_from_event(event, ctx.delivery_id)
    claim = ctx.store.create(spec, note=f"labelled by {spec.requested_by}")
    if claim.busy:
        return Outcome.ignore(f"issue already has a live task {claim.task_id}")
    gh.react_to_issue(spec.issue_number, "eyes")
    ctx.queue.enqueue_task(spec.id)
    return Outcome(Action.QUEUED, f"task {spec.id} queued", task_id=spec.id)


def cancel_task_on_unlabel(event: dict[str, Any], ctx: Context) -> Outcome:
    label = (event.get("label") or {}).get("name")
    sender = (event.get("sender") or {}).get("login", "someone")
    if not same_label(label, ctx.config.github.trigger_label):
        return Outcome.ignore(f"label {label!r} is not the trigger")
    return cancel_task(event, ctx, f"the `{label}` label was removed by @{sender}")


def cancel_task_on_close(event: dict[str, Any], ctx: Context) -> Outcome:
    sender = (event.get("sender") or {}).get("login", "someone")
    # Merging the PR closes the issue too: only a task without its PR yet is cancelled.
    return cancel_task(event, ctx, f"the issue was closed by @{sender}", only_before_pr=True)
