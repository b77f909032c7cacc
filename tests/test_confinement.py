"""Issue 6's attacks, as audit code would make them: each must find nothing to reach.

Every test plants code (a test file or a conftest.py) in a real worktree of a real mirror and
runs it through run_audit or the baseline, as the worker does, then looks at the host: the
mirror's config, the other repository, Redis, the processes left, what the code could read.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest
import redis

from pipeline import bwrap, sandbox
from pipeline.audit import run_audit
from pipeline.baseline import judge_base_tests
from pipeline.config import SelfAuditConfig
from pipeline.errors import SANDBOX_REQUIRED, PermanentError
from pipeline.generate import EDIT_TOOL_NAME
from pipeline.messages import AUDIT_CHECK, STATUS_MARKER
from pipeline.models import TaskState, ToolStatus
from pipeline.sandbox import unavailable_reason
from pipeline.workspace import Workspace, Worktree
from tests.doubles.git_http import create_bare_repo, git_http_app
from tests.doubles.models import text_turn, tool_turn
from tests.doubles.server import ServerThread
from tests.test_end_to_end import _approves, _writes_greet
from tests.world import REPO, World

needs_sandbox = pytest.mark.skipif(
    unavailable_reason() is not None, reason=f"this machine cannot confine: {unavailable_reason()}"
)

TOKEN = "ghs_" + "c0nf1ned" * 5
A, B = 101, 102
B_SECRET = "b-private-" + "7" * 24
CONFIG = SelfAuditConfig(tools=("pytest",), timeout_s=120)


@dataclass
class Mirrors:
    workspace: Workspace
    home: Path


@pytest.fixture(scope="module")
def mirrors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mirrors]:
    """Two repositories' mirrors in one FEATURE_CREW_HOME, as one worker keeps them."""
    root = tmp_path_factory.mktemp("remote")
    create_bare_repo(root / "octo" / "a.git", {"app.py": "X = 1\n"})
    create_bare_repo(root / "octo" / "b.git", {"secret.txt": B_SECRET + "\n"})
    server = ServerThread(git_http_app(root, lambda token, repo: token == TOKEN)).start()
    home = tmp_path_factory.mktemp("crew-home")
    workspace = Workspace(home)
    workspace.sync_mirror(A, f"{server.url}/octo/a.git", TOKEN)
    workspace.sync_mirror(B, f"{server.url}/octo/b.git", TOKEN)
    server.stop()
    yield Mirrors(workspace, home)


@pytest.fixture
def worktree(
    mirrors: Mirrors, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Worktree]:
    monkeypatch.setenv("FEATURE_CREW_HOME", str(mirrors.home))
    task = "task-" + "".join(c if c.isalnum() else "-" for c in request.node.name)[:50]
    tree = mirrors.workspace.prepare_worktree(A, task, f"feature-crew/{task}", "main")
    yield tree
    mirrors.workspace.remove_worktree(A, task)


def audit_with(tree: Worktree, name: str, source: str) -> str:
    """Run `source` as the test file `name` through the audit; its output."""
    (tree.path / name).write_text(source)
    report = run_audit(tree.path, [name], CONFIG)
    return report.tools[0].output


def stolen(tree: Worktree) -> str:
    path = tree.path / "stolen.txt"
    return path.read_text() if path.exists() else ""


