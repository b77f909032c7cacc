"""The prompts a task sends: the stable prefix first, so prompt caching can pay."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import guardrails
from pipeline.models import AuditReport, Clarification, DiffSummary, TaskSpec
from pipeline.untrusted import clean, data_notice, fence_marker, fenced

MAX_MAP_FILES = 300
MAX_DIFF_CHARS = 120_000
MAX_FEEDBACK_CHARS = 20_000


def generation_system(tier: int) -> str:
    return "\n\n".join(
        (guardrails.load("generate"), guardrails.load(f"tier{tier}"), guardrails.load("ask"))
    )


def repository_map(root: Path, limit: int = MAX_MAP_FILES) -> list[str]:
    """Tracked-looking files, shallow first, so the model knows where things are."""
    paths: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS)
        rel = Path(folder).relative_to(root)
        paths.extend((rel / f).as_posix() for f in sorted(files) if not f.startswith("."))
        if len(paths) >= limit:
            break
    return sorted(paths, key=lambda p: (p.count("/"), p))[:limit]


_SKIP_DIRS = frozenset({"node_modules", "__pycache__", "venv", "build", "dist"})


def human_feedback(author: str, body: str, inline: list[dict[str, Any]]) -> str:
    """A human's review or `/crew retry` words, with inline comments anchored to their lines."""
    parts = [f"@{author} asked for changes:\n\n{body.strip() or '(no summary)'}"]
    for comment in inline:
        where = f"{comment.get('path')}:{comment.get('line') or comment.get('position') or '?'}"
        parts.append(f"- On `{where}`: {str(comment.get('body', '')).strip()}")
    return "\n".join(parts)[:MAX_FEEDBACK_CHARS]


@dataclass(frozen=True)
class Prompt:
    text: str
    removed: Counter[str]  # hidden text taken out of the untrusted parts, by kind


def reviewer_feedback(reason: str, feedback: str, attempt: int) -> str:
    """The rejection that starts the next attempt: the reviewer's words and nothing else."""
    text = f"The fresh-context reviewer rejected attempt {attempt}.\n\nReason: {reason.strip()}"
    if feedback.strip():
        text += f"\n\nWhat to change:\n{feedback.strip()}"
    return text[:MAX_FEEDBACK_CHARS]


def generation_prompt(
    spec: TaskSpec,
    files: list[str],
    feedback: str | None,
    clarifications: tuple[Clarification, ...] = (),
) -> Prompt:
    """Issue, answers and feedback cleaned of hidden text, each in a block it cannot close."""
    removed: Counter[str] = Counter()

    def cleaned(text: str) -> str:
        result = clean(text)
        removed.update(result.removed)
        return result.text

    issue = cleaned(spec.spec)
    answers = [(item, cleaned(item.answer)) for item in clarifications]
    notes = cleaned(feedback) if feedback else ""
    marker = fence_marker(
        issue, notes, *(a for _, a in answers), *(i.question for i in clarifications)
    )
    parts = [
        f"Repository: {spec.repo_full_name} (branch `{spec.branch}`)",
        "Files:\n" + "\n".join(f"- {f}" for f in files),
        data_notice(marker),
        f"## Issue #{spec.issue_number}\n\n{fenced('issue', marker, issue)}",
    ]
    for item, answer in answers:
        parts.append(
            f"You asked: {item.question}\n@{item.by} answered:\n{fenced('answer', marker, answer)}"
        )
    if notes:
        parts.append(
            "## Your previous attempt needs changes\n\nThe files already contain your previous "
            "attempt. Fix these problems:\n\n" + fenced("feedback", marker, notes)
        )
    return Prompt(text="\n\n".join(parts), removed=removed)


def reviewer_prompt(spec: str, diff: DiffSummary, audit: AuditReport) -> str:
    """The three inputs, each fenced with a marker none of them contains."""
    patch = diff.patch
    if len(patch) > MAX_DIFF_CHARS:
        patch = patch[:MAX_DIFF_CHARS] + "\n[diff truncated]"
    text = clean(spec).text
    report = audit.model_dump_json(indent=1)
    marker = fence_marker(text, patch, report)
    counts = f"files={len(diff.files)} added={diff.added} removed={diff.removed}"
    return "\n\n".join(
        (
            data_notice(marker),
            fenced("specification", marker, text),
            fenced("diff", marker, patch, counts),
            fenced("audit_report", marker, report),
        )
    )
