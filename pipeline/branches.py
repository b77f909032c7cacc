"""Task branches against a moving base: where they stand, rebase, lease push, cleanup."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pygit2
from pygit2.enums import SortMode

from pipeline.errors import WorkspaceError
from pipeline.gitauth import TokenCallbacks, check_clone_url, network_error
from pipeline.workspace import ORIGIN, Workspace, Worktree

log = logging.getLogger(__name__)
TASK_BRANCHES = "feature-crew/"
_MARKER = re.compile(r"^(<{7}|>{7})( |$)", re.MULTILINE)
_REF_NAME = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class Position:
    """A task branch against its base branch on origin, as the mirror last fetched them."""

    base_sha: str
    head_sha: str
    merge_base: str
    foreign: tuple[str, ...]  # commits someone else made on the branch, "abc1234 by Name"

    @property
    def up_to_date(self) -> bool:
        return self.merge_base == self.base_sha


@dataclass(frozen=True)
class Rebased:
    head_sha: str | None  # the new head, or None when the branch conflicts with the base
    conflicts: tuple[str, ...] = ()


class LeaseLost(WorkspaceError):
    """The remote branch moved away from the sha we rebased from: nothing was pushed."""


def _remote_commit(repo: pygit2.Repository, branch: str) -> pygit2.Commit | None:
    ref = repo.references.get(f"refs/remotes/{ORIGIN}/{branch}")
    return None if ref is None else ref.peel(pygit2.Commit)


def _branch_commits(
    repo: pygit2.Repository, head: pygit2.Commit, merge_base: pygit2.Oid
) -> list[pygit2.Commit]:
    """The branch's own commits, oldest first."""
    walker = repo.walk(head.id, SortMode.TOPOLOGICAL | SortMode.REVERSE)
    walker.hide(merge_base)
    return list(walker)


def _made_by(commit: pygit2.Commit, email: str) -> bool:
    return (
        len(commit.parents) == 1
        and commit.author.email == email
        and commit.committer.email == email
    )


def branch_position(
    ws: Workspace, repo_id: int, branch: str, base_branch: str, bot_email: str
) -> Position | None:
    """None when either branch is missing or they share no history."""
    with ws.open_mirror(repo_id) as repo:
        base, head = _remote_commit(repo, base_branch), _remote_commit(repo, branch)
        if base is None or head is None:
            return None
        merge_base = repo.merge_base(base.id, head.id)
        if merge_base is None:
            return None
        foreign = tuple(
            f"{c.short_id} by {c.author.name}"
            for c in _branch_commits(repo, head, merge_base)
            if not _made_by(c, bot_email)
        )
        return Position(str(base.id), str(head.id), str(merge_base), foreign)


def rebase_onto_base(
    ws: Workspace, repo_id: int, branch: str, base_branch: str, committer: pygit2.Signature
) -> Rebased:
    """Replay the branch's commits onto the base tip, in the mirror only (nothing is pushed).

    When one commit conflicts but the branch as a whole merges cleanly, the result is one
    commit with the branch's whole change; when the whole change conflicts, the paths.
    """
    with ws.open_mirror(repo_id) as repo:
        base, head = _remote_commit(repo, base_branch), _remote_commit(repo, branch)
        if base is None or head is None:
            raise WorkspaceError(f"{branch!r} or {base_branch!r} is not in the mirror")
        merge_base = repo.merge_base(base.id, head.id)
        tip = base
        for commit in _branch_commits(repo, head, merge_base):
            index = repo.merge_trees(commit.parents[0].tree, tip.tree, commit.tree)
            if index.conflicts is not None:
                return _squashed(repo, base, head, merge_base, committer)
            tree = index.write_tree(repo)
            if tree == tip.tree.id:
                continue  # the base already has this change
            oid = repo.create_commit(None, commit.author, committer, commit.message, tree, [tip.id])
            tip = repo[oid].peel(pygit2.Commit)
        return Rebased(str(tip.id))


def _squashed(
    repo: pygit2.Repository,
    base: pygit2.Commit,
    head: pygit2.Commit,
    merge_base: pygit2.Oid,
    committer: pygit2.Signature,
) -> Rebased:
    index = repo.merge_trees(repo[merge_base].peel(pygit2.Commit).tree, base.tree, head.tree)
    if index.conflicts is not None:
        return Rebased(None, conflicted_paths(index))
    message = f"Rebase onto {str(base.id)[:8]}\n\nThe branch's change, replayed as one commit."
    tree = index.write_tree(repo)
    oid = repo.create_commit(None, committer, committer, message, tree, [base.id])
    return Rebased(str(oid))


def conflicted_paths(index: pygit2.Index) -> tuple[str, ...]:
    paths = set()
    for ancestor, ours, theirs in index.conflicts or ():
        entry = ours or theirs or ancestor
        if entry is not None:
            paths.add(str(entry.path))
    return tuple(sorted(paths))


def conflict_worktree(
    ws: Workspace, repo_id: int, task_id: str, branch: str, base_branch: str
) -> tuple[Worktree, tuple[str, ...]]:
    """A worktree at the base tip holding the branch's change merged in, markers and all."""
    worktree = ws.prepare_worktree(repo_id, task_id, branch, base_branch)
    repo = pygit2.Repository(str(worktree.path))
    head = repo.references.get(f"refs/remotes/{ORIGIN}/{branch}")
    if head is None:
        raise WorkspaceError(f"{branch!r} is not in the mirror")
    repo.merge(head.peel(pygit2.Commit).id)
    paths = conflicted_paths(repo.index)
    # The result is committed as one ordinary commit on the base, never as a merge.
    repo.state_cleanup()
    return worktree, paths


