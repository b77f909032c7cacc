"""The fresh-context reviewer's job: it reads only the spec, the diff and the audit report."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import guardrails
from bot.config import ReviewConfig
from pipeline.messages import REVIEW_CHECK
from pipeline.models import (
    CheckResult,
    DiffSummary,
    ModelVerdict,
    ReviewAction,
    ReviewVerdict,
    TaskState,
    Usage,
)
from pipeline.prompts import reviewer_prompt
from pipeline.publish import post_review, review_conclusion, upsert_check_run
from pipeline.repo_config import RepoConfig, narrow
from pipeline.review import ReviewInput, decide, run_checks
from pipeline.reviewer_model import ask_reviewer

if TYPE_CHECKING:
    from pipeline.run import Deps

log = logging.getLogger(__name__)
S = TaskState


def review_task(task_id: str, head_sha: str, deps: Deps) -> TaskState:
    """The fresh-context reviewer: it reads only the spec, the diff and the audit report."""
    record = deps.store.require(task_id)
    progress = record.progress
    if progress.state is not S.REVIEWING or progress.head_sha != head_sha:
        log.info("review of %s@%s skipped: task is %s", task_id, head_sha[:8], progress.state)
        return progress.state
    raw = deps.store.load_blob(task_id, f"diff-{head_sha}")
    if raw is None or progress.audit is None or progress.pr_number is None:
        return deps.reporter(deps.repo(record)).fail(record, "review inputs missing").progress.state
    inp = ReviewInput(
        spec=record.spec.spec,
        diff=DiffSummary.model_validate_json(raw),
        audit=progress.audit,
        tier=int(progress.tier or 2),
    )
    verdict = _saved_or_new_verdict(inp, task_id, head_sha, deps)
    gh = deps.repo(record)
    report = deps.reporter(gh)
    post_review(gh, progress.pr_number, verdict, report.bot_login)
    upsert_check_run(
        gh,
        sha=head_sha,
        name=REVIEW_CHECK,
        title=f"Verdict: {verdict.action.value}",
        summary=verdict.reason,
        conclusion=review_conclusion(verdict),
        external_id=task_id,
    )
    record = report.move(
        record,
        S.PR_OPEN,
        f"reviewer: {verdict.action.value}",
        expect=frozenset({S.REVIEWING}),  # a human's new attempt may have started meanwhile
        review=verdict,
        cost_usd=progress.cost_usd + sum(u.cost_usd for u in verdict.usage),
    )
    if record.progress.requested_changes is not None:  # feedback that came during the attempt
        deps.queue.enqueue_next_attempt(task_id, record.progress.attempts)
    return record.progress.state


def _saved_or_new_verdict(
    inp: ReviewInput, task_id: str, head_sha: str, deps: Deps
) -> ReviewVerdict:
    """A re-run of this job reuses the verdict it already paid for."""
    saved = deps.store.load_blob(task_id, f"verdict-{head_sha}")
    if saved is not None:
        return ReviewVerdict.model_validate_json(saved)
    verdict = _review(inp, task_id, deps).model_copy(update={"head_sha": head_sha})
    deps.store.add_spend(inp.tier, sum(u.cost_usd for u in verdict.usage))
    deps.store.save_blob(task_id, f"verdict-{head_sha}", verdict.model_dump_json())
    return verdict


def _review(inp: ReviewInput, task_id: str, deps: Deps) -> ReviewVerdict:
    config = _review_config(task_id, deps)
    checks = run_checks(inp, config)
    if not config.enabled or not all(c.passed for c in checks):
        return decide(inp, config, checks, None, None)
    prompt = reviewer_prompt(inp.spec, inp.diff, inp.audit)
    verdict, usage = _ask(guardrails.load("reviewer"), prompt, config, deps)
    if verdict is None:
        return _inconclusive(inp, config, checks, usage)
    decided = decide(inp, config, checks, verdict, config.model, usage)
    if inp.tier != 3 or decided.action is ReviewAction.REJECT:
        return decided
    return _security_review(decided, prompt, config, deps)


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


def _review_config(task_id: str, deps: Deps) -> ReviewConfig:
    raw = deps.store.load_blob(task_id, "repo-config")
    repo = RepoConfig.model_validate_json(raw) if raw else RepoConfig()
    return narrow(deps.settings.config, repo).review


def _ask(
    system: str, prompt: str, config: ReviewConfig, deps: Deps
) -> tuple[ModelVerdict | None, tuple[Usage, ...]]:
    return ask_reviewer(
        system=system,
        prompt=prompt,
        review=config,
        env=deps.settings.env,
        price_for=deps.settings.config.price,
    )


def _security_review(
    decided: ReviewVerdict, prompt: str, config: ReviewConfig, deps: Deps
) -> ReviewVerdict:
    """Tier 3 only: the tier's own model reviews the change for security, and may veto it."""
    tier3 = deps.settings.config.tier3
    security = config.model_copy(
        update={"provider": tier3.provider, "model": tier3.model, "base_url": tier3.base_url}
    )
    verdict, usage = _ask(guardrails.load("security"), prompt, security, deps)
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
