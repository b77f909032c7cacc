"""The audit's tools: how each is started, on what, and how its output becomes a verdict.

Every tool starts so that the worktree cannot replace it: `python -P` keeps the cwd (the
worktree) off sys.path, so a model's `ruff.py` or `mypy.py` is not what runs; pytest is
imported before the tree joins sys.path.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path

from pipeline.findings import parse_junit, parse_mypy, parse_ruff
from pipeline.judge import Run, by_exit_code, with_findings
from pipeline.models import ToolResult, ToolStatus
from pipeline.runner import AuditContext, execute

PYTEST_NO_TESTS = 5
PYTEST_USAGE_ERRORS = (3, 4)  # internal error, usage error: nothing itemised to trust
RUFF_CONFIGS = ("ruff.toml", ".ruff.toml")

AuditTool = Callable[[AuditContext], ToolResult]

# pytest and its plugins' imports resolve in the environment before the tree joins sys.path.
_PYTEST_BOOT = """\
import sys
try:
    import pytest
except ImportError:
    sys.exit(sys.executable + ': No module named pytest')
sys.path[:0] = {paths!r}
sys.argv[0] = 'pytest'
sys.exit(pytest.console_main())
"""


def _roots(ctx: AuditContext) -> list[str]:
    return [ctx.workdir, str(ctx.root), str(ctx.root.resolve())]


def _skipped(name: str, why: str) -> ToolResult:
    return ToolResult(name=name, status=ToolStatus.SKIPPED, output=why)


def _judged(name: str, module: str, run: Run, ctx: AuditContext) -> ToolResult:
    return by_exit_code(name, module, run, timeout_s=ctx.limit_s)


def has_ruff_config(root: Path) -> bool:
    """Whether the repository configures ruff itself (then its selection applies, not ours)."""
    if any((root / name).is_file() for name in RUFF_CONFIGS):
        return True
    try:
        pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return "ruff" in (pyproject.get("tool") or {})


# py_compile's check without its write: each file compiled in memory, each failure printed
# as py_compile prints the first (it stops there).
# (py_compile writes bytecode whatever PYTHONDONTWRITEBYTECODE says, and keeping that write off
# the tree with a pycache prefix made the interpreter compile its own stdlib afresh each run.)
_COMPILE = """\
import sys, traceback
failed = False
for path in sys.argv[1:]:
    try:
        with open(path, 'rb') as f:
            compile(f.read(), path, 'exec', dont_inherit=True)
    except Exception as err:
        if getattr(err, 'filename', None) != path:  # a message that does not say where
            sys.stderr.write(path + ': ')
        sys.stderr.write(''.join(traceback.format_exception_only(type(err), err)))
        failed = True
sys.exit(1 if failed else 0)
"""


def check_compile(ctx: AuditContext) -> ToolResult:
    files = ctx.python_files
    if not files:
        return _skipped("compile", "no changed Python files")
    run = execute(ctx, "compile", [ctx.python, "-P", "-c", _COMPILE, *files])
    return _judged("compile", "py_compile", run, ctx)


def ruff_arguments(ctx: AuditContext) -> list[str]:
    """The operator's ruff_args; the pinned fatal selection where the repository has no config."""
    args = list(ctx.config.ruff_args)
    if not args or args[0].startswith("-"):
        args.insert(0, "check")
    if not has_ruff_config(ctx.root):
        # --isolated: neither ruff's changing defaults nor a config in a parent folder.
        args += ["--isolated", "--select", ",".join(ctx.config.ruff_default_select)]
    cache = ["--cache-dir", str(ctx.cache_dir / "ruff")] if ctx.cache_dir else ["--no-cache"]
    return [*args, "--force-exclude", *cache]


def check_ruff(ctx: AuditContext) -> ToolResult:
    files = ctx.python_files
    if not files:
        return _skipped("ruff", "no changed Python files")
    args = ruff_arguments(ctx)

    def argv(home: Path) -> list[str]:
        output = ["--output-format", "json", "--output-file", str(home / "ruff.json")]
        return [ctx.python, "-P", "-m", "ruff", *args, *output, "--", *files]

    run = execute(ctx, "ruff", argv, collect=("ruff.json",))
    result = _judged("ruff", "ruff", run, ctx)
    raw = run.files.get("ruff.json")
    found = parse_ruff(raw.decode(errors="replace"), _roots(ctx)) if raw is not None else None
    if result.status is not ToolStatus.FAILED or found is None or run.exit_code != 1:
        return result
    return with_findings(result, found, files, ctx.base)


