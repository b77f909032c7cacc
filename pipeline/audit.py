"""The self-audit of a worktree: each tool in a scrubbed subprocess, gathered in a report."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bot.config import SelfAuditConfig
from pipeline import sandbox
from pipeline.errors import PermanentError, SandboxUnavailable
from pipeline.models import AuditReport, AuditVerdict, ToolResult, ToolStatus

log = logging.getLogger(__name__)

OUTPUT_TAIL = 4000
FEEDBACK_TAIL = 2500
PYTEST_NO_TESTS = 5


@dataclass(frozen=True)
class AuditContext:
    root: Path
    changed_files: tuple[str, ...]
    config: SelfAuditConfig
    python: str = sys.executable
    cache_dir: Path | None = None
    isolate: bool = True  # confined (pipeline.sandbox): forgetting it must not mean unconfined

    @property
    def python_files(self) -> tuple[str, ...]:
        """Changed .py files still present inside the root; deleted ones have nothing to check."""
        root = self.root.resolve()
        kept = []
        for name in self.changed_files:
            path = (root / name).resolve()
            if name.endswith(".py") and path.is_file() and path.is_relative_to(root):
                # A leading dash would be read as an option by every tool.
                kept.append(f"./{name}" if name.startswith("-") else name)
        return tuple(kept)


AuditTool = Callable[[AuditContext], ToolResult]


@dataclass(frozen=True)
class _Run:
    exit_code: int | None  # None: killed at the timeout
    output: str
    duration_s: float


def _scrubbed_env(home: Path) -> dict[str, str]:
    # Generated code runs here: it must not see the worker's tokens, keys or URLs.
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        # py_compile writes bytecode whatever PYTHONDONTWRITEBYTECODE says; keep it off the tree.
        "PYTHONPYCACHEPREFIX": str(home / "pycache"),
        # Temporary files die with the scratch directory; and pytest's /tmp/pytest-of-root,
        # if the real root ever made one, would refuse the sandbox's (mapped) root.
        "TMPDIR": str(home / "tmp"),
    }
    for key in ("LANG", "LC_ALL"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def _tail(raw: bytes, limit: int = OUTPUT_TAIL) -> str:
    text = raw.decode("utf-8", errors="replace")
    return text if len(text) <= limit else "…" + text[-limit:]


_said: set[str] = set()


def _log_once(level: int, message: str) -> None:
    if message not in _said:
        _said.add(message)
        log.log(level, message)


def use_sandbox(mode: str, supported: bool | None = None) -> bool:
    """Whether to confine the tools: always, unless the operator explicitly said "off"."""
    if mode == "off":
        _log_once(logging.WARNING, "self-audit sandbox off by config: resource limits only")
        return False
    reason = sandbox.unavailable_reason() if supported is None else None
    if supported is False:
        reason = "forced unavailable by the caller"
    if reason is not None:
        raise SandboxUnavailable(f"audit sandbox unavailable: {reason}")
    _log_once(logging.INFO, "self-audit sandbox on: confined, no network, resource limits")
    return True


def _confinement(ctx: AuditContext, home: Path) -> sandbox.Confinement | None:
    if not ctx.isolate:
        return None
    writable: tuple[Path, ...] = ()
    if ctx.cache_dir is not None:
        ctx.cache_dir.mkdir(parents=True, exist_ok=True)  # the baseline may run first
        writable = (ctx.cache_dir,)
    # The interpreter's own folder, in case it lies outside the installations always shown.
    python = Path(ctx.python)
    readable = (python.parent,) if python.is_absolute() and python.exists() else ()
    return sandbox.Confinement(tree=ctx.root, scratch=home, writable=writable, readable=readable)


def _spawn(
    ctx: AuditContext, argv: Sequence[str], home: Path, out: IO[bytes]
) -> subprocess.Popen[bytes]:
    confinement = _confinement(ctx, home)
    return sandbox.spawn(
        list(argv),
        limits=sandbox.Limits.for_timeout(ctx.config.timeout_s),
        confinement=confinement,
        cwd=ctx.root if confinement is None else sandbox.WORKDIR,
        env=_scrubbed_env(home),
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def _execute(ctx: AuditContext, name: str, argv: Sequence[str]) -> _Run:
    """Run tool `name` (argv) confined, in its own process group, scrubbed and timed out."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fc-audit-") as scratch:
        home = Path(scratch)
        (home / "tmp").mkdir()
        # A file, not a pipe: a grandchild that escapes the group cannot keep us reading forever.
        with (home / "output").open("w+b") as out:
            try:
                proc = _spawn(ctx, argv, home, out)
            except sandbox.SandboxSetupError as err:
                # The probe passed, yet this launch failed (namespaces exhausted, say): refuse,
                # never run unconfined.
                raise SandboxUnavailable(f"audit sandbox failed for {name}: {err}") from err
            except OSError as err:
                # The detail names the interpreter's path: logs only, never GitHub.
                raise PermanentError(
                    f"cannot start audit tool {name} ({argv[0]}): {err}",
                    public=f"the self-audit could not start {name}",
                ) from err
            try:
                code: int | None = proc.wait(timeout=ctx.config.timeout_s)
            except subprocess.TimeoutExpired:
                code = None
            finally:
                # Whatever ends the wait: a normal exit (confined, its PID namespace is gone
                # already), the timeout, or an exception raised into it, such as RQ's
                # JobTimeoutException or KeyboardInterrupt, which then propagates.
                sandbox.stop(proc)
            out.seek(max(0, out.seek(0, os.SEEK_END) - OUTPUT_TAIL * 4))
            output = _tail(out.read())
    return _Run(code, output, round(time.monotonic() - started, 3))


