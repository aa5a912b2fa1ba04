"""Reflection prompts on a fake clock: local posting time across DST in both hemispheres,
holidays, answers recorded from the prompt's thread, one reminder to non-responders only, the
reply queue at close, facilitator commands, exactly once across a restart mid-run and with two
engines on one database, template validation, and erasure."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.actions import DirectMessage
from bot.adapters.console import ConsoleSession
from bot.app import HearthApp
from bot.clock import FakeClock
from bot.errors import ConfigError
from bot.reflection_templates import load_prompts, load_templates
from storage.reflections_queries import ReflectionRepo
from tests.conftest import BACKENDS, _pg_reachable, _pg_schema, make_settings, postgres_url

LEARNERS = ("alice", "bob", "carol")


@asynccontextmanager
async def backend_storage(backend: str):
    """``[storage]`` settings for a backend: a SQLite file (the default), or a fresh schema on
    PostgreSQL when a server is reachable (skipped, with the reason, otherwise)."""
    if backend == "sqlite":
        yield {}
        return
    url = postgres_url()
    if not await _pg_reachable(url):
        pytest.skip(f"PostgreSQL not reachable at {url} (run .ci/run to start it)")
    schema = "t_" + uuid.uuid4().hex[:12]
    await _pg_schema(url, schema, drop=False)
    try:
        yield {"database_url": url, "pg_schema": schema}
    finally:
        await _pg_schema(url, schema, drop=True)


@pytest.fixture(params=BACKENDS)
async def db_storage(request):
    async with backend_storage(request.param) as settings:
        yield settings


async def open_course(path, clock, *, learners=LEARNERS, start=True, **sections):
    course = {
        "timezone": "Europe/London",
        "start_date": "2026-09-07",
        "reflection_channel": "reflections",
        "cohort_channel": "general",
        "facilitator_ids": ["fran"],
        **sections.pop("course", {}),
    }
    reflections = {"followup_schedule": "0 * * * *", **sections.pop("reflections", {})}
    summaries = {"enabled": False, **sections.pop("summaries", {})}
    # Nudges have their own tests; here they would only add DMs to count around.
    nudges = {"enabled": False, **sections.pop("nudges", {})}
    settings = make_settings(
        path,
        course=course,
        reflections=reflections,
        summaries=summaries,
        nudges=nudges,
        **sections,
    )
    app = await HearthApp.create(settings, clock=clock, migrate=False)
    session = await GatedSession.open(app)
    await session.join("fran", facilitator=True)
    for name in learners:
        await session.join(name)
    if start:
        await app.scheduler.start()
    return app, session


class GatedSession(ConsoleSession):
    """A console that can stall after its first direct message (a run cut off mid-delivery)."""

    gate: asyncio.Event | None = None
    blocked: asyncio.Event | None = None

    async def send(self, action, origin):
        await super().send(action, origin)
        if self.gate is not None and isinstance(action, DirectMessage):
            self.blocked.set()
            await self.gate.wait()


def dms(session, marker="", to=None, *, since=0):
    """Hearth's direct messages whose dedupe key contains ``marker`` (``:remind:``, ``:dm:``,
    ``:closed:``, ``:report:``, ``mirror:``), so other capabilities' DMs never get counted."""
    return [
        s
        for s in session.outbox[since:]
        if s.kind == "dm" and marker in (s.action.dedupe_key or "") and (to is None or s.to == to)
    ]


def posts(session, channel="#reflections"):
    return [s for s in session.outbox if s.kind == "post" and s.to == channel]


def cog(app, name="reflections"):
    return next(c for c in app.engine.cogs if c.name == name)


async def prompt_rows(app, community="console"):
    return await ReflectionRepo(app.store).prompts(community)


