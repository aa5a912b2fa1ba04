"""Discord translation and rendering, from recorded-style gateway payloads, without a network.

Payloads are built like Discord sends them (the emulator's builders, or written out) and fed
through discord.py's own parsers (the ``ConnectionState`` of a real client that never
connects); what discord.py dispatches is then translated. So these tests check the
translation of exactly the objects the live adapter receives.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import discord
import pytest
from discord import app_commands
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.actions import Button, Field, FileAttachment, RichContent, Section
from bot.adapters import discord_render as render_mod
from bot.adapters.discord_adapter import wanted_intents
from bot.adapters.discord_render import (
    MAX_CONTENT,
    button_view,
    discord_files,
    render,
    rich_embeds,
    split_text,
    within_limits,
)
from bot.adapters.discord_translate import (
    ChannelInfo,
    build_command_groups,
    button_custom_id,
    channel_info,
    command_payload,
    parse_custom_id,
    place_for,
    translate_bulk_delete,
    translate_button,
    translate_command,
    translate_delete,
    translate_edit,
    translate_member_join,
    translate_member_remove,
    translate_message,
    translate_reaction,
)
from bot.commands import CommandSpec, Option, Registry
from bot.events import (
    MemberJoined,
    MemberLeft,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    ReactionAdded,
    ReactionRemoved,
)
from tests.emulators.discord_server import DiscordEmulator, snowflake_time

NOW = datetime(2026, 9, 7, 9, 0, tzinfo=UTC)


class Gateway:
    """A discord.py client state that parses payloads and records what it dispatches."""

    def __init__(self, emu: DiscordEmulator, intents: discord.Intents | None = None) -> None:
        self.emu = emu
        self.intents = intents or wanted_intents()
        self.client = discord.Client(
            intents=self.intents,
            member_cache_flags=discord.MemberCacheFlags.none(),
            max_messages=None,
            chunk_guilds_at_startup=False,
        )
        self.state = self.client._connection
        self.dispatched: list[tuple[str, tuple[Any, ...]]] = []
        self.state.dispatch = lambda event, *args: self.dispatched.append((event, args))
        self.state.user = discord.ClientUser(
            state=self.state, data={**emu.bot_user, "verified": True, "mfa_enabled": False}
        )
        world = emu.world
        assert world is not None
        self.world = world
        self.parse(
            "GUILD_CREATE", emu.guild_create_payload(world.guild_id, intents=self.intents.value)
        )

    def parse(self, event: str, data: dict[str, Any]) -> Any:
        """Parse one dispatch; returns the first argument of what discord.py dispatched."""
        before = len(self.dispatched)
        self.state.parsers[event](copy.deepcopy(data))
        new = [d for d in self.dispatched[before:] if d[0] != "socket_event_type"]
        return new[-1][1][0] if new else None

    def lookup(self, channel_id: int) -> ChannelInfo | None:
        channel = self.client.get_channel(channel_id)
        return channel_info(channel) if channel is not None else None

    def message(self, channel_id: int, author: Any, content: str = "", **kw: Any) -> Any:
        payload = self.emu.message_payload(channel_id, author, content, **kw)
        self.emu._apply_event("MESSAGE_CREATE", payload)  # later replies can resolve it
        return payload, self.parse("MESSAGE_CREATE", payload)

    def posted(self, channel_id: int, author: Any, content: str = "", **kw: Any) -> Any:
        _payload, message = self.message(channel_id, author, content, **kw)
        return translate_message(
            message,
            facilitator_role="Facilitator",
            content_intent=self.intents.message_content,
            bot_id=self.emu.bot_id,
            lookup=self.lookup,
        )


@pytest.fixture
async def gw() -> AsyncIterator[Gateway]:
    gateway = Gateway(DiscordEmulator())
    yield gateway
    await gateway.client.close()


def uid(user: dict[str, Any]) -> str:
    return str(user["id"])


# -- messages -----------------------------------------------------------------------------------


async def test_a_channel_message(gw: Gateway) -> None:
    w = gw.world
    payload, message = gw.message(
        w.general_id,
        w.alice,
        f"See <@{uid(w.bob)}> and <@{gw.emu.bot_id}>",
        attachments=["notes.pdf"],
    )
    event = translate_message(message, facilitator_role="Facilitator", lookup=gw.lookup)
    assert isinstance(event, MessagePosted)
    assert event.message_id == payload["id"]
    assert event.at == snowflake_time(payload["id"])
    assert (event.place.community_id, event.place.channel_id, event.place.thread_id) == (
        str(w.guild_id),
        str(w.general_id),
        None,
    )
    assert event.place.channel_name == "general" and not event.place.is_direct
    assert (event.author.id, event.author.display_name) == (uid(w.alice), "Alice")
    assert not event.author.is_facilitator and not event.author.is_bot
    assert event.text == payload["content"]
    assert event.mentions == (uid(w.bob),)  # the bot is not a peer
    assert [a.filename for a in event.attachments] == ["notes.pdf"]
    assert event.attachments[0].content_type == "application/pdf"
    assert event.reply_to_id is None and not event.is_system


async def test_the_facilitator_role_is_read_from_the_member(gw: Gateway) -> None:
    event = gw.posted(gw.world.general_id, gw.world.fran, "Welcome")
    assert event is not None and event.author.is_facilitator
    _payload, message = gw.message(gw.world.general_id, gw.world.fran, "Again")
    assert not translate_message(message, facilitator_role="Moderator").author.is_facilitator


async def test_a_reply_names_the_resolved_author(gw: Gateway) -> None:
    w = gw.world
    question, _ = gw.message(w.general_id, w.bob, "How do I submit?")
    event = gw.posted(w.general_id, w.alice, "With the form", reference_id=int(question["id"]))
    assert event.reply_to_id == question["id"] and event.reply_to_author_id == uid(w.bob)
    assert event.mentions == (uid(w.bob),)  # the reply ping; the cog does not count it twice

    unknown = gw.posted(w.general_id, w.alice, "Replying to an old one", reference_id=12345)
    assert unknown.reply_to_id == "12345" and unknown.reply_to_author_id is None

    prompt, _ = gw.message(w.general_id, gw.emu.bot_id, "This week's prompt")
    answer = gw.posted(w.general_id, w.alice, "My answer", reference_id=int(prompt["id"]))
    assert answer.reply_to_id == prompt["id"] and answer.reply_to_author_id is None


async def test_a_forward_is_not_a_reply(gw: Gateway) -> None:
    w = gw.world
    original, _ = gw.message(w.help_id, w.bob, "Interesting")
    payload = gw.emu.message_payload(w.general_id, w.alice, "", reference_id=int(original["id"]))
    payload["type"] = 0
    payload["message_reference"]["type"] = 1  # FORWARD
    payload["message_snapshots"] = [
        {
            "message": {
                "type": 0,
                "content": "Interesting",
                "embeds": [],
                "attachments": [],
                "timestamp": original["timestamp"],
                "edited_timestamp": None,
                "flags": 0,
                "mentions": [],
                "mention_roles": [],
                "components": [],
            }
        }
    ]
    event = translate_message(gw.parse("MESSAGE_CREATE", payload), lookup=gw.lookup)
    assert event is not None and event.reply_to_id is None


async def test_a_thread_message_is_placed_in_the_parent_channel(gw: Gateway) -> None:
    w = gw.world
    event = gw.posted(w.thread_id, w.alice, "In the thread")
    assert (event.place.channel_id, event.place.thread_id) == (str(w.general_id), str(w.thread_id))
    assert event.place.channel_name == "general"


async def test_a_message_in_a_thread_discord_py_does_not_know(gw: Gateway) -> None:
    w = gw.world
    old_thread = 424242424242424242
    payload = gw.emu.message_payload(w.general_id, w.alice, "in an old thread")
    payload["channel_id"] = str(old_thread)
    message = gw.parse("MESSAGE_CREATE", payload)
    assert isinstance(message.channel, discord.PartialMessageable)
    fetched = {old_thread: ChannelInfo(old_thread, w.general_id, "general")}
    event = translate_message(message, lookup=fetched.get)
    assert (event.place.channel_id, event.place.thread_id) == (str(w.general_id), str(old_thread))
    unknown = translate_message(message)
    assert (unknown.place.channel_id, unknown.place.thread_id) == (str(old_thread), None)


async def test_bots_webhooks_and_the_system_user_are_ignored(gw: Gateway) -> None:
    w = gw.world
    assert gw.posted(w.general_id, gw.emu.bot_id, "Hearth speaking") is None
    other_bot = gw.emu.create_user("otherbot", bot=True)
    assert gw.posted(w.general_id, other_bot, "beep") is None
    payload = gw.emu.message_payload(w.general_id, w.alice, "via webhook")
    payload["webhook_id"] = "99"
    assert translate_message(gw.parse("MESSAGE_CREATE", payload)) is None
    system = gw.emu.create_user("discord")
    system["system"] = True
    assert gw.posted(w.general_id, system, "Discord news") is None


@pytest.mark.parametrize("kind", [7, 6, 18, 21, 46, 999])
async def test_system_and_unknown_message_types(gw: Gateway, kind: int) -> None:
    event = gw.posted(gw.world.general_id, gw.world.alice, "", type=kind)
    assert isinstance(event, MessagePosted) and event.is_system and event.text is None


async def test_without_the_content_intent_text_is_none(gw: Gateway) -> None:
    w = gw.world
    intents = wanted_intents()
    intents.message_content = False
    blind = Gateway(gw.emu, intents)
    try:
        payload = gw.emu.message_payload(w.general_id, w.alice, "")  # what Discord sends
        event = translate_message(
            blind.parse("MESSAGE_CREATE", payload), content_intent=False, bot_id=gw.emu.bot_id
        )
        assert event is not None and event.text is None
        to_bot = gw.emu.message_payload(w.general_id, w.alice, f"<@{gw.emu.bot_id}> help")
        event = translate_message(
            blind.parse("MESSAGE_CREATE", to_bot), content_intent=False, bot_id=gw.emu.bot_id
        )
        assert event.text == f"<@{gw.emu.bot_id}> help"  # Discord sends it: the bot is mentioned
        dm = gw.emu.dm_channel(w.alice)
        in_dm = gw.emu.message_payload(int(dm["id"]), w.alice, "my reflection")
        event = translate_message(
            blind.parse("MESSAGE_CREATE", in_dm), content_intent=False, bot_id=gw.emu.bot_id
        )
        assert event.text == "my reflection" and event.place.is_direct
    finally:
        await blind.client.close()


async def test_a_direct_message(gw: Gateway) -> None:
    dm = gw.emu.dm_channel(gw.world.alice)
    event = gw.posted(int(dm["id"]), gw.world.alice, "answer to the prompt")
    assert event.place.is_direct and event.place.community_id == ""  # the adapter fills it
    assert event.place.channel_id == dm["id"]


# -- edits, deletes, reactions, members -----------------------------------------------------------


async def test_edits(gw: Gateway) -> None:
    w = gw.world
    payload, _ = gw.message(w.general_id, w.alice, "draft")
    edited = {
        **payload,
        "content": "final, see https://example.org",
        "edited_timestamp": NOW.isoformat(),
    }
    event = translate_edit(gw.parse("MESSAGE_UPDATE", edited), now=NOW, lookup=gw.lookup)
    assert isinstance(event, MessageEdited)
    assert (event.message_id, event.text, event.at) == (payload["id"], edited["content"], NOW)
    assert event.attachments == () and event.author.id == uid(w.alice)

    unfurl = {**payload, "embeds": [{"type": "link", "url": "https://example.org"}]}
    assert translate_edit(gw.parse("MESSAGE_UPDATE", unfurl), now=NOW) is None  # not an edit

    withheld = {**edited, "content": "", "attachments": []}
    event = translate_edit(gw.parse("MESSAGE_UPDATE", withheld), now=NOW, content_intent=False)
    assert event.text is None and event.attachments is None  # unknown, not "none"


async def test_deletes(gw: Gateway) -> None:
    w = gw.world
    raw = gw.parse(
        "MESSAGE_DELETE", {"id": "5", "channel_id": str(w.thread_id), "guild_id": str(w.guild_id)}
    )
    event = translate_delete(raw, now=NOW, lookup=gw.lookup)
    assert isinstance(event, MessageDeleted) and event.message_id == "5"
    assert (event.place.channel_id, event.place.thread_id) == (str(w.general_id), str(w.thread_id))
    dm = gw.parse("MESSAGE_DELETE", {"id": "6", "channel_id": "7"})
    assert translate_delete(dm, now=NOW) is None
    bulk = gw.parse(
        "MESSAGE_DELETE_BULK",
        {"ids": ["9", "8"], "channel_id": str(w.general_id), "guild_id": str(w.guild_id)},
    )
    assert [e.message_id for e in translate_bulk_delete(bulk, now=NOW)] == ["8", "9"]


async def test_reactions(gw: Gateway) -> None:
    w = gw.world
    payload, _ = gw.message(w.general_id, w.alice, "my post")
    mid = int(payload["id"])
    raw = gw.parse("MESSAGE_REACTION_ADD", gw.emu.reaction_payload(w.general_id, mid, w.fran, "🎉"))
    event = translate_reaction(raw, now=NOW, facilitator_role="Facilitator", bot_id=gw.emu.bot_id)
    assert isinstance(event, ReactionAdded)
    assert (event.member.id, event.member.display_name, event.member.is_facilitator) == (
        uid(w.fran),
        "Fran Facilitator",
        True,
    )
    assert (event.emoji, event.message_author_id, event.at) == ("🎉", uid(w.alice), NOW)

    custom = gw.emu.reaction_payload(
        w.general_id, mid, w.bob, {"id": "123456", "name": "hearth", "animated": False}
    )
    event = translate_reaction(gw.parse("MESSAGE_REACTION_ADD", custom), now=NOW)
    assert event.emoji == "<:hearth:123456>"

    removal = gw.emu.reaction_payload(w.general_id, mid, w.bob, "🎉")
    removal.pop("member")
    removal.pop("message_author_id")
    event = translate_reaction(gw.parse("MESSAGE_REACTION_REMOVE", removal), now=NOW)
    assert isinstance(event, ReactionRemoved) and event.member.display_name == ""

    prompt, _ = gw.message(w.general_id, gw.emu.bot_id, "prompt")
    on_bot = gw.emu.reaction_payload(w.general_id, int(prompt["id"]), w.bob)
    assert (
        translate_reaction(gw.parse("MESSAGE_REACTION_ADD", on_bot), now=NOW, bot_id=gw.emu.bot_id)
        is None
    )
    by_bot = gw.emu.reaction_payload(w.general_id, mid, gw.emu.bot_id)
    assert (
        translate_reaction(gw.parse("MESSAGE_REACTION_ADD", by_bot), now=NOW, bot_id=gw.emu.bot_id)
        is None
    )
    dm = gw.emu.dm_channel(w.alice)
    in_dm = gw.emu.reaction_payload(int(dm["id"]), 77, w.alice)
    assert translate_reaction(gw.parse("MESSAGE_REACTION_ADD", in_dm), now=NOW) is None


async def test_members_join_and_leave(gw: Gateway) -> None:
    w = gw.world
    dana = gw.emu.create_user("dana", global_name="Dana")
    joined_at = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
    payload = {
        "guild_id": str(w.guild_id),
        "user": dana,
        "roles": [str(w.facilitator_role_id)],
        "joined_at": joined_at.isoformat(),
        "deaf": False,
        "mute": False,
        "flags": 0,
        "nick": "Dana D.",
    }
    event = translate_member_join(
        gw.parse("GUILD_MEMBER_ADD", payload), now=NOW, facilitator_role="facilitator"
    )
    assert isinstance(event, MemberJoined) and event.community_id == str(w.guild_id)
    assert (event.member.display_name, event.member.is_facilitator, event.at) == (
        "Dana D.",
        True,
        joined_at,
    )
    raw = gw.parse("GUILD_MEMBER_REMOVE", {"guild_id": str(w.guild_id), "user": dana})
    left = translate_member_remove(raw, now=NOW)
    assert isinstance(left, MemberLeft) and (left.member.id, left.at) == (uid(dana), NOW)


# -- interactions and commands --------------------------------------------------------------------


def _spec(name: str, *options: Option, **kw: Any) -> CommandSpec:
    async def handler(ctx, **values):  # pragma: no cover - never run here
        return None

    return CommandSpec(
        name=name, description=f"{name} description", handler=handler, options=options, **kw
    )


async def test_a_command_with_typed_options(gw: Gateway) -> None:
    w = gw.world
    payload = gw.emu.interaction_payload(
        "course stats", user=w.fran, channel_id=w.thread_id, options={"member": w.alice, "days": 30}
    )
    interaction = gw.parse("INTERACTION_CREATE", payload)
    spec = _spec(
        "stats",
        Option("member", "member", "Whose"),
        Option("days", "integer", "Days", min_value=1),
        Option("where", "channel", "Where"),
    )
    guild = gw.client.get_guild(w.guild_id)
    resolved = payload["data"]["resolved"]
    alice = discord.Member(
        data={**resolved["members"][uid(w.alice)], "user": resolved["users"][uid(w.alice)]},
        guild=guild,
        state=gw.state,
    )
    where = app_commands.AppCommandChannel(
        state=gw.state,
        data={"id": str(w.help_id), "type": 0, "name": "help", "permissions": "0"},
        guild_id=w.guild_id,
    )
    event = translate_command(
        interaction,
        spec,
        {"member": alice, "days": 30, "where": where, "ignored": 1},
        facilitator_role="Facilitator",
        lookup=gw.lookup,
    )
    assert event.name == "stats" and event.interaction_id == payload["id"]
    assert event.options == {"member": f"<@{uid(w.alice)}>", "days": 30, "where": str(w.help_id)}
    assert event.member.id == uid(w.fran) and event.member.is_facilitator
    assert (event.place.channel_id, event.place.thread_id) == (str(w.general_id), str(w.thread_id))


async def test_a_button_press(gw: Gateway) -> None:
    w = gw.world
    payload = gw.emu.interaction_payload("course me", user=w.fran)
    payload["type"] = 3
    payload["data"] = {
        "custom_id": button_custom_id("nudges:confirm", "ab:cd"),
        "component_type": 2,
    }
    event = translate_button(
        gw.parse("INTERACTION_CREATE", payload), facilitator_role="Facilitator"
    )
    assert (event.action_id, event.value, event.delivery_id) == (
        "nudges:confirm",
        "ab:cd",
        payload["id"],
    )
    assert event.member.is_facilitator
    payload["data"]["custom_id"] = "somebody-elses-button"
    assert translate_button(gw.parse("INTERACTION_CREATE", payload)) is None


def test_custom_ids() -> None:
    assert parse_custom_id("nudges:confirm:abc") == ("nudges:confirm", "abc")
    assert parse_custom_id("nudges:confirm:") == ("nudges:confirm", "")
    assert parse_custom_id("nudges:confirm") == ("nudges:confirm", "")
    assert parse_custom_id("plain") is None and parse_custom_id(":x:y") is None


def test_place_for() -> None:
    assert place_for(None, 5).is_direct
    info = {7: ChannelInfo(7, 3, "general")}
    assert (place_for(1, 7, info.get).channel_id, place_for(1, 7, info.get).thread_id) == ("3", "7")
    assert place_for(1, 8, info.get).channel_id == "8"


def _registry(*specs: CommandSpec) -> Registry:
    registry = Registry()
    registry.extend(specs)
    return registry


async def _noop(*_args: Any) -> None:
    return None


def test_command_groups_follow_discords_rules() -> None:
    registry = _registry(
        _spec("me", Option("days", "integer", "Days back", min_value=1, max_value=3650)),
        _spec("stats", Option("member", "member", "x" * 150), facilitator_only=True),
        _spec("export", Option("from", "date", "First day"), Option("to", "date", "Last day")),
        _spec(
            "prompt post",
            Option("text", "text", "The prompt", required=True),
            facilitator_only=True,
        ),
        _spec("prompt list", facilitator_only=True),
        _spec(
            "mirror", Option("state", "choice", "On or off", required=True, choices=("on", "off"))
        ),
        _spec("summary now", Option("preview", "boolean", "Only me")),
        _spec(
            "kudos",
            Option("reason", "text", "Why"),
            Option("member", "member", "Who", required=True),
        ),
    )
    client = discord.Client(intents=discord.Intents.none())
    tree = app_commands.CommandTree(client)
    (course,) = command_payload(build_command_groups(registry, _noop, root="course"), tree)
    subs = {o["name"]: o for o in course["options"]}
    assert course["default_member_permissions"] is None and course["dm_permission"] is False
    assert {"type": 4, "min_value": 1, "max_value": 3650}.items() <= subs["me"]["options"][
        0
    ].items()
    assert subs["stats"]["description"] == "stats description (facilitators)"
    assert len(subs["stats"]["options"][0]["description"]) == 100
    assert [o["name"] for o in subs["export"]["options"]] == ["from", "to"]
    assert subs["prompt"]["type"] == 2
    assert subs["prompt"]["description"] == "Prompt: list, post"
    post = {o["name"]: o for o in subs["prompt"]["options"]}["post"]
    assert {"type": 3, "required": True, "max_length": 2000}.items() <= post["options"][0].items()
    assert subs["mirror"]["options"][0]["choices"] == [
        {"name": "on", "value": "on"},
        {"name": "off", "value": "off"},
    ]
    assert subs["summary"]["options"][0]["options"][0]["type"] == 5
    assert [o["name"] for o in subs["kudos"]["options"]] == ["member", "reason"]

    split = command_payload(
        build_command_groups(registry, _noop, root="course", facilitator_root="course-admin"), tree
    )
    assert [(g["name"], g["default_member_permissions"]) for g in split] == [
        ("course", None),
        ("course-admin", 32),
    ]
    assert {o["name"] for o in split[1]["options"]} == {"stats", "prompt"}
    assert "(facilitators)" not in split[1]["options"][0]["description"]


def test_too_many_commands_for_one_root_is_a_clear_error() -> None:
    registry = _registry(*(_spec(f"cmd{i}") for i in range(26)))
    with pytest.raises(ValueError, match="facilitator_root"):
        build_command_groups(registry, _noop, root="course")


async def test_command_callbacks_receive_options_by_name() -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    async def run(interaction: Any, spec: CommandSpec, values: dict[str, Any]) -> None:
        calls.append((spec.name, values))

    registry = _registry(
        _spec("export", Option("from", "date", "First"), Option("to", "date", "Last"))
    )
    (course,) = build_command_groups(registry, run, root="course")
    export = course.get_command("export")
    assert [c.name for c in course.commands] == ["export", "help"]  # help is always offered
    await export.callback(None, from_="2026-09-01", to=None)
    assert calls == [("export", {"from": "2026-09-01", "to": None})]


# -- rendering ------------------------------------------------------------------------------------


def test_split_text() -> None:
    assert split_text("") == []
    assert split_text("short") == ["short"]
    lines = "\n".join(f"line {i} " + "x" * 80 for i in range(100))
    chunks = split_text(lines)
    assert all(len(c) <= MAX_CONTENT for c in chunks) and "\n".join(chunks) == lines
    word = "y" * 4500
    assert [len(c) for c in split_text(word)] == [2000, 2000, 500]
    spaced = " ".join(["word"] * 1000)
    assert all(len(c) <= MAX_CONTENT for c in split_text(spaced))
    assert " ".join(split_text(spaced)) == spaced


def test_a_rich_report_renders_within_limits() -> None:
    chart = FileAttachment("chart.png", b"png", "image/png")
    rich = RichContent(
        "Weekly summary",
        sections=(
            Section("Contributions", "12 posts, 4 questions", (Field("ideas", "5", inline=True),)),
            Section("Alerts", fields=(Field("quiet", "Bob, Dana"),)),
            Section("", "A plain paragraph"),
        ),
        footer="Hearth",
        image=chart,
        url="https://example.org/report",
    )
    csv = FileAttachment("table.csv", b"a,b\n", "text/csv")
    (message,) = render("Intro", rich, [csv], [Button("OK", "x:y", "1")])
    assert message.content == "Intro"
    (embed,) = message.embeds
    assert embed.title == "Weekly summary" and embed.url == "https://example.org/report"
    assert "**Contributions**\n12 posts, 4 questions" in embed.description
    assert "A plain paragraph" in embed.description
    assert [(f.name, f.value, f.inline) for f in embed.fields] == [
        ("ideas", "5", True),
        ("Alerts: quiet", "Bob, Dana", False),
    ]
    assert embed.image.url == "attachment://chart.png" and embed.footer.text == "Hearth"
    assert [f.filename for f in message.files] == ["chart.png", "table.csv"]
    assert [f.filename for f in discord_files(message.files)] == ["chart.png", "table.csv"]
    assert within_limits(message) == []


def test_an_overlong_report_is_split_into_messages_within_limits() -> None:
    sections = tuple(
        Section(f"Group {i}", "word " * 1500, tuple(Field(f"f{j}", "v" * 3000) for j in range(30)))
        for i in range(5)
    )
    messages = render("t" * 5000, RichContent("T" * 300, sections=sections, footer="F" * 3000))
    assert len(messages) > 5
    for message in messages:
        assert within_limits(message) == [], within_limits(message)
    embeds = [e for m in messages for e in m.embeds]
    assert embeds[0].title.endswith("…") and len(embeds[0].title) == 256
    assert embeds[1].title.endswith("(continued)")
    assert embeds[-1].footer.text.endswith("…")
    values = "".join(f.value for e in embeds for f in e.fields)
    assert values.count("v") == 5 * 30 * 3000  # nothing lost


def test_many_files_and_buttons() -> None:
    files = [FileAttachment(f"f{i}.csv", b"x") for i in range(23)]
    messages = render("", None, files, [Button("A", "a:b", "1")])
    assert [len(m.files) for m in messages] == [10, 10, 3]
    assert messages[-1].buttons and not messages[0].buttons
    assert render("") == []


async def test_buttons_become_a_view() -> None:
    buttons = [Button(f"Option {i}", "nudges:confirm", str(i), style="danger") for i in range(7)]
    view = button_view(buttons)
    components = view.to_components()
    assert [len(row["components"]) for row in components] == [5, 2]
    first = components[0]["components"][0]
    assert (first["custom_id"], first["style"]) == ("nudges:confirm:0", 4)
    assert button_view([]) is None
    view.stop()


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=3000)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=_text,
    title=st.text(max_size=400),
    sections=st.lists(
        st.tuples(
            st.text(max_size=300),
            _text,
            st.lists(
                st.tuples(st.text(max_size=300), st.text(max_size=2500), st.booleans()), max_size=30
            ),
        ),
        max_size=6,
    ),
    footer=st.text(max_size=2500),
)
def test_any_content_renders_within_limits(text, title, sections, footer) -> None:
    rich = RichContent(
        title,
        sections=tuple(
            Section(h, b, tuple(Field(n, v, i) for n, v, i in fs)) for h, b, fs in sections
        ),
        footer=footer,
    )
    for message in render(text, rich):
        assert within_limits(message) == []
        for embed in message.embeds:
            assert embed.title or embed.description or embed.fields  # never an empty embed


def test_render_module_constants_match_discord() -> None:
    assert (render_mod.MAX_CONTENT, render_mod.MAX_EMBED_TOTAL, render_mod.MAX_FIELDS) == (
        2000,
        6000,
        25,
    )
    assert rich_embeds(RichContent("Only a title"))[0].title == "Only a title"