def _missing_module(module: str, run: _Run) -> bool:
    # `python -m x` without x prints "<python>: No module named x" (no quotes) and exits 1.
    pattern = rf"No module named {re.escape(module)}\s*$"
    return run.exit_code == 1 and re.search(pattern, run.output, re.MULTILINE) is not None


def _result(
    name: str, module: str, run: _Run, *, skip_codes: Iterable[int] = (), timeout_s: float
) -> ToolResult:
    if run.exit_code is None:
        status = ToolStatus.TIMED_OUT
        output = f"{run.output}\n[killed after {timeout_s:g} s]".lstrip()
    else:
        output = run.output
        if _missing_module(module, run):
            status = ToolStatus.UNAVAILABLE
        elif run.exit_code in skip_codes:
            status = ToolStatus.SKIPPED
        else:
            status = ToolStatus.PASSED if run.exit_code == 0 else ToolStatus.FAILED
    return ToolResult(
        name=name, status=status, exit_code=run.exit_code, duration_s=run.duration_s, output=output
    )


def _skipped(name: str, why: str) -> ToolResult:
    return ToolResult(name=name, status=ToolStatus.SKIPPED, output=why)


def _run_module(
    ctx: AuditContext, name: str, module: str, args: Sequence[str], skip_codes: Iterable[int] = ()
) -> ToolResult:
    run = _execute(ctx, name, [ctx.python, "-m", module, *args])
    return _result(name, module, run, skip_codes=skip_codes, timeout_s=ctx.config.timeout_s)


def check_compile(ctx: AuditContext) -> ToolResult:
    files = ctx.python_files
    if not files:
        return _skipped("compile", "no changed Python files")
    return _run_module(ctx, "compile", "py_compile", files)


def check_ruff(ctx: AuditContext) -> ToolResult:
    files = ctx.python_files
    if not files:
        return _skipped("ruff", "no changed Python files")
    args = list(ctx.config.ruff_args)
    if not args or args[0].startswith("-"):
        args.insert(0, "check")
    cache = ["--cache-dir", str(ctx.cache_dir / "ruff")] if ctx.cache_dir else ["--no-cache"]
    return _run_module(ctx, "ruff", "ruff", [*args, *cache, *files])


def check_mypy(ctx: AuditContext) -> ToolResult:
    files = ctx.python_files
    if not files:
        return _skipped("mypy", "no changed Python files")
    # Without a shared cache, /dev/null keeps mypy from writing .mypy_cache into the worktree.
    cache = str(ctx.cache_dir / "mypy") if ctx.cache_dir else os.devnull
    return _run_module(ctx, "mypy", "mypy", [*ctx.config.mypy_args, "--cache-dir", cache, *files])


def check_pytest(ctx: AuditContext) -> ToolResult:
    args = [*ctx.config.pytest_args, "-p", "no:cacheprovider"]
    return _run_module(ctx, "pytest", "pytest", args, skip_codes=(PYTEST_NO_TESTS,))


def check_bandit(ctx: AuditContext) -> ToolResult:
    files = ctx.python_files
    if not files:
        return _skipped("bandit", "no changed Python files")
    return _run_module(ctx, "bandit", "bandit", ["-q", *files])


AUDIT_TOOLS: dict[str, AuditTool] = {
    "compile": check_compile,
    "ruff": check_ruff,
    "mypy": check_mypy,
    "pytest": check_pytest,
    "bandit": check_bandit,
}


def validate_tool_names(names: Iterable[str]) -> tuple[str, ...]:
    """The names, unchanged, or a ValueError naming the first one no tool answers to."""
    names = tuple(names)
    for name in names:
        if name not in AUDIT_TOOLS:
            known = ", ".join(AUDIT_TOOLS)
            raise ValueError(f"unknown audit tool {name!r} (known: {known})")
    return names


def run_audit(
    root: Path,
    changed_files: Sequence[str],
    config: SelfAuditConfig,
    *,
    python: str = sys.executable,
    cache_dir: Path | None = None,
    sandbox_supported: bool | None = None,
) -> AuditReport:
    """Run config.tools in order on the worktree at root; blocking failures mean needs_retry.

    sandbox_supported: None probes the machine (once per process); False acts as if it could
    not create namespaces, as in a container whose seccomp profile refuses unshare.
    """
    names = validate_tool_names(config.tools)
    isolate = use_sandbox(config.sandbox, sandbox_supported)
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
    ctx = AuditContext(root, tuple(changed_files), config, python, cache_dir, isolate)
    started = time.monotonic()
    results = tuple(AUDIT_TOOLS[name](ctx) for name in names)
    blocked = any(r.blocking for r in results)
    return AuditReport(
        verdict=AuditVerdict.NEEDS_RETRY if blocked else AuditVerdict.READY_FOR_REVIEW,
        tools=results,
        files_checked=tuple(f.removeprefix("./") for f in ctx.python_files),
        duration_s=round(time.monotonic() - started, 3),
    )


def _fenced(text: str) -> str:
    # A fence longer than any backtick run in the output, so tool output cannot close it.
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def audit_feedback(report: AuditReport) -> str:
    """The failures as compact Markdown for the model's next attempt; empty when none."""
    failures = report.failures
    if not failures:
        return ""
    parts = ["The self-audit of your change failed. Fix these problems and keep the rest:"]
    for tool in failures:
        how = "timed out" if tool.status is ToolStatus.TIMED_OUT else f"exit {tool.exit_code}"
        output = tool.output.strip() or "(no output)"
        if len(output) > FEEDBACK_TAIL:
            output = "…" + output[-FEEDBACK_TAIL:]
        parts.append(f"### {tool.name}: {tool.status.value} ({how})\n{_fenced(output)}")
    return "\n\n".join(parts)