# -- posting at the right local time ---------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "monday", "utc_hours"),
    [
        ("Europe/London", "2026-03-23", [(23, 9), (30, 8)]),  # clocks go forward 29 March
        ("Europe/London", "2026-10-19", [(19, 8), (26, 9)]),  # clocks go back 25 October
        ("Australia/Sydney", "2026-09-28", [(27, 23), (4, 22)]),  # DST starts 4 October
        ("Australia/Sydney", "2026-03-30", [(29, 22), (5, 23)]),  # DST ends 5 April
    ],
)
async def test_prompts_post_at_local_nine_across_dst(tmp_path, tz, monday, utc_hours):
    start_day = datetime.fromisoformat(monday).replace(tzinfo=ZoneInfo(tz))
    clock = FakeClock(start_day - timedelta(days=1))
    app, session = await open_course(
        tmp_path / "dst.db",
        clock,
        course={"timezone": tz, "start_date": monday},
        reflections={"followup_schedule": "0 */6 * * *"},
    )
    try:
        await session.advance(timedelta(days=9))
        rows = await prompt_rows(app)
        assert [r["week"] for r in rows] == [0, 1]
        assert [(r["posted_at"].day, r["posted_at"].hour) for r in rows] == utc_hours
        assert all(r["posted_at"].astimezone(ZoneInfo(tz)).hour == 9 for r in rows)
        sent = posts(session)
        assert [s.action.as_thread_title for s in sent] == [
            "Week 0: Introductions: who are you, and what brings you here?",
            "Week 1: Your own idea",
        ]
        # A prompt closes one window (7 days) later at the same local time, across DST too.
        local = rows[0]["posted_at"].astimezone(ZoneInfo(tz))
        assert rows[0]["closes_at"] == (local + timedelta(days=7)).astimezone(UTC)
        assert rows[0]["closes_at"] == rows[1]["posted_at"]
    finally:
        await app.close()


async def test_no_prompt_before_the_course_or_on_a_holiday(tmp_path):
    clock = FakeClock(datetime(2026, 8, 30, 12, tzinfo=UTC))  # a week before the start
    app, session = await open_course(
        tmp_path / "h.db",
        clock,
        course={"holidays": ["2026-09-13", "2026-09-14"]},
        reflections={"followup_schedule": "0 */3 * * *"},
    )
    try:
        await session.advance(timedelta(days=7, hours=12))  # to Sun 6 Sep: not started
        assert posts(session) == []
        await session.advance(timedelta(days=1))  # Mon 7 Sep 09:00 London: week 0
        assert len(posts(session)) == 1
        first = posts(session)[0].message_id
        await session.say("alice", "Hello, I'm Alice from Leeds", thread=first)
        # Week 0's reminder falls due Sat 12 Sep 23:24 (quiet hours), then Sun 13 and Mon 14
        # are holidays, and the prompt closes Mon 14 09:00: no reminder at all.
        await session.advance(timedelta(days=7))  # to Mon 14 Sep 12:00 UTC
        assert dms(session, ":remind:") == []
        # Week 1 falls on the Monday holiday: held back to Tuesday, same local time.
        assert len(posts(session)) == 1
        await session.advance(timedelta(days=1))
        rows = await prompt_rows(app)
        assert [r["week"] for r in rows] == [0, 1]
        posted = rows[1]["posted_at"].astimezone(ZoneInfo("Europe/London"))
        assert (posted.date().isoformat(), posted.hour) == ("2026-09-15", 9)
        assert len(posts(session)) == 2
    finally:
        await app.close()


# -- answers, reminders and the reply queue ---------------------------------------------------