def files_with_markers(root: Path, paths: tuple[str, ...]) -> tuple[str, ...]:
    """The paths among `paths` that still hold conflict markers."""
    found = []
    for path in paths:
        file = root / path
        if file.is_file() and _MARKER.search(file.read_text(errors="replace")):
            found.append(path)
    return tuple(found)


class _LeaseCallbacks(TokenCallbacks):
    def __init__(
        self, token: str, clone_url: str, git_host: str | None, ref: str, expected: str
    ) -> None:
        super().__init__(token, clone_url, git_host)
        self._ref, self._expected = ref, expected

    def push_negotiation(self, updates: list[pygit2.remotes.PushUpdate]) -> None:
        # The server advertised the ref's current sha; receive-pack then updates it only from
        # that sha, so checking it here makes the push a compare-and-swap.
        for update in updates:
            if update.dst_refname == self._ref and str(update.src) != self._expected:
                raise LeaseLost(
                    f"{self._ref} is at {str(update.src)[:8]}, not {self._expected[:8]}"
                )


def push_with_lease(  # noqa: PLR0913 - keyword-only, each named at the call
    ws: Workspace,
    repo_id: int,
    *,
    sha: str,
    branch: str,
    expected_sha: str,
    clone_url: str,
    token: str,
) -> bool:
    """Force `branch` on origin to `sha` only if it still points at `expected_sha`.

    False when it had moved (nothing pushed); a refused or failed push raises.
    """
    check_clone_url(clone_url)
    target = f"refs/heads/{branch}"
    source = f"refs/feature-crew/lease/{_REF_NAME.sub('-', branch)}"
    with ws.open_mirror(repo_id) as repo:
        repo.references.create(source, sha, force=True)
        callbacks = _LeaseCallbacks(token, clone_url, ws.git_host, target, expected_sha)
        try:
            repo.remotes.create_anonymous(clone_url).push(
                [f"+{source}:{target}"], callbacks=callbacks
            )
        except LeaseLost as lost:
            log.warning("push of %s to %s not done: %s", sha[:8], branch, lost)
            return False
        except pygit2.GitError as exc:
            raise network_error(exc, "push", clone_url) from exc
        finally:
            repo.references.delete(source)
    if callbacks.rejected:
        detail = "; ".join(f"{r}: {m}" for r, m in callbacks.rejected.items())
        raise WorkspaceError(f"push rejected: {detail}", public=f"push rejected: {detail}")
    return True


def prune_task_branches(ws: Workspace, repo_id: int, keep: set[str]) -> list[str]:
    """Delete the mirror's local task branches not in `keep` and not checked out."""
    with ws.open_mirror(repo_id) as repo:
        checked_out = set()
        for name in repo.list_worktrees():
            head = Path(repo.path) / "worktrees" / name / "HEAD"
            if head.exists():
                checked_out.add(head.read_text().strip().removeprefix("ref: refs/heads/"))
        dropped = [
            name
            for name in repo.branches.local
            if name.startswith(TASK_BRANCHES) and name not in keep | checked_out
        ]
        for name in dropped:
            repo.branches.local.delete(name)
        return dropped


def repack_mirror(ws: Workspace, repo_id: int) -> bool:
    """`git gc --auto` (libgit2 cannot gc): packs loose objects once there are enough."""
    git = shutil.which("git")
    if git is None:
        log.warning("git not installed: mirror %s is not repacked", repo_id)
        return False
    with ws.open_mirror(repo_id) as repo:
        # No user or system git config: an operator's hooks or aliases have no say here.
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_DIR": str(repo.path),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "HOME": str(ws.home),
        }
        done = subprocess.run(
            [git, "gc", "--auto", "--quiet"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    if done.returncode != 0:
        log.warning("git gc on mirror %s failed: %s", repo_id, done.stderr.strip()[-300:])
    return done.returncode == 0


def mirror_ids(ws: Workspace) -> list[int]:
    if not ws.mirrors.is_dir():
        return []
    names = (p.name.removesuffix(".git") for p in ws.mirrors.glob("*.git"))
    return sorted(int(n) for n in names if n.isdigit())


def remove_mirror(ws: Workspace, repo_id: int) -> bool:
    """Delete a repository's mirror and the worktrees registered in it; False if none."""
    path = ws.mirror_path(repo_id)
    if not (path / "HEAD").exists():
        return False
    with ws.open_mirror(repo_id) as repo:
        for name in repo.list_worktrees():
            shutil.rmtree(repo.lookup_worktree(name).path, ignore_errors=True)
        shutil.rmtree(path, ignore_errors=True)
    (ws.mirrors / f"{repo_id}.lock").unlink(missing_ok=True)
    return True


def drop_worktrees_except(ws: Workspace, repo_id: int, keep: set[str]) -> list[str]:
    """Unregister and delete the mirror's worktrees whose names are not in `keep`."""
    with ws.open_mirror(repo_id) as repo:
        dropped = [name for name in repo.list_worktrees() if name not in keep]
        for name in dropped:
            shutil.rmtree(repo.lookup_worktree(name).path, ignore_errors=True)
            repo.lookup_worktree(name).prune(True)
        return dropped
