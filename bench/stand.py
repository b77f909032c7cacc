"""A whole stand for the task benchmarks: GitHub and model doubles, web app, real workers.

The repository is a real project (a PyPI sdist through tests/realprojects.py), optionally
grown to N copies of its files and M commits of history, pushed into the GitHub double's git
remote. Workers are real `feature-crew worker` processes; the web app runs in this process.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import ROOT, redis_server
from bot import jobs
from bot.app import create_app
from bot.queue import rq_redis
from bot.settings import load_settings
from bot.store import TaskStore
from pipeline.generate import EDIT_TOOL_NAME
from pipeline.labels import tier_label
from pipeline.models import TERMINAL_STATES, TaskRecord
from tests.doubles.git_http import commit_files
from tests.doubles.github import GitHubDouble
from tests.doubles.models import AnthropicDouble, Turn, text_turn, tool_turn
from tests.doubles.server import ServerThread
from tests.helpers import SECRET
from tests.realprojects import INFLECT, Sdist, unpack_as_repo

OWNER, NAME = "bench-org", "project"
REPO = f"{OWNER}/{NAME}"
GENERATOR, REVIEWER = "claude-sonnet-5-5", "claude-haiku-5-5"
_SKIP = {".git"}


def project_files(sdist: Sdist, copies: int = 1) -> dict[str, str]:
    """The sdist's text files; copies > 1 adds them again under docs/copies/<n>/ as plain text."""
    with tempfile.TemporaryDirectory() as tmp:
        repo = unpack_as_repo(sdist, Path(tmp) / "repo")
        files: dict[str, str] = {}
        for path in sorted(repo.rglob("*")):
            rel = path.relative_to(repo)
            if path.is_file() and not any(p in _SKIP or p.endswith(".egg-info") for p in rel.parts):
                try:
                    files[str(rel)] = path.read_text()
                except UnicodeDecodeError:
                    continue
    # Copies are .txt so the project's own tests and tools see the same project, only bigger,
    # and live under docs/, which setuptools' flat-layout discovery skips: a top-level copies/
    # made the audit's `pip install -e .[test]` refuse "multiple top-level packages".
    originals = dict(files)
    for n in range(1, copies):
        # Each copy differs by a line, so git stores distinct blobs, not one shared object.
        files.update(
            {f"docs/copies/{n}/{k}.txt": f"{v}\n# copy {n}\n" for k, v in originals.items()}
        )
    return files


def change_turns(n: int, delay_s: float = 0.0) -> tuple[list[Turn], list[Turn]]:
    """The generator adds one small module; the reviewer approves."""
    module = f"bench_note_{n}.py"
    code = f'"""A note added by task {n}."""\n\nNOTE = {n}\n'
    writes = [
        tool_turn(EDIT_TOOL_NAME, {"command": "view", "path": "README.rst"}, delay_s=delay_s),
        tool_turn(
            EDIT_TOOL_NAME,
            {"command": "create", "path": module, "file_text": code},
            delay_s=delay_s,
        ),
        text_turn(f"Added {module}.", delay_s=delay_s),
    ]
    verdict = {"action": "approve", "reason": "Adds the note.", "feedback": "Fine."}
    return writes, [tool_turn("submit_verdict", verdict, delay_s=delay_s)]


