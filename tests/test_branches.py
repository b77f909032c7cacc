"""Rebasing task branches, pushing with a lease and cleaning mirrors, against a real remote."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pygit2
import pytest

from pipeline import branches
from pipeline.workspace import Workspace
from tests.doubles.git_http import (
    commit_files,
    create_bare_repo,
    git_http_app,
    read_file_at,
    rev_parse,
)
from tests.doubles.server import ServerThread
from tests.doubles.tls import Certificate
from tests.test_workspace import BRANCH, FILES, REPO_ID, TASK, TOKEN, Remote

BOT = pygit2.Signature("crew[bot]", "1+crew[bot]@users.noreply.github.com")


@pytest.fixture(params=["http", "https"])
def remote(
    request: pytest.FixtureRequest, tmp_path: Path, certificate: Certificate
) -> Iterator[Remote]:
    """The same remote as tests/test_workspace.py's: octo/demo behind git http-backend, over
    HTTP and over HTTPS."""
    root = tmp_path / "remote"
    bare = root / "octo" / "demo.git"
    create_bare_repo(bare, FILES)
    tls = certificate if request.param == "https" else None
    app = git_http_app(root, lambda token, _: token == TOKEN)
    server = ServerThread(app, tls=tls).start()
    yield Remote(server.url, bare, [])
    server.stop()


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "home")


def _bot_commit(ws: Workspace, remote: Remote, files: dict[str, str]) -> str:
    """The bot's commit on BRANCH, pushed like a task pushes it."""
    ws.sync_mirror(REPO_ID, remote.clone_url, TOKEN)
    worktree = ws.prepare_worktree(REPO_ID, TASK, BRANCH, "main", continue_branch=True)
    for name, text in files.items():
        (worktree.path / name).parent.mkdir(parents=True, exist_ok=True)
        (worktree.path / name).write_text(text)
    sha = worktree.commit_all("bot change", BOT.name, BOT.email, paths=tuple(files))
    worktree.push(remote.clone_url, TOKEN)
    ws.remove_worktree(REPO_ID, TASK)
    ws.sync_mirror(REPO_ID, remote.clone_url, TOKEN)
    assert sha is not None
    return sha


def test_a_bot_only_branch_is_rebased_and_pushed_with_its_lease(
    workspace: Workspace, remote: Remote
) -> None:
    head = _bot_commit(workspace, remote, {"new.py": "x = 1\n"})
    base = commit_files(remote.bare, {"README.md": "# moved\n"}, branch="main")
    workspace.sync_mirror(REPO_ID, remote.clone_url, TOKEN)
    pos = branches.branch_position(workspace, REPO_ID, BRANCH, "main", BOT.email)
    assert pos is not None and not pos.up_to_date and pos.foreign == ()
    rebased = branches.rebase_onto_base(workspace, REPO_ID, BRANCH, "main", BOT)
    assert rebased.head_sha is not None and rebased.conflicts == ()
    pushed = branches.push_with_lease(
        workspace, REPO_ID, sha=rebased.head_sha, branch=BRANCH, expected_sha=head,
        clone_url=remote.clone_url, token=TOKEN,
    )  # fmt: skip
    assert pushed
    assert rev_parse(remote.bare, f"refs/heads/{BRANCH}") == rebased.head_sha
    assert read_file_at(remote.bare, BRANCH, "README.md") == "# moved\n"
    assert read_file_at(remote.bare, BRANCH, "new.py") == "x = 1\n"
    workspace.sync_mirror(REPO_ID, remote.clone_url, TOKEN)
    after = branches.branch_position(workspace, REPO_ID, BRANCH, "main", BOT.email)
    assert after is not None and after.up_to_date and after.merge_base == base


def test_a_lease_on_a_moved_branch_pushes_nothing(workspace: Workspace, remote: Remote) -> None:
    head = _bot_commit(workspace, remote, {"new.py": "x = 1\n"})
    commit_files(remote.bare, {"README.md": "# moved\n"}, branch="main")
    workspace.sync_mirror(REPO_ID, remote.clone_url, TOKEN)
    rebased = branches.rebase_onto_base(workspace, REPO_ID, BRANCH, "main", BOT)
    human = commit_files(remote.bare, {"human.py": "y = 2\n"}, branch=BRANCH)
    assert rebased.head_sha is not None
    pushed = branches.push_with_lease(
        workspace, REPO_ID, sha=rebased.head_sha, branch=BRANCH, expected_sha=head,
        clone_url=remote.clone_url, token=TOKEN,
    )  # fmt: skip
    assert pushed is False
    assert rev_parse(remote.bare, f"refs/heads/{BRANCH}") == human


def test_human_commits_are_named_and_conflicts_listed(workspace: Workspace, remote: Remote) -> None:
    _bot_commit(workspace, remote, {"README.md": "# bot\n"})
    commit_files(remote.bare, {"other.py": "z = 3\n"}, branch=BRANCH)
    commit_files(remote.bare, {"README.md": "# human on main\n"}, branch="main")
    workspace.sync_mirror(REPO_ID, remote.clone_url, TOKEN)
    pos = branches.branch_position(workspace, REPO_ID, BRANCH, "main", BOT.email)
    assert pos is not None and len(pos.foreign) == 1 and pos.foreign[0].endswith("by Test")
    rebased = branches.rebase_onto_base(workspace, REPO_ID, BRANCH, "main", BOT)
    assert rebased.head_sha is None and rebased.conflicts == ("README.md",)
    worktree, paths = branches.conflict_worktree(workspace, REPO_ID, TASK, BRANCH, "main")
    assert paths == ("README.md",)
    assert branches.files_with_markers(worktree.path, paths) == ("README.md",)
    assert (worktree.path / "other.py").read_text() == "z = 3\n"
    (worktree.path / "README.md").write_text("# both\n")
    assert branches.files_with_markers(worktree.path, paths) == ()
    sha = worktree.commit_all("resolved", BOT.name, BOT.email, paths=worktree.changed_files())
    assert sha is not None and set(worktree.diff().files) == {"README.md", "other.py"}


def test_finished_branches_are_pruned_and_mirrors_removed(
    workspace: Workspace, remote: Remote
) -> None:
    _bot_commit(workspace, remote, {"new.py": "x = 1\n"})
    workspace.prepare_worktree(REPO_ID, "other-task", "feature-crew/issue-9-x", "main")
    with workspace.open_mirror(REPO_ID) as repo:
        main = repo.references["refs/remotes/origin/main"].peel(pygit2.Commit)
        repo.branches.local.create("feature-crew/issue-1-old", main)
    dropped = branches.prune_task_branches(workspace, REPO_ID, keep={BRANCH})
    assert dropped == ["feature-crew/issue-1-old"]  # the checked-out one stays
    assert branches.repack_mirror(workspace, REPO_ID)
    assert branches.mirror_ids(workspace) == [REPO_ID]
    assert branches.remove_mirror(workspace, REPO_ID)
    assert not workspace.mirror_path(REPO_ID).exists()
    assert not workspace.worktree_path("other-task").exists()
    assert branches.mirror_ids(workspace) == []
    assert branches.remove_mirror(workspace, REPO_ID) is False
