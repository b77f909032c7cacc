"""The web process and the CLI start without the model SDKs: they never call a model.

Importing anthropic and openai costs about a second of CPU on a quiet machine and several
under load, at every start of every process that imports them; only the worker needs them
(imported before it forks, so its jobs inherit them), and githubkit, which every job uses.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

SDKS = ("anthropic", "openai")
JOB_LIBRARIES = (*SDKS, "githubkit")
PROBE = "import sys, {module}; print(sorted({{m.split('.')[0] for m in sys.modules}} & {sdks}))"


@pytest.mark.parametrize("module", ["bot.app", "bot.cli", "bot.settings"])
def test_importing_it_leaves_the_model_sdks_unimported(module: str) -> None:
    code = PROBE.format(module=module, sdks=set(SDKS))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_worker_has_them_before_it_forks_a_job() -> None:
    code = PROBE.format(module="bot.worker", sdks=set(JOB_LIBRARIES))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(sorted(JOB_LIBRARIES))
