"""The fresh-context reviewer's job: it reads only the spec, the diff and the audit report."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import guardrails
from pipeline.messages import REVIEW_CHECK
from pipeline.models import DiffSummary, ReviewVerdict, TaskState
from pipeline.prompts import reviewer_prompt
from pipeline.publish import post_review, review_conclusion, upsert_check_run
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
    verdict = _review(inp, deps)
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
    review_cost = sum(u.cost_usd for u in verdict.usage)
    deps.store.add_spend(int(progress.tier or 2), review_cost)
    cost = progress.cost_usd + review_cost
    record = report.move(
        record, S.PR_OPEN, f"reviewer: {verdict.action.value}", review=verdict, cost_usd=cost
    )
    return record.progress.state


def _review(inp: ReviewInput, deps: Deps) -> ReviewVerdict:
    config = deps.settings.config.review
    checks = run_checks(inp, config)
    if not config.enabled or not all(c.passed for c in checks):
        return decide(inp, config, checks, None, None)
    verdict, usage = ask_reviewer(
        system=guardrails.load("reviewer"),
        prompt=reviewer_prompt(inp.spec, inp.diff, inp.audit),
        review=config,
        env=deps.settings.env,
        price_for=deps.settings.config.price,
    )
    return decide(inp, config, checks, verdict, config.model if verdict else None, usage)
