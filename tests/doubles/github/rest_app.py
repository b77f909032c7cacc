"""REST routes for the App itself: installations, tokens, repositories, permissions, deliveries."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from tests.doubles.github import auth
from tests.doubles.github.errors import not_found
from tests.doubles.github.http import Ctx, endpoint, json_response, paginate
from tests.doubles.github.shapes import iso
from tests.doubles.github.state import Delivery, Installation

ROLE_TO_PERMISSION = {
    "admin": "admin",
    "maintain": "write",
    "write": "write",
    "triage": "read",
    "read": "read",
    "none": "none",
}


def _installation(ctx: Ctx) -> Installation:
    found = ctx.gh.state.installations.get(ctx.number("installation_id"))
    if found is None:
        raise not_found()
    return found


@endpoint("jwt")
def get_app(ctx: Ctx) -> Response:
    return json_response(ctx.gh.app_shape())


@endpoint("jwt")
def list_installations(ctx: Ctx) -> Response:
    shapes = ctx.gh.shapes
    return paginate(ctx, [shapes.installation(i) for i in ctx.gh.state.installations.values()])


@endpoint("jwt")
def get_installation(ctx: Ctx) -> Response:
    return json_response(ctx.gh.shapes.installation(_installation(ctx)))


@endpoint("jwt")
def create_token(ctx: Ctx) -> Response:
    inst = _installation(ctx)
    body = ctx.body if isinstance(ctx.body, dict) else {}
    token = auth.mint(ctx.gh.state, inst.id, body)
    data: dict[str, Any] = {
        "token": token.value,
        "expires_at": iso(token.expires_at),
        "permissions": token.permissions,
        "repository_selection": "selected" if token.repositories is not None else "all",
    }
    if token.repositories is not None:
        repos = ctx.gh.state.repos
        data["repositories"] = [ctx.gh.shapes.repo(repos[name]) for name in token.repositories]
    return json_response(data, status=201)


@endpoint("jwt")
def get_repo_installation(ctx: Ctx) -> Response:
    repo = ctx.owned_repo
    if repo.installation_id is None:
        raise not_found()
    return json_response(
        ctx.gh.shapes.installation(ctx.gh.state.installations[repo.installation_id])
    )


@endpoint("token")
def list_installation_repos(ctx: Ctx) -> Response:
    token = ctx.token
    assert token is not None
    repos = [ctx.gh.shapes.repo(r) for r in ctx.gh.state.repos.values() if auth.covers(token, r)]
    return json_response({"total_count": len(repos), "repositories": repos})


@endpoint("token", perms=("metadata:read",))
def get_repo(ctx: Ctx) -> Response:
    data = ctx.gh.shapes.repo(ctx.owned_repo)
    data["permissions"] = {
        "admin": False,
        "maintain": False,
        "push": True,
        "triage": True,
        "pull": True,
    }
    return json_response(data)


@endpoint("token", perms=("metadata:read",))
def get_permission(ctx: Ctx) -> Response:
    repo = ctx.owned_repo
    login = ctx.param("username")
    if login not in ctx.gh.state.users:
        raise not_found()
    role = "admin" if login == repo.owner else repo.permissions.get(login, "none")
    permission = ROLE_TO_PERMISSION[role]
    user = ctx.gh.shapes.user(login)
    levels = ("admin", "maintain", "write", "triage", "read")
    rank = levels.index(role) if role in levels else len(levels)
    user["permissions"] = {
        "admin": rank <= 0,
        "maintain": rank <= 1,
        "push": rank <= 2,
        "triage": rank <= 3,
        "pull": rank <= 4,
    }
    user["role_name"] = role
    return json_response({"permission": permission, "role_name": role, "user": user})


def _delivery_shape(delivery: Delivery) -> dict[str, object]:
    data = json.loads(delivery.body)
    return {
        "id": delivery.id,
        "guid": delivery.guid,
        "delivered_at": iso(delivery.delivered_at),
        "redelivery": delivery.redelivery,
        "duration": 0.01,
        "status": "OK" if delivery.status and delivery.status < 400 else "failed",
        "status_code": delivery.status or 0,
        "event": delivery.event,
        "action": delivery.action,
        "installation_id": delivery.installation_id,
        "repository_id": (data.get("repository") or {}).get("id"),
        "throttled_at": None,
    }


def _find_delivery(ctx: Ctx) -> Delivery:
    wanted = ctx.number("delivery_id")
    for delivery in ctx.gh.state.deliveries_sent:
        if delivery.id == wanted:
            return delivery
    raise not_found()


@endpoint("jwt")
def list_deliveries(ctx: Ctx) -> Response:
    newest_first = sorted(ctx.gh.state.deliveries_sent, key=lambda d: d.id, reverse=True)
    return paginate(ctx, [_delivery_shape(d) for d in newest_first])


@endpoint("jwt")
def get_delivery(ctx: Ctx) -> Response:
    delivery = _find_delivery(ctx)
    data = _delivery_shape(delivery)
    data["request"] = {"headers": delivery.headers, "payload": json.loads(delivery.body)}
    data["response"] = {"headers": {}, "payload": None}
    return json_response(data)


@endpoint("jwt")
def redeliver(ctx: Ctx) -> Response:
    ctx.gh.hookshot.redeliver(_find_delivery(ctx))
    return json_response({}, status=202)


ROUTES = [
    Route("/app", get_app),
    Route("/app/installations", list_installations),
    Route("/app/installations/{installation_id:int}", get_installation),
    Route("/app/installations/{installation_id:int}/access_tokens", create_token, methods=["POST"]),
    Route("/app/hook/deliveries", list_deliveries),
    Route("/app/hook/deliveries/{delivery_id:int}", get_delivery),
    Route("/app/hook/deliveries/{delivery_id:int}/attempts", redeliver, methods=["POST"]),
    Route("/installation/repositories", list_installation_repos),
    Route("/repos/{owner}/{repo}", get_repo),
    Route("/repos/{owner}/{repo}/installation", get_repo_installation),
    Route("/repos/{owner}/{repo}/collaborators/{username}/permission", get_permission),
]
