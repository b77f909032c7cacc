"""The audit's baseline: what the base commit already had does not sink a change; new things do."""

from __future__ import annotations

from pipeline.findings import Finding, new_findings
from pipeline.models import TaskState
from tests.test_end_to_end import _approves, _writes_greet
from tests.world import REPO, World

BROKEN = "def test_already_broken() -> None:\n    assert 1 == 2\n"


def _ruff(line: int, rule: str = "F821", message: str = "Undefined name `x`") -> Finding:
    return Finding(tool="ruff", path="pkg/mod.py", line=line, rule=rule, message=message)


def test_findings_match_by_file_rule_and_message_whatever_their_line() -> None:
    base = [_ruff(10), _ruff(20, "E711", "Comparison to `None`")]
    shifted = [_ruff(14), _ruff(24, "E711", "Comparison to `None`")]  # four lines added above
    assert new_findings(shifted, base) == ([], 2)

    another = [*shifted, _ruff(30, message="Undefined name `y`")]
    fresh, known = new_findings(another, base)
    assert [f.message for f in fresh] == ["Undefined name `y`"] and known == 2


def test_a_second_copy_of_an_existing_finding_is_new() -> None:
    fresh, known = new_findings([_ruff(10), _ruff(11)], [_ruff(10)])
    assert len(fresh) == 1 and known == 1


def test_a_finding_in_another_file_or_tool_is_new() -> None:
    moved = _ruff(10).model_copy(update={"path": "pkg/other.py"})
    by_mypy = _ruff(10).model_copy(update={"tool": "mypy"})
    assert new_findings([moved, by_mypy], [_ruff(10)]) == ([moved, by_mypy], 0)


def test_a_test_broken_on_main_does_not_sink_the_task(world: World) -> None:
    world.github.push_branch(REPO, "main", {"tests/test_broken.py": BROKEN})
    number = world.issue("Add greet()", "Add `greet()`.", labels=["feature-crew:tier-2"])
    world.anthropic.script("claude-sonnet-5-5", _writes_greet())
    world.anthropic.script("claude-haiku-5-5", _approves())
    world.label(number)
    world.work()
    task = world.store.recent(1)[0]
    assert task.progress.state is TaskState.PR_OPEN
    assert task.progress.attempts == 1
    assert task.progress.audit is not None
    pytest_result = next(t for t in task.progress.audit.tools if t.name == "pytest")
    assert "already fail on the base commit" in pytest_result.output
    assert (pytest_result.new_count, pytest_result.known_count) == (0, 1)
