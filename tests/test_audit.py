"""The self-audit against real tools on small temporary projects."""

from __future__ import annotations

import fcntl
import importlib.util
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

from pipeline.audit import run_audit
from pipeline.audit_feedback import audit_feedback
from pipeline.audit_tools import AUDIT_TOOLS, validate_tool_names
from pipeline.config import SelfAuditConfig
from pipeline.errors import PermanentError
from pipeline.models import AuditReport, AuditVerdict, ToolStatus

CLEAN = 'def greet(name: str) -> str:\n    return f"Hello, {name}"\n'
CLEAN_TEST = (
    "from app import greet\n\n\ndef test_greet() -> None:\n    assert greet('a') == 'Hello, a'\n"
)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy/ruff cache for the module: a cold mypy run costs seconds, a warm one little."""
    return tmp_path_factory.mktemp("audit-cache")


def project(root: Path, files: dict[str, str]) -> list[str]:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return list(files)


def audit(
    root: Path, changed: list[str], cache_dir: Path, *tools: str, timeout_s: float = 120
) -> AuditReport:
    config = SelfAuditConfig(tools=tools, timeout_s=timeout_s)
    return run_audit(root, changed, config, cache_dir=cache_dir)


def statuses(report: AuditReport) -> dict[str, ToolStatus]:
    return {t.name: t.status for t in report.tools}


def test_a_clean_project_passes_every_default_tool(tmp_path: Path, cache_dir: Path) -> None:
    changed = project(tmp_path, {"app.py": CLEAN, "test_app.py": CLEAN_TEST})
    report = audit(tmp_path, changed, cache_dir, "compile", "ruff", "mypy", "pytest")

    assert statuses(report) == dict.fromkeys(["compile", "ruff", "mypy", "pytest"], "passed")
    assert report.verdict is AuditVerdict.READY_FOR_REVIEW
    assert report.files_checked == ("app.py", "test_app.py")
    assert report.duration_s >= max(t.duration_s for t in report.tools) * 0.9  # side by side
    assert audit_feedback(report) == ""


def test_the_worktree_is_left_without_caches_or_bytecode(tmp_path: Path, cache_dir: Path) -> None:
    changed = project(tmp_path, {"app.py": CLEAN, "test_app.py": CLEAN_TEST})
    audit(tmp_path, changed, cache_dir, "compile", "ruff", "mypy", "pytest")

    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.py", "test_app.py"]


def test_the_tools_read_the_bytecode_already_compiled_and_write_none(
    tmp_path: Path, cache_dir: Path
) -> None:
    """A pycache prefix would make every run compile pytest and the stdlib afresh (seconds)."""
    probe = (
        "import sys\n\n\ndef test_bytecode() -> None:\n"
        "    assert sys.pycache_prefix is None and sys.dont_write_bytecode\n"
    )
    changed = project(tmp_path, {"app.py": CLEAN, "test_app.py": probe})
    report = audit(tmp_path, changed, cache_dir, "compile", "pytest")

    assert statuses(report) == {"compile": "passed", "pytest": "passed"}, audit_feedback(report)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.py", "test_app.py"]


def test_without_a_cache_dir_nothing_is_written_into_the_worktree(tmp_path: Path) -> None:
    changed = project(tmp_path, {"app.py": CLEAN})
    config = SelfAuditConfig(tools=("compile", "ruff"))
    report = run_audit(tmp_path, changed, config)

    assert report.verdict is AuditVerdict.READY_FOR_REVIEW
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.py"]


def test_a_syntax_error_fails_compile(tmp_path: Path, cache_dir: Path) -> None:
    changed = project(tmp_path, {"app.py": "def broken(:\n    pass\n"})
    report = audit(tmp_path, changed, cache_dir, "compile")

    assert statuses(report) == {"compile": ToolStatus.FAILED}
    assert report.verdict is AuditVerdict.NEEDS_RETRY
    assert "SyntaxError" in report.tools[0].output
    assert "app.py" in audit_feedback(report)


def test_compile_names_every_file_it_cannot_compile_and_passes_the_rest(
    tmp_path: Path, cache_dir: Path
) -> None:
    files = {
        "good.py": CLEAN,
        "nul.py": "x = 1\0\n",  # compile()'s error names no file
        "latin.py": "# -*- coding: utf-8 -*-\n",
        "indent.py": "def f():\nreturn 1\n",
    }
    changed = project(tmp_path, files)
    (tmp_path / "latin.py").write_bytes(b"name = '\xe9'\n")  # not UTF-8, no coding line
    report = audit(tmp_path, changed, cache_dir, "compile")

    output = report.tools[0].output
    assert statuses(report) == {"compile": ToolStatus.FAILED}
    assert "nul.py: SyntaxError: source code string cannot contain null bytes" in output
    assert 'File "latin.py"' in output and "utf-8" in output
    assert 'File "indent.py", line 2' in output and "IndentationError" in output
    assert "good.py" not in output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(files)


def test_an_undefined_name_fails_ruff_with_its_finding(tmp_path: Path, cache_dir: Path) -> None:
    changed = project(tmp_path, {"app.py": CLEAN + "\n\nprint(greeting)\n"})
    report = audit(tmp_path, changed, cache_dir, "ruff")

    assert statuses(report) == {"ruff": ToolStatus.FAILED}
    (finding,) = report.tools[0].findings
    assert (finding.path, finding.line, finding.rule) == ("app.py", 5, "F821")
    feedback = audit_feedback(report)
    assert "### ruff: failed (exit 1)" in feedback
    assert "`app.py:5` F821: Undefined name `greeting`" in feedback


def test_without_a_ruff_config_only_the_fatal_set_applies(tmp_path: Path, cache_dir: Path) -> None:
    changed = project(tmp_path, {"app.py": "import sys\nimport os\n\n" + CLEAN})
    report = audit(tmp_path, changed, cache_dir, "ruff")

    assert statuses(report) == {"ruff": ToolStatus.PASSED}  # no I001, no F401: not asked for


def test_the_repositorys_own_ruff_config_applies(tmp_path: Path, cache_dir: Path) -> None:
    config = '[tool.ruff.lint]\nselect = ["F401"]\n'
    project(tmp_path, {"pyproject.toml": config})
    changed = project(tmp_path, {"app.py": "import os\n\n" + CLEAN})
    report = audit(tmp_path, changed, cache_dir, "ruff")

    assert statuses(report) == {"ruff": ToolStatus.FAILED}
    assert [f.rule for f in report.tools[0].findings] == ["F401"]


def test_a_type_error_fails_mypy(tmp_path: Path, cache_dir: Path) -> None:
    changed = project(tmp_path, {"app.py": 'count: int = "three"\n'})
    report = audit(tmp_path, changed, cache_dir, "mypy")

    assert statuses(report) == {"mypy": ToolStatus.FAILED}
    assert "Incompatible types" in report.tools[0].output


def test_a_failing_test_fails_pytest(tmp_path: Path, cache_dir: Path) -> None:
    failing = "def test_sum() -> None:\n    assert 1 + 1 == 3\n"
    changed = project(tmp_path, {"test_sum.py": failing})
    report = audit(tmp_path, changed, cache_dir, "pytest")

    assert statuses(report) == {"pytest": ToolStatus.FAILED}
    assert report.tools[0].exit_code == 1
    assert "1 failed" in report.tools[0].output


def test_no_tests_collected_is_skipped_not_failed(tmp_path: Path, cache_dir: Path) -> None:
    changed = project(tmp_path, {"app.py": CLEAN})
    report = audit(tmp_path, changed, cache_dir, "pytest")

    assert statuses(report) == {"pytest": ToolStatus.SKIPPED}
    assert report.tools[0].exit_code == 5
    assert report.verdict is AuditVerdict.READY_FOR_REVIEW


def test_no_changed_python_files_skips_the_file_tools(tmp_path: Path, cache_dir: Path) -> None:
    changed = project(tmp_path, {"README.md": "# hi\n"})
    report = audit(tmp_path, [*changed, "gone.py"], cache_dir, "compile", "ruff", "mypy")

    assert set(statuses(report).values()) == {ToolStatus.SKIPPED}
    assert report.files_checked == ()
    assert report.verdict is AuditVerdict.READY_FOR_REVIEW


def test_deleted_files_are_not_checked(tmp_path: Path, cache_dir: Path) -> None:
    changed = project(tmp_path, {"app.py": CLEAN})
    report = audit(tmp_path, [*changed, "removed.py"], cache_dir, "compile")

    assert statuses(report) == {"compile": ToolStatus.PASSED}
    assert report.files_checked == ("app.py",)


def test_a_hanging_tool_is_killed_with_its_children(tmp_path: Path, cache_dir: Path) -> None:
    hang = (
        "import subprocess, sys, time\n\n"
        "def test_hang() -> None:\n"
        f"    subprocess.Popen([sys.executable, '-c', {HOLD_LOCK!r}, 'child.lock'])\n"
        "    time.sleep(3600)\n"  # were it not killed, the suite's own timeout would fail this
    )
    changed = project(tmp_path, {"test_hang.py": hang})
    report = audit(tmp_path, changed, cache_dir, "pytest", timeout_s=20)  # time to start

    assert statuses(report) == {"pytest": ToolStatus.TIMED_OUT}
    assert report.tools[0].exit_code is None
    assert report.verdict is AuditVerdict.NEEDS_RETRY
    assert "timed out" in audit_feedback(report)
    assert (tmp_path / "child.lock.ready").exists(), report.tools[0].output
    assert not _held(tmp_path / "child.lock")


# Holds an flock on argv[1] until killed: whoever can take the lock knows the holder is gone
# (pids cannot tell: inside the confinement they belong to its own PID namespace).
HOLD_LOCK = (
    "import fcntl, sys, time\n"
    "lock = open(sys.argv[1], 'w')\n"
    "fcntl.flock(lock, fcntl.LOCK_EX)\n"
    "open(sys.argv[1] + '.ready', 'w').close()\n"
    "time.sleep(60)\n"
)


def _held(path: Path) -> bool:
    with path.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False


class _JobTimeout(Exception):
    """Stands in for rq.timeouts.JobTimeoutException: an Exception raised by a signal handler."""


@pytest.fixture
def interrupt_when(tmp_path: Path) -> Iterator[Path]:
    """Once the yielded file exists, raise _JobTimeout in the main thread, as RQ's timeout does."""
    marker = tmp_path / "tool.pid"
    done = threading.Event()

    def raise_timeout(signum: int, frame: FrameType | None) -> None:
        raise _JobTimeout("job exceeded its timeout")

    def fire() -> None:
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline and not done.is_set():
            time.sleep(0.05)
        if not done.is_set():
            time.sleep(0.2)  # let the tool write the grandchild's pid too
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGUSR1)

    previous = signal.signal(signal.SIGUSR1, raise_timeout)
    thread = threading.Thread(target=fire, daemon=True)
    thread.start()
    try:
        yield marker
    finally:
        done.set()
        thread.join()
        signal.signal(signal.SIGUSR1, previous)


