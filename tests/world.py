"""A whole world for end-to-end tests: GitHub double, model doubles, the web app, a worker."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer

from bot import jobs
from bot.app import create_app
from bot.follow import BurstWorker
from bot.queue import ALL_QUEUES, EVENTS, rq_redis
from bot.settings import Settings
from bot.store import TaskStore
from tests.doubles.github import GitHubDouble
from tests.doubles.models import AnthropicDouble, OpenAIDouble
from tests.doubles.server import ServerThread
from tests.helpers import SECRET, settings_with

ROOT = Path(__file__).resolve().parents[1]
REPO = "octo-org/hello"
FILES = {
    "hello.py": 'def hello() -> str:\n    return "hello"\n',
    "tests/test_hello.py": "from hello import hello\n\n\ndef test_hello() -> None:\n"
    '    assert hello() == "hello"\n',
    "pyproject.toml": '[tool.pytest.ini_options]\npythonpath = ["."]\n',
}


@dataclass
class World:
    github: GitHubDouble
    anthropic: AnthropicDouble
    openai: OpenAIDouble
    settings: Settings
    web: ServerThread
    redis_url: str

    @property
    def store(self) -> TaskStore:
        return TaskStore(rq_redis(self.redis_url))

    def work(self, rounds: int = 10) -> None:
        """Run the worker in burst mode until no job and no webhook is left in flight."""
        redis = rq_redis(self.redis_url)
        queues = [Queue(q, connection=redis, serializer=JSONSerializer) for q in ALL_QUEUES]
        for _ in range(rounds):
            self.github.wait_for_deliveries(timeout=10)
            if not any(q.count for q in queues):
                time.sleep(0.2)
                self.github.wait_for_deliveries(timeout=10)
                if not any(q.count for q in queues):
                    return
            BurstWorker(queues, connection=redis, serializer=JSONSerializer).work(burst=True)
        raise AssertionError("queues never drained")

    @contextmanager
    def worker_process(self) -> Iterator[subprocess.Popen[bytes]]:
        """A real `feature-crew worker` in its own process group, killed on exit."""
        worker = subprocess.Popen(
            [sys.executable, "-m", "bot", "worker"],
            cwd=ROOT,
            env=dict(os.environ),
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            yield worker
        finally:
            # RQ's work horse calls setsid() and the audit's tools get their own session too:
            # a process group kill would leave them running the job. Kill the whole tree.
            for pid in descendants(worker.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=30)

    def busy(self) -> bool:
        """Whether any job is queued or running."""
        redis = rq_redis(self.redis_url)
        for name in ALL_QUEUES:
            queue = Queue(name, connection=redis, serializer=JSONSerializer)
            if queue.count or StartedJobRegistry(queue=queue).get_job_ids():
                return True
        return False

    def work_events(self) -> None:
        """Handle queued deliveries only, as a second worker would while the first is busy."""
        self.github.wait_for_deliveries(timeout=10)
        redis = rq_redis(self.redis_url)
        events = Queue(EVENTS, connection=redis, serializer=JSONSerializer)
        BurstWorker([events], connection=redis, serializer=JSONSerializer).work(burst=True)

    def release_scheduled(self) -> int:
        """Move every scheduled job (RQ retries with a delay) to its queue now; not the daily
        retention pass, which every worker start and every pass schedules."""
        redis = rq_redis(self.redis_url)
        released = 0
        for name in ALL_QUEUES:
            queue = Queue(name, connection=redis, serializer=JSONSerializer)
            registry = ScheduledJobRegistry(queue=queue)
            for job_id in registry.get_jobs_to_schedule(timestamp=int(time.time()) + 10**7):
                if job_id.startswith("tidy-"):
                    continue  # the daily retention pass, not a retry
                job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
                registry.remove(job)
                queue.enqueue_job(job)
                released += 1
        return released

    def issue(self, title: str, body: str = "", labels: list[str] | None = None) -> int:
        return self.github.add_issue(REPO, title=title, body=body, user="alice", labels=labels)

    def label(self, number: int, sender: str = "alice", label: str = "feature-crew") -> Any:
        return self.github.label_issue(REPO, number, label, sender=sender)


def build_world(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch, config: str = ""
) -> Iterator[World]:
    github = GitHubDouble(tmp_path / "github", app_slug="feature-crew-test", app_id=4242)
    github.start()
    installation = github.add_installation(account="octo-org")
    github.add_repo("octo-org", "hello", files=FILES, installation_id=installation)
    github.add_user("alice", permission_on={REPO: "write"})
    github.add_user("mallory", permission_on={REPO: "read"})
    anthropic, openai = AnthropicDouble().start(), OpenAIDouble().start()
    env = {
        "REDIS_URL": redis_url,
        "GITHUB_APP_ID": str(github.app_id),
        "GITHUB_PRIVATE_KEY": github.private_key_pem,
        "GITHUB_WEBHOOK_SECRET": SECRET,
        "GITHUB_API_URL": github.api_url,
        "ANTHROPIC_API_KEY": "test-anthropic-key",
        "ANTHROPIC_BASE_URL": anthropic.base_url,
        "OPENAI_API_KEY": "test-openai-key",
        "OPENAI_BASE_URL": openai.base_url,
        "FEATURE_CREW_HOME": str(tmp_path / "home"),
    }
    settings = settings_with(monkeypatch, env, config=config, tmp_path=tmp_path)
    jobs.configure(settings)
    web = ServerThread(create_app(settings)).start()
    github.set_webhook(f"{web.url}/webhooks", SECRET)
    try:
        yield World(github, anthropic, openai, settings, web, redis_url)
    finally:
        web.stop()
        anthropic.stop()
        openai.stop()
        github.stop()


def descendants(root: int) -> list[int]:
    """Every live process under `root`, found through /proc (children before their parents)."""
    parents: dict[int, int] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError):
            ppid = next(ln for ln in status.read_text().splitlines() if ln.startswith("PPid:"))
            parents[int(status.parent.name)] = int(ppid.split()[1])
    found, frontier = [], [root]
    while frontier:
        children = [pid for pid, ppid in parents.items() if ppid in frontier]
        found.extend(children)
        frontier = children
    return found


def stop_worker(proc: subprocess.Popen[bytes], grace_s: float = 60) -> None:
    """SIGTERM to the worker's group (a warm shutdown, as an operator stops it), then, past
    the grace, SIGKILL to its whole tree: a worker left finishing a job would take the next
    test's jobs from the same Redis. Its horses have process groups of their own."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        for pid in [*descendants(proc.pid), proc.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=30)


def wait_for(condition: Callable[[], object], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never met"
        time.sleep(0.05)
