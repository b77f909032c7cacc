"""Open the conversation a chat setup's provider speaks."""

from __future__ import annotations

from pipeline.chat_anthropic import AnthropicChat
from pipeline.chat_openai import OpenAIChat
from pipeline.endpoints import ModelEndpoints
from pipeline.models import Provider
from pipeline.providers import Chat, ChatSetup


def open_chat(setup: ChatSetup, endpoints: ModelEndpoints) -> Chat:
    if setup.provider == Provider.ANTHROPIC:
        return AnthropicChat(setup, endpoints)
    return OpenAIChat(setup, endpoints)
