"""Log lines that say which community and which event they are about, in text or JSON.

The engine binds the community id and the event id (platform delivery id, message id or job run)
to two context variables for the length of one dispatch (:func:`log_context`). A filter copies
them onto every record logged meanwhile, by any module, so a line deep in a cog still says which
event caused it; asyncio tasks copy the context, so concurrent events never mix their ids.

Two formats (``log_format`` in the config): ``text`` (one human line, the ids at its end) and
``json`` (one JSON object per line: ``time``, ``level``, ``logger``, ``message`` and, when
known, ``community``, ``event`` and ``exc``). Both pass every field through
:func:`bot.logsafe.redact_secrets`, after formatting, so a token in an exception text, a
non-string argument or a third-party library's message never reaches the output either.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import IO, Any

from bot.logsafe import RedactingFilter, redact_secrets

#: (community id, event id): one variable, so binding them costs one ``set`` per event.
_ids: ContextVar[tuple[str | None, str | None]] = ContextVar("hearth_log_ids", default=(None, None))

LOG_FORMATS = ("text", "json")


def bind(community: str | None, event: str | None) -> Token:
    """Set the ids for the current task; pass the result to :func:`unbind` when done."""
    return _ids.set((community, event))


def unbind(token: Token) -> None:
    _ids.reset(token)


@contextmanager
def log_context(community: str | None, event: str | None) -> Iterator[None]:
    """Every line logged inside the block carries these ids."""
    tokens = bind(community, event)
    try:
        yield
    finally:
        unbind(tokens)


def current() -> tuple[str | None, str | None]:
    """The (community, event) ids bound right now."""
    return _ids.get()


class ContextFilter(logging.Filter):
    """Copy the bound ids onto each record (``record.community``, ``record.event``).

    An explicit ``extra={"community": ...}`` on the call wins over the context.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        community, event = _ids.get()
        if getattr(record, "community", None) is None:
            record.community = community
        if getattr(record, "event", None) is None:
            record.event = event
        return True


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message [community=... event=...]``, redacted."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = [
            f"{key}={value}"
            for key in ("community", "event")
            if (value := getattr(record, key, None)) is not None
        ]
        if ids:
            # The ids go on the first line, so a traceback below still belongs to it.
            head, sep, tail = line.partition("\n")
            line = f"{head} [{' '.join(ids)}]{sep}{tail}"
        return redact_secrets(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; every string field redacted before it is serialised."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("community", "event"):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = str(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # Redact field by field: a secret containing a quote or backslash would be escaped
        # (and so missed) if only the serialised line were searched.
        safe = {k: redact_secrets(v) if isinstance(v, str) else v for k, v in entry.items()}
        return json.dumps(safe, ensure_ascii=False)


def make_handler(stream: IO[str], fmt: str = "text") -> logging.Handler:
    """A stream handler with the context filter, the redacting filter and the chosen format."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    return handler