def test_an_interrupted_audit_still_kills_the_tools_process_group(
    tmp_path: Path, cache_dir: Path, interrupt_when: Path
) -> None:
    hang = (
        "import fcntl, subprocess, sys, time\n\n"
        "def test_hang() -> None:\n"
        "    lock = open('tool.lock', 'w')\n"
        "    fcntl.flock(lock, fcntl.LOCK_EX)\n"
        f"    subprocess.Popen([sys.executable, '-c', {HOLD_LOCK!r}, 'child.lock'])\n"
        f"    open({interrupt_when.name!r}, 'w').close()\n"
        "    time.sleep(3600)\n"  # were it not killed, the suite's own timeout would fail this
    )
    changed = project(tmp_path, {"test_hang.py": hang})
    with pytest.raises(_JobTimeout):
        audit(tmp_path, changed, cache_dir, "pytest", timeout_s=3600)

    assert not _held(tmp_path / "tool.lock")
    if (tmp_path / "child.lock.ready").exists():
        assert not _held(tmp_path / "child.lock")


def test_a_tool_that_cannot_start_keeps_its_path_out_of_the_public_message(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "secret-location" / "bin" / "python"
    changed = project(tmp_path / "repo", {"app.py": CLEAN})
    config = SelfAuditConfig(tools=("ruff",))
    with pytest.raises(PermanentError) as caught:
        run_audit(tmp_path / "repo", changed, config, python=str(missing))

    assert str(missing) in str(caught.value)  # the log keeps the detail
    assert "secret-location" not in caught.value.public
    assert caught.value.public == "the self-audit could not start ruff"


def test_the_tools_do_not_see_the_workers_secrets(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", "s3cret-value")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-not-for-generated-code")
    monkeypatch.setenv("REDIS_URL", "redis://example:6379/0")
    probe = (
        "import os\n\n"
        "def test_environment_is_scrubbed() -> None:\n"
        "    assert 'GITHUB_WEBHOOK_SECRET' not in os.environ\n"
        "    assert 'ANTHROPIC_API_KEY' not in os.environ\n"
        "    assert 'REDIS_URL' not in os.environ\n"
        "    assert os.environ['PYTHONHASHSEED'] == '0'\n"
        f"    assert os.environ['HOME'] != {str(Path.home())!r}\n"
        "    print(sorted(os.environ))\n"
    )
    changed = project(tmp_path, {"test_env.py": probe})
    report = audit(tmp_path, changed, cache_dir, "pytest")

    assert statuses(report) == {"pytest": ToolStatus.PASSED}, report.tools[0].output
    assert "s3cret-value" not in report.model_dump_json()


def test_a_tool_that_is_not_installed_is_unavailable(tmp_path: Path, cache_dir: Path) -> None:
    changed = project(tmp_path, {"app.py": CLEAN})
    report = audit(tmp_path, changed, cache_dir, "compile", "bandit")

    if importlib.util.find_spec("bandit") is None:
        assert statuses(report) == {"compile": "passed", "bandit": "unavailable"}
    else:
        assert statuses(report)["bandit"] in (ToolStatus.PASSED, ToolStatus.FAILED)
    assert report.verdict is AuditVerdict.READY_FOR_REVIEW


def test_a_missing_module_is_unavailable_whatever_the_tool(tmp_path: Path) -> None:
    # An interpreter without ruff installed: -I keeps the worker's site-packages out.
    isolated = tmp_path / "bare-python"
    isolated.write_text('#!/bin/sh\nexec python3 -I -S "$@"\n')
    isolated.chmod(0o755)
    changed = project(tmp_path / "repo", {"app.py": CLEAN})
    config = SelfAuditConfig(tools=("ruff",))
    report = run_audit(tmp_path / "repo", changed, config, python=str(isolated))

    assert statuses(report) == {"ruff": ToolStatus.UNAVAILABLE}
    assert report.verdict is AuditVerdict.READY_FOR_REVIEW


def test_the_report_round_trips_through_json(tmp_path: Path, cache_dir: Path) -> None:
    changed = project(tmp_path, {"app.py": "print(undefined)\n"})
    report = audit(tmp_path, changed, cache_dir, "compile", "ruff", "pytest")

    again = AuditReport.model_validate_json(report.model_dump_json())
    assert again == report
    assert json.loads(report.model_dump_json())["verdict"] == "needs_retry"


def test_unknown_tool_names_are_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'pylint'"):
        validate_tool_names(["ruff", "pylint"])
    with pytest.raises(ValueError, match="'flake9'"):
        run_audit(tmp_path, [], SelfAuditConfig(tools=("flake9",)))
    assert validate_tool_names(AUDIT_TOOLS) == tuple(AUDIT_TOOLS)


def test_feedback_keeps_tool_output_inside_its_fence(tmp_path: Path, cache_dir: Path) -> None:
    failing = 'def test_fence() -> None:\n    assert False, "```"\n'
    changed = project(tmp_path, {"test_fence.py": failing})
    report = audit(tmp_path, changed, cache_dir, "pytest")

    feedback = audit_feedback(report)
    assert "````text" in feedback


FAKE_SUCCESS = "import sys\nprint('All checks passed!')\nsys.exit(0)\n"


def test_files_in_the_worktree_cannot_replace_the_tools(tmp_path: Path, cache_dir: Path) -> None:
    # A model that cannot make the audit pass writes tools of its own that say it did.
    fakes = {f"{tool}.py": FAKE_SUCCESS for tool in ("ruff", "mypy", "pytest", "py_compile")}
    failing_test = "def test_sum() -> None:\n    assert 1 + 1 == 3\n"
    broken = 'count: int = "three"\nprint(undefined_name)\n'
    changed = project(tmp_path, {**fakes, "app.py": broken, "test_sum.py": failing_test})
    report = audit(tmp_path, changed, cache_dir, "ruff", "mypy", "pytest")

    assert statuses(report) == dict.fromkeys(["ruff", "mypy", "pytest"], ToolStatus.FAILED)
    found = {t.name: {f.rule for f in t.findings} for t in report.tools}
    assert found == {"ruff": {"F821"}, "mypy": {"assignment", "name-defined"},
                     "pytest": {"failed"}}  # fmt: skip
