"""The package as the Dockerfile installs it (`pip install .`, not editable) carries its data."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(300)
def test_the_wheel_holds_the_templates_prompts_and_app_manifest(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=False, capture_output=True, text=True, timeout=280,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("feature_crew-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    shipped = {
        *(f"bot/templates/{p.name}" for p in (ROOT / "bot" / "templates").glob("*.html")),
        *(f"guardrails/{p.name}" for p in (ROOT / "guardrails").glob("*.md")),
        "bot/app.yml",
    }
    assert len(shipped) > 10
    assert shipped <= names, sorted(shipped - names)
    assert not [n for n in names if n.startswith("tests/")]
