"""Anthropic and OpenAI-compatible API doubles: real HTTP servers that replay scripted turns."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.doubles.server import ServerThread


@dataclass(frozen=True)
class ToolUse:
    name: str
    input: dict[str, Any] | str  # a str is sent verbatim as OpenAI `arguments` (bad JSON tests)
    id: str | None = None


@dataclass(frozen=True)
class Turn:
    """One scripted model reply."""

    text: str | None = None
    tool_uses: tuple[ToolUse, ...] = ()
    input_tokens: int = 100
    output_tokens: int = 20
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    stop_reason: str | None = None  # default: tool_use / end_turn (tool_calls / stop)
    delay_s: float = 0.0  # answer this late (a slow model; time to kill a worker mid-call)


class UsageNumbers(TypedDict, total=False):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    stop_reason: str
    delay_s: float


def text_turn(text: str, **usage: Unpack[UsageNumbers]) -> Turn:
    return Turn(text=text, **usage)


def tool_turn(
    name: str, input: dict[str, Any] | str, text: str | None = None, **usage: Unpack[UsageNumbers]
) -> Turn:
    return Turn(text=text, tool_uses=(ToolUse(name, input),), **usage)


def tools_turn(
    calls: list[tuple[str, dict[str, Any] | str]],
    text: str | None = None,
    **usage: Unpack[UsageNumbers],
) -> Turn:
    return Turn(text=text, tool_uses=tuple(ToolUse(n, i) for n, i in calls), **usage)


@dataclass(frozen=True)
class Recorded:
    """One request as the double received it, and the status it answered."""

    headers: dict[str, str]
    body: dict[str, Any]
    status: int


@dataclass
class _Fault:
    status: int
    message: str
    retry_after_s: float | None


class _ModelDouble:
    def __init__(self, api_key: str | None, path: str) -> None:
        self.api_key = api_key
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._turns: dict[str, deque[Turn]] = defaultdict(deque)
        self._faults: deque[_Fault] = deque()
        self._ids = itertools.count(1)
        self._server: ServerThread | None = None
        self.app = Starlette(routes=[Route(path, self._handle, methods=["POST"])])

    # -- scripting ---------------------------------------------------------------------------
    def script(self, model: str, turns: list[Turn], when: str | None = None) -> None:
        """Queue replies for `model`; with `when`, only for requests whose text contains it.

        Keyed scripts let concurrent conversations (several workers) each get their own turns.
        """
        with self._lock:
            self._turns[model if when is None else f"{model}\0{when}"].extend(turns)

    def fail_next(
        self,
        count: int = 1,
        status: int = 529,
        *,
        message: str = "",
        retry_after_s: float | None = 0.001,
    ) -> None:
        """The next `count` requests fail; retry_after_s keeps the SDK's backoff short."""
        with self._lock:
            self._faults.extend(_Fault(status, message, retry_after_s) for _ in range(count))

    def remaining(self, model: str) -> int:
        with self._lock:
            return sum(len(q) for k, q in self._turns.items() if k.split("\0")[0] == model)

    def bodies(self, model: str | None = None) -> list[dict[str, Any]]:
        """Bodies of the requests that were answered 200, optionally for one model."""
        return [
            r.body
            for r in self.requests
            if r.status == 200 and (model is None or r.body.get("model") == model)
        ]

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> _ModelDouble:
        self._server = ServerThread(self.app).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> _ModelDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the double first"
        return self._server.url

    # -- the HTTP side -----------------------------------------------------------------------
    async def _handle(self, request: Request) -> JSONResponse:
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            body = json.loads(await request.body())
        except json.JSONDecodeError:
            body = {}
        response = self._answer(headers, body)
        await asyncio.sleep(getattr(response, "delay_s", 0.0))
        with self._lock:
            self.requests.append(Recorded(headers, body, response.status_code))
        return response

    def _answer(self, headers: dict[str, str], body: dict[str, Any]) -> JSONResponse:
        if self.api_key is not None and self._presented_key(headers) != self.api_key:
            return self._error(401, "invalid x-api-key")
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        if fault is not None:
            extra = {}
            if fault.retry_after_s is not None:
                extra["retry-after-ms"] = str(int(fault.retry_after_s * 1000) or 1)
                extra["retry-after"] = str(int(fault.retry_after_s))
            return self._error(fault.status, fault.message or "injected fault", extra)
        problem = self._invalid(headers, body)
        if problem:
            return self._error(400, problem)
        model = str(body.get("model", ""))
        with self._lock:
            turns = self._turns_for(model, body)
            turn = turns.popleft() if turns else None
        if turn is None:
            return self._error(400, f"script exhausted for model {model!r}")
        response = JSONResponse(self._render(model, turn))
        response.delay_s = turn.delay_s  # type: ignore[attr-defined]
        return response

    def _turns_for(self, model: str, body: dict[str, Any]) -> deque[Turn]:
        keyed = [k for k, q in self._turns.items() if q and k.startswith(f"{model}\0")]
        if keyed:
            text = json.dumps(body.get("messages", []))
            for key in keyed:
                if key.split("\0", 1)[1] in text:
                    return self._turns[key]
        return self._turns[model]

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):04d}"

    def _presented_key(self, headers: dict[str, str]) -> str | None:
        auth = headers.get("authorization", "")
        return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None

    def _error(
        self, status: int, message: str, extra: dict[str, str] | None = None
    ) -> JSONResponse:
        raise NotImplementedError

    def _invalid(self, headers: dict[str, str], body: dict[str, Any]) -> str:
        raise NotImplementedError

    def _render(self, model: str, turn: Turn) -> dict[str, Any]:
        raise NotImplementedError


