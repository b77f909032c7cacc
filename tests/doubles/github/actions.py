"""State changes shared by REST routes and seeded human actions, each with its webhook."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from tests.doubles.github import gitops, pushes
from tests.doubles.github.state import Comment, Delivery, Issue, Label, Pull, Review, now
from tests.doubles.github.webhooks import payload

if TYPE_CHECKING:
    from tests.doubles.github.double import GitHubDouble

_CLOSING = re.compile(r"\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\s+#(\d+)", re.IGNORECASE)


def send(
    gh: GitHubDouble, event: str, action: str | None, repo: str, sender: str, **objects: Any
) -> Delivery:
    installation_id = gh.state.repos[repo].installation_id
    return gh.hookshot.emit(
        event, payload(gh.shapes, action, repo, sender, installation_id, **objects)
    )


def add_comment(gh: GitHubDouble, issue: Issue, user: str, body: str) -> Comment:
    comment = Comment(
        id=gh.state.next_id(), repo=issue.repo, issue_number=issue.number, user=user, body=body
    )
    gh.state.comments[comment.id] = comment
    issue.updated_at = now()
    send(
        gh,
        "issue_comment",
        "created",
        issue.repo,
        user,
        issue=gh.shapes.issue(issue),
        comment=gh.shapes.comment(comment),
    )
    return comment


def edit_comment(gh: GitHubDouble, comment: Comment, user: str, body: str) -> None:
    previous = comment.body
    comment.body, comment.updated_at = body, now()
    issue = gh.state.issues[(comment.repo, comment.issue_number)]
    send(
        gh,
        "issue_comment",
        "edited",
        comment.repo,
        user,
        changes={"body": {"from": previous}},
        issue=gh.shapes.issue(issue),
        comment=gh.shapes.comment(comment),
    )


def ensure_label(gh: GitHubDouble, repo_name: str, name: str) -> Label:
    """The repository's label of that name, made if missing; GitHub matches names in any case."""
    repo = gh.state.repos[repo_name]
    for label in repo.labels.values():
        if label.name.casefold() == name.casefold():
            return label
    repo.labels[name] = Label(id=gh.state.next_id(), name=name)
    return repo.labels[name]


def label_on(issue: Issue, name: str) -> str | None:
    """The issue's label named so in any case, spelled as the repository spells it."""
    return next((n for n in issue.labels if n.casefold() == name.casefold()), None)


def add_label(gh: GitHubDouble, issue: Issue, name: str, user: str) -> Delivery | None:
    """Add a label; like GitHub, only a label not yet on the issue makes an event."""
    label = ensure_label(gh, issue.repo, name)
    if label.name in issue.labels:
        return None
    issue.labels.append(label.name)
    issue.updated_at = now()
    return _issue_event(
        gh, issue, "labeled", user, label=gh.shapes.label(gh.state.repos[issue.repo], label)
    )


def remove_label(gh: GitHubDouble, issue: Issue, name: str, user: str) -> Delivery:
    name = label_on(issue, name) or name
    issue.labels.remove(name)
    issue.updated_at = now()
    repo = gh.state.repos[issue.repo]
    return _issue_event(
        gh, issue, "unlabeled", user, label=gh.shapes.label(repo, repo.labels[name])
    )


def _issue_event(
    gh: GitHubDouble, issue: Issue, action: str, user: str, **objects: Any
) -> Delivery:
    if issue.is_pull:
        pull = gh.state.pulls[(issue.repo, issue.number)]
        return send(
            gh,
            "pull_request",
            action,
            issue.repo,
            user,
            number=issue.number,
            pull_request=gh.shapes.pull(pull),
            **objects,
        )
    return send(gh, "issues", action, issue.repo, user, issue=gh.shapes.issue(issue), **objects)


