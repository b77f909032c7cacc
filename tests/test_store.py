"""Task records in a real Redis: claims, the state machine, transitions with timestamps."""

from __future__ import annotations

import json

import pytest
import redis

from bot.store import TaskStore
from pipeline.errors import PermanentError, TransientError
from pipeline.models import TERMINAL_STATES, TaskSpec, TaskState


def _spec(task_id: str = "hello-7-abc", issue: int = 7) -> TaskSpec:
    return TaskSpec(
        id=task_id,
        installation_id=1,
        repo_full_name="octo/hello",
        repo_id=99,
        clone_url="http://x/octo/hello.git",
        default_branch="main",
        issue_number=issue,
        issue_title="Add greet",
        spec="Add greet()",
        slug="add-greet",
        branch=f"feature-crew/issue-{issue}-add-greet",
        requested_by="alice",
        delivery_id="d",
    )


def test_create_is_idempotent_and_one_live_task_holds_an_issue(redis_client: redis.Redis) -> None:
    store = TaskStore(redis_client)
    assert store.create(_spec()).created
    assert store.create(_spec()).created  # the same task again: a re-run, not a conflict
    other = store.create(_spec("hello-7-def"))
    assert other.busy and other.task_id == "hello-7-abc"
    assert store.get("hello-7-def") is None


def test_a_finished_task_frees_the_issue(redis_client: redis.Redis) -> None:
    store = TaskStore(redis_client)
    store.create(_spec())
    store.transition("hello-7-abc", TaskState.FAILED, "boom", error="boom")
    assert store.create(_spec("hello-7-def")).created
    assert store.active_task_for_issue(99, 7) == "hello-7-def"


@pytest.mark.parametrize("state", list(TaskState))
def test_only_a_terminal_state_frees_the_issue(redis_client: redis.Redis, state: TaskState) -> None:
    store = TaskStore(redis_client)
    store.create(_spec())
    redis_client.hset("fc:task:hello-7-abc", "state", state.value)  # what the claim script reads
    assert store.create(_spec("hello-7-def")).created is (state in TERMINAL_STATES)


def test_transitions_are_recorded_with_timestamps_in_order(redis_client: redis.Redis) -> None:
    store = TaskStore(redis_client)
    store.create(_spec())
    for state in (TaskState.GENERATING, TaskState.AUDITING, TaskState.REVIEWING, TaskState.PR_OPEN):
        store.transition("hello-7-abc", state, f"to {state}")
    record = store.require("hello-7-abc")
    states = [t.state for t in record.transitions]
    assert states == ["queued", "generating", "auditing", "reviewing", "pr_open"]
    times = [t.at for t in record.transitions]
    assert times == sorted(times)
    assert record.progress.state is TaskState.PR_OPEN


def test_illegal_transitions_are_refused(redis_client: redis.Redis) -> None:
    store = TaskStore(redis_client)
    store.create(_spec())
    with pytest.raises(PermanentError):
        store.transition("hello-7-abc", TaskState.PR_OPEN)
    store.transition("hello-7-abc", TaskState.FAILED)
    with pytest.raises(PermanentError):
        store.transition("hello-7-abc", TaskState.GENERATING)


def test_update_keeps_state_and_recent_lists_newest_first(redis_client: redis.Redis) -> None:
    store = TaskStore(redis_client)
    store.create(_spec("a-1-x", issue=1))
    store.create(_spec("a-2-x", issue=2).model_copy(update={"created_at": 2e9}))
    store.update("a-1-x", cost_usd=0.25, attempts=1)
    record = store.require("a-1-x")
    assert (record.progress.cost_usd, record.progress.state) == (0.25, TaskState.QUEUED)
    assert [r.id for r in store.recent(5)] == ["a-2-x", "a-1-x"]


def test_one_job_holds_a_task_and_the_same_job_may_take_it_back(redis_client: redis.Redis) -> None:
    store = TaskStore(redis_client)
    with store.lease("t-1", "job-a", 60):
        with (
            pytest.raises(TransientError, match="busy with job job-a"),
            store.lease("t-1", "job-b", 60),
        ):
            pass
        with store.lease("t-1", "job-a", 60):  # job-a re-run after its worker died
            pass
    with store.lease("t-1", "job-b", 60):
        assert redis_client.get("fc:lease:t-1") == b"job-b"
    assert redis_client.get("fc:lease:t-1") is None


def test_concurrent_writes_do_not_lose_each_other(redis_client: redis.Redis) -> None:
    import threading

    store = TaskStore(redis_client)
    store.create(_spec())
    fields = ["attempts", "cost_usd", "pr_number", "status_comment_id"]

    def write(name: str) -> None:
        for i in range(20):
            store.update("hello-7-abc", **{name: i + 1})

    threads = [threading.Thread(target=write, args=(f,)) for f in fields]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    progress = store.require("hello-7-abc").progress
    assert (progress.attempts, progress.cost_usd, progress.pr_number) == (20, 20, 20)
    assert progress.status_comment_id == 20


def test_a_spec_stored_by_an_older_version_still_loads(
    redis_client: redis.Redis,
) -> None:
    store = TaskStore(redis_client)
    store.create(_spec())
    older = {**_spec().model_dump(exclude={"labels"}), "tier_override": 3, "slug": "add-greet"}
    older["delivery_id"] = "d"
    redis_client.hset("fc:task:hello-7-abc", "spec", json.dumps(older))
    spec = store.require("hello-7-abc").spec
    assert (spec.labels, spec.tier_override) == (("feature-crew:tier-3",), 3)
    untiered = TaskSpec.model_validate({**older, "tier_override": None})
    assert (untiered.labels, untiered.tier_override) == ((), None)
