"""One Redis script called by many coroutines at once: calls in flight together share a pipeline.

Under load the webhook route spends most of its Redis time in the client's per-command
machinery (a pooled connection, a retry wrapper, a timeout, a write syscall each), not in
Redis. Calls that arrive while a round trip is in flight wait for it, then go together as one
pipeline: one write and one read for all of them, and in arrival order, so none is overtaken
(with a pool of connections, late arrivals could take a freed connection first). A call alone
is one EVALSHA, as before. Each script call stays atomic on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import NoScriptError
from redis.typing import EncodableT, KeyT

MAX_BATCH = 64  # a pipeline of webhook payloads (10-60 KB each) stays a few MB at most
_Call = tuple[Sequence[KeyT], Sequence[EncodableT], "asyncio.Future[object]"]


class ScriptBatcher:
    """Calls `script` on `redis`; concurrent calls go to Redis in one pipeline, in order."""

    def __init__(self, redis: AsyncRedis, script: str) -> None:
        self._redis = redis
        self._script = redis.register_script(script)  # hashes the text once, not per call
        self._waiting: list[_Call] = []
        self._sending: asyncio.Task[None] | None = None

    async def __call__(self, keys: Sequence[KeyT], args: Sequence[EncodableT]) -> object:
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((keys, args, done))
        if self._sending is None:
            self._sending = asyncio.create_task(self._send_all())
        return await done

    async def _send_all(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                await self._send(batch)
        finally:
            self._sending = None

    async def _send(self, batch: list[_Call]) -> None:
        try:
            results = await self._results(batch)
        except Exception as err:  # the store is down: every caller answers 503
            results = [err] * len(batch)
        for (_, _, done), result in zip(batch, results, strict=True):
            if done.done():  # its caller went away
                continue
            if isinstance(result, BaseException):
                done.set_exception(result)
            else:
                done.set_result(result)

    async def _results(self, batch: list[_Call]) -> list[object]:
        if len(batch) == 1:
            keys, args, _ = batch[0]
            return [await self._script(keys=keys, args=args)]  # loads it on NOSCRIPT
        pipe = self._redis.pipeline(transaction=False)
        for keys, args, _ in batch:
            pipe.evalsha(self._script.sha, len(keys), *keys, *args)
        results: list[object] = await pipe.execute(raise_on_error=False)
        missed = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
        if missed:  # Redis restarted or its scripts were flushed: those calls did not run
            await self._redis.script_load(self._script.script)
            for i in missed:
                keys, args, _ = batch[i]
                try:
                    results[i] = await self._script(keys=keys, args=args)
                except Exception as err:
                    results[i] = err
        return results
