"""Task flows beyond the happy path: guards, retries, questions, failures, re-runs."""

from __future__ import annotations

import httpx

from bot import jobs
from pipeline.generate import EDIT_TOOL_NAME
from pipeline.messages import ASK_MARKER, STATUS_MARKER
from pipeline.models import TaskState
from tests.doubles.models import text_turn, tool_turn
from tests.test_end_to_end import GREET_TEST, _approves, _writes_greet
from tests.world import FILES, REPO, World


def _tier2_issue(world: World) -> int:
    return world.issue(
        "Add greet()", "Add a function `greet()` returning 'Hello'.", labels=["feature-crew:tier-2"]
    )


def _status_comments(world: World, number: int) -> list[str]:
    with world.github.state.lock:
        return [
            c.body for c in world.github.state.comments_on(REPO, number) if STATUS_MARKER in c.body
        ]


def _writes_by(world: World) -> list[tuple[str, str]]:
    with world.github.state.lock:
        return [
            (r.method, r.path)
            for r in world.github.state.requests
            if r.method != "GET" and not r.path.startswith("/app")
        ]


def test_a_reader_labelling_starts_nothing_and_posts_nothing(world: World) -> None:
    number = _tier2_issue(world)
    world.label(number, sender="mallory")
    world.work()
    assert world.store.recent(5) == []
    assert _writes_by(world) == []


def test_other_labels_and_closed_issues_are_ignored(world: World) -> None:
    number = _tier2_issue(world)
    world.label(number, label="bug")
    closed = _tier2_issue(world)
    world.github.close_issue(REPO, closed, sender="alice")
    world.label(closed)
    world.work()
    assert world.store.recent(5) == []
    assert _writes_by(world) == []


def test_a_bot_sender_is_ignored_without_asking_github(world: World) -> None:
    number = _tier2_issue(world)
    headers, body = world.github.build_delivery(
        "issues",
        "labeled",
        secret="test-webhook-secret",
        repo=REPO,
        issue=number,
        label="feature-crew",
        sender=world.github.bot_login,
    )
    assert httpx.post(f"{world.web.url}/webhooks", content=body, headers=headers).status_code == 202
    world.work()
    assert world.store.recent(5) == []


def test_a_second_trigger_while_a_task_runs_starts_no_second_task(world: World) -> None:
    number = _tier2_issue(world)
    world.label(number)
    headers, body = world.github.build_delivery(
        "issues",
        "labeled",
        secret="test-webhook-secret",
        repo=REPO,
        issue=number,
        label="feature-crew",
        sender="alice",
    )  # a distinct delivery id: not caught by the ingress dedupe
    assert httpx.post(f"{world.web.url}/webhooks", content=body, headers=headers).status_code == 202
    world.anthropic.script("claude-sonnet-5-5", _writes_greet())
    world.anthropic.script("claude-haiku-5-5", _approves())
    world.work()
    assert len(world.store.recent(5)) == 1
    with world.github.state.lock:
        assert len(world.github.state.open_pulls(REPO)) == 1
    assert len(_status_comments(world, number)) == 1


def test_relabelling_cancels_and_starts_afresh_in_the_same_status_comment(world: World) -> None:
    number = _tier2_issue(world)
    world.label(number)
    world.github.unlabel_issue(REPO, number, "feature-crew", sender="alice")
    world.label(number)
    world.anthropic.script("claude-sonnet-5-5", _writes_greet())
    world.anthropic.script("claude-haiku-5-5", _approves())
    world.work()
    states = sorted(r.progress.state.value for r in world.store.recent(5))
    assert states == ["cancelled", "pr_open"]
    with world.github.state.lock:
        assert len(world.github.state.open_pulls(REPO)) == 1
    assert len(_status_comments(world, number)) == 1


def test_a_failed_audit_is_retried_with_its_report(world: World) -> None:
    number = _tier2_issue(world)
    broken = 'def greet() -> str:\n    return "Hello"  +\n'
    world.anthropic.script(
        "claude-sonnet-5-5",
        [
            tool_turn(
                EDIT_TOOL_NAME, {"command": "create", "path": "greet.py", "file_text": broken}
            ),
            tool_turn(
                EDIT_TOOL_NAME,
                {"command": "create", "path": "tests/test_greet.py", "file_text": GREET_TEST},
            ),
            text_turn("Done."),
            tool_turn(
                EDIT_TOOL_NAME,
                {
                    "command": "str_replace",
                    "path": "greet.py",
                    "old_str": '"Hello"  +',
                    "new_str": '"Hello"',
                },
            ),
            text_turn("Fixed the syntax error."),
        ],
    )
    world.anthropic.script("claude-haiku-5-5", _approves())
    world.label(number)
    world.work()
    task = world.store.recent(1)[0]
    assert task.progress.state is TaskState.PR_OPEN
    assert task.progress.attempts == 2
    assert [t.state for t in task.transitions] == [
        "queued",
        "generating",
        "auditing",
        "generating",
        "auditing",
        "reviewing",
        "pr_open",
    ]
    second_call = [b for b in world.anthropic.bodies("claude-sonnet-5-5")][3]
    prompt = second_call["messages"][0]["content"]
    text = prompt if isinstance(prompt, str) else " ".join(b.get("text", "") for b in prompt)
    assert "previous attempt" in text and "compile" in text


