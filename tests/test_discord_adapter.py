"""The real Discord adapter (discord.py 2.7 client) against the loopback Discord emulator.

Each scenario builds a real HearthApp on a temporary SQLite file, attaches the adapter built by
``build_discord_adapter`` (pointed at the emulator through ``[discord] api_base_url`` and
``gateway_url``, as a deployment would be) and lets the emulator play Discord: gateway
dispatches for messages, reactions, members and interactions, REST for everything the bot
sends. Every wait is bounded and event-driven; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot.actions import (
    Button,
    DirectMessage,
    Field,
    FileAttachment,
    PostMessage,
    React,
    RichContent,
    Section,
)
from bot.adapters.discord_adapter import (
    DiscordAdapter,
    bot_permissions,
    build_discord_adapter,
    invite_url,
)
from bot.adapters.discord_render import MAX_CONTENT, MAX_EMBED_TOTAL
from bot.app import HearthApp
from bot.classify import kinds_from_mask
from bot.cli import cli
from bot.clock import FakeClock
from bot.config import ConfigError
from bot.discord_cli import sync_commands
from bot.events import MemberRef, PlaceRef
from storage.reflections_models import Reflection
from storage.repos import C, E, M, S
from tests.conftest import make_settings
from tests.emulators.discord_server import DiscordEmulator, Intent, json_response, make_fast

WAIT = 5.0
TOKEN_ENV = "HEARTH_DISCORD_TOKEN"
REFLECTION = Reflection.__table__


@pytest.fixture
async def emu() -> AsyncIterator[DiscordEmulator]:
    async with DiscordEmulator() as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(TOKEN_ENV, "hearth-test-token")
    return "hearth-test-token"


def discord_settings(tmp_path, emu: DiscordEmulator, **discord: Any):
    return make_settings(
        tmp_path / "hearth.db",
        discord={
            "enabled": True,
            "api_base_url": emu.api_base,
            "gateway_url": emu.gateway_url,
            "dm_per_minute": 60_000,  # 1 ms between DMs: pacing is tested on its own
            **discord,
        },
    )


@asynccontextmanager
async def running(settings, clock=None) -> AsyncIterator[tuple[HearthApp, DiscordAdapter]]:
    """A real app with the real adapter, connected and caught up; closed at the end."""
    app = await HearthApp.create(settings, clock=clock, migrate=False)
    adapter = build_discord_adapter(app, on_client=make_fast)
    app.add_adapter(adapter)
    try:
        await adapter.start()
        await asyncio.wait_for(adapter.ready.wait(), WAIT)
        yield app, adapter
    finally:
        await app.close()


@pytest.fixture
async def bot(tmp_path, emu) -> AsyncIterator[tuple[HearthApp, DiscordAdapter]]:
    async with running(discord_settings(tmp_path, emu)) as pair:
        yield pair


async def handled(adapter: DiscordAdapter, count: int) -> None:
    """Wait until the adapter has applied ``count`` events in total."""
    await adapter.wait_until(lambda: adapter.handled >= count, timeout=WAIT)
    await adapter.drain()


async def table(app: HearthApp, t) -> list[dict[str, Any]]:
    await app.store.flush()
    async with app.store.engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(select(t))).mappings()]


async def contribution(app: HearthApp, emu: DiscordEmulator, payload: dict) -> dict[str, Any]:
    assert emu.world is not None
    row = await app.store.contribution(str(emu.world.guild_id), payload["id"])
    assert row is not None, f"message {payload['id']} was not recorded"
    return row


async def kinds(app: HearthApp, emu: DiscordEmulator, payload: dict) -> set[str]:
    return set(kinds_from_mask((await contribution(app, emu, payload))["kinds"]))


async def edges(app: HearthApp) -> set[tuple[str, str, str]]:
    return {(e["kind"], e["source_id"], e["target_id"]) for e in await table(app, E)}


def uid(user: dict[str, Any]) -> str:
    return str(user["id"])


async def callback_of(emu: DiscordEmulator, payload: dict[str, Any]):
    """The interaction's record once its first answer (response or deferral) came."""
    await emu.wait_for_request("POST", rf"/interactions/{payload['id']}/[^/]+/callback")
    return emu.interactions[int(payload["id"])]


# -- inbound: messages, threads, reactions, members ------------------------------------------------


async def test_messages_replies_threads_and_mentions_are_tracked(bot, emu) -> None:
    app, adapter = bot
    world = emu.world
    question = await emu.send_message_create(
        world.general_id, world.alice, "How do I cite Smith (2020) in the essay?"
    )
    answer = await emu.send_message_create(
        world.general_id,
        world.bob,
        "Like this, thanks for asking!",
        reference_id=int(question["id"]),
    )
    in_thread = await emu.send_message_create(world.thread_id, world.alice, "My week 1 thoughts")
    mention = await emu.send_message_create(
        world.general_id, world.bob, f"<@{uid(world.alice)}> yes"
    )
    await emu.send_message_create(world.general_id, emu.bot_user, "Hearth's own post")
    await handled(adapter, 4)

    assert "question" in await kinds(app, emu, question)
    assert "builds_on" in await kinds(app, emu, answer)
    row = await contribution(app, emu, answer)
    assert row["reply_to_id"] == question["id"] and row["reply_to_member_id"] == uid(world.alice)
    thread_row = await contribution(app, emu, in_thread)
    assert thread_row["channel_id"] == str(world.general_id)
    assert thread_row["thread_id"] == str(world.thread_id)
    assert "builds_on" in await kinds(app, emu, mention)
    assert await edges(app) == {
        ("reply", uid(world.bob), uid(world.alice)),
        ("mention", uid(world.bob), uid(world.alice)),
    }
    rows = await table(app, C)
    assert len(rows) == 4  # the bot's own message is not a contribution
    members = {r["member_id"]: r for r in await table(app, M)}
    assert members[uid(world.alice)]["display_name"] == "Alice"
    assert emu.bot_id not in {int(m) for m in members}
    channels = await app.store.channels(str(world.guild_id))
    assert {c["channel_id"]: c["name"] for c in channels} == {str(world.general_id): "general"}
    health = adapter.health()
    assert health["connected"] and health["guilds"] == 1 and health["message_content"]
    assert health["queued_events"] == 0 and health["malformed_payloads"] == 0


