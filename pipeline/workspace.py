"""Git for a worker: one bare mirror per repository, one worktree per task, with pygit2."""

from __future__ import annotations

import fcntl
import re
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pygit2
from pygit2.enums import ConfigLevel, DeltaStatus, DiffOption, FetchPrune

from pipeline.errors import WorkspaceError
from pipeline.gitauth import TokenCallbacks, check_clone_url, check_remote_url, network_error
from pipeline.models import DiffSummary
from pipeline.paths import is_protected

ORIGIN = "origin"
FETCH_SPEC = "+refs/heads/*:refs/remotes/origin/*"
_WORKTREE_NAME = re.compile(r"[^A-Za-z0-9_-]")
_WORKDIR_FLAGS = DiffOption.INCLUDE_UNTRACKED | DiffOption.RECURSE_UNTRACKED_DIRS


def ignore_user_git_config(empty: Path) -> None:
    """Point libgit2's global, XDG and system config at an empty folder, for this process.

    Those files (`$HOME/.gitconfig` above all) are writable by whatever runs as the worker's
    user, and their `insteadOf`, `http.proxy` or `include.path` would steer our fetches and
    pushes. Called once by the worker at start; forked job horses inherit it.
    """
    shutil.rmtree(empty, ignore_errors=True)  # nothing may have been planted there
    empty.mkdir(parents=True, exist_ok=True)  # two workers sharing one home may race here
    for level in (ConfigLevel.GLOBAL, ConfigLevel.XDG, ConfigLevel.SYSTEM, ConfigLevel.PROGRAMDATA):
        pygit2.settings.search_path[level] = str(empty)


