"""Read and update the double's bare repositories with the git command line."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_ENV = {
    "GIT_AUTHOR_NAME": "GitHub",
    "GIT_AUTHOR_EMAIL": "noreply@github.com",
    "GIT_COMMITTER_NAME": "GitHub",
    "GIT_COMMITTER_EMAIL": "noreply@github.com",
}


class MergeConflict(Exception):
    """The head does not merge cleanly into the base."""


def _git(git_dir: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **_ENV, "GIT_DIR": git_dir}
    return subprocess.run(
        ["git", *args], env=env, capture_output=True, text=True, check=check, timeout=30
    )


def resolve(git_dir: str, ref: str) -> str | None:
    """The commit sha a branch name or sha points at, or None."""
    for candidate in (f"refs/heads/{ref}", ref):
        done = _git(
            git_dir, "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}", check=False
        )
        if done.returncode == 0:
            return done.stdout.strip()
    return None


def branch_sha(git_dir: str, branch: str) -> str | None:
    done = _git(git_dir, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def is_ancestor(git_dir: str, older: str, newer: str) -> bool:
    return _git(git_dir, "merge-base", "--is-ancestor", older, newer, check=False).returncode == 0


@dataclass
class FileDiff:
    """Lines a review comment may anchor to: new-side and old-side line numbers, positions."""

    right: set[int] = field(default_factory=set)
    left: set[int] = field(default_factory=set)
    positions: int = 0
    additions: int = 0
    deletions: int = 0


def diff(git_dir: str, base: str, head: str) -> dict[str, FileDiff]:
    """Per-file view of `git diff base...head`, as GitHub shows a pull request."""
    text = _git(git_dir, "diff", "--no-color", "--no-renames", f"{base}...{head}").stdout
    files: dict[str, FileDiff] = {}
    current: FileDiff | None = None
    old = new = 0
    old_path = ""
    for line in text.splitlines():
        if line.startswith("diff --git "):
            current = None
        elif line.startswith("--- ") and current is None:
            old_path = line[6:] if line.startswith("--- a/") else ""
        elif line.startswith("+++ ") and current is None:
            path = line[6:] if line.startswith("+++ b/") else old_path
            current = files.setdefault(path, FileDiff())
        elif current is not None and (match := _HUNK.match(line)):
            old, new = int(match.group(1)), int(match.group(3))
            current.positions += 0 if current.positions == 0 else 1
        elif current is not None and line[:1] in ("+", "-", " "):
            current.positions += 1
            if line.startswith("+"):
                current.right.add(new)
                current.additions += 1
                new += 1
            elif line.startswith("-"):
                current.left.add(old)
                current.deletions += 1
                old += 1
            else:
                current.right.add(new)
                current.left.add(old)
                old += 1
                new += 1
    return files


def commit_count(git_dir: str, base: str, head: str) -> int:
    done = _git(git_dir, "rev-list", "--count", f"{base}..{head}", check=False)
    return int(done.stdout.strip() or 0) if done.returncode == 0 else 0


def merge(git_dir: str, base_ref: str, head_sha: str, method: str, message: str) -> str:
    """Merge head into base_ref for real and move the branch; return the new base sha.

    squash and rebase both write one commit on top of the base whose tree is the merge
    result (rebase is simplified to that); merge writes a two-parent merge commit.
    """
    base_sha = branch_sha(git_dir, base_ref)
    if base_sha is None:
        raise MergeConflict(f"base branch {base_ref} is gone")
    if is_ancestor(git_dir, base_sha, head_sha):
        tree = _git(git_dir, "rev-parse", f"{head_sha}^{{tree}}").stdout.strip()
    else:
        done = _git(git_dir, "merge-tree", "--write-tree", base_sha, head_sha, check=False)
        if done.returncode != 0:
            raise MergeConflict("Merge conflict")
        tree = done.stdout.splitlines()[0].strip()
    parents = ["-p", base_sha] + (["-p", head_sha] if method == "merge" else [])
    sha = _git(git_dir, "commit-tree", tree, *parents, "-m", message).stdout.strip()
    _git(git_dir, "update-ref", f"refs/heads/{base_ref}", sha, base_sha)
    return sha
