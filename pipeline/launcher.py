"""The last step before a confined tool runs: stderr in place, resource limits set, then exec.

Run as a script by a fresh interpreter (`python -I -S launcher.py ...`), inside bubblewrap or,
with the sandbox off, straight from the worker; it imports nothing but the standard library.
It reports on a pipe: `+` once it runs (so the parent knows the confinement was built), then
any failure; a successful exec closes the pipe, as subprocess does for its own errors.
"""

from __future__ import annotations

import contextlib
import os
import resource
import sys
from typing import NoReturn

READY = b"+"
SETUP_FAILED = 125  # the launcher's exit code when it reports a failure; the tool never ran
EXEC_FAILED = 127


def _set_limit(which: int, soft: int, hard: int | None = None) -> None:
    _, current_hard = resource.getrlimit(which)
    hard = soft if hard is None else hard
    if current_hard != resource.RLIM_INFINITY:  # raising a hard limit needs privileges
        soft, hard = min(soft, current_hard), min(hard, current_hard)
    resource.setrlimit(which, (soft, hard))


def _apply_limits(cpu_s: int | None, file_bytes: int | None, address_space: int | None) -> None:
    _set_limit(resource.RLIMIT_CORE, 0)  # a core dump would land in the tree, secrets and all
    if file_bytes is not None:
        _set_limit(resource.RLIMIT_FSIZE, file_bytes)
    if address_space is not None:
        _set_limit(resource.RLIMIT_AS, address_space)
    if cpu_s is not None:
        # SIGXCPU at the soft limit, SIGKILL a few seconds later for a process that ignores it.
        _set_limit(resource.RLIMIT_CPU, cpu_s, cpu_s + 5)


def _report(fd: int, kind: str, err: BaseException) -> None:
    code = err.errno if isinstance(err, OSError) and err.errno else 0
    with contextlib.suppress(OSError):
        os.write(fd, f"{kind}\0{code}\0{err}".encode(errors="replace"))


def _optional(text: str) -> int | None:
    return None if text == "-" else int(text)


def _take_stderr(fd: int) -> None:
    # The launcher's own stderr carries bubblewrap's errors to the parent; the tool gets its own.
    if fd != 2:
        os.dup2(fd, 2)
    if fd > 2:
        os.close(fd)


def main(args: list[str]) -> NoReturn:
    """argv: REPORT_FD STDERR_FD CPU FSIZE AS -- TOOL..."""
    fd = int(args[0])
    try:
        os.write(fd, READY)
        _take_stderr(int(args[1]))
        _apply_limits(_optional(args[2]), _optional(args[3]), _optional(args[4]))
        argv = args[6:]
        os.set_inheritable(fd, False)
    except BaseException as err:
        _report(fd, "sandbox", err)
        os._exit(SETUP_FAILED)
    try:
        os.execvp(argv[0], argv)  # noqa: S606 - the tool's argv, as Popen had it
    except BaseException as err:
        _report(fd, "exec", err)
    os._exit(EXEC_FAILED)


if __name__ == "__main__":
    main(sys.argv[1:])