async def test_answers_reminder_to_non_responders_and_reply_queue(tmp_path, db_storage):
    clock = FakeClock(datetime(2026, 9, 7, 7, tzinfo=UTC))
    app, session = await open_course(
        tmp_path / "r.db",
        clock,
        storage=db_storage,
        learners=(*LEARNERS, "dan"),
        reflections={"followup_schedule": "0 */2 * * *"},
    )
    try:
        await app.store.set_pref("console", "dan", "nudges", "off")  # opted out of reminders
        await session.advance(timedelta(hours=2))
        [prompt] = posts(session)
        thread = prompt.message_id
        assert prompt.action.tag == "reflection:1" and thread == "reflection-1"
        a1 = await session.say("alice", "I joined to learn how to learn", thread=thread)
        await session.say("alice", "and a second thought", thread=thread)
        b1 = await session.say("bob", "Hi all, Bob here from Lagos", thread=thread)
        await session.say("fran", "Welcome, great to have you!", thread=thread, reply_to=a1)
        await session.say("eve", "unrelated chat in general")  # not a reflection
        repo = ReflectionRepo(app.store)
        assert await repo.answered("console", 1) == {"alice", "bob"}  # fran is a facilitator
        reflections = await repo.reflections("console", 1)
        assert [(r["member_id"], r["responded"]) for r in reflections] == [
            ("alice", True),
            ("alice", False),
            ("bob", False),
        ]
        assert reflections[0]["word_count"] == 7
        # The reminder is due at 80% of the window (Sat 12 Sep 23:24 London: quiet hours), so
        # it goes out at the first hourly follow-up after 08:00 on Sunday.
        await session.advance(timedelta(days=5, hours=14))  # Sat 12 Sep 23:00 UTC
        assert dms(session, "reflection:") == []
        await session.advance(timedelta(hours=8))  # Sun 13 Sep 07:00 UTC = 08:00 London
        reminded = sorted(s.to for s in dms(session, ":remind:"))
        assert reminded == ["carol", "eve"]  # not alice or bob (answered), dan (opted out)
        reminder = dms(session, ":remind:", "carol")[0]
        assert "Introductions" in reminder.text and "#reflections" in reminder.text
        assert reminder.action.dedupe_key == "reflection:console:1:remind:carol"
        # bob gets a response by mention; carol answers late, after her reminder.
        await session.say("eve", "Nice to meet you @bob", thread=thread)
        await session.say("carol", "Carol, joining from Lima", thread=thread)
        await session.advance(timedelta(hours=12))
        assert len(dms(session, ":remind:", "carol")) == 1  # one reminder per prompt, however long
        # Close (Mon 14 Sep 09:00 London): fran privately gets who answered and the queue.
        await session.advance(timedelta(days=1))
        [closed] = dms(session, ":closed:", "fran")
        text = closed.text
        assert "Reflection closed: Introductions" in text
        assert "4 of 5 learners answered." in text
        assert "Answered: alice, bob, carol, eve" in text and "Not yet: dan" in text
        queue = text.split("## Reply queue", 1)[1]
        assert "3 answers with no response yet" in queue
        assert "alice" in queue and "carol" in queue and "eve" in queue
        assert "bob" not in queue  # eve mentioned him in the thread
        assert f"message {b1}" not in queue
        rows = await prompt_rows(app)
        assert rows[0]["status"] == "closed"
        await session.advance(timedelta(days=1))
        assert len(dms(session, ":closed:", "fran")) == 1  # the close report went out once
    finally:
        await app.close()


async def test_dm_delivery_and_answers_by_dm(tmp_path):
    clock = FakeClock(datetime(2026, 9, 7, 7, tzinfo=UTC))
    app, session = await open_course(tmp_path / "dm.db", clock, reflections={"delivery": "dm"})
    try:
        await session.advance(timedelta(hours=2))
        assert posts(session) == []
        assert sorted(s.to for s in dms(session, ":dm:")) == list(LEARNERS)
        assert "Introductions" in dms(session, ":dm:", "alice")[0].text
        # A direct message to the bot while the prompt is open is an answer.
        await session.app.runtime.handle(
            _dm(session, "alice", "My answer, privately", "d1"), origin=session
        )
        assert await ReflectionRepo(app.store).answered("console", 1) == {"alice"}
        assert (await cog(app).current_prompt("console"))["delivery"] == "dm"
    finally:
        await app.close()


def _dm(session, name, text, message_id):
    from bot.events import MessagePosted, PlaceRef

    return MessagePosted(
        at=session.now,
        author=session.member(name),
        place=PlaceRef("console", "console", f"dm-{name}", is_direct=True),
        message_id=message_id,
        text=text,
    )


# -- facilitator commands ---------------------------------------------------------------------


