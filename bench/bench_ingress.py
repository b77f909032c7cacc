"""Ingress under load: `feature-crew web` against a bare HMAC + one Redis write, same run.

Both servers are started by this script as their own processes, each on one uvicorn process
(or `--workers N` for ours), on one redis-server of the script's own. Each level POSTs the
12 KB `issues.labeled` example, signed, with a fresh X-GitHub-Delivery per request, over 1, 16
and 64 keep-alive connections; then counts what reached the store (nothing lost, nothing
doubled). Rounds alternate which server goes first; figures are medians over rounds.
`python bench/bench_ingress.py [--requests N] [--rounds R] [--workers W]`.
"""

from __future__ import annotations

import argparse
import hmac
import os
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    ROOT,
    cpu_seconds,
    free_port,
    quantile,
    redis_server,
    verdict,
    wait_for_port,
)
from bench.loadgen import LoadResult, post_all
from bot.signature import signature_for

SECRET = b"bench-secret"
TARGET_RATIO = 0.6  # our throughput at 64 connections, as a share of the floor's
TARGET_P99_S = 0.050
PAYLOAD = ROOT / "tests/payloads/issues/labeled.payload.json"
EVENTS_KEY = "rq:queue:feature-crew-events"


def serve_floor(port: int, url: str) -> None:
    """The floor: read the body, check the HMAC, one Redis write, answer 202."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    client = redis.Redis.from_url(url)

    async def receive(request: Request) -> JSONResponse:
        body = await request.body()
        expected = signature_for(SECRET, body)
        if not hmac.compare_digest(expected, request.headers.get("x-hub-signature-256", "")):
            return JSONResponse({}, status_code=401)
        client.set(f"floor:{request.headers['x-github-delivery']}", body, nx=True, ex=3600)
        return JSONResponse({"status": "queued"}, status_code=202)

    app = Starlette(routes=[Route("/webhooks", receive, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def start_floor(url: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-floor", str(port), url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_for_port(port, proc)
    return proc, port


def start_ours(url: str, workers: int, home: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "FEATURE_CREW"))}
    env.update(
        PORT=str(port), REDIS_URL=url, GITHUB_WEBHOOK_SECRET=SECRET.decode(), GITHUB_APP_ID="1",
        GITHUB_PRIVATE_KEY="unused: the web process never calls GitHub",
        FEATURE_CREW_HOME=str(home),
    )  # fmt: skip
    args = ["--workers", str(workers)] if workers > 1 else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "web", *args], cwd=home, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:  # each of N processes imports the whole app: ~40 s for two on a loaded 2-core host
        wait_for_port(port, proc, timeout=30 + 30 * workers)
    except BaseException:
        proc.terminate()
        raise
    return proc, port


def deliveries(body: bytes, n: int, tag: str) -> list[tuple[dict[str, str], bytes]]:
    signature = signature_for(SECRET, body)
    headers = {
        "X-GitHub-Event": "issues",
        "X-Hub-Signature-256": signature,
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/bench",
    }
    return [({**headers, "X-GitHub-Delivery": f"{tag}-{i}"}, body) for i in range(n)]


def count_stored(client: redis.Redis, floor: bool) -> tuple[int, int]:
    """(distinct deliveries stored, extra copies queued), then empties the store."""
    if floor:
        stored, doubled = len(client.keys("floor:*")), 0
    else:
        ids = Counter(client.lrange(EVENTS_KEY, 0, -1))
        stored, doubled = len(ids), sum(ids.values()) - len(ids)
    client.flushall()
    return stored, doubled


def run_level(server: tuple[subprocess.Popen[bytes], int], client: redis.Redis, floor: bool,
              conns: int, n: int, tag: str) -> dict:  # fmt: skip
    proc, port = server
    body = PAYLOAD.read_bytes()
    post_all(port, "/webhooks", conns, deliveries(body, min(n, 50), f"warm-{tag}"))
    client.flushall()
    cpu = cpu_seconds(proc.pid)
    result: LoadResult = post_all(port, "/webhooks", conns, deliveries(body, n, tag))
    cpu = cpu_seconds(proc.pid) - cpu
    stored, doubled = count_stored(client, floor)
    lat = sorted(result.latencies)
    return {"rps": result.throughput, "cpu_ms": cpu / n * 1e3, "p50": quantile(lat, 0.5),
            "p99": quantile(lat, 0.99), "lost": n - stored, "doubled": doubled,
            "non202": n - result.statuses[202]}  # fmt: skip


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main(requests: int, rounds: int, levels: list[int], workers: int) -> None:
    with redis_server() as url, tempfile.TemporaryDirectory() as home:
        client = redis.Redis.from_url(url)
        floor = start_floor(url)
        try:
            ours = start_ours(url, workers, Path(home))
        except BaseException:
            floor[0].terminate()
            raise
        results: dict[tuple[str, int], list[dict]] = {}
        try:
            for r in range(rounds):
                for conns in levels:
                    order = [("floor", floor), ("ours", ours)]
                    for name, server in order[:: 1 if r % 2 == 0 else -1]:
                        run = run_level(
                            server, client, name == "floor", conns, requests, f"r{r}c{conns}"
                        )
                        results.setdefault((name, conns), []).append(run)
        finally:
            for proc, _ in (floor, ours):
                proc.terminate()
                proc.wait(timeout=20)
    report(results, levels, workers)


def report(results: dict[tuple[str, int], list[dict]], levels: list[int], workers: int) -> None:
    print(f"{'':<8}{'conns':>6}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'cpu ms/req':>11}"
          f"{'lost':>6}{'doubled':>8}")  # fmt: skip
    for conns in levels:
        for name in ("floor", "ours"):
            runs = results[(name, conns)]
            lost = sum(r["lost"] + r["non202"] for r in runs)
            print(f"{name:<8}{conns:>6}{median_of(runs, 'rps'):>9.0f}"
                  f"{median_of(runs, 'p50') * 1e3:>9.2f}{median_of(runs, 'p99') * 1e3:>9.2f}"
                  f"{median_of(runs, 'cpu_ms'):>11.3f}"
                  f"{lost:>6}{sum(r['doubled'] for r in runs):>8}")  # fmt: skip
        ratio = median_of(results[("ours", conns)], "rps") / median_of(
            results[("floor", conns)], "rps"
        )
        print(f"{'':<8}{conns:>6}  throughput ratio {ratio:.2f}x the floor")
    top = levels[-1]
    ours = results[("ours", top)]
    ratio = median_of(ours, "rps") / median_of(results[("floor", top)], "rps")
    intact = all(
        r["lost"] == r["non202"] == r["doubled"] == 0 for runs in results.values() for r in runs
    )
    p99 = median_of(ours, "p99")
    print(f"at {top} connections, {workers} web process(es): ratio {ratio:.2f} (target >= "
          f"{TARGET_RATIO}), p99 {p99 * 1e3:.1f} ms (target < {TARGET_P99_S * 1e3:.0f} ms), "
          f"store {'intact' if intact else 'LOST OR DOUBLED DELIVERIES'}")  # fmt: skip
    verdict(
        "bench_ingress",
        ratio,
        TARGET_RATIO,
        ratio >= TARGET_RATIO and p99 < TARGET_P99_S and intact,
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve-floor"]:
        serve_floor(int(sys.argv[2]), sys.argv[3])
        sys.exit(0)
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000, help="per level and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", default="1,16,64")
    parser.add_argument("--workers", type=int, default=1, help="web processes for ours")
    a = parser.parse_args()
    main(a.requests, a.rounds, [int(c) for c in a.connections.split(",")], a.workers)
