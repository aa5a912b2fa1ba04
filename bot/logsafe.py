"""Keep secrets out of logs.

Secrets are read from environment variables at start (and Slack workspace tokens from the
installation store) and registered here; :class:`RedactingFilter` and the formatters in
``bot.logformat`` replace them, and anything shaped like a Slack or Discord token or a Slack
webhook URL, before a line is written.
"""

from __future__ import annotations

import logging
import re

_PATTERNS = [
    # Slack bot/user/app-level/refresh tokens (xoxe.xoxb-... contains an xoxb- token too).
    re.compile(r"xox[abeposr]-[A-Za-z0-9-]{8,}"),
    re.compile(r"xapp-[A-Za-z0-9-]{8,}"),
    re.compile(r"[MNO][A-Za-z\d_-]{23,27}\.[A-Za-z\d_-]{6}\.[A-Za-z\d_-]{27,40}"),  # Discord
    # Slack incoming webhooks and response_url paths carry their own credentials.
    re.compile(r"(https://hooks\.slack\.com/)[A-Za-z0-9/_-]+"),
    re.compile(r"(?i)(authorization:\s*(bot|bearer|basic)\s+)\S+"),
    re.compile(
        r"(?i)((?:client_secret|signing_secret|bot_token|access_token)[\"']?\s*[=:]\s*[\"']?)[^\s\"',}&]+"
    ),
]
_known: set[str] = set()
REDACTED = "[redacted]"


def register_secret(value: str) -> None:
    """Redact ``value`` from every log line from now on (values under six characters are
    ignored: redacting them would mangle ordinary words)."""
    if value and len(value) >= 6:
        _known.add(value)


def redact_secrets(text: str) -> str:
    # Longest first, so a secret that contains another is replaced whole.
    for value in sorted(_known, key=len, reverse=True):
        if value in text:
            text = text.replace(value, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) + REDACTED) if m.re.groups else REDACTED, text)
    return text


class RedactingFilter(logging.Filter):
    """Last line of defence on a handler: the rendered message is redacted before formatting.

    The message is rendered with its arguments first, so a token inside a dict, an exception
    object or any other non-string argument is caught too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must not lose the line
            message = f"{record.msg!r} {record.args!r}"
        record.msg = redact_secrets(message)
        record.args = None
        if record.exc_text:
            record.exc_text = redact_secrets(record.exc_text)
        return True
