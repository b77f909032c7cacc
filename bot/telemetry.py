"""Logging and Sentry, set up by each process at start, never at import; reports are scrubbed."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from bot.settings import Settings

REDACTED = "[redacted]"
_PATTERNS = [
    # A PEM block, or what is left of one when a report cut it short.
    r"-----BEGIN[A-Z0-9 ]*-----(?:.*?-----END[A-Z0-9 ]*-----|.*)",
    r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}",  # GitHub tokens
    r"\bgithub_pat_[A-Za-z0-9_]{20,}",
    r"(?i:x-access-token):[^@\s\"'/]+",  # credentials in a git URL
    r"\bsk-ant-[A-Za-z0-9_-]{10,}",  # Anthropic
    r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{16,}",  # OpenAI
    r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",  # JWTs (the App's own)
    r"(?i:bearer|basic|token)\s+[A-Za-z0-9_.~+/=-]{12,}",  # Authorization header values
]
_SCRUB_KEYS = re.compile(r"(?i)authorization|cookie|secret|password|private_key|api_key|token")


class Scrubber:
    """Removes anything that looks like a key or token, and every secret this process holds."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        known = set()
        for secret in secrets:
            known.add(secret)
            # A report may carry a fragment: a line of the PEM, a truncated repr.
            known.update(line.strip() for line in secret.splitlines() if len(line.strip()) >= 16)
        alternatives = [re.escape(s) for s in sorted(known, key=len, reverse=True) if len(s) >= 6]
        self._pattern = re.compile("|".join([*alternatives, *_PATTERNS]), re.DOTALL)

    def text(self, value: str) -> str:
        return self._pattern.sub(REDACTED, value)

    def walk(self, value: Any, key: str = "") -> Any:
        if isinstance(value, str):
            return REDACTED if key and _SCRUB_KEYS.search(key) and value else self.text(value)
        if isinstance(value, dict):
            return {k: self.walk(v, str(k)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.walk(v, key) for v in value]
        return value

    def event(self, event: Any, hint: Any = None) -> Any:
        """Sentry's before_send / before_send_transaction / before_breadcrumb."""
        return self.walk(event)


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )


def init_sentry(settings: Settings, *, process: str) -> None:
    if settings.env.sentry_dsn is None:
        return
    import sentry_sdk
    from sentry_sdk.integrations.rq import RqIntegration
    from sentry_sdk.integrations.starlette import StarletteIntegration

    integrations = [StarletteIntegration()] if process == "web" else [RqIntegration()]
    scrub = Scrubber(settings.secrets).event
    sentry_sdk.init(
        dsn=settings.env.sentry_dsn.get_secret_value(),
        integrations=integrations,
        send_default_pii=False,
        server_name=f"feature-crew-{process}",
        # Frames hold the settings, clients and tokens: never send their variables.
        include_local_variables=False,
        max_request_body_size="never",  # webhook bodies carry private repositories' text
        before_send=scrub,
        before_send_transaction=scrub,
        before_breadcrumb=scrub,
    )
