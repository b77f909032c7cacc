"""RQ's scheduler process, made to die with the worker that started it.

RQ forks its scheduler from the worker and never looks back: a worker killed outright (the
kernel's OOM killer, `kill -9` on its pid) leaves the scheduler running as an orphan. It goes
on refreshing the scheduler locks, so the worker that replaces the dead one never schedules,
and it holds whatever the worker had open when it was forked (its Redis sockets among them).
"""

from __future__ import annotations

import os
import signal
from multiprocessing.process import BaseProcess

from rq.scheduler import RQScheduler

from bot.hardening import PR_SET_PDEATHSIG, prctl


class DyingScheduler(RQScheduler):
    """An RQScheduler whose process gets SIGTERM when its worker dies (a warm stop: it releases
    its locks and registers its death, as when the worker stops it)."""

    _parent = 0

    def start(self) -> BaseProcess:
        self._parent = os.getpid()
        process: BaseProcess = super().start()  # type: ignore[no-untyped-call]
        return process

    def work(self) -> None:  # in the scheduler's own process
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != self._parent:
            return  # the worker died before the line above: nobody to schedule for
        super().work()  # type: ignore[no-untyped-call]
