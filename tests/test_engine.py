"""Engine scenarios through the console session: contributions, edges, edits, deletes,
duplicates, bots, commands, the user-error boundary and erasure."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.classify import kinds_from_mask
from bot.commands import INTEGER_LIMIT
from bot.engine import GENERIC_ERROR
from bot.events import CommandInvoked
from storage.repos import C, E
from tests.conftest import BACKENDS, required_line, required_options


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


async def rows(app, table):
    await app.store.flush()
    async with app.store.engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(select(table))).mappings()]


async def kinds_of(app, message_id):
    row = await app.store.contribution("console", str(message_id))
    assert row is not None, f"message {message_id} was not recorded"
    return set(kinds_from_mask(row["kinds"]))


async def test_each_kind_is_recorded(session, app):
    idea = await session.say("alice", "I think feedback loops beat long lectures.")
    question = await session.say("bob", "How do you plan study time around work?")
    ref = await session.say("carol", "Retrieval practice works (Roediger & Karpicke, 2006).")
    link = await session.say("dan", "Notes here https://example.org/notes")
    attached = await session.say("dan", "My mind map", attachments=("map.png",))
    reply = await session.reply("bob", idea, "Good point, I agree.")
    thanks = await session.reply("alice", reply, "Thanks so much, that helps!")
    mention = await session.say("carol", "@alice have you seen the new reading?")

    assert await kinds_of(app, idea) == {"idea"}
    assert await kinds_of(app, question) == {"idea", "question"}
    assert await kinds_of(app, ref) == {"idea", "reference"}
    assert await kinds_of(app, link) == {"idea", "reference"}
    assert await kinds_of(app, attached) == {"idea", "reference"}
    assert "builds_on" in await kinds_of(app, reply)
    assert {"builds_on", "support"} <= await kinds_of(app, thanks)
    assert {"idea", "builds_on", "question"} <= await kinds_of(app, mention)
    row = await app.store.contribution("console", idea)
    assert row["word_count"] == 7
    assert row["text"] is None  # no text retention by default


async def test_reply_and_mention_edges(session, app):
    first = await session.say("alice", "Opening thought")
    await session.reply("bob", first, "Replying to you, cc @carol")
    await session.join("carol")
    edges = {(e["kind"], e["source_id"], e["target_id"]) for e in await rows(app, E)}
    assert ("reply", "bob", "alice") in edges
    assert ("mention", "bob", "carol") not in edges  # carol unknown when bob posted
    await session.say("bob", "Thanks @carol")
    edges = {(e["kind"], e["source_id"], e["target_id"]) for e in await rows(app, E)}
    assert ("mention", "bob", "carol") in edges


async def test_reply_to_self_is_not_builds_on(session, app):
    first = await session.say("alice", "A thought")
    follow = await session.reply("alice", first, "And another thing")
    assert "builds_on" not in await kinds_of(app, follow)
    assert not [e for e in await rows(app, E) if e["kind"] == "reply"]


async def test_thread_follow_up_builds_on_the_thread_starter(session, app):
    root = await session.say("alice", "Thread starter")
    inside = await session.say("bob", "In the thread", thread=root)
    assert await kinds_of(app, inside) == {"builds_on"}
    assert [(e["source_id"], e["target_id"]) for e in await rows(app, E)] == [("bob", "alice")]


async def test_conversations_are_stored_when_known_and_resolved_when_read(session, app):
    """Each contribution stores its conversation when it is written; a reply to a message not
    seen yet stores none, and reading resolves it once that message has arrived, exactly as
    joining every reply to its parent did before the key was stored."""
    from sqlalchemy import and_, func

    from bot.events import MessagePosted
    from storage.queries import conversation_key

    root = await session.say("alice", "Thread starter")
    inside = await session.say("bob", "In the thread", thread=root)
    top = await session.say("carol", "A post of its own")
    answer = await session.reply("alice", top, "An answer")
    early = await session.reply("bob", "later-1", "Answering a message not seen yet")
    # A reply in the channel to a message inside a thread joins that thread's conversation.
    await app.engine.dispatch(
        MessagePosted(
            at=session.now,
            author=session.member("dan"),
            place=session.place("general"),
            message_id="out-1",
            text="Answering the thread from the channel",
            reply_to_id=inside,
        )
    )
    await session.say("carol", "Here it is at last", thread=root, message_id="later-1")
    stored = {r["message_id"]: r["conversation_id"] for r in await rows(app, C)}
    assert stored == {
        root: root,
        inside: root,
        top: top,
        answer: top,
        early: None,  # its parent was not known when it was written
        "out-1": root,
        "later-1": root,
    }
    parent = C.alias("parent")
    joined = func.coalesce(C.c.thread_id, parent.c.thread_id, C.c.reply_to_id, C.c.message_id)
    query = select(C.c.message_id, conversation_key(), joined).select_from(
        C.outerjoin(
            parent,
            and_(
                parent.c.community_id == C.c.community_id,
                parent.c.message_id == C.c.reply_to_id,
            ),
        )
    )
    async with app.store.engine.connect() as conn:
        read = (await conn.execute(query)).all()
    assert {m: key for m, key, _ in read} == {**stored, early: root}
    assert all(key == by_join for _, key, by_join in read)


async def test_duplicate_delivery_recorded_once(session, app):
    mid = await session.say("alice", "Hello (Smith, 2020)")
    await session.reply("bob", mid, "hi", message_id="dup-1")
    await session.reply("bob", mid, "hi", message_id="dup-1")
    await session.react("carol", mid)
    await session.react("carol", mid)
    contributions = await rows(app, C)
    assert len(contributions) == 2
    edges = await rows(app, E)
    assert sorted(e["kind"] for e in edges) == ["reaction", "reply"]


async def test_edit_reclassifies_and_delete_removes(session, app):
    mid = await session.say("alice", "Plain statement")
    assert await kinds_of(app, mid) == {"idea"}
    await session.edit("alice", mid, "Plain statement, see https://doi.org/10.1000/xyz ?")
    assert await kinds_of(app, mid) == {"idea", "reference", "question"}
    reply = await session.reply("bob", mid, "ok")
    await session.react("carol", reply)
    await session.delete(reply)
    assert await app.store.contribution("console", reply) is None
    assert [e for e in await rows(app, E) if e["message_id"] == reply] == []


async def test_reaction_removed_deletes_edge(session, app):
    mid = await session.say("alice", "Post")
    await session.react("bob", mid, "🎉")
    assert len(await rows(app, E)) == 1
    await session.unreact("bob", mid, "🎉")
    assert await rows(app, E) == []


async def test_bots_and_system_messages_do_not_count(session, app):
    session.member("helperbot", bot=True)
    await session.say("helperbot", "I am a bot")
    await session.say("alice", "alice joined the channel", system=True)
    assert await rows(app, C) == []
    out = await session.command("helperbot", "/course me")
    assert out == ""  # bots cannot command Hearth


async def test_untracked_channel_and_tracking_off(session, app):
    out = await session.command("fran", "/course setup channels:general,help")
    assert "Channels that count: general, help" in out
    assert "Dates: not set" in out
    await session.say("alice", "in general")
    await session.say("alice", "off topic", channel="random")
    assert len(await rows(app, C)) == 1
    assert "paused" in await session.command("bob", "/course tracking off")
    await session.say("bob", "not recorded")
    assert len(await rows(app, C)) == 1
    await session.command("bob", "/course tracking on")
    await session.say("bob", "recorded again")
    assert len(await rows(app, C)) == 2


async def test_facilitator_only_command_refused_to_learner(session):
    await session.say("alice", "hi")
    out = await session.command("alice", "/course stats")
    assert "facilitators only" in out
    out = await session.command("fran", "/course stats")
    assert "1 contribution, 1 word\n" in out  # singular: one of each


async def test_stats_counts_active_members_in_the_window(session, clock):
    session.member("helperbot", bot=True)
    await session.say("carol", "An old idea")
    clock.advance(timedelta(days=10))
    await session.say("alice", "A new idea")
    await session.say("alice", "And another")
    await session.say("helperbot", "beep")
    out = await session.command("fran", "/course stats days:7")
    # alice posted this week; carol only before it; the bot is not a member here. Members
    # known so far: alice, carol and fran (the facilitator who asked).
    assert "2 contributions" in out
    assert "active members: 1 of 3" in out
    assert "active members: 2 of 3" in await session.command("fran", "/course stats days:30")


async def test_stats_for_a_member_and_me(session):
    a = await session.say("alice", "How does this work?")
    await session.reply("bob", a, "Like this, thanks for asking")
    out = await session.command("fran", "/course stats member:@alice days:7")
    assert out.startswith("alice, last 7 days:")
    assert "question: 1" in out
    assert "received: 1" in out
    me = await session.command("bob", "/course me")
    assert "builds on: 1" in me and "support: 1" in me


async def test_malformed_commands_get_usage_lines(session):
    assert "usage: /course stats" in await session.command("fran", "/course stats days:abc")
    assert "unknown command" in await session.command("fran", "/course frobnicate")
    assert "usage: /course tracking" in await session.command("alice", "/course tracking")
    assert "unexpected argument" in await session.command("fran", "/course me 3 4")
    assert "must be at least 1" in await session.command("fran", "/course me 0")
    out = await session.command("alice", "/course help")
    assert "me" in out and "stats" not in out  # learners see only their commands
    assert "stats" in await session.command("fran", "/course help")


async def test_numbers_no_column_holds_get_usage_lines_on_every_front_end(session, app):
    """A number past what the database can store is a typo or a probe: a usage line, through
    the text parser and with typed options (Discord), for every whole-number option of every
    command. ``/course prompt cancel id:99999999999999999999999`` reached SQLite and failed
    there ("something went wrong"); PostgreSQL refuses past 2**31 - 1; and typed values were
    not checked against an option's bounds at all."""
    await session.join("bob")
    options = [(s, o) for s in app.engine.registry for o in s.options if o.type == "integer"]
    assert {s.name for s, _o in options} >= {"prompt cancel", "stats", "me", "export", "network"}
    for spec, option in options:
        for value in (10**30, 2**31, -(2**31)):
            line = required_line(spec, **{option.name: str(value)})
            if not option.required:
                line += f" {option.name}:{value}"
            out = await session.command("fran", f"/course {line}")
            assert f"usage: /course {spec.name}" in out and option.name in out, (line, out)
            event = CommandInvoked(
                at=app.clock.now(),
                member=session.member("fran"),
                place=session.place(),
                name=spec.name,
                options={**required_options(spec), option.name: value},
            )
            (reply,) = await app.engine.dispatch(event)
            assert f"usage: /course {spec.name}" in reply.text, (spec.name, value, reply.text)
    # The widest number still gets an answer from the command itself.
    out = await session.command("fran", f"/course prompt cancel id:{INTEGER_LIMIT}")
    assert out == f"There is no prompt #{INTEGER_LIMIT} in this course."


