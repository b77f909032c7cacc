"""The base branch moves under an open PR: rebased, re-audited and re-reviewed, or said why not."""

from __future__ import annotations

from pipeline.generate import EDIT_TOOL_NAME
from pipeline.messages import STATUS_MARKER
from pipeline.models import TaskRecord, TaskState
from tests.doubles.git_http import commit_files, read_file_at, rev_parse
from tests.doubles.models import text_turn, tool_turn
from tests.test_end_to_end import GREET, _approves, _writes_greet
from tests.world import REPO, World

DOCS = {"docs.md": "# Docs\n"}


# mypy and ruff add nothing to what these tests check and cost most of each audit.
FAST_AUDIT = {".github/feature-crew.toml": '[self_audit]\ntools = ["compile", "pytest"]\n'}


def _open_pr(world: World) -> tuple[int, int, TaskRecord]:
    world.github.push_branch(REPO, "main", FAST_AUDIT, sender="alice")
    number = world.issue("Add greet()", "Add `greet()`.", labels=["feature-crew:tier-2"])
    world.anthropic.script("claude-sonnet-5-5", _writes_greet())
    world.anthropic.script("claude-haiku-5-5", _approves())
    world.label(number)
    world.work()
    with world.github.state.lock:
        (pull,) = world.github.state.open_pulls(REPO)
    task = world.store.recent(1)[0]
    assert task.progress.state is TaskState.PR_OPEN
    return number, pull.number, task


def _settle(world: World) -> None:
    """Handle the push, then run the update the debounce scheduled a few seconds later."""
    world.work()
    world.release_scheduled()
    world.work()


def _bare(world: World):
    return world.github.git_root / "octo-org" / "hello.git"


def _states(task: TaskRecord) -> list[str]:
    return [t.state.value for t in task.transitions]


def _assert_one_pr_one_status(world: World, number: int, still_open: bool = True) -> None:
    with world.github.state.lock:
        assert len(world.github.state.pulls) == 1
        assert len(world.github.state.open_pulls(REPO)) == int(still_open)
        statuses = [
            c for c in world.github.state.comments_on(REPO, number) if STATUS_MARKER in c.body
        ]
        assert len(statuses) == 1


def _reviews(world: World, pr: int) -> list[tuple[str, str]]:
    with world.github.state.lock:
        reviews = world.github.state.reviews_on(REPO, pr)
        return [
            (r.commit_id, r.body.split("\n", 1)[0])
            for r in reviews
            if r.user == world.github.bot_login
        ]


def test_a_moved_base_is_rebased_under_the_pr_then_audited_and_reviewed_again(
    world: World,
) -> None:
    number, pr, task = _open_pr(world)
    old_head = str(task.progress.head_sha)
    world.anthropic.script("claude-haiku-5-5", _approves())
    base = world.github.push_branch(REPO, "main", DOCS, sender="alice")
    _settle(world)
    task = world.store.require(task.id)
    new_head = str(task.progress.head_sha)
    assert new_head != old_head and task.progress.state is TaskState.PR_OPEN
    assert _states(task)[-4:] == ["pr_open", "auditing", "reviewing", "pr_open"]
    assert "base moved to" in task.transitions[-3].note
    bare, branch = _bare(world), task.spec.branch
    assert rev_parse(bare, f"refs/heads/{branch}") == new_head
    assert rev_parse(bare, f"{new_head}~1") == base  # the bot's one commit, now on the new base
    assert read_file_at(bare, branch, "docs.md") == "# Docs\n"
    assert read_file_at(bare, branch, "greet.py") == GREET
    assert _reviews(world, pr) == [
        (old_head, "**Verdict: approve**"),
        (new_head, "**Verdict: approve**"),
    ]
    with world.github.state.lock:
        runs = sorted(
            (c.head_sha, c.name, c.conclusion) for c in world.github.state.check_runs.values()
        )
    assert runs == sorted(
        (sha, name, "success")
        for sha in (old_head, new_head)
        for name in ("Feature Crew / audit", "Feature Crew / review")
    )
    _assert_one_pr_one_status(world, number)


def test_a_burst_of_pushes_causes_one_update_with_the_last_base(world: World) -> None:
    number, pr, task = _open_pr(world)
    world.anthropic.script("claude-haiku-5-5", _approves() * 3)
    for i in range(3):
        last = world.github.push_branch(REPO, "main", {f"doc{i}.md": f"{i}\n"}, sender="alice")
    _settle(world)
    task = world.store.require(task.id)
    assert _states(task).count("auditing") == 2  # the first attempt, then one update
    assert len(_reviews(world, pr)) == 2
    assert world.anthropic.remaining("claude-haiku-5-5") == 2
    assert rev_parse(_bare(world), f"{task.progress.head_sha}~1") == last
    _assert_one_pr_one_status(world, number)


