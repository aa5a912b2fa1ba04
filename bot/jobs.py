"""Scheduled jobs declared by cogs, as data.

A cog says *what* runs and *when* (a crontab in the community's local time); the scheduler
service (``bot/scheduler.py``) builds the real triggers at start, claims each run in the
database and turns it into a :class:`~bot.events.ScheduledTick` for the cog's handler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.events import ScheduledTick

TickHandler = Callable[[ScheduledTick], Awaitable[Sequence[Any]]]


@dataclass(frozen=True, slots=True)
class JobSpec:
    #: Unique job name, e.g. ``"summaries.weekly"``; ``:tick NAME`` fires it by hand.
    name: str
    #: Five-field crontab in the community's timezone, e.g. ``"0 9 * * mon"``.
    cron: str
    handler: TickHandler
    description: str = ""
    enabled: bool = True
