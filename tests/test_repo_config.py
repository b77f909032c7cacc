"""`.github/feature-crew.toml` narrows the operator's config, and tier 3 gets a security review."""

from __future__ import annotations

import pytest

from pipeline.config import OperatorConfig, parse_config
from pipeline.errors import PermanentError
from pipeline.models import TaskState
from pipeline.repo_config import narrow, parse_repo_config
from tests.doubles.models import tool_turn
from tests.test_end_to_end import _approves, _writes_greet
from tests.world import REPO, World


def test_a_repository_narrows_but_never_widens() -> None:
    operator = parse_config({"self_audit": {"tools": ["compile", "pytest"]}})
    repo = parse_repo_config(
        '[self_audit]\ntools = ["pytest", "bandit"]\npytest_args = ["-x"]\ntimeout_s = 99999\n'
        '[review]\nprotected_paths = ["migrations/"]\nmax_files_per_tier2 = 50\n'
        "max_files_per_tier1 = 1\n"
    )
    config = narrow(operator, repo)
    assert config.self_audit.tools == ("pytest",)  # bandit was not enabled by the operator
    assert config.self_audit.pytest_args == ("-x",)
    assert config.self_audit.timeout_s == operator.self_audit.timeout_s
    assert config.review.protected_paths == (".github/", "migrations/")
    assert config.review.max_files_per_tier2 == 10  # the operator's 10 beats the repo's 50
    assert config.review.max_files_per_tier1 == 1
    assert narrow(OperatorConfig(), parse_repo_config(None)) == OperatorConfig()


@pytest.mark.parametrize(
    ("text", "named"),
    [("[review]\nmax_files = 2\n", "review.max_files"), ("[self_audit]\ntools = ['x']\n",
     "self_audit.tools.0"), ("[[nope", "not valid TOML")],
)  # fmt: skip
def test_a_bad_repository_file_names_the_key(text: str, named: str) -> None:
    with pytest.raises(PermanentError, match=named.replace(".", r"\.")):
        parse_repo_config(text)


def _issue(world: World, tier: int) -> int:
    return world.issue("Add greet()", "Add `greet()`.", labels=[f"feature-crew:tier-{tier}"])


def test_the_repository_file_limits_the_review(world: World) -> None:
    world.github.push_branch(REPO, "main", {".github/feature-crew.toml":
                                            "[review]\nmax_files_per_tier2 = 1\n"})  # fmt: skip
    number = _issue(world, 2)
    world.anthropic.script("claude-sonnet-5-5", _writes_greet())
    world.label(number)
    world.work()
    task = world.store.recent(1)[0]
    assert task.progress.state is TaskState.PR_OPEN
    assert task.progress.review is not None
    assert task.progress.review.action == "reject"
    assert task.progress.review.checks[-1].name == "file_count"
    assert world.anthropic.bodies("claude-haiku-5-5") == []  # checks failed: no model spend


def test_a_broken_repository_file_stops_the_task_and_names_the_key(world: World) -> None:
    world.github.push_branch(REPO, "main", {".github/feature-crew.toml": "[review]\nmaxfiles=1\n"})
    number = _issue(world, 2)
    world.label(number)
    world.work()
    task = world.store.recent(1)[0]
    assert task.progress.state is TaskState.FAILED
    assert "review.maxfiles" in (task.progress.error or "")


def test_tier_three_adds_a_security_review_that_can_veto(world: World) -> None:
    number = _issue(world, 3)
    veto = {"action": "reject", "reason": "greet() logs the admin token.", "feedback": "Don't."}
    world.anthropic.script("claude-opus-5-5", [*_writes_greet(), tool_turn("submit_verdict", veto)])
    world.anthropic.script("claude-haiku-5-5", _approves())
    world.label(number)
    world.work()
    review = world.store.recent(1)[0].progress.review
    assert review is not None
    assert review.action == "reject"
    assert review.reason.startswith("Security review:")
    assert review.decided_by == "claude-opus-5-5"
    assert [c.name for c in review.checks][-1] == "security_review"
    with world.github.state.lock:
        (pull,) = world.github.state.open_pulls(REPO)
        (posted,) = world.github.state.reviews_on(REPO, pull.number)
    assert posted.body.startswith("**Verdict: reject**")
    assert "admin token" in posted.body


def test_tier_three_security_approval_keeps_the_verdict(world: World) -> None:
    number = _issue(world, 3)
    ok = {"action": "approve", "reason": "Nothing sensitive.", "feedback": ""}
    world.anthropic.script("claude-opus-5-5", [*_writes_greet(), tool_turn("submit_verdict", ok)])
    world.anthropic.script("claude-haiku-5-5", _approves())
    world.label(number)
    world.work()
    review = world.store.recent(1)[0].progress.review
    assert review is not None and review.action == "approve"
    assert review.checks[-1].name == "security_review" and review.checks[-1].passed
    assert len(review.usage) == 2