_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


class AnthropicDouble(_ModelDouble):
    """`POST /v1/messages`, in the Messages API's shapes; base_url is `double.url`."""

    def __init__(self, api_key: str | None = "test-anthropic-key") -> None:
        super().__init__(api_key=api_key, path="/v1/messages")

    @property
    def base_url(self) -> str:
        return self.url

    def _presented_key(self, headers: dict[str, str]) -> str | None:
        return headers.get("x-api-key") or super()._presented_key(headers)

    def _error(
        self, status: int, message: str, extra: dict[str, str] | None = None
    ) -> JSONResponse:
        kind = _ANTHROPIC_ERROR_TYPES.get(status, "api_error")
        body = {"type": "error", "error": {"type": kind, "message": message}}
        return JSONResponse(
            body, status_code=status, headers={"request-id": self._next_id("req_"), **(extra or {})}
        )

    def _invalid(self, headers: dict[str, str], body: dict[str, Any]) -> str:
        if "anthropic-version" not in headers:
            return "anthropic-version: header is required"
        for key in ("model", "max_tokens", "messages"):
            if key not in body:
                return f"{key}: Field required"
        if "temperature" in body or "top_p" in body:
            return "temperature and top_p are not supported by this model"
        return _unanswered_tool_use(body["messages"])

    def _render(self, model: str, turn: Turn) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if turn.text is not None:
            content.append({"type": "text", "text": turn.text})
        for use in turn.tool_uses:
            content.append(
                {
                    "type": "tool_use",
                    "id": use.id or self._next_id("toolu_"),
                    "name": use.name,
                    "input": use.input,
                }
            )
        return {
            "id": self._next_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": turn.stop_reason or ("tool_use" if turn.tool_uses else "end_turn"),
            "stop_sequence": None,
            "usage": {
                "input_tokens": turn.input_tokens,
                "output_tokens": turn.output_tokens,
                "cache_creation_input_tokens": turn.cache_creation_input_tokens,
                "cache_read_input_tokens": turn.cache_read_input_tokens,
            },
        }


def _unanswered_tool_use(messages: list[dict[str, Any]]) -> str:
    """The real API refuses a tool_use that the next user turn does not answer."""
    for i, message in enumerate(messages):
        content = message.get("content")
        if message.get("role") != "assistant" or not isinstance(content, list):
            continue
        wanted = {b["id"] for b in content if b.get("type") == "tool_use"}
        if not wanted:
            continue
        after = messages[i + 1]["content"] if i + 1 < len(messages) else []
        answered = {
            b.get("tool_use_id")
            for b in after
            if isinstance(b, dict) and b.get("type") == "tool_result"
        }
        if wanted - answered:
            missing = sorted(wanted - answered)
            return f"messages.{i + 1}: tool_use ids without tool_result blocks: {missing}"
    return ""


_OPENAI_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}


class OpenAIDouble(_ModelDouble):
    """`POST /v1/chat/completions`; base_url is `double.base_url` (with /v1). No key: no auth."""

    def __init__(self, api_key: str | None = "test-openai-key") -> None:
        super().__init__(api_key=api_key, path="/v1/chat/completions")
        self.served_models: list[str] = []  # what GET /v1/models lists, as vLLM/Ollama do
        self.app.router.routes.append(Route("/v1/models", self._list_models, methods=["GET"]))

    async def _list_models(self, request: Request) -> JSONResponse:
        headers = {k.lower(): v for k, v in request.headers.items()}
        if self.api_key is not None and self._presented_key(headers) != self.api_key:
            return self._error(401, "Incorrect API key provided")
        data = [
            {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "double"}
            for name in self.served_models
        ]
        return JSONResponse({"object": "list", "data": data})

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def _error(
        self, status: int, message: str, extra: dict[str, str] | None = None
    ) -> JSONResponse:
        kind, code = _OPENAI_ERROR_TYPES.get(status, ("server_error", None))
        body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
        return JSONResponse(body, status_code=status, headers=extra or {})

    def _invalid(self, headers: dict[str, str], body: dict[str, Any]) -> str:
        for key in ("model", "messages"):
            if key not in body:
                return f"Missing required parameter: '{key}'."
        messages = body["messages"]
        for i, message in enumerate(messages):
            wanted = {c["id"] for c in message.get("tool_calls") or ()}
            answered = {
                m.get("tool_call_id")
                for m in messages[i + 1 : i + 1 + len(wanted)]
                if m.get("role") == "tool"
            }
            if wanted - answered:
                return (
                    "An assistant message with 'tool_calls' must be followed by tool messages "
                    f"responding to each 'tool_call_id'. Missing: {sorted(wanted - answered)}"
                )
        return ""

    def _render(self, model: str, turn: Turn) -> dict[str, Any]:
        calls = [
            {
                "id": use.id or self._next_id("call_"),
                "type": "function",
                "function": {
                    "name": use.name,
                    "arguments": use.input if isinstance(use.input, str) else json.dumps(use.input),
                },
            }
            for use in turn.tool_uses
        ]
        message: dict[str, Any] = {"role": "assistant", "content": turn.text}
        if calls:
            message["tool_calls"] = calls
        finish = turn.stop_reason or ("tool_calls" if calls else "stop")
        return {
            "id": self._next_id("chatcmpl-"),
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": model,
            "choices": [
                {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
            ],
            "usage": {
                "prompt_tokens": turn.input_tokens,
                "completion_tokens": turn.output_tokens,
                "total_tokens": turn.input_tokens + turn.output_tokens,
            },
        }
