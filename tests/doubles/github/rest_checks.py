"""REST routes for check runs: create, update, read, and list by commit."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from tests.doubles.github import actions, gitops
from tests.doubles.github.errors import ApiError, invalid, not_found
from tests.doubles.github.http import Ctx, endpoint, json_response
from tests.doubles.github.state import CheckRun, now

STATUSES = ("queued", "in_progress", "completed", "waiting", "requested", "pending")
CONCLUSIONS = (
    "action_required",
    "cancelled",
    "failure",
    "neutral",
    "success",
    "skipped",
    "stale",
    "timed_out",
)
PERMS = ("checks:write",)
MAX_ANNOTATIONS = 50
LEVELS = ("notice", "warning", "failure")


def _field_error(name: str, code: str = "invalid") -> ApiError:
    return invalid({"resource": "CheckRun", "code": code, "field": name})


def _annotations(raw: Any) -> list[dict[str, Any]]:
    """Validated as GitHub does: at most 50 per request, each with its required fields."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _field_error("annotations")
    if len(raw) > MAX_ANNOTATIONS:
        raise ApiError(422, "Only 50 annotations are allowed per request")
    for item in raw:
        if not isinstance(item, dict):
            raise _field_error("annotations")
        for key, kind in (("path", str), ("start_line", int), ("end_line", int),
                          ("annotation_level", str), ("message", str)):  # fmt: skip
            if not isinstance(item.get(key), kind):
                raise _field_error(f"annotations.{key}", "missing_field")
        if item["annotation_level"] not in LEVELS or item["end_line"] < item["start_line"]:
            raise _field_error("annotations")
    return [dict(item) for item in raw]


def _apply(ctx: Ctx, run: CheckRun) -> None:
    """Apply status/conclusion/output fields; a conclusion completes the run, as on GitHub."""
    status = ctx.field("status", str)
    conclusion = ctx.field("conclusion", str)
    if status is not None and status not in STATUSES:
        raise _field_error("status")
    if conclusion is not None and conclusion not in CONCLUSIONS:
        raise _field_error("conclusion")
    if conclusion is not None:
        status = "completed"
    if status == "completed" and conclusion is None and run.conclusion is None:
        raise _field_error("conclusion", "missing_field")
    if status is not None:
        run.status = status
    if conclusion is not None:
        run.conclusion = conclusion
    if run.status == "completed" and run.completed_at is None:
        run.completed_at = now()
    if run.status == "in_progress" and run.started_at is None:
        run.started_at = now()
    output = ctx.field("output", dict)
    if output is not None:
        if not output.get("title") or not output.get("summary"):
            raise _field_error("output", "missing_field")
        annotations = _annotations(output.get("annotations"))
        run.output = {key: output.get(key) for key in ("title", "summary", "text")}
        run.annotations.extend(annotations)
        if annotations:
            run.annotation_batches.append(len(annotations))
    if (name := ctx.field("name", str)) is not None:
        run.name = name
    if (details := ctx.field("details_url", str)) is not None:
        run.details_url = details
    if (external := ctx.field("external_id", str)) is not None:
        run.external_id = external
    if (buttons := ctx.field("actions", list)) is not None:
        run.actions = _valid_actions(buttons)


def _valid_actions(buttons: list[Any]) -> list[dict[str, str]]:
    """GitHub's limits: at most 3; label <= 20, description <= 40, identifier <= 20 chars."""
    if len(buttons) > 3:
        raise _field_error("actions")
    limits = {"label": 20, "description": 40, "identifier": 20}
    for button in buttons:
        if not isinstance(button, dict) or set(button) != set(limits):
            raise _field_error("actions", "missing_field")
        for key, most in limits.items():
            if not isinstance(button[key], str) or not 0 < len(button[key]) <= most:
                raise _field_error(f"actions.{key}")
    return [dict(b) for b in buttons]


def _send(ctx: Ctx, run: CheckRun, action: str) -> None:
    actions.send(
        ctx.gh, "check_run", action, run.repo, ctx.actor, check_run=ctx.gh.shapes.check_run(run)
    )