def test_three_failed_audits_stop_the_task_and_say_so(world: World) -> None:
    number = _tier2_issue(world)
    broken = {"command": "create", "path": "greet.py", "file_text": "def greet(:\n"}
    world.anthropic.script(
        "claude-sonnet-5-5", [tool_turn(EDIT_TOOL_NAME, broken), text_turn("Done.")] * 3
    )
    world.label(number)
    world.work()
    task = world.store.recent(1)[0]
    assert task.progress.state is TaskState.FAILED
    assert task.progress.attempts == 3
    with world.github.state.lock:
        assert world.github.state.open_pulls(REPO) == []
    (status,) = _status_comments(world, number)
    assert "Stopped" in status and "3 attempts" in status


def test_a_reviewer_rejection_is_posted_as_a_comment_review_and_a_failed_check(
    world: World,
) -> None:
    number = _tier2_issue(world)
    world.anthropic.script("claude-sonnet-5-5", _writes_greet())
    verdict = {
        "action": "reject",
        "reason": "greet() ignores the name.",
        "feedback": "Take a name.",
    }
    world.anthropic.script("claude-haiku-5-5", [tool_turn("submit_verdict", verdict)])
    world.label(number)
    world.work()
    with world.github.state.lock:
        (pull,) = world.github.state.open_pulls(REPO)
        (review,) = world.github.state.reviews_on(REPO, pull.number)
        runs = {c.name: c.conclusion for c in world.github.state.check_runs.values()}
    assert review.state == "COMMENTED"
    assert review.body.startswith("**Verdict: reject**")
    assert "Take a name." in review.body
    assert runs["Feature Crew / review"] == "failure"


def test_a_vague_spec_becomes_a_question_on_the_issue(world: World) -> None:
    number = _tier2_issue(world)
    world.anthropic.script(
        "claude-sonnet-5-5", [text_turn("[ASK]: Greet whom, and in which language?")]
    )
    world.label(number)
    world.work()
    task = world.store.recent(1)[0]
    assert task.progress.state is TaskState.ASKING
    with world.github.state.lock:
        bodies = [c.body for c in world.github.state.comments_on(REPO, number)]
        labels = world.github.state.labels_of(REPO, number)
        assert world.github.state.open_pulls(REPO) == []
    assert any(ASK_MARKER in b and "Greet whom" in b for b in bodies)
    assert "feature-crew:needs-info" in labels


def test_a_rejected_model_key_fails_the_task_without_leaking_it(world: World) -> None:
    world.anthropic.api_key = "another-key"
    number = _tier2_issue(world)
    world.label(number)
    world.work()
    task = world.store.recent(1)[0]
    assert task.progress.state is TaskState.FAILED
    (status,) = _status_comments(world, number)
    assert "rejected the key" in status
    assert "test-anthropic-key" not in status and "Traceback" not in status


def test_a_task_rerun_after_a_failure_makes_one_branch_one_pr_one_comment(world: World) -> None:
    number = _tier2_issue(world)
    world.anthropic.script("claude-sonnet-5-5", _writes_greet() + _writes_greet())
    world.anthropic.script("claude-haiku-5-5", _approves())
    world.github.fail_next("POST", r"^/repos/octo-org/hello/pulls$", 502)
    world.label(number)
    world.work()
    task = world.store.recent(1)[0]
    assert task.progress.state is TaskState.REVIEWING or task.progress.pr_number is None
    # RQ would retry the job later; run the retry now, as a second worker would.
    assert jobs.run_task(task.id) == "reviewing"
    world.work()
    with world.github.state.lock:
        assert len(world.github.state.open_pulls(REPO)) == 1
        branches = {p.head_ref for p in world.github.state.pulls.values()}
    assert len(branches) == 1
    assert len(_status_comments(world, number)) == 1
    assert world.store.require(task.id).progress.state is TaskState.PR_OPEN