@needs_sandbox
def test_audit_code_cannot_redirect_git_through_the_mirrors_config(
    worktree: Worktree, mirrors: Mirrors, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "worker-home"  # stands in for the worker's $HOME
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    redirect = '[url "http://127.0.0.1:9/"]\n\tinsteadOf = https://github.com/\n'
    attack = f"""
from pathlib import Path

def test_redirect() -> None:
    for target in (Path({str(home / ".gitconfig")!r}),):
        try:
            target.open("a").write({redirect!r})
        except OSError:
            pass
    gitdir = Path(Path(".git").read_text().split("gitdir:", 1)[1].strip())
    common = (gitdir / (gitdir / "commondir").read_text().strip()).resolve()
    with open(common / "config", "a") as config:
        config.write({redirect!r})
"""
    git_link = (worktree.path / ".git").read_text()
    output = audit_with(worktree, "test_redirect.py", attack)

    assert "insteadOf" not in (mirrors.workspace.mirror_path(A) / "config").read_text(), output
    assert not (home / ".gitconfig").exists()
    assert (worktree.path / ".git").read_text() == git_link  # the worker's link is intact
    assert worktree.changed_files() == ["test_redirect.py"]


@needs_sandbox
def test_audit_code_cannot_read_another_repositorys_mirror(
    worktree: Worktree, mirrors: Mirrors
) -> None:
    other = mirrors.workspace.mirror_path(B)
    attack = f"""
import subprocess
from pathlib import Path

def test_steal() -> None:
    found = []
    for args in (["git", "--git-dir", {str(other)!r}, "show", "origin/main:secret.txt"],):
        found.append(subprocess.run(args, capture_output=True, text=True).stdout)
    for path in Path({str(mirrors.home)!r}).rglob("*"):
        try:
            found.append(path.read_text(errors="replace"))
        except OSError:
            pass
    Path("stolen.txt").write_text("\\n".join(found))
"""
    output = audit_with(worktree, "test_steal.py", attack)

    assert (worktree.path / "stolen.txt").exists(), output  # the attack ran
    assert B_SECRET not in stolen(worktree)
    assert TOKEN not in stolen(worktree)


@needs_sandbox
def test_the_baselines_conftest_cannot_reach_redis(
    worktree: Worktree, redis_url: str, redis_client: redis.Redis
) -> None:
    where = urlparse(redis_url)
    conftest = f"""
import socket

def pytest_configure(config):
    try:
        with socket.create_connection(({where.hostname!r}, {where.port}), timeout=5) as conn:
            conn.sendall(b"SET fc:pwned-by-baseline 1\\r\\n")
            conn.recv(64)
    except OSError as err:
        print("redis unreachable:", err)
"""
    (worktree.path / "conftest.py").write_text(conftest)
    (worktree.path / "test_ok.py").write_text("def test_ok() -> None:\n    pass\n")

    assert judge_base_tests(worktree.path, CONFIG, target=None, cache_dir=None) == []
    assert redis_client.get("fc:pwned-by-baseline") is None


DAEMON = """
import fcntl, os, time
from pathlib import Path

def test_leave_a_daemon() -> None:
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            lock = open("daemon.lock", "w")
            fcntl.flock(lock, fcntl.LOCK_EX)
            Path("daemon.ready").touch()
            time.sleep(60)
        os._exit(0)
    while not Path("daemon.ready").exists():
        time.sleep(0.01)
"""


@needs_sandbox
def test_a_setsid_double_forked_daemon_dies_with_the_audit(worktree: Worktree) -> None:
    output = audit_with(worktree, "test_daemon.py", DAEMON)

    assert (worktree.path / "daemon.ready").exists(), output
    with (worktree.path / "daemon.lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pytest.fail("the daemon outlived run_audit and still holds its lock")


@pytest.fixture
def secret_holder() -> Iterator[str]:
    """Another process of the worker's user with a secret in its environment."""
    secret = "sk-fake-" + "e" * 32
    env = {"PATH": os.defpath, "FC_FAKE_SECRET": secret}
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], env=env)
    yield secret
    proc.kill()
    proc.wait()


@needs_sandbox
@pytest.mark.parametrize("supported", [None, False], ids=["probed", "namespaces-refused"])
def test_audit_code_cannot_read_other_processes_environ(
    worktree: Worktree, secret_holder: str, supported: bool | None
) -> None:
    # namespaces-refused: as under Docker's default seccomp profile, where the audit used to
    # fall back to "limits only"; now it refuses, so nothing runs to read anything.
    attack = """
from pathlib import Path

def test_environ() -> None:
    found = []
    for path in Path("/proc").glob("*/environ"):
        try:
            found.append(path.read_bytes().decode(errors="replace"))
        except OSError:
            pass
    Path("stolen.txt").write_text("\\n".join(found))
"""
    (worktree.path / "test_environ.py").write_text(attack)
    try:
        run_audit(worktree.path, ["test_environ.py"], CONFIG, sandbox_supported=supported)
    except PermanentError as err:
        assert supported is False, err
    else:
        assert supported is None
        assert (worktree.path / "stolen.txt").exists()

    assert secret_holder not in stolen(worktree)
    assert TOKEN not in stolen(worktree)


@needs_sandbox
def test_the_confined_tests_still_run_and_pass(worktree: Worktree) -> None:
    # git finds no repository inside (the .git link to the mirror is covered), and says so.
    source = (
        "import subprocess\nfrom app import X\n\n"
        "def test_x() -> None:\n"
        "    assert X == 1\n"
        "    git = subprocess.run(['git', 'status'], capture_output=True, text=True)\n"
        "    assert git.returncode != 0 and 'not a git repository' in git.stderr\n"
    )
    (worktree.path / "test_x.py").write_text(source)
    report = run_audit(worktree.path, ["test_x.py"], CONFIG)

    assert report.tools[0].status is ToolStatus.PASSED, report.tools[0].output


