"""Dashboard and /metrics against the task count: the figures come from counters, not records.

Seeds finished tasks through the real TaskStore into two databases of a private redis-server,
a few tasks in one and twenty times as many in the other, serves each with the web app, asks
both in turn and prints the ratio (many / few) of the median of GET / and GET /metrics: it
should stay flat however many tasks there are.
`python bench/bench_dashboard.py [TASKS]`.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import verdict
from bot.app import create_app
from bot.settings import load_settings
from bot.store import TaskStore
from pipeline.models import ReviewAction, ReviewVerdict, TaskSpec, TaskState
from tests.doubles.server import ServerThread, free_port

TARGET_RATIO = 1.5  # 20 times the tasks may cost at most this much more per page
S = TaskState


def seed(store: TaskStore, start: int, stop: int) -> None:
    for n in range(start, stop):
        spec = TaskSpec(
            id=f"bench-{n}",
            installation_id=1,
            repo_full_name=f"octo/repo-{n % 7}",
            repo_id=n % 7,
            clone_url="http://x",
            default_branch="main",
            issue_number=n,
            issue_title=f"task {n}",
            spec="s",
            slug="s",
            branch=f"feature-crew/issue-{n}-s",
            requested_by="alice",
            delivery_id=f"d-{n}",
            created_at=time.time() - 60 * (n % 50),
        )
        store.create(spec)
        store.transition(spec.id, S.GENERATING, "routed", tier=1 + n % 3, model="m")
        store.transition(spec.id, S.AUDITING, "attempt 1", attempts=1, cost_usd=0.01 * (n % 9))
        store.transition(spec.id, S.REVIEWING, "PR open")
        verdict = ReviewVerdict(action=list(ReviewAction)[n % 2], reason="r")
        store.transition(spec.id, S.PR_OPEN, "reviewed", review=verdict)


def measure(few_url: str, many_url: str, path: str, rounds: int) -> tuple[float, float]:
    """Medians for both servers, asked in turn, so a busy machine slows both alike."""
    times: dict[str, list[float]] = {few_url: [], many_url: []}
    with httpx.Client() as client:
        for i in range(rounds + 5):
            for url, seen in times.items():
                start = time.perf_counter()
                assert client.get(f"{url}{path}").status_code == 200
                if i >= 5:  # warm-up
                    seen.append(time.perf_counter() - start)
    return statistics.median(times[few_url]), statistics.median(times[many_url])


def serve(url: str) -> ServerThread:
    os.environ.update(
        REDIS_URL=url, GITHUB_WEBHOOK_SECRET="s", GITHUB_APP_ID="1", GITHUB_PRIVATE_KEY="x"
    )
    return ServerThread(create_app(load_settings())).start()


def main(tasks: int) -> None:
    few = max(tasks // 20, 5)
    workdir, port = tempfile.mkdtemp(), free_port()
    server = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    few_url, many_url = f"redis://127.0.0.1:{port}/0", f"redis://127.0.0.1:{port}/1"
    results = {}
    try:
        time.sleep(0.3)
        for name in ("FEATURE_CREW_CONFIG", "FEATURE_CREW_DASHBOARD_TOKEN"):
            os.environ.pop(name, None)
        seed(TaskStore(redis.Redis.from_url(few_url)), 0, few)
        seed(TaskStore(redis.Redis.from_url(many_url)), 0, tasks)
        webs = serve(few_url), serve(many_url)
        for path in ("/", "/metrics"):
            results[path] = measure(webs[0].url, webs[1].url, path, 40)
        for web in webs:
            web.stop()
    finally:
        server.terminate()
    worst = 0.0
    for path, (before, after) in results.items():
        worst = max(worst, after / before)
        print(
            f"GET {path:<9} {few:>6} tasks {before * 1e3:6.2f} ms   "
            f"{tasks:>6} tasks {after * 1e3:6.2f} ms   ratio {after / before:.2f}x"
        )
    within = worst <= TARGET_RATIO
    growth = tasks // few
    print(f"ratio {worst:.2f}x at worst, {growth}x the tasks (target <= {TARGET_RATIO}x)")
    verdict("bench_dashboard", worst, TARGET_RATIO, within)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
