"""GitHub side effects of a task, each safe to repeat: look up first, then create or edit."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pipeline.errors import PermanentGitHubError
from pipeline.messages import (
    AUDIT_CHECK,
    PULL_BODY_MARK,
    REVIEW_CHECK,
    STATUS_MARKER,
    audit_annotations,
    render_audit_summary,
    render_pull_body,
    render_review,
    render_unjudged_audit,
    review_marker,
)
from pipeline.models import (
    AuditReport,
    AuditVerdict,
    ReviewAction,
    ReviewVerdict,
    TaskRecord,
)

if TYPE_CHECKING:
    from pipeline.ports import Repo

log = logging.getLogger(__name__)

ANNOTATIONS_PER_REQUEST = 50  # GitHub's cap; more go in further PATCHes, where they accumulate

RETRY_ACTION, CANCEL_ACTION = "crew-retry", "crew-cancel"
# GitHub's limits: 3 buttons; label <= 20, description <= 40, identifier <= 20 characters.
CHECK_ACTIONS = (
    {
        "label": "Retry",
        "description": "Start a new attempt on this branch",
        "identifier": RETRY_ACTION,
    },
    {"label": "Cancel", "description": "Stop this task", "identifier": CANCEL_ACTION},
)


def find_own_comment(gh: Repo, issue: int, marker: str, bot_login: str) -> int | None:
    """Our comment is recognised by author and hidden marker, never by its visible text."""
    for comment in gh.issue_comments(issue):
        if (comment.get("user") or {}).get("login") == bot_login and marker in (
            comment.get("body") or ""
        ):
            return int(comment["id"])
    return None


def upsert_status_comment(gh: Repo, record: TaskRecord, body: str, bot_login: str) -> int:
    """Edit the issue's one status comment in place; create it only if there is none."""
    issue = record.spec.issue_number
    comment_id = record.progress.status_comment_id or find_own_comment(
        gh, issue, STATUS_MARKER, bot_login
    )
    if comment_id is not None:
        try:
            gh.edit_comment(comment_id, body)
            return comment_id
        except PermanentGitHubError as err:
            if err.status != 404:  # deleted by a human: post a new one
                raise
    return int(gh.comment_on_issue(issue, body)["id"])


def ensure_pull_request(gh: Repo, record: TaskRecord) -> dict[str, Any]:
    """At most one open PR per task branch, whatever is retried or redelivered."""
    spec = record.spec
    owner = spec.repo_full_name.split("/", 1)[0]
    existing = gh.open_pull_for(owner, spec.branch)
    if existing is not None:
        return _refresh_body(gh, existing, render_pull_body(spec, record))
    try:
        return gh.create_pull(
            title=spec.issue_title,
            head=spec.branch,
            base=spec.default_branch,
            body=render_pull_body(spec, record),
        )
    except PermanentGitHubError as err:
        # Another run created it between our look-up and our POST.
        if err.status == 422 and "already exists" in err.public:
            found = gh.open_pull_for(owner, spec.branch)
            if found is not None:
                return found
        raise


def _refresh_body(gh: Repo, pull: dict[str, Any], body: str) -> dict[str, Any]:
    """A later attempt's audit line and refused paths, in the body the bot wrote; a body a
    human rewrote (ours no longer in it) is theirs and stays."""
    current = str(pull.get("body") or "")
    if current == body or PULL_BODY_MARK not in current:
        return pull
    return gh.update_pull(int(pull["number"]), body=body)


