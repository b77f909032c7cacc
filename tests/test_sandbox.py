"""The audit sandbox against real subprocesses: no network outside, loopback inside, limits."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from pipeline.audit import run_audit
from pipeline.bwrap import Confinement
from pipeline.config import ConfigError, SelfAuditConfig, parse_config
from pipeline.errors import SANDBOX_REQUIRED, SandboxUnavailable
from pipeline.models import AuditReport, ToolStatus
from pipeline.sandbox import (
    WORKDIR,
    Limits,
    SandboxSetupError,
    probe_before_forking,
    spawn,
    unavailable_reason,
)
from tests.helpers import in_a_fork

needs_sandbox = pytest.mark.skipif(
    unavailable_reason() is not None, reason=f"this machine cannot confine: {unavailable_reason()}"
)

CONNECT = """
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5).close()
    print("connected")
except OSError as err:
    print(type(err).__name__, err)
"""


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP server on 127.0.0.1 in the test's own network namespace; yields its port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)  # the kernel completes handshakes; nobody needs to accept
        yield server.getsockname()[1]


def run(
    code: str,
    *args: str,
    isolate: bool = True,
    limits: Limits | None = None,
    cwd: Path | None = None,
) -> tuple[int, str]:
    """code run by this interpreter, confined (with cwd as the tree) or with limits only."""
    with tempfile.TemporaryDirectory(prefix="fc-test-") as scratch:
        tree = cwd or Path(scratch)
        confinement = Confinement(tree=tree, scratch=Path(scratch)) if isolate else None
        proc = spawn(
            [sys.executable, "-c", code, *args],
            limits=limits or Limits(),
            confinement=confinement,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        out, _ = proc.communicate(timeout=60)
    return proc.returncode, out.decode()


@needs_sandbox
def test_a_sandboxed_child_cannot_reach_a_server_outside(listener: int) -> None:
    code, out = run(CONNECT, str(listener), isolate=True)
    assert code == 0, out
    assert "ConnectionRefusedError" in out, out

    # The same child without the sandbox does connect: the server itself is reachable.
    code, out = run(CONNECT, str(listener), isolate=False)
    assert out.strip() == "connected", out


@needs_sandbox
def test_a_sandboxed_child_has_only_loopback_and_it_is_up() -> None:
    echo = """
import socket, threading
server = socket.create_server(("127.0.0.1", 0))
def serve():
    conn, _ = server.accept()
    conn.sendall(conn.recv(16).upper())
    conn.close()
threading.Thread(target=serve, daemon=True).start()
with socket.create_connection(server.getsockname(), timeout=5) as client:
    client.sendall(b"ping")
    print(client.recv(16).decode())