async def test_help_names_a_command_in_full_and_only_to_those_who_may_run_it(session):
    out = await session.command("alice", "/course help nudges snooze")
    assert out.startswith("usage: /course nudges snooze <until>")
    assert "example: /course nudges snooze until:2027-01-10" in out
    out = await session.command("fran", "/course help prompt")
    for name in ("prompt cancel <id>", "prompt list", "prompt post [text]", "prompt schedule"):
        assert f"usage: /course {name}" in out, out
    assert "id: Prompt number (see prompt list) (at least 1), required" in out
    assert "days: How many days back (default 7) (1 to 3650)" in await session.command(
        "fran", "/course help stats"
    )
    # A learner asking about a facilitator command learns nothing of it; nor does a typo.
    for asked in ("stats", "frobnicate"):
        out = await session.command("alice", f"/course help {asked}")
        assert out.startswith(f"No command '{asked}' that you may run.")
        assert "usage:" not in out and "  me [days]" in out


async def test_a_learner_is_refused_a_facilitator_command_before_its_arguments(session):
    """Whatever the arguments, a learner hears that the command is not theirs, including when
    the command's name is quoted (the parser unquotes it)."""
    for line in ("stats days:0", "stats days:abc extra", '"stats" days:3', "prompt cancel id:x"):
        out = await session.command("alice", f"/course {line}")
        assert out.endswith("is for facilitators only."), (line, out)


