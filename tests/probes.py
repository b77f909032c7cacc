"""Jobs the process tests enqueue on a real worker: each reports what its job horse saw or did."""

from __future__ import annotations

import ctypes
import logging
import os
from pathlib import Path

from bot.settings import load_settings
from pipeline.gitauth import git_host_for
from pipeline.workspace import Workspace

PR_GET_DUMPABLE = 3
log = logging.getLogger(__name__)


def dumpable() -> list[int]:
    """The horse's pid and its dumpable flag (0: its /proc is closed to our own user)."""
    return [os.getpid(), int(ctypes.CDLL(None).prctl(PR_GET_DUMPABLE, 0, 0, 0, 0))]


def sync_and_push(home: str, clone_url: str, token: str, api_url: str) -> str:
    """What a task does with git: fetch into the mirror, commit in a worktree, push."""
    workspace = Workspace(Path(home), git_host=git_host_for(api_url))
    workspace.sync_mirror(1, clone_url, token)
    worktree = workspace.prepare_worktree(1, "probe", "feature-crew/probe", "main")
    (worktree.path / "probe.txt").write_text("probe\n")
    worktree.commit_all("probe", "Probe", "probe@example.com", paths=["probe.txt"])
    worktree.push(clone_url, token)
    return worktree.diff().head_sha


def crash_with_secrets(token: str) -> None:
    """Crash with every secret in scope, in the message, in a log line and in the job's args."""
    settings = load_settings()
    assert settings.private_key is not None
    private_key = settings.private_key.get_secret_value()
    key_line = private_key.splitlines()[3]
    webhook_secret = settings.webhook_secret
    model_keys = [settings.env.anthropic_api_key, settings.env.openai_api_key]
    header = f"Authorization: Bearer {token}"
    log.info("about to push with %s and %s", header, settings.secrets)
    log.warning("git remote https://x-access-token:%s@127.0.0.1/o/r.git", token)
    raise RuntimeError(
        f"push failed: {header}; key line {key_line}; key {private_key[:300]}; "
        f"secret {webhook_secret!r}; models {[k.get_secret_value() for k in model_keys if k]}"
    )