async def test_facilitator_role_marks_the_member(bot, emu) -> None:
    app, adapter = bot
    world = emu.world
    await emu.send_message_create(world.general_id, world.fran, "Welcome, everyone")
    await handled(adapter, 1)
    row = await app.store.get_member(str(world.guild_id), uid(world.fran))
    assert row is not None and row["is_facilitator"]


async def test_reactions_edits_deletes_joins_and_leaves(bot, emu) -> None:
    app, adapter = bot
    world = emu.world
    draft = await emu.send_message_create(world.general_id, world.alice, "Here is my draft")
    await handled(adapter, 1)
    mid = int(draft["id"])

    await emu.send_reaction_add(world.general_id, mid, world.bob, "🎉")
    await handled(adapter, 2)
    assert [
        (e["kind"], e["source_id"], e["target_id"], e["detail"]) for e in await table(app, E)
    ] == [("reaction", uid(world.bob), uid(world.alice), "🎉")]
    await emu.send_reaction_remove(world.general_id, mid, world.bob, "🎉")
    await handled(adapter, 3)
    assert await table(app, E) == []
    bob = await app.store.get_member(str(world.guild_id), uid(world.bob))
    assert bob is not None and bob["display_name"] == "Bob"  # a removal carries no name

    await emu.send_message_update(
        world.general_id, mid, content="Here is my draft, based on https://doi.org/10.1000/182"
    )
    await handled(adapter, 4)
    row = await contribution(app, emu, draft)
    assert row["edited_at"] is not None and "reference" in await kinds(app, emu, draft)

    await emu.send_message_delete(world.general_id, mid)
    await handled(adapter, 5)
    assert await app.store.contribution(str(world.guild_id), draft["id"]) is None

    dana = emu.create_user("dana", global_name="Dana")
    await emu.send_member_add(world.guild_id, dana)
    await handled(adapter, 6)
    joined = await app.store.get_member(str(world.guild_id), uid(dana))
    assert joined is not None and joined["joined_at"] is not None and joined["left_at"] is None
    await emu.send_member_remove(world.guild_id, dana)
    await handled(adapter, 7)
    left = await app.store.get_member(str(world.guild_id), uid(dana))
    assert left is not None and left["left_at"] is not None


async def test_reactions_to_hearths_own_posts_are_not_interactions(bot, emu) -> None:
    app, adapter = bot
    world = emu.world
    await app.runtime.deliver(
        [
            PostMessage(
                place=PlaceRef("discord", str(world.guild_id), str(world.general_id)),
                text="This week's prompt",
            )
        ]
    )
    posted = emu.bot_messages(world.general_id)[-1]
    await emu.send_reaction_add(world.general_id, int(posted["id"]), world.alice, "👍")
    note = await emu.send_message_create(world.general_id, world.bob, "noted")
    await handled(adapter, 1)
    assert await app.store.contribution(str(world.guild_id), note["id"]) is not None
    assert await table(app, E) == []


# -- slash commands and buttons --------------------------------------------------------------------


async def test_facilitator_runs_stats_and_gets_an_ephemeral_answer(bot, emu) -> None:
    _app, adapter = bot
    world = emu.world
    await emu.send_message_create(world.general_id, world.alice, "My first idea about the reading")
    await handled(adapter, 1)

    payload = await emu.send_interaction("course stats", user=world.fran)
    record = await callback_of(emu, payload)
    assert record.response_type == 4 and record.ephemeral
    assert "1 contribution," in record.response_data["content"]
    assert emu.bot_messages(world.general_id) == []  # nothing public

    about_alice = await emu.send_interaction(
        "course stats", user=world.fran, options={"member": world.alice, "days": 30}
    )
    record = await callback_of(emu, about_alice)
    assert record.ephemeral
    assert record.response_data["content"].startswith("Alice, last 30 days:")


async def test_learner_is_refused_a_facilitator_only_command(bot, emu) -> None:
    _app, _adapter = bot
    world = emu.world
    payload = await emu.send_interaction("course stats", user=world.alice)
    record = await callback_of(emu, payload)
    assert record.ephemeral
    assert "for facilitators only" in record.response_data["content"]