@dataclass
class Stand:
    github: GitHubDouble
    anthropic: AnthropicDouble
    redis_url: str
    home: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def bare(self) -> Path:
        return self.github.git_root / OWNER / f"{NAME}.git"

    def start_workers(self, count: int) -> None:
        for _ in range(count):
            self.workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "bot", "worker"],
                    cwd=ROOT,
                    env=dict(os.environ),
                    start_new_session=True,
                    stdout=subprocess.DEVNULL,
                    stderr=(self.home.parent / "workers.log").open("ab"),
                )
            )

    def stop_workers(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self.workers.clear()

    def open_issue(self, n: int, delay_s: float = 0.0) -> int:
        writes, approves = change_turns(n, delay_s)
        title = f"Add a note module {n}"
        # Keyed on the title, so concurrent tasks each get their own turns.
        self.anthropic.script(GENERATOR, writes, when=f"bench_note_{n}.py")
        self.anthropic.script(REVIEWER, approves, when=f"bench_note_{n}.py")
        return self.github.add_issue(REPO, title, f"Add `bench_note_{n}.py` with NOTE = {n}.",
                                     user="alice", labels=[tier_label(2)])  # fmt: skip

    def label(self, number: int) -> str:
        """Add the trigger label; the delivery's id."""
        return self.github.label_issue(REPO, number, "feature-crew", sender="alice") or ""

    def reviewed(self, number: int) -> bool:
        with self.github.state.lock:
            for pull in self.github.state.open_pulls(REPO):
                if pull.head_ref.startswith(f"feature-crew/issue-{number}-"):
                    return bool(self.github.state.reviews_on(REPO, pull.number))
        return False

    def run_task(self, number: int, timeout: float = 600) -> tuple[float, str]:
        """Label the issue and wait for the review on its PR: the seconds, the delivery id."""
        start = time.perf_counter()
        delivery = self.label(number)
        self.wait_reviewed([number], timeout)
        return time.perf_counter() - start, delivery

    def wait_reviewed(self, numbers: list[int], timeout: float = 600) -> None:
        pending = set(numbers)

        def done(_: object) -> bool:
            # Only the issues still waiting, 20 times a second: each look scans the double's
            # pulls and reviews under its lock, which its request handlers wait for.
            pending.difference_update([n for n in pending if self.reviewed(n)])
            return not pending

        deadline = time.monotonic() + timeout
        while not self.github.wait_until(done, timeout=1.0, interval=0.05):
            # A task that ended without a review (e.g. "could not audit") fails the run now
            # instead of after the whole timeout.
            ended = [n for n in numbers if not self.reviewed(n) and self._ended(n)]
            if ended or time.monotonic() > deadline:
                self.show_worker_log()
                why = f"ended without a review: {ended}" if ended else f"within {timeout} s"
                raise RuntimeError(f"issues {numbers} not all reviewed; {why}")

    def _ended(self, number: int) -> bool:
        try:
            return self.record(number).progress.state in TERMINAL_STATES
        except RuntimeError:
            return False

    def show_worker_log(self) -> None:
        log = self.home.parent / "workers.log"
        if log.exists():
            print(log.read_text(errors="replace")[-3000:], file=sys.stderr)

    def wait_idle(self, timeout: float = 120) -> None:
        """Until no job is queued or running: the last task's review job ends after the review."""
        from rq import Queue
        from rq.registry import StartedJobRegistry
        from rq.serializers import JSONSerializer

        from bot.queue import ALL_QUEUES

        redis = rq_redis(self.redis_url)
        queues = [Queue(q, connection=redis, serializer=JSONSerializer) for q in ALL_QUEUES]
        deadline = time.monotonic() + timeout
        while any(q.count or StartedJobRegistry(queue=q).get_job_ids() for q in queues):
            if time.monotonic() > deadline:
                raise RuntimeError("jobs still running")
            time.sleep(0.05)
        time.sleep(0.5)  # the worker back in its blocking pop

    def wait_for_workers(self, count: int, timeout: float = 60) -> None:
        from rq import Worker

        deadline = time.monotonic() + timeout
        # Each `feature-crew worker` registers itself and its events sidecar.
        while len(Worker.all(connection=rq_redis(self.redis_url))) < 2 * count:
            if time.monotonic() > deadline:
                self.show_worker_log()
                raise RuntimeError("workers did not start")
            time.sleep(0.1)

    def record(self, number: int) -> TaskRecord:
        for record in TaskStore(rq_redis(self.redis_url)).recent(200):
            if record.spec.issue_number == number:
                return record
        raise RuntimeError(f"no task record for issue {number}")

    def pull_counts(self) -> dict[int, int]:
        """Open PRs per issue number, and reviews on them: what 'nothing doubled' checks."""
        counts: dict[int, int] = {}
        with self.github.state.lock:
            for pull in self.github.state.open_pulls(REPO):
                number = int(pull.head_ref.split("issue-")[1].split("-")[0])
                counts[number] = counts.get(number, 0) + 1
        return counts


@contextmanager
def stand(
    sdist: Sdist = INFLECT, copies: int = 1, history: int = 1, tools: list[str] | None = None
) -> Iterator[Stand]:
    """Everything up and wired; the worker processes are started by the caller."""
    with ExitStack() as stack:
        url = stack.enter_context(redis_server())
        tmp = Path(tempfile.mkdtemp(prefix="bench-stand-"))
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        github = GitHubDouble(tmp / "github", app_slug="feature-crew-bench", app_id=4242)
        github.start()
        stack.callback(github.stop)
        installation = github.add_installation(account=OWNER)
        github.add_repo(
            OWNER, NAME, files=project_files(sdist, copies), installation_id=installation
        )
        bare = github.git_root / OWNER / f"{NAME}.git"
        for n in range(1, history):
            commit_files(bare, {"HISTORY.md": f"upstream change {n}\n"}, message=f"history {n}")
        github.add_user("alice", permission_on={REPO: "write"})
        anthropic = AnthropicDouble().start()
        stack.callback(anthropic.stop)
        for name in list(os.environ):
            if name.startswith(("GITHUB_", "ANTHROPIC_", "OPENAI_", "FEATURE_CREW_", "SENTRY_")):
                del os.environ[name]
        os.environ.update(
            REDIS_URL=url, GITHUB_APP_ID=str(github.app_id),
            GITHUB_PRIVATE_KEY=github.private_key_pem, GITHUB_WEBHOOK_SECRET=SECRET,
            GITHUB_API_URL=github.api_url, ANTHROPIC_API_KEY="test-anthropic-key",
            ANTHROPIC_BASE_URL=anthropic.base_url, FEATURE_CREW_HOME=str(tmp / "home"),
        )  # fmt: skip
        if tools is not None:
            (tmp / "config.toml").write_text(f"[self_audit]\ntools = {tools!r}\n".replace("'", '"'))
            os.environ["FEATURE_CREW_CONFIG"] = str(tmp / "config.toml")
        settings = load_settings()
        jobs.configure(settings)
        web = ServerThread(create_app(settings)).start()
        stack.callback(web.stop)
        github.set_webhook(f"{web.url}/webhooks", SECRET)
        result = Stand(github, anthropic, url, tmp / "home")
        stack.callback(result.stop_workers)
        yield result
