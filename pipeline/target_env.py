"""The target repository's own virtualenv, built from its base commit's declarations and cached.

The setup phase may reach package indexes, so it runs only the repository owner's files (an
export of the base commit, never the worktree), through the same scrubbed, confined runner as
the audit. An environment lives at FEATURE_CREW_HOME/envs/<repo>/<hash of what it was built
from>, behind a per-repository lock, and counts only once its completion marker is written.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import sys
import time
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pipeline import basetree
from pipeline.config import SelfAuditConfig

RECIPE = "1"  # bump when the way environments are built changes: old ones are rebuilt
TEST_EXTRAS = ("test", "tests", "testing", "dev")
MARKER = ".feature-crew-env.json"
KEPT_PER_REPO = 3
_CREDENTIALS = re.compile(r"(://)[^/\s:@]+:[^/\s@]+@")


class SetupFailed(Exception):
    """The environment could not be built: our infrastructure's failure, not the change's."""

    def __init__(self, reason: str, output: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.output = _CREDENTIALS.sub(r"\1***@", output)


@dataclass(frozen=True)
class TargetEnv:
    root: Path
    python: Path
    built_from: str  # where the project's tree was when installed editable (its workdir)
    key: str


class Builder(Protocol):
    def __call__(  # noqa: PLR0913 - the Builder signature: an env build is made of these
        self,
        path: Path,
        tree: Path,
        steps: Sequence[Sequence[str]],
        config: SelfAuditConfig,
        *,
        cache_dir: Path,
        sandbox_supported: bool | None,
    ) -> str:
        """Create the venv at path, run steps in tree; the workdir it was installed from."""


@dataclass(frozen=True)
class EnvBuild:
    env: TargetEnv | None  # None: the repository declares nothing to install
    reused: bool
    duration_s: float


def pytest_requirement() -> str:
    """The test runner we ship, at the range we pin, for projects that do not bring one."""
    for requirement in importlib.metadata.requires("feature-crew") or []:
        if re.match(r"pytest\s*[<>=!~]", requirement) and ";" not in requirement:
            return requirement.replace(" ", "")
    return "pytest"


def _pyproject(files: Mapping[str, bytes]) -> dict[str, Any]:
    try:
        return tomllib.loads(files.get("pyproject.toml", b"").decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise SetupFailed(f"pyproject.toml on the base commit is not valid TOML: {err}") from None


def install_steps(files: Mapping[str, bytes], config: SelfAuditConfig) -> list[list[str]]:
    """What to run in the fresh env (python is `python`, on PATH first); [] = nothing declared."""
    pip = ["python", "-m", "pip", "install", "--no-input", "--progress-bar", "off"]
    if config.setup is not None:
        return [["sh", "-c", config.setup]]
    project = _pyproject(files).get("project")
    installable = project is not None or "setup.py" in files or "setup.cfg" in files
    if isinstance(project, dict):
        offered = project.get("optional-dependencies") or {}
        extras = config.extras
        if extras is None:
            extras = next(((e,) for e in TEST_EXTRAS if e in offered), ())
        target = f".[{','.join(extras)}]" if extras else "."
        return [[*pip, "-e", target]]
    steps = []
    requirements = sorted(n for n in files if n.startswith("requirements"))
    if requirements:
        steps.append([*pip, *(arg for name in requirements for arg in ("-r", name))])
    if installable:
        steps.append([*pip, "-e", "."])
    return steps


def env_key(files: Mapping[str, bytes], config: SelfAuditConfig) -> str:
    """A hash of everything the environment is built from, and of how."""
    digest = hashlib.sha256()
    parts = [RECIPE, sys.version, os.path.realpath(sys.executable), pytest_requirement()]
    parts += [config.setup or "", json.dumps(config.extras)]
    for name in sorted(files):
        parts += [name, hashlib.sha256(files[name]).hexdigest()]
    digest.update("\0".join(parts).encode())
    return digest.hexdigest()[:20]


@contextmanager
def _repo_lock(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # held while one worker builds; others wait for it
        yield


def _load(path: Path, key: str) -> TargetEnv | None:
    try:
        marker = json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return None
    real = path.resolve()  # the confinement shows real paths only
    python = real / "bin" / "python"
    if marker.get("key") != key or not python.exists():
        return None
    return TargetEnv(real, python, str(marker["built_from"]), key)


def _prune(folder: Path, keep: Path) -> None:
    """Old environments go, the newest few stay: a task still auditing may be using one."""
    envs = sorted(
        (p for p in folder.iterdir() if p.is_dir() and p != keep),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in envs[KEPT_PER_REPO - 1 :]:
        shutil.rmtree(old, ignore_errors=True)


def ensure_target_env(  # noqa: PLR0913 - keyword-only, each named at the call
    *,
    home: Path,
    repo_id: int,
    repo_path: Path,
    base_sha: str,
    config: SelfAuditConfig,
    cache_dir: Path,
    build: Builder,
    sandbox_supported: bool | None = None,
) -> EnvBuild:
    """The cached environment for these base files, built first if need be; SetupFailed if not.

    build: what creates one (pipeline.setup_phase.build_env, through the audit's runner).
    """
    started = time.monotonic()
    files = basetree.env_files(repo_path, base_sha)
    steps = install_steps(files, config)
    if not steps:
        return EnvBuild(None, True, 0.0)
    key = env_key(files, config)
    folder = home / "envs" / str(repo_id)
    path = folder / key
    with _repo_lock(folder):
        found = _load(path, key)
        if found is not None:
            os.utime(path)  # recently used: kept by _prune
            return EnvBuild(found, True, round(time.monotonic() - started, 3))
        shutil.rmtree(path, ignore_errors=True)  # a build that crashed half-way
        with basetree.exported(repo_path, base_sha, home / "scratch") as tree:
            built_from = build(
                path, tree, steps, config, cache_dir=cache_dir, sandbox_supported=sandbox_supported
            )
        marker = {"key": key, "built_from": built_from, "files": sorted(files)}
        (path / MARKER).write_text(json.dumps(marker))
        _prune(folder, path)
    env = TargetEnv(path, path / "bin" / "python", built_from, key)
    return EnvBuild(env, False, round(time.monotonic() - started, 3))