async def test_prompt_commands(tmp_path):
    clock = FakeClock(datetime(2026, 9, 8, 10, tzinfo=UTC))  # Tuesday: week 0, not posted
    app, session = await open_course(tmp_path / "c.db", clock)
    try:
        refused = await session.command("alice", "/course prompt post")
        assert "for facilitators only" in refused
        out = await session.command("fran", "/course prompt post")
        assert "Posted prompt #1 in #reflections: Introductions" in out
        assert "closes Tue 15 Sep, 11:00" in out
        assert len(posts(session)) == 1
        again = await session.command("fran", "/course prompt post")
        assert "already posted (#1)" in again
        own = await session.command("fran", "/course prompt post text:What surprised you today?")
        assert "Posted prompt #2" in own
        assert posts(session)[-1].action.as_thread_title == "What surprised you today?"
        bad = await session.command("fran", "/course prompt schedule when:tomorrow text:Hi")
        assert "expected a date and time" in bad
        past = await session.command("fran", "/course prompt schedule when:2026-09-01T09:00 x")
        assert "in the past" in past
        out = await session.command(
            "fran", '/course prompt schedule when:"2026-09-10 14:30" text:Share one link.'
        )
        assert "Scheduled prompt #3 for Thu 10 Sep, 14:30 (Europe/London)" in out
        far = await session.command("fran", "/course prompt schedule 2062-09-11T08:00 Typo")
        assert "when: 2062-09-11 is more than a year ahead" in far
        out = await session.command("fran", "/course prompt schedule 2026-09-11T08:00 Another")
        assert "Scheduled prompt #4" in out
        assert "cancel" in (await session.command("fran", "/course prompt cancel id:4")).lower()
        assert "already cancelled" in await session.command("fran", "/course prompt cancel 4")
        assert "no prompt #99" in await session.command("fran", "/course prompt cancel id:99")
        listing = await session.command("fran", "/course prompt list")
        assert "#1 (week 0) Introductions" in listing and "answered by 0 of 3" in listing
        assert "#3 (own) Share one link.: scheduled for Thu 10 Sep, 14:30" in listing
        assert "#4 (own) Another: cancelled" in listing
        assert "Next from the sequence: week 1: Your own idea" in listing
        assert "(posted every Monday at 09:00, Europe/London)" in listing
        # The scheduled prompt goes out at the first follow-up run after its time.
        await session.advance(timedelta(days=2, hours=5))  # Thu 10 Sep 15:00 UTC
        assert posts(session)[-1].action.as_thread_title == "Share one link."
        assert len(posts(session)) == 3
        rows = {r["id"]: r for r in await prompt_rows(app)}
        assert rows[3]["posted_at"] == datetime(2026, 9, 10, 14, tzinfo=UTC)
        assert rows[4]["status"] == "cancelled"
        # The nudges capability asks for the newest open prompt.
        current = await cog(app).current_prompt("console")
        assert current["id"] == 3 and current["thread_id"] == "reflection-3"
        # /course me shows the member's reflections.
        await session.say("alice", "my link: https://example.org", thread="reflection-3")
        assert "Reflections: answered 1 of 3 prompts" in await session.command(
            "alice", "/course me"
        )
    finally:
        await app.close()


# -- exactly once -------------------------------------------------------------------------------


async def test_restart_in_the_middle_of_a_run_sends_each_message_once(tmp_path):
    path = tmp_path / "restart.db"
    clock = FakeClock(datetime(2026, 9, 7, 7, tzinfo=UTC))
    app, session = await open_course(path, clock, reflections={"delivery": "dm"})
    session.gate, session.blocked = asyncio.Event(), asyncio.Event()
    clock.advance(timedelta(hours=1, minutes=5))  # past Mon 09:00 London
    run = asyncio.create_task(app.scheduler.advance_to(clock.now()))
    await asyncio.wait_for(session.blocked.wait(), 10)  # first DM out, the run is stalled
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    first = [s.to for s in dms(session, ":dm:")]
    assert len(first) == 1
    await app.close()
    # Restart on the same database, within the grace period: the run happens again.
    app2, session2 = await open_course(path, clock, reflections={"delivery": "dm"})
    try:
        second = [s.to for s in dms(session2, ":dm:")]
        assert sorted(first + second) == list(LEARNERS)  # each learner exactly once
        await session2.advance(timedelta(hours=3))
        assert sorted(first + [s.to for s in dms(session2, ":dm:")]) == list(LEARNERS)
        assert len(await prompt_rows(app2)) == 1
    finally:
        await app2.close()


async def test_two_engines_on_one_database_post_once(tmp_path):
    path = tmp_path / "two.db"
    clock = FakeClock(datetime(2026, 9, 7, 7, tzinfo=UTC))
    every3h = {"followup_schedule": "0 */3 * * *"}
    app1, s1 = await open_course(path, clock, reflections=every3h)
    app2, s2 = await open_course(path, clock, reflections=every3h)
    try:
        clock.advance(timedelta(days=6, hours=2))  # the post and the reminders fall due
        await asyncio.gather(
            app1.scheduler.advance_to(clock.now()), app2.scheduler.advance_to(clock.now())
        )
        assert len(posts(s1)) + len(posts(s2)) == 1
        reminders = [s.to for s in dms(s1, ":remind:") + dms(s2, ":remind:")]
        assert sorted(reminders) == list(LEARNERS)
        assert len(await prompt_rows(app1)) == 1
        claims = await app1.store.claims("reflections.post")
        assert [c["status"] for c in claims] == ["done"]
    finally:
        await app1.close()
        await app2.close()


# -- templates and privacy -------------------------------------------------------------------


