"""The audit on a real project (inflect 7.5.0 from its PyPI sdist): its env, its rules, its base."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pygit2
import pytest
import redis

from bot.store import TaskStore
from pipeline.audit_plan import AuditPlan, prepare_audit
from pipeline.config import SelfAuditConfig
from pipeline.generate import EDIT_TOOL_NAME
from pipeline.messages import AUDIT_CHECK, STATUS_MARKER
from pipeline.models import AuditVerdict, TaskState, ToolStatus
from pipeline.setup_phase import build_env
from pipeline.target_env import EnvBuild, ensure_target_env
from tests.doubles.models import text_turn, tool_turn
from tests.realprojects import INFLECT, Unreachable, commit_all, unpack_as_repo
from tests.test_end_to_end import _approves
from tests.world import REPO, World

REPO_ID = 1
BROKEN_ORDINAL = {"old_str": '    twelve="twelfth",', "new_str": '    twelve="twelveth",'}
FIXED_ORDINAL = {
    "old_str": '    twelve="twelveth",',
    "new_str": '    twelve="twelfth",  # irregular',
}
LINT_CONFIGS = ("ruff.toml", "mypy.ini", "pytest.ini")


@dataclass(frozen=True)
class Built:
    home: Path
    source: Path
    build: EnvBuild


def _head(repo: Path) -> str:
    return str(pygit2.Repository(str(repo)).head.target)


@pytest.fixture(scope="session")
def inflect(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """inflect as a git repository and its environment, built once (cold) for the session."""
    root = tmp_path_factory.mktemp("inflect")
    try:
        source = unpack_as_repo(INFLECT, root / "source")
    except Unreachable as err:
        pytest.skip(f"inflect's sdist is not reachable: {err}")
    home = root / "home"
    build = ensure_target_env(
        home=home,
        repo_id=REPO_ID,
        repo_path=source,
        base_sha=_head(source),
        config=SelfAuditConfig(),
        cache_dir=home / "cache" / str(REPO_ID),
        build=build_env,
    )
    return Built(home, source, build)


@pytest.fixture
def store(redis_client: redis.Redis) -> TaskStore:
    return TaskStore(redis_client)


@pytest.fixture
def clone(inflect: Built, tmp_path: Path) -> Path:
    """A task's own copy of the repository, as a worktree is."""
    return Path(shutil.copytree(inflect.source, tmp_path / "inflect", symlinks=True))


