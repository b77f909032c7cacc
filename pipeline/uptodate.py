"""An open PR's branch follows its base: rebase, push with a lease, audit and review again."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pygit2

from pipeline import branches
from pipeline.audit_plan import Unjudgeable, prepare_audit
from pipeline.conflicts import resolve_conflicts
from pipeline.context import narrowed
from pipeline.errors import TransientError
from pipeline.messages import (
    AUDIT_CHECK,
    REVIEW_CHECK,
    base_moved_marker,
    render_audit_summary,
    render_human_commits_left_alone,
    render_update_before_merge,
)
from pipeline.models import AuditReport, AuditVerdict, TaskRecord, TaskState
from pipeline.publish import find_own_comment, report_unjudged_audit, upsert_check_run

if TYPE_CHECKING:
    from pipeline.context import Context, TaskRun
    from pipeline.ports import Queue, Repo, Store
    from pipeline.status import Reporter

log = logging.getLogger(__name__)
S = TaskState
DEBOUNCE_S = 5  # pushes closer together than this cause one update
REQUEST_BLOB = "base-update"  # the latest update asked for; earlier ones stand down
ACTIVE_BLOB = "base-update-active"  # an update past its push, so a re-run resumes it


def request_update(
    store: Store, queue: Queue, task_id: str, request_id: str, delay_s: float
) -> str:
    """Ask for the branch to be brought up to date; the last request before it runs wins."""
    store.save_blob(task_id, REQUEST_BLOB, request_id)
    return queue.enqueue_branch_update(task_id, request_id, delay_s)


def bring_up_to_date(task_id: str, request_id: str, ctx: Context) -> TaskState:
    """Rebase the task's branch onto its base if needed, then audit and review the new head.

    Runs under the task's lease. Every step is safe to repeat: a re-run finds the pushed head
    on origin and goes on from there.
    """
    record = ctx.store.require(task_id)
    state = record.progress.state
    resuming = _resuming(record, request_id, ctx)
    if resuming is None:
        return state
    gh = ctx.repo(record)
    spec, ws = record.spec, ctx.workspace
    ws.sync_mirror(spec.repo_id, spec.clone_url, gh.token())
    name, email = _bot_identity(gh)
    pos = branches.branch_position(ws, spec.repo_id, spec.branch, spec.default_branch, email)
    if pos is None:
        log.info("update of %s skipped: branch or base missing", task_id)
        return state
    reporter = ctx.reporter(gh)
    if pos.foreign:
        return _leave_human_commits(record, pos, reporter)
    head = pos.head_sha
    if not pos.up_to_date:
        rebased = _rebase_and_push(record, pos, pygit2.Signature(name, email), reporter, ctx)
        if rebased is None:
            return ctx.store.require(task_id).progress.state
        head = rebased
    if head == record.progress.head_sha and not resuming:
        return state  # already current and reviewed
    if not resuming:
        ctx.store.save_blob(task_id, ACTIVE_BLOB, request_id)
        note = f"base moved to {pos.base_sha[:8]}: auditing {head[:8]} again"
        record = reporter.move(record, S.AUDITING, note)
    return _audit_and_review(record, head, reporter, ctx)


def _resuming(record: TaskRecord, request_id: str, ctx: Context) -> bool | None:
    """None: nothing to do; True: finish an update that died mid-audit; False: a new one."""
    state = record.progress.state
    if ctx.store.load_blob(record.id, REQUEST_BLOB) not in (None, request_id):
        log.info("update %s of %s superseded by a later one", request_id, record.id)
        return None
    if state is S.REVIEWING:
        raise TransientError(f"task {record.id} is being reviewed; its update waits for that")
    # Under the task's lease no other update runs: AUDITING with this mark is one that died.
    if state is S.AUDITING and ctx.store.load_blob(record.id, ACTIVE_BLOB):
        return True
    if state is not S.PR_OPEN:
        log.info("update of %s skipped: task is %s", record.id, state)
        return None
    return False


def _bot_identity(gh: Repo) -> tuple[str, str]:
    ident = gh.identity()
    return ident.bot_login, ident.commit_email


def _leave_human_commits(
    record: TaskRecord, pos: branches.Position, reporter: Reporter
) -> TaskState:
    """Someone else committed on the branch: never rewrite their work; say so once per head."""
    pr = int(record.progress.pr_number or 0)
    key = f"{pos.base_sha[:12]}-{pos.head_sha[:12]}"
    if find_own_comment(reporter.gh, pr, base_moved_marker(key), reporter.bot_login) is None:
        reporter.gh.comment_on_issue(
            pr, render_human_commits_left_alone(key, pos.base_sha, pos.foreign)
        )
        note = f"base moved to {pos.base_sha[:8]}: left alone, it has commits by others"
        record = reporter.move(record, S.PR_OPEN, note)
    return record.progress.state


def _rebase_and_push(
    record: TaskRecord,
    pos: branches.Position,
    committer: pygit2.Signature,
    reporter: Reporter,
    ctx: Context,
) -> str | None:
    """The rebased head on origin, or None when its conflicts were left for a human."""
    spec, ws, gh = record.spec, ctx.workspace, reporter.gh
    rebased = branches.rebase_onto_base(
        ws, spec.repo_id, spec.branch, spec.default_branch, committer
    )
    head = rebased.head_sha
    if head is None:
        run = narrowed(record, ctx, reporter)
        head = resolve_conflicts(record, pos, rebased.conflicts, committer, run)
        if head is None:
            return None
    pushed = branches.push_with_lease(
        ws,
        spec.repo_id,
        sha=head,
        branch=spec.branch,
        expected_sha=pos.head_sha,
        clone_url=spec.clone_url,
        token=gh.token(),
    )
    if not pushed:
        # Someone pushed to the branch meanwhile: look again later instead of overwriting it.
        raise TransientError(
            f"{spec.branch} moved while it was rebased; checking it again",
            public="the branch moved while it was being updated; checking again",
        )
    log.info("%s rebased onto %s and pushed as %s", spec.branch, pos.base_sha[:8], head[:8])
    ws.sync_mirror(spec.repo_id, spec.clone_url, gh.token())
    return head


def _audit_and_review(record: TaskRecord, head: str, reporter: Reporter, ctx: Context) -> TaskState:
    spec, ws, gh = record.spec, ctx.workspace, reporter.gh
    run = narrowed(record, ctx, reporter)
    config = run.config
    try:
        base = ws.prepare_worktree(spec.repo_id, spec.id, spec.branch, spec.default_branch)
        plan = prepare_audit(  # the new base's environment and baseline, as for a first attempt
            cache=ctx.store,
            home=ctx.workspace.home,
            repo_id=spec.repo_id,
            repo_path=base.path,
            base_sha=base.base_sha,
            config=config.self_audit,
        )
        if isinstance(plan, Unjudgeable):
            report_unjudged_audit(gh, head, plan.reason, plan.detail, record.id)
            return reporter.fail(record, plan.reason).progress.state
        try:
            worktree = ws.prepare_worktree(
                spec.repo_id, spec.id, spec.branch, spec.default_branch, continue_branch=True
            )
            audit = plan.audit(worktree.path, worktree.changed_files(), config.self_audit)
            diff = worktree.diff()
        finally:
            plan.close()
    finally:
        ws.remove_worktree(spec.repo_id, spec.id)
    ctx.store.save_blob(spec.id, f"diff-{diff.head_sha}", diff.model_dump_json())
    return _publish_head(record, diff.head_sha, audit, run)


def _publish_head(record: TaskRecord, head: str, audit: AuditReport, run: TaskRun) -> TaskState:
    """The new head's own check runs, then its review; the reviewer sees a failed audit too."""
    ctx, gh, reporter = run.ctx, run.gh, run.reporter
    title, summary = render_audit_summary(audit)
    passed = audit.verdict is AuditVerdict.READY_FOR_REVIEW
    for name, heading, text, conclusion in (
        (AUDIT_CHECK, title, summary, "success" if passed else "failure"),
        (REVIEW_CHECK, "Review queued", "The fresh-context reviewer is on its way.", None),
    ):
        upsert_check_run(
            gh,
            sha=head,
            name=name,
            title=heading,
            summary=text,
            conclusion=conclusion,
            external_id=record.id,
        )
    record = reporter.move(
        record, S.REVIEWING, f"re-review of {head[:8]}", head_sha=head, audit=audit, review=None
    )
    ctx.store.save_blob(record.id, ACTIVE_BLOB, "")
    ctx.queue.enqueue_review(record.id, head)
    return record.progress.state


