"""The model API doubles answer the real SDKs in the real shapes, and fail loudly."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import openai
import pytest

from tests.doubles.models import AnthropicDouble, OpenAIDouble, text_turn, tool_turn


@pytest.fixture
def claude() -> Iterator[AnthropicDouble]:
    with AnthropicDouble() as double:
        yield double


@pytest.fixture
def oai() -> Iterator[OpenAIDouble]:
    with OpenAIDouble() as double:
        yield double


def _anthropic(double: AnthropicDouble, key: str = "test-anthropic-key") -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=key, base_url=double.base_url, max_retries=2, timeout=10)


def test_anthropic_sdk_parses_scripted_turns(claude: AnthropicDouble) -> None:
    claude.script(
        "m",
        [tool_turn("t", {"a": 1}, text="thinking", input_tokens=7), text_turn("bye")],
    )
    client = _anthropic(claude)
    first = client.messages.create(
        model="m", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    )
    assert first.stop_reason == "tool_use"
    assert [b.type for b in first.content] == ["text", "tool_use"]
    tool_use = first.content[1]
    assert tool_use.type == "tool_use"
    assert tool_use.input == {"a": 1}
    assert first.usage.input_tokens == 7
    second = client.messages.create(
        model="m",
        max_tokens=100,
        messages=[
            {"role": "user", "content": "hi"},
            first.to_param(),
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use.id}]},
        ],
    )
    assert second.stop_reason == "end_turn"
    assert claude.remaining("m") == 0
    assert claude.requests[0].headers["authorization"] == "Bearer test-anthropic-key"


def test_anthropic_double_refuses_an_unanswered_tool_use(claude: AnthropicDouble) -> None:
    claude.script("m", [tool_turn("t", {}), text_turn("never")])
    client = _anthropic(claude)
    first = client.messages.create(
        model="m", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    )
    with pytest.raises(anthropic.BadRequestError, match="without tool_result"):
        client.messages.create(
            model="m",
            max_tokens=100,
            messages=[
                {"role": "user", "content": "hi"},
                first.to_param(),
                {"role": "user", "content": "no results"},
            ],
        )


def test_anthropic_double_auth_fault_and_exhaustion(claude: AnthropicDouble) -> None:
    messages: list[anthropic.types.MessageParam] = [{"role": "user", "content": "hi"}]
    with pytest.raises(anthropic.AuthenticationError) as auth:
        _anthropic(claude, key="wrong").messages.create(model="m", max_tokens=10, messages=messages)
    assert auth.value.type == "authentication_error"
    claude.script("m", [text_turn("ok")])
    claude.fail_next(1, 529)
    assert _anthropic(claude).messages.create(model="m", max_tokens=10, messages=messages)
    assert [r.status for r in claude.requests[1:]] == [529, 200]
    with pytest.raises(anthropic.BadRequestError, match="script exhausted"):
        _anthropic(claude).messages.create(model="m", max_tokens=10, messages=messages)


def test_openai_sdk_parses_scripted_turns(oai: OpenAIDouble) -> None:
    oai.script("q", [tool_turn("t", {"a": 1}), tool_turn("t", "{not json")])
    client = openai.OpenAI(api_key="test-openai-key", base_url=oai.base_url, max_retries=0)
    reply = client.chat.completions.create(model="q", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].finish_reason == "tool_calls"
    call = reply.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.arguments == '{"a": 1}'  # type: ignore[union-attr]
    with pytest.raises(openai.BadRequestError, match="tool_call_id"):
        client.chat.completions.create(
            model="q",
            messages=[
                {"role": "user", "content": "hi"},
                reply.choices[0].message.model_dump(),  # type: ignore[list-item]
            ],
        )


def test_openai_double_without_key_accepts_anything_and_faults(oai: OpenAIDouble) -> None:
    with OpenAIDouble(api_key=None) as local:
        local.script("q", [text_turn("hello")])
        local.fail_next(2, 500)
        client = openai.OpenAI(api_key="whatever", base_url=local.base_url, max_retries=2)
        reply = client.chat.completions.create(
            model="q", messages=[{"role": "user", "content": "hi"}]
        )
        assert reply.choices[0].message.content == "hello"
        assert [r.status for r in local.requests] == [500, 500, 200]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(api_key="wrong", base_url=oai.base_url).chat.completions.create(
            model="q", messages=[{"role": "user", "content": "hi"}]
        )
