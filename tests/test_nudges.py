"""Nudges on the console adapter with a fake clock: each quiet state climbs the ladder (step 1,
step 2, hand-off, then nothing until they return); a return resets it; opted-out, snoozed,
facilitator, bot and hold-out members get nothing; quiet hours in the learner's timezone across
a DST change; holidays; two engines on one database; the preview and its Confirm button;
unanswered posts alert once; the facilitator-share note; the effect report on a constructed
cohort; templates checked at start; and erasure."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bot.adapters.console import ConsoleSession
from bot.app import HearthApp
from bot.clock import FakeClock
from bot.errors import ConfigError
from bot.nudge_templates import DEFAULT_NUDGE_TEMPLATES, load_nudge_templates
from bot.nudging import (
    Exposure,
    Hook,
    NudgeRow,
    choose_hook,
    decide,
    effect_report,
    in_holdout,
    newcombe_difference,
    report_lines,
    wilson,
)
from bot.quiet import quiet_states
from storage.nudges_queries import NudgeRepo
from tests.conftest import make_settings, sent_statements

#: Monday 10:00 in London (BST), the default round time.
START = datetime(2026, 9, 7, 9, tzinfo=UTC)
T0 = START - timedelta(days=27)
CID = "console"


async def open_course(
    path, clock, *, learners=(), course=None, nudges=None, reflections=None, **sections
):
    settings = make_settings(
        path,
        course={"timezone": "Europe/London", "facilitator_ids": ["fran"], **(course or {})},
        nudges={"holdout_fraction": 0.0, **(nudges or {})},
        reflections=reflections or {"enabled": False},
        summaries={"enabled": False},
        **sections,
    )
    app = await HearthApp.create(settings, clock=clock, migrate=False)
    session = await ConsoleSession.open(app)
    await session.join("fran", facilitator=True)
    for name in learners:
        await session.join(name)
    return app, session


def dms(session, name=None):
    return [s for s in session.outbox if s.kind == "dm" and (name is None or s.to == name)]


async def rows(app, member=None):
    return await NudgeRepo(app.store).nudges(CID, member_id=member)


async def chatter(session, tag: str) -> None:
    """A day of conversation among the active learners: an open question in #help and a
    live two-person thread in #general."""
    await session.say(
        "alice", f"How do you all plan study time around work? ({tag})", channel="help"
    )
    root = await session.say("bob", f"An idea about feedback loops ({tag}).")
    await session.reply("carol", root, "Good point, I had the same experience.")
    await session.react("alice", root)


async def round_at(session, clock, when: datetime):
    clock.set(when)
    return await session.tick("nudges.round")


# -- the ladder, per quiet state ---------------------------------------------------------------


async def four_states(tmp_path, clock, **kw):
    """erin is new, dan quiet, gina isolated, harry dropping at START."""
    clock.set(T0)
    app, s = await open_course(
        tmp_path / "ladder.db",
        clock,
        learners=("alice", "bob", "carol", "dan", "erin", "gina", "harry"),
        **kw,
    )
    clock.set(T0 + timedelta(days=2))
    await s.say("dan", "Dan here, hello everyone.")
    harry_posts = []
    for day in range(1, 11):  # ten posts before the analytics window: a weekly baseline of 3+
        clock.set(T0 + timedelta(days=day, hours=3))
        harry_posts.append(await s.say("harry", f"Harry's note number {day} on the reading."))
    clock.set(START - timedelta(days=12))
    await s.reply("bob", harry_posts[-1], "Nice note, Harry.")
    clock.set(START - timedelta(days=3))
    anchor = await s.say("bob", "Anyone else enjoying chapter 4.")
    await s.reply("harry", anchor, "Yes, it was good.")  # one post this week, with an edge
    for hours in (1, 2):
        clock.set(START - timedelta(days=3, hours=-hours))
        await s.say("gina", f"My own thought number {hours}.", channel="readings")
    clock.set(START - timedelta(hours=1))
    await chatter(s, "day 0")
    return app, s


