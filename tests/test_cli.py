"""The `feature-crew` CLI as an operator runs it: a subprocess, exit codes, stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from bot.queue import EVENTS
from bot.store import TaskStore
from pipeline.models import TaskSpec, TaskState
from tests.doubles.server import free_port
from tests.helpers import PAYLOADS

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "FEATURE_CREW"))}
    return subprocess.run(  # noqa: PLW1510 - the tests read returncode
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**base, "PYTHONPATH": str(ROOT), **(env or {})},
        cwd=cwd or ROOT,
    )


def _seed(client: redis.Redis) -> None:
    store = TaskStore(client)
    spec = TaskSpec(
        id="hello-3-abc",
        installation_id=1,
        repo_full_name="octo/hello",
        repo_id=9,
        clone_url="http://x",
        default_branch="main",
        issue_number=3,
        issue_title="t",
        spec="s",
        slug="t",
        branch="feature-crew/issue-3-t",
        requested_by="a",
        delivery_id="d",
    )
    store.create(spec)
    store.transition(spec.id, TaskState.GENERATING, "routed", tier=2, model="m")
    store.update(spec.id, cost_usd=0.5)


def test_usage_errors_exit_2() -> None:
    assert cli().returncode == 2
    assert cli("metrics", "--duration", "seven").returncode == 2


def test_status_and_history_as_json(redis_url: str, redis_client: redis.Redis) -> None:
    _seed(redis_client)
    env = {"REDIS_URL": redis_url}
    one = cli("status", "hello-3-abc", "--json", env=env)
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout)["progress"]["state"] == "generating"
    overview = json.loads(cli("status", "--json", env=env).stdout)
    assert overview["tasks"][0]["id"] == "hello-3-abc"
    history = json.loads(cli("history", "--limit", "5", "--json", env=env).stdout)
    assert [r["cost_usd"] for r in history] == [0.5]
    metrics = json.loads(cli("metrics", "--json", "--tier", "2", env=env).stdout)
    assert metrics["tiers"]["2"]["cost_usd"] == 0.5
    assert "hello-3-abc" in cli("status", env=env).stdout


def test_failures_exit_1_with_one_line_and_no_traceback(redis_url: str, tmp_path: Path) -> None:
    missing = cli("status", "nope", env={"REDIS_URL": redis_url})
    assert missing.returncode == 1
    assert missing.stderr.strip() == "feature-crew: no task 'nope'"
    down = cli("status", env={"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    assert down.returncode == 1
    assert "Traceback" not in down.stderr and len(down.stderr.strip().splitlines()) == 1
    (tmp_path / "bad.toml").write_text("[tier9]\nx = 1\n")
    bad = cli("config", env={"FEATURE_CREW_CONFIG": str(tmp_path / "bad.toml")})
    assert bad.returncode == 1
    assert "tier9" in bad.stderr and "Traceback" not in bad.stderr


def test_config_shows_the_effective_config(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("[github]\nmax_attempts = 2\n")
    out = cli("config", env={"FEATURE_CREW_CONFIG": str(tmp_path / "c.toml")})
    assert out.returncode == 0
    assert json.loads(out.stdout)["github"]["max_attempts"] == 2


def test_replay_queues_a_saved_payload(redis_url: str, redis_client: redis.Redis) -> None:
    path = PAYLOADS / "issues" / "labeled.payload.json"
    out = cli("replay", "issues", str(path), env={"REDIS_URL": redis_url})
    assert out.returncode == 0, out.stderr
    delivery_id, outcome = out.stdout.split()
    assert outcome == "queued"
    queue = Queue(EVENTS, connection=redis_client, serializer=JSONSerializer)
    assert queue.job_ids == [f"event-{delivery_id}"]


def test_replay_refuses_what_is_not_a_payload(redis_url: str, tmp_path: Path) -> None:
    (tmp_path / "list.json").write_text("[1, 2]")
    out = cli("replay", "issues", str(tmp_path / "list.json"), env={"REDIS_URL": redis_url})
    assert out.returncode == 1
    assert "not a webhook payload" in out.stderr and "Traceback" not in out.stderr
