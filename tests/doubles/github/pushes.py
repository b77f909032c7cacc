"""The `push` webhook GitHub sends when a branch moves: by git, by a merge, by a test's commit."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING, Any

from tests.doubles.github.webhooks import payload

if TYPE_CHECKING:
    from tests.doubles.github.double import GitHubDouble
    from tests.doubles.github.state import Delivery

ZERO = "0" * 40
_FORMAT = "%H%x1f%T%x1f%an%x1f%ae%x1f%cn%x1f%ce%x1f%cI%x1f%s%x1e"


def list_refs(git_dir: str) -> dict[str, str]:
    """refs/heads/* → sha, as they are now."""
    done = subprocess.run(
        ["git", "--git-dir", git_dir, "for-each-ref", "--format=%(objectname) %(refname)",
         "refs/heads/"],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    pairs = (line.split(" ", 1) for line in done.stdout.splitlines() if line)
    return {ref: sha for sha, ref in pairs}


def ref_updates(before: dict[str, str], after: dict[str, str]) -> list[tuple[str, str, str]]:
    """(ref, old sha, new sha) for every branch created, moved or deleted."""
    refs = sorted(set(before) | set(after))
    return [
        (ref, before.get(ref, ZERO), after.get(ref, ZERO))
        for ref in refs
        if before.get(ref) != after.get(ref)
    ]


def _commits(git_dir: str, before: str, after: str) -> list[dict[str, Any]]:
    if after == ZERO:
        return []
    span = after if before == ZERO else f"{before}..{after}"
    done = subprocess.run(
        ["git", "--git-dir", git_dir, "log", "--reverse", "--max-count=20",
         f"--format={_FORMAT}", span],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    commits = []
    for entry in done.stdout.split("\x1e"):
        fields = entry.strip("\n").split("\x1f")
        if len(fields) != 8:
            continue
        sha, tree, an, ae, cn, ce, at, subject = fields
        commits.append(
            {
                "id": sha,
                "tree_id": tree,
                "distinct": True,
                "message": subject,
                "timestamp": at,
                "author": {"name": an, "email": ae},
                "committer": {"name": cn, "email": ce},
                "added": [],
                "removed": [],
                "modified": [],
            }
        )
    return commits


def _is_ancestor(git_dir: str, older: str, newer: str) -> bool:
    done = subprocess.run(
        ["git", "--git-dir", git_dir, "merge-base", "--is-ancestor", older, newer],
        capture_output=True, check=False, timeout=30,
    )  # fmt: skip
    return done.returncode == 0


def send_push(
    gh: GitHubDouble, repo_name: str, sender: str, ref: str, before: str, after: str
) -> Delivery:
    """One `push` delivery shaped like GitHub's (no `action`); call with the state lock held."""
    record = gh.state.repos[repo_name]
    commits = _commits(record.git_dir, before, after)
    forced = before != ZERO and after != ZERO and not _is_ancestor(record.git_dir, before, after)
    user = gh.state.user(sender)
    data = payload(gh.shapes, None, repo_name, sender, record.installation_id)
    data = {
        "ref": ref,
        "before": before,
        "after": after,
        "created": before == ZERO,
        "deleted": after == ZERO,
        "forced": forced,
        "base_ref": None,
        "compare": f"{gh.url}/{repo_name}/compare/{before[:12]}...{after[:12]}",
        "commits": commits,
        "head_commit": commits[-1] if commits else None,
        "pusher": {"name": user.login, "email": f"{user.id}+{user.login}@users.noreply.github.com"},
        **data,
    }
    return gh.hookshot.emit("push", data)
