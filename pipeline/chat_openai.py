"""A chat-completions conversation (OpenAI, vLLM, Ollama, llama.cpp) with function tools."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import openai
from openai.types.chat import ChatCompletion, ChatCompletionMessageFunctionToolCall

from pipeline.endpoints import ModelEndpoints
from pipeline.errors import ModelError
from pipeline.models import Usage
from pipeline.pricing import price_usage
from pipeline.providers import MAX_RETRIES, ChatSetup, Reply, ToolCall, ToolOutput, model_errors


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
