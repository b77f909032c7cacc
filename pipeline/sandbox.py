"""The confinement of code a model wrote: the setup phase, the audit and the baseline run here.

Each tool starts under bubblewrap (pipeline/bwrap.py says what exists inside) and then through
pipeline/launcher.py, run by a fresh interpreter inside, which sets the resource limits and execs
the tool. Bubblewrap rather than namespaces of our own: it is the tool built and reviewed for
exactly this (tmpfs root, bind mounts, pivot_root, a PID namespace whose init reaps and kills
everything when the tool ends, its own /proc), and it needs no Python between fork and exec in
a worker that has threads.

With `confinement=None` (the operator's explicit `sandbox = "off"`) only the launcher runs:
resource limits and a process group, the host's tree as cwd, nothing else confined.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import select
import signal
import subprocess
import sys
import tempfile
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NoReturn

from pipeline import bwrap
from pipeline.launcher import READY

WORKDIR = Path("/src")  # where the task's tree appears inside the confinement; the tools' cwd
GIB = 1024**3
PROBE_TIMEOUT_S = 20.0
STOP_WAIT_S = 30.0  # bubblewrap exits once the kernel has reaped its namespace
_LAUNCHER = str(Path(__file__).with_name("launcher.py").resolve())

Output = int | IO[Any] | None


@dataclass(frozen=True)
class Limits:
    """Resource limits set in the tool's process (inherited by its children); None: unchanged."""

    cpu_s: int | None = None
    file_bytes: int | None = GIB
    address_space_bytes: int | None = 8 * GIB  # generous: mypy on a large project needs room
    # Core dumps are always off: they would land in the worktree and may hold secrets.

    @classmethod
    def for_timeout(cls, timeout_s: float) -> Limits:
        """CPU a little above the wall-clock timeout: a backstop for processes that escape it."""
        return cls(cpu_s=math.ceil(timeout_s) + max(10, math.ceil(timeout_s / 10)))

    def arguments(self) -> list[str]:
        values = (self.cpu_s, self.file_bytes, self.address_space_bytes)
        return ["-" if value is None else str(value) for value in values]


class SandboxSetupError(Exception):
    """The confinement (or the launcher's limits) could not be set up; no tool ran."""


def _raise_reported(report: bytes, argv0: str) -> NoReturn:
    kind, code, message = [*report.decode(errors="replace").split("\0", 2), "", ""][:3]
    if kind == "exec" and code.isdigit() and int(code):
        raise OSError(int(code), os.strerror(int(code)), argv0)
    raise SandboxSetupError(message or "the sandbox launcher failed without saying why")


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return b"".join(chunks)


@contextlib.contextmanager
def _stderr_fd(stderr: Output) -> Iterator[int]:
    """The fd the launcher gives the tool as stderr; the launcher's own stderr is for errors."""
    if stderr == subprocess.STDOUT:
        yield 1
        return
    if stderr == subprocess.PIPE:
        raise ValueError("spawn cannot pipe stderr: use STDOUT or a file")
    if stderr == subprocess.DEVNULL:
        fd = os.open(os.devnull, os.O_WRONLY)
    elif stderr is None:
        fd = os.dup(2)
    elif isinstance(stderr, int):
        fd = os.dup(stderr)
    else:
        fd = os.dup(stderr.fileno())
    try:
        yield fd
    finally:
        os.close(fd)


def _inside(cwd: str | os.PathLike[str] | None, confinement: bwrap.Confinement) -> Path:
    """The tool's cwd inside: WORKDIR, or a host path under the tree mapped there."""
    if cwd is None:
        return WORKDIR
    path = Path(cwd)
    tree = Path(os.path.realpath(confinement.tree))
    real = Path(os.path.realpath(path))
    if real.is_relative_to(tree):
        return WORKDIR / real.relative_to(tree)
    if path.is_absolute():
        return path
    raise ValueError(f"a confined tool's cwd must be absolute, not {cwd}")


def _command(
    confinement: bwrap.Confinement | None, cwd: str | os.PathLike[str] | None, info_fd: int
) -> tuple[list[str], str | os.PathLike[str] | None]:
    launcher = [sys.executable, "-I", "-S"]
    if confinement is None:
        return [*launcher, _LAUNCHER], cwd
    hidden = (*bwrap.default_hidden(), *(Path(os.path.realpath(p)) for p in confinement.hidden))
    bwrap.check_exposable(confinement, hidden)
    where = _inside(cwd, confinement)
    prefix = bwrap.command(confinement, hidden, WORKDIR, where, _LAUNCHER, info_fd)
    return [*prefix, *launcher, bwrap.LAUNCHER_INSIDE], "/"


