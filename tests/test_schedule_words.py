"""Cron schedules in words (bot.schedule_words), as learners and facilitators read them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger

from bot.schedule_words import schedule_words
from bot.scheduler import fire_times

NOW = datetime(2026, 11, 29, 19, 53, tzinfo=UTC)  # a Sunday evening


@pytest.mark.parametrize(
    ("cron", "words"),
    [
        ("0 18 * * fri", "every Friday at 18:00"),
        ("0 10 * * *", "every day at 10:00"),
        ("0 9 * * mon-fri", "every weekday at 09:00"),
        ("30 8 * * mon,thu", "every Monday and Thursday at 08:30"),
        ("5 7 * * mon,wed,fri", "every Monday, Wednesday and Friday at 07:05"),
        ("0 12 * * sat,sun", "every Saturday and Sunday at 12:00"),
        # One fixed step shorter than a day.
        ("*/15 * * * *", "every 15 minutes"),
        ("20 * * * *", "every hour at :20"),
        ("* * * * *", "every minute"),
        ("0 */6 * * *", "every 6 hours (next: Mon 30 Nov, 00:00)"),
        # Neither: the expression and when it next runs.
        ("0 9 1 * *", "on the schedule `0 9 1 * *` (next: Tue 1 Dec, 09:00)"),
        ("*/7 * * * *", "on the schedule `*/7 * * * *` (next: Sun 29 Nov, 19:56)"),
        ("0 9,17 * * mon", "on the schedule `0 9,17 * * mon` (next: Mon 30 Nov, 09:00)"),
    ],
)
def test_schedules_read_as_words(cron, words):
    assert schedule_words(cron, "UTC", NOW) == words


def test_the_days_are_the_days_the_scheduler_runs_it():
    # APScheduler 3.x reads a numbered weekday from Monday = 0 (classic cron: Sunday). The
    # config refuses numbers for that reason; the words say what would happen regardless.
    assert schedule_words("0 9 * * 0", "UTC", NOW) == "every Monday at 09:00"


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 3, 20, tzinfo=UTC),  # London springs forward on 29 March
        datetime(2026, 10, 20, tzinfo=UTC),  # and falls back on 25 October
    ],
)
def test_local_time_holds_across_a_clock_change(now):
    assert schedule_words("0 9 * * mon", "Europe/London", now) == "every Monday at 09:00"
    # 01:30 happens twice on the night the clocks go back: still one run that day.
    assert schedule_words("30 1 * * *", "Europe/London", now) == "every day at 01:30"


def test_in_the_communitys_own_zone():
    # 18:00 in Kolkata is 12:30 UTC: the words keep the zone the job is planned in.
    assert schedule_words("0 18 * * fri", "Asia/Kolkata", NOW) == "every Friday at 18:00"
    # Kolkata is 5 h 30 ahead of UTC: its :30 is UTC's :00, and its 06:00 is 00:30 UTC.
    assert schedule_words("30 * * * *", "Asia/Kolkata", NOW) == "every hour at :30"
    assert "next: Mon 30 Nov, 06:00" in schedule_words("0 */6 * * *", "Asia/Kolkata", NOW)


def test_the_walk_of_fire_times_stops_at_its_limit():
    # schedule_words reads at most 15 fire times: a minutely job has 20,160 in its window.
    trigger = CronTrigger.from_crontab("* * * * *", timezone=ZoneInfo("UTC"))
    times = fire_times(trigger, NOW, NOW + timedelta(days=14), limit=15)
    assert len(times) == 15 and times[0] == datetime(2026, 11, 29, 19, 54, tzinfo=UTC)
    assert len(fire_times(trigger, NOW, NOW + timedelta(hours=1))) == 60  # no limit: all
