"""The calendar dates Hearth accepts from people: course dates, holidays, report windows.

A date like 0001-01-01 or 9999-12-31 is a typo, not a course, and the arithmetic on it (local
midnight in a timezone east of UTC, the course length added to a new cohort's start) runs off
the end of Python's calendar. Every date option, config date and CLI date is checked here, so
the answer is a usage line naming the range instead of an OverflowError deep in a job.
"""

from __future__ import annotations

from datetime import date

EARLIEST = date(1970, 1, 1)
LATEST = date(2999, 12, 31)


def check_date(value: date) -> date:
    """``value`` if it lies in [EARLIEST, LATEST]; otherwise ValueError saying so."""
    if not EARLIEST <= value <= LATEST:
        raise ValueError(
            f"expected a date between {EARLIEST.isoformat()} and {LATEST.isoformat()}, "
            f"got {value.isoformat()}"
        )
    return value


def parse_date(text: str) -> date:
    """A YYYY-MM-DD date in the accepted range; ValueError with a message a person can act on."""
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"expected a date like 2027-01-10, got {text[:40]!r}") from None
    return check_date(value)
