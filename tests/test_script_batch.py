"""ScriptBatcher against a real Redis: concurrent calls share round trips, in order, each atomic."""

from __future__ import annotations

import asyncio

import pytest
import redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from bot.script_batch import MAX_BATCH, ScriptBatcher
from tests.doubles.server import free_port

# Appends its argument and answers the list's length: the order the calls ran in.
APPEND = "return redis.call('RPUSH', KEYS[1], ARGV[1])"


class CountingConnection(Connection):
    """Counts what the client writes to Redis: one per command, or one per pipeline."""

    writes = 0

    async def send_packed_command(self, command, check_health=True):  # type: ignore[no-untyped-def]
        CountingConnection.writes += 1
        return await super().send_packed_command(command, check_health)


def _client(url: str) -> AsyncRedis:
    return AsyncRedis.from_url(url, connection_class=CountingConnection)


async def _call_at_once(batcher: ScriptBatcher, key: str, n: int) -> list[object]:
    return list(await asyncio.gather(*(batcher([key], [i]) for i in range(n))))


def test_calls_in_flight_together_share_round_trips_and_keep_their_order(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def run() -> list[object]:
        client = _client(redis_url)
        batcher = ScriptBatcher(client, APPEND)
        await batcher(["calls"], ["first"])  # loads the script (NOSCRIPT, then EVAL)
        redis_client.delete("calls")
        CountingConnection.writes = 0
        try:
            return await _call_at_once(batcher, "calls", 150)
        finally:
            await client.aclose()

    results = asyncio.run(run())
    assert results == list(range(1, 151))  # each caller got its own call's answer
    assert redis_client.lrange("calls", 0, -1) == [str(i).encode() for i in range(150)]
    # The first call alone, then the rest in pipelines of at most MAX_BATCH.
    assert CountingConnection.writes <= 1 + -(-149 // MAX_BATCH)


def test_a_call_alone_is_one_round_trip(redis_url: str) -> None:
    async def run() -> int:
        client = _client(redis_url)
        batcher = ScriptBatcher(client, APPEND)
        await batcher(["alone"], ["warm"])
        CountingConnection.writes = 0
        await batcher(["alone"], ["x"])
        await client.aclose()
        return CountingConnection.writes

    assert asyncio.run(run()) == 1


def test_a_batch_survives_the_scripts_being_flushed(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def run() -> list[object]:
        client = _client(redis_url)
        batcher = ScriptBatcher(client, APPEND)
        await batcher(["flushed"], ["warm"])
        redis_client.delete("flushed")
        redis_client.script_flush()  # as after a Redis restart: every EVALSHA gets NOSCRIPT
        try:
            return await _call_at_once(batcher, "flushed", 20)
        finally:
            await client.aclose()

    assert sorted(asyncio.run(run())) == list(range(1, 21))  # type: ignore[type-var]
    assert redis_client.llen("flushed") == 20  # each call ran exactly once


def test_with_redis_down_every_caller_gets_the_error() -> None:
    async def run() -> list[object]:
        client = AsyncRedis.from_url(f"redis://127.0.0.1:{free_port()}/0")
        batcher = ScriptBatcher(client, APPEND)
        try:
            calls = (batcher(["k"], [i]) for i in range(10))
            return list(await asyncio.gather(*calls, return_exceptions=True))
        finally:
            await client.aclose()

    results = asyncio.run(run())
    assert len(results) == 10
    assert all(isinstance(r, RedisConnectionError) for r in results)


def test_a_caller_that_goes_away_does_not_stop_the_others(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def run() -> list[object]:
        client = _client(redis_url)
        batcher = ScriptBatcher(client, APPEND)
        try:
            gone = asyncio.ensure_future(batcher(["gone"], ["cancelled"]))
            others = [asyncio.ensure_future(batcher(["gone"], [i])) for i in range(5)]
            await asyncio.sleep(0)
            gone.cancel()
            with pytest.raises(asyncio.CancelledError):
                await gone
            return list(await asyncio.gather(*others))
        finally:
            await client.aclose()

    results = asyncio.run(run())
    assert len(results) == 5
    assert redis_client.lrange("gone", 0, -1)[-5:] == [str(i).encode() for i in range(5)]


def test_a_call_that_fails_in_redis_fails_alone(redis_url: str, redis_client: redis.Redis) -> None:
    # Fails on its own argument "bad"; the others in the same round trip still run and answer.
    script = "if ARGV[1] == 'bad' then return redis.error_reply('refused') end\n" + APPEND

    async def run() -> list[object]:
        client = _client(redis_url)
        batcher = ScriptBatcher(client, script)
        await batcher(["mixed"], ["warm"])
        redis_client.delete("mixed")
        try:
            calls = (batcher(["mixed"], ["bad" if i == 2 else i]) for i in range(5))
            return list(await asyncio.gather(*calls, return_exceptions=True))
        finally:
            await client.aclose()

    results = asyncio.run(run())
    assert isinstance(results[2], ResponseError) and "refused" in str(results[2])
    assert [r for i, r in enumerate(results) if i != 2] == [1, 2, 3, 4]
    assert redis_client.lrange("mixed", 0, -1) == [b"0", b"1", b"3", b"4"]


def _sender() -> asyncio.Task[object]:
    (task,) = (t for t in asyncio.all_tasks() if "_send_all" in t.get_coro().__qualname__)  # type: ignore[union-attr]
    return task


def test_a_sender_cancelled_before_it_starts_fails_its_calls_and_the_next_call_works(
    redis_url: str,
) -> None:
    async def run() -> tuple[list[object], object]:
        client = _client(redis_url)
        batcher = ScriptBatcher(client, APPEND)
        try:
            calls = [asyncio.ensure_future(batcher(["early"], [i])) for i in range(3)]
            await asyncio.sleep(0)  # the calls are in; their sender has not run yet
            _sender().cancel()
            stranded = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 5)
            return list(stranded), await asyncio.wait_for(batcher(["early"], ["after"]), 5)
        finally:
            await client.aclose()

    stranded, after = asyncio.run(run())
    assert all(isinstance(r, RedisConnectionError) for r in stranded)
    assert after == 1  # the batcher is not stuck behind the dead sender


def test_a_sender_cancelled_mid_batch_fails_its_calls_and_those_behind_them(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # A script that holds Redis for ~0.3 s on "slow": the batch is in flight when cancelled.
    slow = (
        "if ARGV[1] == 'slow' then local t = redis.call('TIME')[1] * 1e6 + redis.call('TIME')[2]\n"
        " while redis.call('TIME')[1] * 1e6 + redis.call('TIME')[2] < t + 300000 do end end\n"
    ) + APPEND

    async def run() -> tuple[list[object], object]:
        client = _client(redis_url)
        batcher = ScriptBatcher(client, slow)
        await batcher(["mid"], ["warm"])
        try:
            first = asyncio.ensure_future(batcher(["mid"], ["slow"]))
            await asyncio.sleep(0.05)  # sent; Redis is running it
            behind = [asyncio.ensure_future(batcher(["mid"], [i])) for i in range(3)]
            await asyncio.sleep(0)
            _sender().cancel()
            calls = asyncio.gather(first, *behind, return_exceptions=True)
            stranded = await asyncio.wait_for(calls, 5)
            return list(stranded), await asyncio.wait_for(batcher(["mid"], ["after"]), 5)
        finally:
            await client.aclose()

    stranded, after = asyncio.run(run())
    assert len(stranded) == 4
    assert all(isinstance(r, RedisConnectionError) for r in stranded)
    assert isinstance(after, int)
    assert redis_client.lrange("mid", 0, -1)[-1] == b"after"
