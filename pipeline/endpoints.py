"""Where the model APIs are and the key the OpenAI client needs: a value, without the SDKs.

Kept apart from pipeline/providers.py so that the settings, and with them the web process and
the CLI, do not import the anthropic and openai packages (seconds of CPU per process start).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr


@dataclass(frozen=True)
class ModelEndpoints:
    """What a chat needs of the environment: the providers' default URLs and the OpenAI key.

    The anthropic SDK reads ANTHROPIC_API_KEY itself, so that key is not carried here.
    """

    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    anthropic_base_url: str | None = None
