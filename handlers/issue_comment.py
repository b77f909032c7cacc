"""issue_comment.created: `/crew` commands from writers, and answers to the model's questions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from handlers.context import Action, Outcome, may_write, repo_of, writer_client
from handlers.replies import reply_once
from handlers.tasks import (
    cancel_record,
    refresh_status,
    request_changes,
    resume_on_answer,
    task_for_thread,
)
from pipeline.context import Context
from pipeline.models import TaskRecord, TaskState
from pipeline.prompts import human_feedback

COMMANDS = ("retry", "cancel", "status")
_COMMAND = re.compile(r"^/crew\s+(?P<name>[a-z]+)\b(?P<rest>.*)$", re.DOTALL)


@dataclass(frozen=True)
class Command:
    """A writer's `/crew` command or check-run button: its name, its words, where it came from."""

    name: str
    rest: str
    via: str  # "/crew retry", "the Retry button": named in the note of a cancellation


def act_on_comment(event: dict[str, Any], ctx: Context) -> Outcome:
    sender = event.get("sender") or {}
    if sender.get("type") == "Bot":
        return Outcome.ignore(f"sender {sender.get('login')} is a bot")
    body = str((event.get("comment") or {}).get("body") or "").strip()
    match = _COMMAND.match(body)
    if match is not None:
        return _run_command(match.group("name"), match.group("rest").strip(), event, ctx)
    return _answer_question(event, ctx)


def _run_command(name: str, rest: str, event: dict[str, Any], ctx: Context) -> Outcome:
    gh = writer_client(event, ctx)
    if isinstance(gh, Outcome):
        return gh  # a reader's command: data, and no reply to engage with
    record = task_for_thread(event, ctx)
    outcome = obey_command(Command(name, rest, "/crew " + name), record, event, ctx)
    if outcome.action is Action.IGNORED:
        number = int(event["issue"]["number"])
        reply_once(gh, number, f"Feature Crew cannot act on `/crew {name}`: {outcome.reason}.", ctx)
    return outcome


def obey_command(
    command: Command, record: TaskRecord | None, event: dict[str, Any], ctx: Context
) -> Outcome:
    """A writer's cancel, retry or status on a task: one decision for comments and buttons."""
    login, name = event["sender"]["login"], command.name
    if name == "cancel":
        return cancel_record(record, event, ctx, f"cancelled by @{login} with {command.via}")
    if name not in COMMANDS:
        known = ", ".join(f"`/crew {c}`" for c in COMMANDS)
        return Outcome.ignore(f"it is not a command (the commands are {known})")
    if record is None:
        return Outcome.ignore("there is no Feature Crew task on this thread")
    if name == "status":
        refresh_status(record, repo_of(event, ctx), ctx)
        return Outcome(Action.REFRESHED, f"status of {record.id} refreshed", task_id=record.id)
    return request_changes(record, human_feedback(login, command.rest, []), event, ctx)


def _answer_question(event: dict[str, Any], ctx: Context) -> Outcome:
    issue = event.get("issue") or {}
    if "pull_request" in issue or not (event.get("installation") or {}).get("id"):
        return Outcome.ignore("not a comment on an issue")
    task_id = ctx.store.active_task_for_issue(int(event["repository"]["id"]), int(issue["number"]))
    record = ctx.store.get(task_id) if task_id else None
    if record is None or record.progress.state is not TaskState.ASKING:
        return Outcome.ignore("no question is waiting on this issue")
    login = event["sender"]["login"]
    author = (issue.get("user") or {}).get("login")
    if login != author and not may_write(ctx, repo_of(event, ctx), login):
        return Outcome.ignore(f"{login} is neither the author nor a writer")
    return resume_on_answer(record, event, ctx)
