"""An uninstalled repository's mirrors go on every worker, each under its own home."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from bot.queue import TaskQueue, rq_redis
from bot.settings import load_settings
from pipeline.workspace import Workspace
from tests.test_local_mode import Local, local  # noqa: F401 - the fixture
from tests.world import stop_worker, wait_for

ROOT = Path(__file__).resolve().parents[1]
GONE, KEPT = 4242, 777


@contextmanager
def _worker(home: Path) -> Iterator[None]:
    env = {**os.environ, "FEATURE_CREW_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "worker"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        stop_worker(proc)


def _mirror(home: Path, repo_id: int) -> Path:
    path = Workspace(home).mirror_path(repo_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
    return path


def test_every_worker_drops_the_mirrors_of_an_uninstalled_repository(
    local: Local,  # noqa: F811 - the fixture
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[worker]\nunserved_tier_notice_s = 20\n")  # the sweep runs every 5 s
    monkeypatch.setenv("FEATURE_CREW_CONFIG", str(config))
    homes = [tmp_path / name for name in ("a", "b", "late")]
    gone = [_mirror(home, GONE) for home in homes]
    kept = [_mirror(home, KEPT) for home in homes]
    # Machine b's mirror was fetched again after the uninstall (the App came back): it stays.
    refetched = _mirror(tmp_path / "b", 999)
    later = time.time() + 3600
    os.utime(refetched, (later, later))
    queue = TaskQueue(rq_redis(local.redis_url), load_settings().config.worker)
    with ExitStack() as running:
        for home in homes[:2]:
            running.enter_context(_worker(home))
        queue.enqueue_forget_repositories([GONE, 999], "delivery-uninstall")
        # One worker ran the job; the other finds the record on its next sweep.
        wait_for(lambda: not any(p.exists() for p in gone[:2]), timeout=120)
        assert all(p.exists() for p in kept[:2]) and refetched.exists()
        assert gone[2].exists()  # nothing runs under the third home yet
        with _worker(homes[2]):  # a worker started later sweeps at start
            wait_for(lambda: not gone[2].exists(), timeout=120)
    assert all(p.exists() for p in kept) and refetched.exists()
