"""Webhook bodies to JSON objects, refusing nesting deep enough to exhaust the recursion limit."""

from __future__ import annotations

import re
from typing import Any

import orjson

# GitHub's own payloads nest 7 levels deep; JSON parsers recurse (or refuse) once per level.
MAX_DEPTH = 64
_STRINGS = re.compile(rb'"[^"]*"')
_KEEP_ONLY_BRACKETS_AND_QUOTES = bytes(b for b in range(256) if b not in b'[]{}"')
_SQUARE = bytes.maketrans(b"{}", b"[]")
_TOO_DEEP = f"body is not JSON nested at most {MAX_DEPTH} deep"


class MalformedPayload(ValueError):
    """A body that is not a JSON object we can safely parse; the message says why."""


def nesting_exceeds(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON text nests arrays/objects deeper than `limit` (or is unbalanced).

    Linear passes in C, no recursion: escapes go (so every quote left opens or closes a
    string), then everything but brackets and quotes, then strings; each further pass strips
    the innermost pairs, so a text nested d deep is empty after exactly d passes.
    """
    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = _STRINGS.sub(b"", body.translate(_SQUARE, _KEEP_ONLY_BRACKETS_AND_QUOTES))
    for _ in range(limit):
        if not brackets:
            return False
        brackets = brackets.replace(b"[]", b"")
    return bool(brackets)


def parse_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or MalformedPayload saying what is wrong with it."""
    try:
        payload = orjson.loads(body)  # refuses, never recurses, past 1024 levels
    except (ValueError, UnicodeDecodeError):
        if nesting_exceeds(body):
            raise MalformedPayload(_TOO_DEEP) from None
        raise MalformedPayload("body is not JSON") from None
    if not isinstance(payload, dict):
        raise MalformedPayload("body is not a JSON object")
    if _parsed_nesting_exceeds(payload):
        raise MalformedPayload(_TOO_DEEP)
    return payload


def _parsed_nesting_exceeds(payload: dict[str, Any], limit: int = MAX_DEPTH) -> bool:
    """nesting_exceeds on what orjson parsed: one level at a time, about 3x cheaper."""
    level: list[Any] = [payload]
    for _ in range(limit):
        inner = [
            value
            for container in level
            for value in (container.values() if type(container) is dict else container)
            if type(value) is dict or type(value) is list
        ]
        if not inner:
            return False
        level = inner
    return True