def set_state(
    gh: GitHubDouble, issue: Issue, state: str, user: str, reason: str | None = None
) -> None:
    if issue.state == state:
        return
    issue.state, issue.updated_at = state, now()
    issue.closed_at = now() if state == "closed" else None
    issue.state_reason = (reason or "completed") if state == "closed" else "reopened"
    if issue.is_pull:
        pull = gh.state.pulls[(issue.repo, issue.number)]
        if state == "closed":
            pull.head_sha_at_close, pull.base_sha_at_close = gh.shapes.shas(pull)
        else:
            pull.head_sha_at_close = pull.base_sha_at_close = None
    _issue_event(gh, issue, "closed" if state == "closed" else "reopened", user)


def open_pull(
    gh: GitHubDouble,
    repo_name: str,
    user: str,
    title: str,
    body: str | None,
    head: str,
    base: str,
    draft: bool,
) -> Pull:
    number = gh.state.next_number(repo_name)
    issue = Issue(
        id=gh.state.next_id(),
        repo=repo_name,
        number=number,
        title=title,
        body=body,
        user=user,
        is_pull=True,
    )
    pull = Pull(
        id=gh.state.next_id(),
        repo=repo_name,
        number=number,
        head_ref=head,
        base_ref=base,
        user=user,
        draft=draft,
    )
    gh.state.issues[(repo_name, number)] = issue
    gh.state.pulls[(repo_name, number)] = pull
    send(
        gh,
        "pull_request",
        "opened",
        repo_name,
        user,
        number=number,
        pull_request=gh.shapes.pull(pull),
    )
    return pull


def merge_pull(
    gh: GitHubDouble, pull: Pull, user: str, method: str, title: str, message: str
) -> str:
    """Merge in the bare repo (see gitops.merge), close the PR and the issues it closes."""
    repo = gh.state.repos[pull.repo]
    head_sha, base_sha = gh.shapes.shas(pull)
    sha = gitops.merge(
        repo.git_dir, pull.base_ref, head_sha, method, f"{title}\n\n{message}".strip()
    )
    pushes.send_push(gh, pull.repo, user, f"refs/heads/{pull.base_ref}", base_sha, sha)
    issue = gh.state.issues[(pull.repo, pull.number)]
    pull.merged, pull.merged_by, pull.merged_at = True, user, now()
    pull.merge_commit_sha = sha
    pull.head_sha_at_close, pull.base_sha_at_close = head_sha, base_sha
    issue.state, issue.closed_at, issue.updated_at = "closed", now(), now()
    _issue_event(gh, issue, "closed", user)
    if pull.base_ref == repo.default_branch:
        for found in _CLOSING.finditer(issue.body or ""):
            closed = gh.state.issues.get((pull.repo, int(found.group(1))))
            if closed is not None and not closed.is_pull:
                set_state(gh, closed, "closed", user)
    return sha


def submit_review(
    gh: GitHubDouble,
    pull: Pull,
    user: str,
    state: str,
    body: str,
    commit_id: str,
    comments: list[dict[str, Any]],
) -> Review:
    review = Review(
        id=gh.state.next_id(),
        repo=pull.repo,
        pull_number=pull.number,
        user=user,
        body=body,
        state=state,
        commit_id=commit_id,
        comments=comments,
    )
    gh.state.reviews[review.id] = review
    if state != "PENDING":
        shape = gh.shapes.review(review)
        shape["state"] = state.lower()
        send(
            gh,
            "pull_request_review",
            "submitted",
            pull.repo,
            user,
            review=shape,
            pull_request=gh.shapes.pull(pull),
        )
    return review


def open_issue(
    gh: GitHubDouble, repo: str, user: str, title: str, body: str | None, labels: list[str]
) -> Issue:
    number = gh.state.next_number(repo)
    issue = Issue(
        id=gh.state.next_id(), repo=repo, number=number, title=title, body=body, user=user
    )
    for name in labels:
        ensure_label(gh, repo, name)
        issue.labels.append(name)
    gh.state.issues[(repo, number)] = issue
    send(gh, "issues", "opened", repo, user, issue=gh.shapes.issue(issue))
    return issue
