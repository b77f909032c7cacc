"""The reviewer model's verdict through submit_verdict, on both providers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.settings import EnvSettings
from pipeline.config import OperatorConfig, ReviewConfig
from pipeline.errors import PermanentError
from pipeline.models import ModelVerdict, Provider, ReviewAction, Usage
from pipeline.reviewer_model import NUDGE, SUBMIT_VERDICT_TOOL, ask_reviewer
from tests.doubles.models import AnthropicDouble, OpenAIDouble, text_turn, tool_turn

HAIKU = "claude-haiku-5-5"
PRICES = OperatorConfig().price


@pytest.fixture
def claude(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[AnthropicDouble]:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-anthropic-key")
    with AnthropicDouble() as double:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", double.base_url)
        yield double


def _ask(review: ReviewConfig | None = None) -> tuple[ModelVerdict | None, tuple[Usage, ...]]:
    return ask_reviewer(
        system="You review pull requests.",
        prompt="Spec, diff, audit.",
        review=review or ReviewConfig(),
        endpoints=EnvSettings().endpoints,
        price_for=PRICES,
    )


def test_approve(claude: AnthropicDouble) -> None:
    claude.script(
        HAIKU,
        [
            tool_turn(
                SUBMIT_VERDICT_TOOL,
                {"action": "approve", "reason": "Does what it says."},
                text="Looks right.",
                input_tokens=1_000_000,
                output_tokens=0,
            )
        ],
    )
    verdict, usage = _ask()
    assert verdict == ModelVerdict(action=ReviewAction.APPROVE, reason="Does what it says.")
    assert len(usage) == 1
    assert usage[0].cost_usd == pytest.approx(0.10)
    body = claude.bodies(HAIKU)[0]
    assert [t["name"] for t in body["tools"]] == [SUBMIT_VERDICT_TOOL]
    schema = body["tools"][0]["input_schema"]
    assert schema["properties"]["action"]["enum"] == ["approve", "reject"]
    assert set(schema["required"]) == {"action", "reason"}
    assert "tool_choice" not in body
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert body["max_tokens"] == ReviewConfig().max_tokens


def test_reject_with_feedback(claude: AnthropicDouble) -> None:
    verdict_input = {"action": "reject", "reason": "No tests.", "feedback": "Add a test."}
    claude.script(HAIKU, [tool_turn(SUBMIT_VERDICT_TOOL, verdict_input)])
    verdict, _ = _ask()
    assert verdict is not None
    assert verdict.action is ReviewAction.REJECT
    assert verdict.feedback == "Add a test."


def test_plain_text_reply_gets_one_nudge_then_none(claude: AnthropicDouble) -> None:
    claude.script(HAIKU, [text_turn("I approve."), text_turn("Still approve.")])
    verdict, usage = _ask()
    assert verdict is None
    assert len(usage) == 2
    second = claude.bodies()[1]["messages"]
    assert second[-1]["role"] == "user"
    assert second[-1]["content"][0]["text"] == NUDGE


def test_nudge_can_recover_a_verdict(claude: AnthropicDouble) -> None:
    claude.script(
        HAIKU,
        [
            text_turn("Fine by me."),
            tool_turn(SUBMIT_VERDICT_TOOL, {"action": "approve", "reason": "ok"}),
        ],
    )
    verdict, usage = _ask()
    assert verdict is not None
    assert verdict.action is ReviewAction.APPROVE
    assert len(usage) == 2


def test_invalid_tool_input_is_sent_back_as_a_tool_error(claude: AnthropicDouble) -> None:
    claude.script(
        HAIKU,
        [
            tool_turn(SUBMIT_VERDICT_TOOL, {"action": "maybe", "reason": "unsure"}),
            tool_turn(SUBMIT_VERDICT_TOOL, {"action": "maybe", "reason": "still"}),
        ],
    )
    verdict, usage = _ask()
    assert verdict is None
    assert len(usage) == 2
    result = claude.bodies()[1]["messages"][2]["content"][0]
    assert result["type"] == "tool_result"
    assert result["is_error"] is True
    assert "action" in result["content"]


def test_openai_reviewer(clean_env: None) -> None:
    with OpenAIDouble(api_key=None) as local:
        local.script(
            "qwen3-235b", [tool_turn(SUBMIT_VERDICT_TOOL, {"action": "reject", "reason": "x"})]
        )
        review = ReviewConfig(provider=Provider.OPENAI, model="qwen3-235b", base_url=local.base_url)
        verdict, usage = _ask(review)
    assert verdict == ModelVerdict(action=ReviewAction.REJECT, reason="x")
    assert usage[0].cost_usd == 0.0
    tools = local.bodies()[0]["tools"]
    assert [t["function"]["name"] for t in tools] == [SUBMIT_VERDICT_TOOL]


def test_reviewer_key_rejected_is_permanent(
    claude: AnthropicDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-nope")
    with pytest.raises(PermanentError) as caught:
        _ask()
    assert HAIKU in caught.value.public
    assert "sk-ant-nope" not in caught.value.public
