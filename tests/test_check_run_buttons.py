"""The Retry and Cancel buttons and "Re-run" on our check runs, through signed deliveries."""

from __future__ import annotations

from handlers import wants
from pipeline.generate import EDIT_TOOL_NAME
from pipeline.messages import AUDIT_CHECK, REVIEW_CHECK, STATUS_MARKER
from pipeline.models import TaskState
from pipeline.publish import CANCEL_ACTION, RETRY_ACTION
from tests.doubles.models import text_turn, tool_turn
from tests.test_end_to_end import _approves, _writes_greet
from tests.world import REPO, World


def _runs(world: World) -> dict[str, int]:
    """The newest check run of each of our names."""
    with world.github.state.lock:
        runs = sorted(world.github.state.check_runs.values(), key=lambda r: r.id)
        return {r.name: r.id for r in runs if r.repo == REPO}


def _to_pull_request(world: World) -> int:
    number = world.issue("Add greet()", "Add `greet()` returning 'Hello'.", ["feature-crew:tier-2"])
    world.anthropic.script("claude-sonnet-5-5", _writes_greet())
    world.anthropic.script("claude-haiku-5-5", _approves())
    world.label(number)
    world.work()
    assert world.store.recent(1)[0].progress.state is TaskState.PR_OPEN
    return number


def test_a_reader_presses_the_buttons_and_nothing_happens(world: World) -> None:
    _to_pull_request(world)
    with world.github.state.lock:  # the double refuses buttons beyond GitHub's limits
        for run in world.github.state.check_runs.values():
            assert [a["label"] for a in run.actions] == ["Retry", "Cancel"]
            assert {a["identifier"] for a in run.actions} == {RETRY_ACTION, CANCEL_ACTION}
    runs = _runs(world)
    calls = len(world.anthropic.requests)
    world.github.click_check_run_button(REPO, runs[REVIEW_CHECK], CANCEL_ACTION, user="mallory")
    world.github.click_check_run_button(REPO, runs[AUDIT_CHECK], RETRY_ACTION, user="mallory")
    world.github.rerequest_check_run(REPO, runs[REVIEW_CHECK], user="mallory")
    world.work()
    task = world.store.recent(1)[0]
    assert task.progress.state is TaskState.PR_OPEN and task.progress.attempts == 1
    assert task.progress.requested_changes is None
    assert len(world.anthropic.requests) == calls
    with world.github.state.lock:
        answered = [d.status for d in world.github.state.deliveries_sent if d.event == "check_run"]
    assert answered and set(answered) == {202}


def test_a_writer_reruns_then_cancels_as_with_the_slash_commands(world: World) -> None:
    number = _to_pull_request(world)
    better = 'def greet(name: str = "") -> str:\n    return "Hello"\n'
    world.anthropic.script(
        "claude-sonnet-5-5",
        [
            tool_turn(
                EDIT_TOOL_NAME, {"command": "create", "path": "greet.py", "file_text": better}
            ),
            text_turn("Took a name."),
        ],
    )
    world.anthropic.script("claude-haiku-5-5", _approves())
    world.github.rerequest_check_run(REPO, _runs(world)[REVIEW_CHECK], user="alice")
    world.work()
    task = world.store.recent(1)[0]
    assert task.progress.state is TaskState.PR_OPEN and task.progress.attempts == 2
    prompt = str(world.anthropic.bodies("claude-sonnet-5-5")[-2]["messages"][0])
    assert "@alice asked for changes" in prompt
    world.github.click_check_run_button(REPO, _runs(world)[AUDIT_CHECK], CANCEL_ACTION, "alice")
    world.work()
    task = world.store.recent(1)[0]
    assert task.progress.state is TaskState.CANCELLED
    assert task.transitions[-1].note == "cancelled by @alice with the Cancel button"
    with world.github.state.lock:
        (status,) = [
            c.body for c in world.github.state.comments_on(REPO, number) if STATUS_MARKER in c.body
        ]
    assert "cancel" in status.lower()


def test_check_run_events_from_bots_are_not_queued() -> None:
    bot = {"login": "feature-crew-test[bot]", "type": "Bot"}
    human = {"login": "alice", "type": "User"}
    assert wants("check_run", "requested_action", {"sender": human})
    assert wants("check_run", "rerequested", {"sender": human})
    assert not wants("check_run", "requested_action", {"sender": bot})
    assert not wants("check_run", "completed", {"sender": human})
