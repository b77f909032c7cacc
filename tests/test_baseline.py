"""The audit's baseline: tests failing before the change do not sink it; new failures do."""

from __future__ import annotations

from pipeline.baseline import failing_tests, forgive_known_failures
from pipeline.models import AuditReport, AuditVerdict, TaskState, ToolResult, ToolStatus
from tests.test_end_to_end import _approves, _writes_greet
from tests.world import REPO, World

BROKEN = "def test_already_broken() -> None:\n    assert 1 == 2\n"


def _pytest(output: str, status: ToolStatus = ToolStatus.FAILED) -> AuditReport:
    tool = ToolResult(name="pytest", status=status, exit_code=1, output=output)
    return AuditReport(verdict=AuditVerdict.NEEDS_RETRY, tools=(tool,))


def test_only_failures_already_on_the_base_are_forgiven() -> None:
    old = "FAILED tests/test_a.py::test_old - assert 1 == 2\n1 failed"
    both = old + "\nFAILED tests/test_b.py::test_new - boom\n2 failed"
    assert forgive_known_failures(_pytest(old), ["tests/test_a.py::test_old"]).verdict == (
        AuditVerdict.READY_FOR_REVIEW
    )
    assert forgive_known_failures(_pytest(both), ["tests/test_a.py::test_old"]).verdict == (
        AuditVerdict.NEEDS_RETRY
    )
    # A failure pytest did not itemise (a collection crash) is never forgiven.
    assert failing_tests(_pytest("INTERNALERROR").tools[0]) is None
    crash = forgive_known_failures(_pytest("INTERNALERROR"), ["tests/test_a.py::test_old"])
    assert crash.verdict is AuditVerdict.NEEDS_RETRY


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