class Workspace:
    """Mirrors under home/mirrors/<repo_id>.git, worktrees under home/worktrees/<task_id>."""

    def __init__(self, home: Path, git_host: str | None = None) -> None:
        self.home = home
        self.git_host = git_host  # the API's git host: no token goes to a URL off it
        self.mirrors = home / "mirrors"
        self.worktrees = home / "worktrees"

    def mirror_path(self, repo_id: int) -> Path:
        return self.mirrors / f"{repo_id}.git"

    def worktree_path(self, task_id: str) -> Path:
        return self.worktrees / _worktree_name(task_id)

    def sync_mirror(self, repo_id: int, clone_url: str, token: str) -> None:
        """Create the mirror if missing and fetch every branch into refs/remotes/origin/."""
        check_clone_url(clone_url)
        with self._locked(repo_id):
            repo = self._open_or_init(repo_id)
            names = list(repo.remotes.names())
            if ORIGIN not in names:
                repo.remotes.create(ORIGIN, clone_url, fetch=FETCH_SPEC)
            elif repo.remotes[ORIGIN].url != clone_url:
                repo.remotes.set_url(ORIGIN, clone_url)
            check_remote_url(repo.remotes[ORIGIN], clone_url)
            callbacks = TokenCallbacks(token, clone_url, self.git_host)
            try:
                repo.remotes[ORIGIN].fetch(callbacks=callbacks, prune=FetchPrune.PRUNE)
            except pygit2.GitError as exc:
                raise network_error(exc, "fetch", clone_url) from exc

    def read_base_file(self, repo_id: int, base_branch: str, path: str) -> str | None:
        """A file as it is on origin's base branch (never the model's edited copy)."""
        with self._locked(repo_id):
            repo = self._open(repo_id)
            ref = repo.references.get(f"refs/remotes/{ORIGIN}/{base_branch}")
            if ref is None:
                return None
            tree = ref.peel(pygit2.Commit).tree
            try:
                blob = repo[tree[path].id]
            except KeyError:
                return None
            if not isinstance(blob, pygit2.Blob) or blob.size > 64 * 1024:
                return None
            return blob.data.decode("utf-8", errors="replace")

    def prepare_worktree(
        self,
        repo_id: int,
        task_id: str,
        branch: str,
        base_branch: str,
        *,
        continue_branch: bool = False,
    ) -> Worktree:
        """A fresh worktree on `branch`; any old one goes.

        The branch starts at origin's `base_branch`, or, with `continue_branch`, at origin's
        copy of `branch` itself (a new attempt on an open pull request); the diff base is then
        where the branch left the base branch.
        """
        name, path = _worktree_name(task_id), self.worktree_path(task_id)
        with self._locked(repo_id):
            repo = self._open(repo_id)
            _drop_worktree(repo, name, path)
            base = repo.references.get(f"refs/remotes/{ORIGIN}/{base_branch}")
            if base is None:
                raise WorkspaceError(f"base branch {base_branch!r} is not in the mirror")
            commit = base_commit = base.peel(pygit2.Commit)
            pushed = repo.references.get(f"refs/remotes/{ORIGIN}/{branch}")
            if continue_branch and pushed is not None:
                commit = pushed.peel(pygit2.Commit)
                base_commit = repo[repo.merge_base(base_commit.id, commit.id)].peel(pygit2.Commit)
            if not pygit2.reference_is_valid_name(f"refs/heads/{branch}"):
                raise WorkspaceError(f"invalid branch name {branch!r}")
            _release_branch(repo, branch)
            local = repo.branches.local.create(branch, commit, force=True)
            path.parent.mkdir(parents=True, exist_ok=True)
            repo.add_worktree(name, str(path), local)
        return Worktree(path, branch, str(base_commit.id), git_host=self.git_host)

    def remove_worktree(self, repo_id: int, task_id: str) -> None:
        """Delete the task's worktree and its registration; nothing happens if it is gone."""
        name, path = _worktree_name(task_id), self.worktree_path(task_id)
        if not self.mirror_path(repo_id).exists():
            shutil.rmtree(path, ignore_errors=True)
            return
        with self._locked(repo_id):
            _drop_worktree(self._open(repo_id), name, path)

    @contextmanager
    def open_mirror(self, repo_id: int) -> Iterator[pygit2.Repository]:
        """The repository's mirror, locked against other tasks on this machine while in use."""
        with self._locked(repo_id):
            yield self._open(repo_id)

    @contextmanager
    def _locked(self, repo_id: int) -> Iterator[None]:
        # Two tasks on one machine must not fetch into or register worktrees in one mirror at once.
        self.mirrors.mkdir(parents=True, exist_ok=True)
        with (self.mirrors / f"{repo_id}.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _open_or_init(self, repo_id: int) -> pygit2.Repository:
        path = self.mirror_path(repo_id)
        if (path / "HEAD").exists():
            return pygit2.Repository(str(path))
        return pygit2.init_repository(str(path), bare=True)

    def _open(self, repo_id: int) -> pygit2.Repository:
        path = self.mirror_path(repo_id)
        if not (path / "HEAD").exists():
            raise WorkspaceError(f"no mirror for repository {repo_id}: sync it first")
        return pygit2.Repository(str(path))


class Worktree:
    """One task's checkout: edit files under `path`, then commit, diff and push."""

    def __init__(
        self, path: Path, branch: str, base_sha: str, *, git_host: str | None = None
    ) -> None:
        self.path = path
        self.branch = branch
        self.base_sha = base_sha
        self.git_host = git_host

    def _repo(self) -> pygit2.Repository:
        return pygit2.Repository(str(self.path))

    def changed_files(self) -> list[str]:
        """Paths that differ from the base commit: edited, added (untracked too) or deleted."""
        repo = self._repo()
        base = repo.get(self.base_sha)
        assert isinstance(base, pygit2.Commit)
        diff = base.tree.diff_to_workdir(_WORKDIR_FLAGS)
        return sorted({_delta_path(delta) for delta in diff.deltas})

    def commit_all(
        self,
        message: str,
        author_name: str,
        author_email: str,
        protected_paths: Sequence[str] = (),
        paths: Sequence[str] | None = None,
    ) -> str | None:
        """Stage every change, or only `paths`, and commit; None when there is nothing to commit.

        Passing the editor's own paths keeps whatever the audit's tools wrote out of the commit.
        """
        repo = self._repo()
        index = repo.index
        if paths is None:
            index.add_all()
        else:
            _stage_exactly(index, self.path, paths)
        head = repo.head.peel(pygit2.Commit)
        staged = sorted({_delta_path(d) for d in index.diff_to_tree(head.tree).deltas})
        if not staged:
            return None
        blocked = [p for p in staged if is_protected(p, protected_paths)]
        if blocked:
            index.read_tree(head.tree)
            index.write()
            raise WorkspaceError(f"refusing to commit protected paths: {', '.join(blocked)}")
        index.write()
        tree = index.write_tree()
        author = pygit2.Signature(author_name, author_email)
        oid = repo.create_commit("HEAD", author, author, message, tree, [head.id])
        return str(oid)

    def diff(self) -> DiffSummary:
        """What the branch changes: base_sha..HEAD as a patch with file and line counts."""
        repo = self._repo()
        head = repo.head.peel(pygit2.Commit)
        diff = repo.diff(self.base_sha, str(head.id))
        diff.find_similar()
        files = tuple(_delta_path(delta) for delta in diff.deltas)
        stats = diff.stats
        return DiffSummary(
            base_sha=self.base_sha,
            head_sha=str(head.id),
            patch=diff.patch or "",
            files=files,
            added=stats.insertions,
            removed=stats.deletions,
        )

    def push(self, clone_url: str, token: str) -> None:
        """Force-push the branch; a ref the server refuses raises WorkspaceError with its words."""
        check_clone_url(clone_url)
        ref = f"refs/heads/{self.branch}"
        if clone_url.startswith("file://"):
            return self._push_into_local(Path(unquote(urlsplit(clone_url).path)), ref)
        # An anonymous remote lives in memory only, so nothing about the push lands in config.
        remote = self._repo().remotes.create_anonymous(clone_url)
        check_remote_url(remote, clone_url)
        callbacks = TokenCallbacks(token, clone_url, self.git_host)
        try:
            remote.push([f"+{ref}:{ref}"], callbacks=callbacks)
        except pygit2.GitError as exc:
            raise network_error(exc, "push", clone_url) from exc
        if callbacks.rejected:
            reasons = "; ".join(f"{r}: {m}" for r, m in callbacks.rejected.items())
            said = callbacks.remote_messages()
            detail = f"{reasons}\n{said}" if said else reasons
            raise WorkspaceError(f"push rejected: {detail}", public=f"push rejected: {detail}")

    def _push_into_local(self, target_path: Path, ref: str) -> None:
        """Into a repository on this machine: libgit2 cannot push to a non-bare one, so the
        target fetches the branch instead; its checked-out branch and working tree stay as
        they are."""
        try:
            target = pygit2.Repository(str(target_path))
        except pygit2.GitError as exc:
            raise WorkspaceError(f"{target_path} is not a git repository any more") from exc
        if not target.head_is_unborn and not target.head_is_detached and target.head.name == ref:
            raise WorkspaceError(f"{self.branch} is checked out in {target_path}: not replaced")
        remote = target.remotes.create_anonymous(str(self.path))
        try:
            remote.fetch([f"+{ref}:{ref}"])
        except pygit2.GitError as exc:
            raise WorkspaceError(f"could not update {self.branch} in {target_path}: {exc}") from exc


def _stage_exactly(index: pygit2.Index, root: Path, paths: Sequence[str]) -> None:
    # One path at a time: add_all() would treat names as glob patterns.
    for path in paths:
        if (root / path).is_file():
            index.add(path)
        elif path in index:
            index.remove(path)


def _worktree_name(task_id: str) -> str:
    name = _WORKTREE_NAME.sub("-", task_id).strip("-")[:80]
    if not name:
        raise WorkspaceError(f"cannot name a worktree after task id {task_id!r}")
    return name


def _drop_worktree(repo: pygit2.Repository, name: str, path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    if name in repo.list_worktrees():
        repo.lookup_worktree(name).prune(True)


def _release_branch(repo: pygit2.Repository, branch: str) -> None:
    # A task that failed before cleanup leaves its worktree holding the branch, and
    # libgit2 will not move a checked-out branch: the new task for that issue takes it over.
    wanted = f"ref: refs/heads/{branch}"
    for name in repo.list_worktrees():
        head = Path(repo.path) / "worktrees" / name / "HEAD"
        if head.exists() and head.read_text().strip() == wanted:
            _drop_worktree(repo, name, Path(repo.lookup_worktree(name).path))


def _delta_path(delta: pygit2.DiffDelta) -> str:
    if delta.status == DeltaStatus.DELETED:
        return str(delta.old_file.path)
    return str(delta.new_file.path)
