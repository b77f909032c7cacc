"""Best-effort confinement of the self-audit's tools: no network, bounded resources.

The tools run code a model wrote. Each one is started through this very file, run as a script
by a fresh interpreter (`python -I -S sandbox.py ...`), which sets resource limits, optionally
moves into a new user and network namespace with only loopback up, then execs the tool.

A launcher rather than Popen's preexec_fn: the worker has threads (Python code between fork and
exec may deadlock on a lock another thread held) and is non-dumpable (its forked child could not
open /proc/self/uid_map as a non-root user); a freshly exec'd interpreter has neither problem,
holds none of the worker's memory, and can report a failure properly, through a pipe that a
successful exec closes (as subprocess does for its own errors).

What this does not confine: the filesystem (path-based Unix sockets included), processes that
escape the process group (they keep their rlimits), and the tool's view of other processes.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import math
import os
import resource
import signal
import socket
import struct
import subprocess
import sys
from dataclasses import dataclass
from typing import IO, Any, NoReturn

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
IFF_RUNNING = 0x40
_IFREQ = "16sH22x"  # struct ifreq on 64-bit Linux: name[16], then a 24-byte union

GIB = 1024**3
SETUP_FAILED = 125  # the launcher's exit code when it reports a failure; the tool never ran
EXEC_FAILED = 127
PROBE_TIMEOUT_S = 20.0

_LAUNCHER = os.path.abspath(__file__)


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


class SandboxSetupError(Exception):
    """The launcher could not set up the sandbox (namespaces, loopback or limits); no tool ran."""


# --- the launcher, in the child ------------------------------------------------------------


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _isolate_network() -> None:
    """Become root of a new user namespace that owns a new network namespace; loopback up."""
    uid, gid = os.getuid(), os.getgid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"unshare(CLONE_NEWUSER|CLONE_NEWNET): {os.strerror(code)}")
    with contextlib.suppress(FileNotFoundError):  # kernels before 3.19 have no setgroups file
        _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"0 {uid} 1")
    _write("/proc/self/gid_map", f"0 {gid} 1")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        current = fcntl.ioctl(sock, SIOCGIFFLAGS, struct.pack(_IFREQ, b"lo", 0))
        flags = struct.unpack(_IFREQ, current)[1] | IFF_UP | IFF_RUNNING
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack(_IFREQ, b"lo", flags))


def _set_limit(which: int, soft: int, hard: int | None = None) -> None:
    _, current_hard = resource.getrlimit(which)
    hard = soft if hard is None else hard
    if current_hard != resource.RLIM_INFINITY:  # raising a hard limit needs privileges
        soft, hard = min(soft, current_hard), min(hard, current_hard)
    resource.setrlimit(which, (soft, hard))


def _apply_limits(limits: Limits) -> None:
    _set_limit(resource.RLIMIT_CORE, 0)
    if limits.file_bytes is not None:
        _set_limit(resource.RLIMIT_FSIZE, limits.file_bytes)
    if limits.address_space_bytes is not None:
        _set_limit(resource.RLIMIT_AS, limits.address_space_bytes)
    if limits.cpu_s is not None:
        # SIGXCPU at the soft limit, SIGKILL a few seconds later for a process that ignores it.
        _set_limit(resource.RLIMIT_CPU, limits.cpu_s, limits.cpu_s + 5)


def _report(fd: int, kind: str, err: BaseException) -> None:
    code = err.errno if isinstance(err, OSError) and err.errno else 0
    with contextlib.suppress(OSError):
        os.write(fd, f"{kind}\0{code}\0{err}".encode(errors="replace"))


def _optional(text: str) -> int | None:
    return None if text == "-" else int(text)


def _launch(args: list[str]) -> NoReturn:
    """argv: FD ISOLATE CPU FSIZE AS -- TOOL...; reports a failure on FD, which exec closes."""
    fd = int(args[0])
    try:
        isolate = args[1] == "1"
        limits = Limits(_optional(args[2]), _optional(args[3]), _optional(args[4]))
        argv = args[6:]
        if isolate:
            _isolate_network()
        _apply_limits(limits)
        os.set_inheritable(fd, False)
    except BaseException as err:
        _report(fd, "sandbox", err)
        os._exit(SETUP_FAILED)
    try:
        os.execvp(argv[0], argv)  # noqa: S606 - the tool's argv, as Popen had it
    except BaseException as err:
        _report(fd, "exec", err)
    os._exit(EXEC_FAILED)


# --- the parent ------------------------------------------------------------------------------


def _argument(value: int | None) -> str:
    return "-" if value is None else str(value)


def _read_report(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return b"".join(chunks)


def _raise_reported(report: bytes, argv0: str) -> NoReturn:
    kind, code, message = [*report.decode(errors="replace").split("\0", 2), "", ""][:3]
    if kind == "exec" and code.isdigit() and int(code):
        raise OSError(int(code), os.strerror(int(code)), argv0)
    raise SandboxSetupError(message or "the sandbox launcher failed without saying why")


def spawn(
    argv: list[str],
    *,
    isolate: bool,
    limits: Limits,
    cwd: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
    stdin: int | IO[Any] | None = None,
    stdout: int | IO[Any] | None = None,
    stderr: int | IO[Any] | None = None,
    start_new_session: bool = False,
) -> subprocess.Popen[bytes]:
    """Start argv under limits (and without network if isolate); return once it has exec'd.

    Raises OSError when the tool cannot be exec'd (as Popen does) and SandboxSetupError when
    the sandbox cannot be set up; in both cases the launcher has already exited.
    """
    if not argv:
        raise ValueError("spawn needs a command")
    read_fd, write_fd = os.pipe()
    try:
        launcher = [sys.executable, "-I", "-S", _LAUNCHER, str(write_fd), "1" if isolate else "0"]
        launcher += [_argument(limits.cpu_s), _argument(limits.file_bytes)]
        launcher += [_argument(limits.address_space_bytes), "--", *argv]
        proc = subprocess.Popen(
            launcher,
            cwd=cwd,
            env=env,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            start_new_session=start_new_session,
            pass_fds=(write_fd,),
        )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    try:
        try:
            report = _read_report(read_fd)
        finally:
            os.close(read_fd)
        if report:
            proc.wait()
            _raise_reported(report, argv[0])
    except BaseException:
        # Interrupted (an RQ job timeout) or failed: leave nothing running behind.
        if proc.returncode is None:  # never signal a reaped pid: it may be someone else's now
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if start_new_session:
                    os.killpg(proc.pid, signal.SIGKILL)
                else:
                    proc.kill()
            proc.wait()
        raise
    return proc


def _probe() -> str | None:
    """None when a throwaway child could enter the sandbox; else why it could not."""
    if not sys.platform.startswith("linux"):
        return f"namespaces need Linux, not {sys.platform}"
    try:
        proc = spawn(
            [sys.executable, "-I", "-S", "-c", "pass"],
            isolate=True,
            limits=Limits(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except (OSError, SandboxSetupError) as err:
        return str(err) or type(err).__name__
    try:
        code = proc.wait(timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return "the sandbox probe timed out"
    return None if code == 0 else f"the sandboxed probe exited with {code}"


@functools.cache
def unavailable_reason() -> str | None:
    """Why this machine cannot sandbox (EPERM under Docker's seccomp, no user namespaces...)."""
    return _probe()


def sandbox_available() -> bool:
    """Whether the tools can run in their own user and network namespaces (probed once)."""
    return unavailable_reason() is None


if __name__ == "__main__":
    _launch(sys.argv[1:])
