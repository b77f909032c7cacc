"""The GitHub double behaves like GitHub for githubkit, httpx and git."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from githubkit import AppAuthStrategy, GitHub
from githubkit.cache import MemCacheStrategy
from githubkit.exception import RequestFailed
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.doubles.github import ApiError, GitHubDouble
from tests.doubles.github.auth import generate_key
from tests.doubles.server import ServerThread

REPO = "octo-org/hello"
BRANCH = "feature-crew/issue-1-greet"
FILES = {"hello.py": "def hello():\n    return 'hi'\n", "tests/test_hello.py": "x = 1\n"}


@pytest.fixture
def gh(tmp_path: Path) -> Iterator[GitHubDouble]:
    with GitHubDouble(tmp_path, app_slug="feature-crew-test", app_id=4242) as double:
        inst = double.add_installation(account="octo-org")
        double.add_repo("octo-org", "hello", files=FILES, installation_id=inst)
        double.add_repo("octo-org", "other", files={"a.txt": "a\n"}, installation_id=inst)
        double.add_user("alice", permission_on={REPO: "write"})
        double.add_user("mallory", permission_on={REPO: "triage"})
        double.add_issue(REPO, title="Add a greeting", body="Please.", user="alice")
        yield double


def app_client(gh: GitHubDouble) -> GitHub[Any]:
    # A fresh cache per test: githubkit's default cache is global and keyed by app id.
    strategy = AppAuthStrategy(str(gh.app_id), gh.private_key_pem)
    return GitHub(
        strategy, base_url=gh.api_url, auto_retry=False, cache_strategy=MemCacheStrategy()
    )


def installation_client(gh: GitHubDouble) -> GitHub[Any]:
    app = app_client(gh)
    inst = app.rest.apps.get_repo_installation("octo-org", "hello").parsed_data.id
    return app.with_auth(app.auth.as_installation(inst))


def sign_jwt(claims: dict[str, Any], pem: str) -> str:
    # PyJWT refuses to encode an integer iss; GitHub accepts it, so sign the JSON directly.
    return jwt.api_jws.encode(json.dumps(claims).encode(), pem, algorithm="RS256")


def mint(gh: GitHubDouble, body: dict[str, Any] | None = None) -> httpx.Response:
    inst = next(iter(gh.state.installations))
    now = int(time.time())
    token = sign_jwt({"iss": gh.app_id, "iat": now - 30, "exp": now + 540}, gh.private_key_pem)
    return httpx.post(
        f"{gh.api_url}/app/installations/{inst}/access_tokens",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )


def api(gh: GitHubDouble, method: str, path: str, token: str, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"token {token}", "Accept": "application/vnd.github+json"}
    return httpx.request(method, f"{gh.api_url}{path}", headers=headers, **kw)


def test_jwt_auth_is_required_and_checked_like_github(gh: GitHubDouble) -> None:
    assert app_client(gh).rest.apps.get_authenticated().parsed_data.slug == "feature-crew-test"
    other_key = generate_key()[1]
    now = int(time.time())
    pem = gh.private_key_pem
    int_iss = sign_jwt({"iss": 4242, "iat": now, "exp": now + 60}, pem)
    assert httpx.get(f"{gh.api_url}/app", headers={"Authorization": f"Bearer {int_iss}"}).is_success
    bad = {
        "no header": None,
        "other key": sign_jwt({"iss": 4242, "iat": now, "exp": now + 60}, other_key),
        "wrong iss": sign_jwt({"iss": 1, "iat": now, "exp": now + 60}, pem),
        "too long": sign_jwt({"iss": "4242", "iat": now, "exp": now + 3600}, pem),
        "expired": sign_jwt({"iss": 4242, "iat": now - 900, "exp": now - 400}, pem),
        "no exp": sign_jwt({"iss": 4242, "iat": now}, pem),
    }
    for case, token in bad.items():
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer = httpx.get(f"{gh.api_url}/app", headers=headers)
        assert answer.status_code == 401, case
        assert "message" in answer.json(), case
    assert answer.json()["documentation_url"].startswith("https://docs.github.com")
    installation_token = mint(gh).json()["token"]
    assert api(gh, "GET", "/app", installation_token).status_code == 401


def test_scoped_token_sees_only_its_repository(gh: GitHubDouble) -> None:
    minted = mint(gh, {"repositories": ["hello"], "permissions": {"issues": "write"}})
    assert minted.status_code == 201
    data = minted.json()
    assert data["token"].startswith("ghs_")
    assert data["repository_selection"] == "selected"
    assert [r["full_name"] for r in data["repositories"]] == [REPO]
    assert data["expires_at"].endswith("Z")
    assert api(gh, "GET", f"/repos/{REPO}", data["token"]).status_code == 200
    hidden = api(gh, "GET", "/repos/octo-org/other", data["token"])
    assert (hidden.status_code, hidden.json()["message"]) == (404, "Not Found")
    refused = api(
        gh,
        "POST",
        f"/repos/{REPO}/check-runs",
        data["token"],
        json={"name": "x", "head_sha": "0" * 40},
    )
    assert refused.status_code == 403
    assert mint(gh, {"repositories": ["nope"]}).status_code == 422
    assert mint(gh, {"permissions": {"administration": "write"}}).status_code == 422
    assert gh.check_git_token(data["token"], REPO)
    assert not gh.check_git_token(data["token"], "octo-org/other")


def test_expired_tokens_answer_bad_credentials(gh: GitHubDouble) -> None:
    token = mint(gh).json()["token"]
    assert api(gh, "GET", f"/repos/{REPO}/issues/1", token).status_code == 200
    gh.expire_tokens()
    answer = api(gh, "GET", f"/repos/{REPO}/issues/1", token)
    assert (answer.status_code, answer.json()["message"]) == (401, "Bad credentials")
    assert api(gh, "GET", f"/repos/{REPO}/issues/1", "ghs_made_up").status_code == 401
    assert not gh.check_git_token(token, REPO)
    assert api(gh, "GET", f"/repos/{REPO}/issues/1", mint(gh).json()["token"]).status_code == 200


def test_comments_are_created_edited_and_paginated(gh: GitHubDouble) -> None:
    client = installation_client(gh)
    created = [
        client.rest.issues.create_comment("octo-org", "hello", 1, body=f"c{i}") for i in range(5)
    ]
    assert {c.status_code for c in created} == {201}
    first = created[0].parsed_data
    assert first.user is not None and first.user.login == "feature-crew-test[bot]"
    assert first.user.type == "Bot"
    edited = client.rest.issues.update_comment("octo-org", "hello", first.id, body="edited")
    assert edited.parsed_data.body == "edited"
    page = client.rest.issues.list_comments("octo-org", "hello", 1, per_page=2, page=1)
    assert [c.body for c in page.parsed_data] == ["edited", "c1"]
    link = page.headers["Link"]
    assert 'rel="next"' in link and 'rel="last"' in link and "page=3" in link
    last = client.rest.issues.list_comments("octo-org", "hello", 1, per_page=2, page=3)
    assert [c.body for c in last.parsed_data] == ["c4"]
    assert 'rel="next"' not in last.headers.get("Link", "")
    everything = list(
        client.rest.paginate(
            client.rest.issues.list_comments,
            owner="octo-org",
            repo="hello",
            issue_number=1,
            per_page=2,
        )
    )
    assert [c.body for c in everything] == ["edited", "c1", "c2", "c3", "c4"]
    alices = gh.comment_on_issue(REPO, 1, "human words", user="alice")
    with pytest.raises(RequestFailed) as refused:
        client.rest.issues.update_comment("octo-org", "hello", alices, body="hijack")
    assert refused.value.response.status_code == 403
    with gh.state.lock:
        assert gh.state.comments[alices].body == "human words"
        assert gh.state.comments[first.id].user == gh.bot_login


def test_reactions_are_created_once_per_user(gh: GitHubDouble) -> None:
    client = installation_client(gh)
    first = client.rest.reactions.create_for_issue("octo-org", "hello", 1, content="eyes")
    again = client.rest.reactions.create_for_issue("octo-org", "hello", 1, content="eyes")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.parsed_data.id == again.parsed_data.id
    token = mint(gh).json()["token"]
    bad = api(gh, "POST", f"/repos/{REPO}/issues/1/reactions", token, json={"content": "wat"})
    assert (bad.status_code, bad.json()["message"]) == (422, "Validation Failed")
    with gh.state.lock:
        assert [(r.user, r.content) for r in gh.state.reactions(REPO, 1)] == [
            (gh.bot_login, "eyes")
        ]


def test_pull_requests_refuse_duplicates_and_empty_heads(gh: GitHubDouble) -> None:
    client = installation_client(gh)
    sha = gh.push_branch(REPO, BRANCH, {"hello.py": "print('hi')\n"})
    pull = client.rest.pulls.create(
        "octo-org", "hello", title="Greet", head=f"octo-org:{BRANCH}", base="main", body="Closes #1"
    ).parsed_data
    assert pull.number == 2 and pull.head.sha == sha and pull.user.login == gh.bot_login
    assert pull.head.ref == BRANCH and pull.base.ref == "main"
    with pytest.raises(RequestFailed) as duplicate:
        client.rest.pulls.create("octo-org", "hello", title="Again", head=BRANCH, base="main")
    errors = duplicate.value.response.json()["errors"]
    assert duplicate.value.response.status_code == 422
    assert (
        errors[0]["message"]
        == "A pull request already exists for octo-org:feature-crew/issue-1-greet."
    )
    gh.push_branch(REPO, "empty", {})
    token = mint(gh).json()["token"]
    empty = api(
        gh,
        "POST",
        f"/repos/{REPO}/pulls",
        token,
        json={"title": "t", "head": "empty", "base": "main"},
    )
    assert empty.json()["errors"][0]["message"] == "No commits between main and empty"
    missing = api(
        gh,
        "POST",
        f"/repos/{REPO}/pulls",
        token,
        json={"title": "t", "head": "ghost", "base": "main"},
    )
    assert missing.status_code == 422
    found = client.rest.pulls.list("octo-org", "hello", head=f"octo-org:{BRANCH}")
    assert [p.number for p in found.parsed_data] == [2]
    moved = gh.push_branch(REPO, BRANCH, {"more.py": "x = 2\n"})
    assert client.rest.pulls.get("octo-org", "hello", 2).parsed_data.head.sha == moved
    with gh.state.lock:
        assert gh.state.issues[(REPO, 2)].is_pull


def test_reviews_follow_githubs_rules(gh: GitHubDouble) -> None:
    client = installation_client(gh)
    gh.push_branch(REPO, "topic", {"hello.py": "def hello():\n    return 'hello'\n"})
    number = client.rest.pulls.create(
        "octo-org", "hello", title="t", head="topic", base="main"
    ).parsed_data.number
    for event, message in (
        ("APPROVE", "Can not approve your own pull request"),
        ("REQUEST_CHANGES", "Can not request changes on your own pull request"),
    ):
        with pytest.raises(RequestFailed) as refused:
            client.rest.pulls.create_review("octo-org", "hello", number, event=event, body="x")
        assert refused.value.response.status_code == 422
        assert refused.value.response.json()["errors"] == [message]
    with pytest.raises(RequestFailed) as blank:
        client.rest.pulls.create_review("octo-org", "hello", number, event="COMMENT", body="")
    assert blank.value.response.status_code == 422
    with pytest.raises(RequestFailed) as outside:
        client.rest.pulls.create_review(
            "octo-org",
            "hello",
            number,
            event="COMMENT",
            body="b",
            comments=[{"path": "hello.py", "line": 40, "body": "?"}],
        )
    assert outside.value.response.status_code == 422
    review = client.rest.pulls.create_review(
        "octo-org",
        "hello",
        number,
        event="COMMENT",
        body="**Verdict: approve**",
        comments=[{"path": "hello.py", "line": 2, "body": "nice"}],
    )
    assert review.status_code == 200 and review.parsed_data.state == "COMMENTED"
    gh.submit_review(REPO, number, "alice", "APPROVE")
    states = [
        r.state for r in client.rest.pulls.list_reviews("octo-org", "hello", number).parsed_data
    ]
    assert states == ["COMMENTED", "APPROVED"]
    with pytest.raises(ApiError):
        gh.submit_review(REPO, number, gh.bot_login, "APPROVE")


def test_merge_checks_the_head_and_closes_the_issue(gh: GitHubDouble) -> None:
    client = installation_client(gh)
    gh.push_branch(REPO, "topic", {"hello.py": "print('merged')\n"})
    pull = client.rest.pulls.create(
        "octo-org", "hello", title="t", head="topic", base="main", body="Closes #1"
    ).parsed_data
    with pytest.raises(RequestFailed) as stale:
        client.rest.pulls.merge("octo-org", "hello", pull.number, sha="0" * 40)
    assert stale.value.response.status_code == 409
    merged = client.rest.pulls.merge(
        "octo-org", "hello", pull.number, sha=pull.head.sha, merge_method="squash"
    ).parsed_data
    assert merged.merged
    git_dir = gh.git_root / "octo-org" / "hello.git"
    shown = subprocess.run(
        ["git", "--git-dir", str(git_dir), "show", "main:hello.py"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout == "print('merged')\n"
    after = client.rest.pulls.get("octo-org", "hello", pull.number).parsed_data
    assert after.merged and after.state == "closed"
    assert client.rest.issues.get("octo-org", "hello", 1).parsed_data.state == "closed"


def test_check_runs_are_created_listed_and_filtered(gh: GitHubDouble) -> None:
    client = installation_client(gh)
    sha = gh.push_branch(REPO, "topic", {"x.py": "x = 1\n"})
    audit = client.rest.checks.create(
        "octo-org", "hello", name="Feature Crew / audit", head_sha=sha, status="in_progress"
    )
    assert audit.status_code == 201 and audit.parsed_data.status == "in_progress"
    review = client.rest.checks.create(
        "octo-org",
        "hello",
        name="Feature Crew / review",
        head_sha=sha,
        conclusion="success",
        output={"title": "ok", "summary": "fine"},
    )
    assert review.parsed_data.status == "completed"
    assert review.parsed_data.app is not None and review.parsed_data.app.id == gh.app_id
    token = mint(gh).json()["token"]
    incomplete = api(
        gh,
        "POST",
        f"/repos/{REPO}/check-runs",
        token,
        json={"name": "n", "head_sha": sha, "status": "completed"},
    )
    assert incomplete.status_code == 422
    unknown = api(
        gh, "POST", f"/repos/{REPO}/check-runs", token, json={"name": "n", "head_sha": "f" * 40}
    )
    assert unknown.status_code == 422
    done = client.rest.checks.update(
        "octo-org", "hello", audit.parsed_data.id, conclusion="failure"
    )
    assert (done.parsed_data.status, done.parsed_data.conclusion) == ("completed", "failure")
    listed = client.rest.checks.list_for_ref("octo-org", "hello", sha).parsed_data
    assert listed.total_count == 2
    filtered = client.rest.checks.list_for_ref(
        "octo-org", "hello", "topic", check_name="Feature Crew / audit"
    ).parsed_data
    assert [r.conclusion for r in filtered.check_runs] == ["failure"]
    with gh.state.lock:
        assert len(gh.state.check_runs) == 2
    gh.wait_for_deliveries()
    actions = [(d.event, d.action) for d in gh.state.deliveries_sent if d.event == "check_run"]
    assert actions == [
        ("check_run", "created"),
        ("check_run", "created"),
        ("check_run", "completed"),
        ("check_run", "completed"),
    ]


@pytest.fixture
def receiver() -> Iterator[tuple[ServerThread, list[tuple[dict[str, str], bytes]]]]:
    seen: list[tuple[dict[str, str], bytes]] = []

    async def record(request: Request) -> Response:
        seen.append((dict(request.headers), await request.body()))
        return Response(status_code=202)

    server = ServerThread(Starlette(routes=[Route("/webhooks", record, methods=["POST"])]))
    server.start()
    yield server, seen
    server.stop()


def test_the_bots_comment_sends_a_signed_webhook(
    gh: GitHubDouble, receiver: tuple[ServerThread, list[tuple[dict[str, str], bytes]]]
) -> None:
    server, seen = receiver
    gh.set_webhook(f"{server.url}/webhooks", "s3cret")
    client = installation_client(gh)
    client.rest.issues.create_comment("octo-org", "hello", 1, body="<!-- feature-crew:status -->")
    assert gh.wait_for_deliveries(timeout=10)
    headers, body = seen[-1]
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["x-hub-signature-256"] == f"sha256={expected}"
    assert headers["x-github-event"] == "issue_comment"
    assert headers["x-github-hook-installation-target-type"] == "integration"
    assert headers["user-agent"].startswith("GitHub-Hookshot/")
    data = json.loads(body)
    assert data["action"] == "created"
    assert data["sender"]["login"] == gh.bot_login and data["sender"]["type"] == "Bot"
    assert data["installation"]["id"] in gh.state.installations
    assert data["comment"]["body"] == "<!-- feature-crew:status -->"
    with gh.state.lock:
        last = gh.state.deliveries_sent[-1]
        assert (last.event, last.action, last.status) == ("issue_comment", "created", 202)
        assert last.guid == headers["x-github-delivery"]


def test_human_label_and_redelivery_keep_the_delivery_id(
    gh: GitHubDouble, receiver: tuple[ServerThread, list[tuple[dict[str, str], bytes]]]
) -> None:
    server, seen = receiver
    gh.set_webhook(f"{server.url}/webhooks", "s3cret")
    guid = gh.label_issue(REPO, 1, "feature-crew", sender="alice")
    assert gh.wait_for_deliveries()
    data = json.loads(seen[-1][1])
    assert (data["action"], data["label"]["name"], data["sender"]["login"]) == (
        "labeled",
        "feature-crew",
        "alice",
    )
    assert data["issue"]["labels"][0]["name"] == "feature-crew"
    app = app_client(gh)
    listed = app.request("GET", "/app/hook/deliveries").json()
    assert listed[0]["guid"] == guid
    app.request("POST", f"/app/hook/deliveries/{listed[0]['id']}/attempts")
    assert gh.wait_for_deliveries()
    assert seen[-1][0]["x-github-delivery"] == guid and len(seen) == 2
    headers, body = gh.build_delivery(
        "issues", "labeled", repo=REPO, issue=1, label="feature-crew", sender="alice"
    )
    assert headers["X-Hub-Signature-256"].startswith("sha256=")
    assert json.loads(body)["installation"]["id"] == data["installation"]["id"]


def test_fail_next_injects_faults_then_recovers(gh: GitHubDouble) -> None:
    client = installation_client(gh)
    gh.fail_next("POST", r"/issues/1/comments$", 502)
    with pytest.raises(RequestFailed) as failed:
        client.rest.issues.create_comment("octo-org", "hello", 1, body="x")
    assert failed.value.response.status_code == 502
    gh.secondary_rate_limit("POST", r"/comments$", retry_after=1)
    with pytest.raises(RequestFailed) as limited:
        client.rest.issues.create_comment("octo-org", "hello", 1, body="x")
    assert limited.value.response.status_code == 403
    assert limited.value.response.headers["Retry-After"] == "1"
    assert client.rest.issues.create_comment("octo-org", "hello", 1, body="x").status_code == 201
    statuses = [s for (m, p, s, _) in gh.requests if p == f"/repos/{REPO}/issues/1/comments"]
    assert statuses == [502, 403, 201]
    with gh.state.lock:
        assert len(gh.state.comments_on(REPO, 1)) == 1


def test_unknown_routes_and_resources_are_json_404(gh: GitHubDouble) -> None:
    token = mint(gh).json()["token"]
    for path in ("/nope", f"/repos/{REPO}/issues/99", "/repos/octo-org/ghost"):
        answer = api(gh, "GET", path, token)
        assert answer.status_code == 404, path
        assert answer.json()["message"] == "Not Found"
    assert api(gh, "DELETE", f"/repos/{REPO}/issues/1/labels/absent", token).status_code == 404
    collaborator = "/repos/octo-org/hello/collaborators/{}/permission"
    roles = {u: api(gh, "GET", collaborator.format(u), token).json() for u in ("alice", "mallory")}
    assert (roles["alice"]["permission"], roles["mallory"]["permission"]) == ("write", "read")
    assert api(gh, "GET", collaborator.format("nobody"), token).status_code == 404


def test_git_remote_accepts_installation_tokens_only(gh: GitHubDouble, tmp_path: Path) -> None:
    token = mint(gh, {"repositories": ["hello"]}).json()["token"]
    client = installation_client(gh)
    repo = client.rest.repos.get("octo-org", "hello").parsed_data
    url = repo.clone_url.replace("http://", f"http://x-access-token:{token}@")
    work = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", url, str(work)], check=True, timeout=30)
    assert (work / "hello.py").read_text() == FILES["hello.py"]
    gh.expire_tokens()
    refused = subprocess.run(
        ["git", "clone", "--quiet", url, str(tmp_path / "again")],
        check=False,
        capture_output=True,
        timeout=30,
        env={"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin"},
    )
    assert refused.returncode != 0


def test_check_run_buttons_within_githubs_limits_and_their_clicks(gh: GitHubDouble) -> None:
    token = mint(gh).json()["token"]
    sha = gh.push_branch(REPO, "topic", {"x.py": "x = 1\n"})
    button = {"label": "Retry", "description": "Again", "identifier": "retry"}
    run = {"name": "n", "head_sha": sha, "actions": [button]}
    created = api(gh, "POST", f"/repos/{REPO}/check-runs", token, json=run)
    assert created.status_code == 201
    too_many = {**run, "actions": [button] * 4}
    too_long = {**run, "actions": [{**button, "label": "R" * 21}]}
    for body in (too_many, too_long):
        assert api(gh, "POST", f"/repos/{REPO}/check-runs", token, json=body).status_code == 422
    run_id = created.json()["id"]
    with pytest.raises(ValueError, match="no button"):
        gh.click_check_run_button(REPO, run_id, "cancel", user="alice")
    gh.click_check_run_button(REPO, run_id, "retry", user="alice")
    gh.rerequest_check_run(REPO, run_id, user="alice")
    sent = [json.loads(d.body) for d in gh.state.deliveries_sent if d.event == "check_run"]
    assert [(d["action"], d["sender"]["login"]) for d in sent[-2:]] == [
        ("requested_action", "alice"),
        ("rerequested", "alice"),
    ]
    assert sent[-2]["requested_action"] == {"identifier": "retry"}
    assert sent[-2]["check_run"]["id"] == run_id


def test_pushes_send_signed_push_webhooks_like_github(
    gh: GitHubDouble,
    receiver: tuple[ServerThread, list[tuple[dict[str, str], bytes]]],
    tmp_path: Path,
) -> None:
    from handlers import wants

    server, seen = receiver
    gh.set_webhook(f"{server.url}/webhooks", "s3cret")
    before = gh.push_branch("octo-org/hello", "main", {}, sender="alice")
    after = gh.push_branch("octo-org/hello", "main", {"docs.md": "# d\n"}, sender="alice")
    assert gh.wait_for_deliveries(timeout=10)
    headers, body = seen[-1]
    assert headers["x-github-event"] == "push"
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["x-hub-signature-256"] == f"sha256={expected}"
    data = json.loads(body)
    assert "action" not in data
    assert (data["ref"], data["before"], data["after"]) == ("refs/heads/main", before, after)
    assert data["head_commit"]["id"] == after and not data["forced"] and not data["created"]
    assert data["sender"]["login"] == "alice" and data["repository"]["default_branch"] == "main"
    assert wants("push", "", data)
    # A git push through the remote (an installation token, so the App's own) sends one too.
    token = mint(gh, {"repositories": ["hello"]}).json()["token"]
    url = f"{gh.url}/octo-org/hello.git".replace("http://", f"http://x-access-token:{token}@")
    work = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", url, str(work)], check=True, timeout=30)
    git = ["git", "-C", str(work), "-c", "user.name=B", "-c", "user.email=b@example.com"]
    subprocess.run([*git, "checkout", "--quiet", "-b", "feature-crew/x"], check=True)
    subprocess.run([*git, "commit", "--quiet", "--allow-empty", "-m", "x"], check=True)
    subprocess.run([*git, "push", "--quiet", "origin", "feature-crew/x"], check=True, timeout=30)
    assert gh.wait_for_deliveries(timeout=10)
    data = json.loads(seen[-1][1])
    assert data["ref"] == "refs/heads/feature-crew/x" and data["created"]
    assert data["sender"]["login"] == gh.bot_login and data["sender"]["type"] == "Bot"
    assert not wants("push", "", data)  # not the default branch: never even stored
