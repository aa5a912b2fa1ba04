"""Weekly summaries on a fake clock: the numbers of a constructed week, the public summary that
never ranks or names anyone but newcomers, skipped when nothing happened, the facilitator
report, the opt-in mirror with a band instead of a rank, the final summary at the end of the
course, exactly once across a restart mid-run and with two engines, and archiving a cohort."""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import MetaData

from bot.clock import FakeClock
from bot.reflection_templates import DEFAULT_TEMPLATES, load_templates
from bot.summary_content import (
    LearnerLine,
    ThreadInfo,
    WeekData,
    band_of,
    cohort_summary,
    learner_table,
    report_csv,
    safe_cell,
)
from storage import summary_queries as sq
from storage.reflections_queries import ReflectionRepo
from tests.conftest import BACKENDS
from tests.test_reflections import backend_storage, dms, open_course


@pytest.fixture(params=BACKENDS)
async def db_storage(request):
    async with backend_storage(request.param) as settings:
        yield settings


TEMPLATES = load_templates(DEFAULT_TEMPLATES)
KINDS = ("idea", "builds_on", "reference", "question", "support")


async def open_summaries(path, clock, *, learners=("alice", "bob", "carol", "dan"), **kw):
    summaries = {"enabled": True, **kw.pop("summaries", {})}
    reflections = {"followup_schedule": "0 */6 * * *", **kw.pop("reflections", {})}
    app, session = await open_course(
        path, clock, learners=learners, summaries=summaries, reflections=reflections, **kw
    )
    summaries_cog(app).charts = False  # wording and numbers; one test draws the charts
    return app, session


def summaries_cog(app):
    return next(c for c in app.engine.cogs if c.name == "summaries")


def cohort_posts(session):
    return [s for s in session.outbox if s.kind == "post" and s.to == "#general"]


# -- pure builders ----------------------------------------------------------------------------


def test_band_is_a_third_never_a_rank():
    cohort = [0, 1, 2, 3, 4, 5, 6, 7, 8]
    assert [band_of(v, cohort) for v in (0, 2, 3, 5, 6, 8)] == [
        "lower",
        "lower",
        "middle",
        "middle",
        "upper",
        "upper",
    ]
    assert band_of(0, [0, 0, 0, 0]) == "middle"  # everyone equal: nobody is singled out
    assert band_of(5, [5, 1]) is None  # two learners: a band would point at a person


def test_cohort_summary_text_for_a_constructed_week():
    since = datetime(2026, 9, 4, 16, tzinfo=UTC)
    data = WeekData(
        course="Learning to Learn",
        timezone="Europe/London",
        since=since,
        until=since + timedelta(days=7),
        by_kind={"idea": 4, "builds_on": 6, "reference": 2, "question": 3, "support": 1},
        contributions=11,
        last_by_kind={"idea": 5, "builds_on": 2, "reference": 0, "question": 1, "support": 0},
        last_contributions=7,
        learners=8,
        active_learners=5,
        threads=[ThreadInfo("#general, message 12", "general", 6, 4)],
        newcomers=["Zoë", "Yusuf"],
        prompt_title="Your own idea",
        reflections_answered=3,
        reflections_in_week=4,
        open_questions=1,
        open_question_links=["#help, message 30"],
    )
    rich = cohort_summary(data, TEMPLATES, root="course")
    text = rich.as_text()
    assert rich.title == "Learning to Learn: our week, Fri 4 Sep to Fri 11 Sep"
    assert "11 contributions from 5 of 8 learners this week" in text
    assert "11 in all, +4 on last week (7)." in text
    assert "- ideas: 4 (5)" in text and "- building on others: 6 (2)" in text
    assert "- #general, message 12: 6 messages from 4 people" in text
    assert "A warm welcome to Zoë and Yusuf!" in text
    assert '3 of 8 learners shared a reflection on "Your own idea"' in text
    assert "1 question from this week still waiting for an answer" in text
    assert "- #help, message 30" in text
    assert rich.image is None
    assert not data.is_empty()
    quiet = replace(data, contributions=0, newcomers=[], reflections_in_week=0)
    assert quiet.is_empty()