@endpoint(perms=PERMS)
def create_run(ctx: Ctx) -> Response:
    repo = ctx.owned_repo
    name = ctx.field("name", str, required=True)
    head_sha = ctx.field("head_sha", str, required=True)
    if gitops.resolve(repo.git_dir, head_sha) != head_sha:
        raise ApiError(422, f"No commit found for SHA: {head_sha}")
    suite = next(
        (
            r.check_suite_id
            for r in ctx.gh.state.check_runs.values()
            if r.repo == repo.full_name and r.head_sha == head_sha
        ),
        None,
    )
    run = CheckRun(
        id=ctx.gh.state.next_id(),
        repo=repo.full_name,
        name=name,
        head_sha=head_sha,
        status="queued",
        conclusion=None,
        output={},
        details_url=None,
        external_id="",
        started_at=now(),
        completed_at=None,
        check_suite_id=suite or ctx.gh.state.next_id(),
    )
    _apply(ctx, run)
    ctx.gh.state.check_runs[run.id] = run
    _send(ctx, run, "created")
    if run.status == "completed":
        _send(ctx, run, "completed")
    return json_response(ctx.gh.shapes.check_run(run), status=201)


def _run(ctx: Ctx) -> CheckRun:
    found = ctx.gh.state.check_runs.get(ctx.number("check_run_id"))
    if found is None or found.repo != ctx.owned_repo.full_name:
        raise not_found()
    return found


@endpoint(perms=PERMS)
def update_run(ctx: Ctx) -> Response:
    run = _run(ctx)
    was = run.status
    _apply(ctx, run)
    if run.status == "completed" and was != "completed":
        _send(ctx, run, "completed")
    return json_response(ctx.gh.shapes.check_run(run))


@endpoint(perms=("checks:read",))
def get_run(ctx: Ctx) -> Response:
    return json_response(ctx.gh.shapes.check_run(_run(ctx)))


@endpoint(perms=("checks:read",))
def list_for_ref(ctx: Ctx) -> Response:
    repo = ctx.owned_repo
    sha = gitops.resolve(repo.git_dir, ctx.param("ref"))
    if sha is None:
        raise ApiError(422, f"No commit found for SHA: {ctx.param('ref')}")
    name, status = ctx.query("check_name"), ctx.query("status")
    runs = [
        r
        for r in ctx.gh.state.check_runs.values()
        if r.repo == repo.full_name
        and r.head_sha == sha
        and (name is None or r.name == name)
        and (status is None or r.status == status)
    ]
    runs.sort(key=lambda r: r.id, reverse=True)
    if ctx.query("filter", "latest") == "latest":
        latest: dict[str, CheckRun] = {}
        for run in runs:
            latest.setdefault(run.name, run)
        runs = list(latest.values())
    per_page = max(1, min(100, int(ctx.query("per_page") or 30)))
    page = max(1, int(ctx.query("page") or 1))
    chunk = runs[(page - 1) * per_page : page * per_page]
    data: dict[str, Any] = {
        "total_count": len(runs),
        "check_runs": [ctx.gh.shapes.check_run(r) for r in chunk],
    }
    return json_response(data)


@endpoint(perms=("checks:read",))
def list_annotations(ctx: Ctx) -> Response:
    run = _run(ctx)
    per_page = max(1, min(100, int(ctx.query("per_page") or 30)))
    page = max(1, int(ctx.query("page") or 1))
    return json_response(run.annotations[(page - 1) * per_page : page * per_page])


ROUTES = [
    Route(
        "/repos/{owner}/{repo}/check-runs/{check_run_id:int}/annotations",
        list_annotations,
        methods=["GET"],
    ),
    Route("/repos/{owner}/{repo}/check-runs", create_run, methods=["POST"]),
    Route("/repos/{owner}/{repo}/check-runs/{check_run_id:int}", update_run, methods=["PATCH"]),
    Route("/repos/{owner}/{repo}/check-runs/{check_run_id:int}", get_run, methods=["GET"]),
    Route("/repos/{owner}/{repo}/commits/{ref:path}/check-runs", list_for_ref, methods=["GET"]),
]
