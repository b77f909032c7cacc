"""REST routes for pull requests: list, open, read, update, merge, and reviews."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.responses import Response
from starlette.routing import Route

from tests.doubles.github import actions, gitops
from tests.doubles.github.errors import ApiError, invalid, not_found
from tests.doubles.github.http import Ctx, endpoint, json_response, paginate
from tests.doubles.github.state import Pull, Review

if TYPE_CHECKING:
    from tests.doubles.github.double import GitHubDouble

READ = ("pull_requests:read",)
WRITE = ("pull_requests:write",)
REVIEW_STATES = {
    "APPROVE": "APPROVED",
    "REQUEST_CHANGES": "CHANGES_REQUESTED",
    "COMMENT": "COMMENTED",
}


def _pull(ctx: Ctx) -> Pull:
    found = ctx.gh.state.pulls.get((ctx.owned_repo.full_name, ctx.number("number")))
    if found is None:
        raise not_found()
    return found


def _custom(message: str) -> ApiError:
    return invalid({"resource": "PullRequest", "code": "custom", "message": message})


def _branch(ctx: Ctx, value: str) -> str:
    owner, sep, branch = value.rpartition(":")
    if sep and owner != ctx.owned_repo.owner:
        raise invalid({"resource": "PullRequest", "field": "head", "code": "invalid"})
    return branch


@endpoint(perms=READ)
def list_pulls(ctx: Ctx) -> Response:
    repo = ctx.owned_repo
    state = ctx.query("state", "open")
    head = ctx.query("head")
    base = ctx.query("base")
    found = []
    for (name, number), pull in ctx.gh.state.pulls.items():
        issue = ctx.gh.state.issues[(name, number)]
        if name != repo.full_name or (state != "all" and issue.state != state):
            continue
        if head and f"{repo.owner}:{pull.head_ref}" != (
            head if ":" in head else f"{repo.owner}:{head}"
        ):
            continue
        if base and pull.base_ref != base:
            continue
        found.append(pull)
    found.sort(key=lambda p: p.number, reverse=ctx.query("direction", "desc") == "desc")
    return paginate(ctx, [ctx.gh.shapes.pull(p) for p in found])


@endpoint(perms=WRITE)
def create_pull(ctx: Ctx) -> Response:
    repo = ctx.owned_repo
    title = ctx.field("title", str, required=True)
    head = _branch(ctx, ctx.field("head", str, required=True))
    base = ctx.field("base", str, required=True)
    head_sha = gitops.branch_sha(repo.git_dir, head)
    base_sha = gitops.branch_sha(repo.git_dir, base)
    if base_sha is None:
        raise invalid({"resource": "PullRequest", "field": "base", "code": "invalid"})
    if head_sha is None:
        raise invalid({"resource": "PullRequest", "field": "head", "code": "invalid"})
    for pull in ctx.gh.state.open_pulls(repo.full_name):
        if pull.head_ref == head and pull.base_ref == base:
            raise _custom(f"A pull request already exists for {repo.owner}:{head}.")
    if head_sha == base_sha or gitops.commit_count(repo.git_dir, base_sha, head_sha) == 0:
        raise _custom(f"No commits between {base} and {head}")
    pull = actions.open_pull(
        ctx.gh,
        repo.full_name,
        ctx.actor,
        title,
        ctx.field("body", str),
        head,
        base,
        bool(ctx.field("draft", bool)),
    )
    shape = ctx.gh.shapes.pull(pull)
    return json_response(shape, status=201, headers={"Location": shape["url"]})


@endpoint(perms=READ)
def get_pull(ctx: Ctx) -> Response:
    return json_response(ctx.gh.shapes.pull(_pull(ctx)))


@endpoint(perms=WRITE)
def update_pull(ctx: Ctx) -> Response:
    pull = _pull(ctx)
    issue = ctx.gh.state.issues[(pull.repo, pull.number)]
    if (title := ctx.field("title", str)) is not None:
        issue.title = title
    if (body := ctx.field("body", str)) is not None:
        issue.body = body
    if (state := ctx.field("state", str)) is not None:
        if state not in ("open", "closed") or pull.merged:
            raise invalid({"resource": "PullRequest", "code": "invalid", "field": "state"})
        actions.set_state(ctx.gh, issue, state, ctx.actor)
    return json_response(ctx.gh.shapes.pull(pull))


@endpoint(perms=("contents:write",))
def merge_pull(ctx: Ctx) -> Response:
    pull = _pull(ctx)
    issue = ctx.gh.state.issues[(pull.repo, pull.number)]
    method = ctx.field("merge_method", str) or "merge"
    if method not in ("merge", "squash", "rebase"):
        raise invalid({"resource": "PullRequest", "code": "invalid", "field": "merge_method"})
    if issue.state != "open" or pull.merged:
        raise ApiError(405, "Pull Request is not mergeable")
    head_sha, _ = ctx.gh.shapes.shas(pull)
    wanted = ctx.field("sha", str)
    if wanted is not None and wanted != head_sha:
        raise ApiError(409, "Head branch was modified. Review and try the merge again.")
    title = ctx.field("commit_title", str) or f"{issue.title} (#{pull.number})"
    try:
        sha = actions.merge_pull(
            ctx.gh, pull, ctx.actor, method, title, ctx.field("commit_message", str) or ""
        )
    except gitops.MergeConflict as exc:
        raise ApiError(405, "Pull Request is not mergeable") from exc
    return json_response(
        {"sha": sha, "merged": True, "message": "Pull Request successfully merged"}
    )


@endpoint(perms=READ)
def list_reviews(ctx: Ctx) -> Response:
    pull = _pull(ctx)
    reviews = ctx.gh.state.reviews_on(pull.repo, pull.number)
    return paginate(ctx, [ctx.gh.shapes.review(r) for r in reviews])


@endpoint(perms=READ)
def list_review_comments(ctx: Ctx) -> Response:
    pull = _pull(ctx)
    review = ctx.gh.state.reviews.get(ctx.number("review_id"))
    if review is None or (review.repo, review.pull_number) != (pull.repo, pull.number):
        raise not_found()
    shaped = [
        {"id": review.id * 100 + i, "pull_request_review_id": review.id,
         "user": ctx.gh.shapes.user(review.user), "commit_id": review.commit_id, **comment}
        for i, comment in enumerate(review.comments)
    ]  # fmt: skip
    return paginate(ctx, shaped)


@endpoint(perms=WRITE)
def create_review(ctx: Ctx) -> Response:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    review = review_pull(ctx.gh, _pull(ctx), ctx.actor, body)
    return json_response(ctx.gh.shapes.review(review))


def review_pull(gh: GitHubDouble, pull: Pull, user: str, body: dict[str, Any]) -> Review:
    """Validate a review as GitHub does, then record it and send its webhook."""
    event = body.get("event")
    text = body.get("body") or ""
    comments = body.get("comments") or []
    if event is not None and event not in REVIEW_STATES:
        raise invalid({"resource": "PullRequestReview", "code": "invalid", "field": "event"})
    if pull.user == user and event == "APPROVE":
        raise ApiError(422, "Unprocessable Entity", ["Can not approve your own pull request"])
    if pull.user == user and event == "REQUEST_CHANGES":
        raise ApiError(
            422, "Unprocessable Entity", ["Can not request changes on your own pull request"]
        )
    if event == "REQUEST_CHANGES" and not text or event == "COMMENT" and not (text or comments):
        raise invalid({"resource": "PullRequestReview", "code": "missing_field", "field": "body"})
    repo = gh.state.repos[pull.repo]
    head_sha, base_sha = gh.shapes.shas(pull)
    commit_id = body.get("commit_id") or head_sha
    if gitops.resolve(repo.git_dir, commit_id) is None:
        raise ApiError(422, "Unprocessable Entity", ["Commit could not be resolved"])
    files = gitops.diff(repo.git_dir, base_sha, head_sha)
    for comment in comments:
        _check_anchor(files, comment)
    state = REVIEW_STATES[event] if event else "PENDING"
    return actions.submit_review(gh, pull, user, state, text, commit_id, list(comments))


def _check_anchor(files: dict[str, gitops.FileDiff], comment: Any) -> None:
    if not isinstance(comment, dict) or not comment.get("body"):
        raise invalid(
            {"resource": "PullRequestReviewComment", "code": "missing_field", "field": "body"}
        )
    found = files.get(str(comment.get("path")))
    if found is None:
        raise ApiError(422, "Unprocessable Entity", ["Path could not be resolved"])
    position, line = comment.get("position"), comment.get("line")
    if line is not None:
        lines = found.left if comment.get("side") == "LEFT" else found.right
        ok = isinstance(line, int) and line in lines
    else:
        ok = isinstance(position, int) and 1 <= position <= found.positions
    if not ok:
        raise ApiError(
            422,
            "Unprocessable Entity",
            ["Pull request review thread line must be part of the diff"],
        )


_PULL = "/repos/{owner}/{repo}/pulls/{number:int}"
ROUTES = [
    Route("/repos/{owner}/{repo}/pulls", list_pulls, methods=["GET"]),
    Route("/repos/{owner}/{repo}/pulls", create_pull, methods=["POST"]),
    Route(_PULL, get_pull, methods=["GET"]),
    Route(_PULL, update_pull, methods=["PATCH"]),
    Route(f"{_PULL}/merge", merge_pull, methods=["PUT"]),
    Route(f"{_PULL}/reviews", list_reviews, methods=["GET"]),
    Route(f"{_PULL}/reviews", create_review, methods=["POST"]),
    Route(f"{_PULL}/reviews/{{review_id:int}}/comments", list_review_comments, methods=["GET"]),
]
