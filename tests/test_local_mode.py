"""Local mode: `enqueue --repo PATH` runs the whole pipeline on a local repository, no GitHub."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.cli import main
from bot.local_repo import recorded
from bot.queue import rq_redis
from bot.store import TaskStore
from pipeline.messages import STATUS_MARKER
from pipeline.models import TaskState
from tests.doubles.git_http import read_file_at
from tests.doubles.models import AnthropicDouble, OpenAIDouble, text_turn, tool_turn
from tests.doubles.server import free_port
from tests.helpers import settings_with
from tests.test_end_to_end import GREET, _approves, _writes_greet
from tests.world import FILES

ROOT = Path(__file__).resolve().parents[1]
SPEC = "Add greet()\n\nAdd a function `greet()` returning 'Hello'."
_GIT = ["git", "-c", "user.name=Dev", "-c", "user.email=dev@example.com"]


@dataclass
class Local:
    repo: Path
    anthropic: AnthropicDouble
    openai: OpenAIDouble
    redis_url: str

    @property
    def store(self) -> TaskStore:
        return TaskStore(rq_redis(self.redis_url))

    def git(self, *args: str) -> str:
        done = subprocess.run(
            [*_GIT, *args], cwd=self.repo, capture_output=True, text=True, check=True
        )
        return done.stdout

    def enqueue(self, *extra: str, spec: str = SPEC) -> int:
        args = ["enqueue", "--repo", str(self.repo), "--spec", spec, "--spec-slug", "greet"]
        return main([*args, "--tier", "2", *extra])


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    for name, content in FILES.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(content)
    subprocess.run([*_GIT, "init", "-q", "-b", "main"], cwd=path, check=True)
    subprocess.run([*_GIT, "add", "."], cwd=path, check=True)
    subprocess.run([*_GIT, "commit", "-qm", "initial"], cwd=path, check=True)
    (path / "hello.py").write_text("# work in progress, not committed\n")  # must survive
    return path


@pytest.fixture
def local(
    clean_env: None, tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Local]:
    """Model doubles and Redis; no GitHub variable at all."""
    anthropic, openai = AnthropicDouble().start(), OpenAIDouble().start()
    env = {
        "REDIS_URL": redis_url,
        "ANTHROPIC_API_KEY": "test-anthropic-key",
        "ANTHROPIC_BASE_URL": anthropic.base_url,
        "OPENAI_API_KEY": "test-openai-key",
        "OPENAI_BASE_URL": openai.base_url,
        "FEATURE_CREW_HOME": str(tmp_path / "home"),
    }
    settings_with(monkeypatch, env)
    try:
        yield Local(make_repo(tmp_path / "project"), anthropic, openai, redis_url)
    finally:
        anthropic.stop()
        openai.stop()


def _rejects() -> list:
    verdict = {"action": "reject", "reason": "greet() is not tested.", "feedback": "Add a test."}
    return [tool_turn("submit_verdict", verdict)]


def test_an_approved_change_lands_on_its_branch_and_nothing_else_moves(
    local: Local, capsys: pytest.CaptureFixture[str]
) -> None:
    local.anthropic.script("claude-sonnet-5-5", _writes_greet())
    local.anthropic.script("claude-haiku-5-5", _approves())
    assert local.enqueue() == 0  # no worker is running: the command ran the task itself
    out, err = capsys.readouterr()
    assert "verdict: approve" in out and "audit: passed" in out
    assert "generating" in err and "reviewing" in err  # a plain line per stage (not a TTY)
    assert read_file_at(local.repo / ".git", "feature-crew/greet", "greet.py") == GREET
    assert local.git("branch", "--show-current").strip() == "main"
    assert local.git("status", "--porcelain").splitlines() == [" M hello.py"]
    task = local.store.recent(1)[0]
    assert task.progress.state is TaskState.PR_OPEN and task.progress.cost_usd > 0
    posted = recorded(local.store.redis, task.id)
    assert {c["name"]: c["conclusion"] for c in posted["checks"]} == {
        "Feature Crew / audit": "success",
        "Feature Crew / review": "success",
    }
    (status,) = [c["body"] for c in posted["comments"] if STATUS_MARKER in c["body"]]
    assert "Pull request ready" in status
    assert posted["reviews"][0]["body"].startswith("**Verdict: approve**")


def test_a_rejected_change_exits_1_with_the_reviewers_words(
    local: Local, capsys: pytest.CaptureFixture[str]
) -> None:
    local.anthropic.script("claude-sonnet-5-5", _writes_greet())
    local.anthropic.script("claude-haiku-5-5", _rejects())
    assert local.enqueue() == 1
    out = capsys.readouterr().out
    assert "verdict: reject: greet() is not tested." in out and "feedback: Add a test." in out


def test_a_question_is_answered_with_enqueue_answer(
    local: Local, capsys: pytest.CaptureFixture[str]
) -> None:
    local.anthropic.script("claude-sonnet-5-5", [text_turn("[ASK]: Which name should it greet?")])
    assert local.enqueue() == 1  # stdin is not a terminal: it says how to answer and stops
    out, err = capsys.readouterr()
    assert "Which name should it greet?" in err and "question:" in out
    task = local.store.recent(1)[0]
    assert task.progress.state is TaskState.ASKING
    assert recorded(local.store.redis, task.id)["labels"] == ["feature-crew:needs-info"]
    local.anthropic.script("claude-sonnet-5-5", _writes_greet())
    local.anthropic.script("claude-haiku-5-5", _approves())
    assert local.enqueue("--answer", "Nobody: greet() says Hello.") == 0
    assert "verdict: approve" in capsys.readouterr().out
    resumed = local.store.require(task.id)  # the same task went on, with the answer in its spec
    assert [c.answer for c in resumed.progress.clarifications] == ["Nobody: greet() says Hello."]
    prompt = str(local.anthropic.bodies("claude-sonnet-5-5")[1]["messages"][0]["content"])
    assert "Which name should it greet?" in prompt and "says Hello" in prompt
    assert recorded(local.store.redis, task.id)["labels"] == []


def test_detach_prints_the_task_id_and_usage_errors_exit_2(
    local: Local, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert local.enqueue("--detach") == 0
    task_id = capsys.readouterr().out.strip()
    assert local.store.require(task_id).progress.state is TaskState.QUEUED
    assert main(["status", task_id]) == 0 and task_id in capsys.readouterr().out
    (tmp_path / "plain").mkdir()
    assert main(["enqueue", "--repo", str(tmp_path / "plain"), "--spec", "x"]) == 2
    assert "not a git repository" in capsys.readouterr().err
    assert main(["enqueue", "--repo", str(local.repo), "--spec", "  "]) == 2


def test_on_a_terminal_it_shows_live_progress_and_reads_the_answer(local: Local) -> None:
    local.anthropic.script("claude-sonnet-5-5", [text_turn("[ASK]: Which name should it greet?")])
    local.anthropic.script("claude-sonnet-5-5", _writes_greet())
    local.anthropic.script("claude-haiku-5-5", _approves())
    leader, follower = pty.openpty()
    args = ["enqueue", "--repo", str(local.repo), "--spec", SPEC, "--spec-slug", "greet"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", *args, "--tier", "2"],
        cwd=ROOT,
        stdin=follower,
        stderr=follower,
        stdout=subprocess.PIPE,
        text=True,
    )
    os.close(follower)
    screen = _read_until(leader, "Your answer")
    assert "Which name should it greet?" in screen and "\r\x1b[K" in screen  # a live line
    os.write(leader, b"Nobody: greet() says Hello.\n")
    out, _ = proc.communicate(timeout=300)
    os.close(leader)
    assert proc.returncode == 0 and "verdict: approve" in out
    task = local.store.recent(1)[0]
    assert [c.answer for c in task.progress.clarifications] == ["Nobody: greet() says Hello."]


def _read_until(fd: int, text: str, limit_s: float = 300) -> str:
    seen, deadline = "", time.monotonic() + limit_s
    while text not in seen:
        assert time.monotonic() < deadline, f"never saw {text!r} in {seen[-500:]!r}"
        ready, _, _ = select.select([fd], [], [], 1)
        if ready:
            seen += os.read(fd, 4096).decode(errors="replace")
    return seen


def test_with_no_redis_configured_a_private_one_keeps_the_task_across_commands(
    local: Local, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_URL")
    monkeypatch.setenv("FEATURE_CREW_DEFAULT_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    local.anthropic.script("claude-sonnet-5-5", _writes_greet())
    local.anthropic.script("claude-haiku-5-5", _approves())
    assert local.enqueue() == 0
    out = capsys.readouterr().out
    task_id = out.splitlines()[0].split()[1].rstrip(":")
    assert local.store.get(task_id) is None  # not in the test's Redis: in the private one
    state = local.repo.parent / "home" / "redis" / "server.json"
    assert not state.exists()  # stopped when the command ended
    assert main(["status", task_id, "--json"]) == 0  # started again, from its AOF
    assert json.loads(capsys.readouterr().out)["progress"]["state"] == "pr_open"