async def test_each_quiet_state_climbs_the_ladder_then_hands_off(tmp_path, clock):
    app, s = await four_states(tmp_path, clock)
    try:
        states = await quiet_states(app.store, CID, START, app.settings.analytics)
        assert {m: states[m].state for m in ("dan", "erin", "gina", "harry")} == {
            "dan": "quiet",
            "erin": "new",
            "gina": "isolated",
            "harry": "dropping",
        }
        assert states["alice"].state == "active"

        await round_at(s, clock, START)
        step1 = {r["member_id"]: r for r in await rows(app)}
        assert set(step1) == {"dan", "erin", "gina", "harry"}
        assert {m: (r["step"], r["hook_kind"], r["status"]) for m, r in step1.items()} == {
            "dan": (1, "thread", "sent"),  # quiet: a live thread first
            "erin": (1, "question", "sent"),  # new: a peer's open question first
            "gina": (1, "question", "sent"),  # isolated: answering someone builds on others
            "harry": (1, "thread", "sent"),  # dropping: a live thread
        }
        assert [d.to for d in dms(s)] == ["dan", "erin", "gina", "harry"]
        erin = dms(s, "erin")[0].text
        assert "alice" in erin and "in #help" in erin  # names the peer and the message
        assert "/course nudges off" in erin
        for d in dms(s):
            lowered = d.text.lower()
            assert "community needs you" not in lowered and "miss you" not in lowered

        # Days 1-3: still absent, but step 2 waits for step2_after_days (4).
        for day in (1, 2, 3):
            clock.set(START + timedelta(days=day, hours=-1))
            await chatter(s, f"day {day}")
            await round_at(s, clock, START + timedelta(days=day))
        assert len(dms(s)) == 4

        clock.set(START + timedelta(days=4, hours=-1))
        await chatter(s, "day 4")
        await round_at(s, clock, START + timedelta(days=4))
        step2 = {r["member_id"]: r for r in await rows(app) if r["step"] == 2}
        assert {m: r["hook_kind"] for m, r in step2.items()} == {
            "dan": "question",  # no peer replied to dan in the last three weeks
            "erin": "question",
            "gina": "question",
            "harry": "peer",  # bob replied to harry: step 2 names him
        }
        # Step 2 names something new where it can.
        assert step2["erin"]["hook_ref"] != step1["erin"]["hook_ref"]
        assert "bob" in dms(s, "harry")[-1].text
        assert len(dms(s)) == 8

        # Four more days without a word: step 3 hands them to the facilitator, privately.
        clock.set(START + timedelta(days=8, hours=-1))
        await chatter(s, "day 8")
        await round_at(s, clock, START + timedelta(days=8))
        handoff = dms(s, "fran")
        assert len(handoff) == 1
        for name in ("dan", "erin", "gina", "harry"):
            assert name in handoff[0].text
        assert "did not answer two nudges" in handoff[0].text
        assert len([d for d in dms(s) if d.to != "fran"]) == 8
        out = await s.command("fran", "/course quiet")
        assert "handed off" in out
        assert "Nudge rounds run every day at 10:00 (" in out

        # Nothing more until they return.
        for day in (9, 12, 16):
            clock.set(START + timedelta(days=day, hours=-1))
            await chatter(s, f"day {day}")
            await round_at(s, clock, START + timedelta(days=day))
        assert len(dms(s)) == 9

        # dan returns: the ladder resets; quiet again a week later, step 1 again.
        clock.set(START + timedelta(days=16, hours=2))
        await s.say("dan", "Back after a busy fortnight!")
        clock.set(START + timedelta(days=24, hours=-1))
        await chatter(s, "day 24")
        await round_at(s, clock, START + timedelta(days=24))
        dan = await rows(app, "dan")
        assert [r["step"] for r in dan] == [1, 2, 1]
        assert dan[1]["outcome"] == "handed_off" and dan[1]["returned_at"] is not None
        assert len(dms(s, "dan")) == 3
    finally:
        await app.close()


async def test_a_reply_after_step_one_stops_the_ladder(tmp_path, clock):
    app, s = await four_states(tmp_path, clock)
    try:
        await round_at(s, clock, START)
        assert len(dms(s, "dan")) == 1
        # dan answers the thread the next day: that is a return, recorded on the nudge.
        clock.set(START + timedelta(days=1))
        thread = (await rows(app, "dan"))[0]["hook_ref"]
        await s.reply("dan", thread, "Interesting thread, here is my take.")
        dan = (await rows(app, "dan"))[0]
        assert dan["returned_at"] == START + timedelta(days=1)
        assert dan["outcome"] == "returned"
        for day in range(1, 7):
            clock.set(START + timedelta(days=day, hours=-1))
            await chatter(s, f"day {day}")
            await round_at(s, clock, START + timedelta(days=day))
        assert len(dms(s, "dan")) == 1  # nothing more
        assert [r["step"] for r in await rows(app, "dan")] == [1]
        assert len(dms(s, "erin")) == 2  # the others continue
    finally:
        await app.close()