async def test_stats_for_one_channel_with_its_threads(session):
    question = await session.say("alice", "What did you make of the reading?", channel="readings")
    await session.reply("bob", question, "I liked the second part")
    await session.say("bob", "More in the thread", thread=question)
    await session.say("alice", "Hello everyone")  # general
    out = await session.command("fran", "/course stats channel:#readings")
    assert out.startswith("#readings, last 7 days:\n3 contributions"), out
    assert out.endswith("members who posted here: 2 of 3")
    # A name in any case; a member's numbers there (interactions are course-wide: left out).
    out = await session.command("fran", "/course stats member:@alice channel:#Readings")
    assert out.startswith("alice in #readings, last 7 days:\n1 contribution,"), out
    assert "interactions" not in out
    whole = await session.command("fran", "/course stats")
    assert whole.startswith("My course, last 7 days:\n4 contributions"), whole
    out = await session.command("fran", "/course stats channel:#reedings")
    assert out == "I don't know a channel called #reedings."
    # The first option is the member: a bare number gets a pointer to days:.
    out = await session.command("fran", "/course stats 30")
    assert out == "I don't know a member called 30. For the last 30 days: `/course stats days:30`."


async def test_settings_say_what_runs_when_and_what_is_kept(session):
    await session.command("fran", "/course setup timezone:Europe/Berlin")
    out = await session.command("fran", "/course settings")
    assert "Timezone: Europe/Berlin" in out and "Schedules (Europe/Berlin):" in out
    assert "  post the week's reflection prompt: every Monday at 09:00" in out, out
    assert "  cohort summary and facilitator report: every Friday at 17:00" in out
    assert "  send nudges held back by quiet hours: every hour at :20" in out
    # Text retention is off: its job does not run, and the answer says nothing is kept.
    assert "clear stored message text" not in out and "Message text: not stored" in out
    assert "Nudges: at most one every 3 days per learner, never 21:00-08:00" in out
    refused = await session.command("alice", "/course settings")
    assert refused == "/course settings is for facilitators only."


