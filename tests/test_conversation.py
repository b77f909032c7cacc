"""The conversation loops: human approval merges, requested changes retry, questions wait."""

from __future__ import annotations

import guardrails
from pipeline.generate import ASK_PREFIX, EDIT_TOOL_NAME
from pipeline.messages import ASK_MARKER, STATUS_MARKER
from pipeline.models import TaskState
from tests.doubles.git_http import read_file_at
from tests.doubles.models import text_turn, tool_turn
from tests.test_end_to_end import GREET, _approves, _writes_greet
from tests.world import REPO, World

SHOUT = 'def greet() -> str:\n    return "HELLO"\n'


def _open_pr(world: World) -> tuple[int, int]:
    number = world.issue("Add greet()", "Add `greet()`.", labels=["feature-crew:tier-2"])
    world.anthropic.script("claude-sonnet-5-5", _writes_greet())
    world.anthropic.script("claude-haiku-5-5", _approves())
    world.label(number)
    world.work()
    with world.github.state.lock:
        (pull,) = world.github.state.open_pulls(REPO)
    return number, pull.number


def _task(world: World):
    return world.store.recent(1)[0]


def _prompt_text(body: dict) -> str:
    content = body["messages"][0]["content"]
    return content if isinstance(content, str) else " ".join(b.get("text", "") for b in content)


def _bare(world: World):
    return world.github.git_root / "octo-org" / "hello.git"


def test_a_writers_approval_merges_the_approved_head(world: World) -> None:
    number, pr = _open_pr(world)
    world.github.submit_review(REPO, pr, "alice", "APPROVE", "Ship it")
    world.work()
    assert _task(world).progress.state is TaskState.MERGED
    with world.github.state.lock:
        assert world.github.state.pulls[(REPO, pr)].merged
        assert world.github.state.issues[(REPO, number)].state == "closed"  # Closes #n
    assert read_file_at(_bare(world), "main", "greet.py") == GREET


def test_a_readers_approval_merges_nothing(world: World) -> None:
    _, pr = _open_pr(world)
    world.github.submit_review(REPO, pr, "mallory", "APPROVE")
    world.work()
    assert _task(world).progress.state is TaskState.PR_OPEN


def test_an_approval_of_an_older_head_is_not_merged(world: World) -> None:
    _, pr = _open_pr(world)
    world.github.submit_review(REPO, pr, "alice", "APPROVE")
    world.github.push_branch(REPO, _task(world).spec.branch, {"late.py": "x = 1\n"})
    world.work()
    assert _task(world).progress.state is TaskState.PR_OPEN
    with world.github.state.lock:
        assert not world.github.state.pulls[(REPO, pr)].merged
        bodies = [c.body for c in world.github.state.comments_on(REPO, pr)]
    assert any("did not merge" in b for b in bodies)


def test_requested_changes_start_an_attempt_on_the_same_pull_request(world: World) -> None:
    number, pr = _open_pr(world)
    first_head = _task(world).progress.head_sha
    comment = {"path": "greet.py", "line": 2, "side": "RIGHT", "body": "Shout it."}
    world.github.submit_review(REPO, pr, "alice", "REQUEST_CHANGES", "Make it louder.", [comment])
    world.anthropic.script("claude-sonnet-5-5", [
        tool_turn(EDIT_TOOL_NAME, {"command": "str_replace", "path": "greet.py",
                                   "old_str": '"Hello"', "new_str": '"HELLO"'}),
        tool_turn(EDIT_TOOL_NAME, {"command": "str_replace", "path": "tests/test_greet.py",
                                   "old_str": '"Hello"', "new_str": '"HELLO"'}),
        text_turn("Shouting now."),
    ])  # fmt: skip
    world.anthropic.script("claude-haiku-5-5", _approves())
    world.work()
    task = _task(world)
    assert task.progress.state is TaskState.PR_OPEN
    assert task.progress.attempts == 2
    assert task.progress.head_sha != first_head
    prompt = _prompt_text(world.anthropic.bodies("claude-sonnet-5-5")[4])
    assert "Make it louder." in prompt and "greet.py:2" in prompt and "Shout it." in prompt
    assert read_file_at(_bare(world), task.spec.branch, "greet.py") == SHOUT
    with world.github.state.lock:
        assert len(world.github.state.open_pulls(REPO)) == 1
        ours = [r for r in world.github.state.reviews_on(REPO, pr) if r.user != "alice"]
        assert [r.commit_id for r in ours][-1] == task.progress.head_sha
        statuses = [c for c in world.github.state.comments_on(REPO, number)
                    if STATUS_MARKER in c.body]  # fmt: skip
    assert len(ours) == 2 and len(statuses) == 1


def test_retry_stops_after_max_attempts_and_says_so(world: World) -> None:
    _, pr = _open_pr(world)
    world.store.update(_task(world).id, attempts=3)
    world.github.comment_on_issue(REPO, pr, "/crew retry make it better", user="alice")
    world.work()
    task = _task(world)
    assert task.progress.state is TaskState.FAILED
    with world.github.state.lock:
        bodies = [c.body for c in world.github.state.comments_on(REPO, pr)]
    assert any("has stopped" in b and "3 attempts" in b for b in bodies)


def test_an_answer_from_the_author_resumes_the_question(world: World) -> None:
    number = world.issue("Greet", "Add a greeting.", labels=["feature-crew:tier-2"])
    world.anthropic.script("claude-sonnet-5-5", [text_turn("[ASK]: Which name should it greet?")])
    world.label(number)
    world.work()
    assert _task(world).progress.state is TaskState.ASKING
    world.github.comment_on_issue(REPO, number, "I have an opinion", user="mallory")
    world.work()
    assert _task(world).progress.state is TaskState.ASKING  # neither author nor writer
    world.anthropic.script("claude-sonnet-5-5", _writes_greet())
    world.anthropic.script("claude-haiku-5-5", _approves())
    world.github.comment_on_issue(REPO, number, "No name: `greet()` says Hello.", user="alice")
    world.work()
    task = _task(world)
    assert task.progress.state is TaskState.PR_OPEN
    assert [c.by for c in task.progress.clarifications] == ["alice"]
    prompt = _prompt_text(world.anthropic.bodies("claude-sonnet-5-5")[1])
    assert "Which name should it greet?" in prompt and "says Hello" in prompt
    with world.github.state.lock:
        assert "feature-crew:needs-info" not in world.github.state.labels_of(REPO, number)
        asks = [c for c in world.github.state.comments_on(REPO, number) if ASK_MARKER in c.body]
    assert len(asks) == 1


def test_a_pull_request_closed_unmerged_cancels_the_task(world: World) -> None:
    _, pr = _open_pr(world)
    world.github.close_issue(REPO, pr, sender="alice")
    world.work()
    assert _task(world).progress.state is TaskState.CANCELLED


def test_the_ask_guardrail_teaches_the_prefix_the_stage_looks_for() -> None:
    assert f"`{ASK_PREFIX}`" in guardrails.load("ask")
