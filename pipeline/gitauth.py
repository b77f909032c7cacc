"""Token credentials and error sorting for pygit2's fetches and pushes to GitHub."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pygit2
from pygit2.enums import CredentialType

from pipeline.errors import FeatureCrewError, TransientError, WorkspaceError

TOKEN_USER = "x-access-token"  # noqa: S105 - the fixed username GitHub expects, not a secret
_PERMANENT_HTTP = re.compile(r"status code: (?:400|403|404|410|422)\b")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# libgit2's words for a TLS certificate it did not trust: retrying cannot help.
_UNTRUSTED_CERTIFICATE = re.compile(r"rejected certificate|certificate (?:is )?invalid", re.I)


class TokenCallbacks(pygit2.RemoteCallbacks):
    """Hands libgit2 the installation token and records what the server said about each ref.

    The token goes to the repository's own clone URL on the API's own git host, and nowhere
    else: an `insteadOf` in some git config or an HTTP redirect that moved the request gets
    a refusal, never the token.
    """

    def __init__(self, token: str, clone_url: str, git_host: str | None = None) -> None:
        super().__init__()
        self._token = token
        self._clone_url = clone_url
        self._git_host = git_host
        self._offered = False
        self.remote_text: list[str] = []
        self.rejected: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"TokenCallbacks({_safe_url(self._clone_url)!r})"

    def credentials(
        self, url: str, username_from_url: str | None, allowed_types: CredentialType
    ) -> pygit2.UserPass:
        if not _same_repository(url, self._clone_url) or (
            self._git_host is not None and _origin(url) != _origin(self._git_host)
        ):
            raise WorkspaceError(
                f"refusing to send the installation token to {_safe_url(url)}: "
                f"not the repository's clone URL {_safe_url(self._clone_url)}",
                public="git asked for credentials for a URL other than the repository's",
            )
        # A second request means the server refused the token; libgit2 would retry 15 times.
        if self._offered:
            raise WorkspaceError(
                f"authentication failed for {_safe_url(url)}: the token was refused",
                public="GitHub refused the installation token for this repository",
            )
        if not allowed_types & CredentialType.USERPASS_PLAINTEXT:
            raise WorkspaceError(f"{_safe_url(url)} does not accept token authentication")
        self._offered = True
        return pygit2.UserPass(TOKEN_USER, self._token)

    def sideband_progress(self, string: str) -> None:
        self.remote_text.append(string)

    def push_update_reference(self, refname: str, message: str | None) -> None:
        if message:
            self.rejected[refname] = message

    def remote_messages(self) -> str:
        """What the server printed (hook output included), trimmed of progress noise."""
        lines = "".join(self.remote_text).replace("\r", "\n").splitlines()
        return "\n".join(line.strip() for line in lines if line.strip())


def check_clone_url(clone_url: str) -> None:
    """Refuse a URL with credentials in it: libgit2 would store them in the mirror's config."""
    parts = urlsplit(clone_url)
    if parts.username or parts.password:
        raise WorkspaceError(f"refusing a clone URL with credentials in it: {_safe_url(clone_url)}")


def git_host_for(api_url: str) -> str:
    """Where the API's repositories live: api.github.com serves github.com, HOST/api/v3 HOST."""
    parts = urlsplit(api_url.rstrip("/"))
    if parts.path.endswith("/api/v3"):  # Enterprise Server: the API lives on the git host
        return f"{parts.scheme}://{parts.netloc}{parts.path.removesuffix('/api/v3')}"
    return f"{parts.scheme}://{parts.netloc.removeprefix('api.')}"


def check_remote_url(remote: pygit2.Remote, clone_url: str) -> None:
    """Refuse a remote that git config (`insteadOf`, `pushInsteadOf`) points somewhere else."""
    for url in (remote.url, remote.push_url):
        if url is not None and url != clone_url:
            raise WorkspaceError(
                f"git config rewrites {_safe_url(clone_url)} to {_safe_url(url)}; refusing "
                "to fetch or push there (look for `url.*.insteadOf` in the mirror's config)",
                public="git configuration redirects this repository's URL; refusing to use it",
            )


def network_error(exc: pygit2.GitError, action: str, url: str) -> FeatureCrewError:
    """Sort a libgit2 transport failure: a missing or forbidden repo, or a certificate not
    trusted, is permanent; anything else is retried."""
    text = f"{action} {_safe_url(url)} failed: {exc}"
    if _UNTRUSTED_CERTIFICATE.search(str(exc)):
        return WorkspaceError(
            text, public=f"git {action} failed: the git host's TLS certificate is not trusted"
        )
    if _PERMANENT_HTTP.search(str(exc)):
        return WorkspaceError(text, public=f"git {action} failed: the repository was not found")
    return TransientError(text, public=f"git {action} failed; will retry")


def _safe_url(url: str) -> str:
    parts = urlsplit(url)
    # Without user:password, and without parsing the port (a bad one must not raise here).
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        port = -1
    return scheme, (parts.hostname or "").lower(), port


def _same_repository(url: str, clone_url: str) -> bool:
    def path(u: str) -> str:
        return urlsplit(u).path.rstrip("/").removesuffix(".git")

    return _origin(url) == _origin(clone_url) and path(url) == path(clone_url)
