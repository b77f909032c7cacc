"""check_run.requested_action and .rerequested: the Retry and Cancel buttons on our check runs."""

from __future__ import annotations

from typing import Any

from handlers.context import Outcome, writer_client
from handlers.issue_comment import Command, obey_command
from pipeline.context import Context
from pipeline.messages import AUDIT_CHECK, REVIEW_CHECK
from pipeline.models import TaskRecord
from pipeline.publish import CANCEL_ACTION, RETRY_ACTION

_BUTTONS = {
    RETRY_ACTION: ("retry", "the Retry button"),
    CANCEL_ACTION: ("cancel", "the Cancel button"),
}


def act_on_check_button(event: dict[str, Any], ctx: Context) -> Outcome:
    run = event.get("check_run") or {}
    if run.get("name") not in (AUDIT_CHECK, REVIEW_CHECK):
        return Outcome.ignore(f"check run {run.get('name')!r} is not one of ours")
    app_id = (run.get("app") or {}).get("id")
    if app_id is not None and int(app_id) != ctx.app().app_id:
        return Outcome.ignore(f"check run {run.get('id')} belongs to App {app_id}")
    if event.get("action") == "rerequested":
        command, via = "retry", "GitHub's Re-run"
    else:
        identifier = str((event.get("requested_action") or {}).get("identifier") or "")
        if identifier not in _BUTTONS:
            return Outcome.ignore(f"no button {identifier!r} on our check runs")
        command, via = _BUTTONS[identifier]
    gh = writer_client(event, ctx)
    if isinstance(gh, Outcome):
        return gh
    record = _task_of(run, gh.repo_id, ctx)
    if record is None:
        return Outcome.ignore(f"check run {run.get('id')} belongs to no task here")
    return obey_command(Command(command, "", via), record, event, ctx)


def _task_of(run: dict[str, Any], repo_id: int, ctx: Context) -> TaskRecord | None:
    """Our check runs carry their task's id; a run from another repository never matches."""
    task_id = str(run.get("external_id") or "")
    record = ctx.store.get(task_id) if task_id else None
    if record is not None and record.spec.repo_id == repo_id:
        return record
    for pull in run.get("pull_requests") or ():
        linked = ctx.store.task_for_pull(repo_id, int(pull["number"]))
        if linked is not None:
            return ctx.store.get(linked)
    return None
