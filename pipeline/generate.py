"""The code-generation tool loop: the model edits the worktree through the text editor tool."""

from __future__ import annotations

from collections.abc import Callable

from pipeline.chat import open_chat
from pipeline.config import Price, TierConfig
from pipeline.cost import Meter
from pipeline.editor import EditorTool
from pipeline.endpoints import ModelEndpoints
from pipeline.models import GenerationOutcome, GenerationResult, Usage
from pipeline.providers import (
    Reply,
    ToolCall,
    ToolOutput,
    ToolSpec,
    chat_setup,
)

__all__ = ["EDIT_TOOL", "EDIT_TOOL_NAME", "generate"]

EDIT_TOOL_NAME = "str_replace_based_edit_tool"
ASK_PREFIX = "[ASK]:"

EDIT_TOOL = ToolSpec(
    name=EDIT_TOOL_NAME,
    description=(
        "View, create and edit files in the repository. Paths are relative to the repository "
        "root. `view` shows a file with line numbers (optionally `view_range` [start, end], "
        "end -1 for the end of the file) or lists a directory; `create` writes `file_text` to "
        "a new file; `str_replace` replaces `old_str`, which must occur exactly once, with "
        "`new_str`; `insert` adds `insert_text` after line `insert_line` (0 for the top)."
    ),
    parameters={
        "type": "object",
        "properties": {
            "command": {"type": "string", "enum": ["view", "create", "str_replace", "insert"]},
            "path": {"type": "string", "description": "relative to the repository root"},
            "file_text": {"type": "string", "description": "create: the whole file"},
            "old_str": {"type": "string", "description": "str_replace: the exact text to find"},
            "new_str": {"type": "string", "description": "str_replace: the replacement"},
            "insert_line": {"type": "integer", "description": "insert: after this line"},
            "insert_text": {"type": "string", "description": "insert: the lines to add"},
            "view_range": {
                "type": "array",
                "items": {"type": "integer"},
                "minItems": 2,
                "maxItems": 2,
                "description": "view: [start, end], 1-based; end -1 means the last line",
            },
        },
        "required": ["command", "path"],
    },
    # Anthropic models are trained on this built-in tool; its schema is implicit.
    anthropic_type="text_editor_20250728",
)


def generate(  # noqa: PLR0913 - keyword-only, each named at the call
    *,
    system: str,
    prompt: str,
    tier: TierConfig,
    editor: EditorTool,
    endpoints: ModelEndpoints,
    price_for: Callable[[str], Price | None],
    meter: Meter | None = None,
) -> GenerationResult:
    """Run the tool loop until the model stops calling tools or `tier.max_steps` calls.

    With a meter, each call is reserved against the budgets first: OverBudget or
    TaskCostCapped ends the loop at once, the calls before it paid and recorded in the meter.
    """
    setup = chat_setup(tier, system=system, prompt=prompt, tools=(EDIT_TOOL,), price_for=price_for)
    chat = open_chat(setup, endpoints)
    usage: list[Usage] = []
    reply: Reply | None = None
    for _ in range(tier.max_steps):
        reply = meter.send(chat) if meter is not None else chat.send()
        usage.append(reply.usage)
        if not reply.calls:
            return _finished(reply.text, editor, len(usage), usage)
        chat.add_tool_outputs([_execute(call, editor) for call in reply.calls])
    return GenerationResult(
        outcome=GenerationOutcome.STEP_CAP,
        final_text=reply.text if reply else "",
        files_changed=editor.files_changed,
        steps=len(usage),
        usage=tuple(usage),
    )


def _execute(call: ToolCall, editor: EditorTool) -> ToolOutput:
    if call.name != EDIT_TOOL_NAME:
        return ToolOutput(
            call.id, f"Error: there is no tool {call.name!r}; use {EDIT_TOOL_NAME}.", True
        )
    if call.input is None:
        return ToolOutput(call.id, f"Error: {call.problem}; nothing was done.", True)
    result = editor.run(call.input)
    return ToolOutput(call.id, result.text, result.is_error)


def _finished(text: str, editor: EditorTool, steps: int, usage: list[Usage]) -> GenerationResult:
    changed = editor.files_changed
    if changed:
        outcome = GenerationOutcome.EDITED
    elif text.strip().startswith(ASK_PREFIX):
        outcome = GenerationOutcome.ASKED
    else:
        outcome = GenerationOutcome.NO_CHANGE
    return GenerationResult(
        outcome=outcome,
        final_text=text.strip(),
        files_changed=changed,
        steps=steps,
        usage=tuple(usage),
    )
