"""A labelled issue becomes a reviewed pull request: real HTTP, Redis, git, SDKs."""

from __future__ import annotations

import httpx

from pipeline.generate import EDIT_TOOL_NAME
from pipeline.messages import STATUS_MARKER
from pipeline.models import TaskState
from tests.doubles.git_http import read_file_at
from tests.doubles.models import text_turn, tool_turn
from tests.world import REPO, World

GREET = 'def greet() -> str:\n    return "Hello"\n'
GREET_TEST = (
    'from greet import greet\n\n\ndef test_greet() -> None:\n    assert greet() == "Hello"\n'
)


def _writes_greet() -> list:
    return [
        tool_turn(EDIT_TOOL_NAME, {"command": "view", "path": "hello.py"}),
        tool_turn(EDIT_TOOL_NAME, {"command": "create", "path": "greet.py", "file_text": GREET}),
        tool_turn(
            EDIT_TOOL_NAME,
            {"command": "create", "path": "tests/test_greet.py", "file_text": GREET_TEST},
        ),
        text_turn("Added greet() and its test."),
    ]


def _approves() -> list:
    verdict = {
        "action": "approve",
        "reason": "Implements greet() as asked, with a test.",
        "feedback": "Looks good.",
    }
    return [tool_turn("submit_verdict", verdict)]


def _assert_reviewed_pull_request(world: World, number: int) -> None:
    gh = world.github
    with gh.state.lock:
        pulls = gh.state.open_pulls(REPO)
        assert len(pulls) == 1
        pull = pulls[0]
        branch = pull.head_ref
        assert branch.startswith(f"feature-crew/issue-{number}-")
        assert f"Closes #{number}" in (gh.state.issues[(REPO, pull.number)].body or "")
        reviews = gh.state.reviews_on(REPO, pull.number)
        assert [r.state for r in reviews] == ["COMMENTED"]
        assert reviews[0].body.startswith("**Verdict: approve**")
        runs = {c.name: c for c in gh.state.check_runs.values() if c.repo == REPO}
        assert runs["Feature Crew / audit"].conclusion == "success"
        assert runs["Feature Crew / review"].conclusion == "success"
        statuses = [c for c in gh.state.comments_on(REPO, number) if STATUS_MARKER in c.body]
        assert len(statuses) == 1
        assert statuses[0].user == gh.bot_login
        assert "Pull request ready" in statuses[0].body
        assert "| Attempts | 1 of 3 |" in statuses[0].body
        assert ("eyes", "feature-crew-test[bot]") in {
            (r.content, r.user) for r in gh.state.reactions(REPO, number)
        }
        # GitHub echoes the App's own actions as webhooks: each is accepted and starts nothing.
        assert {d.status for d in gh.state.deliveries_sent} == {202}
        assert len(gh.state.deliveries_sent) > 5
    bare = gh.git_root / "octo-org" / "hello.git"
    assert read_file_at(bare, branch, "greet.py") == GREET


def test_labelled_issue_becomes_a_reviewed_pull_request_on_anthropic(world: World) -> None:
    number = world.issue(
        "Add greet()", "Add a function `greet()` returning 'Hello'.", labels=["feature-crew:tier-2"]
    )
    world.anthropic.script("claude-sonnet-5-5", _writes_greet())
    world.anthropic.script("claude-haiku-5-5", _approves())
    world.label(number)
    world.work()
    _assert_reviewed_pull_request(world, number)
    task = world.store.recent(1)[0]
    assert task.progress.state is TaskState.PR_OPEN
    assert [t.state for t in task.transitions] == [
        "queued",
        "generating",
        "auditing",
        "reviewing",
        "pr_open",
    ]
    assert task.progress.tier == 2 and task.progress.cost_usd > 0
    assert len(world.store.recent(5)) == 1
    assert world.anthropic.remaining("claude-sonnet-5-5") == 0
    page = httpx.get(f"{world.web.url}/").text
    assert task.id in page and "Last 7 days" in page and "100%" in page
    detail = httpx.get(f"{world.web.url}/tasks/{task.id}").text
    assert "Verdict: approve" in detail and "ready_for_review" in detail
    assert "pytest" in detail and "reviewing" in detail


def test_labelled_issue_becomes_a_reviewed_pull_request_on_openai(world: World) -> None:
    number = world.issue(
        "Add greet()", "Add a function `greet()` returning 'Hello'.", labels=["feature-crew:tier-1"]
    )
    world.openai.script("qwen3-235b", _writes_greet())
    world.anthropic.script("claude-haiku-5-5", _approves())
    world.label(number)
    world.work()
    _assert_reviewed_pull_request(world, number)
    task = world.store.recent(1)[0]
    assert task.progress.tier == 1 and task.progress.model == "qwen3-235b"