def head_has_base(record: TaskRecord, sha: str, gh: Repo, ctx: Context) -> bool:
    """Whether `sha` already contains the tip of the base branch (unknown commits: yes)."""
    spec, ws = record.spec, ctx.workspace
    ws.sync_mirror(spec.repo_id, spec.clone_url, gh.token())
    with ws.open_mirror(spec.repo_id) as repo:
        base = repo.references.get(f"refs/remotes/origin/{spec.default_branch}")
        commit = repo.get(sha)
        if base is None or not isinstance(commit, pygit2.Commit):
            return True  # nothing to compare with here: GitHub's merge decides
        tip = base.peel(pygit2.Commit).id
        return commit.id == tip or repo.descendant_of(commit.id, tip)


def update_before_merge(record: TaskRecord, approved_sha: str, gh: Repo, ctx: Context) -> bool:
    """False, after saying so and asking for an update, when the approved head lacks the base."""
    if head_has_base(record, approved_sha, gh, ctx):
        return True
    with ctx.workspace.open_mirror(record.spec.repo_id) as repo:
        ref = repo.references[f"refs/remotes/origin/{record.spec.default_branch}"]
        base_sha = str(ref.peel(pygit2.Commit).id)
    pr, key = int(record.progress.pr_number or 0), f"merge-{approved_sha[:12]}"
    login = gh.identity().bot_login
    if find_own_comment(gh, pr, base_moved_marker(key), login) is None:
        gh.comment_on_issue(pr, render_update_before_merge(key, approved_sha, base_sha))
    request_update(ctx.store, ctx.queue, record.id, key, 0)
    return False
