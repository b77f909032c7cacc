"""Token credentials and error sorting for pygit2's fetches and pushes to GitHub."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pygit2
from pygit2.enums import CredentialType

from pipeline.errors import FeatureCrewError, TransientError, WorkspaceError

TOKEN_USER = "x-access-token"  # noqa: S105 - the fixed username GitHub expects, not a secret
_PERMANENT_HTTP = re.compile(r"status code: (?:400|403|404|410|422)\b")


class TokenCallbacks(pygit2.RemoteCallbacks):
    """Hands libgit2 the installation token and records what the server said about each ref."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self._token = token
        self._offered = False
        self.remote_text: list[str] = []
        self.rejected: dict[str, str] = {}

    def credentials(
        self, url: str, username_from_url: str | None, allowed_types: CredentialType
    ) -> pygit2.UserPass:
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


def network_error(exc: pygit2.GitError, action: str, url: str) -> FeatureCrewError:
    """Sort a libgit2 transport failure: a missing or forbidden repo is permanent, else retry."""
    text = f"{action} {_safe_url(url)} failed: {exc}"
    if _PERMANENT_HTTP.search(str(exc)):
        return WorkspaceError(text, public=f"git {action} failed: the repository was not found")
    return TransientError(text, public=f"git {action} failed; will retry")


def _safe_url(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return parts._replace(netloc=host).geturl()