def test_a_cohort_of_one_reads_in_the_singular_and_old_templates_still_render(tmp_path):
    since = datetime(2026, 9, 4, 16, tzinfo=UTC)
    data = WeekData(
        course="Pilot",
        timezone="UTC",
        since=since,
        until=since + timedelta(days=7),
        by_kind={"idea": 1},
        contributions=1,
        last_by_kind={},
        last_contributions=0,
        learners=1,
        active_learners=1,
        threads=[],
        newcomers=[],
        prompt_title="First steps",
        reflections_answered=1,
        reflections_in_week=1,
        open_questions=0,
        open_question_links=[],
    )
    text = cohort_summary(data, TEMPLATES, root="course").as_text()
    assert "1 contribution from 1 of 1 learner this week" in text
    assert '1 of 1 learner shared a reflection on "First steps"' in text
    assert "learners" not in text
    # A copy of the templates written for the numeric {learners} keeps working.
    custom = tmp_path / "mine.toml"
    custom.write_text(
        DEFAULT_TEMPLATES.read_text().replace(
            "{active} of {all_learners} this week", "{active} of {learners} people this week"
        )
    )
    text = cohort_summary(replace(data, learners=3), load_templates(custom), root="course")
    assert "1 contribution from 1 of 3 people this week" in text.as_text()


def test_report_table_and_csv():
    line = LearnerLine(
        member_id="u1",
        name="=HYPERLINK(1)",
        contributions=3,
        words=40,
        by_kind={"idea": 1, "builds_on": 2, "reference": 0, "question": 1, "support": 0},
        reflections=1,
        pattern="one-to-one",
        quiet_state="active",
        nudges_sent=None,
        nudges_came_back=None,
        kudos_received=2,
        kudos_given=0,
    )
    table = learner_table([line], nudges=False)
    assert "nudged" not in table and "one-to-one" in table
    rows = list(csv.DictReader(io.StringIO(report_csv([line]))))
    assert rows[0]["display_name"] == "'=HYPERLINK(1)"  # not run as a formula
    assert rows[0]["builds_on"] == "2" and rows[0]["nudges_sent"] == ""
    assert safe_cell("alice") == "alice" and safe_cell("+1") == "'+1"


# -- the week, gathered from the database -------------------------------------------------------


async def build_week(session, clock):
    """Last week: alice and bob (members since 31 Aug). This week: carol joins, a thread, a
    reference, thanks, an unanswered question, and a reflection."""
    # Fri 28 Aug 17:00 London is the start of "last week" for the Fri 11 Sep summary.
    clock.set(datetime(2026, 9, 1, 9, tzinfo=UTC))
    await session.say("alice", "My plan for the course is to read every week.")
    await session.say("bob", "I want to practise retrieval daily.")
    clock.set(datetime(2026, 9, 7, 7, 30, tzinfo=UTC))
    await session.app.scheduler.advance_to(clock.now())
    await session.join("carol")
    clock.set(datetime(2026, 9, 7, 9, 30, tzinfo=UTC))
    await session.app.scheduler.advance_to(clock.now())  # the week-0 prompt
    opener = await session.say("alice", "Smith (2020) argues spacing beats cramming. Agree?")
    await session.reply("bob", opener, "Thanks alice, I found it useful too.")
    await session.reply("carol", opener, "I read it differently, see https://example.org/x")
    await session.say("carol", "How do I submit the first assignment?", channel="help")
    await session.say("alice", "Hello, Alice here, keen to learn.", thread="reflection-1")
    await session.say("fran", "Please introduce yourselves in the reflections thread.")


