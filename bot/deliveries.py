"""Record a verified delivery and queue its handling, deduplicated on X-GitHub-Delivery."""

from __future__ import annotations

import json
from enum import StrEnum
from functools import cache

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.typing import EncodableT
from rq.job import Job
from rq.utils import truncate_long_string

from bot.claim_script import claim_and_queue_script
from bot.keys import delivery_payload, delivery_record
from bot.queue import EVENTS, TaskQueue, delivery_job_id
from bot.script_batch import ScriptBatcher
from bot.store import DELIVERY_TTL_S


class Recorded(StrEnum):
    QUEUED = "queued"
    DUPLICATE = "duplicate"


# Claim and enqueue in one script (bot/claim_script.py): with a claim first and a MULTI after,
# concurrent posts of one id all saw the claim still "received" and each queued it again.
_DESCRIPTION_MAX = 75  # RQ cuts each argument of a job's description so


def record_and_queue(  # noqa: PLR0913 - keyword-only: the delivery's fields, each named
    redis: Redis, queue: TaskQueue, *, delivery_id: str, event: str, action: str, body: bytes
) -> Recorded:
    """One round trip: unless the id is already queued, store the payload and queue its job.

    A record left "received" (a handler that failed for good) lets a redelivery through again.
    """
    keys, args = _claim_arguments(queue, delivery_id, event, action, body)
    # register_script only hashes the text; the call is one EVALSHA (EVAL on NOSCRIPT).
    claimed = redis.register_script(_claim_script(queue))(keys=keys, args=args)
    return Recorded.QUEUED if claimed else Recorded.DUPLICATE


class DeliveryRecorder:
    """record_and_queue for the web process's event loop: no thread hop on the request path,
    and the deliveries in flight together share one round trip (see bot/script_batch.py)."""

    def __init__(self, redis: AsyncRedis, queue: TaskQueue) -> None:
        self._queue = queue
        self._claim_and_queue = ScriptBatcher(redis, _claim_script(queue))

    async def record_and_queue(
        self, *, delivery_id: str, event: str, action: str, body: bytes
    ) -> Recorded:
        keys, args = _claim_arguments(self._queue, delivery_id, event, action, body)
        claimed = await self._claim_and_queue(keys, args)
        return Recorded.QUEUED if claimed else Recorded.DUPLICATE


@cache
def _script_for(function: str, fixed_fields: str) -> str:
    return claim_and_queue_script(function, fixed_fields)


def _claim_script(queue: TaskQueue) -> str:
    fixed, _ = queue.delivery_job_parts("template")
    return _script_for(queue.delivery_job("template").func_name, fixed)


def _claim_arguments(
    queue: TaskQueue, delivery_id: str, event: str, action: str, body: bytes
) -> tuple[list[str], list[EncodableT]]:
    job_id = delivery_job_id(delivery_id)
    events = queue.queues[EVENTS]
    keys = [delivery_record(delivery_id), delivery_payload(delivery_id), Job.key_for(job_id)]
    keys += [events.key, events.redis_queues_keys]
    shown = truncate_long_string(repr(delivery_id), _DESCRIPTION_MAX)  # as RQ describes it
    args: list[EncodableT] = [DELIVERY_TTL_S, event, action, body, job_id, events.key]
    args += [delivery_id, shown]
    return keys, args


def load_delivery(redis: Redis, delivery_id: str) -> tuple[str, bytes] | None:
    """The event name and raw payload of a recorded delivery."""
    pipe = redis.pipeline(transaction=False)
    pipe.get(delivery_record(delivery_id))
    pipe.get(delivery_payload(delivery_id))
    meta, body = pipe.execute()
    if meta is None or body is None:
        return None
    return str(json.loads(meta)["event"]), bytes(body)


def reopen_delivery(redis: Redis, delivery_id: str) -> None:
    """Mark a delivery as received-but-not-handled, so its redelivery is queued again."""
    meta_key = delivery_record(delivery_id)
    raw = redis.get(meta_key)
    if raw is not None:
        meta = {**json.loads(raw), "state": "received"}
        redis.set(meta_key, json.dumps(meta), ex=DELIVERY_TTL_S)
