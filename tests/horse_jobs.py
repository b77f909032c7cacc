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
    part = Path(f"{started}.part")
    part.write_text(str(os.getpid()))
    part.rename(started)  # whole or not there: a test may read it the moment it exists
    while not Path(release).exists():
        time.sleep(0.05)
    return os.getpid()