async def test_the_open_reflection_prompt_is_a_hook(tmp_path, clock):
    clock.set(START - timedelta(days=3))
    app, s = await open_course(
        tmp_path / "prompt.db",
        clock,
        learners=("alice", "bob"),
        course={"start_date": "2026-09-07", "reflection_channel": "reflections"},
        reflections={"enabled": True},
    )
    try:
        clock.set(START)
        await s.tick("reflections.post")  # week 0's prompt, as a thread in #reflections
        [post] = [o for o in s.outbox if o.kind == "post"]
        await round_at(s, clock, START + timedelta(minutes=5))
        nudged = await rows(app)
        assert {r["member_id"]: r["hook_kind"] for r in nudged} == {
            "alice": "reflection",
            "bob": "reflection",
        }
        text = dms(s, "alice")[0].text
        assert f"message #{post.message_id} in #reflections" in text
        prompt = await next(c for c in app.engine.cogs if c.name == "reflections").current_prompt(
            CID
        )
        assert f'"{prompt["title"]}"' in text
        # Someone who answered the prompt is not pointed at it again.
        clock.set(START + timedelta(hours=1))
        await s.say("bob", "My reflection: I learn best by explaining.", thread=post.message_id)
        cog = next(c for c in app.engine.cogs if c.name == "nudges")
        data = await cog._hook_data(
            await app.store.get_community(CID),
            clock.now(),
            {"alice", "bob"},
            {"fran"},
            {m["member_id"]: m for m in await app.store.members(CID)},
        )
        assert [h.kind for h in cog._hooks_for("bob", data)] == []
        assert [h.kind for h in cog._hooks_for("alice", data)] == ["reflection"]
    finally:
        await app.close()


# -- who never gets a nudge ---------------------------------------------------------------------


async def test_opted_out_snoozed_facilitator_bot_and_holdout_get_nothing(tmp_path, clock):
    seed = "test-seed"
    names = [f"learner{i}" for i in range(12)]
    held = [n for n in names if in_holdout(seed, CID, n, 0.5)]
    olive, sam, *nudged = [n for n in names if n not in held]  # opts out, snoozes, the rest
    assert held and nudged
    clock.set(T0)
    app, s = await open_course(
        tmp_path / "who.db",
        clock,
        learners=("alice", "bob", "carol", *names),
        nudges={"holdout_fraction": 0.5, "holdout_seed": seed},
    )
    try:
        await app.store.upsert_member(CID, "robo", is_bot=True, display_name="robo", now=T0)
        await s.command("fran", "/course setup facilitator:@carol")
        unreachable = nudged.pop()
        await app.store.set_member_fields(CID, unreachable, reachable=False)
        await s.command(olive, "/course nudges off")
        out = await s.command(sam, "/course nudges snooze until:2026-09-20")
        assert "paused until Sun 20 Sep 2026" in out
        clock.set(START - timedelta(hours=1))
        await chatter(s, "d0")
        await round_at(s, clock, START)
        got = {d.to for d in dms(s)}
        assert got == set(nudged)
        assert not got & {olive, sam, unreachable, "fran", "carol", "robo", *held}
        holdouts = [r for r in await rows(app) if r["status"] == "holdout"]
        assert sorted(r["member_id"] for r in holdouts) == sorted(held)
        assert all(r["text"] is None for r in holdouts)
        quiet = await s.command("fran", "/course quiet")
        assert f"- {olive}: new" in quiet and "opted out" in quiet
        assert "snoozed until 2026-09-20" in quiet and "unreachable" in quiet
        assert "hold-out group" in quiet
        assert "robo" not in quiet and "carol" not in quiet

        # The snooze ends on its date; switching nudges on again works at once.
        await s.command(olive, "/course nudges on")
        clock.set(datetime(2026, 9, 20, 8, tzinfo=UTC))
        await chatter(s, "d13")
        await round_at(s, clock, datetime(2026, 9, 20, 9, tzinfo=UTC))
        assert len(dms(s, olive)) == 1 and len(dms(s, sam)) == 1
        assert not {d.to for d in dms(s)} & {"fran", "carol", "robo", *held}
    finally:
        await app.close()


async def test_snooze_and_timezone_commands_check_their_input(tmp_path, clock):
    app, s = await open_course(tmp_path / "cmd.db", clock, learners=("alice",))
    try:
        out = await s.command("alice", "/course nudges snooze until:2026-09-01")
        assert "after today" in out
        out = await s.command("alice", "/course nudges snooze until:soon")
        assert "expected a date like 2027-01-10" in out
        out = await s.command("alice", "/course timezone Mars/Olympus")
        assert "unknown timezone" in out
        out = await s.command("alice", "/course timezone Europe/Berlin")
        assert "Europe/Berlin" in out
        assert await app.store.get_pref(CID, "alice", "timezone") == "Europe/Berlin"
        assert "Your timezone: Europe/Berlin" in await s.command("alice", "/course timezone")
        assert "needs a subcommand" in await s.command("alice", "/course nudges")
        assert "facilitators only" in await s.command("alice", "/course nudges report")
        assert "facilitators only" in await s.command("alice", "/course quiet")
        assert "Nudges: on" in await s.command("alice", "/course me")
        await s.command("alice", "/course nudges off")
        assert "Nudges: off" in await s.command("alice", "/course me")
    finally:
        await app.close()


# -- quiet hours, time zones, DST, holidays ----------------------------------------------------


