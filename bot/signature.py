"""Webhook signature check: HMAC-SHA256 over the raw body, constant time, sha256 only."""

from __future__ import annotations

import hashlib
import hmac


def signature_for(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def is_valid_signature(secret: bytes, body: bytes, header: str | None) -> bool:
    """Only `X-Hub-Signature-256` counts; a missing header or a sha1 one is refused."""
    if not header or not header.startswith("sha256="):
        return False
    # Bytes, not str: compare_digest raises on non-ASCII text, and a header can hold any byte.
    given = header.strip().encode("utf-8", errors="replace")
    return hmac.compare_digest(signature_for(secret, body).encode(), given)
