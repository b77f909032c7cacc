"""The fresh-context reviewer's ordered checks and the verdict they and the model reach."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pipeline.audit_feedback import audit_feedback
from pipeline.config import ReviewConfig
from pipeline.models import (
    AuditReport,
    AuditVerdict,
    CheckResult,
    DiffSummary,
    ModelVerdict,
    ReviewAction,
    ReviewVerdict,
    Usage,
)
from pipeline.paths import is_protected
from pipeline.patterns import (
    PLACEHOLDER_VALUE,
    PROSE_SUFFIXES,
    SECRET_ASSIGNMENT,
    SECRET_PATTERNS,
    SUSPICIOUS_PATTERNS,
    backtick_names,
)

MAX_FINDINGS = 10
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@")


@dataclass(frozen=True)
class ReviewInput:
    spec: str
    diff: DiffSummary
    audit: AuditReport
    tier: int


@dataclass(frozen=True)
class AddedLine:
    path: str
    lineno: int
    text: str


ReviewCheck = Callable[[ReviewInput, ReviewConfig], CheckResult]


def added_lines(patch: str) -> Iterator[AddedLine]:
    """The added lines of a unified git diff, with their file and line in the new version."""
    path, lineno, in_hunk = "", 0, False
    for line in patch.splitlines():
        if line.startswith("diff --git "):
            path, in_hunk = line.rsplit(" b/", 1)[-1], False
        elif not in_hunk and line.startswith("+++ "):
            target = line[4:].strip()
            path = target[2:] if target.startswith("b/") else path
        elif match := _HUNK.match(line):
            lineno, in_hunk = int(match.group(1)), True
        elif in_hunk and line.startswith("+"):
            # Inside a hunk "+++x" is an added line "++x", not a header.
            yield AddedLine(path, lineno, line[1:])
            lineno += 1
        elif in_hunk and not line.startswith(("-", "\\")):
            lineno += 1


def _summarise(findings: list[str]) -> str:
    more = len(findings) - MAX_FINDINGS
    text = "; ".join(findings[:MAX_FINDINGS])
    return f"{text}; and {more} more" if more > 0 else text


def check_audit_verdict(inp: ReviewInput, config: ReviewConfig) -> CheckResult:
    if inp.audit.verdict is AuditVerdict.READY_FOR_REVIEW:
        return CheckResult(name="audit_verdict", passed=True, detail="the self-audit passed")
    failed = ", ".join(f"{t.name} ({t.status.value})" for t in inp.audit.failures) or "unknown"
    detail = f"the self-audit failed: {failed}"
    return CheckResult(name="audit_verdict", passed=False, detail=detail)


def check_diff_size(inp: ReviewInput, config: ReviewConfig) -> CheckResult:
    lines, limit = inp.diff.lines_changed, config.limits(inp.tier).lines
    detail = f"{lines} lines changed; tier {inp.tier} allows {limit}"
    return CheckResult(name="diff_size", passed=lines <= limit, detail=detail)


def check_file_count(inp: ReviewInput, config: ReviewConfig) -> CheckResult:
    count, limit = len(inp.diff.files), config.limits(inp.tier).files
    detail = f"{count} file{'' if count == 1 else 's'} changed; tier {inp.tier} allows {limit}"
    return CheckResult(name="file_count", passed=count <= limit, detail=detail)


def check_protected_paths(inp: ReviewInput, config: ReviewConfig) -> CheckResult:
    hits = [f for f in inp.diff.files if is_protected(f, config.protected_paths)]
    if hits:
        detail = f"protected paths changed: {', '.join(hits)}"
        return CheckResult(name="protected_paths", passed=False, detail=detail)
    return CheckResult(name="protected_paths", passed=True, detail="no protected path changed")


def _secret_kinds(text: str) -> Iterator[str]:
    for kind, pattern in SECRET_PATTERNS:
        if pattern.search(text):
            yield kind
    for match in SECRET_ASSIGNMENT.finditer(text):
        if not PLACEHOLDER_VALUE.match(match.group(1)):
            yield "hard-coded credential literal"
            return


def check_secrets(inp: ReviewInput, config: ReviewConfig) -> CheckResult:
    # The finding names the kind and place only: the detail is posted on GitHub.
    findings = [
        f"{line.path}:{line.lineno}: {kind} (value redacted)"
        for line in added_lines(inp.diff.patch)
        for kind in _secret_kinds(line.text)
    ]
    if findings:
        return CheckResult(
            name="secrets", passed=False, detail=f"possible secrets added: {_summarise(findings)}"
        )
    return CheckResult(name="secrets", passed=True, detail="no secrets in the added lines")


def check_suspicious_patterns(inp: ReviewInput, config: ReviewConfig) -> CheckResult:
    findings: list[str] = []
    for line in added_lines(inp.diff.patch):
        if line.path.lower().endswith(PROSE_SUFFIXES):
            continue
        for name, pattern in SUSPICIOUS_PATTERNS:
            if pattern.search(line.text):
                findings.append(f"{line.path}:{line.lineno}: {name}")
                break
    if findings:
        detail = f"suspicious code added: {_summarise(findings)}"
        return CheckResult(name="suspicious_patterns", passed=False, detail=detail)
    return CheckResult(name="suspicious_patterns", passed=True, detail="no suspicious patterns")


def check_spec_adherence(inp: ReviewInput, config: ReviewConfig) -> CheckResult:
    if not inp.diff.files or not inp.diff.patch.strip():
        return CheckResult(name="spec_adherence", passed=False, detail="the diff is empty")
    names, files = backtick_names(inp.spec)
    if not names and not files:
        detail = "the spec names no identifiers; the diff is not empty"
        return CheckResult(name="spec_adherence", passed=True, detail=detail)
    added = "\n".join(line.text for line in added_lines(inp.diff.patch))
    seen = [n for n in names if re.search(rf"(?<!\w){re.escape(n)}(?!\w)", added)]
    seen += [f for f in files if any(c == f or c.endswith("/" + f) for c in inp.diff.files)]
    if seen:
        detail = f"the diff touches what the spec names: {', '.join(seen)}"
        return CheckResult(name="spec_adherence", passed=True, detail=detail)
    wanted = ", ".join(f"`{n}`" for n in (*names, *files))
    detail = f"none of what the spec names ({wanted}) appears in the added lines or changed files"
    return CheckResult(name="spec_adherence", passed=False, detail=detail)


REVIEW_CHECKS: dict[str, ReviewCheck] = {
    "audit_verdict": check_audit_verdict,
    "diff_size": check_diff_size,
    "file_count": check_file_count,
    "protected_paths": check_protected_paths,
    "secrets": check_secrets,
    "suspicious_patterns": check_suspicious_patterns,
    "spec_adherence": check_spec_adherence,
}

_ADVICE: dict[str, str] = {
    "diff_size": "Make a smaller change: keep only what the issue asks for, no unrelated edits.",
    "file_count": "Touch fewer files: keep only what the issue asks for, no unrelated edits.",
    "protected_paths": "Revert every change to the protected paths; they may not be modified.",
    "secrets": (
        "Remove the credential-like literals at these places; read secrets from the "
        "environment or configuration instead, and use obvious placeholders in examples."
    ),
    "suspicious_patterns": (
        "Replace the risky code at these places with a safe alternative (ast.literal_eval, "
        "subprocess with an argument list and no shell, yaml.safe_load, json instead of "
        "pickle, TLS verification left on), or drop it if the issue does not need it."
    ),
    "spec_adherence": "Implement what the issue asks for, using the names it gives.",
}


def run_checks(inp: ReviewInput, config: ReviewConfig) -> tuple[CheckResult, ...]:
    """The configured checks in order, up to and including the first failure."""
    results: list[CheckResult] = []
    for name in config.checks:
        result = REVIEW_CHECKS[name](inp, config)
        results.append(result)
        if not result.passed:
            break
    return tuple(results)


def _feedback(failed: CheckResult, inp: ReviewInput) -> str:
    if failed.name == "audit_verdict":
        return audit_feedback(inp.audit) or "Make the self-audit pass."
    advice = _ADVICE.get(failed.name, "Fix this and try again.")
    return f"{advice}\n\n{failed.detail}"


def decide(  # noqa: PLR0913 - the inputs of one verdict
    inp: ReviewInput,
    config: ReviewConfig,
    checks: tuple[CheckResult, ...],
    model: ModelVerdict | None,
    model_name: str | None,
    usage: tuple[Usage, ...] = (),
) -> ReviewVerdict:
    """A failed check rejects; else the model's verdict when there is one; else approve."""
    failed = next((c for c in checks if not c.passed), None)
    if failed is not None:
        action, reason = ReviewAction.REJECT, f"{failed.name}: {failed.detail}"
        feedback, decided_by = _feedback(failed, inp), "checks"
    elif model is not None:
        action, reason, feedback = model.action, model.reason, model.feedback
        decided_by = model_name or "model"
    else:
        action, reason, feedback = ReviewAction.APPROVE, f"all {len(checks)} checks passed", ""
        decided_by = "checks"
    return ReviewVerdict(
        action=action,
        reason=reason,
        feedback=feedback,
        checks=checks,
        decided_by=decided_by,
        head_sha=inp.diff.head_sha,
        usage=usage,
    )
