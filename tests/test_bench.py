"""The benchmarks still run (tiny sizes); their figures are read by people, not asserted."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VERDICT = re.compile(r"^bench_\w+ ratio=[\d.]+ target=[\d.]+ (ok|miss)$")


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("bench_ingress.py", ["--requests", "20", "--rounds", "1", "--connections", "1,4"]),
        ("bench_workspace.py", ["2", "10"]),  # over HTTPS
        ("bench_workspace.py", ["2", "10", "--http"]),
        ("bench_task.py", ["--warm", "1", "--tools", "compile"]),
        (
            "bench_scale.py",
            ["--tasks", "1", "--workers", "1,2", "--delay", "0", "--tools", "compile"]
            + ["--repeat", "2", "--no-warmup"],
        ),
        (
            "bench_repo_size.py",
            ["--warm", "1", "--factor", "2", "--history", "1", "--tools", "compile"],
        ),
        ("bench_dashboard.py", ["40"]),
        ("bench_audit.py", ["1", "compile,ruff"]),  # inflect's env built cold: the long one
    ],
)
@pytest.mark.timeout(400)
def test_benchmark_runs_and_ends_with_its_verdict(script: str, args: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "FEATURE_CREW"))}
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        check=False, capture_output=True, text=True, timeout=380, env=env, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert VERDICT.match(out.stdout.strip().splitlines()[-1]), out.stdout[-2000:]