async def test_subcommand_groups_and_help(bot, emu) -> None:
    app, _adapter = bot
    world = emu.world
    off = await emu.send_interaction("course nudges off", user=world.alice)
    record = await callback_of(emu, off)
    assert record.ephemeral and "nudge" in record.response_data["content"].lower()
    prefs = await app.store.member_prefs(str(world.guild_id), uid(world.alice))
    assert "off" in prefs.values()

    learner = await callback_of(emu, await emu.send_interaction("course help", user=world.alice))
    facilitator = await callback_of(emu, await emu.send_interaction("course help", user=world.fran))
    assert "me" in learner.response_data["content"]
    assert "stats" not in learner.response_data["content"]
    assert "stats" in facilitator.response_data["content"]
    one = await callback_of(
        emu,
        await emu.send_interaction("course help", user=world.fran, options={"command": "stats"}),
    )
    assert one.response_data["content"].startswith("usage: /course stats [member] [days]")


async def test_stats_for_a_picked_channel_or_thread(bot, emu) -> None:
    """A channel picked in the option is known to the handler by name, even one nobody has
    posted in yet; a thread's numbers are its own posts."""
    _app, adapter = bot
    world = emu.world
    await emu.send_message_create(world.general_id, world.alice, "Hello, what is due?")
    await emu.send_message_create(world.thread_id, world.bob, "Week 1 thoughts, thanks!")
    await handled(adapter, 2)
    answers = {}
    for name, picked in (("help", world.help_id), ("thread", world.thread_id)):
        payload = await emu.send_interaction(
            "course stats", user=world.fran, options={"channel": (7, picked)}
        )
        answers[name] = (await callback_of(emu, payload)).response_data["content"]
    assert answers["help"].startswith("#help, last 7 days:\n0 contributions"), answers
    assert answers["thread"].split(", last 7 days:\n")[1].startswith("1 contribution,"), answers


async def test_a_number_past_an_options_range_gets_a_usage_line(bot, emu) -> None:
    """Discord checks the ranges it was given at registration, but a payload is only a
    payload: the bot checks again, for options with a range of their own and without."""
    world = emu.world
    for command, options in (
        ("course prompt cancel", {"id": 10**30}),
        ("course stats", {"days": 2**31}),
        ("course me", {"days": -(2**31)}),
    ):
        record = await callback_of(
            emu, await emu.send_interaction(command, user=world.fran, options=options)
        )
        content = record.response_data["content"]
        assert record.ephemeral and f"usage: /{command}" in content, (command, content)


async def test_a_member_picked_in_an_option_is_known_even_before_posting(bot, emu) -> None:
    app, _adapter = bot
    world = emu.world
    payload = await emu.send_interaction(
        "course stats", user=world.fran, options={"member": world.bob}
    )
    record = await callback_of(emu, payload)
    assert record.response_data["content"].startswith("Bob, last 7 days:")
    assert await app.store.get_member(str(world.guild_id), uid(world.bob)) is not None


async def test_slow_commands_defer_then_answer(bot, emu) -> None:
    _app, adapter = bot
    world = emu.world
    payload = await emu.send_interaction("course quiet", user=world.fran)  # declared slow
    await emu.wait_for_request("PATCH", rf"/webhooks/{emu.application_id}/[^/]+/messages/@original")
    record = emu.interactions[int(payload["id"])]
    assert record.response_type == 5 and record.ephemeral  # "thinking...", privately
    assert record.original is not None and record.original["content"]

    # A quick command that misses the budget is deferred too, then answered.
    adapter.answer_budget = 0.0
    late = await emu.send_interaction("course me", user=world.alice)
    await emu.wait_for_request(
        "PATCH", rf"/webhooks/{emu.application_id}/[^/]+/messages/@original", count=2
    )
    record = emu.interactions[int(late["id"])]
    assert record.response_type == 5 and record.ephemeral
    assert "Your participation" in record.original["content"]


async def test_buttons_are_sent_and_presses_reach_the_cog(bot, emu) -> None:
    app, adapter = bot
    world = emu.world
    fran = MemberRef("discord", uid(world.fran), "Fran")
    confirm = Button("Send 2 nudges", "nudges:confirm", "0123456789abcdef")
    await app.runtime.deliver([DirectMessage(member=fran, text="Preview", buttons=(confirm,))])
    await adapter.drain()
    sent = emu.bot_messages(int(emu.dm_channel(world.fran)["id"]))[-1]
    (button,) = sent["components"][0]["components"]
    assert (button["label"], button["custom_id"]) == (
        "Send 2 nudges",
        "nudges:confirm:0123456789abcdef",
    )

    payload = await press(emu, world.fran, button["custom_id"])
    record = await callback_of(emu, payload)
    assert record.ephemeral
    # The nudges cog checked the token against the current plan and answered.
    assert record.response_data["content"].startswith("The plan changed since that preview")

    unknown = await press(emu, world.alice, "nope:thing:1")
    record = await callback_of(emu, unknown)
    assert record.ephemeral and "no longer active" in record.response_data["content"]


async def press(emu: DiscordEmulator, user: dict, custom_id: str) -> dict[str, Any]:
    """A button press (component interaction) on a message Hearth posted."""
    world = emu.world
    payload = emu.interaction_payload("course me", user=user)
    payload["type"] = 3
    payload["data"] = {"custom_id": custom_id, "component_type": 2}
    payload["message"] = emu.message_payload(world.general_id, emu.bot_id, "preview")
    await emu.dispatch("INTERACTION_CREATE", payload)
    return payload


# -- outbound: posts, DMs, limits, rate limits -----------------------------------------------------


def general(emu: DiscordEmulator) -> PlaceRef:
    return PlaceRef("discord", str(emu.world.guild_id), str(emu.world.general_id))


