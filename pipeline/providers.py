"""One tool-using conversation with either model API, and how its failures are classed."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import anthropic
import openai
from openai.types.chat import ChatCompletion, ChatCompletionMessageFunctionToolCall

from pipeline.config import Price
from pipeline.endpoints import ModelEndpoints
from pipeline.errors import FeatureCrewError, ModelError, PermanentError
from pipeline.models import Provider, Usage
from pipeline.pricing import price_usage

MAX_RETRIES = 2


@dataclass(frozen=True)
class ToolSpec:
    """A tool offered to the model; `anthropic_type` names a built-in Anthropic tool instead."""

    name: str
    description: str
    parameters: Mapping[str, object]
    anthropic_type: str | None = None


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    input: Mapping[str, object] | None  # None: the arguments were not a JSON object
    problem: str = ""


@dataclass(frozen=True)
class Reply:
    text: str
    calls: tuple[ToolCall, ...]
    usage: Usage


@dataclass(frozen=True)
class ToolOutput:
    call_id: str
    text: str
    is_error: bool = False


class Chat(Protocol):
    setup: ChatSetup

    def request_chars(self) -> int: ...
    def send(self) -> Reply: ...
    def add_tool_outputs(self, outputs: Sequence[ToolOutput]) -> None: ...
    def add_user_text(self, text: str) -> None: ...


@dataclass(frozen=True)
class ChatSetup:
    provider: Provider
    model: str
    base_url: str | None
    max_tokens: int
    timeout_s: float
    system: str
    prompt: str
    tools: tuple[ToolSpec, ...]
    price_for: Callable[[str], Price | None] = field(repr=False)


class ModelConfig(Protocol):
    """What a tier and the reviewer both configure about their model."""

    @property
    def provider(self) -> Provider: ...
    @property
    def model(self) -> str: ...
    @property
    def base_url(self) -> str | None: ...
    @property
    def max_tokens(self) -> int: ...
    @property
    def timeout_s(self) -> float: ...


def chat_setup(
    config: ModelConfig,
    *,
    system: str,
    prompt: str,
    tools: tuple[ToolSpec, ...],
    price_for: Callable[[str], Price | None],
) -> ChatSetup:
    return ChatSetup(
        provider=config.provider,
        model=config.model,
        base_url=config.base_url,
        max_tokens=config.max_tokens,
        timeout_s=config.timeout_s,
        system=system,
        prompt=prompt,
        tools=tools,
        price_for=price_for,
    )


def open_chat(setup: ChatSetup, endpoints: ModelEndpoints) -> Chat:
    if setup.provider == Provider.ANTHROPIC:
        return AnthropicChat(setup, endpoints)
    return OpenAIChat(setup, endpoints)


def _status_error(status: int, kind: str, detail: str, model: str) -> FeatureCrewError:
    internal = f"model API for {model} answered HTTP {status} {kind}".rstrip()
    if status == 401:
        return PermanentError(internal, public=f"the model API rejected the key for {model}")
    if status == 403:
        return PermanentError(internal, public=f"the model API refused access to {model}")
    if status == 404:
        return PermanentError(
            internal, public=f"the model API does not know {model} (check the model and base_url)"
        )
    if status in (408, 409, 429) or status >= 500:
        return ModelError(internal, public=f"the model API for {model} is unavailable ({status})")
    # The API's own explanation of a bad request ("prompt is too long") carries no secret.
    reason = f": {detail[:300]}" if detail else ""
    return PermanentError(
        f"{internal}{reason}", public=f"the model API rejected the request for {model}{reason}"
    )


@contextmanager
def model_errors(model: str) -> Iterator[None]:
    """Turn SDK exceptions (raised after the SDK's own retries) into our two families."""
    try:
        yield
    except (anthropic.APIStatusError, openai.APIStatusError) as err:
        kind = str(getattr(err, "type", "") or "")
        detail = "" if err.status_code in (401, 403) else _api_message(err.body)
        raise _status_error(err.status_code, kind, detail, model) from err
    except (anthropic.APIConnectionError, openai.APIConnectionError) as err:
        raise ModelError(
            f"cannot reach the model API for {model}: {type(err).__name__}",
            public=f"the model API for {model} could not be reached",
        ) from err
    except (anthropic.AnthropicError, openai.OpenAIError) as err:
        raise ModelError(
            f"model API for {model} failed: {type(err).__name__}",
            public=f"the model API for {model} gave an unusable answer",
        ) from err


def _api_message(body: object) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else ""


class AnthropicChat:
    """A Messages API conversation; tool results go back as `tool_result` blocks."""

    def __init__(self, setup: ChatSetup, endpoints: ModelEndpoints) -> None:
        self.setup = setup
        self.client = anthropic.Anthropic(
            base_url=setup.base_url or endpoints.anthropic_base_url or None,
            timeout=setup.timeout_s,
            max_retries=MAX_RETRIES,
        )
        client = self.client
        if client.api_key is None and client.auth_token is None and client.credentials is None:
            raise PermanentError(
                "ANTHROPIC_API_KEY is not set",
                public=f"no API key is configured for {setup.model} (ANTHROPIC_API_KEY)",
            )
        # The system prompt and the tools are the stable prefix every turn shares: cache it.
        self.system: list[Any] = [
            {"type": "text", "text": setup.system, "cache_control": {"type": "ephemeral"}}
        ]
        self.tools: list[Any] = [self._tool(spec) for spec in setup.tools]
        self.messages: list[Any] = [{"role": "user", "content": setup.prompt}]

    @staticmethod
    def _tool(spec: ToolSpec) -> dict[str, Any]:
        if spec.anthropic_type:
            return {"type": spec.anthropic_type, "name": spec.name}
        return {"name": spec.name, "description": spec.description, "input_schema": spec.parameters}

    def request_chars(self) -> int:
        """The size of the next request, for the budget's estimate before it is sent."""
        return len(json.dumps([self.system, self.tools, self.messages], default=str))

    def send(self) -> Reply:
        with model_errors(self.setup.model):
            message = self.client.messages.create(
                model=self.setup.model,
                max_tokens=self.setup.max_tokens,
                system=self.system,
                tools=self.tools,
                messages=self._with_moving_breakpoint(),
            )
        self.messages.append(message.to_param())
        texts = [b.text for b in message.content if b.type == "text"]
        calls = tuple(
            ToolCall(id=b.id, name=b.name, input=b.input)
            for b in message.content
            if b.type == "tool_use"
        )
        u = message.usage
        usage = price_usage(
            self.setup.model,
            input_tokens=u.input_tokens,
            output_tokens=u.output_tokens,
            cache_creation_input_tokens=u.cache_creation_input_tokens or 0,
            cache_read_input_tokens=u.cache_read_input_tokens or 0,
            price=self.setup.price_for(self.setup.model),
        )
        return Reply(text="\n".join(texts), calls=calls, usage=usage)

    def _with_moving_breakpoint(self) -> list[Any]:
        # A second breakpoint on the newest user turn lets each loop step read the previous
        # step's prefix from the cache instead of paying full input price again.
        messages = list(self.messages)
        last = messages[-1]
        content = last["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        marked = {**blocks[-1], "cache_control": {"type": "ephemeral"}}
        messages[-1] = {**last, "content": [*blocks[:-1], marked]}
        return messages

    def add_tool_outputs(self, outputs: Sequence[ToolOutput]) -> None:
        blocks = [
            {
                "type": "tool_result",
                "tool_use_id": o.call_id,
                "content": o.text,
                "is_error": o.is_error,
            }
            for o in outputs
        ]
        self.messages.append({"role": "user", "content": blocks})

    def add_user_text(self, text: str) -> None:
        self.messages.append({"role": "user", "content": text})


class OpenAIChat:
    """A chat-completions conversation with function tools (OpenAI, vLLM, Ollama, llama.cpp)."""

    def __init__(self, setup: ChatSetup, endpoints: ModelEndpoints) -> None:
        self.setup = setup
        key = endpoints.openai_api_key.get_secret_value() if endpoints.openai_api_key else None
        self.client = openai.OpenAI(
            base_url=setup.base_url or endpoints.openai_base_url,
            # Local servers need no key, but the SDK refuses to start without one.
            api_key=key or "not-needed",
            timeout=setup.timeout_s,
            max_retries=MAX_RETRIES,
        )
        self.tools: list[Any] = [
            {
                "type": "function",
                "function": {
                    "name": s.name,
                    "description": s.description,
                    "parameters": s.parameters,
                },
            }
            for s in setup.tools
        ]
        self.messages: list[Any] = [
            {"role": "system", "content": setup.system},
            {"role": "user", "content": setup.prompt},
        ]

    def request_chars(self) -> int:
        return len(json.dumps([self.tools, self.messages], default=str))

    def send(self) -> Reply:
        with model_errors(self.setup.model):
            completion = self.client.chat.completions.create(
                model=self.setup.model,
                max_tokens=self.setup.max_tokens,
                messages=self.messages,
                tools=self.tools,
            )
        if not completion.choices:
            raise ModelError(
                f"model API for {self.setup.model} answered without choices",
                public=f"the model API for {self.setup.model} gave an empty answer",
            )
        message = completion.choices[0].message
        raw_calls = [
            c
            for c in message.tool_calls or ()
            if isinstance(c, ChatCompletionMessageFunctionToolCall)
        ]
        self.messages.append(
            {
                "role": "assistant",
                "content": message.content,
                **(
                    {"tool_calls": [c.model_dump(mode="json") for c in raw_calls]}
                    if raw_calls
                    else {}
                ),
            }
        )
        calls = tuple(_parse_call(c.id, c.function.name, c.function.arguments) for c in raw_calls)
        return Reply(text=message.content or "", calls=calls, usage=self._usage(completion))

    def _usage(self, completion: ChatCompletion) -> Usage:
        u = completion.usage
        prompt = u.prompt_tokens if u else 0
        details = getattr(u, "prompt_tokens_details", None)
        cached = (getattr(details, "cached_tokens", 0) or 0) if details else 0
        return price_usage(
            self.setup.model,
            # OpenAI counts cached tokens inside prompt_tokens; price them at the read rate.
            input_tokens=prompt - cached,
            output_tokens=u.completion_tokens if u else 0,
            cache_read_input_tokens=cached,
            price=self.setup.price_for(self.setup.model),
        )

    def add_tool_outputs(self, outputs: Sequence[ToolOutput]) -> None:
        for o in outputs:
            text = f"Error: {o.text}" if o.is_error and not o.text.startswith("Error") else o.text
            self.messages.append({"role": "tool", "tool_call_id": o.call_id, "content": text})

    def add_user_text(self, text: str) -> None:
        self.messages.append({"role": "user", "content": text})


def _parse_call(call_id: str, name: str, arguments: str) -> ToolCall:
    try:
        parsed = json.loads(arguments or "{}")
    except json.JSONDecodeError as err:
        return ToolCall(call_id, name, None, f"the arguments are not valid JSON ({err.msg})")
    if not isinstance(parsed, dict):
        return ToolCall(call_id, name, None, "the arguments must be a JSON object")
    return ToolCall(call_id, name, parsed)
