"""A task's own overhead: a signed delivery to the posted review, less model and audit time.

On a real project (a PyPI sdist made a git repository at bench time) behind the GitHub
double, with a model double that answers at once, one real `feature-crew worker` process.
Cold is the first task (no mirror, no environments); warm the ones after it. Overhead = total
- the audit tools' own run time (the span of the tools in the audit report; they run side by
side) - model time (none here: the SDK's own round trips to the double count as ours).
Floors, same run: the raw git steps with pygit2, the same GitHub calls made directly with
githubkit, and a no-op RQ job's enqueue-to-start on a plain `rq worker`.
`python bench/bench_task.py [--warm N] [--tools compile,ruff,mypy,pytest]`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import floors
from bench.common import verdict
from bench.stand import Stand, stand
from bot.queue import delivery_job_id

TARGET_OVERHEAD = 2.0  # warm overhead, as a multiple of the floors' sum
TARGET_PICKUP = 1.5  # our task job's enqueue-to-start, as a multiple of RQ's own
_GIT_PATHS = ("/info/refs", "/git-upload-pack", "/git-receive-pack")


def task_job_id(task_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in f"task-{task_id}-1")


def one_task(st: Stand, n: int) -> dict[str, float]:
    st.wait_idle()
    number = st.open_issue(n)
    before = len(st.github.requests)
    total, delivery = st.run_task(number)
    record = st.record(number)
    audit = record.progress.audit
    # The tools run side by side (the audit issue): the task waits for the audit's span, not
    # the sum of its tools' durations, which came to more than the whole task.
    tools = audit.duration_s if audit else 0.0
    calls = [(m, p) for m, p, _, _ in st.github.requests[before:] if not p.endswith(_GIT_PATHS)]
    task_pickup, _ = floors.pickup_of(st.redis_url, task_job_id(record.id)) or (0.0, "")
    event_pickup, worker = floors.pickup_of(st.redis_url, delivery_job_id(delivery)) or (0.0, "")
    return {
        "total": total,
        "tools": tools,
        "overhead": total - tools,
        "calls": float(len(calls)),
        "task_pickup": task_pickup,
        "event_pickup": event_pickup,
        # The label's delivery taken by the main worker instead of its events sidecar.
        "event_on_main": float(not worker.endswith("-events")),
        "_calls": calls,  # type: ignore[dict-item]
    }


def measure(st: Stand, warm: int) -> tuple[dict[str, float], list[dict[str, float]]]:
    st.start_workers(1)
    st.wait_for_workers(1)
    cold = one_task(st, 0)
    return cold, [one_task(st, n) for n in range(1, warm + 1)]


def floor_sum(st: Stand, calls: list[tuple[str, str]], runs: int = 3) -> dict[str, float]:
    git = statistics.median(floors.git_steps(st, n) for n in range(runs))
    gh = statistics.median(floors.github_calls(st, calls) for _ in range(runs))
    rq = floors.rq_pickup(st)
    return {"git": git, "github": gh, "rq": rq, "sum": git + gh + rq}


def med(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main(warm: int, tools: list[str] | None) -> None:
    with stand(tools=tools) as st:
        cold, warms = measure(st, warm)
        floor = floor_sum(st, warms[-1]["_calls"])  # type: ignore[arg-type]
    print(f"{'':<6}{'total s':>9}{'audit tools s':>15}{'overhead s':>12}{'API calls':>11}")
    for name, runs in (("cold", [cold]), ("warm", warms)):
        print(f"{name:<6}{med(runs, 'total'):>9.2f}{med(runs, 'tools'):>15.2f}"
              f"{med(runs, 'overhead'):>12.2f}{med(runs, 'calls'):>11.0f}")  # fmt: skip
    print(f"floors: pygit2 fetch+worktree+commit+push {floor['git']:.3f} s, the same "
          f"{med(warms, 'calls'):.0f} API calls with githubkit {floor['github']:.3f} s, RQ no-op "
          f"pickup {floor['rq'] * 1e3:.1f} ms; sum {floor['sum']:.3f} s")  # fmt: skip
    overhead = med(warms, "overhead") / floor["sum"]
    pickup = med(warms, "task_pickup") / floor["rq"]
    print(f"warm overhead {overhead:.2f}x the floors (target <= {TARGET_OVERHEAD}); task job "
          f"pickup {med(warms, 'task_pickup') * 1e3:.1f} ms, delivery job pickup "
          f"{med(warms, 'event_pickup') * 1e3:.1f} ms: {pickup:.2f}x RQ's own "
          f"(target <= {TARGET_PICKUP})")  # fmt: skip
    on_main = sum(r["event_on_main"] for r in warms)
    print(f"the label's delivery ran on the main worker (not its events sidecar) in "
          f"{on_main:.0f} of {len(warms)} warm tasks")  # fmt: skip
    verdict("bench_task_pickup", pickup, TARGET_PICKUP, pickup <= TARGET_PICKUP)
    verdict("bench_task", overhead, TARGET_OVERHEAD,
            overhead <= TARGET_OVERHEAD and pickup <= TARGET_PICKUP)  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--warm", type=int, default=3, help="warm tasks after the cold one")
    parser.add_argument("--tools", help="audit tools, comma-separated (default: the config's)")
    a = parser.parse_args()
    main(max(1, a.warm), a.tools.split(",") if a.tools else None)