async def test_setup_points_out_channels_it_has_never_seen(session, app):
    await app.store.upsert_channel("console", "C1", "general")
    await app.store.upsert_channel("console", "C2", "help")
    out = await session.command("fran", "/course setup channels:#general,#hepl,C2")
    assert "Channels that count: general, hepl, C2" in out
    assert out.endswith(
        "Not seen yet: #hepl. Hearth knows no channel by that name or id here; check the"
        " spelling (the setting stays, and applies once such a channel has messages)."
    )
    out = await session.command("fran", "/course setup cohort_channel:#annoucements")
    assert "Not seen yet: #annoucements." in out
    assert "Not seen yet" not in await session.command("fran", "/course setup channels:help")


async def test_dates_off_the_calendar_get_usage_lines_and_change_nothing(session, app):
    """0001-01-01 or 9999-12-31 is a typo: a usage line naming the range, not a crash in a
    job later (a new cohort starting 0001-01-01 in a timezone east of UTC overflowed)."""
    await session.command("fran", "/course setup timezone:Asia/Tokyo start:2026-09-01")
    for command in (
        "/course setup start:0001-01-01",
        "/course setup end:9999-12-31",
        "/course archive confirm:yes start:0001-01-01",
        "/course export from:1969-12-31",
    ):
        out = await session.command("fran", command)
        assert "expected a date between 1970-01-01 and 2999-12-31" in out, (command, out)
        assert "usage: /course" in out, out
    settings = await app.store.community_settings("console")
    assert settings["start_date"] == "2026-09-01" and "end_date" not in settings
    assert (await app.store.get_community("console"))["cohort"] == 1
    # The ends of the range are dates like any other.
    out = await session.command("fran", "/course setup start:1970-01-01 end:2999-12-31")
    assert "Dates: 1970-01-01 to 2999-12-31" in out


async def test_unexpected_error_gets_generic_answer(session, app, caplog):
    async def broken(ctx, days):
        raise RuntimeError("secret internals")

    spec = app.engine.registry.specs["me"]
    app.engine.registry.specs["me"] = type(spec)(**{**_fields(spec), "handler": broken})
    with caplog.at_level(logging.ERROR):
        out = await session.command("alice", "/course me")
    assert out == GENERIC_ERROR
    assert "secret internals" not in out
    assert "failed to handle CommandInvoked" in caplog.text


def _fields(spec):
    return {name: getattr(spec, name) for name in spec.__dataclass_fields__}


