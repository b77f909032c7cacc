"""The self-audit of a worktree: its tools side by side (pipeline/runner.py), one report."""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.audit_tools import AUDIT_TOOLS, validate_tool_names
from pipeline.config import SelfAuditConfig
from pipeline.judge import BaseFindings, capped
from pipeline.models import AuditReport, AuditVerdict, ToolResult
from pipeline.runner import AuditContext, audit_context

if TYPE_CHECKING:
    from pipeline.target_env import TargetEnv


def run_tools(ctx: AuditContext, names: Sequence[str]) -> tuple[ToolResult, ...]:
    """The tools side by side, results in config order; an interrupt ends every one of them."""
    if len(names) <= 1:
        return tuple(AUDIT_TOOLS[name](ctx) for name in names)
    pool = ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="audit")
    try:
        futures = [pool.submit(AUDIT_TOOLS[name], ctx) for name in names]
        return tuple(f.result() for f in futures)
    except BaseException:
        ctx.groups.kill_all()  # RQ's timeout, a crash in one tool: the others stop too
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_audit(  # noqa: PLR0913 - keyword-only, each named at the call
    root: Path,
    changed_files: Sequence[str],
    config: SelfAuditConfig,
    *,
    python: str = sys.executable,
    cache_dir: Path | None = None,
    sandbox_supported: bool | None = None,
    target: TargetEnv | None = None,
    base: BaseFindings | None = None,
    notes: Sequence[str] = (),
) -> AuditReport:
    """Run config.tools on the worktree at root; new blocking findings mean needs_retry.

    cache_dir: a warm ruff/mypy cache to start from. The change's code runs in this audit
    (its tests, a mypy plugin it edits), so the tools work on a private copy that dies with
    the audit: nothing of this run reaches another task's audit through a cache.
    sandbox_supported: None probes the machine (once per process); False acts as if it could
    not create namespaces, as in a container whose seccomp profile refuses unshare.
    target: the repository's environment (mypy resolves imports in it, pytest runs in it).
    base: the base commit's findings; without it every finding counts.
    """
    names = validate_tool_names(config.tools)
    with private_copy(cache_dir) as cache:
        ctx = audit_context(
            root,
            changed_files,
            config,
            sandbox_supported=sandbox_supported,
            python=python,
            cache_dir=cache,
            target=target,
            base=base,
        )
        started = time.monotonic()
        results = tuple(capped(r) for r in run_tools(ctx, names))
    blocked = any(r.blocking for r in results)
    return AuditReport(
        verdict=AuditVerdict.NEEDS_RETRY if blocked else AuditVerdict.READY_FOR_REVIEW,
        tools=results,
        files_checked=tuple(f.removeprefix("./") for f in ctx.python_files),
        duration_s=round(time.monotonic() - started, 3),
        notes=tuple(notes),
    )


@contextlib.contextmanager
def private_copy(seed: Path | None) -> Iterator[Path | None]:
    """A temporary copy of the cache folder seed (links copied as links), removed after."""
    if seed is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="fc-audit-cache-") as folder:
        copy = Path(folder) / "cache"
        if seed.is_dir():
            shutil.copytree(seed, copy, symlinks=True)
        else:
            copy.mkdir()
        yield copy
