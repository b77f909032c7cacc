"""The texts the models are taught with, kept as Markdown package data."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def load(name: str) -> str:
    """The guardrail `name` (without `.md`); raises FileNotFoundError for an unknown one."""
    return resources.files(__name__).joinpath(f"{name}.md").read_text(encoding="utf-8")
