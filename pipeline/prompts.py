"""The prompts a task sends: the stable prefix first, so prompt caching can pay."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import guardrails
from pipeline.models import AuditReport, Clarification, DiffSummary, TaskSpec

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


def generation_prompt(
    spec: TaskSpec,
    files: list[str],
    feedback: str | None,
    clarifications: tuple[Clarification, ...] = (),
) -> str:
    parts = [
        f"Repository: {spec.repo_full_name} (branch `{spec.branch}`)",
        "Files:\n" + "\n".join(f"- {f}" for f in files),
        f"## Issue #{spec.issue_number}\n\n<issue>\n{spec.spec}\n</issue>",
    ]
    for item in clarifications:
        parts.append(
            f"You asked: {item.question}\n@{item.by} answered:\n<answer>\n{item.answer}\n</answer>"
        )
    if feedback:
        parts.append(
            "## Your previous attempt needs changes\n\nThe files already contain your previous "
            "attempt. Fix these problems:\n\n" + feedback
        )
    return "\n\n".join(parts)


def reviewer_prompt(spec: str, diff: DiffSummary, audit: AuditReport) -> str:
    patch = diff.patch
    if len(patch) > MAX_DIFF_CHARS:
        patch = patch[:MAX_DIFF_CHARS] + "\n[diff truncated]"
    return (
        f"<specification>\n{spec}\n</specification>\n\n"
        f"<diff files={len(diff.files)} added={diff.added} removed={diff.removed}>\n"
        f"{patch}\n</diff>\n\n"
        f"<audit_report>\n{audit.model_dump_json(indent=1)}\n</audit_report>"
    )
