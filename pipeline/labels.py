"""The tier label `feature-crew:tier-N` on an issue: built and parsed in this one place."""

from __future__ import annotations

import re
from collections.abc import Iterable

# GitHub matches label names case-insensitively, so an operator's `Feature-Crew:Tier-3` counts.
_TIER_LABEL = re.compile(r"^feature-crew:tier-([123])$", re.IGNORECASE)


def tier_label(tier: int) -> str:
    """The label that forces a task onto `tier`."""
    return f"feature-crew:tier-{tier}"


def parse_tier_label(label: str) -> int | None:
    """The tier a label names, or None when it is not a tier label."""
    found = _TIER_LABEL.match(label.strip())
    return int(found.group(1)) if found else None


def highest_tier_label(labels: Iterable[str]) -> tuple[int, str] | None:
    """The highest tier label among `labels` and its spelling, when there is one."""
    found = sorted((tier, label) for label in labels if (tier := parse_tier_label(label)))
    return found[-1] if found else None


def same_label(name: object, wanted: str) -> bool:
    """Whether a label's name is `wanted`, compared as GitHub does: in any case."""
    return isinstance(name, str) and name.casefold() == wanted.casefold()


def label_names(labels: Iterable[object]) -> tuple[str, ...]:
    """The names of an issue's labels as GitHub sends them (objects with a `name`)."""
    names = (label.get("name") if isinstance(label, dict) else label for label in labels)
    return tuple(str(name) for name in names if name)