@needs_sandbox
def test_audit_code_cannot_poison_the_caches_a_later_task_reads(
    worktree: Worktree, tmp_path: Path
) -> None:
    # The repository's warm cache: ruff's and mypy's, and pip's wheels for the next setup.
    cache = tmp_path / "cache"
    (cache / "mypy").mkdir(parents=True)
    (cache / "mypy" / "kept.json").write_text("{}")
    before = sorted(p.relative_to(cache) for p in cache.rglob("*"))
    (worktree.path / "typed.py").write_text("def f(x: int) -> int:\n    return x\n")
    source = (
        "import pathlib\n\n"
        "def test_plant() -> None:\n"
        f"    for folder in ({str(cache)!r}, {str(cache / 'mypy')!r}):\n"
        "        try:\n"
        "            (pathlib.Path(folder) / 'planted.py').write_text('evil')\n"
        "        except OSError:\n"
        "            pass\n"
    )
    (worktree.path / "test_plant.py").write_text(source)
    config = SelfAuditConfig(tools=("ruff", "mypy", "pytest"), timeout_s=120)

    report = run_audit(worktree.path, ["typed.py", "test_plant.py"], config, cache_dir=cache)

    assert [t.status for t in report.tools] == [ToolStatus.PASSED] * 3, report
    # Neither the planted files nor this run's own ruff/mypy entries reached the folder.
    assert sorted(p.relative_to(cache) for p in cache.rglob("*")) == before


# --- where the confinement cannot be built ------------------------------------------------------


def _forget_probe() -> None:
    bwrap.bwrap_path.cache_clear()
    sandbox.unavailable_reason.cache_clear()


def _hide_bubblewrap(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on, a worker without bubblewrap on its PATH, probed afresh as a new one would."""
    bin_dir = request.getfixturevalue("tmp_path") / "bin-without-bwrap"
    bin_dir.mkdir()
    git = shutil.which("git")
    if git is not None:  # the GitHub double's git http-backend still needs it
        (bin_dir / "git").symlink_to(git)
    monkeypatch.setenv("PATH", str(bin_dir))
    _forget_probe()
    request.addfinalizer(_forget_probe)


@pytest.fixture
def no_bubblewrap(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    _hide_bubblewrap(request, monkeypatch)


LOUDER = 'def greet() -> str:\n    return "HELLO"\n'


def _status(world: World, number: int) -> str:
    with world.github.state.lock:
        (status,) = [
            c.body for c in world.github.state.comments_on(REPO, number) if STATUS_MARKER in c.body
        ]
    return status


def test_without_the_confinement_the_task_refuses_and_says_why(
    world: World, no_bubblewrap: None
) -> None:
    number = world.issue("Add greet()", "Add `greet()`.", labels=["feature-crew:tier-2"])
    world.anthropic.script("claude-sonnet-5-5", _writes_greet())
    world.label(number)
    world.work()

    task = world.store.recent(1)[0]
    assert task.progress.state is TaskState.FAILED
    assert task.progress.error == SANDBOX_REQUIRED
    assert SANDBOX_REQUIRED in _status(world, number)
    with world.github.state.lock:
        assert world.github.state.open_pulls(REPO) == []


@needs_sandbox
def test_a_retry_without_the_confinement_leaves_a_neutral_audit_check(
    world: World, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    number = world.issue("Add greet()", "Add `greet()`.", labels=["feature-crew:tier-2"])
    world.anthropic.script("claude-sonnet-5-5", _writes_greet())
    world.anthropic.script("claude-haiku-5-5", _approves())
    world.label(number)
    world.work()
    with world.github.state.lock:
        (pull,) = world.github.state.open_pulls(REPO)
    head = world.store.recent(1)[0].progress.head_sha

    _hide_bubblewrap(request, monkeypatch)
    louder = {"command": "create", "path": "greet.py", "file_text": LOUDER}
    world.anthropic.script(
        "claude-sonnet-5-5", [tool_turn(EDIT_TOOL_NAME, louder), text_turn("Louder.")]
    )
    world.github.comment_on_issue(REPO, pull.number, "/crew retry louder", user="alice")
    world.work()

    assert world.store.recent(1)[0].progress.state is TaskState.FAILED
    assert SANDBOX_REQUIRED in _status(world, number)
    with world.github.state.lock:
        audit = [
            c for c in world.github.state.check_runs.values()
            if c.name == AUDIT_CHECK and c.head_sha == head
        ]  # fmt: skip
    assert [(c.status, c.conclusion) for c in audit] == [("completed", "neutral")]
    assert "Audit refused" in str(audit[0].output)


def test_with_the_sandbox_off_by_choice_the_audit_still_runs(
    tmp_path: Path, no_bubblewrap: None
) -> None:
    (tmp_path / "test_ok.py").write_text("def test_ok() -> None:\n    pass\n")
    config = SelfAuditConfig(tools=("pytest",), sandbox="off")
    report = run_audit(tmp_path, ["test_ok.py"], config)

    assert report.tools[0].status is ToolStatus.PASSED, report.tools[0].output