async def test_quiet_hours_in_the_learners_timezone_hold_the_nudge(tmp_path, clock):
    app, s = await four_states(tmp_path, clock)
    try:
        await s.command("dan", "/course timezone America/Los_Angeles")  # 02:00 at the round
        await s.command("erin", "/course timezone Asia/Tokyo")  # 18:00 at the round
        await s.command("gina", "/course timezone America/Los_Angeles")
        await app.scheduler.start()
        await s.advance(timedelta(hours=1, minutes=30))  # past the 10:00 London round
        assert len(dms(s, "erin")) == 1
        assert dms(s, "dan") == []
        held = (await rows(app, "dan"))[0]
        assert held["status"] == "scheduled"
        # 08:00 in Los Angeles (PDT, UTC-7) is 15:00 UTC.
        assert held["due_at"] == datetime(2026, 9, 7, 15, tzinfo=UTC)
        preview = await s.command("fran", "/course quiet")
        assert "held back by quiet hours" in preview
        assert (await rows(app, "gina"))[0]["status"] == "scheduled"
        await s.say("gina", "Up early, reading chapter 5.")  # back before her nudge went out
        gina = (await rows(app, "gina"))[0]
        assert (gina["status"], gina["outcome"]) == ("cancelled", "came back first")
        await s.advance(timedelta(hours=4))  # 13:30 UTC: still night in LA
        assert dms(s, "dan") == []
        await s.advance(timedelta(hours=2))  # the 15:20 follow-up sends it
        assert len(dms(s, "dan")) == 1 and dms(s, "gina") == []
        assert (await rows(app, "dan"))[0]["status"] == "sent"
        await s.advance(timedelta(hours=3))
        assert len(dms(s, "dan")) == 1
    finally:
        await app.close()


@pytest.mark.parametrize(
    ("day", "sent_at_noon"),
    [
        (datetime(2026, 10, 30, 12, tzinfo=UTC), True),  # 08:00 EDT: just outside quiet hours
        (datetime(2026, 11, 2, 12, tzinfo=UTC), False),  # 07:00 EST after the change: held
    ],
)
async def test_quiet_hours_follow_the_learners_dst_change(tmp_path, day, sent_at_noon):
    clock = FakeClock(day - timedelta(days=10))
    app, s = await open_course(
        tmp_path / "dst.db",
        clock,
        learners=("alice", "bob", "carol", "nora"),
        course={"timezone": "UTC"},
        nudges={"schedule": "0 12 * * *"},
    )
    try:
        await s.command("nora", "/course timezone America/New_York")
        await s.say("nora", "Hello from New York.")
        clock.set(day - timedelta(hours=2))
        await chatter(s, "x")
        await round_at(s, clock, day)
        row = (await rows(app, "nora"))[0]
        if sent_at_noon:
            assert row["status"] == "sent" and len(dms(s, "nora")) == 1
        else:
            assert row["status"] == "scheduled" and dms(s, "nora") == []
            assert row["due_at"] == datetime(2026, 11, 2, 13, tzinfo=UTC)  # 08:00 EST
            clock.set(datetime(2026, 11, 2, 13, 20, tzinfo=UTC))
            await s.tick("nudges.followup")
            assert len(dms(s, "nora")) == 1
    finally:
        await app.close()


async def test_no_round_on_a_holiday_or_outside_the_course(tmp_path, clock):
    app, s = await four_states(
        tmp_path,
        clock,
        course={"holidays": ["2026-09-07"], "start_date": "2026-08-01", "end_date": "2026-09-10"},
    )
    try:
        await round_at(s, clock, START)
        assert dms(s) == [] and await rows(app) == []
        preview = await s.command("fran", "/course nudge")
        assert "Nobody to nudge right now" in preview and "holiday" in preview
        clock.set(START + timedelta(days=1, hours=-1))
        await chatter(s, "d1")
        await round_at(s, clock, START + timedelta(days=1))
        assert len(dms(s)) == 4
        clock.set(START + timedelta(days=6, hours=-1))  # after the end date
        await chatter(s, "d6")
        await round_at(s, clock, START + timedelta(days=6))
        assert len(dms(s)) == 4
    finally:
        await app.close()


# -- exactly once -------------------------------------------------------------------------------


async def test_two_engines_on_one_database_send_each_nudge_once(tmp_path, clock):
    app1, s1 = await four_states(tmp_path, clock)
    app2 = await HearthApp.create(app1.settings, clock=clock, migrate=False)
    s2 = await ConsoleSession.open(app2)
    try:
        # Both schedulers fire the round: the claim lets one run it.
        clock.set(START - timedelta(minutes=5))
        await app1.scheduler.start()
        await app2.scheduler.start()
        clock.set(START + timedelta(minutes=30))
        await asyncio.gather(
            app1.scheduler.advance_to(clock.now()), app2.scheduler.advance_to(clock.now())
        )
        first = sorted(d.to for d in dms(s1) + dms(s2) if d.to != "fran")
        assert first == ["dan", "erin", "gina", "harry"]
        # Even two runs that both get past the claim (different periods) record and send
        # each step once.
        clock.set(START + timedelta(days=4, hours=-1))
        await chatter(s1, "d4")
        clock.set(START + timedelta(days=4))
        await asyncio.gather(
            app1.scheduler.fire("nudges.round", CID, clock.now(), period="run-a"),
            app2.scheduler.fire("nudges.round", CID, clock.now(), period="run-b"),
        )
        all_dms = sorted(d.to for d in dms(s1) + dms(s2) if d.to != "fran")
        assert all_dms == sorted(first * 2)
        assert len(await rows(app1)) == 8
    finally:
        await app2.close()
        await app1.close()