async def test_week_numbers_from_the_database(tmp_path, db_storage):
    clock = FakeClock(datetime(2026, 8, 31, 8, tzinfo=UTC))
    app, session = await open_summaries(
        tmp_path / "w.db", clock, learners=("alice", "bob", "dan"), storage=db_storage
    )
    try:
        await build_week(session, clock)
        until = datetime(2026, 9, 11, 16, tzinfo=UTC)  # Fri 17:00 London
        data = await summaries_cog(app).week_data("console", until - timedelta(days=7), until)
        assert data.contributions == 6  # five learner messages and fran's
        assert data.last_contributions == 2
        assert data.by_kind == {
            "idea": 3,  # alice's opener, carol's question, fran's announcement
            "builds_on": 3,  # bob's and carol's replies, alice's reflection in the thread
            "reference": 2,  # the citation, the link
            "question": 2,  # "Agree?", "How do I submit ...?"
            "support": 1,  # "Thanks"
        }
        assert data.last_by_kind["idea"] == 2
        assert (data.learners, data.active_learners) == (4, 3)  # dan said nothing
        assert data.newcomers == ["carol"]
        [thread] = data.threads
        assert (thread.messages, thread.participants) == (3, 3)
        assert thread.link == "#general, message 3"
        assert data.prompt_title.startswith("Introductions")
        assert (data.reflections_answered, data.reflections_in_week) == (1, 1)
        assert data.open_questions == 1  # carol's; alice's was answered
        assert data.open_question_links == ["#help, message 6"]
        # Local days from Friday 17:00 to Friday 17:00: eight (partly covered) days.
        assert [d.day for d, _k, _n in data.daily] == [4, 5, 6, 7, 8, 9, 10, 11]
        assert [n for _d, _k, n in data.daily] == [0, 0, 0, 6, 0, 0, 0, 0]
        # The weekly job posts it, with no learner named except the newcomer.
        clock.set(until - timedelta(minutes=1))
        await app.scheduler.advance_to(clock.now())
        before = len(session.outbox)
        clock.set(until + timedelta(minutes=1))
        await app.scheduler.advance_to(clock.now())
        [post] = cohort_posts(session)
        text = post.text
        assert "6 contributions from 3 of 4 learners" in text and "carol" in text
        for name in ("alice", "bob", "dan", "fran"):
            assert name not in text.lower()
        assert "rank" not in text.lower()
        assert post.action.dedupe_key == "summary:console:2026-09-11T16:00Z:cohort"
        [report] = dms(session, ":report:", since=before)
        assert report.to == "fran"
        assert "Facilitator report" in report.text and "dan" in report.text
        assert "## Learners" in report.text and "## Network" in report.text
        [attachment] = report.action.files
        rows = list(csv.DictReader(io.StringIO(attachment.data.decode())))
        by_id = {r["member_id"]: r for r in rows}
        assert set(by_id) == {"alice", "bob", "carol", "dan"}
        assert by_id["alice"]["reflections"] == "1" and by_id["dan"]["contributions"] == "0"
        assert by_id["dan"]["quiet_state"] == "new"  # joined, never posted
    finally:
        await app.close()


async def test_summary_is_skipped_in_an_empty_week(tmp_path):
    clock = FakeClock(datetime(2026, 8, 24, 8, tzinfo=UTC))
    app, session = await open_summaries(tmp_path / "e.db", clock)
    try:
        clock.set(datetime(2026, 9, 11, 17, tzinfo=UTC))  # joined long before this week
        await app.scheduler.advance_to(clock.now())
        assert cohort_posts(session) == []
        # The facilitator still hears about a silent week.
        [report] = dms(session, ":report:", "fran")
        assert "Joined but not posted yet: alice, bob, carol and dan" in report.text
        assert "Nothing happened in the last 7 days" in await session.command(
            "fran", "/course summary now"
        )
    finally:
        await app.close()


async def test_summary_now_posts_with_a_chart_and_reports_privately(tmp_path):
    clock = FakeClock(datetime(2026, 9, 7, 8, tzinfo=UTC))
    app, session = await open_summaries(tmp_path / "n.db", clock)
    summaries_cog(app).charts = True
    try:
        first = await session.say("alice", "What is spaced repetition?")
        await session.reply("bob", first, "Reviewing at growing intervals, thanks for asking")
        refused = await session.command("alice", "/course summary now")
        assert "for facilitators only" in refused
        out = await session.command("fran", "/course summary now")
        assert "Posted the summary in #general" in out
        [post] = cohort_posts(session)
        assert post.action.rich.image.data[:8] == b"\x89PNG\r\n\x1a\n"
        report = session.outbox[-1]
        assert report.kind == "reply" and report.action.rich.image.filename == "network.png"
        assert report.action.files[0].filename.endswith(".csv")
        preview = await session.command("fran", "/course summary now preview:on")
        assert "Preview" in preview and len(cohort_posts(session)) == 1
    finally:
        await app.close()