async def test_a_dm_reaches_a_member(bot, emu) -> None:
    app, adapter = bot
    world = emu.world
    alice = MemberRef("discord", uid(world.alice), "Alice")
    rich = RichContent("Your week", sections=(Section("Contributions", "4 posts"),))
    await app.runtime.deliver([DirectMessage(member=alice, text="Hello Alice", rich=rich)])
    await adapter.drain()
    dm = emu.dm_channel(world.alice)
    sent = emu.bot_messages(int(dm["id"]))
    assert [m["content"] for m in sent] == ["Hello Alice"]
    assert sent[0]["embeds"][0]["title"] == "Your week"
    assert adapter.dms_sent == 1


async def test_closed_dms_mark_the_member_unreachable_and_are_not_retried(bot, emu) -> None:
    app, adapter = bot
    world = emu.world
    carol = emu.create_user("carol", global_name="Carol", dms_open=False)
    emu.add_member(world.guild_id, carol)
    await emu.send_message_create(world.general_id, carol, "hi all")
    await handled(adapter, 1)
    ref = MemberRef("discord", uid(carol), "Carol")

    await app.runtime.deliver([DirectMessage(member=ref, text="nudge 1", dedupe_key="n:1")])
    await adapter.drain()
    row = await app.store.get_member(str(world.guild_id), uid(carol))
    assert row is not None and not row["reachable"]
    dm_id = emu.dm_channel(carol)["id"]
    assert [r.status for r in emu.requests_matching("POST", rf"/channels/{dm_id}/messages")] == [
        403
    ]

    await app.runtime.deliver([DirectMessage(member=ref, text="nudge 2", dedupe_key="n:2")])
    await adapter.drain()
    assert len(emu.requests_matching("POST", rf"/channels/{dm_id}/messages")) == 1
    ledger = {r["dedupe_key"]: r["status"] for r in await table(app, S)}
    assert ledger == {"n:1": "failed", "n:2": "failed"}


async def test_opening_dms_too_fast_backs_off_and_retries(bot, emu) -> None:
    app, adapter = bot
    world = emu.world
    adapter.dm_backoff = 0.01
    emu.fail_next(
        "POST",
        r"/channels/\d+/messages",
        403,
        {"code": 40003, "message": "You are opening direct messages too fast."},
    )
    await app.runtime.deliver(
        [DirectMessage(member=MemberRef("discord", uid(world.bob), "Bob"), text="hello")]
    )
    await adapter.drain()
    posts = emu.requests_matching("POST", r"/channels/\d+/messages")
    assert [p.status for p in posts] == [403, 200]
    assert adapter.dms_sent == 1 and adapter.dms_failed == 0


async def test_dms_are_paced(bot, emu) -> None:
    app, adapter = bot
    world = emu.world
    adapter.dm_interval = 0.05
    loop = asyncio.get_running_loop()
    started = loop.time()
    refs = [MemberRef("discord", uid(u), "") for u in (world.alice, world.bob, world.fran)]
    await app.runtime.deliver([DirectMessage(member=r, text="hi") for r in refs])
    await adapter.drain()
    assert adapter.dms_sent == 3
    assert loop.time() - started >= 0.1  # three DMs, two intervals at least


async def test_a_429_on_send_is_retried(bot, emu) -> None:
    app, _adapter = bot
    world = emu.world
    emu.fail_next("POST", rf"/channels/{world.general_id}/messages", 429, {"retry_after": 0.05})
    await app.runtime.deliver([PostMessage(place=general(emu), text="After a rate limit")])
    posts = emu.requests_matching("POST", rf"/channels/{world.general_id}/messages")
    assert [p.status for p in posts] == [429, 200]
    assert emu.bot_messages(world.general_id)[-1]["content"] == "After a rate limit"
    assert app.runtime.failed == 0


async def test_a_long_report_is_split_within_discords_limits(bot, emu) -> None:
    _app, adapter = bot
    world = emu.world
    sections = tuple(
        Section(
            f"Learner group {i}",
            ("Notes about this group. " * 70).strip(),
            tuple(Field(f"member {i}.{j}", "x" * 900, inline=False) for j in range(6)),
        )
        for i in range(12)
    )
    chart = FileAttachment("week.png", b"\x89PNG fake", "image/png")
    report = RichContent("Weekly report", sections=sections, footer="Hearth", image=chart)
    csv = FileAttachment("report.csv", b"name,posts\nalice,3\n", "text/csv")
    action = PostMessage(
        place=general(emu),
        text="Here is the full report. " * 100,
        rich=report,
        files=(csv,),
        tag="test:report",
        as_thread_title="Weekly report",
    )
    await adapter.send(action, None)

    posts = [p for p in emu.requests_matching("POST", r"/channels/\d+/messages") if p.status == 200]
    assert len(posts) > 3
    for post in posts:
        body = post.body
        assert len(body.get("content") or "") <= MAX_CONTENT
        embeds = body.get("embeds") or []
        assert len(embeds) <= 10
        size = sum(
            len(e.get("title") or "")
            + len(e.get("description") or "")
            + sum(len(f["name"]) + len(f["value"]) for f in e.get("fields", []))
            + len((e.get("footer") or {}).get("text") or "")
            for e in embeds
        )
        assert size <= MAX_EMBED_TOTAL
    first = posts[0]
    assert first.path == f"/channels/{world.general_id}/messages"
    first_id = adapter.tagged["test:report"]
    thread = emu.channels[int(first_id)]  # the thread started from the first post
    assert thread["name"] == "Weekly report" and thread["parent_id"] == str(world.general_id)
    assert all(p.path == f"/channels/{first_id}/messages" for p in posts[1:])
    uploads = [name for p in posts for name in p.files]
    assert sorted(uploads) == ["report.csv", "week.png"]
    shown = [p for p in posts if "week.png" in p.files][0]
    assert any(
        (e.get("image") or {}).get("url") == "attachment://week.png" for e in shown.body["embeds"]
    )