async def test_setup_changes_settings(session, app):
    out = await session.command(
        "fran", "/course setup timezone:Europe/Berlin start:2026-09-01 end:2026-12-01"
    )
    assert "Timezone: Europe/Berlin" in out
    assert "Dates: 2026-09-01 to 2026-12-01" in out
    # Facilitators by name, whichever way they became one (here the platform role).
    assert "Facilitators: fran\n" in out
    assert (await app.store.get_community("console"))["timezone"] == "Europe/Berlin"
    assert "unknown timezone" in await session.command("fran", "/course setup timezone:Mars/Base")
    out = await session.command("fran", "/course setup start:2027-01-01 end:2026-01-01")
    assert "cannot end before it starts" in out


async def test_counts_of_one_read_in_the_singular(session, app):
    await session.say("alice", "One idea")
    assert "Your participation, last 1 day (only you see this)" in await session.command(
        "alice", "/course me days:1"
    )
    assert "My course, last 1 day:" in await session.command("fran", "/course stats days:1")
    assert "Interaction network, last 1 day:" in await session.command("fran", "/course network 1")
    assert "Quiet members" in (quiet := await session.command("fran", "/course quiet"))
    assert "of 1 learner\n" in quiet
    session.member("zed")  # seen, never posted: one record, the member row
    await session.say("zed", "hi", system=True)
    out = await session.command("zed", "/course forgetme confirm:yes")
    assert out.startswith("Done: erased 1 record about you."), out


async def test_mydata_and_forgetme_leave_no_row(session, app):
    first = await session.say("zed_learner", "My idea https://example.org")
    await session.reply("bob", first, "Nice one @zed_learner")
    await session.react("zed_learner", first)
    reply = await session.say("zed_learner", "thanks bob", reply_to=first)
    await session.react("bob", reply)
    await session.command("zed_learner", "/course tracking on")
    data = await session.command("zed_learner", "/course mydata")
    assert '"contributions": 2' in data and "hearth-mydata.json" in data
    assert await app.store.rows_mentioning("zed_learner")
    warn = await session.command("zed_learner", "/course forgetme")
    assert "confirm:yes" in warn
    assert await app.store.rows_mentioning("zed_learner")  # nothing erased without confirm
    done = await session.command("zed_learner", "/course forgetme confirm:yes")
    assert "erased" in done
    assert await app.store.rows_mentioning("zed_learner") == []
    # bob's reply survives, without the reference to the erased member
    assert await app.store.contribution("console", "2") is not None


async def test_member_left_is_recorded(session, app):
    await session.say("alice", "bye")
    await session.leave("alice")
    assert (await app.store.get_member("console", "alice"))["left_at"] is not None


async def test_text_retained_only_when_configured(tmp_path, clock):
    from bot.adapters.console import ConsoleSession
    from bot.app import HearthApp
    from tests.conftest import make_settings

    settings = make_settings(tmp_path / "r.db", storage={"retain_text_days": 30})
    app = await HearthApp.create(settings, clock=clock, migrate=False)
    try:
        s = await ConsoleSession.open(app)
        mid = await s.say("alice", "keep me for a while")
        assert (await app.store.contribution("console", mid))["text"] == "keep me for a while"
        clock.advance(timedelta(days=31))
        await app.scheduler.start()
        await s.tick("privacy.retention")
        assert (await app.store.contribution("console", mid))["text"] is None
    finally:
        await app.close()


async def test_an_event_without_a_name_keeps_the_stored_name(session, app):
    from bot.events import MemberRef, ReactionRemoved

    mid = await session.say("alice", "hello")
    app.engine.forget_cached_member("console", "bob")
    await session.say("bob", "hi")  # stored as "bob"
    app.engine.forget_cached_member("console", "bob")
    await app.engine.dispatch(
        ReactionRemoved(
            at=app.clock.now(),
            member=MemberRef("console", "bob", ""),
            place=session.place(),
            message_id=mid,
            emoji="👍",
        )
    )
    assert (await app.store.get_member("console", "bob"))["display_name"] == "bob"


async def test_a_known_member_who_renames_is_stored_under_the_new_name(session, app):
    """The engine skips the member upsert for members it has stored already, but not when
    their name or facilitator flag changed."""
    from bot.events import MemberRef, MessagePosted

    for message_id, name in (("r1", "Bob"), ("r2", "Bob"), ("r3", "Robert")):
        await app.engine.dispatch(
            MessagePosted(
                at=session.now,
                author=MemberRef("console", "bob", name),
                place=session.place("general"),
                message_id=message_id,
                text="hello",
            )
        )
        await app.store.flush()
        assert (await app.store.get_member("console", "bob"))["display_name"] == name
