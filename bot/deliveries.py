"""Record a verified delivery and queue its handling, deduplicated on X-GitHub-Delivery."""

from __future__ import annotations

import json
import time
from enum import StrEnum

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.typing import EncodableT
from rq.job import Job

from bot.keys import delivery_payload, delivery_record
from bot.queue import EVENTS, TaskQueue, delivery_job_id
from bot.script_batch import ScriptBatcher
from bot.store import DELIVERY_TTL_S


class Recorded(StrEnum):
    QUEUED = "queued"
    DUPLICATE = "duplicate"


# Claim and enqueue in one script: with a claim first and a MULTI after, concurrent posts of
# one id all saw the claim still "received" and each queued the delivery again.
# KEYS: delivery record, payload, job hash, queue list, RQ's set of queues.
# ARGV: ttl, record JSON, payload, job id, queue key, the job hash's fields every delivery job
# shares (JSON), then this job's own fields and values.
_CLAIM_AND_QUEUE = """
local record = redis.call('GET', KEYS[1])
if record and cjson.decode(record).state == 'queued' then return 0 end
local fields = {}
for name, value in pairs(cjson.decode(ARGV[6])) do
  fields[#fields + 1] = name
  fields[#fields + 1] = value
end
redis.call('HSET', KEYS[3], unpack(fields))
redis.call('HSET', KEYS[3], unpack(ARGV, 7))
redis.call('RPUSH', KEYS[4], ARGV[4])
redis.call('SADD', KEYS[5], ARGV[5])
redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[1])
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[1])
return 1
"""


def record_and_queue(
    redis: Redis, queue: TaskQueue, *, delivery_id: str, event: str, action: str, body: bytes
) -> Recorded:
    """One round trip: unless the id is already queued, store the payload and queue its job.

    A record left "received" (a handler that failed for good) lets a redelivery through again.
    """
    keys, args = _claim_arguments(queue, delivery_id, event, action, body)
    # register_script only hashes the text; the call is one EVALSHA (EVAL on NOSCRIPT).
    claimed = redis.register_script(_CLAIM_AND_QUEUE)(keys=keys, args=args)
    return Recorded.QUEUED if claimed else Recorded.DUPLICATE


class DeliveryRecorder:
    """record_and_queue for the web process's event loop: no thread hop on the request path,
    and the deliveries in flight together share one round trip (see bot/script_batch.py)."""

    def __init__(self, redis: AsyncRedis, queue: TaskQueue) -> None:
        self._queue = queue
        self._claim_and_queue = ScriptBatcher(redis, _CLAIM_AND_QUEUE)

    async def record_and_queue(
        self, *, delivery_id: str, event: str, action: str, body: bytes
    ) -> Recorded:
        keys, args = _claim_arguments(self._queue, delivery_id, event, action, body)
        claimed = await self._claim_and_queue(keys, args)
        return Recorded.QUEUED if claimed else Recorded.DUPLICATE


def _claim_arguments(
    queue: TaskQueue, delivery_id: str, event: str, action: str, body: bytes
) -> tuple[list[str], list[EncodableT]]:
    job_id = delivery_job_id(delivery_id)
    events = queue.queues[EVENTS]
    record = {"event": event, "action": action, "received_at": time.time(), "state": "queued"}
    fixed, own = queue.delivery_job_parts(delivery_id)
    fields: list[EncodableT] = [fixed, *(item for pair in own.items() for item in pair)]
    keys = [delivery_record(delivery_id), delivery_payload(delivery_id), Job.key_for(job_id)]
    keys.append(events.key)
    args: list[EncodableT] = [DELIVERY_TTL_S, json.dumps(record), body, job_id, events.key]
    args.extend(fields)
    return [*keys, events.redis_queues_keys], args


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