async def test_a_reflection_prompt_opens_a_thread_whose_answers_count(tmp_path, emu) -> None:
    """The tagged-post round trip: the prompt's message id comes back as its thread key."""
    world = emu.world
    settings = discord_settings(tmp_path, emu)
    settings.course.reflection_channel = "general"  # by name, as a facilitator would write it
    async with running(settings) as (app, adapter):
        payload = await emu.send_interaction(
            "course prompt post", user=world.fran, options={"text": "What surprised you?"}
        )
        await callback_of(emu, payload)
        await adapter.drain()
        (prompt,) = emu.bot_messages(world.general_id)[-1:]
        thread = emu.channels[int(prompt["id"])]
        assert thread["parent_id"] == str(world.general_id)
        answer = await emu.send_message_create(int(prompt["id"]), world.alice, "The pace of it")
        await handled(adapter, 1)
        rows = await table(app, REFLECTION)
        assert [(r["member_id"], r["message_id"]) for r in rows] == [
            (uid(world.alice), answer["id"])
        ]


async def test_a_dm_answer_belongs_to_the_members_course(tmp_path, emu) -> None:
    """A Discord DM has no guild: the answer is attributed to the course of the member."""
    world = emu.world
    settings = discord_settings(tmp_path, emu)
    settings.reflections.delivery = "dm"
    midday = datetime.now(UTC).replace(hour=12)  # outside everyone's quiet hours
    async with running(settings, FakeClock(midday)) as (app, adapter):
        await emu.send_message_create(world.general_id, world.alice, "Hello class")
        await handled(adapter, 1)
        payload = await emu.send_interaction(
            "course prompt post", user=world.fran, options={"text": "What surprised you?"}
        )
        await callback_of(emu, payload)
        await adapter.drain()
        dm = int(emu.dm_channel(world.alice)["id"])
        assert "What surprised you?" in emu.bot_messages(dm)[-1]["content"]
        answer = await emu.send_message_create(dm, world.alice, "The pace of the course")
        stranger = emu.create_user("stranger")
        await emu.send_message_create(int(emu.dm_channel(stranger)["id"]), stranger, "hi bot")
        await adapter.wait_until(lambda: adapter._inbound.empty() and adapter.handled >= 2)
        await adapter.drain()
        rows = await table(app, REFLECTION)
        assert [(r["community_id"], r["message_id"]) for r in rows] == [
            (str(world.guild_id), answer["id"])
        ]
        assert len(await table(app, C)) == 1  # DMs are never contributions


async def test_posts_to_a_named_channel_and_reacts(bot, emu) -> None:
    app, _adapter = bot
    world = emu.world
    msg = await emu.send_message_create(world.help_id, world.alice, "I am stuck")
    await app.runtime.deliver(
        [
            PostMessage(place=PlaceRef("discord", str(world.guild_id), "#help"), text="On it"),
            React(place=general(emu), message_id=msg["id"], emoji="👀"),
        ]
    )
    assert emu.bot_messages(world.help_id)[-1]["content"] == "On it"
    assert emu.requests[-1][:2] == (
        "PUT",
        f"/channels/{world.general_id}/messages/{msg['id']}/reactions/👀/@me",
    )


# -- resilience: malformed payloads, reconnects, restarts ------------------------------------------


async def test_unexpected_payloads_do_not_take_the_bot_down(bot, emu, caplog) -> None:
    app, adapter = bot
    world = emu.world
    with caplog.at_level(logging.WARNING, logger="bot.adapters.discord_adapter"):
        # A dispatch with fields missing: discord.py's parser raises; the adapter skips it.
        await emu.send_raw(
            {"op": 0, "t": "MESSAGE_CREATE", "s": None, "d": {"id": "1", "channel_id": "2"}}
        )
        # A message type nobody knows yet: a system message, not a contribution.
        odd = emu.message_payload(world.general_id, world.alice, "what is this", type=999)
        await emu.dispatch("MESSAGE_CREATE", odd)
        fine = await emu.send_message_create(world.general_id, world.bob, "still here")
        await handled(adapter, 2)
    assert adapter.malformed == 1
    assert "skipped a malformed MESSAGE_CREATE payload" in caplog.text
    assert len(emu.identifies) == 1 and emu.live_connections == 1  # the connection was kept
    assert await app.store.contribution(str(world.guild_id), odd["id"]) is None
    assert await app.store.contribution(str(world.guild_id), fine["id"]) is not None

    # A frame that is not JSON at all ends discord.py's connect(): the adapter reconnects with
    # a fresh IDENTIFY and catches up on what was said meanwhile.
    missed = emu.store_message(world.general_id, world.alice, "said while reconnecting")
    await emu.send_raw("this is not json")
    await adapter.wait_until(lambda: len(adapter.catch_ups) == 2, timeout=WAIT)
    assert adapter.restarts == 1 and len(emu.identifies) == 2
    assert adapter.catch_ups == [0, 1]
    assert await app.store.contribution(str(world.guild_id), missed["id"]) is not None
    after = await emu.send_message_create(world.general_id, world.alice, "and back live")
    await adapter.wait_until(lambda: adapter.handled >= 4, timeout=WAIT)
    assert await app.store.contribution(str(world.guild_id), after["id"]) is not None


