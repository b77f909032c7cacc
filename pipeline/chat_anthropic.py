"""A conversation with Anthropic's Messages API: cached prefix, tool results as blocks."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import anthropic

from pipeline.endpoints import ModelEndpoints
from pipeline.errors import PermanentError
from pipeline.pricing import price_usage
from pipeline.providers import (
    MAX_RETRIES,
    ChatSetup,
    Reply,
    ToolCall,
    ToolOutput,
    ToolSpec,
    model_errors,
)


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
