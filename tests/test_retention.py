"""Retention: old task records leave Redis whole; mirrors lose finished branches; uninstall."""

from __future__ import annotations

import time

import httpx
import pygit2
from redis import Redis
from rq import Queue
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from bot import jobs
from bot.keys import redis_key
from bot.queue import EVENTS, TASKS, rq_redis
from bot.retention import DAY_S, trim_old_tasks
from bot.store import TaskStore
from pipeline.models import TaskSpec, TaskState
from pipeline.workspace import Workspace
from tests.test_end_to_end import _approves, _writes_greet
from tests.world import REPO, World

S = TaskState


def _spec(task_id: str, issue: int, created_at: float) -> TaskSpec:
    return TaskSpec(
        id=task_id, installation_id=1, repo_full_name="o/r", repo_id=7,
        clone_url="http://x.invalid/o/r.git", default_branch="main", issue_number=issue,
        issue_title="t", spec="t", slug="t", branch=f"feature-crew/issue-{issue}-t",
        requested_by="alice", delivery_id="d", created_at=created_at,
    )  # fmt: skip


def _keys(redis: Redis, task_id: str) -> set[str]:
    return {k.decode() for k in redis.scan_iter(match=f"fc:task:{task_id}*")}


def test_old_finished_tasks_are_forgotten_whole_and_waiting_ones_kept(redis_client: Redis) -> None:
    store, now = TaskStore(redis_client), time.time()
    for task_id, issue in (("old-done", 1), ("old-open", 2), ("new-done", 3), ("old-reused", 4)):
        store.create(_spec(task_id, issue, now + 2 * DAY_S if task_id == "new-done" else now))
    store.transition("old-done", S.FAILED, "gave up")
    store.save_blob("old-done", "diff-abc", "{}")
    store.update("old-done", pr_number=11)
    store.link_pull(7, 11, "old-done")
    store.transition("old-open", S.GENERATING)
    store.transition("old-open", S.AUDITING)
    store.transition("old-open", S.REVIEWING)
    store.transition("old-open", S.PR_OPEN, pr_number=12)
    store.transition("new-done", S.CANCELLED)
    store.transition("old-reused", S.CANCELLED)
    redis_client.set(redis_key("issue", 7, 4), "someone-else")  # a later task took the issue
    assert _keys(redis_client, "old-done") == {
        "fc:task:old-done",
        "fc:task:old-done:events",
        "fc:task:old-done:diff-abc",
    }
    # Seen 31 days on: the others are past a 30-day retention, new-done (2 days younger) is not.
    assert trim_old_tasks(store, 30, now=now + 31 * DAY_S) == 2
    assert _keys(redis_client, "old-done") == set()
    assert store.get("old-done") is None and store.task_for_pull(7, 11) is None
    assert store.active_task_for_issue(7, 1) is None
    assert store.active_task_for_issue(7, 4) == "someone-else"
    assert {r.id for r in store.recent(10)} == {"old-open", "new-done"}
    assert store.require("old-open").progress.state is S.PR_OPEN
    assert trim_old_tasks(store, 30, now=now + 31 * DAY_S) == 0  # nothing left to trim
    assert trim_old_tasks(store, 30, now=now + 33 * DAY_S) == 1  # now new-done's turn


def _mirror_branches(world: World, repo_id: int) -> list[str]:
    ws = Workspace(world.settings.env.home)
    with ws.open_mirror(repo_id) as repo:
        return sorted(b for b in repo.branches.local if b.startswith("feature-crew/"))


def _finished_task(world: World) -> tuple[int, int]:
    number = world.issue("Add greet()", "Add `greet()`.", labels=["feature-crew:tier-2"])
    world.anthropic.script("claude-sonnet-5-5", _writes_greet())
    world.anthropic.script("claude-haiku-5-5", _approves())
    world.label(number)
    world.work()
    task = world.store.recent(1)[0]
    assert _mirror_branches(world, task.spec.repo_id) == [task.spec.branch]
    return task.spec.repo_id, int(task.progress.pr_number or 0)


def test_the_daily_pass_drops_finished_branches_and_queues_the_next(world: World) -> None:
    repo_id, pr = _finished_task(world)
    with world.github.state.lock:
        from tests.doubles.github import actions

        actions.set_state(world.github, world.github.state.issues[(REPO, pr)], "closed", "alice")
    world.work()
    assert world.store.recent(1)[0].progress.state is S.CANCELLED
    assert jobs.tidy().startswith("Tidied(tasks=0, branches=1")
    assert _mirror_branches(world, repo_id) == []
    queue = Queue(TASKS, connection=rq_redis(world.redis_url), serializer=JSONSerializer)
    scheduled = ScheduledJobRegistry(queue=queue).get_job_ids()
    assert len(scheduled) == 1 and scheduled[0].startswith("tidy-")
    with Workspace(world.settings.env.home).open_mirror(repo_id) as repo:
        assert isinstance(
            repo.get(repo.references["refs/remotes/origin/main"].target), pygit2.Commit
        )


def test_an_uninstalled_app_removes_its_repositories_mirrors(world: World) -> None:
    repo_id, _ = _finished_task(world)
    ws = Workspace(world.settings.env.home)
    assert ws.mirror_path(repo_id).exists()
    with world.github.state.lock:
        installation = world.github.state.repos[REPO].installation_id
    repositories = [{"id": repo_id, "name": "hello", "full_name": REPO, "private": True}]
    headers, body = world.github.build_delivery(
        "installation", "deleted", repo=REPO, sender="octo-org",
        extra={"repositories": repositories,
               "installation": {"id": installation, "account": {"login": "octo-org"}}},
    )  # fmt: skip
    assert httpx.post(f"{world.web.url}/webhooks", content=body, headers=headers).status_code == 202
    events = Queue(EVENTS, connection=rq_redis(world.redis_url), serializer=JSONSerializer)
    assert events.count == 1
    world.work()
    assert not ws.mirror_path(repo_id).exists()