def test_human_commits_on_the_branch_are_left_alone_and_said(world: World) -> None:
    number, pr, task = _open_pr(world)
    human = world.github.push_branch(REPO, task.spec.branch, {"late.py": "x = 1\n"}, sender="alice")
    world.github.push_branch(REPO, "main", DOCS, sender="alice")
    _settle(world)
    task = world.store.require(task.id)
    assert rev_parse(_bare(world), f"refs/heads/{task.spec.branch}") == human
    assert task.progress.state is TaskState.PR_OPEN
    assert "commits by others" in task.transitions[-1].note
    with world.github.state.lock:
        notices = [
            c.body for c in world.github.state.comments_on(REPO, pr) if "left the branch" in c.body
        ]
    assert len(notices) == 1 and f"{human[:7]} by Test" in notices[0]
    assert len(_reviews(world, pr)) == 1  # nothing new to review
    _assert_one_pr_one_status(world, number)


def test_a_conflicting_move_gets_one_model_attempt_then_lists_the_files(world: World) -> None:
    number, pr, task = _open_pr(world)
    world.anthropic.script("claude-sonnet-5-5", [text_turn("I cannot tell which to keep.")])
    world.github.push_branch(REPO, "main", {"greet.py": "GREETING = 'hi'\n"}, sender="alice")
    _settle(world)
    task = world.store.require(task.id)
    assert task.progress.state is TaskState.PR_OPEN
    assert "conflicts in greet.py" in task.transitions[-2].note
    assert task.transitions[-1].note.endswith("conflicts in greet.py; waiting")
    content = world.anthropic.bodies("claude-sonnet-5-5")[-1]["messages"][0]["content"]
    prompt = " ".join(block.get("text", "") for block in content)
    assert "<<<<<<< " in prompt and ">>>>>>> " in prompt and "GREETING = 'hi'" in prompt
    with world.github.state.lock:
        notices = [c.body for c in world.github.state.comments_on(REPO, pr) if "conflict" in c.body]
    assert len(notices) == 1 and "- `greet.py`" in notices[0]
    assert rev_parse(_bare(world), f"refs/heads/{task.spec.branch}") == task.progress.head_sha
    assert len(_reviews(world, pr)) == 1
    _assert_one_pr_one_status(world, number)


def test_a_conflict_the_model_resolves_is_pushed_and_reviewed(world: World) -> None:
    number, pr, task = _open_pr(world)
    both = 'GREETING = "hi"\n\n\ndef greet() -> str:\n    return "Hello"\n'
    world.anthropic.script("claude-sonnet-5-5", [
        tool_turn(EDIT_TOOL_NAME, {"command": "create", "path": "greet.py", "file_text": both}),
        text_turn("Kept both."),
    ])  # fmt: skip
    world.anthropic.script("claude-haiku-5-5", _approves())
    base = world.github.push_branch(REPO, "main", {"greet.py": 'GREETING = "hi"\n'})
    _settle(world)
    task = world.store.require(task.id)
    assert _states(task)[-4:] == ["pr_open", "auditing", "reviewing", "pr_open"]
    head = str(task.progress.head_sha)
    assert rev_parse(_bare(world), f"{head}~1") == base
    assert read_file_at(_bare(world), head, "greet.py") == both
    assert [sha for sha, _ in _reviews(world, pr)][-1] == head
    _assert_one_pr_one_status(world, number)


def test_an_approval_of_a_head_behind_its_base_updates_it_before_any_merge(world: World) -> None:
    number, pr, task = _open_pr(world)
    commit_files(_bare(world), DOCS, branch="main")  # a push whose webhook never came
    world.anthropic.script("claude-haiku-5-5", _approves())
    world.github.submit_review(REPO, pr, "alice", "APPROVE", "Ship it")
    world.work()
    task = world.store.require(task.id)
    assert task.progress.state is TaskState.PR_OPEN
    with world.github.state.lock:
        assert not world.github.state.pulls[(REPO, pr)].merged
        notices = [
            c.body for c in world.github.state.comments_on(REPO, pr) if "Not merged yet" in c.body
        ]
    assert len(notices) == 1
    assert len(_reviews(world, pr)) == 2
    world.github.submit_review(REPO, pr, "alice", "APPROVE", "Now ship it")
    world.work()
    assert world.store.require(task.id).progress.state is TaskState.MERGED
    assert read_file_at(_bare(world), "main", "greet.py") == GREET
    _assert_one_pr_one_status(world, number, still_open=False)