print(sorted(line.split(":")[0].strip() for line in open("/proc/net/dev").readlines()[2:]))
"""
    code, out = run(echo, isolate=True)
    assert code == 0, out
    assert out.split() == ["PING", "['lo']"]


@needs_sandbox
def test_files_written_inside_belong_to_the_outer_user(tmp_path: Path) -> None:
    write = "import os; open('made.txt', 'w').write('x'); print(os.getuid(), os.getgid())"
    code, out = run(write, isolate=True, cwd=tmp_path)

    assert code == 0, out
    assert out.split() == [str(os.getuid()), str(os.getgid())]
    made = (tmp_path / "made.txt").stat()
    assert (made.st_uid, made.st_gid) == (os.getuid(), os.getgid())


@pytest.mark.parametrize("isolate", [True, False])
def test_writing_past_the_file_size_limit_fails(tmp_path: Path, isolate: bool) -> None:
    if isolate and unavailable_reason() is not None:
        pytest.skip(f"no namespaces here: {unavailable_reason()}")
    write = (
        "import sys\n"
        "with open('small.bin', 'wb') as f: f.write(b'a' * 1000)\n"
        "with open('big.bin', 'wb') as f: f.write(b'a' * 1_000_000)\n"
    )
    code, out = run(write, isolate=isolate, limits=Limits(file_bytes=64 * 1024), cwd=tmp_path)

    assert code != 0
    assert "File too large" in out, out  # Python ignores SIGXFSZ, so the write raises EFBIG
    assert (tmp_path / "small.bin").stat().st_size == 1000
    assert (tmp_path / "big.bin").stat().st_size <= 64 * 1024


def test_the_other_limits_are_set_in_the_child() -> None:
    show = (
        "import resource as r\n"
        "for name in ('CORE', 'CPU', 'AS'):\n"
        "    print(name, *r.getrlimit(getattr(r, 'RLIMIT_' + name)))\n"
    )
    limits = Limits(cpu_s=77, address_space_bytes=3 * 1024**3)
    code, out = run(show, isolate=False, limits=limits)

    assert code == 0, out
    assert out.splitlines() == ["CORE 0 0", "CPU 77 82", f"AS {3 * 1024**3} {3 * 1024**3}"]


def test_a_cpu_hog_is_stopped_by_its_cpu_limit() -> None:
    code, out = run("while True: pass", isolate=False, limits=Limits(cpu_s=1))
    assert code in (-signal.SIGXCPU, -signal.SIGKILL), (code, out)


def test_the_cpu_limit_sits_a_little_above_the_timeout() -> None:
    assert Limits.for_timeout(2).cpu_s == 12
    assert Limits.for_timeout(600).cpu_s == 660
    assert Limits.for_timeout(600).file_bytes == 1024**3


def test_a_missing_program_raises_like_popen(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-tool")
    with pytest.raises(FileNotFoundError) as caught:
        spawn([missing], limits=Limits(), confinement=None)
    assert caught.value.filename == missing


def test_the_probe_agrees_with_bubblewrap_itself() -> None:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        pytest.skip("bubblewrap is not installed")
    argv = [bwrap, "--unshare-user", "--unshare-pid", "--unshare-net", "--ro-bind", "/", "/"]
    works = subprocess.run([*argv, "true"], capture_output=True, check=False)
    assert (unavailable_reason() is None) is (works.returncode == 0), unavailable_reason()


def test_the_config_knows_two_modes_and_required_is_the_default() -> None:
    assert SelfAuditConfig().sandbox == "required"
    for mode in ("required", "off"):
        assert SelfAuditConfig.model_validate({"sandbox": mode}).sandbox == mode
    with pytest.raises(ValidationError):
        SelfAuditConfig.model_validate({"sandbox": "sometimes"})


def test_the_old_auto_mode_is_a_startup_error_naming_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"self_audit": {"sandbox": "auto"}}, "config.toml")
    message = str(caught.value)
    assert "self_audit.sandbox" in message
    assert '"required"' in message and '"off"' in message


def test_availability_is_probed_once() -> None:
    assert unavailable_reason() is unavailable_reason()
    assert unavailable_reason.cache_info().currsize == 1


# --- through run_audit ------------------------------------------------------------------------


def reaching_test(port: int) -> str:
    return (
        "import socket\n\n"
        "def test_reach_the_worker() -> None:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=5).close()\n"
    )


def audit_pytest(
    root: Path, source: str, *, sandbox: str, sandbox_supported: bool | None = None
) -> AuditReport:
    (root / "test_probe.py").write_text(source)
    config = SelfAuditConfig.model_validate(
        {"tools": ["pytest"], "timeout_s": 60, "sandbox": sandbox}
    )
    return run_audit(root, ["test_probe.py"], config, sandbox_supported=sandbox_supported)


@needs_sandbox
def test_generated_tests_cannot_reach_the_worker(tmp_path: Path, listener: int) -> None:
    report = audit_pytest(tmp_path, reaching_test(listener), sandbox="required")

    assert report.tools[0].status is ToolStatus.FAILED, report.tools[0].output
    assert "ConnectionRefusedError" in report.tools[0].output


def test_with_the_sandbox_off_they_still_can(tmp_path: Path, listener: int) -> None:
    report = audit_pytest(tmp_path, reaching_test(listener), sandbox="off")

    assert report.tools[0].status is ToolStatus.PASSED, report.tools[0].output


def test_required_without_namespaces_refuses_to_audit(tmp_path: Path, listener: int) -> None:
    marker = tmp_path / "ran"
    source = f"def test_runs() -> None:\n    open({str(marker)!r}, 'w').close()\n"
    with pytest.raises(SandboxUnavailable) as caught:
        audit_pytest(tmp_path, source, sandbox="required", sandbox_supported=False)

    assert caught.value.public == SANDBOX_REQUIRED
    assert 'sandbox = "off"' in caught.value.public
    assert not marker.exists()


@needs_sandbox
def test_generated_tests_keep_loopback_and_tmp_path(tmp_path: Path) -> None:
    source = (
        "import socket\n"
        "from pathlib import Path\n\n"
        "def test_local_server(tmp_path: Path) -> None:\n"
        "    (tmp_path / 'f').write_text('x')\n"
        "    server = socket.create_server(('127.0.0.1', 0))\n"
        "    socket.create_connection(server.getsockname(), timeout=5).close()\n"
        "    server.close()\n"
    )
    report = audit_pytest(tmp_path, source, sandbox="required")

    assert report.tools[0].status is ToolStatus.PASSED, report.tools[0].output


# --- what exists inside ---------------------------------------------------------------------

SEE = """
import json, os, sys
seen = {}
for path in sys.argv[1:]:
    try:
        seen[path] = open(path).read()
    except OSError as err:
        seen[path] = type(err).__name__
    try:
        open(path, "a").close()
        seen[path + " writable"] = True
    except OSError:
        seen[path + " writable"] = False
