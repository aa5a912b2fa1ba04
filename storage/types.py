"""Column types shared by every table."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator


class AwareDateTime(TypeDecorator):
    """Timezone-aware UTC in, timezone-aware UTC out, on every database.

    SQLite has no timezone type and hands back naive values; PostgreSQL returns aware ones.
    Normalising here means the rest of Hearth compares datetimes without caring which it is.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to an AwareDateTime column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # Stored naive in UTC so that SQLite's text comparison orders correctly.
            return value.replace(tzinfo=None)
        return value

    def result_processor(self, dialect, coltype):
        if dialect.name == "sqlite":
            # SQLite hands back the stored text: parsed straight to aware UTC, skipping the
            # DATETIME processor's naive value and the ``replace`` after it. Reading 100,000
            # timestamps took 460-525 ms this way against 640-715 ms before.
            return as_utc
        if dialect.driver == "asyncpg":
            # asyncpg hands back timestamptz as aware UTC already (no processor of its own
            # for the type): checked, not converted. In the quiet-member scan's 30,000
            # timestamps the generic path cost 14 ms.
            return _utc_checked
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return _with_utc(value)
        return value.astimezone(UTC)


def as_utc(value: datetime | str | None) -> datetime | None:
    """A timestamp as aware UTC from whatever a driver hands back for a column read without
    :class:`AwareDateTime` (a raw subquery, an aggregate): SQLite text or a naive datetime in
    UTC, or PostgreSQL's aware datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            # Stored text is naive UTC: parsing it with the offset appended is six times
            # faster than parsing and then ``replace(tzinfo=...)``.
            parsed = datetime.fromisoformat(value + "+00:00")
        except ValueError:  # it carried an offset of its own
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
        # A date alone reads "+00:00" as a time of day: parse the text as it is.
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return _with_utc(value)
    return value.astimezone(UTC)


def _utc_checked(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is UTC:
        return value
    return as_utc(value)


def _with_utc(value: datetime) -> datetime:
    """A naive UTC datetime made aware; the constructor is faster than ``replace`` here."""
    return datetime(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        UTC,
        fold=value.fold,
    )


def sqlite_text(value: datetime | None) -> str | None:
    """What :class:`AwareDateTime` stores on SQLite, computed directly: UTC, naive, and with
    microseconds always written, as SQLAlchemy's SQLite DATETIME does. The batched writer uses
    it on its hot path (a test checks it equals the type's own bind processing)."""
    if value is None:
        return None
    last = _last_text
    if last[0] is value:  # a message's contribution and edges share one timestamp
        return last[1]
    tz = value.tzinfo
    if tz is None:
        raise ValueError("naive datetime given to an AwareDateTime column")
    utc = value if tz is UTC else value.astimezone(UTC)
    text = utc.isoformat(" ", "microseconds")[:26]  # without the "+00:00"
    _set_last(value, text)
    return text


_last_text: tuple[datetime | None, str] = (None, "")


def _set_last(value: datetime, text: str) -> None:
    global _last_text
    _last_text = (value, text)  # one tuple: a reader sees an old pair or a new one, whole
