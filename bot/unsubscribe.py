"""RQ workers that stop without waiting a minute for their pubsub thread.

RQ's worker listens for commands (stop-job, shutdown) on a pubsub thread that reads with RQ's
60 s `sleep_time`. On the way out RQ sends UNSUBSCRIBE, then calls the thread's `stop()`, which
since redis-py 8.2 waits for the thread to end. A thread that read the UNSUBSCRIBE reply before
the stop flag went down goes back to wait for a new subscription for those whole 60 s, and so
does the stopping worker (a CI run's `feature-crew worker` that took over a minute to stop).
"""

from __future__ import annotations

from rq.worker.base import BaseWorker


class PromptUnsubscribe(BaseWorker):
    """RQ's `unsubscribe`, with the stop flag down before the UNSUBSCRIBE: its reply wakes the
    thread's read, and the thread sees the flag and ends."""

    def unsubscribe(self) -> None:
        thread = self.pubsub_thread
        if thread is None:
            return
        self.log.info("Worker %s: unsubscribing from channel %s", self.name,
                      self.pubsub_channel_name)  # fmt: skip
        thread.stop(timeout=0)  # only trips the flag
        self.pubsub.unsubscribe()
        thread.join(timeout=1)
        self.pubsub.close()