print(json.dumps(seen))
"""


def see(confinement: Confinement, *paths: Path) -> dict[str, object]:
    proc = spawn(
        [sys.executable, "-c", SEE, *map(str, paths)],
        limits=Limits(),
        confinement=confinement,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    seen: dict[str, object] = json.loads(out)
    return seen


def planted(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "file.txt").write_text(text)
    return folder / "file.txt"


@needs_sandbox
def test_only_the_tree_scratch_and_given_folders_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "crew-home"
    monkeypatch.setenv("FEATURE_CREW_HOME", str(home))
    monkeypatch.setenv("HOME", str(tmp_path / "worker-home"))
    mirror = planted(home / "mirrors" / "1.git", "mirror")
    other_tree = planted(home / "worktrees" / "other", "other task")
    cache = planted(home / "cache" / "1", "cache")
    gitconfig = planted(tmp_path / "worker-home", "[user]")
    tree, ro = planted(tmp_path / "tree", "tree"), planted(tmp_path / "env", "env")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    confinement = Confinement(
        tree=tree.parent, scratch=scratch, writable=(cache.parent,), readable=(ro.parent,)
    )
    seen = see(confinement, WORKDIR / "file.txt", ro, cache, mirror, other_tree, gitconfig)

    assert seen[f"{WORKDIR}/file.txt"] == "tree" and seen[f"{WORKDIR}/file.txt writable"]
    assert seen[str(ro)] == "env" and not seen[f"{ro} writable"]
    assert seen[str(cache)] == "cache" and seen[f"{cache} writable"]
    for hidden in (mirror, other_tree, gitconfig):
        assert seen[str(hidden)] == "FileNotFoundError", seen


@needs_sandbox
def test_a_key_file_inside_the_shown_python_is_covered(monkeypatch: pytest.MonkeyPatch) -> None:
    key = Path(sys.prefix) / "fc-test-private-key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    try:
        monkeypatch.setenv("GITHUB_PRIVATE_KEY_PATH", str(key))
        with tempfile.TemporaryDirectory() as scratch:
            seen = see(Confinement(tree=Path(scratch), scratch=Path(scratch)), key)
    finally:
        key.unlink()

    assert "PRIVATE KEY" not in str(seen[str(key)])
    assert not seen[f"{key} writable"]


def test_confining_with_a_folder_that_holds_a_secret_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEATURE_CREW_HOME", str(tmp_path / "crew-home"))
    (tmp_path / "crew-home").mkdir()
    confinement = Confinement(tree=tmp_path / "crew-home", scratch=tmp_path)
    with pytest.raises(ValueError, match="would expose"):
        spawn(["true"], limits=Limits(), confinement=confinement)


@needs_sandbox
def test_the_setup_phase_reaches_the_network_and_still_sees_nothing_else(
    tmp_path: Path, listener: int
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        confinement = Confinement(tree=tmp_path, scratch=Path(scratch), network=True)
        proc = spawn(
            [sys.executable, "-c", CONNECT, str(listener)],
            limits=Limits(),
            confinement=confinement,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        out, _ = proc.communicate(timeout=60)
        seen = see(confinement, Path.home() / ".gitconfig")

    assert out.decode().strip() == "connected"
    assert seen[str(Path.home() / ".gitconfig")] == "FileNotFoundError"


@needs_sandbox
def test_a_confinement_that_cannot_be_built_says_why(tmp_path: Path) -> None:
    confinement = Confinement(tree=tmp_path, scratch=tmp_path)
    with pytest.raises(SandboxSetupError, match="no-such-folder"):
        spawn(["true"], limits=Limits(), confinement=confinement, cwd="/src/no-such-folder")


def test_a_probe_before_forking_serves_every_forked_job_without_probing_again() -> None:
    assert probe_before_forking() is None  # this machine confines (CI installs bubblewrap)

    def horse() -> bytes:
        before = unavailable_reason.cache_info()
        unavailable_reason()
        after = unavailable_reason.cache_info()
        cached = after.hits == before.hits + 1 and after.misses == before.misses
        return b"cached" if cached else b"probed"

    assert in_a_fork(horse) == b"cached"


def test_a_failed_probe_before_forking_is_asked_again_by_each_job(tmp_path: Path) -> None:
    code = (
        "from pipeline import sandbox\n"
        "print(sandbox.probe_before_forking())\n"
        "print(sandbox.unavailable_reason.cache_info().currsize)\n"
    )
    env = {**os.environ, "PATH": str(tmp_path)}  # no bwrap to be found
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
        cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    assert out.stdout.splitlines() == ["bubblewrap (bwrap) is not installed", "0"]
