"""POST /webhooks, /health and /metrics over real HTTP, against a real Redis."""

from __future__ import annotations

import json
import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import redis
from rq import Queue
from rq.serializers import JSONSerializer
from rq.utils import utcformat, utcparse

from bot.app import create_app
from bot.queue import EVENTS
from bot.signature import signature_for
from tests.conftest import RedisServer
from tests.doubles.server import ServerThread, free_port
from tests.helpers import SECRET, example, settings_with, signed


@pytest.fixture
def web(
    clean_env: None, redis_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[httpx.Client]:
    settings = settings_with(
        monkeypatch,
        {
            "REDIS_URL": redis_url,
            "GITHUB_WEBHOOK_SECRET": SECRET,
            "GITHUB_APP_ID": "1",
            "GITHUB_PRIVATE_KEY": "not used: the web process never calls GitHub",
        },
        config="[server]\nmax_body_bytes = 65536\n",
        tmp_path=tmp_path,
    )
    server = ServerThread(create_app(settings)).start()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client
    server.stop()


def _events_queue(redis_client: redis.Redis) -> Queue:
    return Queue(EVENTS, connection=redis_client, serializer=JSONSerializer)


def test_signed_delivery_is_recorded_and_queued(
    web: httpx.Client, redis_client: redis.Redis
) -> None:
    headers, body = signed("issues", example("issues/labeled"), delivery="d-1")
    response = web.post("/webhooks", content=body, headers=headers)
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert redis_client.get("fc:delivery:d-1:payload") == body
    assert _events_queue(redis_client).job_ids == ["event-d-1"]


def test_redelivery_of_the_same_id_is_not_queued_twice(
    web: httpx.Client, redis_client: redis.Redis
) -> None:
    headers, body = signed("issues", example("issues/labeled"), delivery="d-2")
    first = web.post("/webhooks", content=body, headers=headers)
    second = web.post("/webhooks", content=body, headers=headers)
    assert (first.json()["status"], second.json()["status"]) == ("queued", "duplicate")
    assert _events_queue(redis_client).count == 1
    assert 3 * 86400 <= redis_client.ttl("fc:delivery:d-2") <= 4 * 86400


def test_a_claim_left_by_a_crash_is_finished_by_the_redelivery(
    web: httpx.Client, redis_client: redis.Redis
) -> None:
    redis_client.set(
        "fc:delivery:d-3", '{"event": "issues", "action": "labeled", "state": "received"}'
    )
    headers, body = signed("issues", example("issues/labeled"), delivery="d-3")
    response = web.post("/webhooks", content=body, headers=headers)
    assert response.json()["status"] == "queued"
    assert _events_queue(redis_client).job_ids == ["event-d-3"]


@pytest.mark.parametrize(
    "mangle",
    [
        lambda h: h.pop("X-Hub-Signature-256"),
        lambda h: h.update({"X-Hub-Signature-256": "sha256=" + "0" * 64}),
        lambda h: h.update({"X-Hub-Signature-256": h.pop("X-Hub-Signature-256").upper()}),
        lambda h: h.update({"X-Hub-Signature-256": "sha1=abc"}),
    ],
    ids=["missing", "wrong", "mangled", "sha1-only"],
)
def test_bad_signatures_are_refused_with_401(
    web: httpx.Client, redis_client: redis.Redis, mangle: object
) -> None:
    headers, body = signed("issues", example("issues/labeled"))
    mangle(headers)  # type: ignore[operator]
    response = web.post("/webhooks", content=body, headers=headers)
    assert response.status_code == 401
    assert _events_queue(redis_client).count == 0


def test_a_signature_made_with_another_secret_is_refused(web: httpx.Client) -> None:
    headers, body = signed("issues", example("issues/labeled"), secret="other")
    assert web.post("/webhooks", content=body, headers=headers).status_code == 401


def test_oversized_body_is_413_before_anything_else(web: httpx.Client) -> None:
    body = b'{"x": "' + b"a" * 70000 + b'"}'
    headers, _ = signed("issues", body)
    assert web.post("/webhooks", content=body, headers=headers).status_code == 413


def test_malformed_json_is_400(web: httpx.Client) -> None:
    headers, body = signed("issues", b"{not json")
    assert web.post("/webhooks", content=body, headers=headers).status_code == 400
    headers, body = signed("issues", b"[1, 2]")
    assert web.post("/webhooks", content=body, headers=headers).status_code == 400


def test_missing_delivery_header_is_400(web: httpx.Client) -> None:
    headers, body = signed("issues", example("issues/labeled"))
    del headers["X-GitHub-Delivery"]
    assert web.post("/webhooks", content=body, headers=headers).status_code == 400


def test_events_without_a_handler_are_accepted_and_ignored(
    web: httpx.Client, redis_client: redis.Redis
) -> None:
    headers, body = signed("ping", {"zen": "Keep it logically awesome.", "hook_id": 1})
    response = web.post("/webhooks", content=body, headers=headers)
    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    assert _events_queue(redis_client).count == 0


def test_no_secret_configured_refuses_every_delivery(
    clean_env: None, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_with(monkeypatch, {"REDIS_URL": redis_url})
    with httpx.Client(base_url=(srv := ServerThread(create_app(settings)).start()).url) as c:
        headers, body = signed("issues", example("issues/labeled"))
        response = c.post("/webhooks", content=body, headers=headers)
        unsigned = c.post("/webhooks", content=body, headers={"X-GitHub-Event": "issues"})
        page = c.get("/")
    srv.stop()
    assert response.status_code == 503
    assert unsigned.status_code == 503
    assert "Setup needed" in page.text


def test_redis_down_is_503_and_health_says_so(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings = settings_with(monkeypatch, {"REDIS_URL": dead, "GITHUB_WEBHOOK_SECRET": SECRET})
    srv = ServerThread(create_app(settings)).start()
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        headers, body = signed("issues", example("issues/labeled"))
        assert c.post("/webhooks", content=body, headers=headers).status_code == 503
        health = c.get("/health")
    srv.stop()
    assert health.status_code == 503
    assert health.json()["status"] == "error"


def test_health_reports_each_dependency(web: httpx.Client) -> None:
    response = web.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["redis"] == "ok"
    assert set(body["queues"]) == {
        "feature-crew-events",
        "feature-crew-reviews",
        "feature-crew-tasks",
        "feature-crew-tasks-tier-1",
        "feature-crew-tasks-tier-2",
        "feature-crew-tasks-tier-3",
    }


def test_metrics_count_deliveries_by_outcome(web: httpx.Client) -> None:
    headers, body = signed("issues", example("issues/labeled"))
    web.post("/webhooks", content=body, headers=headers)
    headers["X-Hub-Signature-256"] = signature_for(b"wrong", body)
    web.post("/webhooks", content=body, headers=headers)
    text = web.get("/metrics").text
    assert 'feature_crew_webhook_deliveries_total{event="issues",outcome="queued"} 1.0' in text
    assert 'outcome="refused"} 1.0' in text
    assert "feature_crew_queue_depth" in text


def test_without_app_credentials_deliveries_are_refused(
    clean_env: None, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_with(monkeypatch, {"REDIS_URL": redis_url, "GITHUB_WEBHOOK_SECRET": SECRET})
    srv = ServerThread(create_app(settings)).start()
    with httpx.Client(base_url=srv.url) as c:
        headers, body = signed("issues", example("issues/labeled"))
        response = c.post("/webhooks", content=body, headers=headers)
        page = c.get("/")
    srv.stop()
    assert response.status_code == 503
    assert "GITHUB_APP_ID" in page.text


def test_the_web_process_recovers_when_redis_comes_back(
    web: httpx.Client, redis_server: RedisServer
) -> None:
    headers, body = signed("issues", example("issues/labeled"))
    redis_server.stop()
    try:
        assert web.post("/webhooks", content=body, headers=headers).status_code == 503
        assert web.get("/health").status_code == 503
    finally:
        redis_server.start()
    # The same delivery, redelivered by GitHub after the outage, is accepted and queued.
    response = web.post("/webhooks", content=body, headers=headers)
    assert response.status_code == 202 and response.json()["status"] == "queued"
    assert web.get("/health").status_code == 200


def test_recording_and_queueing_a_delivery_takes_one_round_trip(redis_url: str) -> None:
    from redis.connection import Connection

    from bot.deliveries import Recorded, record_and_queue
    from bot.queue import TaskQueue
    from pipeline.config import WorkerConfig

    sent: list[int] = []

    class Counting(Connection):
        def send_packed_command(self, command, check_health=True):  # type: ignore[no-untyped-def]
            sent.append(1)
            return super().send_packed_command(command, check_health)

    client = redis.Redis.from_url(redis_url, connection_class=Counting)
    queue = TaskQueue(client, WorkerConfig())
    body = json.dumps(example("issues/labeled")).encode()
    # The first delivery of a process also loads the script once (NOSCRIPT, then EVAL).
    record_and_queue(client, queue, delivery_id="rt-0", event="issues", action="x", body=body)
    sent.clear()
    outcome = record_and_queue(
        client, queue, delivery_id="rt-1", event="issues", action="labeled", body=body
    )
    assert outcome is Recorded.QUEUED
    assert len(sent) == 1  # one script: claim, job, queue push, payload, record


def test_concurrent_posts_of_one_delivery_queue_it_once(
    web: httpx.Client, redis_client: redis.Redis
) -> None:
    headers, body = signed("issues", example("issues/labeled"), delivery="d-race")
    start = threading.Barrier(8)

    def post(_: int) -> str:
        with httpx.Client(base_url=str(web.base_url), timeout=10) as client:
            start.wait()
            return str(client.post("/webhooks", content=body, headers=headers).json()["status"])

    for _ in range(5):  # the race is narrow: give it several chances
        redis_client.flushall()
        with ThreadPoolExecutor(8) as pool:
            outcomes = sorted(pool.map(post, range(8)))
        assert outcomes == ["duplicate"] * 7 + ["queued"]
        assert _events_queue(redis_client).job_ids == ["event-d-race"]


def test_a_queued_delivery_job_is_the_hash_rq_saves(redis_client: redis.Redis) -> None:
    from rq.job import Job

    from bot.deliveries import record_and_queue
    from bot.queue import TaskQueue
    from pipeline.config import WorkerConfig

    queue = TaskQueue(redis_client, WorkerConfig())
    record_and_queue(
        redis_client, queue, delivery_id="d-hash", event="issues", action="x", body=b"{}"
    )
    saved = redis_client.hgetall("rq:job:event-d-hash")
    rqs = queue.delivery_job("d-hash").to_dict()
    encoder = redis_client.get_encoder()  # as redis-py sends RQ's own save
    as_redis = {k.encode(): encoder.encode(v) for k, v in rqs.items()}
    # The script stores the call uncompressed (Lua has no zlib), which RQ reads as well.
    as_redis[b"data"] = zlib.decompress(as_redis[b"data"])
    stamps = (b"created_at", b"enqueued_at")
    assert {k: v for k, v in saved.items() if k not in stamps} == {
        k: v for k, v in as_redis.items() if k not in stamps and v != b""
    }
    assert saved[b"created_at"] == saved[b"enqueued_at"]
    utcparse(saved[b"created_at"].decode())  # RQ's own format
    job = Job.fetch("event-d-hash", connection=redis_client, serializer=JSONSerializer)
    assert (job.func_name, job.args, job.retries_left) == (
        "bot.jobs.handle_delivery",
        ["d-hash"],
        3,
    )


@pytest.mark.parametrize(
    "moment",
    ["1970-01-01T00:00:00.000000", "2000-02-29T23:59:59.999999", "2024-12-31T12:34:56.000001",
     "2026-03-01T00:00:00.500000", "2100-03-01T01:02:03.040506", "2399-12-31T23:59:59.000000"],
)  # fmt: skip
def test_the_scripts_clock_writes_rqs_timestamps(redis_client: redis.Redis, moment: str) -> None:
    from bot.claim_script import UTC_STAMP

    at = datetime.fromisoformat(moment).replace(tzinfo=UTC)
    seconds = int(at.timestamp())
    stamp = redis_client.eval(
        UTC_STAMP + "return utc_stamp(tonumber(ARGV[1]), tonumber(ARGV[2]))",
        0, seconds, at.microsecond,
    )  # fmt: skip
    assert stamp.decode() == utcformat(at)


def test_concurrent_distinct_deliveries_are_each_queued_once(
    web: httpx.Client, redis_client: redis.Redis
) -> None:
    # Posted at once, they share the web process's round trips to Redis (bot/script_batch.py).
    payload = example("issues/labeled")
    start = threading.Barrier(16)

    def post(i: int) -> str:
        headers, body = signed("issues", payload, delivery=f"d-many-{i}")
        with httpx.Client(base_url=str(web.base_url), timeout=10) as client:
            start.wait()
            answers = [client.post("/webhooks", content=body, headers=headers) for _ in range(2)]
            return ",".join(str(a.json()["status"]) for a in answers)

    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(post, range(16)))
    assert outcomes == ["queued,duplicate"] * 16
    assert sorted(_events_queue(redis_client).job_ids) == sorted(
        f"event-d-many-{i}" for i in range(16)
    )
    assert all(redis_client.get(f"fc:delivery:d-many-{i}:payload") for i in range(16))
