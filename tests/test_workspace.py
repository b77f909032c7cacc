"""The workspace against a real `git http-backend` remote on loopback, over HTTP and HTTPS.

Each test with a remote runs on both transports: HTTPS is what GitHub serves.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pygit2
import pytest

from pipeline.errors import TransientError, WorkspaceError
from pipeline.workspace import Workspace, Worktree
from tests.doubles.git_http import (
    commit_files,
    create_bare_repo,
    git_http_app,
    read_file_at,
    reject_pushes,
    rev_parse,
)
from tests.doubles.server import ServerThread, free_port
from tests.doubles.tls import Certificate, self_signed

TOKEN = "ghs_" + "s3cr3t" * 6
REPO_ID = 42
TASK = "task-1"
BRANCH = "feature-crew/issue-12-add-greet"
FILES = {
    "README.md": "# demo\n",
    "app/greet.py": "def greet():\n    return 'hi'\n",
    ".gitignore": "*.log\n",
}


@dataclass
class Remote:
    url: str
    bare: Path
    calls: list[tuple[str, str]]

    @property
    def clone_url(self) -> str:
        return f"{self.url}/octo/demo.git"


@pytest.fixture(params=["http", "https"])
def remote(
    request: pytest.FixtureRequest, tmp_path: Path, certificate: Certificate
) -> Iterator[Remote]:
    root = tmp_path / "remote"
    bare = root / "octo" / "demo.git"
    create_bare_repo(bare, FILES)
    calls: list[tuple[str, str]] = []

    def check_token(token: str, repo: str) -> bool:
        calls.append((token, repo))
        return token == TOKEN and repo == "octo/demo"

    tls = certificate if request.param == "https" else None
    server = ServerThread(git_http_app(root, check_token), tls=tls).start()
    yield Remote(server.url, bare, calls)
    server.stop()


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "home")


@pytest.fixture
def worktree(workspace: Workspace, remote: Remote) -> Worktree:
    workspace.sync_mirror(REPO_ID, remote.clone_url, TOKEN)
    return workspace.prepare_worktree(REPO_ID, TASK, BRANCH, "main")


def git_files(root: Path) -> Iterator[Path]:
    """Every file git keeps for a mirror or a worktree (config, worktree links, FETCH_HEAD...)."""
    for path in root.rglob("*"):
        if path.is_file() and "objects" not in path.parts:
            yield path


def test_first_sync_creates_the_mirror_with_every_branch(
    workspace: Workspace, remote: Remote
) -> None:
    head = rev_parse(remote.bare, "refs/heads/main")
    commit_files(remote.bare, {"other.txt": "x\n"}, branch="develop")

    workspace.sync_mirror(REPO_ID, remote.clone_url, TOKEN)

    mirror = pygit2.Repository(str(workspace.mirror_path(REPO_ID)))
    assert mirror.is_bare
    assert str(mirror.references["refs/remotes/origin/main"].target) == head
    assert "refs/remotes/origin/develop" in mirror.references
    assert remote.calls and all(call == (TOKEN, "octo/demo") for call in remote.calls)


def test_second_sync_fetches_the_new_commit(workspace: Workspace, remote: Remote) -> None:
    workspace.sync_mirror(REPO_ID, remote.clone_url, TOKEN)
    mirror = pygit2.Repository(str(workspace.mirror_path(REPO_ID)))
    objects_before = sum(1 for _ in mirror.odb)
    new_head = commit_files(remote.bare, {"README.md": "# demo v2\n"}, message="second")

    workspace.sync_mirror(REPO_ID, remote.clone_url, TOKEN)

    mirror = pygit2.Repository(str(workspace.mirror_path(REPO_ID)))
    assert str(mirror.references["refs/remotes/origin/main"].target) == new_head
    # One commit, one tree and one blob arrived: an incremental fetch, not a second clone.
    assert sum(1 for _ in mirror.odb) == objects_before + 3


def test_sync_follows_a_changed_clone_url(workspace: Workspace, remote: Remote) -> None:
    workspace.sync_mirror(REPO_ID, remote.clone_url, TOKEN)
    moved = remote.url.replace("127.0.0.1", "localhost") + "/octo/demo.git"

    workspace.sync_mirror(REPO_ID, moved, TOKEN)

    mirror = pygit2.Repository(str(workspace.mirror_path(REPO_ID)))
    assert mirror.remotes["origin"].url == moved


def test_token_is_never_written_to_disk(
    worktree: Worktree, workspace: Workspace, remote: Remote
) -> None:
    (worktree.path / "app" / "new.py").write_text("X = 1\n")
    worktree.commit_all("add new", "bot", "bot@example.com")
    worktree.push(remote.clone_url, TOKEN)
    workspace.sync_mirror(REPO_ID, remote.clone_url, TOKEN)

    for root in (workspace.mirror_path(REPO_ID), worktree.path):
        for path in git_files(root):
            assert TOKEN.encode() not in path.read_bytes(), path
    config = (workspace.mirror_path(REPO_ID) / "config").read_text()
    assert "x-access-token" not in config


def test_wrong_token_fails_with_a_clear_permanent_error(
    workspace: Workspace, remote: Remote
) -> None:
    with pytest.raises(WorkspaceError, match="authentication failed") as caught:
        workspace.sync_mirror(REPO_ID, remote.clone_url, "ghs_wrong")
    assert "ghs_wrong" not in str(caught.value)
    # libgit2 would replay refused credentials 15 times; we stop after the first refusal.
    assert len([c for c in remote.calls if c[0] == "ghs_wrong"]) == 1


def test_unknown_repository_is_permanent(workspace: Workspace, remote: Remote) -> None:
    with pytest.raises(WorkspaceError, match="404"):
        workspace.sync_mirror(REPO_ID, f"{remote.url}/octo/missing.git", TOKEN)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_unreachable_server_is_transient(workspace: Workspace, scheme: str) -> None:
    url = f"{scheme}://127.0.0.1:{free_port()}/octo/demo.git"
    with pytest.raises(TransientError):
        workspace.sync_mirror(REPO_ID, url, TOKEN)


def test_an_untrusted_certificate_fails_at_once_and_says_so(
    workspace: Workspace, tmp_path: Path
) -> None:
    """As behind a TLS-intercepting proxy whose CA the worker does not trust. (Through a
    local CONNECT proxy, libgit2 1.9 hangs on this rejection, polling a stream it already
    closed: one reason fetches and pushes connect directly; see bench/README.md.)"""
    root = tmp_path / "remote"
    create_bare_repo(root / "octo" / "demo.git", FILES)
    stranger = self_signed(tmp_path / "untrusted")  # not the certificate this process trusts
    server = ServerThread(git_http_app(root, lambda t, _: t == TOKEN), tls=stranger).start()
    try:
        with pytest.raises(WorkspaceError) as caught:
            workspace.sync_mirror(REPO_ID, f"{server.url}/octo/demo.git", TOKEN)
    finally:
        server.stop()
    assert caught.value.public == "git fetch failed: the git host's TLS certificate is not trusted"
    assert TOKEN not in str(caught.value)


def test_token_in_the_url_is_refused(workspace: Workspace, remote: Remote) -> None:
    url = remote.clone_url.replace("://", f"://x-access-token:{TOKEN}@")
    with pytest.raises(WorkspaceError) as caught:
        workspace.sync_mirror(REPO_ID, url, TOKEN)
    assert TOKEN not in str(caught.value)
    assert not workspace.mirror_path(REPO_ID).exists()


def test_prepare_worktree_checks_out_the_branch_at_the_base(
    worktree: Worktree, remote: Remote
) -> None:
    repo = pygit2.Repository(str(worktree.path))
    assert repo.head.name == f"refs/heads/{BRANCH}"
    assert str(repo.head.target) == worktree.base_sha == rev_parse(remote.bare, "refs/heads/main")
    assert (worktree.path / "app" / "greet.py").read_text() == FILES["app/greet.py"]
    assert worktree.changed_files() == []


def test_prepare_worktree_twice_gives_a_fresh_worktree(
    workspace: Workspace, worktree: Worktree
) -> None:
    (worktree.path / "README.md").write_text("dirty\n")
    (worktree.path / "leftover.txt").write_text("from a dead worker\n")
    assert worktree.commit_all("half done", "bot", "bot@example.com") is not None

    again = workspace.prepare_worktree(REPO_ID, TASK, BRANCH, "main")

    assert again.path == worktree.path
    assert not (again.path / "leftover.txt").exists()
    assert (again.path / "README.md").read_text() == FILES["README.md"]
    repo = pygit2.Repository(str(again.path))
    assert str(repo.head.target) == again.base_sha
    mirror = pygit2.Repository(str(workspace.mirror_path(REPO_ID)))
    assert mirror.list_worktrees() == [TASK]


def test_remove_worktree_is_idempotent(workspace: Workspace, worktree: Worktree) -> None:
    workspace.remove_worktree(REPO_ID, TASK)
    workspace.remove_worktree(REPO_ID, TASK)

    assert not worktree.path.exists()
    mirror = pygit2.Repository(str(workspace.mirror_path(REPO_ID)))
    assert mirror.list_worktrees() == []
    workspace.remove_worktree(REPO_ID + 1, "never-existed")


def test_unknown_base_branch_is_refused(workspace: Workspace, remote: Remote) -> None:
    workspace.sync_mirror(REPO_ID, remote.clone_url, TOKEN)
    with pytest.raises(WorkspaceError, match="nope"):
        workspace.prepare_worktree(REPO_ID, TASK, BRANCH, "nope")


def test_changed_files_includes_untracked_and_deleted_not_ignored(worktree: Worktree) -> None:
    (worktree.path / "README.md").write_text("# changed\n")
    (worktree.path / "app" / "greet.py").unlink()
    (worktree.path / "docs" / "deep").mkdir(parents=True)
    (worktree.path / "docs" / "deep" / "new.md").write_text("new\n")
    (worktree.path / "debug.log").write_text("ignored\n")

    assert worktree.changed_files() == ["README.md", "app/greet.py", "docs/deep/new.md"]


def test_changed_files_counts_committed_changes_too(worktree: Worktree) -> None:
    (worktree.path / "a.py").write_text("A = 1\n")
    worktree.commit_all("a", "bot", "bot@example.com")
    (worktree.path / "b.py").write_text("B = 1\n")

    assert worktree.changed_files() == ["a.py", "b.py"]


def test_commit_all_returns_none_when_nothing_changed(worktree: Worktree) -> None:
    (worktree.path / "debug.log").write_text("ignored\n")
    assert worktree.commit_all("nothing", "bot", "bot@example.com") is None


def test_commit_all_stacks_one_commit_per_call(worktree: Worktree) -> None:
    (worktree.path / "a.py").write_text("A = 1\n")
    first = worktree.commit_all("first", "bot", "bot@example.com")
    (worktree.path / "a.py").unlink()
    (worktree.path / "b.py").write_text("B = 1\n")
    second = worktree.commit_all("second", "Bot Name", "bot@example.com")

    repo = pygit2.Repository(str(worktree.path))
    head = repo.head.peel(pygit2.Commit)
    assert str(head.id) == second
    assert [str(p) for p in head.parent_ids] == [first]
    assert head.author.name == "Bot Name" and head.committer.email == "bot@example.com"
    assert "a.py" not in head.tree and "b.py" in head.tree
    assert repo.status() == {}


def test_protected_path_is_refused_at_commit(worktree: Worktree) -> None:
    workflows = worktree.path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "x.yml").write_text("on: push\n")
    (worktree.path / "ok.py").write_text("OK = 1\n")

    with pytest.raises(WorkspaceError, match=r"\.github/workflows/x\.yml"):
        worktree.commit_all("sneaky", "bot", "bot@example.com")

    repo = pygit2.Repository(str(worktree.path))
    assert str(repo.head.target) == worktree.base_sha


def test_custom_protected_prefixes(worktree: Worktree) -> None:
    (worktree.path / "secrets.env").write_text("X=1\n")
    with pytest.raises(WorkspaceError, match="secrets.env"):
        worktree.commit_all("m", "bot", "bot@example.com", protected_paths=["secrets.env"])


def test_diff_counts_lines_and_files(worktree: Worktree) -> None:
    (worktree.path / "app" / "greet.py").write_text(
        "def greet(name):\n    return f'hi {name}'\n\n\nGREETING = 1\n"
    )
    (worktree.path / "README.md").unlink()
    (worktree.path / "new.txt").write_text("one\ntwo\nthree\n")
    worktree.commit_all("change", "bot", "bot@example.com")

    diff = worktree.diff()

    assert diff.base_sha == worktree.base_sha
    assert diff.head_sha == str(pygit2.Repository(str(worktree.path)).head.target)
    assert sorted(diff.files) == ["README.md", "app/greet.py", "new.txt"]
    # greet.py: 2 removed, 5 added; README.md: 1 removed; new.txt: 3 added.
    assert (diff.added, diff.removed) == (8, 3)
    assert "+GREETING = 1" in diff.patch and "-# demo" in diff.patch


def test_push_lands_the_branch_on_the_remote(worktree: Worktree, remote: Remote) -> None:
    (worktree.path / "app" / "greet.py").write_text("def greet():\n    return 'hello'\n")
    sha = worktree.commit_all("greet", "bot", "bot@example.com")

    worktree.push(remote.clone_url, TOKEN)

    assert _remote_rev(remote.bare, f"refs/heads/{BRANCH}") == sha
    assert read_file_at(remote.bare, BRANCH, "app/greet.py") == "def greet():\n    return 'hello'\n"


def test_force_push_of_a_rewritten_branch(
    workspace: Workspace, worktree: Worktree, remote: Remote
) -> None:
    (worktree.path / "first.py").write_text("A = 1\n")
    worktree.commit_all("first", "bot", "bot@example.com")
    worktree.push(remote.clone_url, TOKEN)

    workspace.sync_mirror(REPO_ID, remote.clone_url, TOKEN)
    again = workspace.prepare_worktree(REPO_ID, TASK, BRANCH, "main")
    (again.path / "second.py").write_text("B = 1\n")
    rewritten = again.commit_all("second", "bot", "bot@example.com")
    again.push(remote.clone_url, TOKEN)

    assert _remote_rev(remote.bare, f"refs/heads/{BRANCH}") == rewritten
    assert read_file_at(remote.bare, BRANCH, "first.py") is None


def test_push_with_a_wrong_token_is_refused(worktree: Worktree, remote: Remote) -> None:
    (worktree.path / "a.py").write_text("A = 1\n")
    worktree.commit_all("a", "bot", "bot@example.com")
    with pytest.raises(WorkspaceError, match="authentication failed"):
        worktree.push(remote.clone_url, "ghs_expired")
    assert rev_parse(remote.bare, f"refs/heads/{BRANCH}") is None


def test_rejected_ref_raises_with_the_hook_message(worktree: Worktree, remote: Remote) -> None:
    reject_pushes(remote.bare, "refusing: workflows permission missing")
    (worktree.path / "a.py").write_text("A = 1\n")
    worktree.commit_all("a", "bot", "bot@example.com")

    with pytest.raises(WorkspaceError) as caught:
        worktree.push(remote.clone_url, TOKEN)

    message = str(caught.value)
    assert f"refs/heads/{BRANCH}" in message
    assert "pre-receive hook declined" in message
    assert "refusing: workflows permission missing" in message
    assert rev_parse(remote.bare, f"refs/heads/{BRANCH}") is None


def _remote_rev(bare: Path, ref: str) -> str:
    done = subprocess.run(
        ["git", "--git-dir", str(bare), "rev-parse", ref],
        check=False,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def test_new_task_takes_the_branch_from_a_stale_worktree(
    workspace: Workspace, worktree: Worktree
) -> None:
    (worktree.path / "stale.py").write_text("S = 1\n")
    worktree.commit_all("stale", "bot", "bot@example.com")

    fresh = workspace.prepare_worktree(REPO_ID, "task-2", BRANCH, "main")

    assert not worktree.path.exists()
    assert not (fresh.path / "stale.py").exists()
    mirror = pygit2.Repository(str(workspace.mirror_path(REPO_ID)))
    assert mirror.list_worktrees() == ["task-2"]