async def test_the_weekly_summary_carries_the_days_chart_drawn_only_when_posted(
    tmp_path, monkeypatch
):
    from bot.cogs import summaries as summaries_module

    clock = FakeClock(datetime(2026, 9, 7, 8, tzinfo=UTC))
    app, session = await open_summaries(tmp_path / "c.db", clock)
    cog = summaries_cog(app)
    cog.charts = True
    drawn: list[list[int]] = []
    real_chart = summaries_module.weekly_chart

    def recording_chart(daily):
        drawn.append([n for _d, _k, n in daily])
        return real_chart(daily)

    monkeypatch.setattr(summaries_module, "weekly_chart", recording_chart)
    try:
        await session.say("alice", "A first idea for the week")
        await session.say("bob", "And a second one")
        until = datetime(2026, 9, 11, 16, tzinfo=UTC)
        data = await cog.week_data("console", until - timedelta(days=7), until)
        assert data.chart is None and drawn == []  # numbers alone draw nothing
        clock.set(datetime(2026, 9, 11, 16, 30, tzinfo=UTC))
        await app.scheduler.advance_to(clock.now())
        [post] = cohort_posts(session)
        assert post.action.rich.image.data[:8] == b"\x89PNG\r\n\x1a\n"
        assert drawn == [[0, 0, 0, 2, 0, 0, 0, 0]]  # the week's local days, drawn once
    finally:
        await app.close()


# -- the mirror ---------------------------------------------------------------------------------


async def test_mirror_is_opt_in_private_and_relative(tmp_path):
    clock = FakeClock(datetime(2026, 9, 7, 8, tzinfo=UTC))
    app, session = await open_summaries(tmp_path / "m.db", clock)
    try:
        on = await session.command("alice", "/course mirror on")
        assert "mirror is on" in on
        # In words, not as the cron expression of the config.
        assert "It comes every Friday at 18:00 (" in on and "* *" not in on
        assert "Goal set: answer two questions a week" in await session.command(
            "alice", "/course goal answer two questions a week"
        )
        assert "Your goal: answer two questions" in await session.command("alice", "/course goal")
        await session.command("carol", "/course mirror on")
        await session.command("carol", "/course mirror off")
        for text in ("One idea", "Another idea", "A third idea"):
            await session.say("alice", text)
        await session.say("bob", "Hello")
        await session.say("carol", "Hi there")
        await session.say("carol", "And more")
        me = await session.command("alice", "/course me")
        assert "Weekly mirror: on (a personal goal is set)" in me
        clock.set(datetime(2026, 9, 11, 17, 5, tzinfo=UTC))  # Fri 18:00 London has passed
        await app.scheduler.advance_to(clock.now())
        mirrors = dms(session, "mirror:")
        assert [m.to for m in mirrors] == ["alice"]
        text = mirrors[0].text
        assert "This week you made 3 contributions" in text
        assert "- ideas: 3" in text
        assert "upper third" in text  # 3 vs 1, 2, 0
        assert "Your goal: answer two questions a week" in text
        for other in ("bob", "carol", "dan"):
            assert other not in text
        assert "rank" not in text.replace("never a rank", "")
    finally:
        await app.close()


# -- course end ---------------------------------------------------------------------------------


async def test_final_summary_once_at_the_end_of_the_course(tmp_path):
    clock = FakeClock(datetime(2026, 9, 7, 8, tzinfo=UTC))
    app, session = await open_summaries(
        tmp_path / "end.db", clock, course={"end_date": "2026-09-16"}
    )
    try:
        await session.say("alice", "Thanks everyone for a great course!")
        await session.advance(timedelta(days=9, hours=9))  # Wed 16 Sep 17:00 London
        finals = [p for p in cohort_posts(session) if "course in review" in p.text]
        assert len(finals) == 1
        assert "Over 2 weeks, 4 learners made 1 contribution" in finals[0].text
        await session.advance(timedelta(days=3))
        assert len([p for p in cohort_posts(session) if "course in review" in p.text]) == 1
        # After the end date no weekly summary goes out.
        weekly = [p for p in cohort_posts(session) if "our week" in p.text]
        assert len(weekly) == 1  # Fri 11 Sep only; Fri 18 Sep is after the end
    finally:
        await app.close()


