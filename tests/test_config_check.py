"""`feature-crew config --check`: a table of what works and what does not, and how to fix it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.doubles.models import text_turn
from tests.doubles.server import free_port
from tests.world import World

ROOT = Path(__file__).resolve().parents[1]
ANTHROPIC_MODELS = ("claude-sonnet-5-5", "claude-opus-5-5", "claude-haiku-5-5")


def _check(world: World, tier1_url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "check.toml"
    config.write_text(
        f'[tier1]\nprovider = "openai"\nmodel = "qwen3-235b"\nbase_url = "{tier1_url}"\n'
    )
    for model in ANTHROPIC_MODELS:
        world.anthropic.script(model, [text_turn("p")])
    return subprocess.run(  # noqa: PLW1510 - the test reads returncode
        [sys.executable, "-m", "bot", "config", "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), "FEATURE_CREW_CONFIG": str(config)},
        cwd=tmp_path,
    )


def _rows(stdout: str) -> dict[str, str]:
    table = stdout[stdout.index("\ncheck ") :]
    return {line.split()[0]: line for line in table.splitlines() if line and line[0] != " "}


def test_one_unreachable_model_endpoint_fails_the_check_with_its_fix(
    world: World, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    out = _check(world, dead, tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    rows = _rows(out.stdout)
    assert " ok " in rows["redis"] and " ok " in rows["github"]
    assert "feature-crew-test (id 4242)" in rows["github"]
    assert " ok " in rows["installations"] and " ok " in rows["webhook"]
    assert "FAIL" in rows["tier1"] and dead in rows["tier1"]
    assert f"{dead} unreachable\n" in out.stdout
    assert "fix: start the model server, or fix base_url or OPENAI_BASE_URL" in out.stdout
    for name in ("tier2", "tier3", "review"):
        assert " ok " in rows[name], out.stdout
    assert "1 of 8 checks failed" in out.stdout
    assert [b["max_tokens"] for b in world.anthropic.bodies()] == [1, 1, 1]
    assert "test-anthropic-key" not in out.stdout + out.stderr


def test_everything_reachable_passes(world: World, tmp_path: Path) -> None:
    world.openai.served_models = ["qwen3-235b"]
    out = _check(world, world.openai.base_url, tmp_path)
    assert out.returncode == 0, out.stdout
    assert "all checks passed" in out.stdout