async def test_preview_then_confirm_sends_once(tmp_path, clock):
    app, s = await four_states(tmp_path, clock)
    try:
        clock.set(START - timedelta(minutes=30))
        preview = await s.command("fran", "/course nudge")
        assert "nothing has been sent" in preview
        for name in ("dan", "erin", "gina", "harry"):
            assert name in preview
        assert dms(s) == [] and await rows(app) == []
        button = next(b for b in s.outbox[-1].action.buttons if b.action_id == "nudges:confirm")
        assert "Only facilitators" in await s.press("alice", "nudges:confirm", button.value)
        assert dms(s) == []
        out = await s.press("fran", "nudges:confirm", button.value)
        assert "Sent 4 nudges" in out
        assert len(dms(s)) == 4
        again = await s.press("fran", "nudges:confirm", button.value)
        assert "nothing was sent" in again
        assert len(dms(s)) == 4
        # The daily round the same morning adds nothing.
        await round_at(s, clock, START)
        assert len(dms(s)) == 4
    finally:
        await app.close()


# -- facilitator alerts -------------------------------------------------------------------------


async def test_an_unanswered_question_alerts_once(tmp_path, clock):
    app, s = await open_course(tmp_path / "alert.db", clock, learners=("alice", "bob", "carol"))
    try:
        await app.scheduler.start()
        hello = await s.say("bob", "Hello everyone, I'm Bob.")  # a first post, answered below
        q = await s.say("alice", "Does anyone know where the rubric is?", channel="help")
        other = await s.say("carol", "Why is week 2 so hard?", channel="help")
        await s.reply("bob", other, "I think it's the reading load.")
        await s.reply("alice", hello, "Welcome Bob!")
        await s.advance(timedelta(hours=23))
        assert dms(s, "fran") == []
        await s.advance(timedelta(hours=2))
        alerts = dms(s, "fran")
        assert len(alerts) == 1
        text = alerts[0].text
        assert "alice's question" in text and f"message #{q} in #help" in text
        assert "carol" not in text and "bob" not in text
        await s.advance(timedelta(days=2))
        assert len(dms(s, "fran")) == 1
        stored = await NudgeRepo(app.store).alerts(CID, kind="unanswered")
        assert [a["ref"] for a in stored] == [q]
    finally:
        await app.close()


async def test_alerts_found_at_night_wait_for_the_morning(tmp_path):
    clock = FakeClock(datetime(2026, 9, 7, 20, 30, tzinfo=UTC))  # 21:30 in London
    app, s = await open_course(tmp_path / "night.db", clock, learners=("alice", "bob"))
    try:
        await app.scheduler.start()
        await s.say("alice", "A first post, with nobody around yet.")
        await s.advance(timedelta(hours=24, minutes=20))  # found at 21:40 London: quiet hours
        assert dms(s, "fran") == []
        pending = await NudgeRepo(app.store).alerts(CID, pending=True)
        assert [a["detail"] for a in pending] == ["first post"]
        await s.advance(timedelta(hours=10))  # 07:40 London: still quiet
        assert dms(s, "fran") == []
        await s.advance(timedelta(hours=1))  # 08:40 London
        assert len(dms(s, "fran")) == 1 and "first post" in dms(s, "fran")[0].text
    finally:
        await app.close()


async def test_facilitator_centric_week_is_flagged_once(tmp_path, clock):
    app, s = await open_course(
        tmp_path / "share.db", clock, learners=("alice", "bob", "carol", "dan")
    )
    try:
        for i in range(6):
            for name in ("alice", "bob", "carol"):
                mid = await s.say(name, f"Question {i} from {name}?")
                await s.reply("fran", mid, "Here is the answer.")
        mid = await s.say("alice", "One more thing")
        await s.reply("dan", mid, "Good point, thanks")
        out = await s.tick("nudges.facilitator_share")
        assert [o.to for o in out] == ["fran"]
        assert "involved a facilitator" in out[0].text
        assert "dan" in out[0].text  # a learner who answered a peer, to hand questions to
        assert await s.tick("nudges.facilitator_share", "again") == []
    finally:
        await app.close()


# -- the effect report ------------------------------------------------------------------------