def upsert_check_run(  # noqa: PLR0913 - keyword-only, each named at the call
    gh: Repo,
    *,
    sha: str,
    name: str,
    title: str,
    summary: str,
    conclusion: str | None = None,
    external_id: str = "",
) -> int:
    """One check run per name and head commit; `conclusion=None` leaves it in progress."""
    fields: dict[str, Any] = {
        "output": {"title": title, "summary": summary or title},
        "actions": list(CHECK_ACTIONS),  # clicks come back as check_run.requested_action
    }
    if conclusion is None:
        fields["status"] = "in_progress"
    else:
        fields.update(status="completed", conclusion=conclusion)
    existing = gh.check_runs(sha, name)
    if existing:
        return int(gh.update_check_run(int(existing[0]["id"]), **fields)["id"])
    run = gh.create_check_run(name=name, head_sha=sha, external_id=external_id, **fields)
    return int(run["id"])


def publish_audit_check(gh: Repo, sha: str, audit: AuditReport, external_id: str) -> int:
    """The audit's check run with its summary table and annotations, in batches of 50.

    Safe to repeat: annotations accumulate on GitHub, so a re-run sends only those the run
    does not have yet.
    """
    title, summary = render_audit_summary(audit)
    passed = audit.verdict is AuditVerdict.READY_FOR_REVIEW
    existing = gh.check_runs(sha, AUDIT_CHECK)
    sent = int((existing[0].get("output") or {}).get("annotations_count") or 0) if existing else 0
    annotations = audit_annotations(audit)[sent:]
    conclusion = "success" if passed else "failure"
    fields: dict[str, Any] = {
        "status": "completed",
        "conclusion": conclusion,
        "actions": list(CHECK_ACTIONS),  # clicks come back as check_run.requested_action
    }
    output = {"title": title, "summary": summary}
    first = {**output, "annotations": annotations[:ANNOTATIONS_PER_REQUEST]}
    if existing:
        run_id = int(gh.update_check_run(int(existing[0]["id"]), **fields, output=first)["id"])
    else:
        run = gh.create_check_run(
            name=AUDIT_CHECK, head_sha=sha, external_id=external_id, **fields, output=first
        )
        run_id = int(run["id"])
    for start in range(ANNOTATIONS_PER_REQUEST, len(annotations), ANNOTATIONS_PER_REQUEST):
        batch = annotations[start : start + ANNOTATIONS_PER_REQUEST]
        gh.update_check_run(run_id, output={**output, "annotations": batch})
    return run_id


def report_unjudged_audit(gh: Repo, sha: str, reason: str, detail: str, external_id: str) -> None:
    """A `neutral` audit check on the base commit: our side or the base failed, not a change."""
    title, summary = render_unjudged_audit(reason, detail)
    upsert_check_run(
        gh,
        sha=sha,
        name=AUDIT_CHECK,
        title=title,
        summary=summary,
        conclusion="neutral",
        external_id=external_id,
    )


def close_open_checks(gh: Repo, sha: str, reason: str) -> None:
    """Our checks still in progress end `neutral`: our side failed, not the change."""
    for name in (AUDIT_CHECK, REVIEW_CHECK):
        for run in gh.check_runs(sha, name):
            if run.get("status") != "completed":
                gh.update_check_run(
                    int(run["id"]),
                    status="completed",
                    conclusion="neutral",
                    output={"title": "Feature Crew stopped", "summary": reason},
                    actions=[],  # a stopped task has nothing left to retry or cancel
                )


def post_review(gh: Repo, pr_number: int, verdict: ReviewVerdict, bot_login: str) -> None:
    """A COMMENT review: GitHub refuses APPROVE/REQUEST_CHANGES from the PR's own author."""
    marker = review_marker(verdict.head_sha)
    for review in gh.reviews(pr_number):
        if (review.get("user") or {}).get("login") == bot_login and marker in (
            review.get("body") or ""
        ):
            log.info("review for %s already posted on #%s", verdict.head_sha, pr_number)
            return
    gh.review_pull(
        pr_number, body=render_review(verdict), event="COMMENT", commit_id=verdict.head_sha
    )


def review_conclusion(verdict: ReviewVerdict) -> str:
    if not verdict.conclusive:
        return "neutral"
    return "success" if verdict.action is ReviewAction.APPROVE else "failure"
