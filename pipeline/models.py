"""The values that cross Redis, stages and model output: frozen, strict pydantic models."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, model_validator

from pipeline.findings import Finding
from pipeline.frozen import Frozen
from pipeline.labels import highest_tier_label, tier_label


class TaskState(StrEnum):
    QUEUED = "queued"
    GENERATING = "generating"
    ASKING = "asking"
    AUDITING = "auditing"
    REVIEWING = "reviewing"
    PR_OPEN = "pr_open"
    MERGED = "merged"
    CANCELLED = "cancelled"
    FAILED = "failed"
    BUDGET_WAIT = "budget_wait"


TERMINAL_STATES = frozenset({TaskState.MERGED, TaskState.CANCELLED, TaskState.FAILED})
# The pull request is open: its reviewer is at work or it waits for a human to act on it.
PUBLISHED_STATES = frozenset({TaskState.REVIEWING, TaskState.PR_OPEN})


class Provider(StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"


class AuditVerdict(StrEnum):
    READY_FOR_REVIEW = "ready_for_review"
    NEEDS_RETRY = "needs_retry"


class ToolStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"  # nothing to check (no changed Python files, no tests collected)
    UNAVAILABLE = "unavailable"  # the tool is not installed on the worker
    TIMED_OUT = "timed_out"


class GenerationOutcome(StrEnum):
    EDITED = "edited"  # the model changed files and finished
    ASKED = "asked"  # the reply started with [ASK]: and made no edits
    NO_CHANGE = "no_change"  # finished without editing anything and without asking
    STEP_CAP = "step_cap"  # stopped at the step cap


# Written by older versions, read by nothing now: dropped when an older record loads.
_RETIRED_SPEC_FIELDS = frozenset({"tier_override", "slug", "delivery_id"})


class TaskSpec(Frozen):
    """What a task is about; fixed once created."""

    id: str
    installation_id: int
    repo_full_name: str
    repo_id: int
    clone_url: str
    default_branch: str
    issue_number: int
    issue_title: str
    spec: str
    branch: str
    requested_by: str
    labels: tuple[str, ...] = ()  # the issue's label names when the task was created
    created_at: float = Field(default_factory=time.time)

    @model_validator(mode="before")
    @classmethod
    def _read_older_records(cls, data: Any) -> Any:
        """Older records load: fields nothing read are dropped, and `tier_override` (the tier
        label's number, kept before the spec kept the labels) becomes that label."""
        if not isinstance(data, dict) or not _RETIRED_SPEC_FIELDS.intersection(data):
            return data
        tier = data.get("tier_override")
        data = {k: v for k, v in data.items() if k not in _RETIRED_SPEC_FIELDS}
        if tier is not None and not data.get("labels"):
            data["labels"] = (tier_label(int(tier)),)
        return data

    @property
    def tier_override(self) -> int | None:
        """The tier the issue's tier label forces, if it carries one."""
        found = highest_tier_label(self.labels)
        return found[0] if found else None


class Usage(Frozen):
    """Token counts of one model call and what they cost at the configured prices."""

    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cost_usd: float = 0.0


class GenerationResult(Frozen):
    outcome: GenerationOutcome
    final_text: str
    files_changed: tuple[str, ...] = ()
    steps: int = 0
    usage: tuple[Usage, ...] = ()

    @property
    def cost_usd(self) -> float:
        return sum(u.cost_usd for u in self.usage)


class ToolResult(Frozen):
    name: str
    status: ToolStatus
    exit_code: int | None = None
    duration_s: float = 0.0
    output: str = ""  # the tail of stdout+stderr, bounded
    findings: tuple[Finding, ...] = ()  # new ones only (not on the base commit), bounded
    new_count: int = 0  # findings the change introduced, all of them
    known_count: int = 0  # findings already on the base commit, not held against the change

    @property
    def blocking(self) -> bool:
        return self.status in (ToolStatus.FAILED, ToolStatus.TIMED_OUT)


class AuditReport(Frozen):
    verdict: AuditVerdict
    tools: tuple[ToolResult, ...]
    files_checked: tuple[str, ...] = ()
    duration_s: float = 0.0
    notes: tuple[str, ...] = ()  # for the reviewer: what the audit could not judge, and why

    @property
    def failures(self) -> tuple[ToolResult, ...]:
        return tuple(t for t in self.tools if t.blocking)


class DiffSummary(Frozen):
    base_sha: str
    head_sha: str
    patch: str
    files: tuple[str, ...]
    added: int
    removed: int

    @property
    def lines_changed(self) -> int:
        return self.added + self.removed


class CheckResult(Frozen):
    name: str
    passed: bool
    detail: str = ""


class ReviewAction(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class ModelVerdict(Frozen):
    """The input of the reviewer's `submit_verdict` tool, exactly as the model must send it."""

    action: ReviewAction
    reason: str
    feedback: str = ""


class ReviewVerdict(Frozen):
    action: ReviewAction
    reason: str
    feedback: str = ""
    checks: tuple[CheckResult, ...] = ()
    decided_by: str = "checks"  # "checks" or the reviewer model's name
    head_sha: str = ""
    conclusive: bool = True  # False: our reviewer failed, so the check run is neutral
    usage: tuple[Usage, ...] = ()

    @property
    def starts_next_attempt(self) -> bool:
        """A reviewer model's own rejection; not a failed check, not our reviewer failing."""
        return (
            self.action is ReviewAction.REJECT and self.conclusive and self.decided_by != "checks"
        )


class Clarification(Frozen):
    """A question the model asked on the issue and the answer a human gave."""

    question: str
    answer: str
    by: str


class TaskProgress(Frozen):
    """Everything about a task that changes as it runs; stored beside its spec."""

    state: TaskState = TaskState.QUEUED
    tier: int | None = None
    size: str | None = None
    route_reasons: tuple[str, ...] = ()
    model: str | None = None
    attempts: int = 0
    feedback: str | None = None  # what the next attempt must address (audit or human)
    requested_changes: str | None = None  # a human's feedback waiting for the next attempt
    continue_branch: bool = False  # attempts after the PR opened build on its branch
    question: str | None = None  # the model's open [ASK] question
    clarifications: tuple[Clarification, ...] = ()
    status_comment_id: int | None = None
    pr_number: int | None = None
    pr_url: str | None = None
    head_sha: str | None = None  # the PR head under review
    pushed_sha: str | None = None  # an audited commit pushed, its PR not yet recorded
    audit: AuditReport | None = None
    review: ReviewVerdict | None = None
    cost_usd: float = 0.0
    hidden_text: str | None = None  # what was stripped from untrusted text before a model saw it
    not_changed: tuple[str, ...] = ()  # protected paths the model tried to edit, refused
    parked_review: str | None = None  # the head whose review waits for budget
    pending_approval: str | None = None  # a writer's approval that came while an attempt ran
    error: str | None = None
    notice: str | None = None  # why a queued task is still waiting (no worker for its tier)
    updated_at: float = Field(default_factory=time.time)


class Transition(Frozen):
    state: TaskState
    at: float
    note: str = ""


class TaskRecord(Frozen):
    spec: TaskSpec
    progress: TaskProgress
    transitions: tuple[Transition, ...] = ()

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def duration_s(self) -> float:
        if not self.transitions:
            return 0.0
        return self.transitions[-1].at - self.spec.created_at


ReviewCheckName = Literal[
    "audit_verdict",
    "diff_size",
    "file_count",
    "protected_paths",
    "secrets",
    "suspicious_patterns",
    "spec_adherence",
]
