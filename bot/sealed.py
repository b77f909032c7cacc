"""Installation tokens sealed for Redis: AES-GCM under a key derived from the App's private key."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"fc1"
_NONCE_BYTES = 12


class TokenSeal:
    """Seals and opens cached tokens; a value sealed under another key opens as None.

    Whoever holds the private key can mint tokens anyway, so deriving the key from it adds
    no secret to manage, and a reader of Redis alone (a dump, a backup, code that reached
    the port) learns nothing. The Redis key is the associated data: a sealed token cannot
    be moved to another installation's or repository's entry.
    """

    def __init__(self, private_key: str) -> None:
        material = "".join(private_key.split()).encode()  # the same key however it was wrapped
        hkdf = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=b"feature-crew",
            info=b"installation token cache v1",
        )
        self._aead = AESGCM(hkdf.derive(material))

    def __repr__(self) -> str:
        return "TokenSeal()"

    def seal(self, redis_key: str, token: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, token.encode(), redis_key.encode())

    def open(self, redis_key: str, sealed: bytes) -> str | None:
        """The token, or None for a value this key did not seal (a rotated key, tampering)."""
        if not sealed.startswith(_VERSION):
            return None
        body = sealed[len(_VERSION) :]
        nonce, ciphertext = body[:_NONCE_BYTES], body[_NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, ciphertext, redis_key.encode()).decode()
        except (InvalidTag, ValueError):
            return None
