"""The benchmarks still run (tiny sizes); their figures are read by people, not asserted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("script", "args"), [("bench_ingress.py", ["20"]),
                                              ("bench_workspace.py", ["2", "10"]),
                                              ("bench_dashboard.py", ["40"])])  # fmt: skip
def test_benchmark_runs_and_prints_its_ratio(script: str, args: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "FEATURE_CREW"))}
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        check=False, capture_output=True, text=True, timeout=120, env=env, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ratio" in out.stdout and "target" in out.stdout
