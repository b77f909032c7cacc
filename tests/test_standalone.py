"""The repository stands alone: its tests pass with nothing beside it (no ../shared)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Tests that read GitHub's payload examples, which once came from ../shared: each way they
# are read (every example, one by path, one by name), not every test of those files again.
USERS_OF_PAYLOADS = [
    "tests/test_webhook_edge.py::test_no_delivery_gets_a_500",
    "tests/test_ingress.py::test_signed_delivery_is_recorded_and_queued",
    "tests/test_cli.py::test_replay_queues_a_saved_payload",
]


def test_the_payload_tests_pass_with_the_folder_beside_the_repository_hidden() -> None:
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    beside = ROOT.parent / "shared"
    hide = f'mount -t tmpfs none "{beside}" && ' if beside.is_dir() else ""
    script = f'{hide}exec "$0" -m pytest -q -n 0 -p no:randomly -p no:cacheprovider "$@"'
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "true"],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip("this kernel refuses unprivileged user namespaces")
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, sys.executable,
         *USERS_OF_PAYLOADS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "FileNotFoundError" not in done.stdout
    assert "skipped" not in done.stdout and "deselected" not in done.stdout