# -- exactly once -------------------------------------------------------------------------------


async def test_mirror_run_cut_off_mid_delivery_finishes_once_after_restart(tmp_path):
    path = tmp_path / "restart.db"
    clock = FakeClock(datetime(2026, 9, 7, 8, tzinfo=UTC))
    app, session = await open_summaries(path, clock)
    for name in ("alice", "bob", "carol"):
        await session.command(name, "/course mirror on")
        await session.say(name, f"{name} says hello")
    clock.set(datetime(2026, 9, 11, 16, 30, tzinfo=UTC))
    await app.scheduler.advance_to(clock.now())
    session.gate, session.blocked = asyncio.Event(), asyncio.Event()
    clock.set(datetime(2026, 9, 11, 17, 5, tzinfo=UTC))  # the mirror run falls due
    run = asyncio.create_task(app.scheduler.advance_to(clock.now()))
    await asyncio.wait_for(session.blocked.wait(), 10)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    first = [s.to for s in dms(session, "mirror:")]
    assert len(first) == 1
    await app.close()
    app2, session2 = await open_summaries(path, clock)
    try:
        second = [s.to for s in dms(session2, "mirror:")]
        assert sorted(first + second) == ["alice", "bob", "carol"]
        clock.advance(timedelta(hours=1))
        await app2.scheduler.advance_to(clock.now())
        again = [s.to for s in dms(session2, "mirror:")]
        assert sorted(first + again) == ["alice", "bob", "carol"]
    finally:
        await app2.close()


async def test_two_engines_send_the_summary_and_report_once(tmp_path):
    path = tmp_path / "two.db"
    clock = FakeClock(datetime(2026, 9, 7, 8, tzinfo=UTC))
    app1, s1 = await open_summaries(path, clock)
    app2, s2 = await open_summaries(path, clock)
    try:
        await s1.say("alice", "A first idea for the week")
        clock.set(datetime(2026, 9, 11, 16, 30, tzinfo=UTC))
        await asyncio.gather(
            app1.scheduler.advance_to(clock.now()), app2.scheduler.advance_to(clock.now())
        )
        clock.set(datetime(2026, 9, 11, 16, 1, tzinfo=UTC) + timedelta(hours=1))
        await asyncio.gather(
            app1.scheduler.advance_to(clock.now()), app2.scheduler.advance_to(clock.now())
        )
        summaries = [s for s in s1.outbox + s2.outbox if s.kind == "post" and s.to == "#general"]
        reports = dms(s1, ":report:") + dms(s2, ":report:")
        assert len(summaries) == 1 and len(reports) == 1
    finally:
        await app1.close()
        await app2.close()


# -- nudges, read defensively -------------------------------------------------------------------


async def test_report_shows_nudges_and_whether_learners_came_back(tmp_path):
    from storage.schema import metadata

    md = metadata()
    if "nudge" not in md.tables:
        pytest.skip("the nudges capability is not part of this installation")
    clock = FakeClock(datetime(2026, 9, 7, 8, tzinfo=UTC))
    app, session = await open_summaries(tmp_path / "nudge.db", clock)
    try:
        nudge = md.tables["nudge"]
        sent = datetime(2026, 9, 8, 10, tzinfo=UTC)
        common = {"community_id": "console", "step": 1, "created_at": sent, "due_at": sent}
        async with app.store.engine.begin() as conn:
            for member, status, returned in (
                ("dan", "sent", sent + timedelta(days=1)),
                ("bob", "sent", None),
                ("carol", "holdout", None),  # the hold-out group: nothing was sent
            ):
                await conn.execute(
                    nudge.insert().values(
                        **common,
                        member_id=member,
                        episode="none",
                        status=status,
                        holdout=status == "holdout",
                        sent_at=sent,
                        returned_at=returned,
                        outcome="returned" if returned else "",
                    )
                )
        until = datetime(2026, 9, 11, 16, tzinfo=UTC)
        since = until - timedelta(days=7)
        counts = await sq.nudge_counts(app.store, md, "console", since, until)
        assert counts == {"dan": (1, 1), "bob": (1, 0)}
        assert await sq.nudge_counts(app.store, MetaData(), "console", since, until) is None
        cog = summaries_cog(app)
        week = await cog.week_data("console", since, until)
        data, _a = await cog.report_data("console", since, until, week)
        lines = {x.member_id: x for x in data.learners}
        assert (lines["dan"].nudges_sent, lines["dan"].nudges_came_back) == (1, 1)
        assert (lines["carol"].nudges_sent, lines["carol"].nudges_came_back) == (0, 0)
        assert data.nudges_available and "nudged" in learner_table(data.learners, nudges=True)
    finally:
        await app.close()


