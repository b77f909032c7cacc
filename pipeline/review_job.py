"""The fresh-context reviewer's job: it reads only the spec, the diff and the audit report."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import guardrails
from pipeline import budget
from pipeline.config import ReviewConfig
from pipeline.context import narrowed_as_kept
from pipeline.cost import Meter, OverBudget, TaskCostCapped
from pipeline.messages import (
    REVIEW_CHECK,
    render_approval_not_applied,
    render_stopped_after_rejection,
    stopped_marker,
)
from pipeline.models import (
    CheckResult,
    DiffSummary,
    ModelVerdict,
    ReviewAction,
    ReviewVerdict,
    TaskRecord,
    TaskState,
    Usage,
)
from pipeline.prompts import reviewer_feedback, reviewer_prompt
from pipeline.publish import (
    close_open_checks,
    find_own_comment,
    post_review,
    review_conclusion,
    upsert_check_run,
)
from pipeline.review import ReviewInput, decide, run_checks
from pipeline.reviewer_model import ask_reviewer

if TYPE_CHECKING:
    from pipeline.context import Context
    from pipeline.ports import Repo
    from pipeline.status import Reporter

log = logging.getLogger(__name__)
S = TaskState


def review_task(task_id: str, head_sha: str, ctx: Context) -> TaskState:
    """The fresh-context reviewer: it reads only the spec, the diff and the audit report."""
    ctx = narrowed_as_kept(task_id, ctx)  # only the repository's config from here on
    record = ctx.store.require(task_id)
    progress = record.progress
    if progress.state is S.PR_OPEN and progress.head_sha == head_sha:
        if progress.review is not None and progress.review.head_sha == head_sha:
            _follow_verdict(record, ctx.reporter(ctx.repo(record)), ctx)  # a re-run
        return progress.state
    if progress.state is not S.REVIEWING or progress.head_sha != head_sha:
        log.info("review of %s@%s skipped: task is %s", task_id, head_sha[:8], progress.state)
        return progress.state
    inp = _review_input(record, head_sha, ctx)
    gh = ctx.repo(record)
    reporter = ctx.reporter(gh)
    if inp is None or progress.pr_number is None:
        return reporter.fail(record, "review inputs missing").progress.state
    try:
        verdict = _saved_or_new_verdict(inp, record, head_sha, ctx)
    except OverBudget as over:
        _note_on_check(gh, head_sha, task_id, "Review waiting for budget", over.public)
        return budget.park(record, over, reporter, ctx, review_sha=head_sha)
    except TaskCostCapped as capped:
        state = budget.stop_at_cap(record, capped, reporter, ctx)
        close_open_checks(gh, head_sha, capped.public)
        return state
    post_review(gh, progress.pr_number, verdict, reporter.bot_login)
    upsert_check_run(
        gh,
        sha=head_sha,
        name=REVIEW_CHECK,
        title=f"Verdict: {verdict.action.value}",
        summary=verdict.reason,
        conclusion=review_conclusion(verdict),
        external_id=task_id,
    )
    return _record_verdict(record, verdict, reporter, ctx)


def _review_input(record: TaskRecord, head_sha: str, ctx: Context) -> ReviewInput | None:
    raw = ctx.store.load_blob(record.id, f"diff-{head_sha}")
    if raw is None or record.progress.audit is None:
        return None
    return ReviewInput(
        spec=record.spec.spec,
        diff=DiffSummary.model_validate_json(raw),
        audit=record.progress.audit,
        tier=int(record.progress.tier or 2),
    )


def _record_verdict(
    record: TaskRecord, verdict: ReviewVerdict, reporter: Reporter, ctx: Context
) -> TaskState:
    """PR_OPEN with the verdict, and what it leads to."""
    retry = _retry_on_rejection(record, verdict, ctx)
    record = reporter.move(
        record,
        S.PR_OPEN,
        f"reviewer: {verdict.action.value}{retry.pop('note', '')}",
        expect=frozenset({S.REVIEWING}),  # a human's new attempt may have started meanwhile
        review=verdict,
        cost_usd=ctx.store.task_spent(record.id),
        **retry,
    )
    _follow_verdict(record, reporter, ctx)
    return record.progress.state


def _follow_verdict(record: TaskRecord, reporter: Reporter, ctx: Context) -> None:
    """What a recorded verdict leads to; each step safe to repeat on a re-run of the job."""
    if record.progress.requested_changes is not None:  # a rejection, or a human's feedback
        ctx.queue.enqueue_next_attempt(record.id, record.progress.attempts)
    elif _stopped_retrying(record, ctx):
        _say_stopped(record, reporter.gh, reporter.bot_login)
    _apply_pending_approval(record, reporter.gh, ctx)


def _retry_on_rejection(record: TaskRecord, verdict: ReviewVerdict, ctx: Context) -> dict[str, Any]:
    """The reviewer model's rejection starts the next attempt with its words, under the cap.

    A failed check, or our reviewer failing (inconclusive), waits for a human instead.
    """
    progress = record.progress
    if not verdict.starts_next_attempt:
        return {}
    limit = ctx.config.github.max_attempts
    if progress.attempts >= limit:
        return {"note": f"; attempt {progress.attempts} of {limit}, so no more retries"}
    words = reviewer_feedback(verdict.reason, verdict.feedback, progress.attempts)
    pending = progress.requested_changes
    return {
        "note": f"; retrying (attempt {progress.attempts + 1} of {limit})",
        "requested_changes": words if pending is None else f"{pending}\n\n{words}",
        "continue_branch": True,
    }


def _stopped_retrying(record: TaskRecord, ctx: Context) -> bool:
    review = record.progress.review
    limit = ctx.config.github.max_attempts
    return review is not None and review.starts_next_attempt and record.progress.attempts >= limit


def _say_stopped(record: TaskRecord, gh: Repo, bot_login: str) -> None:
    """Once per task, on the PR: the reviewer rejected the last attempt it may make."""
    pr, review = record.progress.pr_number, record.progress.review
    if pr is None or review is None:
        return
    body = render_stopped_after_rejection(record.id, record.progress.attempts, review.reason)
    if find_own_comment(gh, pr, stopped_marker(record.id), bot_login) is None:
        gh.comment_on_issue(pr, body)


def _apply_pending_approval(record: TaskRecord, gh: Repo, ctx: Context) -> None:
    """An approval that came during the attempt: merged if its head is still the head."""
    approved, pr = record.progress.pending_approval, record.progress.pr_number
    if approved is None or pr is None or record.progress.requested_changes is not None:
        return  # another attempt is about to start: the approval waits for its end
    if approved == record.progress.head_sha:
        ctx.queue.enqueue_merge(record.id, approved)
    else:
        body = render_approval_not_applied(approved, record.progress.head_sha or "")
        gh.comment_on_issue(pr, body)
    ctx.store.update(record.id, pending_approval=None)


def _note_on_check(gh: Repo, sha: str, task_id: str, title: str, summary: str) -> None:
    upsert_check_run(gh, sha=sha, name=REVIEW_CHECK, title=title, summary=summary,
                     external_id=task_id)  # fmt: skip


def _saved_or_new_verdict(
    inp: ReviewInput, record: TaskRecord, head_sha: str, ctx: Context
) -> ReviewVerdict:
    """A re-run of this job reuses the verdict it already paid for."""
    saved = ctx.store.load_blob(record.id, f"verdict-{head_sha}")
    if saved is not None:
        return ReviewVerdict.model_validate_json(saved)
    meter = budget.meter_for(record, inp.tier, ctx)
    verdict = _review(inp, record.id, meter, ctx).model_copy(update={"head_sha": head_sha})
    ctx.store.save_blob(record.id, f"verdict-{head_sha}", verdict.model_dump_json())
    return verdict


def _review(inp: ReviewInput, task_id: str, meter: Meter, ctx: Context) -> ReviewVerdict:
    config = ctx.config.review
    checks = run_checks(inp, config)
    if not config.enabled or not all(c.passed for c in checks):
        return decide(inp, config, checks, None, None)
    prompt = reviewer_prompt(inp.spec, inp.diff, inp.audit)
    # A security review parked for budget finds the reviewer's verdict it already paid for.
    first = f"reviewer-verdict-{inp.diff.head_sha}"
    saved = ctx.store.load_blob(task_id, first)
    if saved is not None:
        decided = ReviewVerdict.model_validate_json(saved)
    else:
        verdict, usage = _ask(guardrails.load("reviewer"), prompt, config, meter, ctx)
        if verdict is None:
            return _inconclusive(inp, config, checks, usage)
        decided = decide(inp, config, checks, verdict, config.model, usage)
    if inp.tier != 3 or decided.action is ReviewAction.REJECT:
        return decided
    ctx.store.save_blob(task_id, first, decided.model_dump_json())
    return _security_review(decided, prompt, config, meter, ctx)


def _inconclusive(
    inp: ReviewInput,
    config: ReviewConfig,
    checks: tuple[CheckResult, ...],
    usage: tuple[Usage, ...],
) -> ReviewVerdict:
    """No usable verdict from the reviewer model: never an approval, and a neutral check."""
    reason = "The reviewer model gave no usable verdict, so this change needs a human review."
    return decide(inp, config, checks, None, None, usage).model_copy(
        update={
            "action": ReviewAction.REJECT,
            "reason": reason,
            "feedback": "",
            "decided_by": config.model,
            "conclusive": False,
        }
    )


def _ask(
    system: str, prompt: str, config: ReviewConfig, meter: Meter, ctx: Context
) -> tuple[ModelVerdict | None, tuple[Usage, ...]]:
    return ask_reviewer(
        system=system,
        prompt=prompt,
        review=config,
        endpoints=ctx.endpoints,
        price_for=ctx.config.price,
        meter=meter,
    )


def _security_review(
    decided: ReviewVerdict, prompt: str, config: ReviewConfig, meter: Meter, ctx: Context
) -> ReviewVerdict:
    """Tier 3 only: the tier's own model reviews the change for security, and may veto it."""
    tier3 = ctx.config.tier3
    security = config.model_copy(
        update={"provider": tier3.provider, "model": tier3.model, "base_url": tier3.base_url}
    )
    verdict, usage = _ask(guardrails.load("security"), prompt, security, meter, ctx)
    checks = (
        *decided.checks,
        CheckResult(
            name="security_review",
            passed=verdict is not None and verdict.action is ReviewAction.APPROVE,
            detail=verdict.reason if verdict else "the security reviewer gave no verdict",
        ),
    )
    usage = decided.usage + usage
    if checks[-1].passed:
        return decided.model_copy(update={"checks": checks, "usage": usage})
    return decided.model_copy(
        update={
            "action": ReviewAction.REJECT,
            "reason": f"Security review: {checks[-1].detail}",
            "feedback": verdict.feedback if verdict else "",
            "checks": checks,
            "decided_by": tier3.model,
            "usage": usage,
        }
    )
