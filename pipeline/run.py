"""The one place a task's stages are sequenced: route, generate, audit, publish."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipeline import budget
from pipeline.audit_feedback import audit_feedback
from pipeline.audit_plan import AuditPlan, Unjudgeable, prepare_audit
from pipeline.context import Context, TaskRun, narrowed
from pipeline.cost import OverBudget, TaskCostCapped
from pipeline.editor import EditorTool
from pipeline.generate import ASK_PREFIX, generate
from pipeline.messages import NEEDS_INFO_LABEL, REVIEW_CHECK, question_marker, render_question
from pipeline.models import (
    PUBLISHED_STATES,
    TERMINAL_STATES,
    AuditVerdict,
    GenerationOutcome,
    TaskRecord,
    TaskState,
)
from pipeline.prompts import Prompt, generation_prompt, generation_system, repository_map
from pipeline.publish import (
    ensure_pull_request,
    find_own_comment,
    publish_audit_check,
    report_unjudged_audit,
    upsert_check_run,
)
from pipeline.router import route_spec
from pipeline.status import Reporter
from pipeline.untrusted import describe_removed
from pipeline.workspace import Worktree

if TYPE_CHECKING:
    from pipeline.ports import Repo

S = TaskState


def run_task(task_id: str, ctx: Context) -> TaskState:
    """Generate, audit (retrying with feedback), push, open the PR, queue the review."""
    record = ctx.store.require(task_id)
    progress = record.progress
    if progress.state in TERMINAL_STATES:
        return progress.state
    if progress.state is S.ASKING:  # a re-run after the move: make sure the question is out
        return _post_question(record, ctx.reporter(ctx.repo(record))).progress.state
    if progress.state is S.BUDGET_WAIT and progress.parked_review:
        return budget.resume_parked_review(record, ctx.reporter(ctx.repo(record)), ctx)
    if progress.state in PUBLISHED_STATES and progress.requested_changes is None:
        if progress.head_sha:  # a re-run after the PR opened: make sure it gets reviewed
            ctx.queue.enqueue_review(task_id, progress.head_sha)
        return progress.state
    gh = ctx.repo(record)
    reporter = ctx.reporter(gh)
    if progress.state is S.AUDITING and progress.pushed_sha:
        return _open_pull_for_head(record, progress.pushed_sha, reporter, ctx)  # no new spend
    route = _route(record, ctx)
    if not budget.check_before_work(record, route["tier"], reporter, ctx):
        return ctx.store.require(task_id).progress.state
    record = reporter.move(record, S.GENERATING, _start_note(record), **route)
    worktree = _prepare_worktree(record, gh, ctx)
    try:
        run = narrowed(record, ctx, reporter)  # from here on, only the repository's config
        editor = EditorTool(worktree.path, run.config.review.protected_paths)
        record = _attempts_within_budget(record, run, worktree, editor)
        if record.progress.state is not S.AUDITING:
            return record.progress.state
        record = _push(record, run, worktree, editor.files_changed)
    finally:
        ctx.workspace.remove_worktree(record.spec.repo_id, record.spec.id)
    head = str(record.progress.pushed_sha)
    return _open_pull_for_head(record, head, reporter, ctx)


def _open_pull_for_head(
    record: TaskRecord, head_sha: str, reporter: Reporter, ctx: Context
) -> TaskState:
    """The PR, its check runs and the review job for a pushed, audited head; safe to repeat."""
    spec, gh = record.spec, reporter.gh
    ctx.store.ensure_live(spec.id)
    pull = ensure_pull_request(gh, record)
    ctx.store.link_pull(spec.repo_id, int(pull["number"]), spec.id)
    if record.progress.audit is not None:
        publish_audit_check(gh, head_sha, record.progress.audit, spec.id)
    upsert_check_run(
        gh,
        sha=head_sha,
        name=REVIEW_CHECK,
        title="Review queued",
        summary="The fresh-context reviewer is on its way.",
        external_id=spec.id,
    )
    record = reporter.move(
        record,
        TaskState.REVIEWING,
        f"PR #{pull['number']} open",
        pr_number=int(pull["number"]),
        pr_url=pull.get("html_url"),
        head_sha=head_sha,
        pushed_sha=None,
    )
    ctx.queue.enqueue_review(spec.id, head_sha)
    return record.progress.state


def _start_note(record: TaskRecord) -> str:
    if record.progress.requested_changes is not None:
        return "a new attempt with a reviewer's feedback"
    return "routed"


def _route(record: TaskRecord, ctx: Context) -> dict[str, Any]:
    """The tier and model; a task keeps its tier once its pull request is open."""
    progress = record.progress
    changes: dict[str, Any] = {"pushed_sha": None}
    if progress.requested_changes is not None:
        changes.update(feedback=progress.requested_changes, requested_changes=None)
    if progress.continue_branch and progress.tier is not None:
        return {"tier": progress.tier, **changes}
    route = route_spec(record.spec, ctx.config.triage)
    tier = ctx.config.tier(route.tier)
    return {
        "tier": route.tier,
        "size": route.size.value,
        "route_reasons": route.reasons,
        "model": tier.model,
        **changes,
    }


def _prepare_worktree(record: TaskRecord, gh: Repo, ctx: Context) -> Worktree:
    spec, ws = record.spec, ctx.workspace
    ws.sync_mirror(spec.repo_id, spec.clone_url, gh.token())
    return ws.prepare_worktree(
        spec.repo_id,
        spec.id,
        spec.branch,
        spec.default_branch,
        continue_branch=record.progress.continue_branch,
    )


def _attempts_within_budget(
    record: TaskRecord, run: TaskRun, worktree: Worktree, editor: EditorTool
) -> TaskRecord:
    """The attempts, until a model call would pass a budget: then parked, or stopped at the
    task's cap, at once (this run's unpushed work is dropped)."""
    started_with = record.progress.feedback
    try:
        return _generate_and_audit(record, run, worktree, editor)
    except OverBudget as over:
        budget.park(record, over, run.reporter, run.ctx, feedback=started_with)
    except TaskCostCapped as capped:
        budget.stop_at_cap(record, capped, run.reporter, run.ctx)
    return run.ctx.store.require(record.id)


def _generate_and_audit(
    record: TaskRecord, run: TaskRun, worktree: Worktree, editor: EditorTool
) -> TaskRecord:
    """Up to max_attempts rounds of generate → audit; ends AUDITING (passed), ASKING or FAILED."""
    plan = prepare_audit(  # before any model spend: an audit that cannot judge stops here
        cache=run.ctx.store,
        home=run.ctx.workspace.home,
        repo_id=record.spec.repo_id,
        repo_path=worktree.path,
        base_sha=worktree.base_sha,
        config=run.config.self_audit,
    )
    if isinstance(plan, Unjudgeable):
        report_unjudged_audit(run.gh, worktree.base_sha, plan.reason, plan.detail, record.id)
        return run.reporter.fail(record, plan.reason)
    try:
        return _attempts(record, run, worktree, editor, plan)
    finally:
        plan.close()


def _attempts(
    record: TaskRecord, run: TaskRun, worktree: Worktree, editor: EditorTool, plan: AuditPlan
) -> TaskRecord:
    ctx, config, reporter = run.ctx, run.config, run.reporter
    tier = int(record.progress.tier or 2)
    feedback: str | None = record.progress.feedback
    while (attempt := record.progress.attempts + 1) <= config.github.max_attempts:
        ctx.store.ensure_live(record.id)  # stop spending once cancelled
        ctx.check_deadline()
        prompt = generation_prompt(
            record.spec, repository_map(worktree.path), feedback, record.progress.clarifications
        )
        try:
            result = generate(
                system=generation_system(tier),
                prompt=prompt.text,
                tier=config.tier(tier),
                editor=editor,
                endpoints=ctx.endpoints,
                price_for=config.price,
                meter=budget.meter_for(record, tier, ctx),
            )
        finally:
            record = reporter.update(record, **_spend_and_notes(record, prompt, editor, ctx))
        cost = record.progress.cost_usd
        if result.outcome is GenerationOutcome.ASKED:
            if len(record.progress.clarifications) >= config.github.max_attempts:
                limit = config.github.max_attempts
                return reporter.fail(record, f"the model asked again after {limit} questions")
            return _ask(record, result.final_text, reporter, cost)
        if not result.files_changed:
            feedback = "You made no changes. Implement the issue with the edit tool."
            record = reporter.update(record, attempts=attempt, cost_usd=cost, feedback=feedback)
            continue
        record = reporter.move(
            record, S.AUDITING, f"attempt {attempt}", attempts=attempt, cost_usd=cost
        )
        audit = plan.audit(worktree.path, worktree.changed_files(), config.self_audit)
        record = reporter.update(record, audit=audit)
        if audit.verdict is AuditVerdict.READY_FOR_REVIEW:
            return record
        feedback = audit_feedback(audit)
        if attempt < config.github.max_attempts:
            record = reporter.move(
                record, S.GENERATING, "audit failed; retrying with its report", feedback=feedback
            )
    limit = config.github.max_attempts
    return reporter.fail(record, f"no passing change after {limit} attempts")


def _spend_and_notes(
    record: TaskRecord, prompt: Prompt, editor: EditorTool, ctx: Context
) -> dict[str, Any]:
    """What the humans must see after a generation: its cost, hidden text, refused edits."""
    changes: dict[str, Any] = {"cost_usd": ctx.store.task_spent(record.id)}
    if prompt.removed:
        changes["hidden_text"] = describe_removed(prompt.removed)
    refused = set(record.progress.not_changed) | set(editor.protected_refused)
    changes["not_changed"] = tuple(sorted(refused - set(editor.files_changed)))
    return changes


def _ask(record: TaskRecord, text: str, reporter: Reporter, cost: float) -> TaskRecord:
    question = text.strip()[len(ASK_PREFIX) :].strip() or "Could you say more about what you need?"
    record = reporter.move(
        record, S.ASKING, "the model asked a question", cost_usd=cost, question=question
    )
    return _post_question(record, reporter)


def _post_question(record: TaskRecord, reporter: Reporter) -> TaskRecord:
    """The open question on the issue, once: found again by its marker on a re-run."""
    question, issue = record.progress.question or "", record.spec.issue_number
    number = len(record.progress.clarifications)
    marker, body = question_marker(record.id, number), render_question(question, record.id, number)
    if find_own_comment(reporter.gh, issue, marker, reporter.bot_login) is None:
        reporter.gh.comment_on_issue(issue, body)
    reporter.gh.add_labels(issue, [NEEDS_INFO_LABEL])
    return record


def _push(
    record: TaskRecord, run: TaskRun, worktree: Worktree, edited: tuple[str, ...]
) -> TaskRecord:
    """Commit what the model edited (never what the audit's tools wrote) and push it."""
    ctx, config, gh = run.ctx, run.config, run.gh
    spec, ident = record.spec, gh.identity()
    ctx.store.ensure_live(spec.id)  # a cancel that came during generation: push nothing
    worktree.commit_all(
        f"{spec.issue_title}\n\nCloses #{spec.issue_number}. Task {spec.id}.",
        ident.bot_login,
        ident.commit_email,
        config.review.protected_paths,
        paths=edited,
    )
    diff = worktree.diff()
    worktree.push(spec.clone_url, gh.token())  # a fresh token: generation may take long
    ctx.store.save_blob(spec.id, f"diff-{diff.head_sha}", diff.model_dump_json())
    return ctx.store.update(spec.id, pushed_sha=diff.head_sha)
