"""Scale: tasks per minute with 1, 2 and 4 real `feature-crew worker` processes.

The model double answers every call after a fixed delay (2 s: the work waits on the model,
so more workers must overlap it). Each round labels the same number of fresh issues at once
and waits for every review; then checks that each issue got exactly one PR and one review
(nothing lost, nothing doubled) and reports each worker process tree's peak RSS (the worker,
its events sidecar and the forked job processes, sampled every 100 ms).
With `--repeat N` each level runs N rounds, interleaved, and the ratio is of the medians.
`python bench/bench_scale.py [--tasks 8] [--workers 1,2,4] [--delay 2] [--tools ...]
[--no-warmup] [--repeat 1]`.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import verdict
from bench.stand import REPO, Stand, stand
from pipeline.models import TaskRecord

TARGET = 1.8  # two workers' tasks per minute, as a multiple of one's


PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _machine_cpu() -> tuple[float, float]:
    """Seconds of CPU the whole machine spent busy so far, and of those stolen by the host."""
    ticks = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / ticks, steal / ticks


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):  # a thread's forks are listed under it
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found.extend(int(c) for c in f.read().split())
    except OSError:
        pass  # gone meanwhile
    return found


def _tree_rss_kb(pid: int) -> int:
    """The largest resident set among a process and its descendants, in KiB.

    Walked down from pid through the kernel's children lists rather than by reading every
    process's stat: the sampler runs beside the workers it measures, on the same two cores.
    """
    peak, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as f:
                peak = max(peak, int(f.read().split()[1]) * PAGE_KB)
        except (OSError, IndexError, ValueError):
            continue
        todo.extend(_children(p))
    return peak


class RssSampler(threading.Thread):
    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.peaks = dict.fromkeys(pids, 0)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.1):
            for pid in self.peaks:
                self.peaks[pid] = max(self.peaks[pid], _tree_rss_kb(pid))


@dataclass(frozen=True)
class Round:
    workers: int
    tasks: int
    elapsed: float
    phases: dict[str, float]
    intact: bool
    rss_mb: list[float]
    busy: float  # the machine's CPU seconds, every process
    stolen: float
    stand_cpu: float  # this process's: the doubles, the web app, the sampler

    @property
    def per_min(self) -> float:
        return self.tasks / self.elapsed * 60

    def show(self, repeat: int | None) -> None:
        rss = ", ".join(f"{m:.0f}" for m in self.rss_mb)
        which = f" (repeat {repeat})" if repeat is not None else ""
        print(f"{self.workers} worker(s){which}: {self.tasks} tasks in {self.elapsed:.1f} s = "
              f"{self.per_min:.1f} tasks/min; {'intact' if self.intact else 'LOST OR DOUBLED'}; "
              f"peak RSS per worker process tree {rss} MB")  # fmt: skip
        phases = ", ".join(f"{k} {v:.2f}" for k, v in self.phases.items())
        print(f"  median seconds per state: {phases}")
        print(f"  CPU: the machine {self.busy / self.tasks:.1f} core-s per task (stolen by the "
              f"host {self.stolen:.1f} s in all), of which the stand's own (doubles, web app, "
              f"sampler) {self.stand_cpu / self.tasks:.1f}")  # fmt: skip


def one_round(st: Stand, workers: int, tasks: int, first: int, delay: float) -> Round:
    st.start_workers(workers)
    st.wait_for_workers(workers)
    sampler = RssSampler([w.pid for w in st.workers])
    sampler.start()
    numbers = [st.open_issue(first + i, delay_s=delay) for i in range(tasks)]
    start, cpu, machine = time.perf_counter(), time.process_time(), _machine_cpu()
    for number in numbers:
        st.label(number)
    st.wait_reviewed(numbers, timeout=120 + tasks * 60)
    elapsed = time.perf_counter() - start
    stand_cpu = time.process_time() - cpu  # the doubles, the web app, this sampler
    busy, stolen = (after - before for after, before in zip(_machine_cpu(), machine, strict=True))
    sampler.done.set()
    time.sleep(1)  # a late duplicate would show up here
    pulls = st.pull_counts()
    with st.github.state.lock:
        reviews = {n: len(st.github.state.reviews_on(REPO, _pr(st, n))) for n in numbers}
    phases = _phases([st.record(n) for n in numbers])
    st.stop_workers()
    return Round(
        workers=workers,
        tasks=tasks,
        elapsed=elapsed,
        phases=phases,
        intact=all(pulls.get(n) == 1 and reviews[n] == 1 for n in numbers),
        rss_mb=[kb / 1024 for kb in sampler.peaks.values()],
        busy=busy,
        stolen=stolen,
        stand_cpu=stand_cpu,
    )


def _phases(records: list[TaskRecord]) -> dict[str, float]:
    """The median seconds a task spent in each state (a state entered twice counts once, summed)."""
    spent: dict[str, list[float]] = {}
    for record in records:
        per: dict[str, float] = {}
        steps = record.transitions
        for here, after in itertools.pairwise(steps):
            per[here.state.value] = per.get(here.state.value, 0.0) + after.at - here.at
        for state, seconds in per.items():
            spent.setdefault(state, []).append(seconds)
    return {state: statistics.median(s) for state, s in spent.items()}


def _pr(st: Stand, number: int) -> int:
    for pull in st.github.state.open_pulls(REPO):
        if pull.head_ref.startswith(f"feature-crew/issue-{number}-"):
            return int(pull.number)
    return -1


def main(
    tasks: int,
    levels: list[int],
    delay: float,
    tools: list[str] | None,
    warmup: bool,
    repeat: int,
) -> None:
    rounds: dict[int, list[Round]] = {w: [] for w in levels}
    with stand(tools=tools) as st:
        if warmup:  # mirror and environments exist before the first round
            st.start_workers(1)
            st.wait_for_workers(1)
            st.run_task(st.open_issue(0))
            st.stop_workers()
        # Repeats interleave (1, 2, 4, 1, 2, 4...): a slow minute of the machine's lands in
        # one round of each level, not in every round of one.
        for i, workers in enumerate(levels * repeat):
            rounds[workers].append(one_round(st, workers, tasks, 1 + i * tasks, delay))
    for workers in levels:
        for n, r in enumerate(rounds[workers], 1):
            r.show(n if repeat > 1 else None)
    per_min = {w: statistics.median(r.per_min for r in rs) for w, rs in rounds.items()}
    base = per_min[levels[0]]
    for workers in levels[1:]:
        each = [
            a.per_min / b.per_min for a, b in zip(rounds[workers], rounds[levels[0]], strict=True)
        ]
        spread = f" (each repeat: {', '.join(f'{x:.2f}' for x in each)})" if repeat > 1 else ""
        print(f"{workers} workers: {per_min[workers] / base:.2f}x one{spread}")
    two = levels[1] if len(levels) > 1 else levels[0]
    ratio = per_min[two] / base
    intact = all(r.intact for rs in rounds.values() for r in rs)
    verdict("bench_scale", ratio, TARGET, ratio >= TARGET and intact)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--delay", type=float, default=2.0, help="seconds per model call")
    parser.add_argument("--tools", help="audit tools, comma-separated (default: the config's)")
    parser.add_argument("--no-warmup", action="store_true", help="skip the warm-up task")
    parser.add_argument("--repeat", type=int, default=1, help="rounds per level; medians")
    a = parser.parse_args()
    levels = [int(w) for w in a.workers.split(",")]
    main(a.tasks, levels, a.delay, a.tools.split(",") if a.tools else None, not a.no_warmup,
         a.repeat)  # fmt: skip