def test_prompt_file_errors_name_the_file_and_prompt(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[[prompts]]\nweek = 1\nid = "a"\ntheme = "x"\ntitle = "T"\n')
    with pytest.raises(ConfigError, match=r"mine\.toml: prompt 1: missing text"):
        load_prompts(path)
    path.write_text(
        '[[prompts]]\nweek = 1\nid = "a"\ntheme = "x"\ntitle = "T"\ntext = "one"\n'
        '[[prompts]]\nweek = 1\nid = "b"\ntheme = "x"\ntitle = "T"\ntext = "two"\n'
    )
    with pytest.raises(ConfigError, match=r"mine\.toml: prompt 'b': week 1 already has"):
        load_prompts(path)
    path.write_text("[[prompts]\n")
    with pytest.raises(ConfigError, match=r"mine\.toml: not valid TOML"):
        load_prompts(path)


def test_template_errors_name_the_key_and_placeholder(tmp_path):
    from bot.reflection_templates import DEFAULT_TEMPLATES

    good = DEFAULT_TEMPLATES.read_text()
    path = tmp_path / "texts.toml"
    path.write_text(good.replace("Hi {name}, the reflection", "Hi {nmae}, the reflection"))
    with pytest.raises(ConfigError, match=r"texts\.toml: reminder\.text: unknown placeholder"):
        load_templates(path)
    path.write_text(good.replace('queue_empty = "', 'queue_emptyy = "'))
    with pytest.raises(ConfigError, match=r"\[close\] unknown key 'queue_emptyy'"):
        load_templates(path)


async def test_app_start_stops_on_a_broken_prompt_file(tmp_path):
    broken = tmp_path / "prompts.toml"
    broken.write_text("[[prompts]]\nweek = 0\n")
    settings = make_settings(tmp_path / "x.db", reflections={"prompts_file": str(broken)})
    with pytest.raises(ConfigError, match="prompts.toml: prompt 1: missing id"):
        await HearthApp.create(
            settings, clock=FakeClock(datetime(2026, 9, 7, tzinfo=UTC)), migrate=False
        )


async def test_forgetme_erases_reflections_and_goals(tmp_path):
    clock = FakeClock(datetime(2026, 9, 7, 7, tzinfo=UTC))
    app, session = await open_course(
        tmp_path / "f.db", clock, reflections={"followup_schedule": "0 */4 * * *"}
    )
    try:
        await session.advance(timedelta(hours=2))
        thread = posts(session)[0].message_id
        mine = await session.say("alice", "Alice here, hello!", thread=thread)
        await session.say("bob", "Welcome @alice", thread=thread, reply_to=mine)
        await session.command("alice", "/course goal reply to two classmates")
        await session.command("alice", "/course mirror on")
        await session.advance(timedelta(days=6))  # bob and carol get reminders
        assert "reflections" in await session.command("alice", "/course mydata")
        out = await session.command("alice", "/course forgetme confirm:yes")
        assert "erased" in out
        assert await app.store.rows_mentioning("alice") == []
        assert await ReflectionRepo(app.store).answered("console", 1) == {"bob"}
    finally:
        await app.close()


def test_parse_when_uses_the_course_timezone():
    from bot.cogs.reflections import parse_when

    assert parse_when("2026-09-14", "Europe/London") == datetime(2026, 9, 14, 8, tzinfo=UTC)
    assert parse_when("2026-12-14 09:30", "Europe/London") == datetime(
        2026, 12, 14, 9, 30, tzinfo=UTC
    )
    assert parse_when("2026-09-14T09:00+10:00", "Europe/London").hour == 23


async def test_without_a_start_date_the_sequence_advances_once_per_run(tmp_path):
    from bot.events import ScheduledTick

    clock = FakeClock(datetime(2026, 9, 7, 7, tzinfo=UTC))
    app, session = await open_course(
        tmp_path / "nostart.db",
        clock,
        course={"start_date": None},
        reflections={"followup_schedule": "0 */6 * * *"},
    )
    try:
        await session.advance(timedelta(hours=2))
        [claim] = await app.store.claims("reflections.post")
        first = (await prompt_rows(app))[0]
        tick = ScheduledTick(
            at=first["posted_at"],
            job="reflections.post",
            community_id="console",
            period=claim["period"],
        )
        again = await cog(app).run_weekly(tick)  # the same run, repeated by hand
        assert [a.dedupe_key for a in again] == ["reflection:console:1:post"]
        assert len(await prompt_rows(app)) == 1
        await session.advance(timedelta(days=7))
        assert [r["week"] for r in await prompt_rows(app)] == [0, 1]
    finally:
        await app.close()