async def test_a_resumed_session_replays_and_a_fresh_one_catches_up(bot, emu) -> None:
    app, adapter = bot
    world = emu.world
    await emu.send_message_create(world.general_id, world.alice, "before")
    await handled(adapter, 1)

    # Resumable drop: Discord replays what was missed, no catch-up needed.
    emu.hold_gateway()
    await emu.drop_connections(4000)
    replayed = await emu.send_message_create(world.general_id, world.bob, "replayed on resume")
    emu.release_gateway()
    await handled(adapter, 2)
    assert adapter.catch_ups == [0]
    assert await app.store.contribution(str(world.guild_id), replayed["id"]) is not None

    # The session is gone: a new READY, and history fills the gap.
    emu.hold_gateway()
    await emu.drop_connections(4000, invalidate=True)
    gap = emu.store_message(world.general_id, world.alice, "said in the gap")
    emu.release_gateway()
    await adapter.wait_until(lambda: len(adapter.catch_ups) == 2, timeout=WAIT)
    assert adapter.catch_ups == [0, 1]
    assert await app.store.contribution(str(world.guild_id), gap["id"]) is not None
    assert len(await table(app, C)) == 3


async def test_restart_catches_up_without_double_counting(tmp_path, emu) -> None:
    world = emu.world
    settings = discord_settings(tmp_path, emu)
    async with running(settings) as (_app, adapter):
        first = await emu.send_message_create(world.general_id, world.alice, "Week 1 idea")
        second = await emu.send_message_create(
            world.general_id, world.bob, "Building on that", reference_id=int(first["id"])
        )
        await handled(adapter, 2)

    # Hearth is down; people keep talking, in the channel and in a thread.
    away = emu.store_message(
        world.general_id, world.alice, "Thanks Bob!", reference_id=int(second["id"])
    )
    in_thread = emu.store_message(world.thread_id, world.bob, "Thread reply while away")
    reaction = emu.reaction_payload(world.general_id, int(away["id"]), world.bob, "❤️")
    emu._apply_event("MESSAGE_REACTION_ADD", reaction)  # a reaction made while away

    async with running(settings) as (app, adapter):
        assert adapter.catch_ups == [2]
        rows = await table(app, C)
        assert sorted(r["message_id"] for r in rows) == sorted(
            p["id"] for p in (first, second, away, in_thread)
        )
        history = emu.requests_matching("GET", rf"/channels/{world.general_id}/messages")
        assert history[-1].query["after"] == second["id"]
        assert ("reply", uid(world.alice), uid(world.bob)) in await edges(app)
        assert ("reaction", uid(world.bob), uid(world.alice)) in await edges(app)
        assert (await contribution(app, emu, in_thread))["thread_id"] == str(world.thread_id)
        # Reading history again finds nothing new and counts nothing twice.
        assert await adapter.catch_up() == 0
        assert len(await table(app, C)) == 4


# -- intents, sharding, tokens ---------------------------------------------------------------------


async def test_without_message_content_intent_structure_is_recorded(tmp_path, caplog) -> None:
    async with DiscordEmulator(allowed_privileged_intents=Intent.GUILD_MEMBERS) as emu:
        world = emu.world
        with caplog.at_level(logging.INFO):
            async with running(discord_settings(tmp_path, emu)) as (app, adapter):
                assert emu.intents is not None
                assert (
                    not emu.intents & Intent.MESSAGE_CONTENT and emu.intents & Intent.GUILD_MEMBERS
                )
                question = await emu.send_message_create(
                    world.general_id, world.alice, "How do I submit the essay?"
                )
                reply = await emu.send_message_create(
                    world.general_id, world.bob, "Use the form", reference_id=int(question["id"])
                )
                await handled(adapter, 2)
                assert "question" not in await kinds(app, emu, question)  # the text was withheld
                assert "builds_on" in await kinds(app, emu, reply)
                assert ("reply", uid(world.bob), uid(world.alice)) in await edges(app)
        notices = [
            r for r in caplog.records if "Message Content intent is not enabled" in r.message
        ]
        assert len(notices) == 1 and notices[0].levelno == logging.WARNING


async def test_a_gateway_refusing_privileged_intents_is_survived(tmp_path, caplog) -> None:
    """The application claims the intents, but the gateway closes with 4014 anyway."""
    async with DiscordEmulator(allowed_privileged_intents=0) as emu:
        emu._app_flags = lambda: (1 << 19) | (1 << 15)  # what the portal would show if enabled
        world = emu.world
        with caplog.at_level(logging.WARNING, logger="bot.adapters.discord_adapter"):
            async with running(discord_settings(tmp_path, emu)) as (app, adapter):
                assert emu.connections[0].close_code == 4014
                assert emu.intents is not None and not emu.intents & Intent.PRIVILEGED
                posted = await emu.send_message_create(world.general_id, world.alice, "hi")
                await handled(adapter, 1)
                assert await app.store.contribution(str(world.guild_id), posted["id"]) is not None
        assert "Message Content intent is not enabled" in caplog.text
        assert "Server Members intent is not enabled" in caplog.text


