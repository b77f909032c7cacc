"""The tier router: an issue's estimated size and risk decide which tier of model takes it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum
from typing import Literal

from pipeline.config import TriageConfig
from pipeline.frozen import Frozen
from pipeline.labels import highest_tier_label, parse_tier_label
from pipeline.models import TaskRecord, TaskSpec
from pipeline.patterns import FILE_MENTION, backtick_names, keyword_pattern

Risk = Literal["low", "normal", "high"]

BASE_LINES = 8
LINES_PER_WORD = 0.4
LINES_PER_REQUIREMENT = 15
LINES_PER_FILE = 20
LINES_PER_IDENTIFIER = 8

# Words that, in an issue, usually mean more code than the prose suggests.
SCOPE_WORDS: tuple[tuple[str, int], ...] = (
    ("rewrite", 400),
    ("refactor", 200),
    ("migration", 150),
    ("schema", 100),
    ("database", 100),
    ("integration", 80),
    ("endpoint", 60),
    ("api", 40),
    ("cli", 40),
    ("tests", 20),
)

_REQUIREMENT = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\S", re.MULTILINE)


class Size(StrEnum):
    XS = "XS"
    S = "S"
    M = "M"
    L = "L"
    XL = "XL"


class Route(Frozen):
    tier: int
    size: Size
    risk: Risk
    reasons: tuple[str, ...]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def estimate_lines(title: str, body: str) -> tuple[int, str]:
    """Lines changed an issue probably needs, and how the number was reached."""
    text = f"{title}\n{body}"
    words = len(text.split())
    requirements = len(_REQUIREMENT.findall(body))
    names, named_files = backtick_names(text)
    files = set(named_files) | {m.group(0).lstrip("./") for m in FILE_MENTION.finditer(text)}
    parts = [
        (_count(words, "word"), round(words * LINES_PER_WORD)),
        (_count(requirements, "requirement"), requirements * LINES_PER_REQUIREMENT),
        (_count(len(files), "file"), len(files) * LINES_PER_FILE),
        (_count(len(names), "identifier"), len(names) * LINES_PER_IDENTIFIER),
    ]
    parts += [(f"'{w}'", lines) for w, lines in SCOPE_WORDS if keyword_pattern(w).search(text)]
    total = BASE_LINES + sum(lines for _, lines in parts)
    how = ", ".join(f"{label} +{lines}" for label, lines in parts if lines)
    return total, f"base {BASE_LINES}" + (f", {how}" if how else "")


def size_for(lines: int, triage: TriageConfig) -> Size:
    for size, limit in (
        (Size.XS, triage.xs_threshold),
        (Size.S, triage.s_threshold),
        (Size.M, triage.m_threshold),
        (Size.L, triage.l_threshold),
    ):
        if lines <= limit:
            return size
    return Size.XL


def _matches(keywords: Sequence[str], text: str) -> list[str]:
    return [k for k in keywords if k.strip() and keyword_pattern(k.strip()).search(text)]


def assess_risk(text: str, triage: TriageConfig) -> tuple[Risk, str]:
    """High beats low: one high-risk word outweighs any number of low-risk ones."""
    high = _matches(triage.high_risk_keywords, text)
    if high:
        return "high", f"risk high: mentions {', '.join(repr(k) for k in high)}"
    low = _matches(triage.low_risk_keywords, text)
    if low:
        return "low", f"risk low: mentions {', '.join(repr(k) for k in low)}"
    return "normal", "risk normal: no risk keywords"


def tier_for(size: Size, risk: Risk) -> tuple[int, str]:
    if risk == "high":
        return 3, "tier 3: high risk"
    if size in (Size.L, Size.XL):
        return 3, f"tier 3: size {size}"
    if size is Size.XS or (size is Size.S and risk == "low"):
        return 1, f"tier 1: size {size}, {risk} risk"
    return 2, f"tier 2: size {size}, {risk} risk"


def route_task(*, title: str, body: str, labels: Sequence[str], triage: TriageConfig) -> Route:
    lines, how = estimate_lines(title, body)
    size = size_for(lines, triage)
    # Labels count too: a "security" label says as much as the word in the text.
    other_labels = [label for label in labels if parse_tier_label(label) is None]
    risk, risk_reason = assess_risk("\n".join([title, body, *other_labels]), triage)
    tier, tier_reason = tier_for(size, risk)
    override = highest_tier_label(labels)
    if override is not None:
        forced, label = override
        tier_reason = f"tier {forced}: label {label} overrides the router ({tier_reason})"
        tier = forced
    reasons = (f"size {size}: about {lines} lines changed ({how})", risk_reason, tier_reason)
    return Route(tier=tier, size=size, risk=risk, reasons=reasons)


def route_spec(spec: TaskSpec, triage: TriageConfig) -> Route:
    """The route of a task's spec, the issue's labels included."""
    title, _, body = spec.spec.partition("\n\n")
    return route_task(title=title, body=body, labels=spec.labels, triage=triage)


def planned_tier(record: TaskRecord, triage: TriageConfig) -> int:
    """The tier the task's next run works in: it keeps its tier once its pull request is open."""
    progress = record.progress
    if progress.continue_branch and progress.tier is not None:
        return progress.tier
    return route_spec(record.spec, triage).tier
