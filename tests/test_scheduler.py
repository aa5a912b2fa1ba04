"""The scheduler: explicit time zones, DST in both directions, exactly-once claims shared by
two engines on one database file, a missed run done once after downtime, and shutdown
mid-run releasing the claim."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

import bot.app
from bot.actions import PostMessage
from bot.adapters.console import ConsoleSession
from bot.app import HearthApp
from bot.clock import FakeClock
from bot.engine import Cog
from bot.events import PlaceRef
from bot.jobs import JobSpec
from bot.scheduler import fire_times, last_fire_time, period_of, trigger_for
from tests.conftest import make_settings


class DailyCog(Cog):
    """A test capability: posts one message per run, keyed by its period."""

    name = "daily"
    cron = "0 9 * * *"

    def __init__(self, services):
        super().__init__(services)
        self.runs: list[tuple[str, str]] = []
        self.gate: asyncio.Event | None = None

    def jobs(self):
        return [JobSpec("test.daily", self.cron, self.run, "posts a line")]

    async def run(self, tick):
        self.runs.append((tick.community_id, tick.period))
        place = PlaceRef("console", tick.community_id, "general")
        if self.gate is not None:
            await self.gate.wait()
        return [
            PostMessage(
                place=place,
                text=f"good morning {tick.period}",
                dedupe_key=f"daily:{tick.community_id}:{tick.period}",
            )
        ]

    async def erase_member(self, community_id, member_id):
        return None


@pytest.fixture
def with_daily(monkeypatch):
    original = bot.app.build_cogs

    def build(services):
        return [*original(services), DailyCog(services)]

    monkeypatch.setattr(bot.app, "build_cogs", build)


async def open_app(path, clock, tz="Europe/London", *, live=False, start=True):
    """(app, session) for a course whose community exists (alice has posted); ``live`` runs
    the real APScheduler, ``start`` starts the scheduler."""
    settings = make_settings(path, course={"timezone": tz})
    app = await HearthApp.create(settings, clock=clock, migrate=False, live_scheduler=live)
    session = await ConsoleSession.open(app)
    await session.say("alice", "hello")  # creates the community
    if start:
        await app.scheduler.start()
    return app, session


def daily(app) -> DailyCog:
    return next(c for c in app.engine.cogs if c.name == "daily")


def posts(session):
    return [s.text for s in session.outbox if s.kind == "post"]


def test_dst_spring_forward_and_fall_back_keep_local_time():
    trigger = trigger_for(JobSpec("x", "0 9 * * *", None), "Europe/London")
    # Spring: clocks go forward on 2026-03-29; 09:00 local is 09:00 UTC before, 08:00 after.
    spring = fire_times(
        trigger, datetime(2026, 3, 27, 12, tzinfo=UTC), datetime(2026, 3, 31, 12, tzinfo=UTC)
    )
    assert [t.astimezone(UTC).hour for t in spring] == [9, 8, 8, 8]
    assert all(t.astimezone(ZoneInfo("Europe/London")).hour == 9 for t in spring)
    # Autumn: clocks go back on 2026-10-25; 08:00 UTC before, 09:00 UTC after.
    autumn = fire_times(
        trigger, datetime(2026, 10, 23, 12, tzinfo=UTC), datetime(2026, 10, 27, 12, tzinfo=UTC)
    )
    assert [t.astimezone(UTC).hour for t in autumn] == [8, 9, 9, 9]
    # A run at 01:30 on the night clocks go back exists twice in local time; it runs once.
    night = trigger_for(JobSpec("x", "30 1 * * *", None), "Europe/London")
    runs = fire_times(
        night, datetime(2026, 10, 24, 12, tzinfo=UTC), datetime(2026, 10, 25, 12, tzinfo=UTC)
    )
    assert len({period_of(t) for t in runs}) == len(runs) >= 1


def test_southern_hemisphere_dst():
    trigger = trigger_for(JobSpec("x", "0 9 * * mon", None), "Australia/Sydney")
    # Sydney leaves DST on 2026-04-05 (UTC+11 -> +10) and enters it on 2026-10-04.
    april = fire_times(
        trigger, datetime(2026, 3, 25, tzinfo=UTC), datetime(2026, 4, 10, tzinfo=UTC)
    )
    assert [(t.astimezone(UTC).day, t.astimezone(UTC).hour) for t in april] == [(29, 22), (5, 23)]
    october = fire_times(
        trigger, datetime(2026, 9, 25, tzinfo=UTC), datetime(2026, 10, 10, tzinfo=UTC)
    )
    assert [t.astimezone(UTC).hour for t in october] == [23, 22]


async def test_simulated_clock_runs_each_day_once(tmp_path, with_daily):
    clock = FakeClock(datetime(2026, 9, 7, 7, tzinfo=UTC))
    app, session = await open_app(tmp_path / "a.db", clock)
    try:
        await session.advance(timedelta(days=3))
        assert len(posts(session)) == 3
        await app.scheduler.advance_to(clock.now())  # same window again: nothing new
        assert len(posts(session)) == 3
    finally:
        await app.close()


async def test_two_engines_on_one_database_run_each_job_once(tmp_path, with_daily):
    path = tmp_path / "shared.db"
    clock = FakeClock(datetime(2026, 9, 7, 7, tzinfo=UTC))
    app1, s1 = await open_app(path, clock)
    app2, s2 = await open_app(path, clock)
    try:
        clock.advance(timedelta(days=2))
        await asyncio.gather(
            app1.scheduler.advance_to(clock.now()), app2.scheduler.advance_to(clock.now())
        )
        total = len(posts(s1)) + len(posts(s2))
        assert total == 2
        assert len(daily(app1).runs) + len(daily(app2).runs) == 2
        claims = await app1.store.claims("test.daily")
        assert [c["status"] for c in claims] == ["done", "done"]
    finally:
        await app1.close()
        await app2.close()


async def test_missed_run_happens_once_after_downtime(tmp_path, with_daily):
    path = tmp_path / "down.db"
    clock = FakeClock(datetime(2026, 9, 7, 7, 30, tzinfo=UTC))  # 09:00 London = 08:00 UTC
    app, session = await open_app(path, clock)
    assert posts(session) == []
    await app.close()
    # Down from 07:30 to 10:00 UTC: the 08:00 UTC run was missed, within the 6 h grace.
    clock.advance(timedelta(hours=2, minutes=30))
    app, session = await open_app(path, clock)
    try:
        assert len(posts(session)) == 1
    finally:
        await app.close()
    # A second restart does not repeat it.
    app, session = await open_app(path, clock)
    try:
        assert posts(session) == []
    finally:
        await app.close()


async def test_run_missed_beyond_grace_is_skipped(tmp_path, with_daily):
    path = tmp_path / "late.db"
    clock = FakeClock(datetime(2026, 9, 7, 7, tzinfo=UTC))
    app, _ = await open_app(path, clock)
    await app.close()
    clock.advance(timedelta(hours=8))  # 08:00 UTC run is 7 h late at 15:00
    app, session = await open_app(path, clock)
    try:
        assert posts(session) == []
    finally:
        await app.close()


async def test_shutdown_mid_run_releases_the_claim(tmp_path, with_daily):
    path = tmp_path / "stop.db"
    clock = FakeClock(datetime(2026, 9, 7, 7, tzinfo=UTC))
    app, session = await open_app(path, clock)
    daily(app).gate = asyncio.Event()  # the job blocks until released
    clock.advance(timedelta(hours=2))
    task = asyncio.create_task(app.scheduler.advance_to(clock.now()))
    for _ in range(500):  # wait (bounded) until the job is inside its run
        if daily(app).runs:
            break
        await asyncio.sleep(0.01)
    assert daily(app).runs  # the job started
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await app.store.claims("test.daily") == []  # released, not stuck
    await app.close()
    app, session = await open_app(path, clock)  # restart within grace: it runs now, once
    try:
        assert len(posts(session)) == 1
    finally:
        await app.close()


async def test_catch_up_at_start_skips_a_run_from_before_the_community_appeared(
    tmp_path, with_daily
):
    path = tmp_path / "new.db"
    clock = FakeClock(datetime(2026, 9, 7, 8, 30, tzinfo=UTC))  # today's run was at 08:00 UTC
    # The community appears at 08:30, then the scheduler starts: 08:00 is within the grace
    # period, but the course did not exist then.
    app, session = await open_app(path, clock)
    assert daily(app).runs == [] and posts(session) == []
    await app.close()
    clock.advance(timedelta(minutes=10))
    app, session = await open_app(path, clock)  # nor at a restart
    try:
        assert daily(app).runs == [] and posts(session) == []
        clock.advance(timedelta(days=1))
        await app.scheduler.catch_up()  # tomorrow's is its own
        assert daily(app).runs == [("console", "2026-09-08T08:00Z")]
    finally:
        await app.close()


async def test_expired_claim_is_taken_over(tmp_path, app, clock):
    store = app.store
    lease = timedelta(minutes=10)
    assert await store.claim("j", "c", "p", now=clock.now(), lease=lease)
    assert not await store.claim("j", "c", "p", now=clock.now(), lease=lease)
    later = clock.now() + timedelta(minutes=11)
    assert await store.claim("j", "c", "p", now=later, lease=lease)  # the owner died
    await store.finish_claim("j", "c", "p", later)
    assert not await store.claim("j", "c", "p", now=later + timedelta(hours=1), lease=lease)


async def test_tick_runs_a_job_now(tmp_path, with_daily):
    clock = FakeClock(datetime(2026, 9, 7, 12, tzinfo=UTC))
    app, session = await open_app(tmp_path / "t.db", clock)
    try:
        sent = await session.tick("test.daily")
        assert len(sent) == 1 and "good morning manual:" in sent[0].text
        with pytest.raises(KeyError):
            await session.tick("no.such.job")
    finally:
        await app.close()


async def test_memory_a_job_freed_is_given_back_after_it_runs(tmp_path, with_daily, monkeypatch):
    import bot.scheduler

    released: list[bool] = []  # one entry per release: whether garbage was collected first
    monkeypatch.setattr(
        bot.scheduler, "release_freed_memory", lambda *, collect: released.append(collect)
    )
    clock = FakeClock(datetime(2026, 9, 7, 12, tzinfo=UTC))
    app, session = await open_app(tmp_path / "t.db", clock)
    try:
        before = len(released)
        await session.tick("test.daily")
        assert released[before:] == [False]  # a quick job: pages back, no full collection
        # A run already claimed (here, or by another process) does nothing, so frees nothing.
        assert await app.scheduler.fire("test.daily", "console", None, period="manual:y")
        assert not await app.scheduler.fire("test.daily", "console", None, period="manual:y")
        assert len(released) == before + 2
        monkeypatch.setattr(bot.scheduler, "BIG_JOB_SECONDS", 0.0)  # every job counts as big
        assert await app.scheduler.fire("test.daily", "console", None, period="manual:z")
        assert released[-1] is True
    finally:
        await app.close()


async def _until(check, seconds: float = 10.0) -> None:
    """Wait (bounded) for ``check()`` to hold: the live scheduler fires on the real clock."""
    for _ in range(int(seconds / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not reached in time")


def _fire_soon(app, job_id: str) -> None:
    """Make APScheduler's own job come due now, as at its trigger's fire time."""
    aps = app.scheduler._aps
    aps.get_job(job_id).modify(next_run_time=datetime.now(UTC))
    aps.wakeup()


def _fires(app, job: str | None = None) -> list[bool]:
    """What each of the app's fires (of ``job``, or of every job) returned (True: it ran
    the job), as they finish."""
    fired: list[bool] = []
    fire = app.scheduler.fire

    async def counted(*args, **kwargs):
        ran = await fire(*args, **kwargs)
        if job is None or args[0] == job:
            fired.append(ran)
        return ran

    app.scheduler.fire = counted
    return fired


async def test_live_scheduler_runs_a_due_job_once_as_the_period_of_its_fire_time(
    tmp_path, with_daily, caplog
):
    # 07:59:30 UTC: yesterday's 09:00 London run is beyond the grace, today's not yet due.
    clock = FakeClock(datetime(2026, 9, 7, 7, 59, 30, tzinfo=UTC))
    app, session = await open_app(tmp_path / "live.db", clock, live=True, start=False)
    await app.scheduler.start()
    fired = _fires(app)
    try:
        assert daily(app).runs == []
        community = session.community_id
        clock.advance(timedelta(minutes=1, seconds=5))  # 08:00:35, the run came due
        _fire_soon(app, f"test.daily|{community}")
        await _until(lambda: daily(app).runs)
        await _until(lambda: posts(session))
        # The period is the trigger's fire time (08:00), not the moment it ran: every
        # process firing it claims the same row however late it is.
        assert posts(session) == ["good morning 2026-09-07T08:00Z"]
        clock.advance(timedelta(minutes=1))  # a second, late fire of the same run
        _fire_soon(app, f"test.daily|{community}")
        await _until(lambda: len(fired) == 2)
        assert fired == [True, False]  # claimed already: not run again
        assert len(daily(app).runs) == 1 and len(posts(session)) == 1
        assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
    finally:
        await app.close()


async def test_live_scheduler_refresh_plans_a_community_that_came_later(
    tmp_path, with_daily, caplog
):
    clock = FakeClock(datetime(2026, 9, 7, 7, tzinfo=UTC))
    settings = make_settings(tmp_path / "refresh.db")
    app = await HearthApp.create(settings, clock=clock, migrate=False, live_scheduler=True)
    session = await ConsoleSession.open(app)
    await session.say("alice", "hello")
    await app.scheduler.start()
    try:
        await app.store.ensure_community(
            "later", "console", name="Later course", timezone="Asia/Tokyo", now=clock.now()
        )
        assert ("test.daily", "later") not in app.scheduler.planned
        _fire_soon(app, "hearth-refresh")  # the refresh every 5 minutes, come due
        await _until(lambda: ("test.daily", "later") in app.scheduler.planned)
        assert app.scheduler._aps.get_job("test.daily|later") is not None
        assert app.scheduler.planned[("test.daily", "later")].timezone == "Asia/Tokyo"
        assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
    finally:
        await app.close()


async def test_live_refresh_runs_what_fell_due_before_it_planned_a_new_community(
    tmp_path, with_daily, caplog
):
    # Two communities come after start, in London, where the daily 09:00 is 08:00 UTC:
    # 'early' at 07:58, 'late' at 08:01. The refresh that plans them comes at 08:03.
    clock = FakeClock(datetime(2026, 9, 7, 7, 58, tzinfo=UTC))
    settings = make_settings(tmp_path / "gap.db")
    app = await HearthApp.create(settings, clock=clock, migrate=False, live_scheduler=True)
    await ConsoleSession.open(app)
    await app.scheduler.start()
    fired = _fires(app)
    try:
        for name, minutes in (("early", 0), ("late", 3)):
            await app.store.ensure_community(
                name,
                "console",
                name=name,
                timezone="Europe/London",
                now=clock.now() + timedelta(minutes=minutes),
            )
        clock.advance(timedelta(minutes=5))
        _fire_soon(app, "hearth-refresh")
        await _until(lambda: fired)
        await _until(lambda: not app.scheduler._running)
        # 'early' existed at 08:00: its run happens now, under that period. 'late' came
        # after it: nothing to catch up.
        assert daily(app).runs == [("early", "2026-09-07T08:00Z")]
        # (The real cogs' jobs catch up the same way: reflections.followup's 08:00.)
        assert ("reflections.followup", "early", "2026-09-07T08:00Z") in app.scheduler.runs
        # A second refresh plans nothing new and runs nothing again.
        before = len(fired)
        _fire_soon(app, "hearth-refresh")
        await asyncio.sleep(0.3)
        await _until(lambda: not app.scheduler._running)
        assert len(fired) == before and len(daily(app).runs) == 1
        assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
    finally:
        await app.close()


async def test_live_fire_that_fails_is_logged_with_its_job(tmp_path, with_daily, caplog):
    # The community appears before 08:00 UTC.
    clock = FakeClock(datetime(2026, 9, 7, 7, 59, 30, tzinfo=UTC))
    app, session = await open_app(tmp_path / "fail.db", clock, live=True, start=False)
    clock.advance(timedelta(minutes=1))
    await app.scheduler.start()  # catches up on today's 08:00 UTC run
    try:
        assert len(daily(app).runs) == 1

        async def database_gone(*args, **kwargs):
            raise ConnectionError("connection to the database was lost")

        app.store.claim = database_gone
        clock.advance(timedelta(days=1))
        _fire_soon(app, f"test.daily|{session.community_id}")
        await _until(lambda: "failed" in caplog.text)
        assert f"job test.daily for {session.community_id} failed" in caplog.text
        assert "connection to the database was lost" in caplog.text
        assert not app.scheduler._running
    finally:
        await app.close()


async def test_a_live_fire_with_no_scheduled_time_behind_it_runs_nothing(
    tmp_path, with_daily, caplog
):
    clock = FakeClock(datetime(2026, 9, 7, 15, tzinfo=UTC))  # 7 h after 09:00 London
    settings = make_settings(tmp_path / "stray.db", course={"timezone": "Europe/London"})
    app = await HearthApp.create(settings, clock=clock, migrate=False, live_scheduler=True)
    session = await ConsoleSession.open(app)
    await session.say("alice", "hello")
    await app.scheduler.start()
    try:
        await app.scheduler._spawn("test.daily", session.community_id)
        await asyncio.sleep(0)
        assert daily(app).runs == [] and not app.scheduler._running
        assert "fired with no scheduled time behind it; skipped" in caplog.text
    finally:
        await app.close()


async def test_two_live_schedulers_firing_apart_run_the_job_once(tmp_path, with_daily):
    path = tmp_path / "two-live.db"
    settings = make_settings(path, course={"timezone": "Europe/London"})
    early = FakeClock(datetime(2026, 9, 7, 7, 59, tzinfo=UTC))
    late = FakeClock(datetime(2026, 9, 7, 7, 59, tzinfo=UTC))
    apps, sessions = [], []
    for clock in (early, late):
        app = await HearthApp.create(settings, clock=clock, migrate=False, live_scheduler=True)
        session = await ConsoleSession.open(app)
        await session.say("alice", "hello")
        await app.scheduler.start()
        apps.append(app)
        sessions.append(session)
    fires = [_fires(app) for app in apps]
    try:
        # The 08:00 UTC run fires in one process at 08:00:02 and in the other, busy, at
        # 08:01:40: both name the run by its scheduled time, so the second finds the claim.
        early.advance(timedelta(minutes=1, seconds=2))
        late.advance(timedelta(minutes=2, seconds=40))
        for app, session in zip(apps, sessions, strict=True):
            _fire_soon(app, f"test.daily|{session.community_id}")
        await _until(lambda: all(fired for fired in fires))
        assert sorted(fired for fires_of_app in fires for fired in fires_of_app) == [False, True]
        assert sum(len(daily(app).runs) for app in apps) == 1
        assert sum(len(posts(s)) for s in sessions) == 1
        claims = await apps[0].store.claims("test.daily")
        assert [(c["period"], c["status"]) for c in claims] == [("2026-09-07T08:00Z", "done")]
    finally:
        for app in apps:
            await app.close()


#: Clock changes in 2026 (UTC): London and New York in March and October/November, Sydney
#: in April and October.
CLOCK_CHANGES = [
    datetime(2026, 3, 29, 1, tzinfo=UTC),
    datetime(2026, 10, 25, 1, tzinfo=UTC),
    datetime(2026, 3, 8, 7, tzinfo=UTC),
    datetime(2026, 11, 1, 6, tzinfo=UTC),
    datetime(2026, 4, 4, 16, tzinfo=UTC),
    datetime(2026, 10, 3, 16, tzinfo=UTC),
]


@hypothesis_settings(max_examples=300, deadline=None)
# Inside or just after a clock change: London falls back at 01:00 UTC on 25 Oct 2026 and
# springs forward at 01:00 UTC on 29 Mar; New York springs forward at 07:00 UTC on 8 Mar.
@example("* * * * *", "Europe/London", datetime(2026, 10, 25, 1, 30, tzinfo=UTC), 1, 10)
@example("30 1 * * *", "Europe/London", datetime(2026, 10, 25, 1, 45, tzinfo=UTC), 2, 1)
@example("*/15 * * * *", "Europe/London", datetime(2026, 3, 29, 1, 5, tzinfo=UTC), 0, 20)
@example("*/15 * * * *", "America/New_York", datetime(2026, 3, 8, 7, 1, tzinfo=UTC), 1, 1)
@given(
    cron=st.sampled_from(["* * * * *", "*/15 * * * *", "20 * * * *", "30 1 * * *", "0 9 * * mon"]),
    zone=st.sampled_from(["UTC", "Europe/London", "America/New_York", "Australia/Sydney"]),
    until=st.one_of(
        st.datetimes(
            min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)
        ),
        # Often within hours of a clock change of one of the zones.
        st.builds(
            lambda change, minutes: change + timedelta(minutes=minutes),
            st.sampled_from(CLOCK_CHANGES),
            st.integers(min_value=-300, max_value=600),
        ),
    ),
    hours=st.integers(min_value=0, max_value=8),
    minutes=st.integers(min_value=1, max_value=59),
)
def test_last_fire_time_is_the_last_of_all_fire_times(cron, zone, until, hours, minutes):
    # DST changes included (London, New York and Sydney move their clocks in the range).
    trigger = trigger_for(JobSpec("j", cron, None), zone)  # type: ignore[arg-type]
    after = until - timedelta(hours=hours, minutes=minutes)
    every = fire_times(trigger, after, until)
    assert last_fire_time(trigger, after, until) == (every[-1] if every else None)


async def _move_to(app, community_id: str, timezone: str) -> None:
    """Change the community's timezone (as /course setup does) and let the refresh re-plan."""
    await app.store.update_community(community_id, timezone=timezone)
    _fire_soon(app, "hearth-refresh")
    key = ("test.daily", community_id)
    await _until(lambda: app.scheduler.planned[key].timezone == timezone)
    await _until(lambda: not app.scheduler._running)