async def test_sharded_client_connects(tmp_path, emu) -> None:
    world = emu.world
    async with running(discord_settings(tmp_path, emu, shard_count=2)) as (app, adapter):
        await adapter.wait_until(lambda: len(adapter.catch_ups) == 2, timeout=WAIT)
        assert sorted(tuple(i["shard"]) for i in emu.identifies) == [(0, 2), (1, 2)]
        assert adapter.client is not None and adapter.client.shard_count == 2
        posted = await emu.send_message_create(world.general_id, world.alice, "hello shards")
        await handled(adapter, 1)
        assert await app.store.contribution(str(world.guild_id), posted["id"]) is not None
        payload = await emu.send_interaction("course me", user=world.alice)
        assert (await callback_of(emu, payload)).ephemeral


async def test_shards_automatically_when_discord_recommends_it(tmp_path, emu) -> None:
    async def two_shards(_req: Any):
        limit = {"total": 1000, "remaining": 999, "reset_after": 1, "max_concurrency": 1}
        return json_response({"url": emu.gateway_url, "shards": 2, "session_start_limit": limit})

    emu._r_gateway_bot = two_shards  # the emulator always says 1; a big bot hears 2
    async with running(discord_settings(tmp_path, emu)) as (_app, adapter):
        await adapter.wait_until(lambda: len(adapter.catch_ups) == 2, timeout=WAIT)
        assert adapter.sharded and sorted(i["shard"][0] for i in emu.identifies) == [0, 1]


async def test_a_refused_token_is_a_config_error(tmp_path, emu, monkeypatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, "not-the-token")
    app = await HearthApp.create(discord_settings(tmp_path, emu), migrate=False)
    try:
        adapter = build_discord_adapter(app)
        app.add_adapter(adapter)
        with pytest.raises(ConfigError, match=TOKEN_ENV):
            await adapter.start()
    finally:
        await app.close()


async def test_discord_unreachable_at_start_is_a_clear_error(tmp_path, emu) -> None:
    settings = discord_settings(tmp_path, emu)
    port = emu.port
    await emu.stop()  # nothing listens there any more
    settings.discord.api_base_url = f"http://127.0.0.1:{port}/api/v10"
    app = await HearthApp.create(settings, migrate=False)
    try:
        adapter = build_discord_adapter(app)
        app.add_adapter(adapter)
        adapter.login_backoff = 0.001
        with pytest.raises(ConfigError, match="cannot reach Discord .* after 5 attempts"):
            await adapter.start()
    finally:
        await app.close()


# -- commands sync and invite --------------------------------------------------------------------


async def test_sync_commands_registers_the_command_tree(tmp_path, emu) -> None:
    world = emu.world
    settings = discord_settings(tmp_path, emu, guild_ids=[str(world.guild_id)])
    synced = await sync_commands(settings)
    assert synced == {f"guild {world.guild_id}": ["course"]}
    put = emu.requests_matching(
        "PUT", rf"/applications/{emu.application_id}/guilds/{world.guild_id}/commands"
    )[-1]
    (course,) = put.body
    assert course["name"] == "course" and course["type"] == 1
    assert course["default_member_permissions"] is None and course["dm_permission"] is False
    subs = {o["name"]: o for o in course["options"]}
    assert {"stats", "me", "kudos", "prompt", "nudges", "summary"} <= set(subs)
    stats = subs["stats"]
    assert stats["type"] == 1 and stats["description"].endswith("(facilitators)")
    opts = {o["name"]: o for o in stats["options"]}
    assert opts["member"]["type"] == 6  # a member picker
    assert (opts["days"]["type"], opts["days"]["min_value"], opts["days"]["max_value"]) == (
        4,
        1,
        3650,
    )
    assert subs["prompt"]["type"] == 2  # a subcommand group
    assert {o["name"] for o in subs["prompt"]["options"]} == {"post", "schedule", "list", "cancel"}
    mirror = subs["mirror"]["options"][0]
    assert mirror["type"] == 3 and [c["value"] for c in mirror["choices"]] == ["on", "off"]
    assert subs["summary"]["options"][0]["options"][0]["type"] == 5  # preview: a boolean
    setup = {o["name"]: o["type"] for o in subs["setup"]["options"]}
    assert setup["reflection_channel"] == 7 and setup["facilitator"] == 6
    assert [o["name"] for o in subs["export"]["options"]][0] == "from"  # a Python keyword
    kudos = subs["kudos"]["options"]
    assert kudos[0]["name"] == "member" and kudos[0]["required"]  # required options first
    assert all(len(o["description"]) <= 100 for o in course["options"])
    assert emu.unhandled == []


