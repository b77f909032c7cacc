"""POST /webhooks never answers 500, whatever the headers and the body, signed or not."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import hypothesis
import pytest
import redis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.app import create_app
from bot.payload import MalformedPayload, nesting_exceeds, parse_object
from bot.signature import is_valid_signature, signature_for
from tests.conftest import RedisServer
from tests.doubles.server import ServerThread
from tests.helpers import PAYLOADS, SECRET, settings_with, signed

EXAMPLES = sorted(PAYLOADS.glob("*/*.payload.json"))
EVENTS = sorted({path.parent.name for path in EXAMPLES}) + ["", "Issues", "ping", "é"]
EXPECTED = {202, 400, 401, 413}
CAP = 1024 * 1024


@pytest.fixture(scope="module")
def web(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    tmp = tmp_path_factory.mktemp("edge")
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(("GITHUB_", "FEATURE_CREW_", "SENTRY_")):
                mp.delenv(name)
        mp.chdir(tmp)
        config = settings_with(
            mp,
            {
                "REDIS_URL": redis_server.url,
                "GITHUB_WEBHOOK_SECRET": SECRET,
                "GITHUB_APP_ID": "1",
                "GITHUB_PRIVATE_KEY": "not used: the web process never calls GitHub",
                "FEATURE_CREW_HOME": str(tmp / "home"),
            },
            config=f"[server]\nmax_body_bytes = {CAP}\n",
            tmp_path=tmp,
        )
    redis.Redis.from_url(redis_server.url).flushall()
    server = ServerThread(create_app(config)).start()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client
    server.stop()


def test_a_non_ascii_signature_is_refused_not_a_crash(web: httpx.Client) -> None:
    headers, body = signed(
        "issues", json.loads((PAYLOADS / "issues/labeled.payload.json").read_text())
    )
    headers["X-Hub-Signature-256"] = b"sha256=\xe9"  # type: ignore[assignment]
    response = web.post("/webhooks", content=body, headers=headers)
    assert response.status_code == 401


def test_any_header_text_is_compared_as_bytes() -> None:
    body = b"{}"
    good = signature_for(SECRET.encode(), body)
    assert is_valid_signature(SECRET.encode(), body, good)
    for bad in ("sha256=\xe9", "sha256=\u2603" * 10, "sha256=\udcff", good + "\xe9"):
        assert not is_valid_signature(SECRET.encode(), body, bad)


def test_a_signed_body_nested_100000_deep_is_malformed(web: httpx.Client) -> None:
    body = b'{"action": "labeled", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    headers, body = signed("issues", body)
    response = web.post("/webhooks", content=body, headers=headers)
    assert response.status_code == 400
    assert "nested" in response.json()["detail"]


def test_a_deep_string_is_not_nesting(web: httpx.Client) -> None:
    payload = json.loads((PAYLOADS / "issues/labeled.payload.json").read_text())
    payload["issue"]["body"] = "[" * 5000 + '\\"{' * 100
    headers, body = signed("issues", payload)
    assert web.post("/webhooks", content=body, headers=headers).status_code == 202


@pytest.mark.parametrize(
    ("text", "too_deep"),
    [
        (b"[" * 64 + b"]" * 64, False),
        (b"[" * 65 + b"]" * 65, True),
        (b'{"a": ' * 65 + b"1" + b"}" * 65, True),
        (b'{"a": "' + b"[" * 500 + b'"}', False),  # brackets in strings are text
        (b'{"a": "\\" [[[", "b": [[]]}', False),  # an escaped quote does not end the string
        (b'{"a": "x\\\\", "b": [' * 40 + b"]" * 40, True),  # an escaped backslash does
        (b"[" * 1_000_000, True),
    ],
)
def test_nesting_is_measured_without_recursion(text: bytes, too_deep: bool) -> None:
    assert nesting_exceeds(text) is too_deep


@pytest.mark.parametrize("depth", [2, 63, 64, 65, 66, 1000, 1023, 1024, 1025, 3000])
@pytest.mark.parametrize("shape", ["arrays", "objects", "mixed"])
def test_a_parsed_body_is_held_to_the_same_depth_as_its_text(depth: int, shape: str) -> None:
    # parse_object lets orjson parse first (it refuses past 1024 levels) and measures what it
    # parsed; the answer must be the text's own.
    opens = {"arrays": [b"["], "objects": [b'{"a": '], "mixed": [b"[", b'{"b": ']}[shape]
    closes = {b"[": b"]", b'{"b": ': b"}", b'{"a": ': b"}"}
    inner = [opens[i % len(opens)] for i in range(depth - 1)]
    text = b'{"x": ' + b"".join(inner) + b"1" + b"".join(closes[o] for o in reversed(inner)) + b"}"
    if nesting_exceeds(text):
        with pytest.raises(MalformedPayload, match="nested"):
            parse_object(text)
    else:
        assert parse_object(text)["x"] is not None
    assert nesting_exceeds(text) is (depth > 64)


# Header values a client can put on the wire: visible ASCII, obs-text, inner spaces.
_WIRE = st.binary(min_size=0, max_size=80).map(
    lambda raw: bytes(b for b in raw if b >= 0x20 and b != 0x7F).strip()
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=20,
)


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _mutate(payload: Any, draw: st.DrawFn) -> Any:
    """Replace, drop or nest one value somewhere in a real payload."""
    if isinstance(payload, dict) and payload and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(payload)))
        change = draw(st.sampled_from(["replace", "drop", "descend", "nest"]))
        if change == "replace":
            return {**payload, key: draw(_JSON)}
        if change == "drop":
            return {k: v for k, v in payload.items() if k != key}
        if change == "nest":
            return {**payload, key: _nested(draw(st.integers(1, 200)))}
        return {**payload, key: _mutate(payload[key], draw)}
    return payload


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[dict[str, Any], bytes]:
    source = draw(st.sampled_from(EXAMPLES))
    payload = _mutate(json.loads(source.read_text()), draw)
    shape = draw(st.sampled_from(["json", "deep", "scalar", "bytes", "truncated"]))
    if shape == "json":
        body = json.dumps(payload).encode()
    elif shape == "deep":
        depth = draw(st.integers(1, 3000))
        body = b'{"action": "labeled", "a": ' + b"[" * depth + b"]" * depth + b"}"
    elif shape == "scalar":
        body = json.dumps(draw(_JSON)).encode()
    elif shape == "bytes":
        body = draw(st.binary(max_size=300))
    else:
        text = json.dumps(payload).encode()
        body = text[: draw(st.integers(0, len(text)))]
    event = draw(st.sampled_from(EVENTS) | _WIRE.map(lambda b: b.decode("latin-1")))
    headers: dict[str, Any] = {"Content-Type": "application/json"}
    headers["X-GitHub-Event"] = event.encode("latin-1", "replace")
    headers["X-GitHub-Delivery"] = draw(
        st.sampled_from([True, True, True, False]).flatmap(
            lambda real: st.uuids().map(lambda u: str(u).encode()) if real else _WIRE
        )
    )
    signature = signature_for(SECRET.encode(), body).encode()
    kind = draw(st.sampled_from(["good"] * 4 + ["upper", "sha1", "wire", "sha256+wire"]))
    headers["X-Hub-Signature-256"] = {
        "good": signature,
        "upper": signature.upper(),
        "sha1": b"sha1=" + signature[7:],
        "wire": draw(_WIRE),
        "sha256+wire": b"sha256=" + draw(_WIRE),
    }[kind]
    if draw(st.integers(0, 9)) == 0:
        del headers[draw(st.sampled_from(sorted(headers)))]
    return headers, body


@settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(delivery=deliveries())
@example(delivery=({"X-Hub-Signature-256": b"sha256=\xe9", "X-GitHub-Event": b"issues",
                    "X-GitHub-Delivery": b"d"}, b"{}"))  # fmt: skip
@example(delivery=signed("issues", b"[" * 100_000 + b"]" * 100_000))
def test_no_delivery_gets_a_500(web: httpx.Client, delivery: tuple[dict[str, Any], bytes]) -> None:
    headers, body = delivery
    response = web.post("/webhooks", content=body, headers=headers)
    hypothesis.event(f"status {response.status_code}")
    assert response.status_code in EXPECTED, response.text
