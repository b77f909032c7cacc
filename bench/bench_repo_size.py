"""Repository size: a task's warm overhead on a project 10x larger in files and history.

The small project is bench_task's (the sdist, HISTORY commits of history); the large one has
the same files plus nine copies of them (as .txt, so the project's own tools and tests see the
same code) and ten times the commits. Same doubles, one worker, same run. Also reports the
mirror's size on disk and the time a fresh worktree checkout of each takes with pygit2.
`python bench/bench_repo_size.py [--warm N] [--factor 10] [--history 5] [--tools ...]`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import pygit2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_task import measure, med
from bench.common import verdict
from bench.stand import Stand, stand

TARGET = 2.0  # the large project's warm overhead, as a multiple of the small one's


def disk_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def checkout_s(st: Stand, runs: int = 3) -> tuple[float, float]:
    """(size of the worker's mirrors on disk in MB, median seconds of a fresh worktree)."""
    (mirror,) = (st.home / "mirrors").glob("*.git")  # the worker's one bare mirror
    repo = pygit2.Repository(str(mirror))
    ref = "refs/remotes/origin/main"
    times = []
    for n in range(runs):
        branch = repo.branches.local.create(
            f"bench-checkout-{n}", repo.references[ref].peel(pygit2.Commit)
        )
        start = time.perf_counter()
        repo.add_worktree(f"bench-checkout-{n}", str(st.home.parent / f"checkout-{n}"), branch)
        times.append(time.perf_counter() - start)
    return disk_mb(mirror), statistics.median(times)


def one_size(copies: int, history: int, warm: int, tools: list[str] | None) -> dict[str, float]:
    with stand(copies=copies, history=history, tools=tools) as st:
        _, warms = measure(st, warm)
        size, checkout = checkout_s(st)
        figures = {key: med(warms, key) for key in ("overhead", "total", "tools")}
        return {**figures, "mirror_mb": size, "checkout_s": checkout}


def main(warm: int, factor: int, history: int, tools: list[str] | None) -> None:
    small = one_size(1, history, warm, tools)
    large = one_size(factor, history * factor, warm, tools)
    for name, r in (("small", small), (f"{factor}x", large)):
        print(f"{name:<6} warm total {r['total']:6.2f} s, audit tools {r['tools']:6.2f} s, "
              f"overhead {r['overhead']:5.2f} s; mirror {r['mirror_mb']:6.1f} MB on disk; "
              f"worktree checkout {r['checkout_s'] * 1e3:6.1f} ms")  # fmt: skip
    ratio = large["overhead"] / small["overhead"]
    print(f"overhead {ratio:.2f}x the small project's (target <= {TARGET})")
    verdict("bench_repo_size", ratio, TARGET, ratio <= TARGET)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--warm", type=int, default=3)
    parser.add_argument("--factor", type=int, default=10)
    parser.add_argument("--history", type=int, default=5, help="commits of the small project")
    parser.add_argument("--tools", help="audit tools, comma-separated (default: the config's)")
    a = parser.parse_args()
    main(max(1, a.warm), a.factor, a.history, a.tools.split(",") if a.tools else None)
