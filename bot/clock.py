"""Clocks: the real one, and a fake one tests and the demo move by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that only moves when told to, so scenarios need no sleeps."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now

    def set(self, when: datetime) -> datetime:
        self._now = when.astimezone(UTC)
        return self._now


def parse_duration(text: str) -> timedelta:
    """Parse ``3d``, ``12h``, ``30m``, ``45s`` or combinations like ``1d6h``."""
    import re

    parts = re.findall(r"(\d+)\s*([dhmsw])", text.strip().lower())
    if not parts or "".join(n + u for n, u in parts) != re.sub(r"\s+", "", text.strip().lower()):
        raise ValueError(f"not a duration: {text!r} (use e.g. 3d, 12h, 30m)")
    units = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
    delta = timedelta()
    try:
        for number, unit in parts:
            delta += timedelta(**{units[unit]: int(number)})
    except OverflowError:
        raise ValueError(f"not a duration: {text!r} is too long") from None
    return delta
