"""The audit's check run: a summary table, and annotations sent 50 per request as GitHub allows."""

from __future__ import annotations

from bot.github import GitHubApp
from bot.queue import rq_redis
from pipeline.findings import Finding
from pipeline.messages import AUDIT_CHECK, render_audit_summary
from pipeline.models import AuditReport, AuditVerdict, ToolResult, ToolStatus
from pipeline.publish import publish_audit_check
from tests.doubles.github.gitops import branch_sha
from tests.world import REPO, World


def _report(ruff_findings: int) -> AuditReport:
    found = tuple(
        Finding(tool="ruff", path="pkg/mod.py", line=n + 1, rule="F821", message=f"name {n}")
        for n in range(ruff_findings)
    )
    failed_test = Finding(
        tool="pytest",
        path="tests/test_mod.py",
        line=7,
        rule="failed",
        message="AssertionError: assert 2 == 3",
        test="tests.test_mod::test_add",
        detail="E   assert 2 == 3",
    )
    tools = (
        ToolResult(name="ruff", status=ToolStatus.FAILED, exit_code=1, duration_s=0.4,
                   findings=found, new_count=len(found), known_count=111),
        ToolResult(name="pytest", status=ToolStatus.FAILED, exit_code=1, duration_s=5.2,
                   findings=(failed_test,), new_count=1, known_count=2),
        ToolResult(name="mypy", status=ToolStatus.PASSED, exit_code=0, duration_s=3.1,
                   known_count=7),
    )  # fmt: skip
    return AuditReport(verdict=AuditVerdict.NEEDS_RETRY, tools=tools)


def test_annotations_go_in_batches_of_50_and_a_repeat_sends_none_twice(world: World) -> None:
    state = world.github.state.repos[REPO]
    app = GitHubApp.from_settings(world.settings, rq_redis(world.redis_url))
    assert app is not None and state.installation_id is not None
    gh = app.for_repo(state.installation_id, REPO, state.id)
    sha = branch_sha(state.git_dir, "main")
    assert sha is not None
    report = _report(119)  # + 1 failing test: 120 annotations

    run_id = publish_audit_check(gh, sha, report, "task-1")
    publish_audit_check(gh, sha, report, "task-1")  # a re-run of the same step

    run = world.github.state.check_runs[run_id]
    assert run.name == AUDIT_CHECK and run.conclusion == "failure"
    assert run.annotation_batches == [50, 50, 20]
    assert len(run.annotations) == 120
    test = run.annotations[-1]
    assert (test["path"], test["start_line"], test["annotation_level"]) == (
        "tests/test_mod.py",
        7,
        "failure",
    )
    assert "tests.test_mod::test_add" in test["message"]
    assert test["raw_details"] == "E   assert 2 == 3"
    listed = gh.check_runs(sha, AUDIT_CHECK)[0]["output"]
    assert listed["annotations_count"] == 120


def test_the_summary_shows_new_and_existing_findings_per_tool() -> None:
    title, summary = render_audit_summary(_report(2))
    assert title.startswith("Audit failed")
    assert "| Tool | Status | Duration | New findings | Already on the base |" in summary
    assert "| ❌ ruff | failed | 0.4 s | 2 | 111 |" in summary
    assert "| ✅ mypy | passed | 3.1 s | 0 | 7 |" in summary
    assert "`pkg/mod.py:1` F821: name 0" in summary
