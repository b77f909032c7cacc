"""REST routes for issues: the issue, its comments, labels and reactions."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from tests.doubles.github import actions
from tests.doubles.github.errors import ApiError, invalid, not_found
from tests.doubles.github.http import Ctx, endpoint, json_response, paginate
from tests.doubles.github.state import REACTIONS, Comment, Issue, Reaction

READ = ("issues:read", "pull_requests:read")
WRITE = ("issues:write", "pull_requests:write")


def _issue(ctx: Ctx) -> Issue:
    found = ctx.gh.state.issues.get((ctx.owned_repo.full_name, ctx.number("number")))
    if found is None:
        raise not_found()
    return found


def _comment(ctx: Ctx) -> Comment:
    found = ctx.gh.state.comments.get(ctx.number("comment_id"))
    if found is None or found.repo != ctx.owned_repo.full_name:
        raise not_found()
    return found


@endpoint(perms=READ)
def get_issue(ctx: Ctx) -> Response:
    return json_response(ctx.gh.shapes.issue(_issue(ctx)))


@endpoint(perms=WRITE)
def update_issue(ctx: Ctx) -> Response:
    issue = _issue(ctx)
    title = ctx.field("title", str)
    body = ctx.field("body", str)
    state = ctx.field("state", str)
    labels = ctx.field("labels", list)
    if state is not None and state not in ("open", "closed"):
        raise invalid({"resource": "Issue", "code": "invalid", "field": "state"})
    if title is not None:
        issue.title = title
    if body is not None:
        issue.body = body
    if labels is not None:
        for name in [n for n in issue.labels if n not in labels]:
            actions.remove_label(ctx.gh, issue, name, ctx.actor)
        for name in labels:
            actions.add_label(ctx.gh, issue, str(name), ctx.actor)
    if state is not None:
        actions.set_state(ctx.gh, issue, state, ctx.actor, ctx.field("state_reason", str))
    return json_response(ctx.gh.shapes.issue(issue))


@endpoint(perms=READ)
def list_comments(ctx: Ctx) -> Response:
    issue = _issue(ctx)
    comments = ctx.gh.state.comments_on(issue.repo, issue.number)
    return paginate(ctx, [ctx.gh.shapes.comment(c) for c in comments])


@endpoint(perms=WRITE)
def create_comment(ctx: Ctx) -> Response:
    issue = _issue(ctx)
    body = ctx.field("body", str, required=True)
    comment = actions.add_comment(ctx.gh, issue, ctx.actor, body)
    location = ctx.gh.shapes.comment(comment)
    return json_response(location, status=201, headers={"Location": location["url"]})


@endpoint(perms=READ)
def get_comment(ctx: Ctx) -> Response:
    return json_response(ctx.gh.shapes.comment(_comment(ctx)))


@endpoint(perms=WRITE)
def update_comment(ctx: Ctx) -> Response:
    comment = _comment(ctx)
    body = ctx.field("body", str, required=True)
    if comment.user != ctx.actor:
        raise ApiError(403, "Resource not accessible by integration")
    actions.edit_comment(ctx.gh, comment, ctx.actor, body)
    return json_response(ctx.gh.shapes.comment(comment))


def _labels_of(ctx: Ctx, issue: Issue) -> list[dict[str, object]]:
    repo = ctx.owned_repo
    return [ctx.gh.shapes.label(repo, repo.labels[name]) for name in issue.labels]


@endpoint(perms=READ)
def list_labels(ctx: Ctx) -> Response:
    return paginate(ctx, _labels_of(ctx, _issue(ctx)))


@endpoint(perms=WRITE)
def add_labels(ctx: Ctx) -> Response:
    issue = _issue(ctx)
    names = ctx.body.get("labels") if isinstance(ctx.body, dict) else ctx.body
    if not isinstance(names, list) or not names:
        raise invalid({"resource": "Label", "code": "missing_field", "field": "labels"})
    for name in names:
        text = name.get("name") if isinstance(name, dict) else name
        if not isinstance(text, str) or not text:
            raise invalid({"resource": "Label", "code": "invalid", "field": "name"})
        actions.add_label(ctx.gh, issue, text, ctx.actor)
    return json_response(_labels_of(ctx, issue))


@endpoint(perms=WRITE)
def remove_label(ctx: Ctx) -> Response:
    issue = _issue(ctx)
    name = ctx.param("name")
    if actions.label_on(issue, name) is None:
        raise ApiError(404, "Label does not exist")
    actions.remove_label(ctx.gh, issue, name, ctx.actor)
    return json_response(_labels_of(ctx, issue))


@endpoint(perms=READ)
def list_reactions(ctx: Ctx) -> Response:
    issue = _issue(ctx)
    content = ctx.query("content")
    found = [r for r in issue.reactions if content is None or r.content == content]
    return paginate(ctx, [ctx.gh.shapes.reaction(r) for r in found])


@endpoint(perms=WRITE)
def create_reaction(ctx: Ctx) -> Response:
    issue = _issue(ctx)
    content = ctx.field("content", str, required=True)
    if content not in REACTIONS:
        raise invalid({"resource": "Reaction", "code": "invalid", "field": "content"})
    for existing in issue.reactions:
        if (existing.user, existing.content) == (ctx.actor, content):
            return json_response(ctx.gh.shapes.reaction(existing), status=200)
    reaction = Reaction(id=ctx.gh.state.next_id(), user=ctx.actor, content=content)
    issue.reactions.append(reaction)
    return json_response(ctx.gh.shapes.reaction(reaction), status=201)


@endpoint(perms=WRITE)
def create_issue(ctx: Ctx) -> Response:
    title = ctx.field("title", str)
    if not title:
        raise invalid({"resource": "Issue", "code": "missing_field", "field": "title"})
    labels = [str(n) for n in ctx.field("labels", list) or []]
    issue = actions.open_issue(
        ctx.gh, ctx.owned_repo.full_name, ctx.actor, title, ctx.field("body", str), labels
    )
    return json_response(ctx.gh.shapes.issue(issue), status=201)


_ISSUE = "/repos/{owner}/{repo}/issues/{number:int}"
_COMMENT = "/repos/{owner}/{repo}/issues/comments/{comment_id:int}"
ROUTES = [
    Route("/repos/{owner}/{repo}/issues", create_issue, methods=["POST"]),
    Route(_ISSUE, get_issue, methods=["GET"]),
    Route(_ISSUE, update_issue, methods=["PATCH"]),
    Route(f"{_ISSUE}/comments", list_comments, methods=["GET"]),
    Route(f"{_ISSUE}/comments", create_comment, methods=["POST"]),
    Route(_COMMENT, get_comment, methods=["GET"]),
    Route(_COMMENT, update_comment, methods=["PATCH"]),
    Route(f"{_ISSUE}/labels", list_labels, methods=["GET"]),
    Route(f"{_ISSUE}/labels", add_labels, methods=["POST"]),
    Route(f"{_ISSUE}/labels/{{name}}", remove_label, methods=["DELETE"]),
    Route(f"{_ISSUE}/reactions", list_reactions, methods=["GET"]),
    Route(f"{_ISSUE}/reactions", create_reaction, methods=["POST"]),
]