def test_a_review_rerun_posts_one_review(world: World) -> None:
    number = _tier2_issue(world)
    world.anthropic.script("claude-sonnet-5-5", _writes_greet())
    world.anthropic.script("claude-haiku-5-5", _approves() + _approves())
    world.github.fail_next("PATCH", r"^/repos/octo-org/hello/check-runs/\d+$", 502, count=3)
    world.label(number)
    world.work()
    task = world.store.recent(1)[0]
    assert task.progress.state is TaskState.REVIEWING
    assert task.progress.head_sha is not None
    assert jobs.review_task(task.id, task.progress.head_sha) == "pr_open"
    with world.github.state.lock:
        (pull,) = world.github.state.open_pulls(REPO)
        assert len(world.github.state.reviews_on(REPO, pull.number)) == 1


def test_expired_tokens_are_replaced_and_rate_limits_honoured(world: World) -> None:
    number = _tier2_issue(world)
    world.anthropic.script("claude-sonnet-5-5", _writes_greet())
    world.anthropic.script("claude-haiku-5-5", _approves())
    world.github.secondary_rate_limit("POST", r"^/repos/octo-org/hello/issues/\d+/comments$", 1)
    world.label(number)
    world.github.wait_for_deliveries()
    world.github.expire_tokens()
    world.work()
    assert world.store.recent(1)[0].progress.state is TaskState.PR_OPEN
    assert len(_status_comments(world, number)) == 1


def test_no_verdict_from_the_reviewer_model_is_never_an_approval(world: World) -> None:
    number = _tier2_issue(world)
    world.anthropic.script("claude-sonnet-5-5", _writes_greet())
    world.anthropic.script("claude-haiku-5-5", [text_turn("Looks fine."), text_turn("Sure.")])
    world.label(number)
    world.work()
    with world.github.state.lock:
        (pull,) = world.github.state.open_pulls(REPO)
        (review,) = world.github.state.reviews_on(REPO, pull.number)
        runs = {c.name: c.conclusion for c in world.github.state.check_runs.values()}
    assert review.body.startswith("**Verdict: reject**")
    assert "needs a human review" in review.body
    assert runs["Feature Crew / review"] == "neutral"
    task = world.store.recent(1)[0]  # our reviewer failing starts no attempt of its own
    assert (task.progress.state, task.progress.attempts) == (TaskState.PR_OPEN, 1)


def test_a_review_that_cannot_be_posted_leaves_a_neutral_check(world: World) -> None:
    number = _tier2_issue(world)
    world.anthropic.script("claude-sonnet-5-5", _writes_greet())
    world.anthropic.script("claude-haiku-5-5", _approves())
    world.github.fail_next("POST", r"^/repos/octo-org/hello/pulls/\d+/reviews$", 422)
    world.label(number)
    world.work()
    task = world.store.recent(1)[0]
    assert task.progress.state is TaskState.FAILED
    with world.github.state.lock:
        runs = {c.name: (c.status, c.conclusion) for c in world.github.state.check_runs.values()}
    assert runs["Feature Crew / review"] == ("completed", "neutral")
    assert runs["Feature Crew / audit"] == ("completed", "success")


def test_an_installation_without_checks_permission_fails_where_it_is_needed(
    world: World,
) -> None:
    lean = world.github.add_installation(
        account="lean-org",
        permissions={"contents": "write", "issues": "write", "pull_requests": "write",
                     "metadata": "read"},
    )  # fmt: skip
    world.github.add_repo("lean-org", "hello", files=FILES, installation_id=lean)
    world.github.add_user("alice", permission_on={"lean-org/hello": "write"})
    number = world.github.add_issue("lean-org/hello", title="Add greet()", body="Add `greet()`.",
                                    user="alice", labels=["feature-crew:tier-2"])  # fmt: skip
    world.anthropic.script("claude-sonnet-5-5", _writes_greet())
    world.github.label_issue("lean-org/hello", number, "feature-crew", sender="alice")
    world.work()
    task = world.store.recent(1)[0]
    assert task.progress.state is TaskState.FAILED
    assert "Resource not accessible by integration" in (task.progress.error or "")
    with world.github.state.lock:
        assert len(world.github.state.open_pulls("lean-org/hello")) == 1  # the PR made it


def test_a_malformed_payload_is_reported_once_not_retried(world: World) -> None:
    from bot import jobs
    from bot.deliveries import record_and_queue
    from bot.queue import TaskQueue, rq_redis

    redis = rq_redis(world.redis_url)
    body = (
        b'{"action": "labeled", "label": {"name": "feature-crew"}, "issue": {"state": "open"},'
        b' "sender": {"login": "alice"}, "installation": {"id": 1}}'
    )  # no repository
    record_and_queue(redis, TaskQueue(redis, world.settings.config.worker), delivery_id="bad-1",
                     event="issues", action="labeled", body=body)  # fmt: skip
    assert jobs.handle_delivery("bad-1") == "failed: malformed payload"
