"""Process hardening at start: a non-dumpable process keeps its /proc (environ, memory) private."""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4


def prctl(option: int, value: int) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: nothing to harden
        log.debug("prctl(%s) unavailable", option)


def make_non_dumpable() -> None:
    """No core dumps, no ptrace and no /proc/<pid>/environ or mem for our own user.

    Audit code runs as the same user; without this it could read the App's key and secrets
    from our environment. Forked children (RQ's job horses, the events sidecar) inherit it.
    """
    prctl(PR_SET_DUMPABLE, 0)
