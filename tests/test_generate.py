"""The code-generation loop against the real SDKs and local model API doubles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.settings import EnvSettings
from pipeline.config import OperatorConfig, Price, TierConfig
from pipeline.cost import price_usage
from pipeline.editor import EditorTool
from pipeline.errors import ModelError, PermanentError
from pipeline.generate import EDIT_TOOL_NAME, generate
from pipeline.models import GenerationOutcome, Provider
from tests.doubles.models import (
    AnthropicDouble,
    OpenAIDouble,
    text_turn,
    tool_turn,
    tools_turn,
)
from tests.doubles.server import free_port

SONNET = "claude-sonnet-5-5"
QWEN = "qwen3-235b"
PRICES = OperatorConfig().price


@pytest.fixture
def claude(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[AnthropicDouble]:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-anthropic-key")
    with AnthropicDouble() as double:
        yield double


@pytest.fixture
def oai(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIDouble]:
    monkeypatch.setenv("OPENAI_API_KEY", "test-openai-key")
    with OpenAIDouble() as double:
        monkeypatch.setenv("OPENAI_BASE_URL", double.base_url)
        yield double


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "README.md").write_text("# demo\n")
    return root


def _tier(double: AnthropicDouble | None = None, **kw: Any) -> TierConfig:
    base = {"provider": Provider.ANTHROPIC, "model": SONNET, "max_steps": 10}
    if double is not None:
        base["base_url"] = double.base_url
    return TierConfig(**{**base, **kw})


def _run(tier: TierConfig, repo: Path, prompt: str = "Add greet.py") -> Any:
    return generate(
        system="You are Feature Crew.",
        prompt=prompt,
        tier=tier,
        editor=EditorTool(repo),
        endpoints=EnvSettings().endpoints,
        price_for=PRICES,
    )


CREATE = {"command": "create", "path": "greet.py", "file_text": "def greet():\n    return 'hi'\n"}
REPLACE = {"command": "str_replace", "path": "greet.py", "old_str": "'hi'", "new_str": "'hello'"}


def test_anthropic_loop_creates_then_edits_then_finishes(
    claude: AnthropicDouble, repo: Path
) -> None:
    claude.script(
        SONNET,
        [
            tool_turn(
                EDIT_TOOL_NAME,
                CREATE,
                input_tokens=1000,
                output_tokens=50,
                cache_creation_input_tokens=2000,
            ),
            tool_turn(
                EDIT_TOOL_NAME,
                REPLACE,
                input_tokens=100,
                output_tokens=30,
                cache_read_input_tokens=2000,
            ),
            text_turn(
                "Added greet.py.", input_tokens=50, output_tokens=10, cache_read_input_tokens=3000
            ),
        ],
    )
    result = _run(_tier(claude, max_tokens=4096), repo)

    assert result.outcome is GenerationOutcome.EDITED
    assert result.final_text == "Added greet.py."
    assert result.files_changed == ("greet.py",)
    assert result.steps == 3
    assert (repo / "greet.py").read_text() == "def greet():\n    return 'hello'\n"

    bodies = claude.bodies(SONNET)
    assert len(bodies) == 3
    first = bodies[0]
    assert first["system"] == [
        {"type": "text", "text": "You are Feature Crew.", "cache_control": {"type": "ephemeral"}}
    ]
    assert first["tools"] == [{"type": "text_editor_20250728", "name": EDIT_TOOL_NAME}]
    assert first["max_tokens"] == 4096
    assert "temperature" not in first
    assert "tool_choice" not in first
    assert claude.requests[0].headers["authorization"] == "Bearer test-anthropic-key"

    tool_use_id = bodies[1]["messages"][1]["content"][0]["id"]
    results = bodies[1]["messages"][2]["content"]
    assert [r["type"] for r in results] == ["tool_result"]
    assert results[0]["tool_use_id"] == tool_use_id
    assert results[0]["is_error"] is False
    assert "Created greet.py" in results[0]["content"]
    assert "Edited greet.py" in bodies[2]["messages"][4]["content"][0]["content"]
    # The newest turn carries the moving cache breakpoint; older ones do not.
    assert bodies[2]["messages"][4]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in bodies[2]["messages"][2]["content"][-1]

    sonnet = Price(input=2.0, output=10.0, cache_write=2.5, cache_read=0.1)
    assert sonnet == PRICES(SONNET)
    expected = (
        (1000 + 100 + 50) * 2.0 + 2000 * 2.5 + (2000 + 3000) * 0.1 + (50 + 30 + 10) * 10.0
    ) / 1e6
    assert result.cost_usd == pytest.approx(expected)
    assert [u.input_tokens for u in result.usage] == [1000, 100, 50]
    assert {u.model for u in result.usage} == {SONNET}


def test_tool_errors_go_back_with_is_error(claude: AnthropicDouble, repo: Path) -> None:
    claude.script(
        SONNET,
        [
            tools_turn(
                [
                    (EDIT_TOOL_NAME, {"command": "view", "path": "../../etc/passwd"}),
                    (EDIT_TOOL_NAME, {"command": "view", "path": "README.md"}),
                    ("bash", {"command": "rm -rf /"}),
                ]
            ),
            text_turn("Nothing to do."),
        ],
    )
    result = _run(_tier(claude), repo)
    assert result.outcome is GenerationOutcome.NO_CHANGE
    results = claude.bodies()[1]["messages"][2]["content"]
    assert [r["is_error"] for r in results] == [True, False, True]
    assert "outside the repository" in results[0]["content"]
    assert "# demo" in results[1]["content"]
    assert "no tool 'bash'" in results[2]["content"]


def test_ask_without_edits_is_asked(claude: AnthropicDouble, repo: Path) -> None:
    claude.script(SONNET, [text_turn("\n  [ASK]: Which login flow, (a) or (b)?")])
    result = _run(_tier(claude), repo)
    assert result.outcome is GenerationOutcome.ASKED
    assert result.final_text == "[ASK]: Which login flow, (a) or (b)?"
    assert result.files_changed == ()


def test_ask_after_edits_counts_as_edited(claude: AnthropicDouble, repo: Path) -> None:
    claude.script(SONNET, [tool_turn(EDIT_TOOL_NAME, CREATE), text_turn("[ASK]: ok?")])
    assert _run(_tier(claude), repo).outcome is GenerationOutcome.EDITED


def test_step_cap_stops_the_loop(claude: AnthropicDouble, repo: Path) -> None:
    view = {"command": "view", "path": "README.md"}
    claude.script(SONNET, [tool_turn(EDIT_TOOL_NAME, view)] * 3 + [text_turn("done")])
    result = _run(_tier(claude, max_steps=2), repo)
    assert result.outcome is GenerationOutcome.STEP_CAP
    assert result.steps == 2
    assert len(result.usage) == 2
    assert claude.remaining(SONNET) == 2


def test_overloaded_then_success_is_retried_by_the_sdk(claude: AnthropicDouble, repo: Path) -> None:
    claude.script(SONNET, [text_turn("[ASK]: which file?")])
    claude.fail_next(1, 529)
    result = _run(_tier(claude), repo)
    assert result.outcome is GenerationOutcome.ASKED
    assert [r.status for r in claude.requests] == [529, 200]
    assert len(result.usage) == 1


@pytest.mark.parametrize("status", [429, 500, 529])
def test_persistent_transient_failures_are_model_errors(
    claude: AnthropicDouble, repo: Path, status: int
) -> None:
    claude.fail_next(3, status)
    with pytest.raises(ModelError) as caught:
        _run(_tier(claude), repo)
    assert len(claude.requests) == 3  # the first try and the SDK's two retries
    assert SONNET in caught.value.public


def test_rejected_key_is_permanent_and_secret_free(
    claude: AnthropicDouble, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-very-secret-key")
    with pytest.raises(PermanentError) as caught:
        _run(_tier(claude), repo)
    assert not isinstance(caught.value, ModelError)
    assert caught.value.public == f"the model API rejected the key for {SONNET}"
    assert "sk-ant-very-secret-key" not in str(caught.value)
    assert "Traceback" not in caught.value.public
    assert len(claude.requests) == 1


def test_missing_key_is_permanent(
    claude: AnthropicDouble, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    monkeypatch.setenv("HOME", str(repo.parent))
    with pytest.raises(PermanentError, match="ANTHROPIC_API_KEY"):
        _run(_tier(claude), repo)
    assert claude.requests == []


def test_bad_request_is_permanent_with_the_api_reason(claude: AnthropicDouble, repo: Path) -> None:
    with pytest.raises(PermanentError) as caught:
        _run(_tier(claude), repo)  # nothing scripted: the double answers 400
    assert "script exhausted" in caught.value.public


def test_unreachable_api_is_a_model_error(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, repo: Path
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ModelError) as caught:
        _run(_tier(None, max_steps=1), repo)
    assert caught.value.public == f"the model API for {SONNET} could not be reached"


def test_openai_loop_creates_then_edits_then_finishes(oai: OpenAIDouble, repo: Path) -> None:
    oai.script(
        QWEN,
        [
            tool_turn(EDIT_TOOL_NAME, CREATE, input_tokens=300, output_tokens=40),
            tool_turn(EDIT_TOOL_NAME, REPLACE, input_tokens=400, output_tokens=20),
            text_turn("Added greet.py."),
        ],
    )
    tier = TierConfig(provider=Provider.OPENAI, model=QWEN)
    result = _run(tier, repo)

    assert result.outcome is GenerationOutcome.EDITED
    assert (repo / "greet.py").read_text() == "def greet():\n    return 'hello'\n"
    assert result.files_changed == ("greet.py",)
    assert result.cost_usd == 0.0  # no price configured for a local model
    assert [u.input_tokens for u in result.usage] == [300, 400, 100]

    bodies = oai.bodies(QWEN)
    tool = bodies[0]["tools"][0]
    assert tool["type"] == "function"
    assert tool["function"]["name"] == EDIT_TOOL_NAME
    params = tool["function"]["parameters"]
    assert params["properties"]["command"]["enum"] == ["view", "create", "str_replace", "insert"]
    assert {"insert_text", "new_str", "view_range", "file_text"} <= set(params["properties"])
    assert "tool_choice" not in bodies[0]
    assert bodies[0]["messages"][0] == {"role": "system", "content": "You are Feature Crew."}
    assistant, tool_reply = bodies[1]["messages"][2:4]
    assert assistant["tool_calls"][0]["function"]["name"] == EDIT_TOOL_NAME
    assert tool_reply["role"] == "tool"
    assert tool_reply["tool_call_id"] == assistant["tool_calls"][0]["id"]
    assert "Created greet.py" in tool_reply["content"]
    assert oai.requests[0].headers["authorization"] == "Bearer test-openai-key"


def test_openai_bad_arguments_json_is_a_tool_error(oai: OpenAIDouble, repo: Path) -> None:
    oai.script(QWEN, [tool_turn(EDIT_TOOL_NAME, '{"command": "create", "path":'), text_turn("ok")])
    result = _run(TierConfig(provider=Provider.OPENAI, model=QWEN), repo)
    assert result.outcome is GenerationOutcome.NO_CHANGE
    tool_reply = oai.bodies()[1]["messages"][3]
    assert tool_reply["content"].startswith("Error:")
    assert "not valid JSON" in tool_reply["content"]


def test_openai_local_server_without_a_key(clean_env: None, repo: Path) -> None:
    with OpenAIDouble(api_key=None) as local:
        local.script(QWEN, [text_turn("[ASK]: where?")])
        tier = TierConfig(provider=Provider.OPENAI, model=QWEN, base_url=local.base_url)
        assert _run(tier, repo).outcome is GenerationOutcome.ASKED
        assert local.requests[0].headers["authorization"] == "Bearer not-needed"


def test_openai_rejected_key_is_permanent(
    oai: OpenAIDouble, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-secret")
    with pytest.raises(PermanentError) as caught:
        _run(TierConfig(provider=Provider.OPENAI, model=QWEN), repo)
    assert caught.value.public == f"the model API rejected the key for {QWEN}"
    assert "sk-wrong-secret" not in str(caught.value)


def test_openai_503_then_success(oai: OpenAIDouble, repo: Path) -> None:
    oai.script(QWEN, [text_turn("done")])
    oai.fail_next(1, 503)
    result = _run(TierConfig(provider=Provider.OPENAI, model=QWEN), repo)
    assert result.outcome is GenerationOutcome.NO_CHANGE
    assert [r.status for r in oai.requests] == [503, 200]


def test_price_usage_uses_configured_and_default_cache_rates() -> None:
    explicit = Price(input=2.0, output=10.0, cache_write=3.0, cache_read=0.5)
    usage = price_usage(
        "m",
        input_tokens=1_000_000,
        output_tokens=1_000_000,
        cache_creation_input_tokens=1_000_000,
        cache_read_input_tokens=1_000_000,
        price=explicit,
    )
    assert usage.cost_usd == pytest.approx(2.0 + 10.0 + 3.0 + 0.5)
    defaults = Price(input=4.0, output=20.0)
    usage = price_usage(
        "m",
        input_tokens=0,
        output_tokens=0,
        cache_creation_input_tokens=1_000_000,
        cache_read_input_tokens=2_000_000,
        price=defaults,
    )
    assert usage.cost_usd == pytest.approx(1.25 * 4.0 + 2 * 0.1 * 4.0)
    free = price_usage("local", input_tokens=10**9, output_tokens=10**9, price=None)
    assert free.cost_usd == 0.0
    assert free.input_tokens == 10**9


def test_large_max_tokens_works_without_streaming(claude: AnthropicDouble, repo: Path) -> None:
    # The SDK refuses long non-streaming calls unless the client has an explicit timeout.
    claude.script(SONNET, [text_turn("done")])
    result = _run(_tier(claude, max_tokens=64000), repo)
    assert result.outcome is GenerationOutcome.NO_CHANGE
    assert claude.bodies()[0]["max_tokens"] == 64000
