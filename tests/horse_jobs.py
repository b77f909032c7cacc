"""Jobs for the pre-forked horse tests: each tells which process ran it."""

from __future__ import annotations

import os
import time
from pathlib import Path


def pid() -> int:
    """The horse's pid."""
    return os.getpid()


def hold(started: str, release: str) -> int:
    """Write the horse's pid to `started`, wait until `release` exists, return the pid."""
    Path(started).write_text(str(os.getpid()))
    while not Path(release).exists():
        time.sleep(0.05)
    return os.getpid()
