"""How numbers read in the messages Hearth writes: shared by every cog and report."""

from __future__ import annotations


def counted(n: int, singular: str, plural: str | None = None, *, thousands: bool = False) -> str:
    """``1 question``, ``3 questions`` (``12,400 messages`` with ``thousands``): counts that
    messages and templates use as phrases."""
    number = f"{n:,}" if thousands else str(n)
    return f"{number} {singular if n == 1 else (plural or singular + 's')}"
