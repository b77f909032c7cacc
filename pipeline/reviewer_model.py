"""The fresh-context reviewer model: one question, answered through the submit_verdict tool."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError

from pipeline.chat import open_chat
from pipeline.config import Price, ReviewConfig
from pipeline.cost import Meter
from pipeline.endpoints import ModelEndpoints
from pipeline.invalid import describe_invalid
from pipeline.models import ModelVerdict, Usage
from pipeline.providers import Reply, ToolOutput, ToolSpec, chat_setup

SUBMIT_VERDICT_TOOL = "submit_verdict"

VERDICT_TOOL = ToolSpec(
    name=SUBMIT_VERDICT_TOOL,
    description=(
        "Submit your verdict on the pull request. Call it exactly once: `action` approve or "
        "reject, `reason` in one or two sentences, `feedback` with concrete changes to make."
    ),
    parameters={
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": ["approve", "reject"]},
            "reason": {"type": "string", "description": "why, in one or two sentences"},
            "feedback": {"type": "string", "description": "what to change, if anything"},
        },
        "required": ["action", "reason"],
        "additionalProperties": False,
    },
)

NUDGE = (
    f"Reply by calling the `{SUBMIT_VERDICT_TOOL}` tool with `action` (approve or reject), "
    "`reason` and `feedback`. Do not answer in plain text."
)


def ask_reviewer(  # noqa: PLR0913 - keyword-only, each named at the call
    *,
    system: str,
    prompt: str,
    review: ReviewConfig,
    endpoints: ModelEndpoints,
    price_for: Callable[[str], Price | None],
    meter: Meter | None = None,
) -> tuple[ModelVerdict | None, tuple[Usage, ...]]:
    """The reviewer's verdict, or None when it would not give a valid one after one nudge.

    With a meter, each call is reserved against the budgets first (see pipeline.cost).
    """
    setup = chat_setup(
        review, system=system, prompt=prompt, tools=(VERDICT_TOOL,), price_for=price_for
    )
    chat = open_chat(setup, endpoints)
    usage: list[Usage] = []
    # Forced tool use is refused by current models, so a plain-text reply gets one nudge.
    for attempt in range(2):
        reply = meter.send(chat) if meter is not None else chat.send()
        usage.append(reply.usage)
        verdict, problems = _verdict_from(reply)
        if verdict is not None or attempt == 1:
            return verdict, tuple(usage)
        if reply.calls:
            chat.add_tool_outputs(problems)
        else:
            chat.add_user_text(NUDGE)
    return None, tuple(usage)


def _verdict_from(reply: Reply) -> tuple[ModelVerdict | None, list[ToolOutput]]:
    """The first valid verdict in the reply, else one error output per call to send back."""
    problems: list[ToolOutput] = []
    for call in reply.calls:
        if call.name != SUBMIT_VERDICT_TOOL:
            problem = f"there is no tool {call.name!r}; {NUDGE}"
        elif call.input is None:
            problem = f"{call.problem}; {NUDGE}"
        else:
            try:
                return ModelVerdict.model_validate(dict(call.input)), []
            except ValidationError as err:
                fields = describe_invalid(err, show_input=False)
                problem = f"the verdict is invalid ({fields}). Call {SUBMIT_VERDICT_TOOL} again."
        problems.append(ToolOutput(call.id, f"Error: {problem}", is_error=True))
    return None, problems
