"""Logging and Sentry, set up by each process at start, never at import; reports are scrubbed."""

from __future__ import annotations

import logging
import re
import sys
import traceback
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
    r"(?<=://)[^/\s:@]*:[^@\s/]+(?=@)",  # user:password in any URL (Redis, a package index)
    r"\bsk-ant-[A-Za-z0-9_-]{10,}",  # Anthropic
    r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{16,}",  # OpenAI
    r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",  # JWTs (the App's own)
    r"(?i:bearer|basic|token)\s+[A-Za-z0-9_.~+/=-]{12,}",  # Authorization header values
]
# What each pattern above cannot match without, so a text with none of these is left as it
# is without the regex's scan (~18 us a log line, ~50 us with a PEM key's lines as literals).
_NEEDLES = (
    "-----BEGIN", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "sk-", "eyJ", "://",
)  # fmt: skip
# The case-insensitive ones, as they are in lower case: compared on ASCII text only (there,
# ignoring case is lower-casing; elsewhere the regex's own case folding decides).
_NEEDLES_ANY_CASE = ("x-access-token:", "bearer", "basic", "token")
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
        # The PEM pattern first: where a key's first line is also a known literal, the pattern
        # takes the whole rest, the fragment of a cut-short line included.
        pem, *shapes = _PATTERNS
        self._pattern = re.compile("|".join([pem, *alternatives, *shapes]), re.DOTALL)
        self._needles = (*_NEEDLES, *(s for s in known if len(s) >= 6))

    def text(self, value: str) -> str:
        if not self._may_match(value):
            return value
        return self._pattern.sub(REDACTED, value)

    def _may_match(self, value: str) -> bool:
        if any(needle in value for needle in self._needles) or not value.isascii():
            return True
        lowered = value.lower()
        return any(needle in lowered for needle in _NEEDLES_ANY_CASE)

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


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_TRACEBACK = "Traceback (most recent call last):"


class OneLineFormatter(logging.Formatter):
    """One line a record, scrubbed: an exception (ours, or a traceback RQ puts in its message)
    becomes its type, its message and where it was raised. Frames go to Sentry, never a log:
    a traceback's locals and paths are what a log reader must not get, and text from an issue
    could otherwise write a fake line of its own."""

    def __init__(self, scrubber: Scrubber) -> None:
        super().__init__(LOG_FORMAT)
        self.scrubber = scrubber

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        raised = _raised(record.exc_info) if record.exc_info else ""
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            text = super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved
        head, marker, _ = text.partition(_TRACEBACK)
        if marker:  # RQ formats the job's traceback into the message itself
            head = f"{head.rstrip()} [{_exception_lines(text.rpartition(_TRACEBACK)[2])}]"
        if raised:
            head = f"{head} [{raised}]"
        return self.scrubber.text(head).replace("\r", "\\r").replace("\n", "\\n")


def _exception_lines(frames: str) -> str:
    """The exception a formatted traceback ends with: the lines after its last frame."""
    lines = frames.splitlines()
    start = next((i for i, line in enumerate(lines) if line and not line[0].isspace()), len(lines))
    return " ".join(lines[start:])[:300]


def _raised(exc_info: Any) -> str:
    kind, error, tb = exc_info
    if kind is None:
        return ""
    where = traceback.extract_tb(tb)[-1:] if tb is not None else []
    at = f" at {'/'.join(where[0].filename.rsplit('/', 2)[-2:])}:{where[0].lineno}" if where else ""
    return f"{kind.__name__}: {str(error)[:300]}{at}"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is now: a CLI run in-process (tests) outlives its stream."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def setup_logging(level: int = logging.INFO, secrets: Iterable[str] = ()) -> None:
    """Every process's one handler (stderr), whose lines are scrubbed of secrets.

    Called again once the settings are loaded, with the secrets they hold.
    """
    handler = _StderrHandler()
    handler.setFormatter(OneLineFormatter(Scrubber(secrets)))
    logging.basicConfig(level=level, handlers=[handler], force=True)


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
