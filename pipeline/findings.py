"""Tool findings: parsed from ruff/mypy JSON and pytest's JUnit XML, and matched to a baseline."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath
from xml.etree import ElementTree

from pipeline.frozen import Frozen

DETAIL_LIMIT = 1500
MESSAGE_LIMIT = 500


class Finding(Frozen):
    """One thing a tool reported: a lint or type finding, or a failing test."""

    tool: str
    path: str  # relative to the repository root, POSIX separators
    line: int = 1
    rule: str = ""  # ruff's code, mypy's error code, "failed" or "error" for a test
    message: str = ""
    test: str = ""  # pytest only: the test's id, stable across line shifts
    detail: str = ""  # pytest only: the assertion output, trimmed

    @property
    def identity(self) -> tuple[str, str, str, str]:
        """What makes two runs' findings "the same": no line, so edits above do not matter."""
        return (self.path, self.rule, self.test or self.message, self.tool)


def _trim(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def relative(path: str, roots: Sequence[str]) -> str:
    """A tool's path relative to whichever root it ran in (host tree or its mount)."""
    pure = PurePosixPath(path)
    for root in roots:
        if pure.is_relative_to(root):
            return str(pure.relative_to(root))
    return str(pure).removeprefix("./")


def parse_ruff(text: str, roots: Sequence[str]) -> list[Finding] | None:
    """ruff's `--output-format json`; None when it is not that (ruff crashed or refused)."""
    try:
        items = json.loads(text)
    except ValueError:
        return None
    if not isinstance(items, list):
        return None
    return [
        Finding(
            tool="ruff",
            path=relative(str(item.get("filename", "")), roots),
            line=int((item.get("location") or {}).get("row") or 1),
            rule=str(item.get("code") or "syntax"),
            message=_trim(str(item.get("message", "")), MESSAGE_LIMIT),
        )
        for item in items
        if isinstance(item, dict)
    ]


def parse_mypy(text: str, roots: Sequence[str]) -> list[Finding]:
    """mypy's `-O json` lines (one object per line); notes are context, not findings."""
    found = []
    for line in text.splitlines():
        if not line.startswith("{"):
            continue
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if not isinstance(item, dict) or item.get("severity") != "error":
            continue
        found.append(
            Finding(
                tool="mypy",
                path=relative(str(item.get("file", "")), roots),
                line=max(1, int(item.get("line") or 1)),
                rule=str(item.get("code") or "error"),
                message=_trim(str(item.get("message", "")), MESSAGE_LIMIT),
            )
        )
    return found


def parse_junit(xml: bytes, roots: Sequence[str]) -> list[Finding] | None:
    """Failed and erroring test cases of pytest's xunit1 JUnit XML; None if unreadable."""
    try:
        tree = ElementTree.fromstring(xml)  # noqa: S314 - our pytest wrote it, in our scratch
    except ElementTree.ParseError:
        return None
    found = []
    for case in tree.iter("testcase"):
        for kind in ("failure", "error"):
            problem = case.find(kind)
            if problem is None:
                continue
            found.append(_test_finding(case, kind, problem, roots))
    return found


def _test_finding(
    case: ElementTree.Element, kind: str, problem: ElementTree.Element, roots: Sequence[str]
) -> Finding:
    classname, name = case.get("classname", ""), case.get("name", "")
    path = relative(case.get("file") or classname.replace(".", "/") + ".py", roots)
    message, text = problem.get("message") or kind, problem.text or ""
    rule = "failed" if kind == "failure" else "error"
    if message == "collection failure":  # the module could not even be imported
        rule = "collection"
        errors = [ln[1:].strip() for ln in text.splitlines() if ln.startswith("E ")]
        message = errors[-1] if errors else message
    return Finding(
        tool="pytest",
        path=path,
        line=int(case.get("line") or 0) + 1,  # pytest writes it 0-based
        rule=rule,
        message=_trim(message, MESSAGE_LIMIT),
        test=f"{classname}::{name}" if classname else name,
        detail=_trim(text, DETAIL_LIMIT),
    )


def new_findings(current: Iterable[Finding], base: Iterable[Finding]) -> tuple[list[Finding], int]:
    """The findings the base did not have, and how many were already there.

    Counted as a multiset: a change that adds a second copy of an existing finding adds one.
    """
    budget = Counter(f.identity for f in base)
    fresh, known = [], 0
    for finding in current:
        if budget[finding.identity] > 0:
            budget[finding.identity] -= 1
            known += 1
        else:
            fresh.append(finding)
    return fresh, known


def failing_test_ids(findings: Iterable[Finding]) -> frozenset[str]:
    return frozenset(f.test for f in findings if f.tool == "pytest")
