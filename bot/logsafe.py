"""Keep secrets out of logs.

Secrets are read from environment variables at start and registered here; the log filter in
``bot.cli`` replaces them, and anything shaped like a Slack or Discord token, before a line is
written.
"""

from __future__ import annotations

import re

_PATTERNS = [
    re.compile(r"xox[abposr]-[A-Za-z0-9-]{8,}"),  # Slack bot/user/app-level tokens
    re.compile(r"xapp-[A-Za-z0-9-]{8,}"),
    re.compile(r"[MNO][A-Za-z\d_-]{23,27}\.[A-Za-z\d_-]{6}\.[A-Za-z\d_-]{27,40}"),  # Discord
    re.compile(r"(?i)(authorization:\s*(bot|bearer)\s+)\S+"),
]
_known: set[str] = set()


def register_secret(value: str) -> None:
    if value and len(value) >= 6:
        _known.add(value)


def redact_secrets(text: str) -> str:
    for value in _known:
        if value in text:
            text = text.replace(value, "[redacted]")
    for pattern in _PATTERNS:
        text = pattern.sub(
            lambda m: (m.group(1) + "[redacted]") if m.re.groups else "[redacted]", text
        )
    return text
