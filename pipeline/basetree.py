"""The base commit's own files, read from git: never the worktree, which a model may have edited."""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pygit2
from pygit2.enums import CheckoutStrategy, ObjectType

# What the target's environment is built from (root level): its declarations and our config.
ENV_FILE = re.compile(r"^(pyproject\.toml|setup\.py|setup\.cfg|requirements[\w.-]*\.txt)$")
REPO_CONFIG = ".github/feature-crew.toml"
STALE_S = 24 * 3600  # no task lasts this long: an export this old was left by a killed worker


def _tree(repo: pygit2.Repository, sha: str) -> pygit2.Tree:
    return repo[sha].peel(pygit2.Tree)


def env_files(repo_path: Path, sha: str) -> dict[str, bytes]:
    """The files at the root of commit sha that the environment is built from."""
    repo = pygit2.Repository(str(repo_path))
    found = {}
    for entry in _tree(repo, sha):
        if entry.type == ObjectType.BLOB and ENV_FILE.match(entry.name or ""):
            found[str(entry.name)] = repo[entry.id].peel(pygit2.Blob).data
    return found


def is_env_file(path: str) -> bool:
    return "/" not in path and ENV_FILE.match(path) is not None


def export(repo_path: Path, sha: str, dest: Path) -> Path:
    """All of commit sha's files at dest; the repository's index and worktree stay untouched."""
    repo = pygit2.Repository(str(repo_path))
    dest.mkdir(parents=True, exist_ok=True)
    strategy = CheckoutStrategy.FORCE | CheckoutStrategy.DONT_UPDATE_INDEX
    repo.checkout_tree(  # type: ignore[no-untyped-call]
        _tree(repo, sha), directory=str(dest), strategy=strategy
    )
    return dest


@contextmanager
def exported(repo_path: Path, sha: str, scratch: Path) -> Iterator[Path]:
    """An export of commit sha in a temporary folder under scratch, removed afterwards."""
    scratch.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="base-", dir=scratch))
    try:
        yield export(repo_path, sha, folder / "tree")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def sweep(scratch: Path, older_than_s: float = STALE_S) -> None:
    """Remove exports a killed worker left behind under scratch."""
    if not scratch.is_dir():
        return
    cutoff = time.time() - older_than_s
    for folder in scratch.glob("base-*"):
        if folder.is_dir() and folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)