def _plan(inflect: Built, repo: Path, store: TaskStore, config: SelfAuditConfig) -> AuditPlan:
    plan = prepare_audit(
        cache=store,
        home=inflect.home,
        repo_id=REPO_ID,
        repo_path=repo,
        base_sha=_head(repo),
        config=config,
    )
    assert isinstance(plan, AuditPlan), plan
    return plan


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_the_environment_is_built_once_and_reused_by_the_next_task(
    inflect: Built, clone: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = inflect.build
    started = time.monotonic()
    second = ensure_target_env(
        home=inflect.home,
        repo_id=REPO_ID,
        repo_path=clone,
        base_sha=_head(clone),
        config=SelfAuditConfig(),
        cache_dir=inflect.home / "cache" / str(REPO_ID),
        build=build_env,
    )
    reuse_s = time.monotonic() - started
    with capsys.disabled():  # in the test output, passing or not
        print(f"\n[inflect environment: cold {first.duration_s:.2f} s, reused in {reuse_s:.3f} s]")

    assert first.env is not None and second.env is not None
    assert (first.reused, second.reused) == (False, True)
    assert second.env.root == first.env.root
    probe = "import more_itertools, typeguard, pytest, pygments"  # deps and the test extra
    subprocess.run([str(second.env.python), "-c", probe], check=True)
    shown = subprocess.run(
        [str(second.env.python), "-m", "pip", "show", "inflect"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert "Editable project location" in shown.stdout


def test_a_change_adding_no_finding_passes_despite_the_existing_ones(
    inflect: Built, clone: Path, store: TaskStore
) -> None:
    config = SelfAuditConfig()
    plan = _plan(inflect, clone, store, config)
    try:
        _edit(clone / "inflect/__init__.py", '"""\ninflect:', '"""\n\ninflect:')  # shifts lines
        _edit(clone / "pyproject.toml", '"typeguard >= 4.0.1",', '"typeguard >= 4.0.1", "rich",')
        report = plan.audit(clone, ["inflect/__init__.py", "pyproject.toml"], config)
    finally:
        plan.close()

    tools = {t.name: t for t in report.tools}
    assert report.verdict is AuditVerdict.READY_FOR_REVIEW, report
    assert {n: t.status for n, t in tools.items()} == dict.fromkeys(tools, ToolStatus.PASSED)
    assert tools["ruff"].new_count == 0 and tools["ruff"].known_count >= 100
    assert tools["mypy"].new_count == 0 and tools["mypy"].known_count > 0
    assert any("pyproject.toml" in note and "base commit's environment" in note
               for note in report.notes)  # fmt: skip


def test_without_lint_config_only_fatal_findings_count(
    inflect: Built, clone: Path, store: TaskStore
) -> None:
    for name in LINT_CONFIGS:
        (clone / name).unlink()
    commit_all(clone, "no lint config")
    config = SelfAuditConfig(tools=("compile", "ruff"))
    plan = _plan(inflect, clone, store, config)
    init = clone / "inflect/__init__.py"
    try:
        _edit(init, "import ast\n", "import sys\nimport ast\nimport abc\n")  # out of order
        passing = plan.audit(clone, ["inflect/__init__.py"], config)
        init.write_text(init.read_text() + "\n\nprint(undefined_greeting)\n")
        failing = plan.audit(clone, ["inflect/__init__.py"], config)
    finally:
        plan.close()

    assert passing.verdict is AuditVerdict.READY_FOR_REVIEW, passing
    ruff = next(t for t in failing.tools if t.name == "ruff")
    assert failing.verdict is AuditVerdict.NEEDS_RETRY
    assert [(f.rule, f.message) for f in ruff.findings] == [
        ("F821", "Undefined name `undefined_greeting`")
    ]


# --- through the whole pipeline ---------------------------------------------------------------


def _inflect_world(world: World, inflect: Built, extra: dict[str, str] | None = None) -> None:
    """The world's repository becomes inflect; its environment is the session's, already built."""
    tracked = pygit2.Repository(str(inflect.source)).index
    files = {entry.path: (inflect.source / entry.path).read_text() for entry in tracked}
    world.github.push_branch(REPO, "main", {**files, **(extra or {})})
    repo_id = world.github.state.repos[REPO].id
    envs = world.settings.env.home / "envs"
    envs.mkdir(parents=True, exist_ok=True)
    (envs / str(repo_id)).symlink_to(inflect.home / "envs" / str(REPO_ID))


@pytest.fixture
def inflect_world(world: World, inflect: Built) -> Iterator[World]:
    _inflect_world(world, inflect)
    yield world


def _breaks_then_fixes() -> list:
    path = "inflect/__init__.py"
    return [
        tool_turn(EDIT_TOOL_NAME, {"command": "str_replace", "path": path, **BROKEN_ORDINAL}),
        text_turn("Changed the ordinal of twelve."),
        tool_turn(EDIT_TOOL_NAME, {"command": "str_replace", "path": path, **FIXED_ORDINAL}),
        text_turn("Restored it."),
    ]


def test_a_change_that_breaks_inflections_is_caught_and_fed_back(inflect_world: World) -> None:
    world = inflect_world
    number = world.issue("Spell twelfth", "Touch the ordinals.", labels=["feature-crew:tier-2"])
    world.anthropic.script("claude-sonnet-5-5", _breaks_then_fixes())
    world.anthropic.script("claude-haiku-5-5", _approves())
    world.label(number)
    world.work()

    task = world.store.recent(1)[0]
    assert task.progress.state is TaskState.PR_OPEN, task.progress.error
    assert task.progress.attempts == 2
    second_attempt = world.anthropic.bodies("claude-sonnet-5-5")[2]
    prompt = str(second_attempt["messages"][0]["content"])
    assert "tests/test_inflections.py" in prompt
    assert "twelveth" in prompt  # the assertion's own output
    assert "### ruff" not in prompt and "### mypy" not in prompt  # their findings were there


def test_a_base_whose_tests_cannot_be_imported_is_not_audited(world: World, inflect: Built) -> None:
    _inflect_world(world, inflect, {"tests/test_extra.py": "import undeclared_dependency\n"})
    number = world.issue("Anything", "Touch the ordinals.", labels=["feature-crew:tier-2"])
    world.label(number)
    world.work()

    task = world.store.recent(1)[0]
    assert task.progress.state is TaskState.FAILED
    assert "could not audit" in (task.progress.error or "")
    assert "cannot be collected" in (task.progress.error or "")
    assert world.anthropic.bodies() == []  # said before any model spend
    _assert_neutral_audit(world, number, "could not audit")


def test_a_setup_that_fails_is_neutral_and_said_plainly(world: World) -> None:
    toml = '[self_audit]\nsetup = "echo resolving; exit 3"\n'
    world.github.push_branch(REPO, "main", {".github/feature-crew.toml": toml})
    number = world.issue("Add greet()", "Add `greet()`.", labels=["feature-crew:tier-2"])
    world.label(number)
    world.work()

    task = world.store.recent(1)[0]
    assert task.progress.state is TaskState.FAILED
    assert world.anthropic.bodies() == []
    _assert_neutral_audit(world, number, "environment could not be built")


def _assert_neutral_audit(world: World, number: int, said: str) -> None:
    gh = world.github
    with gh.state.lock:
        runs = [r for r in gh.state.check_runs.values() if r.name == AUDIT_CHECK]
        comments = [c.body for c in gh.state.comments_on(REPO, number) if STATUS_MARKER in c.body]
    assert [r.conclusion for r in runs] == ["neutral"]
    assert said in runs[0].output["summary"]
    assert "not a verdict on any change" in runs[0].output["summary"]
    assert len(comments) == 1 and said in comments[0]
    assert "Traceback" not in comments[0]
