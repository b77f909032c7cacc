"""The regex tables the reviewer and the router read: secrets, risky code, names in a spec."""

from __future__ import annotations

import re

# Each secret pattern names the kind of credential; the reviewer reports the kind, never the text.
SECRET_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("GitHub token", re.compile(r"\b(?:ghp|gho|ghs|ghu|ghr)_[A-Za-z0-9]{36,}\b")),
    ("GitHub fine-grained token", re.compile(r"\bgithub_pat_[A-Za-z0-9_]{22,}")),
    ("Anthropic API key", re.compile(r"\bsk-ant-[A-Za-z0-9_-]{20,}")),
    ("OpenAI API key", re.compile(r"\bsk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}")),
    ("Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("private key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")),
)

# `password = "..."`, `api_key: str = '...'`, `"client_secret": "..."`; group 1 is the value.
SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b[\w-]*(?:password|passwd|passphrase|secret|api[_-]?key|access[_-]?key"
    r"|private[_-]?key|(?:auth|access|api|bearer|secret)[_-]?token)[\w-]*[\"']?"
    r"\s*(?::\s*[A-Za-z_][\w\[\]., |]*)?\s*[:=]\s*[rbu]?[\"']([^\"'\s]{8,})[\"']"
)

# Values that are obviously not real credentials: placeholders, templates, test fixtures.
PLACEHOLDER_VALUE = re.compile(
    r"(?i)^(?:(.)\1*|<.*>|\$\{.*\}|\{\{.*\}\}|%\(.*\)s"
    r"|.*(?:example|changeme|change-me|placeholder|dummy|your[_-]|redacted|fake|sample|test|xxxx).*)$"
)

SUSPICIOUS_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "base64-decoded code execution",
        re.compile(r"(?:exec|eval|compile)\s*\(.*(?:b64decode|b32decode|a85decode|decodebytes)"),
    ),
    ("eval()", re.compile(r"(?<![\w.])eval\s*\(")),
    ("exec()", re.compile(r"(?<![\w.])exec\s*\(")),
    ("os.system / os.popen", re.compile(r"\bos\.(?:system|popen)\s*\(")),
    ("shell=True", re.compile(r"\bshell\s*=\s*True\b")),
    ("unpickling", re.compile(r"\b(?:c?pickle|dill|marshal)\.loads?\s*\(")),
    (
        "yaml.load without SafeLoader",
        re.compile(r"\byaml\.(?:unsafe_load(?:_all)?\s*\(|load(?:_all)?\s*\((?![^)]*SafeLoader))"),
    ),
    ("__import__()", re.compile(r"\b__import__\s*\(")),
    ("chmod 777", re.compile(r"\bchmod\b.*?(?<![\w])(?:0o)?777\b")),
    ("curl | sh", re.compile(r"\b(?:curl|wget)\b[^|\n]*\|\s*(?:sudo\s+)?(?:ba|z|da)?sh\b")),
    (
        "TLS verification disabled",
        re.compile(
            r"\bverify\s*=\s*False\b|_create_unverified_context|\bCERT_NONE\b"
            r"|\bcheck_hostname\s*=\s*False\b|NODE_TLS_REJECT_UNAUTHORIZED|--insecure\b"
        ),
    ),
)

# Prose files mention `eval(` and `curl | sh` to warn about them; scanning them is noise.
PROSE_SUFFIXES = (".md", ".rst", ".txt", ".adoc")

_BACKTICK = re.compile(r"`([^`\n]+)`")
_IDENTIFIER = re.compile(r"^[A-Za-z_][\w.]*(?:\(.*\))?$")
_FILE_SUFFIX = re.compile(
    r"\.(?:py|pyi|js|jsx|ts|tsx|go|rs|rb|java|toml|ya?ml|json|md|rst|cfg|ini|txt|sql|html"
    r"|css|sh)$"
)
FILE_MENTION = re.compile(
    r"(?<![\w/.-])(?:[\w.-]+/)*[\w-]+\.(?:py|pyi|js|jsx|ts|tsx|go|rs|rb|java|toml|ya?ml|json"
    r"|md|rst|cfg|ini|txt|sql|html|css|sh)\b"
)


def backtick_names(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The identifiers and the file paths a spec names in backticks, each in first-seen order.

    `greet()` and `utils.greet` name the identifier `greet`; `src/app.py` names a file;
    anything else in backticks (a shell command, a value) names neither.
    """
    names: dict[str, None] = {}
    files: dict[str, None] = {}
    for span in (m.group(1).strip() for m in _BACKTICK.finditer(text)):
        if "/" in span or _FILE_SUFFIX.search(span):
            if " " not in span:
                files[span.lstrip("./")] = None
        elif _IDENTIFIER.match(span):
            names[span.split("(", 1)[0].rsplit(".", 1)[-1]] = None
    return tuple(n for n in names if n), tuple(f for f in files if f)


def keyword_pattern(keyword: str) -> re.Pattern[str]:
    """Whole word, case-insensitive, with a plain plural: "secret" matches "Secrets"."""
    return re.compile(rf"(?<!\w){re.escape(keyword)}(?:s|es)?(?!\w)", re.IGNORECASE)
