"""The setup phase's commands: a virtualenv and the project's install, confined like the audit."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from pipeline.config import SelfAuditConfig
from pipeline.judge import Run
from pipeline.runner import AuditContext, audit_context, execute
from pipeline.target_env import SetupFailed, pytest_requirement

PIP_CONFIGS = (Path("/etc/pip.conf"), Path("/etc/xdg/pip"))


def _index_settings() -> tuple[tuple[str, str], ...]:
    # The operator's package index settings; nothing else of the worker's environment.
    return tuple((k, v) for k, v in os.environ.items() if k.startswith("PIP_"))


def _run(ctx: AuditContext, what: str, argv: Sequence[str]) -> Run:
    run = execute(ctx, "setup", argv)
    if run.exit_code is None:
        raise SetupFailed(f"{what} did not finish within {ctx.limit_s:g} s", run.output)
    return run


def _check(ctx: AuditContext, what: str, argv: Sequence[str]) -> None:
    run = _run(ctx, what, argv)
    if run.exit_code != 0:
        raise SetupFailed(f"{what} failed (exit {run.exit_code})", run.output)


def _seed_pip(path: Path) -> None:
    """Our pip copied in: ensurepip costs seconds per environment; a copy costs almost none."""
    spec = importlib.util.find_spec("pip")
    if spec is None or not spec.submodule_search_locations:
        raise SetupFailed("pip is not installed on the worker")
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = path / "lib" / version / "site-packages"
    shutil.copytree(spec.submodule_search_locations[0], site / "pip", dirs_exist_ok=True)
    script = path / "bin" / "pip"
    script.write_text(
        f"#!{path / 'bin' / 'python'}\nimport sys\nfrom pip._internal.cli.main import main\n"
        "sys.exit(main())\n"
    )
    script.chmod(0o755)


def build_env(  # noqa: PLR0913 - the Builder signature: an env build is made of these
    path: Path,
    tree: Path,
    steps: Sequence[Sequence[str]],
    config: SelfAuditConfig,
    *,
    cache_dir: Path,
    sandbox_supported: bool | None,
) -> str:
    """Create the venv at path and run steps in tree; the workdir the project was installed from."""
    path.mkdir(parents=True)  # empty: a half-built one was removed; bound read-write inside
    # Per repository: a shared pip cache would let one repository's setup.py poison another's.
    pip_cache = cache_dir / "pip"
    pip_cache.mkdir(parents=True, exist_ok=True)
    env_vars = (
        *_index_settings(),
        ("PATH", f"{path / 'bin'}{os.pathsep}{os.environ.get('PATH', os.defpath)}"),
        ("VIRTUAL_ENV", str(path)),
        ("PIP_CACHE_DIR", str(pip_cache)),
        ("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
    )
    ctx = audit_context(
        tree,
        (),
        config,
        sandbox_supported=sandbox_supported,
        network=True,
        writable=(path, pip_cache),
        readable=tuple(p for p in PIP_CONFIGS if p.exists()),
        extra_env=env_vars,
        timeout_s=config.setup_timeout_s,
    )
    venv = [sys.executable, "-P", "-m", "venv", "--without-pip", str(path)]
    _check(ctx, "creating the virtualenv", venv)
    _seed_pip(path)
    for step in steps:
        _check(ctx, f"`{' '.join(step)}`", step)
    python = str(path / "bin" / "python")
    if _run(ctx, "looking for pytest", [python, "-P", "-c", "import pytest"]).exit_code != 0:
        requirement = pytest_requirement()
        _check(ctx, f"installing {requirement}", [python, "-m", "pip", "install", requirement])
    return ctx.workdir