async def test_sync_commands_with_a_hidden_facilitator_root(tmp_path, emu) -> None:
    settings = discord_settings(tmp_path, emu, facilitator_root="course-admin")
    synced = await sync_commands(settings)
    assert synced == {"global": ["course", "course-admin"]}
    put = emu.requests_matching("PUT", rf"/applications/{emu.application_id}/commands")[-1]
    course, admin = put.body
    assert course["default_member_permissions"] is None
    assert admin["default_member_permissions"] == 32  # Manage Server: hidden by default
    learner = {o["name"] for o in course["options"]}
    staff = {o["name"] for o in admin["options"]}
    assert {"me", "kudos", "forgetme"} <= learner and "stats" not in learner
    assert {"stats", "quiet", "nudge", "export"} <= staff and "me" not in staff

    # The split root answers like the shared one; the engine still checks the role.
    async with running(settings) as (_app, _adapter):
        refused = await emu.send_interaction("course-admin stats", user=emu.world.alice)
        assert "for facilitators only" in (await callback_of(emu, refused)).response_data["content"]
        allowed = await emu.send_interaction("course-admin stats", user=emu.world.fran)
        assert "contributions" in (await callback_of(emu, allowed)).response_data["content"]


async def _sync_commands_cli(tmp_path, emu, *, api: str, guild: str):
    """``hearth discord sync-commands`` against ``api`` for ``guild``, as a user runs it
    (in a thread: the emulator answers on this loop); the CLI's logging set-up undone."""
    config = tmp_path / "config.toml"
    config.write_text(
        "[storage]\n"
        f'path = "{tmp_path / "hearth.db"}"\n'
        "[discord]\nenabled = true\n"
        f'api_base_url = "{api}"\ngateway_url = "{emu.gateway_url}"\n'
        f'guild_ids = ["{guild}"]\n'
    )
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return await asyncio.to_thread(
            CliRunner().invoke, cli, ["discord", "sync-commands", "--config", str(config)]
        )
    finally:
        root.handlers[:], root.level = handlers, level


async def test_sync_commands_cli(tmp_path, emu) -> None:
    result = await _sync_commands_cli(tmp_path, emu, api=emu.api_base, guild=emu.world.guild_id)
    assert result.exit_code == 0, result.output
    assert f"synced to guild {emu.world.guild_id}: /course" in result.output
    assert emu.guild_commands[emu.world.guild_id][0]["name"] == "course"
    assert not emu.sessions  # REST only: no gateway connection


async def test_sync_commands_cli_says_why_discord_refused_or_cannot_be_reached(
    tmp_path, emu
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{closed.getsockname()[1]}/api/v10"
    for api, guild, expected in (
        (emu.api_base, "4242", "Discord refused the sync (403: Missing Access); is the bot in"),
        (nobody, emu.world.guild_id, f"cannot reach Discord at {nobody}: Cannot connect"),
    ):
        result = await _sync_commands_cli(tmp_path, emu, api=api, guild=guild)
        assert result.exit_code == 2, result.output
        assert expected in result.stderr and "Traceback" not in result.output


async def test_no_warning_about_voice_libraries_hearth_never_uses(
    tmp_path, emu, monkeypatch, caplog
) -> None:
    import discord

    # As in a fresh process: discord.py warns once per process, then clears these.
    monkeypatch.setattr(discord.VoiceClient, "warn_nacl", True)
    monkeypatch.setattr(discord.VoiceClient, "warn_dave", True)
    app = await HearthApp.create(discord_settings(tmp_path, emu), migrate=False)
    try:
        client = build_discord_adapter(app).build_client()
        await client.close()
    finally:
        await app.close()
    assert "voice will NOT be supported" not in caplog.text


def test_sync_commands_dry_run_and_invite_url() -> None:
    runner = CliRunner()
    dry = runner.invoke(cli, ["discord", "sync-commands", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert '"name": "course"' in dry.output and '"type": 6' in dry.output

    invite = runner.invoke(cli, ["discord", "invite-url", "--client-id", "1234567890"])
    assert invite.exit_code == 0, invite.output
    value = bot_permissions().value
    assert value == 311_385_246_784  # the README gives this number
    assert "client_id=1234567890" in invite.output and f"permissions={value}" in invite.output
    assert f"permissions integer: {value}" in invite.output
    perms = bot_permissions()
    assert perms.send_messages_in_threads and perms.create_public_threads
    assert not perms.administrator and not perms.manage_messages and not perms.mention_everyone
    assert re.search(r"permissions=\d+", invite_url(1))


async def test_hearth_run_connects_to_discord_and_stops_cleanly(tmp_path, emu) -> None:
    """``hearth run`` builds the adapter from the config (bot/serve.py) and connects."""
    world = emu.world
    db = tmp_path / "run.db"
    config = tmp_path / "config.toml"
    config.write_text(
        f'[storage]\npath = "{db}"\n[console]\nenabled = false\n'
        "[discord]\nenabled = true\n"
        f'api_base_url = "{emu.api_base}"\ngateway_url = "{emu.gateway_url}"\n'
    )
    env = {**os.environ, TOKEN_ENV: emu.token, "PYTHONUNBUFFERED": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        "--config",
        str(config),
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await emu.wait_until(lambda: emu.live_connections, timeout=30, what="hearth run connects")
        posted = await emu.send_message_create(world.general_id, world.alice, "from a real process")
        # Gateway order: once the command after it is answered, the message was received.
        payload = await emu.send_interaction("course me", user=world.alice)
        await emu.wait_for_request(
            "POST", rf"/interactions/{payload['id']}/[^/]+/callback", timeout=30
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = await asyncio.wait_for(proc.communicate(), 30)
    log = err.decode()
    assert proc.returncode == 0, log
    assert "Hearth is running with discord" in log
    assert emu.token not in log  # the token never reaches the logs
    rows = sqlite3.connect(db).execute("SELECT message_id FROM contribution").fetchall()
    assert rows == [(posted["id"],)]
