"""`enqueue` and `redeliver` against the GitHub double, in-process so the world is shared."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from pipeline.models import TaskState
from tests.doubles.server import free_port
from tests.test_end_to_end import _approves, _writes_greet
from tests.world import REPO, World


def test_enqueue_opens_an_issue_and_runs_its_task(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.anthropic.script("claude-sonnet-5-5", _writes_greet())
    world.anthropic.script("claude-haiku-5-5", _approves())
    spec = "Add greet()\n\nAdd a function `greet()` returning 'Hello'."
    args = ["enqueue", "--repo", REPO, "--spec", spec, "--spec-slug", "Greet Function"]
    assert main([*args, "--tier", "2"]) == 0
    assert "queued for octo-org/hello#1" in capsys.readouterr().out
    world.work()
    task = world.store.recent(1)[0]
    assert task.spec.branch == "feature-crew/issue-1-greet-function"
    assert task.progress.state is TaskState.PR_OPEN
    assert len(world.store.recent(5)) == 1  # the App's own label event started nothing


def test_enqueue_refuses_what_it_cannot_do(
    world: World, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["enqueue", "--repo", "octo-org/unknown", "--spec", "x"]) == 1
    assert "not installed on octo-org/unknown" in capsys.readouterr().err
    assert main(["enqueue", "--repo", "no-such-dir", "--spec", "x"]) == 2
    assert "OWNER/NAME" in capsys.readouterr().err
    assert main(["enqueue", "--repo", str(tmp_path), "--spec", "x"]) == 2  # local: not a repo
    assert "not a git repository" in capsys.readouterr().err


def test_redeliver_resends_failed_deliveries_once(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.github.set_webhook(f"http://127.0.0.1:{free_port()}/webhooks", "test-webhook-secret")
    number = world.issue("Add greet()", "Add `greet()`.", labels=["feature-crew:tier-2"])
    guid = world.label(number)
    world.github.wait_for_deliveries()
    world.github.set_webhook(f"{world.web.url}/webhooks", "test-webhook-secret")
    world.anthropic.script("claude-sonnet-5-5", _writes_greet())
    world.anthropic.script("claude-haiku-5-5", _approves())
    assert main(["redeliver", "--since", "1h"]) == 0
    assert guid in capsys.readouterr().out
    world.work()
    assert world.store.recent(1)[0].progress.state is TaskState.PR_OPEN
    assert main(["redeliver", "--since", "1h"]) == 0
    assert "redelivered 0" in capsys.readouterr().out
