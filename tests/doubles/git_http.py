"""A git smart-HTTP remote for tests: the real `git http-backend` behind GitHub-style auth."""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
import re
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"
_SERVICE_PATH = re.compile(
    r"^(?P<owner>[A-Za-z0-9_.-]+)/(?P<repo>[A-Za-z0-9_.-]+)\.git/"
    r"(?P<rest>info/refs|git-upload-pack|git-receive-pack)$"
)
_CHALLENGE = {"WWW-Authenticate": 'Basic realm="GitHub"'}
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}


PushHook = Callable[[str, str, dict[str, str]], None]


def git_http_app(
    project_root: Path,
    check_token: Callable[[str, str], bool],
    refs_of: Callable[[str], dict[str, str]] | None = None,
    on_push: PushHook | None = None,
) -> Starlette:
    """Serve every bare repo at project_root/<owner>/<repo>.git over smart HTTP.

    With `refs_of` and `on_push`, a receive-pack that moved branches calls
    `on_push(full_name, token, refs_before)` afterwards, as GitHub sends its `push` webhook.
    """

    async def endpoint(request: Request) -> Response:
        path = request.path_params["path"].lstrip("/")
        match = _SERVICE_PATH.match(path)
        if match is None:
            return Response("Not Found", status_code=404)
        full_name = f"{match['owner']}/{match['repo']}"
        token = _basic_token(request.headers.get("authorization", ""))
        # Private repos: GitHub challenges fetches and pushes alike, so libgit2 asks for creds.
        if token is None:
            return Response("Unauthorized", status_code=401, headers=_CHALLENGE)
        if not (project_root / f"{full_name}.git").is_dir():
            return Response("Repository not found.", status_code=404)
        if not check_token(token, full_name):
            return Response("Invalid credentials", status_code=401, headers=_CHALLENGE)
        body = await request.body()
        env = _cgi_env(request, project_root, f"/{path}", len(body))
        git_dir = str(project_root / f"{full_name}.git")
        pushing = match["rest"] == "git-receive-pack" and refs_of is not None
        before = await asyncio.to_thread(refs_of, git_dir) if pushing and refs_of else {}
        response = await _run_backend(env, body)
        if pushing and on_push is not None:
            await asyncio.to_thread(on_push, full_name, token, before)
        return response

    return Starlette(routes=[Route("/{path:path}", endpoint, methods=["GET", "POST"])])


def _basic_token(header: str) -> str | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return password if user == "x-access-token" and password else None


def _cgi_env(request: Request, root: Path, path_info: str, length: int) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **_GIT_ENV,
        "GATEWAY_INTERFACE": "CGI/1.1",
        "REQUEST_METHOD": request.method,
        "PATH_INFO": path_info,
        "QUERY_STRING": request.url.query,
        "CONTENT_TYPE": request.headers.get("content-type", ""),
        "CONTENT_LENGTH": str(length),
        "GIT_PROJECT_ROOT": str(root),
        "GIT_HTTP_EXPORT_ALL": "1",
        # http-backend enables receive-pack only for an authenticated REMOTE_USER.
        "REMOTE_USER": "x-access-token",
        "REMOTE_ADDR": request.client.host if request.client else "127.0.0.1",
        "GIT_HTTP_MAX_REQUEST_BUFFER": "100M",
    }
    for header, name in (("content-encoding", "HTTP_CONTENT_ENCODING"),
                         ("git-protocol", "GIT_PROTOCOL")):  # fmt: skip
        if header in request.headers:
            env[name] = request.headers[header]
    return env


async def _run_backend(env: dict[str, str], body: bytes) -> Response:
    # A thread, not asyncio's subprocess: under uvloop, feeding stdin to a CGI that already
    # exited (a GET's info/refs) raises instead of being ignored as a broken pipe.
    done = await asyncio.to_thread(
        subprocess.run, [HTTP_BACKEND], env=env, input=body, capture_output=True, timeout=60
    )
    if done.returncode != 0 and not done.stdout:
        return Response(done.stderr.decode(errors="replace"), status_code=500)
    return _parse_cgi(done.stdout)


def _parse_cgi(output: bytes) -> Response:
    head, sep, body = output.partition(b"\r\n\r\n")
    if not sep:
        head, _, body = output.partition(b"\n\n")
    status, headers = 200, {}
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.split()[0])
        elif name:
            headers[name.strip()] = value.strip()
    return Response(body, status_code=status, headers=headers)


def _git(git_dir: Path, *args: str, cwd: Path | None = None, **extra: str) -> str:
    env = {**os.environ, **_GIT_ENV, **extra, "GIT_DIR": str(git_dir)}
    done = subprocess.run(
        ["git", *args], env=env, cwd=cwd, capture_output=True, text=True, check=True, timeout=30
    )
    return done.stdout


def create_bare_repo(
    path: Path, files: dict[str, str], branch: str = "main", message: str = "initial"
) -> str:
    """A bare repo at path whose `branch` holds one commit with `files`; returns its sha."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "--quiet", "--bare", f"--initial-branch={branch}", str(path)],
                   capture_output=True, check=True, timeout=30)  # fmt: skip
    return commit_files(path, files, branch=branch, message=message)


def commit_files(
    path: Path, files: dict[str, str], branch: str = "main", message: str = "update"
) -> str:
    """One commit on `branch` of the bare repo at path that writes `files`; returns its sha."""
    parent = rev_parse(path, f"refs/heads/{branch}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, content in files.items():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_text(content)
        extra = {"GIT_INDEX_FILE": str(work / ".index"), "GIT_WORK_TREE": str(work)}
        _git(path, "read-tree", parent or "--empty", cwd=work, **extra)
        _git(path, "add", "--", *files, cwd=work, **extra)
        tree = _git(path, "write-tree", cwd=work, **extra).strip()
    parents = ["-p", parent] if parent else []
    sha = _git(path, "commit-tree", tree, *parents, "-m", message).strip()
    _git(path, "update-ref", f"refs/heads/{branch}", sha)
    return sha


def rev_parse(path: Path, ref: str) -> str | None:
    """The sha `ref` names in the bare repo at path, or None."""
    try:
        return _git(path, "rev-parse", "--verify", "--quiet", ref).strip() or None
    except subprocess.CalledProcessError:
        return None


def reject_pushes(path: Path, message: str) -> None:
    """Make the bare repo at path refuse every ref update, printing `message` to the pusher."""
    hook = path / "hooks" / "pre-receive"
    hook.parent.mkdir(parents=True, exist_ok=True)
    quoted = message.replace("'", "'\\''")
    hook.write_text(f"#!/bin/sh\nprintf '%s\\n' '{quoted}' >&2\nexit 1\n")
    hook.chmod(0o755)


def read_file_at(path: Path, ref: str, file: str) -> str | None:
    """The content of `file` at `ref` in the bare repo at path, or None if either is missing."""
    try:
        return _git(path, "show", f"{ref}:{file}")
    except subprocess.CalledProcessError:
        return None