class Tool(subprocess.Popen[bytes]):
    """A started tool. Confined, wait() returns only once everything it started is gone too."""

    init: int | None = None  # pidfd of the confinement's PID 1 (bubblewrap's reaper)

    def wait(self, timeout: float | None = None) -> int:
        code = super().wait(timeout)
        if self.init is not None:
            # bubblewrap exits as soon as its PID 1 reports the tool's status; the kernel kills
            # and reaps the rest of the namespace as PID 1 exits, which its pidfd reports.
            select.select([self.init], [], [], STOP_WAIT_S)
        return code


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Kill the tool and everything it started, and wait until they are gone.

    Confined: killing its PID 1 makes the kernel kill and reap the whole PID namespace.
    Off: the process group (what left the group survives).
    """
    init = getattr(proc, "init", None)
    if init is not None:
        with contextlib.suppress(ProcessLookupError):  # it had exited already
            signal.pidfd_send_signal(init, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_WAIT_S)
    if proc.returncode is None:  # never signal a reaped pid: it may be someone else's now
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _watch_init(proc: Tool, said: bytes) -> None:
    """Hold a pidfd on bubblewrap's PID 1, checked to be its child (so not a recycled pid)."""
    info = json.loads(said or b"{}")
    pid = info.get("child-pid")
    if not isinstance(pid, int):
        return
    with contextlib.suppress(ProcessLookupError):
        pidfd = os.pidfd_open(pid)
        status = Path(f"/proc/{pid}/status").read_text()
        parent = status.split("PPid:", 1)[1].split(maxsplit=1)[0]
        if int(parent) != proc.pid:
            os.close(pidfd)
            return
        proc.init = pidfd
        weakref.finalize(proc, os.close, pidfd)


class _Pipe:
    """A pipe whose ends close once, however the spawn ends."""

    def __init__(self) -> None:
        self.read, self.write = os.pipe()

    def close_write(self) -> None:
        if self.write >= 0:
            os.close(self.write)
            self.write = -1

    def close(self) -> None:
        self.close_write()
        if self.read >= 0:
            os.close(self.read)
            self.read = -1

    def drain(self) -> bytes:
        self.close_write()  # ours: EOF comes once the child's copies are closed
        return _read_all(self.read)


def _await_exec(proc: Tool, report: _Pipe, errors: IO[bytes], argv0: str) -> None:
    """Return once the tool has exec'd; else raise what the launcher or bubblewrap said."""
    said = report.drain()
    if said == READY:
        return
    proc.wait()
    if not said.startswith(READY):  # bubblewrap failed before the launcher could run
        errors.seek(0)
        text = errors.read()[-2000:].decode(errors="replace").strip()
        raise SandboxSetupError(text or f"bwrap exited with {proc.returncode}")
    _raise_reported(said[len(READY) :], argv0)


def spawn(  # noqa: PLR0913 - keyword-only, each named at the call
    argv: list[str],
    *,
    limits: Limits,
    confinement: bwrap.Confinement | None,
    cwd: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
    stdin: Output = None,
    stdout: Output = None,
    stderr: Output = None,
) -> Tool:
    """Start argv confined, in its own session; return once it has exec'd. End it with stop().

    Raises OSError when the tool cannot be exec'd (as Popen does), SandboxSetupError when the
    confinement cannot be built, ValueError when a given folder would expose a hidden path; in
    every case nothing is left running.
    """
    if not argv:
        raise ValueError("spawn needs a command")
    report, info = _Pipe(), _Pipe()
    try:
        command, popen_cwd = _command(confinement, cwd, info.write)
        with tempfile.TemporaryFile() as errors, _stderr_fd(stderr) as err_fd:
            keep = {report.write, err_fd} - {1}
            if confinement is not None:
                keep.add(info.write)
            proc = Tool(
                [*command, str(report.write), str(err_fd), *limits.arguments(), "--", *argv],
                cwd=popen_cwd,
                env=env,
                stdin=stdin,
                stdout=stdout,
                stderr=errors,
                pass_fds=tuple(keep),
                start_new_session=True,
            )
            try:
                _await_exec(proc, report, errors, argv[0])
                if confinement is not None:
                    _watch_init(proc, info.drain())
            except BaseException:
                stop(proc)  # interrupted (an RQ job timeout) or failed: nothing left behind
                raise
    finally:
        report.close()
        info.close()
    return proc


def _probe() -> str | None:
    """None when a throwaway child could run confined; else why it could not."""
    if not sys.platform.startswith("linux"):
        return f"the confinement needs Linux, not {sys.platform}"
    if bwrap.bwrap_path() is None:
        return "bubblewrap (bwrap) is not installed"
    with tempfile.TemporaryDirectory(prefix="fc-probe-") as scratch:
        try:
            proc = spawn(
                [sys.executable, "-I", "-S", "-c", "pass"],
                limits=Limits(),
                confinement=bwrap.Confinement(tree=Path(scratch), scratch=Path(scratch)),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except (OSError, SandboxSetupError, ValueError) as err:
            return str(err) or type(err).__name__
        try:
            code = proc.wait(timeout=PROBE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            stop(proc)
            return "the confinement probe timed out"
    return None if code == 0 else f"the confined probe exited with {code}"


@functools.cache
def unavailable_reason() -> str | None:
    """Why this machine cannot confine (no bwrap, EPERM under Docker's seccomp...), or None."""
    return _probe()


def probe_before_forking() -> str | None:
    """Probe now, in a worker before its horses fork, so that none of them probes again
    (a confined throwaway process per job); a failed probe is not remembered: each job asks
    again, and a machine that could not confine for a moment refuses only while it cannot."""
    reason = unavailable_reason()
    if reason is not None:
        unavailable_reason.cache_clear()
    return reason
