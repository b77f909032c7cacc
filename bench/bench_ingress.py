"""Ingress: POST /webhooks against its floor, a bare HMAC check + one Redis write.

Both endpoints run under uvicorn on loopback and take the same signed deliveries, sent one at
a time from one client. Prints the median and p95 latency of each and the ratio; the floor
for the ratio is a target, not a test: `python bench/bench_ingress.py [N]`.
"""

from __future__ import annotations

import hmac
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.app import create_app
from bot.settings import load_settings
from bot.signature import signature_for
from tests.doubles.server import ServerThread, free_port

SECRET = b"bench-secret"
TARGET_RATIO = 3.0  # our route may cost at most this many times the bare floor
PAYLOAD = Path(__file__).resolve().parents[1] / "tests/payloads/issues/labeled.payload.json"


def floor_app(url: str) -> Starlette:
    client = redis.Redis.from_url(url)

    async def receive(request: Request) -> JSONResponse:
        body = await request.body()
        expected = signature_for(SECRET, body)
        if not hmac.compare_digest(expected, request.headers.get("x-hub-signature-256", "")):
            return JSONResponse({}, status_code=401)
        client.set(f"floor:{request.headers['x-github-delivery']}", body, nx=True, ex=3600)
        return JSONResponse({"status": "queued"}, status_code=202)

    return Starlette(routes=[Route("/webhooks", receive, methods=["POST"])])


def measure(url: str, body: bytes, n: int) -> list[float]:
    times = []
    with httpx.Client(base_url=url) as client:
        for i in range(n + 20):
            headers = {
                "X-GitHub-Event": "issues",
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-Hub-Signature-256": signature_for(SECRET, body),
                "Content-Type": "application/json",
            }
            start = time.perf_counter()
            response = client.post("/webhooks", content=body, headers=headers)
            elapsed = time.perf_counter() - start
            assert response.status_code == 202, response.text
            if i >= 20:  # warm-up
                times.append(elapsed)
    return times


def main(n: int) -> None:
    workdir = tempfile.mkdtemp()
    port = free_port()
    server = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        time.sleep(0.3)
        os.environ.update(
            REDIS_URL=url,
            GITHUB_WEBHOOK_SECRET=SECRET.decode(),
            GITHUB_APP_ID="1",
            GITHUB_PRIVATE_KEY="unused: the web process never calls GitHub",
        )
        os.environ.pop("FEATURE_CREW_CONFIG", None)
        body = PAYLOAD.read_bytes()
        ours_srv = ServerThread(create_app(load_settings())).start()
        floor_srv = ServerThread(floor_app(url)).start()
        ours = measure(ours_srv.url, body, n)
        floor = measure(floor_srv.url, body, n)
        ours_srv.stop()
        floor_srv.stop()
    finally:
        server.terminate()
    for name, t in (("floor (HMAC + SET)", floor), ("POST /webhooks", ours)):
        p95 = statistics.quantiles(t, n=20)[-1]
        print(f"{name:<20} median {statistics.median(t) * 1e3:6.2f} ms  p95 {p95 * 1e3:6.2f} ms")
    ratio = statistics.median(ours) / statistics.median(floor)
    verdict = "within" if ratio <= TARGET_RATIO else "OVER"
    print(f"ratio {ratio:.2f}x the floor (target <= {TARGET_RATIO:.1f}x): {verdict}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