def test_wilson_and_newcombe_match_published_values():
    low, high = wilson(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    assert wilson(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert wilson(0, 0) is None
    # Newcombe (1998), Stat Med 17:873, example: 56/70 vs 48/80, method 10.
    d, lo, hi = newcombe_difference(56, 70, 48, 80)
    assert (d, lo, hi) == pytest.approx((0.2, 0.0524, 0.3339), abs=1e-4)


def test_effect_report_on_a_constructed_cohort():
    now = datetime(2026, 10, 1, 12, tzinfo=UTC)
    week = timedelta(days=7)
    early = now - timedelta(days=20)
    cohort: list[Exposure] = []
    # Nudged: 10 complete, 6 back within 7 days, 1 back only after 9 days; 2 pending (1 back).
    for i in range(10):
        back = (
            early + timedelta(days=2) if i < 6 else (early + timedelta(days=9) if i == 6 else None)
        )
        cohort.append(Exposure(f"n{i}", False, early, back))
    cohort.append(Exposure("p0", False, now - timedelta(days=2), now - timedelta(days=1)))
    cohort.append(Exposure("p1", False, now - timedelta(days=2), None))
    # A member nudged twice counts once, at their first step 1.
    cohort.append(Exposure("n0", False, early + timedelta(days=12), None))
    # Hold-out: 5 complete, 1 back; a held-back one not yet due is ignored.
    for i in range(5):
        cohort.append(Exposure(f"h{i}", True, early, early + timedelta(days=3) if i == 0 else None))
    cohort.append(Exposure("h9", True, now + timedelta(hours=3), None))
    report = effect_report(cohort, now, week)
    n, h = report.nudged, report.holdout
    assert (n.members, n.complete, n.returned, n.pending, n.pending_returned) == (12, 10, 6, 2, 1)
    assert (h.members, h.complete, h.returned, h.pending) == (5, 5, 1, 0)
    assert n.rate == 0.6 and h.rate == 0.2
    assert n.interval == pytest.approx(wilson(6, 10))
    assert n.interval == pytest.approx((0.3127, 0.8318), abs=1e-4)
    assert h.interval == pytest.approx((0.0362, 0.6245), abs=1e-4)
    d, lo, hi = report.difference
    assert d == pytest.approx(0.4)
    assert (lo, hi) == pytest.approx(newcombe_difference(6, 10, 1, 5)[1:])
    assert lo < 0 < hi
    text = "\n".join(report_lines(report))
    assert "6 of 10 came back (60%, 95% CI 31% to 83%)" in text
    assert "1 of 5 came back (20%" in text
    assert "2 still within 7 days (1 back so far)" in text
    assert "includes zero" in text


async def test_report_command_counts_returns_from_the_database(tmp_path, clock):
    app, s = await four_states(tmp_path, clock)
    try:
        await round_at(s, clock, START)
        clock.set(START + timedelta(days=2))
        await s.say("dan", "I'm back")
        await s.say("erin", "Hello, finally posting")
        out = await s.command("fran", "/course nudges report")
        assert "nudged: 4 members" in out and "4 still within 7 days (2 back so far)" in out
        clock.set(START + timedelta(days=8))
        out = await s.command("fran", "/course nudges report")
        assert "2 of 4 came back (50%" in out
        assert "Nudges sent: 4 (step 1: 4, step 2: 0)" in out
    finally:
        await app.close()


# -- pure ladder and hooks -----------------------------------------------------------------------


def test_decide_ladder_rules():
    now = START
    kw = dict(
        since=now - timedelta(days=9),
        episode="e1",
        handed_off=False,
        holdout=False,
        now=now,
        step2_after=timedelta(days=4),
        min_between=timedelta(days=3),
        grace=timedelta(days=2),
    )
    assert decide(state="active", rows=[], **kw).action == "none"
    assert decide(state="quiet", rows=[], **kw).step == 1
    assert decide(state="quiet", rows=[], **{**kw, "holdout": True}).action == "holdout"
    young = decide(state="new", rows=[], **{**kw, "since": now - timedelta(days=1)})
    assert young.action == "wait" and young.not_before == now + timedelta(days=1)
    fresh = decide(state="isolated", rows=[], **{**kw, "since": now - timedelta(hours=3)})
    assert fresh.action == "wait" and "replies may still come" in fresh.reason
    assert decide(state="dropping", rows=[], **{**kw, "since": None}).step == 1
    s1 = NudgeRow(1, "sent", "e1", now - timedelta(days=2), now - timedelta(days=2), "m1")
    assert decide(state="quiet", rows=[s1], **kw).action == "wait"
    s1old = NudgeRow(1, "sent", "e1", now - timedelta(days=4), now - timedelta(days=4), "m1")
    assert decide(state="quiet", rows=[s1old], **kw).step == 2
    # An earlier episode's nudge still counts for the minimum gap, not for the ladder.
    s1prev = NudgeRow(1, "sent", "e0", now - timedelta(days=1), now - timedelta(days=1), "m1")
    assert decide(state="quiet", rows=[s1prev], **kw).reason == "nudged recently"
    s2 = NudgeRow(2, "sent", "e1", now - timedelta(days=4), now - timedelta(days=4), "m2")
    assert decide(state="quiet", rows=[s1old, s2], **kw).action == "handoff"
    assert decide(state="quiet", rows=[s1old, s2], **{**kw, "handed_off": True}).action == "none"


def test_choose_hook_prefers_state_order_familiar_channels_and_new_refs():
    at = START
    thread = Hook("thread", "t1", "w", channel_id="general", at=at)
    question = Hook("question", "q1", "w", channel_id="general", at=at)
    question_help = Hook("question", "q2", "w", channel_id="help", at=at, familiar=True)
    peer = Hook("peer", "p1", "w", peer="bob", at=at)
    hooks = [thread, question, question_help, peer]
    assert choose_hook(1, "quiet", hooks).kind == "thread"
    assert choose_hook(1, "new", hooks) == question_help  # their channel first
    assert choose_hook(2, "quiet", hooks) == peer
    assert choose_hook(2, "quiet", hooks, ["p1"]).ref == "q2"  # something not named before
    assert choose_hook(1, "new", [peer]) is None  # new members have no peer reply yet
    assert choose_hook(1, "quiet", []) is None


# -- templates --------------------------------------------------------------------------------


def test_templates_are_checked_with_errors_naming_the_file(tmp_path):
    good = DEFAULT_NUDGE_TEMPLATES.read_text()
    templates = load_nudge_templates(DEFAULT_NUDGE_TEMPLATES)
    for step in ("step1", "step2"):
        for kind in ("thread", "question", "reflection", "peer"):
            assert templates.variants(step, kind)
    assert len(templates.variants("step1", "thread")) >= 2
    path = tmp_path / "mine.toml"
    path.write_text(good.replace("{people} people so far", "{crowd} people so far"))
    with pytest.raises(ConfigError, match=r"mine\.toml: step1\.thread\[1\]: unknown placeholder"):
        load_nudge_templates(path)
    start, end = good.index("[step2]"), good.index("[footer]")
    path.write_text(good[:start] + good[end:])
    with pytest.raises(ConfigError, match=r"mine\.toml: missing section \[step2\]"):
        load_nudge_templates(path)
    path.write_text(good.replace('peer = [\n    "Hi {name}, {peer} answered', 'per = [\n    "Hi'))
    with pytest.raises(ConfigError, match=r"mine\.toml: \[step2\] unknown key 'per'"):
        load_nudge_templates(path)


async def test_a_course_can_use_its_own_templates(tmp_path, clock):
    good = DEFAULT_NUDGE_TEMPLATES.read_text()
    mine = tmp_path / "ours.toml"
    start, end = good.index("[step1]"), good.index("[step2]")
    own = "[step1]\n" + "\n".join(
        f'{kind} = "Kia ora {{name}}, have a look: {{where}}"'
        for kind in ("thread", "question", "reflection", "peer")
    )
    mine.write_text(good[:start] + own + "\n\n" + good[end:])
    app, s = await four_states(tmp_path, clock, nudges={"templates": str(mine)})
    try:
        await round_at(s, clock, START)
        assert dms(s, "dan")[0].text.startswith("Kia ora dan, have a look: message #")
    finally:
        await app.close()
    broken = tmp_path / "broken.toml"
    broken.write_text(good.replace("[handoff]", "[handof]"))
    settings = make_settings(tmp_path / "b.db", nudges={"templates": str(broken)})
    with pytest.raises(ConfigError, match=r"broken\.toml: unknown section \[handof\]"):
        await HearthApp.create(settings, clock=FakeClock(START), migrate=False)


# -- privacy ----------------------------------------------------------------------------------


async def test_forgetme_erases_nudges_kudos_and_alerts(tmp_path, clock):
    app, s = await four_states(tmp_path, clock)
    try:
        await s.command("harry", "/course kudos member:@bob reason:thanks for the reply")
        await s.command("alice", "/course kudos member:@harry")
        await round_at(s, clock, START)
        clock.set(START + timedelta(hours=2))
        await s.say("harry", "A question nobody will answer?", channel="help")
        clock.set(START + timedelta(days=2))
        await s.tick("nudges.unanswered")
        repo = NudgeRepo(app.store)
        assert "harry" in [a["member_id"] for a in await repo.alerts(CID, kind="unanswered")]
        data = await app.engine.member_data(CID, "harry")
        assert data["nudges"]["nudges"][0]["step"] == 1
        assert data["kudos"] == {"given": 1, "received": 1}
        # erin's nudge names alice (the asker of the question it points to).
        erin = (await rows(app, "erin"))[0]
        assert erin["peer_id"] == "alice" and "alice" in erin["text"]
        out = await s.command("harry", "/course forgetme confirm:yes")
        assert "erased" in out
        assert await app.store.rows_mentioning("harry") == []
        await s.command("alice", "/course forgetme confirm:yes")
        assert await app.store.rows_mentioning("alice") == []
        erin = (await rows(app, "erin"))[0]
        assert erin["peer_id"] is None and erin["text"] is None  # no longer names alice
        assert await repo.kudos_rows(CID) == []
    finally:
        await app.close()


async def test_migration_creates_the_nudge_tables(tmp_path):
    from sqlalchemy import inspect

    from storage.db import make_engine, upgrade
    from storage.schema import metadata

    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    try:
        await upgrade(engine)
        async with engine.connect() as conn:
            found = await conn.run_sync(
                lambda c: {
                    t: {col["name"] for col in inspect(c).get_columns(t)}
                    for t in ("nudge", "kudos", "nudge_alert")
                }
            )
        for table, columns in found.items():
            assert columns == set(metadata().tables[table].c.keys()), table
    finally:
        await engine.dispose()


async def test_the_policy_answers_for_a_whole_cohort_in_a_fixed_number_of_queries(tmp_path, clock):
    """``message_verdicts`` gives each learner the answer ``may_message`` gives alone, with
    the same few statements for five learners or fifty (it made five a learner when each
    was checked on its own: 32 s for the reminders of a 5,000-member course)."""
    from bot.policy import may_message, message_verdicts

    clock.set(START)
    names = [f"learner{i}" for i in range(45)]
    app, s = await open_course(tmp_path / "policy.db", clock, learners=("ann", "tom", *names))
    try:
        await app.store.upsert_member(CID, "robo", is_bot=True, display_name="robo", now=START)
        await s.command("tom", "/course nudges off")
        await s.command("ann", "/course nudges snooze until:2026-09-20")
        await s.command(names[0], "/course tracking off")
        await s.command(names[1], "/course timezone America/Los_Angeles")  # 02:00 there
        await app.store.set_member_fields(CID, names[2], reachable=False)
        await app.store.set_member_fields(CID, names[3], left_at=START)
        expected = {
            "fran": "facilitator",
            "robo": "bot",
            "ghost": "unknown member",
            "tom": "opted out",
            "ann": "snoozed until 2026-09-20",
            names[0]: "tracking paused",
            names[1]: "quiet hours",
            names[2]: "unreachable (DMs closed)",
            names[3]: "left the course",
        }
        everyone = [*expected, *names[4:]]
        with sent_statements(app.store.engine) as statements:
            few = await message_verdicts(app.store, app.settings, CID, everyone[:5], START)
            n_few = len(statements)
            statements.clear()
            verdicts = await message_verdicts(app.store, app.settings, CID, everyone, START)
            n_all = len(statements)
        assert n_all == n_few <= 4, statements
        assert {m: v.reason for m, v in verdicts.items() if not v.allowed} == expected
        assert all(verdicts[m].allowed for m in names[4:])
        assert few == {m: verdicts[m] for m in everyone[:5]}
        for member_id in everyone:
            alone = await may_message(app.store, app.settings, CID, member_id, START)
            assert alone == verdicts[member_id], member_id
        # Past one IN list's worth of ids, the same answers.
        strangers = [f"nobody{i}" for i in range(5000)]
        many = await message_verdicts(app.store, app.settings, CID, [*strangers, *everyone], START)
        assert {m: many[m] for m in everyone} == verdicts
        assert {many[m].reason for m in strangers} == {"unknown member"}
    finally:
        await app.close()


async def _plan_counting_statements(path, clock, newcomers: list[str]):
    """A round planned at START for a course where ``newcomers`` joined at T0 and never
    posted (the first in Los Angeles): its entries and how many statements it sent."""
    clock.set(T0)
    app, s = await open_course(path, clock, learners=("alice", "bob", "carol", *newcomers))
    try:
        await s.command(newcomers[0], "/course timezone America/Los_Angeles")
        clock.set(START - timedelta(hours=1))
        await chatter(s, "day 0")
        clock.set(START)
        cog = next(c for c in app.engine.cogs if c.name == "nudges")
        with sent_statements(app.store.engine) as statements:
            entries = await cog.plan(CID, START)
        return {e.member["member_id"]: e for e in entries}, len(statements)
    finally:
        await app.close()


async def test_planning_a_round_reads_the_same_statements_for_three_learners_or_thirty(
    tmp_path, clock
):
    """The plan reads per community, not per learner: the policy, the learners' own
    timezones and the hooks each in a fixed number of statements (it made one query per
    nudged learner for the timezone alone: 44% of the plan on 2,000 members)."""
    counts = []
    for extra in (3, 30):
        newcomers = [f"new{i}" for i in range(extra)]
        planned, statements = await _plan_counting_statements(
            tmp_path / f"plan{extra}.db", clock, newcomers
        )
        assert set(newcomers) <= set(planned)
        # 02:00 in Los Angeles: held for the morning there; the rest go now.
        assert planned[newcomers[0]].timezone == "America/Los_Angeles"
        assert planned[newcomers[0]].action == "hold"
        assert {planned[n].action for n in newcomers[1:]} == {"send"}
        counts.append(statements)
    assert counts[0] == counts[1], counts
