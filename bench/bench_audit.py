"""Audit: wall time of a whole audit against its slowest tool run alone, on a real project.

inflect 7.5.0 from its PyPI sdist (downloaded once into the tests' cache), its environment built
cold and then reused (both timed), a one-file change to `inflect/__init__.py`, warm caches (one
audit first). Each round runs the audit (its tools side by side) and then every tool alone on
the same change; the ratio is the median audit over the median of the slowest tool alone.
`python bench/bench_audit.py [ROUNDS] [TOOLS]` (TOOLS comma-separated; default all four).
Prints `bench_audit ratio=<x> target=1.15 ok|miss` last.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pygit2

from pipeline.audit_plan import AuditPlan, prepare_audit
from pipeline.config import SelfAuditConfig
from pipeline.setup_phase import build_env
from pipeline.target_env import ensure_target_env
from tests.realprojects import INFLECT, Unreachable, unpack_as_repo

TARGET_RATIO = 1.15
CHANGE = ('"""\ninflect:', '"""\n\ninflect:')  # one line more at the top: every finding shifts


class MemoryCache:
    """The baseline's cache, in process (the worker's is Redis)."""

    def __init__(self) -> None:
        self.data: dict[tuple[object, ...], Any] = {}

    def cache_get(self, *parts: object) -> Any:
        return self.data.get(parts)

    def cache_set(self, value: Any, ttl_s: int, *parts: object) -> None:
        self.data[parts] = value


def _timed_env(home: Path, repo: Path, sha: str, config: SelfAuditConfig) -> float:
    started = time.perf_counter()
    ensure_target_env(
        home=home, repo_id=1, repo_path=repo, base_sha=sha, config=config,
        cache_dir=home / "cache" / "1", build=build_env,
    )  # fmt: skip
    return time.perf_counter() - started


def _audit_s(plan: AuditPlan, repo: Path, config: SelfAuditConfig) -> float:
    report = plan.audit(repo, ["inflect/__init__.py"], config)
    assert report.verdict == "ready_for_review", report
    return report.duration_s


def main(rounds: int, tools: tuple[str, ...]) -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    try:
        repo = unpack_as_repo(INFLECT, root / "inflect")
    except Unreachable as err:
        print(f"inflect unreachable: {err}")
        print(f"bench_audit ratio=nan target={TARGET_RATIO} miss")
        return
    try:
        config = SelfAuditConfig(tools=tools)  # type: ignore[arg-type]
        sha = str(pygit2.Repository(str(repo)).head.target)
        home = root / "home"
        cold = _timed_env(home, repo, sha, config)
        warm = _timed_env(home, repo, sha, config)
        print(f"environment    cold build {cold:6.1f} s   reused {warm * 1e3:7.1f} ms")
        plan = prepare_audit(
            cache=MemoryCache(), home=home, repo_id=1, repo_path=repo, base_sha=sha,
            config=config,
        )  # fmt: skip
        assert isinstance(plan, AuditPlan), plan
        init = repo / "inflect" / "__init__.py"
        init.write_text(init.read_text().replace(*CHANGE, 1))
        _audit_s(plan, repo, config)  # warm: mypy's and ruff's caches, the base's findings
        whole, slowest = [], []
        alone: dict[str, list[float]] = {t: [] for t in tools}
        for _ in range(rounds):
            whole.append(_audit_s(plan, repo, config))
            for tool in tools:
                alone[tool].append(
                    _audit_s(plan, repo, config.model_copy(update={"tools": (tool,)}))
                )
            slowest.append(max(alone[t][-1] for t in tools))
        plan.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for tool in tools:
        print(f"{tool:<14} alone {statistics.median(alone[tool]):6.2f} s")
    audit, floor = statistics.median(whole), statistics.median(slowest)
    print(f"audit          {audit:6.2f} s   slowest tool alone {floor:6.2f} s")
    ratio = audit / floor
    verdict = "ok" if ratio <= TARGET_RATIO else "miss"
    print(f"bench_audit ratio={ratio:.2f} target={TARGET_RATIO} {verdict}")


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    names = (
        tuple(sys.argv[2].split(","))
        if len(sys.argv) > 2
        else ("compile", "ruff", "mypy", "pytest")
    )
    main(count, names)
