"""GitHub's two credentials: the App's RS256 JWT and installation tokens minted from it."""

from __future__ import annotations

import secrets
import string
from datetime import timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.doubles.github.errors import ApiError
from tests.doubles.github.state import Repo, State, Token, now

BAD_JWT = "A JSON web token could not be decoded"
BAD_CREDENTIALS = "Bad credentials"
NOT_ACCESSIBLE = "Resource not accessible by integration"
LEVELS = {"read": 1, "write": 2, "admin": 3}


def generate_key() -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    return key, pem


def bearer(headers: Any) -> tuple[str, str] | None:
    """(scheme, credential) from an Authorization header, scheme lower-cased."""
    value = headers.get("authorization", "")
    scheme, _, credential = value.partition(" ")
    if not credential.strip():
        return None
    return scheme.lower(), credential.strip()


def verify_jwt(headers: Any, key: rsa.RSAPrivateKey, app_id: int) -> None:
    """Accept only what GitHub accepts: RS256 by our key, iss = app id, at most 10 minutes."""
    found = bearer(headers)
    if found is None or found[0] != "bearer":
        raise ApiError(401, BAD_JWT)
    try:
        claims = jwt.decode(
            found[1],
            key.public_key(),
            algorithms=["RS256"],
            options={"require": ["exp", "iat", "iss"], "verify_iss": False},
            leeway=60,
        )
    except jwt.PyJWTError as exc:
        raise ApiError(401, BAD_JWT) from exc
    if str(claims["iss"]) != str(app_id):
        raise ApiError(401, BAD_JWT)
    if int(claims["exp"]) - int(claims["iat"]) > 600:
        raise ApiError(
            401,
            "'Expiration time' claim ('exp') is too far in the future",
        )


def mint(state: State, installation_id: int, body: dict[str, Any]) -> Token:
    """A token for the installation, narrowed to the repositories/permissions asked for."""
    inst = state.installations[installation_id]
    names = [str(n) for n in body.get("repositories") or []]
    ids = [int(i) for i in body.get("repository_ids") or []]
    owned = {r.full_name: r for r in state.repos.values() if r.installation_id == inst.id}
    scoped: list[str] | None = None
    if names or ids:
        scoped = []
        for name in names:
            full = name if "/" in name else f"{inst.account}/{name}"
            if full not in owned:
                raise ApiError(
                    422,
                    "There is at least one repository that does not exist or is not "
                    "accessible to the parent installation.",
                )
            scoped.append(full)
        for ident in ids:
            match = [r.full_name for r in owned.values() if r.id == ident]
            if not match:
                raise ApiError(422, "There is at least one repository that does not exist.")
            scoped.extend(match)
    asked = body.get("permissions") or {}
    for name, level in asked.items():
        granted = inst.permissions.get(name)
        if granted is None or LEVELS.get(level, 9) > LEVELS.get(granted, 0):
            raise ApiError(422, "The permissions requested are not granted to this installation.")
    alphabet = string.ascii_letters + string.digits
    token = Token(
        value="ghs_" + "".join(secrets.choice(alphabet) for _ in range(36)),
        installation_id=inst.id,
        expires_at=now() + timedelta(hours=1),
        # GitHub always grants metadata:read, however narrowly a token is scoped.
        permissions={"metadata": "read", **asked} if asked else dict(inst.permissions),
        repositories=sorted(set(scoped)) if scoped is not None else None,
    )
    state.tokens[token.value] = token
    return token


def valid_token(state: State, value: str) -> Token | None:
    token = state.tokens.get(value)
    if token is None or token.revoked or token.expires_at <= now():
        return None
    if token.installation_id not in state.installations:
        return None
    return token


def token_from_headers(state: State, headers: Any) -> Token:
    found = bearer(headers)
    token = valid_token(state, found[1]) if found and found[0] in ("token", "bearer") else None
    if token is None:
        raise ApiError(401, BAD_CREDENTIALS)
    return token


def covers(token: Token, repo: Repo) -> bool:
    if repo.installation_id != token.installation_id:
        return False
    return token.repositories is None or repo.full_name in token.repositories


def require(token: Token, *alternatives: str) -> None:
    """Refuse like GitHub unless the token holds one of `name:level` permissions."""
    for wanted in alternatives:
        name, _, level = wanted.partition(":")
        if LEVELS.get(token.permissions.get(name, ""), 0) >= LEVELS[level]:
            return
    raise ApiError(403, NOT_ACCESSIBLE)
