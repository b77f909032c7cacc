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
import math
from collections.abc import Sequence

from hiredis import pack_command
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import EncodableT, KeyT

MAX_BATCH = 64  # a pipeline of webhook payloads (10-60 KB each) stays a few MB at most
_Call = tuple[Sequence[KeyT], Sequence[EncodableT], "asyncio.Future[object]"]


class ScriptBatcher:
    """Calls `script` on `redis`; concurrent calls go to Redis in one pipeline, in order."""

    def __init__(self, redis: AsyncRedis, script: str) -> None:
        self._redis = redis
        self._script = redis.register_script(script)  # hashes the text once, not per call
        self._waiting: list[_Call] = []
        self._batch: list[_Call] = []  # the sender's batch in flight
        self._sending: asyncio.Task[None] | None = None

    async def __call__(self, keys: Sequence[KeyT], args: Sequence[EncodableT]) -> object:
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((keys, args, done))
        if self._sending is None:
            self._sending = asyncio.create_task(self._send_all())
            self._sending.add_done_callback(self._stopped)
        return await done

    async def _send_all(self) -> None:
        while self._waiting:
            self._batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            await self._send(self._batch)
        self._batch = []
        self._sending = None  # no await since the last check: a new call starts a new sender

    def _stopped(self, sender: asyncio.Task[None]) -> None:
        """The sender ended; if it did not end on its own (cancelled, as when the loop shuts
        down, even before it started), its calls and those behind it get an error to answer
        with (a 503: GitHub delivers again) instead of waiting for ever, and the next call
        starts a new sender instead of queueing behind a dead one."""
        if self._sending is not sender:
            return
        self._sending = None
        stranded, self._batch, self._waiting = [*self._batch, *self._waiting], [], []
        for _, _, done in stranded:
            if not done.done():
                done.set_exception(RedisConnectionError("the script call stopped before its reply"))

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
        results = await self._evalsha_all(batch)
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

    async def _evalsha_all(self, batch: list[_Call]) -> list[object]:
        """Every call as EVALSHA, on one pooled connection: one write, then each reply.

        Below redis-py's pipeline on purpose: its per-command packing, retry wrapper, reply
        callbacks and a timeout per reply cost more than the calls themselves. hiredis packs
        them, and one timeout covers all the replies: 90 -> 48 us of CPU per call, 64 calls
        in flight with a 12 KB argument each, the caller's own await included.
        """
        pool = self._redis.connection_pool
        conn: AbstractConnection = await pool.get_connection()  # type: ignore[no-untyped-call]
        sha = self._script.sha
        try:
            # hiredis's stub types the command as a 1-tuple; it takes any length
            packed = [pack_command((b"EVALSHA", sha, len(k), *k, *a)) for k, a, _ in batch]  # type: ignore[arg-type]
            await conn.send_packed_command(packed)
            try:
                async with asyncio.timeout(conn.socket_timeout):
                    return [await _reply(conn) for _ in batch]
            except TimeoutError:
                raise RedisTimeoutError("Timeout reading the script calls' replies") from None
        except BaseException:
            await conn.disconnect(nowait=True)  # replies may still be on their way: never reuse
            raise
        finally:
            await pool.release(conn)


async def _reply(conn: AbstractConnection) -> object:
    try:
        return await conn.read_response(timeout=math.inf)  # the batch's timeout applies
    except ResponseError as err:  # this call failed (NOSCRIPT, a script error), not the others
        return err
