"""A real worker process killed with SIGKILL at each risky point: one branch, PR, status comment."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from rq import Queue
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from bot.queue import ALL_QUEUES, rq_redis
from pipeline.generate import EDIT_TOOL_NAME
from pipeline.messages import STATUS_MARKER
from pipeline.models import TaskState
from tests.doubles.git_http import rev_parse
from tests.doubles.models import text_turn, tool_turn
from tests.sockets import blocked_sockets
from tests.test_end_to_end import _approves, _writes_greet
from tests.test_faults import _one_of_each
from tests.world import REPO, World, descendants, wait_for

SLOW_TEST = "import time\n\n\ndef test_slow() -> None:\n    time.sleep(30)\n"


def _in_state(world: World, state: TaskState) -> bool:
    recent = world.store.recent(1)
    return bool(recent) and recent[0].progress.state is state


def _recover(world: World) -> None:
    """What the next worker's maintenance pass does once the killed job's heartbeat lapsed."""
    redis = rq_redis(world.redis_url)
    for name in ALL_QUEUES:  # a routed task runs on its tier's queue
        queue = Queue(name, connection=redis, serializer=JSONSerializer)
        StartedJobRegistry(queue=queue).cleanup(timestamp=time.time() + 10**6)
    assert world.release_scheduled() == 1
    world.work()


def _branches(world: World) -> list[str]:
    bare = world.github.git_root / "octo-org" / "hello.git"
    refs = (bare / "refs" / "heads" / "feature-crew").rglob("*")
    packed = (bare / "packed-refs").read_text() if (bare / "packed-refs").exists() else ""
    names = {str(p.relative_to(bare / "refs" / "heads")) for p in refs if p.is_file()}
    names |= {line.split()[1][len("refs/heads/") :] for line in packed.splitlines()
              if " refs/heads/feature-crew/" in line}  # fmt: skip
    return sorted(names)


def test_a_worker_killed_during_the_audit_is_recovered_by_the_next(world: World) -> None:
    number = world.issue("Add greet()", "Add `greet()`.", labels=["feature-crew:tier-2"])
    slow = tool_turn(EDIT_TOOL_NAME, {"command": "create", "path": "tests/test_slow.py",
                                      "file_text": SLOW_TEST})  # fmt: skip
    world.anthropic.script("claude-sonnet-5-5", [slow, text_turn("Done."), *_writes_greet()])
    world.anthropic.script("claude-haiku-5-5", _approves())
    world.label(number)
    world.github.wait_for_deliveries()
    with world.worker_process():
        wait_for(lambda: _in_state(world, TaskState.AUDITING), 60)
        time.sleep(0.5)  # inside the audit's tools now
    assert world.store.recent(1)[0].progress.state is TaskState.AUDITING
    _recover(world)
    task = world.store.recent(1)[0]
    assert task.progress.state is TaskState.PR_OPEN
    assert [t.state.value for t in task.transitions].count("reviewing") == 1
    assert _branches(world) == [task.spec.branch]
    _one_of_each(world, number)


def test_a_worker_killed_between_the_push_and_the_pull_request(world: World) -> None:
    number = world.issue("Add greet()", "Add `greet()`.", labels=["feature-crew:tier-2"])
    world.anthropic.script("claude-sonnet-5-5", _writes_greet())
    world.anthropic.script("claude-haiku-5-5", _approves())
    # The first look-up of the PR, right after the push, hangs until the worker is dead.
    world.github.hold_next("GET", r"^/repos/octo-org/hello/pulls$", seconds=120)
    world.label(number)
    world.github.wait_for_deliveries()
    with world.worker_process():
        wait_for(world.github.held_request_arrived, 90)
    world.github.release_held()
    task = world.store.recent(1)[0]
    assert task.progress.state is TaskState.AUDITING and task.progress.pushed_sha
    bare = world.github.git_root / "octo-org" / "hello.git"
    assert rev_parse(bare, f"refs/heads/{task.spec.branch}") == task.progress.pushed_sha
    with world.github.state.lock:
        assert not world.github.state.pulls
    _recover(world)
    task = world.store.recent(1)[0]
    assert task.progress.state is TaskState.PR_OPEN
    assert world.anthropic.remaining("claude-sonnet-5-5") == 0  # no second generation
    assert _branches(world) == [task.spec.branch]
    _one_of_each(world, number)


def test_a_worker_killed_while_it_audits_a_rebased_head(world: World) -> None:
    from tests.test_base_moved import _open_pr, _reviews

    number, pr, task = _open_pr(world)
    old_head = task.progress.head_sha
    world.anthropic.script("claude-haiku-5-5", _approves())
    slow = SLOW_TEST.replace("sleep(30)", "sleep(4)")
    world.github.push_branch(REPO, "main", {"tests/test_slow.py": slow}, sender="alice")
    world.github.wait_for_deliveries()
    with world.worker_process():
        # The push is handled, the debounced update rebases and pushes, then audits: killed.
        wait_for(lambda: _in_state(world, TaskState.AUDITING), 90)
    bare = world.github.git_root / "octo-org" / "hello.git"
    rebased = rev_parse(bare, f"refs/heads/{task.spec.branch}")
    assert rebased != old_head and len(_reviews(world, pr)) == 1
    _recover(world)
    task = world.store.require(task.id)
    assert task.progress.state is TaskState.PR_OPEN and task.progress.head_sha == rebased
    states = [t.state.value for t in task.transitions]
    assert states[-4:] == ["pr_open", "auditing", "reviewing", "pr_open"]
    assert states.count("auditing") == 2
    assert [sha for sha, _ in _reviews(world, pr)] == [old_head, rebased]
    with world.github.state.lock:
        assert len(world.github.state.pulls) == 1
        statuses = [
            c for c in world.github.state.comments_on(REPO, number) if STATUS_MARKER in c.body
        ]
        assert len(statuses) == 1


def test_a_worker_killed_outright_leaves_none_of_its_processes_behind(world: World) -> None:
    # The OOM killer or `kill -9` takes the worker alone. Its idle horses, events sidecar and
    # tier watcher die with it; so must RQ's scheduler process, which used to live on as an
    # orphan holding the scheduler locks (so no new worker scheduled) and the dead worker's
    # sockets.
    redis = rq_redis(world.redis_url)
    with world.worker_process() as worker:

        def ready() -> bool:  # scheduling, and both workers waiting for jobs
            tree = [worker.pid, *descendants(worker.pid)]
            return bool(redis.keys("rq:scheduler:*")) and len(blocked_sockets(redis, tree)) == 2

        wait_for(ready, 120)
        forks = descendants(worker.pid)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
        wait_for(lambda: not [pid for pid in forks if _alive(pid)], 60)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")