def mypy_arguments(ctx: AuditContext) -> list[str]:
    # Without a shared cache, /dev/null keeps mypy from writing .mypy_cache into the worktree.
    cache = str(ctx.cache_dir / "mypy") if ctx.cache_dir else "/dev/null"
    args = [*ctx.config.mypy_args, "-O", "json", "--cache-dir", cache]
    if ctx.target is not None:  # the target's own imports resolve, instead of being ignored
        args += ["--python-executable", str(ctx.target.python)]
    return args


def check_mypy(ctx: AuditContext) -> ToolResult:
    files = ctx.python_files
    if not files:
        return _skipped("mypy", "no changed Python files")
    argv = [ctx.python, "-P", "-m", "mypy", *mypy_arguments(ctx), "--", *files]
    run = execute(ctx, "mypy", argv, collect=("output",))
    result = _judged("mypy", "mypy", run, ctx)
    found = parse_mypy(run.files.get("output", b"").decode(errors="replace"), _roots(ctx))
    if result.status is not ToolStatus.FAILED or not found or run.exit_code != 1:
        return result  # exit 2 is mypy itself failing: its output says why
    return with_findings(result, found, files, ctx.base)


def _pytest_paths(ctx: AuditContext) -> list[str]:
    # The cwd, as `python -m pytest` has it; and, where the cached environment's editable
    # install points at another tree (no confinement mounting each tree at one place), src/.
    paths = [""]
    moved = ctx.target is not None and ctx.target.built_from != ctx.workdir
    if moved and (ctx.root / "src").is_dir():
        paths.append("src")
    return paths


def pytest_argv(ctx: AuditContext, junit: Path) -> list[str]:
    python = str(ctx.target.python) if ctx.target is not None else ctx.python
    boot = _PYTEST_BOOT.format(paths=_pytest_paths(ctx))
    args = [*ctx.config.pytest_args, "-p", "no:cacheprovider"]
    # xunit1: each test case carries its file and line, for annotations.
    return [python, "-P", "-c", boot, *args, f"--junitxml={junit}", "-o", "junit_family=xunit1"]


def check_pytest(ctx: AuditContext) -> ToolResult:
    run = execute(
        ctx, "pytest", lambda home: pytest_argv(ctx, home / "junit.xml"), collect=("junit.xml",)
    )
    result = by_exit_code(
        "pytest", "pytest", run, skip_codes=(PYTEST_NO_TESTS,), timeout_s=ctx.limit_s
    )
    if result.status is not ToolStatus.FAILED or run.exit_code in PYTEST_USAGE_ERRORS:
        return result
    found = parse_junit(run.files.get("junit.xml", b""), _roots(ctx))
    if not found:
        return result  # a failure pytest did not itemise (a crash): never forgiven
    return with_findings(result, found, (), ctx.base)


def check_bandit(ctx: AuditContext) -> ToolResult:
    files = ctx.python_files
    if not files:
        return _skipped("bandit", "no changed Python files")
    run = execute(ctx, "bandit", [ctx.python, "-P", "-m", "bandit", "-q", *files])
    return _judged("bandit", "bandit", run, ctx)


AUDIT_TOOLS: dict[str, AuditTool] = {
    "compile": check_compile,
    "ruff": check_ruff,
    "mypy": check_mypy,
    "pytest": check_pytest,
    "bandit": check_bandit,
}


def validate_tool_names(names: Iterable[str]) -> tuple[str, ...]:
    """The names, unchanged, or a ValueError naming the first one no tool answers to."""
    names = tuple(names)
    for name in names:
        if name not in AUDIT_TOOLS:
            known = ", ".join(AUDIT_TOOLS)
            raise ValueError(f"unknown audit tool {name!r} (known: {known})")
    return names
