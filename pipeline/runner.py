"""One tool run confined, scrubbed and timed out: the context it runs in, and the runner.

The audit, the baseline and the setup phase all start their tools here: in a scratch folder
that dies with the run, with an environment holding nothing of the worker's, confined by
pipeline/sandbox.py unless the operator said "off", in a process group an interrupt can end.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from pipeline import bwrap, sandbox
from pipeline.config import SelfAuditConfig
from pipeline.errors import PermanentError, SandboxUnavailable
from pipeline.judge import BaseFindings, Run

log = logging.getLogger(__name__)

OUTPUT_TAIL = 4000
MAX_COLLECTED = 8 * 1024 * 1024  # bytes of a result file (ruff JSON, JUnit XML) we read back

Argv = Sequence[str] | Callable[[Path], Sequence[str]]  # a callable gets the scratch folder

# The tools that keep a cache: only they see the cache folder. pytest, which runs the
# project's (and the change's) code, never does: what it could write there, a later
# task's audit would read.
CACHE_TOOLS = frozenset({"ruff", "mypy"})


class ProcessGroups:
    """The tools an audit has running, so an interrupt can end them all at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[bytes]] = set()

    def add(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._running.add(proc)

    def discard(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._running.discard(proc)

    def kill_all(self) -> None:
        """SIGKILL, without waiting: each tool's own thread waits for it (sandbox.stop)."""
        with self._lock:
            for proc in self._running:
                if proc.returncode is not None:
                    continue  # reaped: its pid may be someone else's now
                init = getattr(proc, "init", None)  # a confinement's PID 1 takes all with it
                with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
                    if init is not None:
                        signal.pidfd_send_signal(init, signal.SIGKILL)
                    os.killpg(proc.pid, signal.SIGKILL)


class ProjectEnv(Protocol):
    """The repository's own virtualenv, as a run sees it (pipeline/target_env.py builds one)."""

    @property
    def root(self) -> Path: ...

    @property
    def python(self) -> Path: ...

    @property
    def built_from(self) -> str: ...


@dataclass(frozen=True)
class AuditContext:
    root: Path
    changed_files: tuple[str, ...]
    config: SelfAuditConfig
    python: str = sys.executable
    cache_dir: Path | None = None
    isolate: bool = True  # confined (pipeline.sandbox): forgetting it must not mean unconfined
    target: ProjectEnv | None = None  # the repository's own environment, read-only
    base: BaseFindings | None = None  # the base commit's findings, for "new only"
    network: bool = False  # the setup phase only (package indexes); never the audit
    writable: tuple[Path, ...] = ()  # host folders the run may write besides the tree and scratch
    readable: tuple[Path, ...] = ()  # host paths it may read, at their own paths
    extra_env: tuple[tuple[str, str], ...] = ()
    timeout_s: float | None = None  # default: config.timeout_s
    groups: ProcessGroups = field(default_factory=ProcessGroups, compare=False)

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

    @property
    def workdir(self) -> str:
        """Where the tree is as the tools see it: their cwd, and what their paths start with."""
        return str(sandbox.WORKDIR) if self.isolate else str(self.root)

    @property
    def limit_s(self) -> float:
        return self.config.timeout_s if self.timeout_s is None else self.timeout_s


def audit_context(
    root: Path,
    changed_files: Sequence[str],
    config: SelfAuditConfig,
    *,
    sandbox_supported: bool | None = None,
    **fields: object,
) -> AuditContext:
    """A context confined as config.sandbox says: how the audit, baseline and setup get one."""
    isolate = use_sandbox(config.sandbox, sandbox_supported)
    return AuditContext(root, tuple(changed_files), config, isolate=isolate, **fields)  # type: ignore[arg-type]


def _scrubbed_env(home: Path, ctx: AuditContext) -> dict[str, str]:
    # Generated code runs here: it must not see the worker's tokens, keys or URLs.
    path = os.environ.get("PATH", os.defpath)
    if ctx.target is not None:  # the project's own scripts first, as in an activated venv
        path = f"{ctx.target.root / 'bin'}{os.pathsep}{path}"
    env = {
        "PATH": path,
        "HOME": str(home),
        # Nothing a tool imports leaves bytecode behind; what the interpreter and the
        # environment's build compiled (read-only here) is read, not compiled again per run.
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        # Temporary files die with the scratch directory; and pytest's /tmp/pytest-of-root,
        # if the real root ever made one, would refuse the sandbox's (mapped) root.
        "TMPDIR": str(home / "tmp"),
    }
    for key in ("LANG", "LC_ALL"):
        if key in os.environ:
            env[key] = os.environ[key]
    env.update(ctx.extra_env)
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


def _confinement(ctx: AuditContext, home: Path, tool: str) -> bwrap.Confinement | None:
    if not ctx.isolate:
        return None
    writable = [*ctx.writable]
    if ctx.cache_dir is not None and tool in CACHE_TOOLS:
        ctx.cache_dir.mkdir(parents=True, exist_ok=True)  # the baseline may run first
        writable.append(ctx.cache_dir)
    # The interpreter's own folder, in case it lies outside the installations always shown.
    python = Path(ctx.python)
    readable = [python.parent] if python.is_absolute() and python.exists() else []
    readable += ctx.readable
    if ctx.target is not None and ctx.target.root not in writable:
        readable.append(ctx.target.root)  # the repository's environment: read-only in the audit
    return bwrap.Confinement(
        tree=ctx.root,
        scratch=home,
        writable=tuple(dict.fromkeys(writable)),
        readable=tuple(readable),
        network=ctx.network,
    )


def _spawn(
    ctx: AuditContext, tool: str, argv: Sequence[str], home: Path, out: IO[bytes]
) -> subprocess.Popen[bytes]:
    confinement = _confinement(ctx, home, tool)
    return sandbox.spawn(
        list(argv),
        limits=sandbox.Limits.for_timeout(ctx.limit_s),
        confinement=confinement,
        cwd=ctx.root if confinement is None else sandbox.WORKDIR,
        env=_scrubbed_env(home, ctx),
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def _collect(home: Path, names: Iterable[str]) -> dict[str, bytes]:
    found = {}
    for name in names:
        path = home / name
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as f:
                found[name] = f.read(MAX_COLLECTED)
    return found


def execute(ctx: AuditContext, name: str, argv: Argv, *, collect: Iterable[str] = ()) -> Run:
    """Run tool `name` (argv) in the root, in its own process group, scrubbed and timed out.

    collect: files the tool writes into its scratch folder (or "output", all it printed),
    read back before the folder goes.
    """
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fc-audit-") as scratch:
        home = Path(scratch)
        (home / "tmp").mkdir()
        command = list(argv(home) if callable(argv) else argv)
        # A file, not a pipe: a grandchild that escapes the group cannot keep us reading forever.
        with (home / "output").open("w+b") as out:
            try:
                proc = _spawn(ctx, name, command, home, out)
            except sandbox.SandboxSetupError as err:
                # The probe passed, yet this launch failed (namespaces exhausted, say): refuse,
                # never run unconfined.
                raise SandboxUnavailable(f"audit sandbox failed for {name}: {err}") from err
            except OSError as err:
                # The detail names the interpreter's path: logs only, never GitHub.
                raise PermanentError(
                    f"cannot start audit tool {name} ({command[0]}): {err}",
                    public=f"the self-audit could not start {name}",
                ) from err
            ctx.groups.add(proc)
            try:
                code: int | None = proc.wait(timeout=ctx.limit_s)
            except subprocess.TimeoutExpired:
                code = None
            finally:
                # Whatever ends the wait: a normal exit (confined, its PID namespace is gone
                # already), the timeout, or an exception raised into it, such as RQ's
                # JobTimeoutException or KeyboardInterrupt, which then propagates.
                sandbox.stop(proc)
                ctx.groups.discard(proc)
            out.flush()
            out.seek(max(0, out.seek(0, os.SEEK_END) - OUTPUT_TAIL * 4))
            output = _tail(out.read())
        files = _collect(home, collect)
    return Run(code, output, round(time.monotonic() - started, 3), files)