# -- archive ------------------------------------------------------------------------------------


async def test_archive_closes_the_cohort_and_starts_a_fresh_one(tmp_path, db_storage):
    clock = FakeClock(datetime(2026, 9, 7, 7, tzinfo=UTC))
    app, session = await open_summaries(
        tmp_path / "a.db", clock, course={"end_date": "2026-12-04"}, storage=db_storage
    )
    try:
        await session.advance(timedelta(hours=2))  # week 0 prompt
        await session.say("alice", "Alice here", thread="reflection-1")
        first = await session.say("bob", "An idea from cohort one")
        await session.reply("carol", first, "Thanks @bob")
        await session.command("alice", "/course goal finish strong")
        await session.command("alice", "/course tracking off")
        assert "This closes cohort 1" in await session.command("fran", "/course archive")
        assert "for facilitators only" in await session.command("bob", "/course archive")
        clock.advance(timedelta(days=2))
        out = await session.command("fran", "/course archive confirm:yes")
        assert "Cohort 1 is archived as `console/cohort-1`" in out
        assert "(3 contributions, 1 reflection, 5 members)" in out
        assert "Cohort 2 starts 2026-09-09 and ends 2026-12-06" in out
        store = app.store
        community = await store.get_community("console")
        assert community["cohort"] == 2 and community["archived_at"] is None
        settings = await store.community_settings("console")
        assert settings["start_date"] == "2026-09-09" and settings["end_date"] == "2026-12-06"
        archived = await store.get_community("console/cohort-1")
        assert archived["archived_at"] == clock.now() and archived["cohort"] == 1
        # Old data stays queryable under the archive id; the live numbers start at zero.
        assert (await store.kind_counts("console/cohort-1"))[0] == 3
        assert (await store.kind_counts("console"))[0] == 0
        assert await ReflectionRepo(store).answered("console/cohort-1", 1) == {"alice"}
        assert [c["id"] for c in await store.communities()] == ["console"]
        # Facilitators and preferences stay; learners come back when they next post.
        assert [m["member_id"] for m in await store.members("console")] == ["fran"]
        assert await store.get_pref("console", "alice", "tracking") == "off"
        await session.say("bob", "Hello cohort two")
        assert [m["member_id"] for m in await store.members("console")] == ["bob", "fran"]
        assert (await store.kind_counts("console"))[0] == 1
        # The new cohort has its own prompts: week 0 again, on its start week.
        assert "cohort 2" in await session.command("fran", "/course prompt list")
        # The archived cohort can still be exported.
        old = await session.command("fran", "/course export cohort:1")
        assert "cohort 1, 2026-09-07 to 2026-09-09" in old
        new = await session.command("fran", "/course export")
        assert "cohort 2, 2026-09-09 to 2026-09-09" in new
        assert "no archived cohort 7" in await session.command("fran", "/course export cohort:7")
        # Forgetting a member erases them from the archived cohorts too.
        await session.command("bob", "/course forgetme confirm:yes")
        assert await store.rows_mentioning("bob") == []
        assert (await store.kind_counts("console/cohort-1"))[0] == 2
    finally:
        await app.close()


def test_local_day_starts_follow_dst():
    from bot.export import day_starts

    starts = day_starts(date(2026, 10, 24), date(2026, 10, 26), "Europe/London")
    assert [s.hour for s in starts] == [23, 23, 0]  # BST midnight, BST, then GMT
