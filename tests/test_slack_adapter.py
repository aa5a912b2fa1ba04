"""The real Slack adapter (slack-bolt AsyncApp) on loopback, against the mock Web API.

Each scenario builds a real HearthApp on a temporary SQLite file, attaches the adapter built by
``build_slack_adapter`` and serves it on 127.0.0.1; the test signs and posts Events API bodies,
slash command forms and button payloads to it like Slack does, and reads what the bot called
on the mock Web API (``SlackWebAPI``). Socket Mode runs against ``SocketModeServer``.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import select

from bot.actions import (
    Attach,
    Button,
    DirectMessage,
    FileAttachment,
    PostMessage,
    React,
    Reply,
    RichContent,
    Section,
)
from bot.adapters import slack_blocks
from bot.adapters.slack_adapter import (
    METHOD_SCOPES,
    SUBSCRIBED_EVENTS,
    SlackAdapter,
    build_slack_adapter,
)
from bot.adapters.slack_support import ChannelPacer, RecentKeys
from bot.app import HearthApp
from bot.classify import kinds_from_mask
from bot.commands import CommandSpec
from bot.config import ConfigError
from bot.engine import Cog
from bot.events import MemberRef, PlaceRef
from bot.logsafe import redact_secrets
from bot.slack_cli import build_manifest
from storage.repos import C, E, M
from tests.conftest import make_settings
from tests.emulators.slack_server import (
    TEAM_ID,
    SlackWebAPI,
    SocketModeServer,
    app_home_opened_event,
    block_actions_payload,
    event_envelope,
    interactive_form,
    member_joined_event,
    message_event,
    post_signed,
    reaction_event,
    slash_command_form,
    slash_command_payload,
)

SECRET = "test-signing-secret-1234"
BOT_TOKEN = "xoxb-1111-2222-testtoken"
APP_TOKEN = "xapp-1-A1-3333-testtoken"
#: Every Web API method any scenario saw the adapter call (checked against the manifest).
SEEN_METHODS: set[str] = set()


@pytest.fixture
async def api() -> AsyncIterator[SlackWebAPI]:
    async with SlackWebAPI() as server:
        server.add_user("U1", "ana", real_name="Ana Lima", tz="Europe/Lisbon")
        server.add_user("U2", "ben", real_name="Ben Okafor")
        server.add_user("U3", "cleo", real_name="Cleo Park")
        server.add_user("UADMIN", "fran", real_name="Fran Admin", is_admin=True)
        server.add_user("ULISTED", "gus", real_name="Gus Listed")
        server.add_channel("C1", "general", members=["U1", "U2", "U3"])
        yield server
        SEEN_METHODS.update(c.method for c in server.calls)


@pytest.fixture(autouse=True)
def slack_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("HEARTH_SLACK_SIGNING_SECRET", SECRET)
    monkeypatch.setenv("HEARTH_SLACK_APP_TOKEN", APP_TOKEN)


def slack_settings(tmp_path, api: SlackWebAPI, **slack: Any):
    return make_settings(
        tmp_path / "hearth.db",
        slack={
            "enabled": True,
            "api_base_url": api.base_url,
            "port": 0,
            "post_interval_seconds": 0,
            "facilitator_user_ids": ["ULISTED"],
            **slack,
        },
    )


@asynccontextmanager
async def running(settings, clock) -> AsyncIterator[tuple[HearthApp, SlackAdapter]]:
    app = await HearthApp.create(settings, clock=clock, migrate=False)
    adapter = build_slack_adapter(app)
    app.add_adapter(adapter)
    try:
        await adapter.start()
        yield app, adapter
    finally:
        await app.close()


@pytest.fixture
async def slack(tmp_path, api, clock) -> AsyncIterator[tuple[HearthApp, SlackAdapter]]:
    async with running(slack_settings(tmp_path, api), clock) as pair:
        yield pair


def ts(clock, seconds: float = 0) -> str:
    """A Slack ts at the fake clock's time (+ seconds), so reports' windows include it."""
    return f"{clock.now().timestamp() + seconds:.6f}"


async def post_event(adapter: SlackAdapter, event: dict[str, Any], **kw: Any):
    headers = kw.pop("headers", None)
    body = json.dumps(event_envelope(event, **kw)).encode()
    result = await post_signed(adapter.url, body, SECRET, headers=headers)
    assert result.status == 200, result.text
    return result


async def command(adapter: SlackAdapter, api: SlackWebAPI, user: str, text: str, name: str):
    """Run ``/course text`` as ``user``; return the ack and the first response_url post."""
    form = slash_command_form(
        "/course", text, user, "C1", TEAM_ID, api.response_url(name), f"trig-{name}"
    )
    ack = await post_signed(adapter.url, form, SECRET)
    assert ack.status == 200
    return ack, await api.wait_for_response(name)


async def table(app: HearthApp, t) -> list[dict[str, Any]]:
    await app.store.flush()
    async with app.store.engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(select(t))).mappings()]


async def kinds(app: HearthApp, message_id: str) -> set[str]:
    row = await app.store.contribution(TEAM_ID, message_id)
    assert row is not None, f"{message_id} was not recorded"
    return set(kinds_from_mask(row["kinds"]))


async def edges(app: HearthApp) -> set[tuple[str, str, str]]:
    return {(e["kind"], e["source_id"], e["target_id"]) for e in await table(app, E)}


# -- HTTP: events -------------------------------------------------------------------------------


async def test_url_verification(slack) -> None:
    _app, adapter = slack
    body = b'{"token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",'
    body += b'"type":"url_verification"}'
    result = await post_signed(adapter.url, body, SECRET)
    assert result.status == 200
    assert result.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


async def test_messages_threads_and_reactions_are_tracked(slack, api, clock) -> None:
    app, adapter = slack
    t1, t2, t3 = ts(clock), ts(clock, 60), ts(clock, 120)
    await post_event(adapter, message_event("C1", "U1", "Has anyone read Smith (2020)? <@U3>", t1))
    await post_event(
        adapter,
        message_event("C1", "U2", "Yes, thanks <@U1>, that helps!", t2, t1, parent_user_id="U1"),
    )
    await post_event(adapter, reaction_event("U3", "tada", "C1", t2, item_user="U2"))
    await post_event(
        adapter, message_event("C1", "U3", "<@U3> has joined", t3, subtype="channel_join")
    )
    await post_event(
        adapter, message_event("C1", None, "Build green", t3, subtype="bot_message", bot_id="B9")
    )
    await adapter.drain()

    first, reply = f"C1:{t1}", f"C1:{t2}"
    assert {"idea", "question", "reference", "builds_on"} <= await kinds(app, first)
    assert {"builds_on", "support"} <= await kinds(app, reply)
    assert "idea" not in await kinds(app, reply)
    row = await app.store.contribution(TEAM_ID, reply)
    assert row["thread_id"] == first and row["reply_to_member_id"] == "U1"
    assert await edges(app) == {
        ("mention", "U1", "U3"),
        ("reply", "U2", "U1"),
        ("reaction", "U3", "U2"),
    }
    assert len(await table(app, C)) == 2  # the join and the bot message are not contributions
    members = {m["member_id"]: m for m in await table(app, M)}
    assert members["U1"]["display_name"] == "ana" and members["U3"]["display_name"] == "cleo"
    assert not members["U1"]["is_facilitator"]
    # Channel names come from conversations.info and land in Hearth's channel table.
    assert [c["name"] for c in await app.store.channels(TEAM_ID)] == ["general"]

    # An edit re-classifies; removing the reaction removes its edge.
    changed = {
        "type": "message",
        "subtype": "message_changed",
        "channel": "C1",
        "hidden": True,
        "message": {"type": "message", "user": "U1", "text": "I read it, great paper.", "ts": t1},
        "previous_message": {"type": "message", "user": "U1", "text": "old", "ts": t1},
        "ts": ts(clock, 200),
        "event_ts": ts(clock, 200),
        "channel_type": "channel",
    }
    await post_event(adapter, changed)
    await post_event(adapter, reaction_event("U3", "tada", "C1", t2, item_user="U2", removed=True))
    await adapter.drain()
    assert await kinds(app, first) == {"idea"}
    assert ("reaction", "U3", "U2") not in await edges(app)


async def test_a_retried_event_is_recorded_once(slack, api, clock) -> None:
    app, adapter = slack
    message = message_event("C1", "U1", "First thought", ts(clock))
    await post_event(adapter, message, event_id="EvRETRY1")
    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    await post_event(adapter, message, event_id="EvRETRY1", headers=retry)
    reaction = reaction_event("U2", "+1", "C1", message["ts"], item_user="U1")
    await post_event(adapter, reaction, event_id="EvRETRY2")
    await post_event(adapter, reaction, event_id="EvRETRY2")  # same id, no header
    await adapter.drain()
    assert app.runtime.events_received == 2
    assert adapter.duplicates == 2
    assert len(await table(app, C)) == 1 and len(await table(app, E)) == 1


async def test_bad_signature_and_stale_timestamp_are_refused(slack, api, clock) -> None:
    app, adapter = slack
    body = json.dumps(event_envelope(message_event("C1", "U1", "sneaky", ts(clock)))).encode()
    forged = await post_signed(adapter.url, body, "not-the-secret")
    stale = await post_signed(adapter.url, body, SECRET, timestamp=int(time.time()) - 6 * 60)
    unsigned = await post_signed(adapter.url, body, SECRET, headers={"X-Slack-Signature": "v0=00"})
    form = slash_command_form("/course", "stats", "UADMIN", response_url=api.response_url("x"))
    forged_command = await post_signed(adapter.url, form, "not-the-secret")
    assert [r.status for r in (forged, stale, unsigned, forged_command)] == [401] * 4
    await adapter.drain()
    assert app.runtime.events_received == 0
    assert await table(app, C) == [] and await table(app, M) == []
    assert api.responses == []


async def test_malformed_event_is_dropped_with_a_reason(slack, caplog, clock) -> None:
    app, adapter = slack
    with caplog.at_level(logging.WARNING, logger="bot.adapters.slack_adapter"):
        await post_event(adapter, {"type": "message", "user": "U1", "text": "x", "ts": "soon"})
        await adapter.drain()
    assert adapter.dropped == 1 and "malformed Slack event" in caplog.text
    assert app.runtime.events_received == 0


async def test_message_deleted_removes_the_contribution(slack, clock) -> None:
    app, adapter = slack
    t1, t2 = ts(clock), ts(clock, 30)
    await post_event(adapter, message_event("C1", "U1", "Opening idea", t1))
    await post_event(adapter, message_event("C1", "U2", "Reply to it", t2, t1, parent_user_id="U1"))
    await adapter.drain()
    assert len(await table(app, C)) == 2 and ("reply", "U2", "U1") in await edges(app)
    deleted = {
        "type": "message",
        "subtype": "message_deleted",
        "channel": "C1",
        "hidden": True,
        "deleted_ts": t2,
        "previous_message": {"type": "message", "user": "U2", "text": "Reply to it", "ts": t2},
        "ts": ts(clock, 90),
        "event_ts": ts(clock, 90),
        "channel_type": "channel",
    }
    await post_event(adapter, deleted)
    await adapter.drain()
    assert [r["message_id"] for r in await table(app, C)] == [f"C1:{t1}"]
    assert await edges(app) == set()


async def test_members_joining(slack, api, clock) -> None:
    app, adapter = slack
    api.add_user("U7", "dora", real_name="Dora Diaz", tz="Asia/Tokyo")
    await post_event(adapter, member_joined_event("C1", "U2"))
    team_join = {
        "type": "team_join",
        "user": api.add_user("U8", "eli", real_name="Eli Stone", tz="Africa/Lagos"),
        "event_ts": ts(clock),
    }
    await post_event(adapter, team_join)
    await adapter.drain()
    members = {m["member_id"]: m for m in await table(app, M)}
    assert members["U2"]["display_name"] == "ben" and members["U2"]["joined_at"] is not None
    assert members["U8"]["display_name"] == "eli"
    # The team_join event carried the profile: no users.info call was needed for it.
    assert [c for c in api.calls_to("users.info") if c.get("user") == "U8"] == []


# -- HTTP: commands and buttons -----------------------------------------------------------------


async def test_facilitator_command_is_answered_via_response_url(slack, api, clock) -> None:
    app, adapter = slack
    await post_event(adapter, message_event("C1", "U1", "Hello all, what do you think?", ts(clock)))
    await adapter.drain()
    started = time.monotonic()
    ack, answer = await command(adapter, api, "UADMIN", "stats", "fac")
    assert ack.text == "" and time.monotonic() - started < 3
    assert answer["response_type"] == "ephemeral"
    assert "1 contribution," in answer["text"]
    assert slack_blocks.check_blocks(answer["blocks"]) == []
    # A user listed in facilitator_user_ids (not a workspace admin) may run it too.
    _ack, listed = await command(adapter, api, "ULISTED", "stats", "listed")
    assert "1 contribution," in listed["text"]
    members = {m["member_id"]: m for m in await table(app, M)}
    assert members["UADMIN"]["is_facilitator"] and members["ULISTED"]["is_facilitator"]


async def test_learner_is_refused_a_facilitator_command(slack, api) -> None:
    app, adapter = slack
    _ack, answer = await command(adapter, api, "U2", "stats", "learner")
    assert answer["response_type"] == "ephemeral"
    assert "for facilitators only" in answer["text"]
    assert not (await app.store.get_member(TEAM_ID, "U2"))["is_facilitator"]


async def test_parse_error_answers_the_usage_line(slack, api) -> None:
    _app, adapter = slack
    _ack, answer = await command(adapter, api, "U1", "me days:lots", "usage")
    assert "usage: /course me [days]" in answer["text"]
    _ack, unknown = await command(adapter, api, "U1", "fly", "unknown")
    assert "unknown command 'fly'" in unknown["text"]


async def test_public_command_answers_in_channel_and_retried_command_runs_once(slack, api) -> None:
    app, adapter = slack
    calls: list[str] = []

    async def shout(ctx, text: str) -> str:
        calls.append(text)
        return f"Announcement: {text}"

    from bot.commands import Option

    app.engine.registry.add(
        CommandSpec("announce", "Say it", shout, (Option("text", "text", "what"),), private=False)
    )
    form = slash_command_form(
        "/course", "announce hello all", "U1", "C1", TEAM_ID, api.response_url("pub"), "trig-1"
    )
    assert (await post_signed(adapter.url, form, SECRET)).status == 200
    assert (await post_signed(adapter.url, form, SECRET)).status == 200  # same trigger_id
    answer = await api.wait_for_response("pub")
    await adapter.drain()
    assert answer["response_type"] == "in_channel" and answer["text"] == "Announcement: hello all"
    assert calls == ["hello all"] and len(api.responses) == 1


async def test_long_private_answer_splits_and_overflows_into_a_dm(slack, api) -> None:
    app, adapter = slack
    rows = tuple(Section(f"row {i}:", "data " * 20) for i in range(400))  # 400 blocks

    async def dump(ctx) -> Reply:
        return Reply(rich=RichContent("Full export", rows), ephemeral=True)

    app.engine.registry.add(CommandSpec("dump", "Long", dump))
    form = slash_command_form(
        "/course", "dump", "U1", "C1", TEAM_ID, api.response_url("dump"), "trig-dump"
    )
    assert (await post_signed(adapter.url, form, SECRET)).status == 200
    await api.wait_for_response("dump")
    await adapter.drain()
    posted = [body for name, body in api.responses if name == "dump"]
    assert len(posted) == 5  # response_url's limit
    assert posted[-1]["blocks"][-1]["elements"][0]["text"] == "Continued in a direct message."
    dms = api.calls_to("chat.postMessage")
    assert dms and all(c["channel"].startswith("D") for c in dms)
    for message in posted + dms:
        assert slack_blocks.check_blocks(message["blocks"]) == []
    texts = [b["text"]["text"] for m in posted + dms for b in m["blocks"] if b["type"] == "section"]
    assert all(len(t) <= 3000 for t in texts)
    assert "row 0:" in texts[0] and any("row 399:" in t for t in texts)


async def test_button_press_reaches_the_engine(slack, api) -> None:
    _app, adapter = slack
    payload = block_actions_payload(
        "nobody:confirm", "U1", value="1", response_url=api.response_url("btn")
    )
    result = await post_signed(adapter.url, interactive_form(payload), SECRET)
    assert result.status == 200
    answer = await api.wait_for_response("btn")
    assert answer["text"] == "That button is no longer active."


# -- outbound ---------------------------------------------------------------------------------


async def test_replies_to_a_message_go_to_its_thread(slack, api, clock) -> None:
    app, adapter = slack

    class Echo(Cog):  # a stand-in cog that answers one message privately and once in public
        name = "echo"

        async def on_event(self, event):
            if getattr(event, "text", None) == "ping":
                return [Reply(text="only you", ephemeral=True), Reply(text="pong", ephemeral=False)]
            return []

        async def erase_member(self, community_id, member_id) -> None:
            pass

    app.engine.add_cog(Echo(app.engine.services))
    t1 = ts(clock)
    await post_event(adapter, message_event("C1", "U1", "ping", t1))
    await adapter.drain()
    (private,) = api.calls_to("chat.postEphemeral")
    assert (private["channel"], private["user"], private["thread_ts"]) == ("C1", "U1", t1)
    (public,) = api.calls_to("chat.postMessage")
    assert public["thread_ts"] == t1 and public["text"] == "pong"


async def test_direct_message_is_opened_and_sent(slack, api) -> None:
    app, adapter = slack
    dm = DirectMessage(
        member=MemberRef("slack", "U1", "ana"),
        text="Ben asked a question you could answer: <https://x.org|thread>",
        buttons=(Button("Snooze a week", "nudges:snooze", "7"),),
    )
    await app.runtime.deliver([dm, dm])
    (opened,) = api.calls_to("conversations.open")  # cached after the first
    assert opened["users"] == "U1"
    first, second = api.calls_to("chat.postMessage")
    channel = first["channel"]
    assert channel.startswith("D") and second["channel"] == channel
    assert first["blocks"][-1]["elements"][0]["action_id"] == "nudges:snooze"
    assert "<https://x.org|thread>" in first["blocks"][0]["text"]["text"]
    assert [m["text"] for m in api.messages(channel)] == [first["text"], second["text"]]
    assert app.runtime.sent == 2

    # A deactivated member: the failure is counted and the member marked unreachable.
    await app.store.upsert_member(TEAM_ID, "U9", now=app.clock.now(), display_name="gone")
    api.error_next("conversations.open", "user_disabled")
    await app.runtime.deliver([DirectMessage(member=MemberRef("slack", "U9"), text="hi")])
    assert app.runtime.failed == 1
    assert not (await app.store.get_member(TEAM_ID, "U9"))["reachable"]


async def test_rate_limited_post_is_retried(slack, api) -> None:
    app, adapter = slack
    api.fail_next("chat.postMessage", status=429, headers={"Retry-After": "0"})
    place = PlaceRef("slack", TEAM_ID, "C1")
    await app.runtime.deliver([PostMessage(place=place, text="Weekly prompt")])
    assert len(api.calls_to("chat.postMessage")) == 2
    assert [m["text"] for m in api.messages("C1")] == ["Weekly prompt"]
    assert app.runtime.sent == 1 and app.runtime.failed == 0


async def test_failed_send_is_logged_and_marked_failed(slack, api, caplog) -> None:
    app, adapter = slack
    api.error_next("chat.postMessage", "channel_not_found")
    place = PlaceRef("slack", TEAM_ID, "C404")
    with caplog.at_level(logging.ERROR):
        await app.runtime.deliver([PostMessage(place=place, text="x", dedupe_key="k:1")])
    assert app.runtime.failed == 1
    assert "Slack refused PostMessage: channel_not_found" in caplog.text
    assert BOT_TOKEN not in caplog.text


async def test_long_report_is_split_into_valid_block_kit(slack, api) -> None:
    app, adapter = slack
    sections = tuple(
        Section(f"Week {i}", "\n".join(f"- learner {j} & co <ok>" for j in range(200)))
        for i in range(30)
    )
    chart = FileAttachment("activity.png", b"\x89PNG fake", "image/png", "Activity chart")
    rich = RichContent("Cohort report", sections, footer="Hearth", image=chart)
    place = PlaceRef("slack", TEAM_ID, "C1")
    posted: list[str] = []

    class Listener:  # a cog hook: the runtime hands it the id of a tagged post
        name = "listener"

        async def on_posted(self, action: PostMessage, message_id: str) -> None:
            posted.append(f"{action.tag}={message_id}")

    app.engine.cogs.append(Listener())  # type: ignore[arg-type]
    await app.runtime.deliver([PostMessage(place=place, rich=rich, tag="report")])
    posts = api.calls_to("chat.postMessage")
    assert len(posts) >= 2
    for post in posts:
        assert slack_blocks.check_blocks(post["blocks"]) == []
        assert len(post["blocks"]) <= 50
        for block in post["blocks"]:
            if block["type"] == "section":
                assert len(block["text"]["text"]) <= 3000
    assert posts[0]["blocks"][0]["text"]["text"] == f"Cohort report (1/{len(posts)})"
    every = "\n".join(b["text"]["text"] for p in posts for b in p["blocks"] if "text" in b)
    assert every.count("learner 199 &amp; co &lt;ok&gt;") == 30
    (upload,) = api.uploads.values()
    assert upload["filename"] == "activity.png" and upload["content"] == b"\x89PNG fake"
    # The first post's id (a thread for replies) goes back to the cogs through the runtime.
    assert posted == [f"report=C1:{posts and api.messages('C1')[0]['ts']}"]


async def test_reactions_and_attachments_go_out(slack, api, clock) -> None:
    app, adapter = slack
    place = PlaceRef("slack", TEAM_ID, "C1")
    csv = FileAttachment("grades.csv", b"member,score\nU1,3\n", "text/csv")
    await app.runtime.deliver(
        [
            React(place=place, message_id=f"C1:{ts(clock)}", emoji="🎉"),
            Attach(place=PlaceRef("slack", TEAM_ID, "<#C1|general>"), file=csv, text="Export"),
            PostMessage(place=PlaceRef("slack", TEAM_ID, "#general"), text="By name"),
        ]
    )
    assert api.calls_to("chat.postMessage")[-1]["channel"] == "C1"  # a name resolves to the id
    assert api.reactions == [("C1", ts(clock), "tada", "UBOT")]
    (upload,) = api.uploads.values()
    assert upload["content"] == b"member,score\nU1,3\n"
    assert [m["text"] for m in api.messages("C1")] == ["Export", "By name"]
    assert app.runtime.failed == 0


async def test_channel_pacer_spaces_posts_per_channel() -> None:
    now = [100.0]
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(round(seconds, 3))
        now[0] += seconds

    pacer = ChannelPacer(1.0, monotonic=lambda: now[0], sleep=fake_sleep)
    for channel in ("D1", "D1", "D2", "D1"):
        async with pacer.slot(channel):
            now[0] += 0.25  # the post itself takes a quarter second
    assert slept == [1.0, 0.75]  # D2 never waits; D1 waits for its own previous post


def test_recent_keys_are_bounded() -> None:
    keys = RecentKeys(capacity=3)
    assert all(keys.first_time(k) for k in "abcd")
    assert not keys.first_time("d") and "a" not in keys and len(keys) == 3


async def test_a_taken_events_port_is_one_line_naming_the_setting(tmp_path, api, clock) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app = await HearthApp.create(
            slack_settings(tmp_path, api, port=port), clock=clock, migrate=False
        )
        adapter = build_slack_adapter(app)
        app.add_adapter(adapter)
        try:
            with pytest.raises(
                ConfigError, match=rf"127.0.0.1:{port} \(\[slack\] port\): the port is in use"
            ):
                await adapter.start()
        finally:
            await app.close()


async def test_secrets_come_from_env_and_are_redacted(tmp_path, api, clock, monkeypatch) -> None:
    app = await HearthApp.create(slack_settings(tmp_path, api), clock=clock, migrate=False)
    try:
        monkeypatch.delenv("HEARTH_SLACK_SIGNING_SECRET")
        with pytest.raises(ConfigError, match="HEARTH_SLACK_SIGNING_SECRET"):
            build_slack_adapter(app)
        monkeypatch.setenv("HEARTH_SLACK_SIGNING_SECRET", SECRET)
        build_slack_adapter(app)
    finally:
        await app.close()
    redacted = redact_secrets(f"token={BOT_TOKEN} secret={SECRET}")
    assert BOT_TOKEN not in redacted and SECRET not in redacted


async def test_a_refused_bot_token_stops_start_with_a_clear_error(tmp_path, api, clock) -> None:
    api.revoke_token(BOT_TOKEN)
    app = await HearthApp.create(slack_settings(tmp_path, api), clock=clock, migrate=False)
    try:
        adapter = build_slack_adapter(app)
        with pytest.raises(ConfigError, match="HEARTH_SLACK_BOT_TOKEN: token_revoked"):
            await adapter.start()
    finally:
        await app.close()


# -- App Home ----------------------------------------------------------------------------------


async def test_app_home_publishes_the_learners_mirror(slack, api, clock) -> None:
    app, adapter = slack
    await post_event(adapter, message_event("C1", "U1", "My first idea about feedback", ts(clock)))
    await adapter.drain()
    await post_event(adapter, app_home_opened_event("U1"))
    await api.wait_for_call("views.publish")
    await adapter.drain()
    view = api.views["U1"]
    assert view["type"] == "home"
    assert slack_blocks.check_blocks(view["blocks"], max_blocks=100) == []
    home_text = "\n".join(b["text"]["text"] for b in view["blocks"] if b["type"] == "section")
    _ack, me = await command(adapter, api, "U1", "me", "me")
    assert home_text == me["text"] and "1 contribution," in home_text
    await post_event(adapter, app_home_opened_event("U2", tab="messages"))
    await adapter.drain()
    assert "U2" not in api.views


# -- catch-up ----------------------------------------------------------------------------------


async def test_catch_up_after_downtime_without_double_counting(tmp_path, api, clock) -> None:
    settings = slack_settings(tmp_path, api)
    t1, t2, t3, t4 = (ts(clock, s) for s in (0, 600, 1200, 1800))
    async with running(settings, clock) as (app, adapter):
        assert adapter.catch_up_task is None  # nothing stored yet: nothing to catch up on
        api.add_message("C1", message_event("C1", "U1", "Posted while we listened", t1))
        await post_event(adapter, message_event("C1", "U1", "Posted while we listened", t1))
        await adapter.drain()
        assert len(await table(app, C)) == 1

    # Down: the workspace goes on without us.
    api.add_message(
        "C1",
        {
            "user": "U2",
            "text": "Missed message: what about (Lee, 2019)?",
            "ts": t2,
            "reactions": [{"name": "eyes", "users": ["U3", "UBOT"], "count": 2}],
        },
    )
    api.add_message(
        "C1",
        {
            "user": "U3",
            "text": "Thanks, good question",
            "ts": t3,
            "thread_ts": t2,
            "parent_user_id": "U2",
        },
    )
    api.add_message(
        "C1",
        {"user": "U2", "text": "late answer", "ts": t4, "thread_ts": t1, "parent_user_id": "U1"},
    )
    api.add_message(
        "C1", {"bot_id": "B9", "subtype": "bot_message", "text": "bot", "ts": ts(clock, 1900)}
    )

    async with running(settings, clock) as (app, adapter):
        assert adapter.catch_up_task is not None
        assert await adapter.catch_up_task == 3
        await adapter.drain()
        ids = sorted(r["message_id"] for r in await table(app, C))
        assert ids == sorted(f"C1:{t}" for t in (t1, t2, t3, t4))
        assert {"reference", "question"} <= await kinds(app, f"C1:{t2}")
        assert await edges(app) == {
            ("reply", "U3", "U2"),
            ("reply", "U2", "U1"),
            ("reaction", "U3", "U2"),
        }
        history = api.calls_to("conversations.history")
        assert history[-1]["oldest"] == t1  # after the last stored message
        # Running it again (or a live redelivery of the same messages) changes nothing.
        assert await adapter.catch_up() == 0
        await post_event(adapter, message_event("C1", "U2", "dup", t2))
        await adapter.drain()
        assert len(await table(app, C)) == 4 and len(await table(app, E)) == 3

    async with running(settings, clock) as (app, adapter):
        if adapter.catch_up_task is not None:
            assert await adapter.catch_up_task == 0
        await adapter.drain()
        assert len(await table(app, C)) == 4 and len(await table(app, E)) == 3


# -- Socket Mode -------------------------------------------------------------------------------


async def test_socket_mode_end_to_end(tmp_path, api, clock) -> None:
    settings = slack_settings(tmp_path, api, mode="socket")
    async with SocketModeServer(api) as socket_server:
        async with running(settings, clock) as (app, adapter):
            await socket_server.wait_connected()
            opened = [c for c in api.calls if c.method == "apps.connections.open"]
            assert opened and opened[0].token == APP_TOKEN
            assert adapter.url is None  # no HTTP listener in Socket Mode

            t1 = ts(clock)
            body = event_envelope(message_event("C1", "U1", "Over the socket, any ideas?", t1))
            first = await socket_server.send_envelope(payload=body)
            again = await socket_server.send_envelope(payload=body, retry_attempt=1)
            assert await socket_server.wait_ack(first) == {"envelope_id": first}
            await socket_server.wait_ack(again)
            await adapter.drain()  # commands run beside the event queue, not behind it

            payload = slash_command_payload(
                "/course", "stats", "UADMIN", "C1", TEAM_ID, api.response_url("sock"), "tr-s"
            )
            command_env = await socket_server.send_envelope(type="slash_commands", payload=payload)
            ack = await socket_server.wait_ack(command_env)
            assert "payload" not in ack or not ack["payload"]
            answer = await api.wait_for_response("sock")
            await adapter.drain()
            assert "1 contribution," in answer["text"]
            assert {"idea", "question"} <= await kinds(app, f"C1:{t1}")
            assert app.runtime.events_received == 2 and adapter.duplicates == 1


# -- manifest (keep last: it checks the Web API methods every scenario above saw) ------------


async def test_manifest_lists_every_command_and_the_scopes_the_code_uses(slack, api, clock) -> None:
    app, adapter = slack
    # Exercise every outbound path once more, so this test stands on its own too.
    place = PlaceRef("slack", TEAM_ID, "C1")
    chart = FileAttachment("c.png", b"png", "image/png")
    await app.runtime.deliver(
        [
            PostMessage(place=place, text="hi", files=(chart,)),
            DirectMessage(member=MemberRef("slack", "U1"), text="hello"),
            React(place=place, message_id=f"C1:{ts(clock)}", emoji="tada"),
        ]
    )
    await post_event(adapter, message_event("C1", "U1", "hello", ts(clock)))
    await post_event(adapter, app_home_opened_event("U1"))
    await command(adapter, api, "U1", "me", "manifest")
    await adapter.drain()
    await adapter.catch_up()
    seen = SEEN_METHODS | {c.method for c in api.calls}

    manifest = build_manifest(app.settings, app.engine.registry)
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    unknown = seen - set(METHOD_SCOPES)
    assert not unknown, f"add these Web API methods to METHOD_SCOPES: {sorted(unknown)}"
    for method in seen:
        assert set(METHOD_SCOPES[method]) <= scopes, method
    # ... and no scope the code does not use.
    used = {"commands"} | {s for m in seen for s in METHOD_SCOPES[m]}
    used |= {s for _events, needed in SUBSCRIBED_EVENTS.values() for s in needed}
    assert scopes == used

    (slash,) = manifest["features"]["slash_commands"]
    assert slash["command"] == "/course" and slash["should_escape"] is True
    for spec in app.engine.registry:
        assert spec.name in slash["usage_hint"].split(" | ") or any(
            part.startswith(spec.name + " ") for part in slash["usage_hint"].split(" | ")
        )
    # Slack's manifest schema limits.
    info = manifest["display_information"]
    assert 1 <= len(info["name"]) <= 35 and 1 <= len(info["description"]) <= 140
    assert 175 <= len(info["long_description"]) <= 4000
    assert len(slash["command"]) <= 32 and 1 <= len(slash["description"]) <= 2000
    assert 1 <= len(slash["usage_hint"]) <= 1000
    events = manifest["settings"]["event_subscriptions"]
    assert set(events["bot_events"]) == {
        e for names, _ in SUBSCRIBED_EVENTS.values() for e in names
    }
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert manifest["settings"]["socket_mode_enabled"] is False
    assert events["request_url"].endswith("/slack/events")

    socket_settings = app.settings.model_copy(deep=True)
    socket_settings.slack.mode = "socket"
    socket_manifest = build_manifest(socket_settings, app.engine.registry)
    assert socket_manifest["settings"]["socket_mode_enabled"] is True
    assert "request_url" not in socket_manifest["settings"]["event_subscriptions"]
    assert "url" not in socket_manifest["features"]["slash_commands"][0]


def test_manifest_cli_prints_json(tmp_path) -> None:
    from typer.testing import CliRunner

    from bot.cli import cli

    config = tmp_path / "config.toml"
    config.write_text('[slack]\nmode = "socket"\n[storage]\npath = "unused.db"\n')
    result = CliRunner().invoke(cli, ["slack", "manifest", "--config", str(config)])
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.output)
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert "stats" in manifest["features"]["slash_commands"][0]["usage_hint"]
    bad = CliRunner().invoke(cli, ["slack", "manifest", "--mode", "carrier-pigeon"])
    assert bad.exit_code == 2
