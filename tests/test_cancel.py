"""Cancelling: unlabel, close, `/crew cancel`; no PR is opened after that."""

from __future__ import annotations

from pathlib import Path

from handlers import wants
from pipeline.generate import EDIT_TOOL_NAME
from pipeline.messages import STATUS_MARKER
from pipeline.models import TaskState
from tests.doubles.models import tool_turn
from tests.test_end_to_end import _approves, _writes_greet
from tests.world import REPO, World, wait_for

ROOT = Path(__file__).resolve().parents[1]


def _issue(world: World) -> int:
    return world.issue("Add greet()", "Add `greet()`.", labels=["feature-crew:tier-2"])


def _status(world: World, number: int) -> str:
    with world.github.state.lock:
        (body,) = [
            c.body for c in world.github.state.comments_on(REPO, number) if STATUS_MARKER in c.body
        ]
    return body


def _no_pull(world: World) -> None:
    with world.github.state.lock:
        assert world.github.state.pulls == {}


def test_removing_the_label_before_the_task_runs_cancels_it(world: World) -> None:
    number = _issue(world)
    world.label(number)
    world.work_events()
    world.github.unlabel_issue(REPO, number, "feature-crew", sender="alice")
    world.work()
    task = world.store.recent(1)[0]
    assert task.progress.state is TaskState.CANCELLED
    assert world.anthropic.bodies() == []
    _no_pull(world)
    assert "Cancelled" in _status(world, number)
    assert "label was removed by @alice" in _status(world, number)


def test_the_trigger_label_counts_in_any_case_as_github_matches_labels(world: World) -> None:
    """A repository's own `Feature-Crew` label is the trigger: GitHub has one label per name."""
    number = _issue(world)
    world.label(number, label="Feature-Crew")
    world.work_events()
    (task,) = world.store.recent(5)
    assert task.progress.state is TaskState.QUEUED
    world.github.unlabel_issue(REPO, number, "FEATURE-CREW", sender="alice")
    world.work()
    assert world.store.require(task.spec.id).progress.state is TaskState.CANCELLED
    _no_pull(world)


def test_a_cancel_during_generation_opens_no_pull_request(world: World) -> None:
    number = _issue(world)
    slow = tool_turn(
        EDIT_TOOL_NAME,
        {"command": "create", "path": "greet.py", "file_text": "def greet():\n    return 1\n"},
        delay_s=3,
    )
    world.anthropic.script("claude-sonnet-5-5", [slow, *_writes_greet()[3:]])
    world.label(number)
    world.github.wait_for_deliveries()
    with world.worker_process():
        wait_for(lambda: world.anthropic.remaining("claude-sonnet-5-5") == 1)  # in the slow call
        world.github.comment_on_issue(REPO, number, "/crew cancel", user="alice")
        # The worker's events sidecar handles the cancel while the task job is busy.
        wait_for(lambda: world.store.recent(1)[0].progress.state is TaskState.CANCELLED, 10)
        # The busy worker finishes its model calls, then stops at the cancelled task.
        wait_for(lambda: world.anthropic.remaining("claude-sonnet-5-5") == 0)
        wait_for(lambda: not world.busy())
    _no_pull(world)
    assert world.store.recent(1)[0].progress.state is TaskState.CANCELLED
    assert "/crew cancel" in _status(world, number)


def test_closing_the_issue_cancels_only_before_the_pull_request(world: World) -> None:
    early = _issue(world)
    world.label(early)
    world.github.close_issue(REPO, early, sender="alice")
    world.work()
    assert world.store.recent(1)[0].progress.state is TaskState.CANCELLED

    late = _issue(world)
    world.anthropic.script("claude-sonnet-5-5", _writes_greet())
    world.anthropic.script("claude-haiku-5-5", _approves())
    world.label(late)
    world.work()
    world.github.close_issue(REPO, late, sender="alice")
    world.work()
    assert world.store.recent(1)[0].progress.state is TaskState.PR_OPEN


def test_slash_commands_need_a_writer(world: World) -> None:
    number = _issue(world)
    world.anthropic.script("claude-sonnet-5-5", _writes_greet())
    world.anthropic.script("claude-haiku-5-5", _approves())
    world.label(number)
    world.work()
    with world.github.state.lock:
        (pull,) = world.github.state.open_pulls(REPO)
    world.github.comment_on_issue(REPO, pull.number, "/crew cancel", user="mallory")
    world.work()
    assert world.store.recent(1)[0].progress.state is TaskState.PR_OPEN
    world.github.comment_on_issue(REPO, number, "/crew status", user="alice")
    world.work()
    assert "Pull request ready" in _status(world, number)  # one comment, refreshed in place
    world.github.comment_on_issue(REPO, pull.number, "/crew cancel please", user="alice")
    world.work()
    assert world.store.recent(1)[0].progress.state is TaskState.CANCELLED


def test_the_apps_own_echoes_are_not_queued() -> None:
    bot = {"login": "feature-crew-test[bot]", "type": "Bot"}
    human = {"login": "alice", "type": "User"}

    def comment(sender: dict) -> dict:
        return {"action": "created", "comment": {"body": "/crew cancel"}, "sender": sender}

    assert wants("issue_comment", "created", comment(human))
    assert not wants("issue_comment", "created", comment(bot))
    assert not wants("issue_comment", "edited", comment(human))
    assert not wants("issues", "labeled", {"sender": bot})
    assert wants("issues", "labeled", {"sender": human})
    assert wants("pull_request", "closed", {"sender": bot})  # a merge bot's merge still counts
    assert not wants("push", "", {})