async def test_a_timezone_moved_west_after_the_run_does_not_run_it_again(
    tmp_path, with_daily, caplog
):
    # London's 09:00 is 08:00 UTC; New York's is 13:00 UTC. The run happens in London, then
    # at 09:00 UTC the course moves to New York: 13:00 UTC is that day's run again.
    caplog.set_level(logging.INFO, logger="bot.scheduler")
    clock = FakeClock(datetime(2026, 9, 7, 7, 59, 30, tzinfo=UTC))
    app, session = await open_app(tmp_path / "west.db", clock, live=True, start=False)
    await app.scheduler.start()
    fired = _fires(app, "test.daily")
    community = session.community_id
    try:
        clock.advance(timedelta(minutes=1, seconds=5))
        _fire_soon(app, f"test.daily|{community}")
        await _until(lambda: posts(session))
        clock.advance(timedelta(hours=1))
        await _move_to(app, community, "America/New_York")
        clock.advance(timedelta(hours=4))  # 13:00:35 UTC, 09:00 in New York
        _fire_soon(app, f"test.daily|{community}")
        await _until(lambda: len(fired) == 2)
        assert fired == [True, False]
        assert posts(session) == ["good morning 2026-09-07T08:00Z"]
        assert "it ran for 2026-09-07T08:00Z" in caplog.text
        # The next day's 09:00 in New York is a run of its own.
        clock.advance(timedelta(days=1))
        _fire_soon(app, f"test.daily|{community}")
        await _until(lambda: len(fired) == 3)
        await _until(lambda: len(posts(session)) == 2)
        assert posts(session)[-1] == "good morning 2026-09-08T13:00Z"
        assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
    finally:
        await app.close()


async def test_a_timezone_moved_east_past_the_run_catches_it_up_once(tmp_path, with_daily, caplog):
    # London's 09:00 is 08:00 UTC; Helsinki's is 06:00 UTC. At 07:30 UTC the course moves
    # to Helsinki: London's run has not come, Helsinki's has passed. It runs once, now.
    clock = FakeClock(datetime(2026, 9, 7, 5, tzinfo=UTC))
    app, session = await open_app(tmp_path / "east.db", clock, live=True, start=False)
    await app.scheduler.start()
    community = session.community_id
    try:
        assert daily(app).runs == []
        clock.advance(timedelta(hours=2, minutes=30))
        await _move_to(app, community, "Europe/Helsinki")
        await _until(lambda: posts(session))
        assert daily(app).runs == [(community, "2026-09-07T06:00Z")]
        # London's 08:00 UTC is no longer planned: APScheduler now fires at Helsinki's 09:00.
        job = app.scheduler._aps.get_job(f"test.daily|{community}")
        assert str(job.trigger.timezone) == "Europe/Helsinki"
        assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
    finally:
        await app.close()
