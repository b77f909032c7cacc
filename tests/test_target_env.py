"""The target's environment: what it installs from, when it is rebuilt, and how it is shared."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pygit2
import pytest

from pipeline.basetree import STALE_S, sweep
from pipeline.config import OperatorConfig, SelfAuditConfig
from pipeline.repo_config import narrow, parse_repo_config
from pipeline.setup_phase import build_env
from pipeline.target_env import (
    MARKER,
    EnvBuild,
    SetupFailed,
    ensure_target_env,
    env_key,
    install_steps,
)
from tests.realprojects import commit_all

PIP = ["python", "-m", "pip", "install", "--no-input", "--progress-bar", "off"]
PROJECT = b'[project]\nname = "demo"\nversion = "1"\n'


def test_a_project_installs_editable_with_its_first_test_extra() -> None:
    extras = b'[project.optional-dependencies]\ndocs = ["x"]\ntesting = ["y"]\ndev = ["z"]\n'
    files = {"pyproject.toml": PROJECT + extras, "requirements.txt": b"ignored\n"}
    assert install_steps(files, SelfAuditConfig()) == [[*PIP, "-e", ".[testing]"]]
    chosen = SelfAuditConfig(extras=("docs", "dev"))
    assert install_steps(files, chosen) == [[*PIP, "-e", ".[docs,dev]"]]
    assert install_steps({"pyproject.toml": PROJECT}, SelfAuditConfig()) == [[*PIP, "-e", "."]]


def test_requirements_files_then_setup_py_or_the_setup_command() -> None:
    files = {"requirements.txt": b"a\n", "requirements-dev.txt": b"b\n", "setup.py": b""}
    assert install_steps(files, SelfAuditConfig()) == [
        [*PIP, "-r", "requirements-dev.txt", "-r", "requirements.txt"],
        [*PIP, "-e", "."],
    ]
    only_tools = {"pyproject.toml": b"[tool.ruff]\nline-length = 99\n"}
    assert install_steps(only_tools, SelfAuditConfig()) == []  # nothing declared: no env
    scripted = SelfAuditConfig(setup="make env")
    assert install_steps(files, scripted) == [["sh", "-c", "make env"]]
    with pytest.raises(SetupFailed, match="not valid TOML"):
        install_steps({"pyproject.toml": b"[project"}, SelfAuditConfig())


def test_the_key_changes_with_what_the_env_is_built_from_only() -> None:
    files = {"pyproject.toml": PROJECT}
    key = env_key(files, SelfAuditConfig())
    assert env_key(dict(files), SelfAuditConfig(tools=("ruff",))) == key
    assert env_key({"pyproject.toml": PROJECT + b"\n"}, SelfAuditConfig()) != key
    assert env_key(files, SelfAuditConfig(extras=("dev",))) != key
    assert env_key(files, SelfAuditConfig(setup="make env")) != key


def test_the_repository_file_names_the_setup_command_and_extras() -> None:
    repo = parse_repo_config('[self_audit]\nsetup = "pip install -e .[all]"\nextras = ["all"]\n')
    config = narrow(OperatorConfig(), repo).self_audit
    assert (config.setup, config.extras) == ("pip install -e .[all]", ("all",))
    assert narrow(OperatorConfig(), parse_repo_config(None)).self_audit.setup is None


def _repo(root: Path) -> tuple[Path, str]:
    root.mkdir()
    (root / "requirements.txt").write_text("# nothing yet\n")
    pygit2.init_repository(str(root), initial_head="main")
    commit_all(root, "base")
    return root, str(pygit2.Repository(str(root)).head.target)


def test_one_build_serves_concurrent_tasks_and_a_half_built_env_is_rebuilt(
    tmp_path: Path,
) -> None:
    repo, sha = _repo(tmp_path / "repo")
    home = tmp_path / "home"
    builds: list[EnvBuild] = []

    def build() -> None:
        builds.append(
            ensure_target_env(
                home=home,
                repo_id=7,
                repo_path=repo,
                base_sha=sha,
                config=SelfAuditConfig(),
                cache_dir=home / "cache" / "7",
                build=build_env,
            )
        )

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(b.reused for b in builds) == [False, True]  # the lock: one built, one waited
    env = builds[0].env
    assert env is not None and {b.env for b in builds} == {env}
    assert (env.python.parent / "python").exists()
    print(f"\nsmall environment: cold {max(b.duration_s for b in builds):.1f} s")

    (env.root / MARKER).unlink()  # as if the worker died before the build completed
    (env.root / "half-built").write_text("")
    build()
    assert builds[-1].reused is False
    assert (env.root / MARKER).exists() and not (env.root / "half-built").exists()


def test_exports_a_killed_worker_left_behind_are_swept(tmp_path: Path) -> None:
    old, fresh = tmp_path / "base-old", tmp_path / "base-fresh"
    for folder in (old, fresh):
        (folder / "tree").mkdir(parents=True)
    os.utime(old, (time.time() - 2 * STALE_S, time.time() - 2 * STALE_S))
    sweep(tmp_path)
    assert not old.exists() and fresh.exists()
