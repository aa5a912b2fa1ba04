"""A job's cron schedule in words, for the messages people read.

Learners and facilitators read "every Friday at 18:00", not ``0 18 * * fri``. The days and the
time are read off the trigger's own fire times over the next two weeks, in the community's
zone, not parsed from the fields again: the words then say what the scheduler will do, numbered
weekdays and clock changes included (APScheduler counts weekdays from Monday = 0, classic cron
from Sunday). A schedule that is not "one time of day on fixed weekdays" (every 15 minutes, the
first of the month) is given as its expression and its next time.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from bot.cohort import local_when
from bot.scheduler import fire_times

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

#: Two weeks: every weekday of a weekly schedule fires exactly twice in it.
_WINDOW = timedelta(days=14)


def schedule_words(cron: str, timezone: str, now: datetime) -> str:
    """``cron`` as a person reads it in ``timezone``: "every day at 10:00", "every Friday at
    18:00", "every weekday at 09:00", "every Monday and Thursday at 08:30", "every 15
    minutes", "every hour at :20"; otherwise "on the schedule `0 9 1 * *` (next: Tue 1 Dec,
    09:00)". The caller names the zone."""
    zone = ZoneInfo(timezone)
    # Read as bot.scheduler.trigger_for builds the live trigger.
    trigger = CronTrigger.from_crontab(cron, timezone=zone)
    # One more than a weekly schedule can have in the window is enough to tell it is not
    # one: a minutely job's 20,000 fire times took 0.3 s of the event loop to walk.
    times = [t.astimezone(zone) for t in fire_times(trigger, now, now + _WINDOW, limit=15)]
    clock = {(t.hour, t.minute) for t in times}
    per_day = Counter(t.weekday() for t in times)
    weekly = (
        len(clock) == 1
        and len({t.date() for t in times}) == len(times)  # once a day at most
        and all(n == 2 for n in per_day.values())  # the same days in both weeks
    )
    if not weekly:
        steady = _steady(times, timezone)
        if steady:
            return steady
        nxt = f" (next: {local_when(times[0], timezone)})" if times else ""
        return f"on the schedule `{cron}`{nxt}"
    ((hour, minute),) = clock
    at = f"at {hour:02d}:{minute:02d}"
    days = sorted(per_day)
    if len(days) == 7:
        return f"every day {at}"
    if days == [0, 1, 2, 3, 4]:
        return f"every weekday {at}"
    names = [DAY_NAMES[d] for d in days]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"every {listed} {at}"


def _steady(times: list[datetime], timezone: str) -> str | None:
    """ "every 15 minutes", "every hour at :20", "every 6 hours (next: ...)" for a schedule
    that fires at one fixed step shorter than a day; None for any other."""
    steps = {later - earlier for earlier, later in zip(times, times[1:], strict=False)}
    if len(times) < 3 or len(steps) != 1:
        return None
    (step,) = steps
    minutes, rest = divmod(int(step.total_seconds()), 60)
    if rest or not 0 < minutes < 24 * 60:
        return None
    if minutes == 1:
        return "every minute"
    if minutes < 60 and 60 % minutes == 0:
        return f"every {minutes} minutes"
    if minutes == 60:
        return f"every hour at :{times[0].minute:02d}"
    if minutes % 60 == 0 and (24 * 60) % minutes == 0:
        return f"every {minutes // 60} hours (next: {local_when(times[0], timezone)})"
    return None
