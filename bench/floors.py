"""The floors a task's overhead is held against: raw pygit2, direct githubkit, a no-op RQ job."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pygit2
from githubkit import AppAuthStrategy, AppInstallationAuthStrategy, GitHub
from githubkit.cache import MemCacheStrategy
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from bench.common import ROOT
from bench.stand import REPO, Stand
from bot.queue import rq_redis


def _client_options(base_url: str) -> dict[str, Any]:
    # As bot/github.py builds its clients (but for its shared pool: `with client` below).
    return {"base_url": base_url, "auto_retry": False, "http_cache": False,
            "cache_strategy": MemCacheStrategy(), "timeout": 30.0, "user_agent": "feature-crew",
            "rest_api_validate_body": False}  # fmt: skip


def _installation_client(stand: Stand) -> tuple[GitHub[AppInstallationAuthStrategy], str]:
    gh = stand.github
    app_auth = AppAuthStrategy(str(gh.app_id), gh.private_key_pem)
    app = GitHub(app_auth, **_client_options(gh.api_url))
    (installation,) = app.rest.apps.list_installations().parsed_data
    token = app.rest.apps.create_installation_access_token(installation.id).parsed_data.token
    auth = AppInstallationAuthStrategy(str(gh.app_id), gh.private_key_pem, installation.id)
    client = GitHub(auth, **_client_options(gh.api_url))
    return client, token


def github_calls(stand: Stand, calls: list[tuple[str, str]]) -> float:
    """The API calls a task made, made directly: GETs as recorded; writes as comment writes."""
    client, _ = _installation_client(stand)
    number = stand.github.add_issue(REPO, "floor", "floor", user="alice")
    base = f"/repos/{REPO}/issues"
    client.request("GET", f"/repos/{REPO}")  # the token is minted once, like the bot's
    start = time.perf_counter()
    comment_id = None
    with client:  # githubkit's way to keep one connection for many calls, as the bot's pool
        for method, path in calls:
            if method == "GET":
                client.request("GET", path)
            elif method == "POST" or comment_id is None:
                made = client.request("POST", f"{base}/{number}/comments", json={"body": "x"})
                comment_id = made.json()["id"]
            else:
                client.request("PATCH", f"{base}/comments/{comment_id}", json={"body": "y"})
    return time.perf_counter() - start


def git_steps(stand: Stand, n: int) -> float:
    """Fetch into a bare mirror, a worktree on a new branch, one commit, one push: pygit2 only."""
    _, token = _installation_client(stand)
    url = f"{stand.github.url}/{REPO}.git"
    callbacks = pygit2.RemoteCallbacks(credentials=pygit2.UserPass("x-access-token", token))
    work = Path(tempfile.mkdtemp(prefix="bench-floor-"))
    mirror = pygit2.clone_repository(url, str(work / "mirror.git"), bare=True, callbacks=callbacks)
    start = time.perf_counter()
    mirror.remotes["origin"].fetch(callbacks=callbacks)
    ref = "refs/remotes/origin/main"
    base = mirror.references[ref if ref in mirror.references else "refs/heads/main"]
    branch = mirror.branches.local.create(f"floor-{n}", base.peel(pygit2.Commit))
    mirror.add_worktree(f"floor-{n}", str(work / "tree"), branch)
    tree = pygit2.Repository(str(work / "tree"))
    (work / "tree" / f"floor_{n}.py").write_text(f"FLOOR = {n}\n")
    tree.index.add(f"floor_{n}.py")
    tree.index.write()
    sig = pygit2.Signature("floor", "floor@example.com")
    tree.create_commit("HEAD", sig, sig, "floor", tree.index.write_tree(), [tree.head.target])
    tree.remotes["origin"].push([f"refs/heads/floor-{n}"], callbacks=callbacks)
    return time.perf_counter() - start


def rq_pickup(stand: Stand, jobs: int = 5) -> float:
    """Median enqueue-to-start of a no-op job on a plain `rq worker` process (it forks too)."""
    worker = subprocess.Popen(
        [sys.executable, "-m", "rq.cli", "worker", "--url", stand.redis_url, "--serializer",
         "rq.serializers.JSONSerializer", "--path", str(ROOT), "bench-noop"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    redis = rq_redis(stand.redis_url)
    queue = Queue("bench-noop", connection=redis, serializer=JSONSerializer)
    waits = []
    try:
        queue.enqueue("bench.noop.noop")
        _started_after_enqueue(queue.enqueue("bench.noop.noop"))  # started and warm
        time.sleep(0.5)  # blocked on its queue again
        for _ in range(jobs):
            job = queue.enqueue("bench.noop.noop")
            waits.append(_started_after_enqueue(job))
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            # RQ's stock worker can wait out its pubsub thread's 60 s read on stopping (our
            # workers do not: bot/unsubscribe.py); its figures are in, so it may be killed.
            worker.kill()
            worker.wait(timeout=10)
    return statistics.median(waits)


def _started_after_enqueue(job: Job, timeout: float = 30) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh()
        if job.started_at and job.enqueued_at:
            return (job.started_at - job.enqueued_at).total_seconds()
        time.sleep(0.01)
    raise RuntimeError(f"job {job.id} never started")


def pickup_of(redis_url: str, job_id: str) -> tuple[float, str] | None:
    """Enqueue-to-start of one of our jobs and the worker that ran it, if RQ still holds it."""
    try:
        job = Job.fetch(job_id, connection=rq_redis(redis_url), serializer=JSONSerializer)
    except Exception:
        return None
    if job.started_at and job.enqueued_at:
        return (job.started_at - job.enqueued_at).total_seconds(), job.worker_name or ""
    return None
