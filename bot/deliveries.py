"""Record a verified delivery and queue its handling, deduplicated on X-GitHub-Delivery."""

from __future__ import annotations

import json
import time
from enum import StrEnum

from redis import Redis

from bot.queue import TaskQueue
from bot.store import DELIVERY_TTL_S, redis_key


class Recorded(StrEnum):
    QUEUED = "queued"
    DUPLICATE = "duplicate"


def payload_key(delivery_id: str) -> str:
    return redis_key("delivery", delivery_id, "payload")


def record_and_queue(
    redis: Redis, queue: TaskQueue, *, delivery_id: str, event: str, action: str, body: bytes
) -> Recorded:
    """Two round trips: claim the delivery id, then store the payload and enqueue atomically.

    If Redis dies between the two, the claim stays "received" and a redelivery finishes the
    job instead of being dropped as a duplicate.
    """
    meta_key = redis_key("delivery", delivery_id)
    meta = {"event": event, "action": action, "received_at": time.time()}
    claimed = redis.set(
        meta_key, json.dumps({**meta, "state": "received"}), nx=True, ex=DELIVERY_TTL_S
    )
    if not claimed and _state(redis, meta_key) == "queued":
        return Recorded.DUPLICATE
    pipe = redis.pipeline(transaction=True)
    # RQ may WATCH on the pipeline, which must come before any buffered command.
    queue.enqueue_delivery(delivery_id, pipeline=pipe)
    pipe.set(payload_key(delivery_id), body, ex=DELIVERY_TTL_S)
    pipe.set(meta_key, json.dumps({**meta, "state": "queued"}), ex=DELIVERY_TTL_S)
    pipe.execute()
    return Recorded.QUEUED


def _state(redis: Redis, meta_key: str) -> str | None:
    raw = redis.get(meta_key)
    if raw is None:
        return None
    return str(json.loads(raw).get("state"))


def load_delivery(redis: Redis, delivery_id: str) -> tuple[str, bytes] | None:
    """The event name and raw payload of a recorded delivery."""
    pipe = redis.pipeline(transaction=False)
    pipe.get(redis_key("delivery", delivery_id))
    pipe.get(payload_key(delivery_id))
    meta, body = pipe.execute()
    if meta is None or body is None:
        return None
    return str(json.loads(meta)["event"]), bytes(body)


def reopen_delivery(redis: Redis, delivery_id: str) -> None:
    """Mark a delivery as received-but-not-handled, so its redelivery is queued again."""
    meta_key = redis_key("delivery", delivery_id)
    raw = redis.get(meta_key)
    if raw is not None:
        meta = {**json.loads(raw), "state": "received"}
        redis.set(meta_key, json.dumps(meta), ex=DELIVERY_TTL_S)
