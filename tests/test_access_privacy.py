"""Access and privacy, checked over everything registered rather than command by command.

- Every facilitator-only spec in the registry is refused to a learner, through the text parser
  (console, Slack) and with typed options (Discord), with no side effect; a facilitator can run
  each of them (so the arguments built here are valid and the refusal is the role check).
- A learner never reads another learner's data: ``me`` and ``mydata`` take no member option,
  ``stats member:`` is refused, and every learner command that does take a member option answers
  exactly the same whether the peer it names has private state or none at all.
- ``forgetme`` leaves no cell that equals, or even contains, the member's id anywhere in the
  schema, after data was created in every feature (contributions, edges, reactions, prefs,
  kudos, nudges, alerts, reflections, the sent ledger).
- With text retention on, the retention job clears stored text once it is older than the period.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import String, Text, func, select
from sqlalchemy.types import TypeDecorator

from bot.actions import Reply
from bot.adapters.console import ConsoleSession
from bot.app import HearthApp
from bot.commands import CommandSpec, help_text
from bot.events import ButtonPressed, CommandInvoked
from storage.repos import C
from storage.schema import member_columns, metadata
from tests.conftest import BACKENDS, make_settings, required_line, required_options

START = datetime(2026, 9, 7, 9, tzinfo=UTC)  # a Monday
REFUSED = "for facilitators only"
SECRET_GOAL = "BOB-SECRET-GOAL-7731"
#: Facilitator commands whose handlers render charts or files: run as a facilitator elsewhere.
SLOW = {"network", "export", "summary now"}


@pytest.fixture
async def course(tmp_path):
    from bot.clock import FakeClock

    settings = make_settings(
        tmp_path / "privacy.db",
        course={"facilitator_ids": ["fran"], "reflection_channel": "reflections"},
        nudges={"holdout_fraction": 0.0},
    )
    app = await HearthApp.create(settings, clock=FakeClock(START), migrate=False)
    session = await ConsoleSession.open(app)
    await session.join("fran", facilitator=True)
    for name in ("alice", "bob", "carol", "dana"):
        await session.join(name)
    try:
        yield app, session
    finally:
        await app.close()


def facilitator_specs(app: HearthApp) -> list[CommandSpec]:
    specs = [s for s in app.engine.registry if s.facilitator_only]
    assert len(specs) >= 8  # setup, stats, quiet, nudge, summary now, prompt ..., network ...
    return specs


# -- facilitator-only commands ------------------------------------------------------------------


async def test_every_facilitator_command_is_refused_to_a_learner_on_every_front_end(course):
    app, session = course
    before = len(session.outbox)
    for spec in facilitator_specs(app):
        # Text front ends (console, Slack): the shared parser, then the role check.
        answer = await session.command("alice", f"/course {required_line(spec)}")
        assert REFUSED in answer, f"{spec.name}: {answer}"
        # Typed front end (Discord): options arrive parsed; the platform may well show the
        # command to everyone (default permissions), the engine still refuses.
        event = CommandInvoked(
            at=app.clock.now(),
            member=session.member("alice"),
            place=session.place(),
            name=spec.name,
            options=required_options(spec),
        )
        actions = await app.engine.dispatch(event)
        assert [a.text for a in actions if isinstance(a, Reply)] == [
            f"/course {spec.name} is for facilitators only."
        ], spec.name
    # Nothing happened besides the refusals: no post, no DM, no file.
    assert {s.kind for s in session.outbox[before:]} == {"reply"}
    learner_help = await session.command("alice", "/course help")
    for spec in facilitator_specs(app):
        assert f"  {spec.name} " not in learner_help and f"  {spec.name} -" not in learner_help
    assert "(facilitators)" not in learner_help
    assert "(facilitators)" in help_text(app.engine.registry, facilitator=True)


async def test_a_facilitator_may_run_each_of_them(course):
    app, session = course
    for spec in facilitator_specs(app):
        if spec.name in SLOW:
            continue
        answer = await session.command("fran", f"/course {required_line(spec)}")
        assert REFUSED not in answer and "something went wrong" not in answer, spec.name


async def test_a_learner_cannot_confirm_a_nudge_round(course):
    from bot.cogs.nudges import CONFIRM

    app, session = course
    answer = await session.press("alice", CONFIRM, "any-token")
    assert "Only facilitators" in answer
    event = ButtonPressed(
        at=app.clock.now(),
        member=session.member("alice"),
        place=session.place(),
        action_id=CONFIRM,
        value="x",
    )
    assert not [a for a in await app.engine.dispatch(event) if "Sent" in getattr(a, "text", "")]


# -- one learner, another learner's data ---------------------------------------------------------


async def give_bob_private_state(session: ConsoleSession) -> None:
    """bob posts, pauses tracking, sets a goal, a timezone, his mirror and his nudges."""
    first = await session.say("bob", "Bob's first idea about spaced repetition (Lee, 2019)")
    await session.reply("bob", first, "and a follow-up with a question?")
    for line in (
        f"/course goal {SECRET_GOAL}",
        "/course mirror on",
        "/course timezone tz:Asia/Tokyo",
        "/course nudges off",
        "/course tracking off",
    ):
        answer = await session.command("bob", line)
        assert "usage" not in answer.lower(), (line, answer)


async def answer_to(session: ConsoleSession, name: str, line: str) -> str:
    """What the caller sees (the replies), leaving out messages sent to others."""
    before = len(session.outbox)
    await session.command(name, f"/course {line}")
    return "\n".join(s.text for s in session.outbox[before:] if s.kind == "reply")


async def test_learner_commands_never_show_another_learners_data(course):
    app, session = course
    registry = app.engine.registry
    specs = {s.name: s for s in registry}
    # The mirror and the data export are about the caller only: no way to name someone else.
    for name in ("me", "mydata"):
        assert all(o.type != "member" for o in specs[name].options), name
    await give_bob_private_state(session)
    facts = await session.command("fran", "/course stats member:@bob")
    assert "2 contributions" in facts  # what a learner must never see about bob

    assert REFUSED in await session.command("alice", "/course stats member:@bob")
    for attempt in ("/course me @bob", "/course me member:@bob", "/course mydata @bob"):
        answer = await session.command("alice", attempt)
        assert "usage" in answer and "contributions" not in answer, attempt
    mine = await session.command("alice", "/course me")
    assert "0 contributions" in mine
    mydata = await session.command("alice", "/course mydata")
    assert '"member_id": "alice"' in mydata and '"bob"' not in mydata
    assert SECRET_GOAL not in mydata and "Asia/Tokyo" not in mydata

    # Every learner command that takes a member option: naming bob (lots of private state)
    # must answer exactly as naming carol (none), names aside.
    with_member = [
        s for s in registry if not s.facilitator_only and any(o.type == "member" for o in s.options)
    ]
    assert with_member, "no learner command takes a member: the check below would be vacuous"
    for spec in with_member:
        option = next(o for o in spec.options if o.type == "member")
        about_bob = await answer_to(session, "alice", required_line(spec, **{option.name: "@bob"}))
        about_carol = await answer_to(
            session, "alice", required_line(spec, **{option.name: "@carol"})
        )
        assert about_bob.replace("bob", "X") == about_carol.replace("carol", "X"), spec.name
        for private in (SECRET_GOAL, "Asia/Tokyo", "2 contributions", "tracking", "paused"):
            assert private not in about_bob, (spec.name, private, about_bob)


# -- forgetme over the whole schema --------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


async def text_cells_containing(app: HearthApp, needle: str) -> list[tuple[str, str, str]]:
    """(table, column, value) of every text cell that contains ``needle`` anywhere."""
    await app.store.flush()
    hits = []
    async with app.store.engine.connect() as conn:
        for table in metadata().sorted_tables:
            for column in table.columns:
                kind = column.type.impl if isinstance(column.type, TypeDecorator) else column.type
                if not isinstance(kind, String | Text):
                    continue
                query = select(column).where(func.lower(column).contains(needle.lower()))
                for (value,) in (await conn.execute(query)).all():
                    hits.append((table.name, column.name, str(value)[:80]))
    return hits


async def test_forgetme_leaves_nothing_that_refers_to_the_member_anywhere(settings, clock):
    settings.course.facilitator_ids = ["fran"]
    settings.course.reflection_channel = "reflections"
    settings.nudges.holdout_fraction = 0.0
    who = "alice7q"
    clock.set(START - timedelta(days=10))
    app = await HearthApp.create(settings, clock=clock, migrate=False)
    session = await ConsoleSession.open(app)
    try:
        await session.join("fran", facilitator=True)
        for name in (who, "bob", "carol", "erin"):
            await session.join(name)
        # Ten days ago: alice asks a question nobody answers, then goes quiet.
        clock.set(START - timedelta(days=9))
        question = await session.say(who, "How do you all plan study time?", channel="help")
        await session.say("bob", "An idea about feedback loops")
        clock.set(START - timedelta(hours=2))  # a live thread: what a nudge points alice to
        root = await session.say("bob", "Who has tried interleaving practice?")
        await session.reply("carol", root, "I have, it helped with the quiz")
        clock.set(START)
        await session.tick("nudges.round")  # alice is quiet: nudged (and others may name her)
        await session.tick("nudges.unanswered")  # her question: an alert to the facilitator
        # Today: reflections, conversation both ways, reactions, kudos, preferences.
        await session.tick("reflections.post")
        thread = next(s for s in session.outbox if s.kind == "post" and s.message_id)
        reflection = await session.say(who, "My reflection on week one", thread=thread.message_id)
        await session.say("bob", f"Nice one @{who}", thread=thread.message_id, reply_to=reflection)
        idea = await session.say(who, "A new idea, what do you think @bob?")
        answer = await session.reply("bob", idea, f"Agreed @{who}")
        await session.react(who, answer, "🎉")
        await session.react("bob", idea, "👍")
        await session.reply("carol", question, "Late, but: mornings!")
        for line in (
            "/course kudos member:@bob reason:thanks",
            "/course goal answer two questions",
            "/course mirror on",
            "/course timezone tz:Europe/Paris",
            "/course nudges snooze until:2026-09-20",
            "/course tracking on",
        ):
            await session.command(who, line)
        await session.command("bob", f"/course kudos member:@{who}")
        await session.command("fran", f"/course setup facilitator:@{who}")  # in settings JSON

        found = set(await app.store.rows_mentioning(who))
        expected = {
            ("member", "member_id"),
            ("contribution", "member_id"),
            ("contribution", "reply_to_member_id"),
            ("edge", "source_id"),
            ("edge", "target_id"),
            ("member_pref", "member_id"),
            ("kudos", "giver_id"),
            ("kudos", "receiver_id"),
            ("reflection", "member_id"),
            ("nudge", "member_id"),
            ("sent_message", "member_id"),
        }
        assert expected <= found, expected - found
        # Every table that can hold a member id is in the erase list, and data was created in
        # most of them above (the rest: tables no scenario here can fill, e.g. Slack installs).
        listed = {(t, c) for t, c, _ in member_columns()}
        ids = {(t, c) for t, c in found if c != "display_name"}  # console names are the ids
        assert ids <= listed, ids - listed
        assert len(ids) >= len(listed) - 4, listed - ids

        assert len(await text_cells_containing(app, who)) > len(found)  # the scan can fail

        out = await session.command(who, "/course forgetme confirm:yes")
        assert "erased" in out
        assert await app.store.rows_mentioning(who) == []
        assert await text_cells_containing(app, who) == []
        # Everyone else's data stays: bob's reply is still his, now pointing at nobody.
        bob_answer = await app.store.contribution("console", answer)
        assert bob_answer["member_id"] == "bob" and bob_answer["reply_to_member_id"] is None
    finally:
        await app.close()


# -- retention -----------------------------------------------------------------------------------


async def test_the_retention_job_clears_text_after_its_period(tmp_path, clock):
    settings = make_settings(tmp_path / "retention.db", storage={"retain_text_days": 2})
    app = await HearthApp.create(settings, clock=clock, migrate=False)
    session = await ConsoleSession.open(app)
    try:
        # Monday 09:00. The job runs daily at 03:30 and clears text older than two days.
        old = await session.say("alice", "Kept for two days only")
        await session.advance(timedelta(days=1))  # Tuesday 09:00
        newer = await session.say("bob", "Posted a day later")
        await session.advance(timedelta(days=1))  # Wednesday's run: not two days old yet
        assert (await app.store.contribution("console", old))["text"] == "Kept for two days only"
        await session.advance(timedelta(hours=19))  # Thursday 04:00: older than two days
        assert (await app.store.contribution("console", old))["text"] is None
        assert (await app.store.contribution("console", newer))["text"] == "Posted a day later"
        await session.advance(timedelta(days=1))  # Friday's run
        assert (await app.store.contribution("console", newer))["text"] is None
        # The metadata stays: the contribution still counts.
        async with app.store.engine.connect() as conn:
            total = (await conn.execute(select(func.count()).select_from(C))).scalar_one()
        assert total == 2
        runs = [c for c in await app.store.claims("privacy.retention") if c["status"] == "done"]
        # The simulated scheduler counts from the first advance: Wednesday to Friday, once each.
        assert [r["period"] for r in runs] == [
            "2026-09-09T03:30Z",
            "2026-09-10T03:30Z",
            "2026-09-11T03:30Z",
        ]
    finally:
        await app.close()


async def test_without_retention_no_text_is_ever_stored(app, session):
    message = await session.say("alice", "Never stored")
    assert (await app.store.contribution("console", message))["text"] is None
    assert "privacy.retention" not in {p[0] for p in app.scheduler.planned}
