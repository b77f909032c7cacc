"""One tool-using conversation with either model API, and how its failures are classed.

The conversations themselves: pipeline/chat_anthropic.py (Messages API) and
pipeline/chat_openai.py (chat completions); pipeline/chat.py opens the one a setup names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

import anthropic
import openai

from pipeline.config import Price
from pipeline.errors import FeatureCrewError, ModelError, PermanentError
from pipeline.models import Provider, Usage

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
