"""The real discord.py client against the loopback Discord emulator.

These tests prove the emulator is faithful enough for the Discord adapter's tests: the client
connects and builds its cache, receives events, and its REST calls (sends, DMs, retries after
429, interaction answers, history) land where Discord would put them.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands

from tests.emulators.discord_server import (
    DiscordEmulator,
    Intent,
    make_fast,
    patch_discord,
    snowflake_time,
    start_client,
    stop_client,
)

WAIT = 3.0  # seconds; every wait is bounded, none is a sleep


def bot_intents() -> discord.Intents:
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.guild_reactions = True
    intents.members = True
    intents.message_content = True
    intents.dm_messages = True
    return intents


def make_client(**options: Any) -> discord.Client:
    settings: dict[str, Any] = {
        "intents": bot_intents(),
        "chunk_guilds_at_startup": False,
        "member_cache_flags": discord.MemberCacheFlags.none(),
        "guild_ready_timeout": 0.05,
    }
    settings.update(options)
    return make_fast(discord.Client(**settings))


Connect = Callable[..., Awaitable[discord.Client]]


@pytest.fixture
async def emu() -> AsyncIterator[DiscordEmulator]:
    async with DiscordEmulator() as emulator, patch_discord(emulator):
        yield emulator


@pytest.fixture
async def connect(emu: DiscordEmulator) -> AsyncIterator[Connect]:
    """Start clients against the emulator; all are closed before the emulator stops."""
    started: list[tuple[discord.Client, asyncio.Task[None]]] = []

    async def _connect(client: discord.Client | None = None, **options: Any) -> discord.Client:
        client = client or make_client(**options)
        task = await start_client(client, emu, timeout=WAIT)
        started.append((client, task))
        return client

    yield _connect
    for client, task in started:
        await stop_client(client, task)


@pytest.fixture
async def client(connect: Connect) -> discord.Client:
    return await connect()


async def test_identify_ready_and_guild_cache(emu: DiscordEmulator, client: discord.Client) -> None:
    world = emu.world
    assert world is not None
    assert emu.intents == client.intents.value
    assert emu.connections[0].path == "/gateway"
    assert emu.connections[0].query == {"v": "10", "encoding": "json", "compress": "zlib-stream"}
    assert client.user is not None and client.user.id == emu.bot_id
    assert client.application_id == emu.application_id
    assert [r.path for r in emu.requests[:2]] == ["/users/@me", "/oauth2/applications/@me"]

    guild = client.get_guild(world.guild_id)
    assert guild is not None and guild.name == "Hearth Test Course"
    assert guild.member_count == 5  # bot, owner, fran, alice, bob; only the bot is listed
    assert guild.me is not None and guild.me.id == emu.bot_id
    general = guild.get_channel(world.general_id)
    assert isinstance(general, discord.TextChannel) and general.category_id == world.category_id
    thread = guild.get_thread(world.thread_id)
    assert isinstance(thread, discord.Thread) and thread.parent_id == world.general_id
    assert guild.get_role(world.facilitator_role_id).name == "Facilitator"


async def test_on_message_has_author_content_and_reference(
    emu: DiscordEmulator, client: discord.Client
) -> None:
    world = emu.world
    assert world is not None
    question = await emu.send_message_create(world.general_id, world.bob, "How do I submit?")
    alice_id = int(world.alice["id"])
    waiter = client.wait_for("message", check=lambda m: m.author.id == alice_id, timeout=WAIT)
    reply = await emu.send_message_create(
        world.general_id, world.alice, "Use the form", reference_id=int(question["id"])
    )
    message: discord.Message = await waiter
    assert message.id == int(reply["id"])
    assert message.content == "Use the form"
    assert isinstance(message.author, discord.Member)
    assert message.author.id == int(world.alice["id"])
    assert message.type is discord.MessageType.reply
    assert message.reference is not None
    assert message.reference.message_id == int(question["id"])
    assert isinstance(message.reference.resolved, discord.Message)
    assert message.reference.resolved.content == "How do I submit?"
    # Discord's client pings the replied-to author by default.
    assert [u.id for u in message.mentions] == [int(world.bob["id"])]
    assert message.created_at == snowflake_time(reply["id"])


async def test_channel_send_reaches_post_route_and_is_echoed(
    emu: DiscordEmulator, client: discord.Client
) -> None:
    world = emu.world
    assert world is not None
    channel = client.get_channel(world.general_id)
    assert isinstance(channel, discord.TextChannel)
    echo = client.wait_for("message", check=lambda m: m.author.id == emu.bot_id, timeout=WAIT)

    sent = await channel.send("Welcome, everyone!")

    method, path, body = emu.requests[-1]
    assert (method, path) == ("POST", f"/channels/{world.general_id}/messages")
    assert body["content"] == "Welcome, everyone!"
    assert [m["id"] for m in emu.bot_messages(world.general_id)] == [str(sent.id)]
    assert (await echo).id == sent.id  # Discord echoes the bot's own messages

    chart = discord.File(io.BytesIO(b"\x89PNG fake"), filename="chart.png")
    with_file = await channel.send("Weekly chart", file=chart)
    upload = emu.requests[-1]
    assert upload.body["content"] == "Weekly chart" and upload.files == ["chart.png"]
    assert with_file.attachments[0].filename == "chart.png"
    assert await with_file.attachments[0].read() == b"\x89PNG fake"


async def test_429_on_send_is_retried(emu: DiscordEmulator, client: discord.Client) -> None:
    world = emu.world
    assert world is not None
    channel = client.get_channel(world.general_id)
    assert isinstance(channel, discord.TextChannel)
    emu.fail_next("POST", r"/channels/\d+/messages", 429, {"retry_after": 0.05})

    started = time.perf_counter()
    sent = await channel.send("hello after a rate limit")

    assert time.perf_counter() - started >= 0.05
    posts = emu.requests_matching("POST", r"/channels/\d+/messages")
    assert [r.status for r in posts] == [429, 200]
    assert posts[-1].body["content"] == "hello after a rate limit"
    assert emu.bot_messages(world.general_id)[-1]["id"] == str(sent.id)


async def test_429_without_via_is_not_retried_and_json_type_is_exact(
    emu: DiscordEmulator, client: discord.Client
) -> None:
    world = emu.world
    assert world is not None
    channel = client.get_channel(world.general_id)
    assert isinstance(channel, discord.TextChannel)
    # Without Via discord.py assumes a Cloudflare ban rather than a rate limit.
    emu.fail_next("POST", r"/channels/\d+/messages", 429, headers={"Via": None})
    with pytest.raises(discord.HTTPException) as raised:
        await channel.send("nope")
    assert raised.value.status == 429
    assert len(emu.requests_matching("POST", r"/channels/\d+/messages")) == 1

    async with aiohttp.ClientSession() as http:
        async with http.get(f"{emu.api_base}/gateway") as response:
            assert response.headers["Content-Type"] == "application/json"
            assert await response.json() == {"url": emu.gateway_url}


async def test_dm_via_create_dm_and_send(emu: DiscordEmulator, client: discord.Client) -> None:
    world = emu.world
    assert world is not None
    user = await client.fetch_user(int(world.alice["id"]))
    dm = await user.create_dm()
    assert isinstance(dm, discord.DMChannel) and dm.recipient is not None
    assert dm.recipient.id == user.id
    create = emu.requests_matching("POST", "/users/@me/channels")[0]
    assert create.body == {"recipient_id": user.id}

    await user.send("Your weekly reflection prompt")  # reuses the cached DM channel
    assert len(emu.requests_matching("POST", "/users/@me/channels")) == 1
    assert [m["content"] for m in emu.bot_messages(dm.id)] == ["Your weekly reflection prompt"]

    incoming = client.wait_for("message", check=lambda m: m.author.id == user.id, timeout=WAIT)
    await emu.send_message_create(dm.id, world.alice, "thanks!")
    reply = await incoming
    assert isinstance(reply.channel, discord.DMChannel) and reply.guild is None
    assert reply.content == "thanks!"


async def test_closed_dms_raise_forbidden_50007_and_injected_40003(
    emu: DiscordEmulator, client: discord.Client
) -> None:
    carol = emu.create_user("carol", dms_open=False)
    user = await client.fetch_user(int(carol["id"]))
    with pytest.raises(discord.Forbidden) as closed:
        await user.send("hi")
    assert closed.value.code == 50007

    world = emu.world
    assert world is not None
    alice = await client.fetch_user(int(world.alice["id"]))
    emu.fail_next(
        "POST",
        r"/channels/\d+/messages",
        403,
        {"code": 40003, "message": "You are opening direct messages too fast."},
    )
    with pytest.raises(discord.Forbidden) as too_fast:
        await alice.send("hi")
    assert too_fast.value.code == 40003
    await alice.send("hi again")  # the injected failure was used up
    assert emu.requests_matching("POST", r"/channels/\d+/messages")[-1].status == 200


async def test_dropped_connection_resumes_and_replays_missed_events(
    emu: DiscordEmulator, client: discord.Client
) -> None:
    world = emu.world
    assert world is not None
    (session_id,) = emu.sessions
    resumed = client.wait_for("resumed", timeout=WAIT)
    missed = client.wait_for(
        "message", check=lambda m: m.content == "while you were away", timeout=WAIT
    )

    emu.hold_gateway()  # the client reconnects but gets no HELLO until released
    assert await emu.drop_connections(4000) == 1
    await emu.send_message_create(world.general_id, world.alice, "while you were away")
    emu.release_gateway()

    await resumed
    assert (await missed).author.id == int(world.alice["id"])
    resume = emu.gateway_received("RESUME")[0].data
    assert resume["session_id"] == session_id
    assert emu.connections[0].close_code == 4000
    assert emu.connections[-1].path == "/resume"  # READY's resume_gateway_url
    assert len(emu.identifies) == 1


async def test_failed_resume_leads_to_a_fresh_identify(
    emu: DiscordEmulator, client: discord.Client
) -> None:
    world = emu.world
    assert world is not None
    ready_again = client.wait_for("ready", timeout=WAIT)
    emu.fail_next_resume()

    await emu.drop_connections()
    await ready_again

    assert len(emu.gateway_received("RESUME")) == 1
    assert len(emu.identifies) == 2
    assert len({s.session_id for s in emu.sessions.values() if s.resumable}) == 1
    arrived = client.wait_for("message", timeout=WAIT)
    await emu.send_message_create(world.general_id, world.bob, "still there?")
    assert (await arrived).content == "still there?"


async def test_interaction_ephemeral_reply_hits_callback_with_flag_64(
    emu: DiscordEmulator, connect: Connect
) -> None:
    world = emu.world
    assert world is not None
    bot = make_client()
    seen: list[discord.Interaction] = []

    @bot.event
    async def on_interaction(interaction: discord.Interaction) -> None:
        seen.append(interaction)
        await interaction.response.send_message("Only you can see this", ephemeral=True)

    await connect(bot)
    payload = await emu.send_interaction(
        "course me", user=world.alice, options={"week": 2, "verbose": True}
    )
    callback = await emu.wait_for_request("POST", rf"/interactions/{payload['id']}/[^/]+/callback")

    interaction = seen[0]
    assert interaction.user.id == int(world.alice["id"])
    assert isinstance(interaction.user, discord.Member)
    assert interaction.channel_id == world.general_id and interaction.guild_id == world.guild_id
    assert interaction.data is not None and interaction.data["name"] == "course"
    assert callback.body["type"] == 4
    assert callback.body["data"]["content"] == "Only you can see this"
    assert callback.body["data"]["flags"] & 64
    record = emu.interactions[int(payload["id"])]
    assert record.ephemeral and record.response_type == 4
    assert emu.bot_messages(world.general_id) == []  # ephemeral replies are not channel messages


async def test_interaction_answered_twice_or_too_late_is_rejected(
    emu: DiscordEmulator, connect: Connect
) -> None:
    world = emu.world
    assert world is not None
    bot = make_client()
    got: asyncio.Queue[discord.Interaction] = asyncio.Queue()

    @bot.event
    async def on_interaction(interaction: discord.Interaction) -> None:
        await got.put(interaction)

    await connect(bot)
    await emu.send_interaction("course me", user=world.bob)
    first = await asyncio.wait_for(got.get(), WAIT)
    await first.response.defer(ephemeral=True)
    with pytest.raises(discord.HTTPException) as twice:
        await first._state.http.request(  # bypass discord.py's own "already responded" guard
            discord.http.Route(
                "POST",
                "/interactions/{webhook_id}/{webhook_token}/callback",
                webhook_id=first.id,
                webhook_token=first.token,
            ),
            json={"type": 4, "data": {"content": "again"}},
        )
    assert twice.value.code == 40060

    emu.interaction_timeout = 0.0
    await emu.send_interaction("course me", user=world.bob)
    late = await asyncio.wait_for(got.get(), WAIT)
    with pytest.raises(discord.NotFound) as expired:
        await late.response.send_message("too slow")
    assert expired.value.code == 10062


async def test_app_command_tree_sync_and_invoke(emu: DiscordEmulator, connect: Connect) -> None:
    world = emu.world
    assert world is not None
    bot = make_client()
    tree = app_commands.CommandTree(bot)
    course = app_commands.Group(name="course", description="Course tools")
    calls: list[tuple[int, int]] = []

    @course.command(name="stats", description="Participation statistics")
    @app_commands.describe(member="Whose statistics")
    async def stats(interaction: discord.Interaction, member: discord.Member) -> None:
        calls.append((interaction.user.id, member.id))
        await interaction.response.defer(thinking=True)
        await interaction.followup.send(f"Stats for {member.display_name}")

    guild = discord.Object(world.guild_id)
    tree.add_command(course, guild=guild)
    await connect(bot)

    synced = await tree.sync(guild=guild)
    put = emu.requests_matching("PUT", rf"/applications/{emu.application_id}/guilds/\d+/commands")
    assert put[0].body[0]["name"] == "course"
    assert put[0].body[0]["options"][0]["name"] == "stats"
    assert [c.name for c in synced] == ["course"] and synced[0].guild_id == world.guild_id

    payload = await emu.send_interaction(
        "course stats", user=world.fran, options={"member": world.alice}
    )
    followup = await emu.wait_for_request("POST", rf"/webhooks/{emu.application_id}/[^/]+")

    assert calls == [(int(world.fran["id"]), int(world.alice["id"]))]
    record = emu.interactions[int(payload["id"])]
    assert record.response_type == 5  # deferred
    assert followup.body["content"] == "Stats for Alice"
    assert followup.query["wait"] == "1"
    assert [m["content"] for m in emu.bot_messages(world.general_id)][-1] == "Stats for Alice"


async def test_history_after_returns_stored_messages_oldest_first(
    emu: DiscordEmulator, client: discord.Client
) -> None:
    world = emu.world
    assert world is not None
    start = (datetime.now(UTC) - timedelta(hours=3)).replace(microsecond=0)  # ids keep ms
    seeded = [
        emu.store_message(world.general_id, world.alice, f"m{i}", at=start + timedelta(minutes=i))
        for i in range(5)
    ]
    channel = client.get_channel(world.general_id)
    assert isinstance(channel, discord.TextChannel)

    after_first = discord.Object(int(seeded[0]["id"]))
    caught_up = [m async for m in channel.history(after=after_first, limit=None)]
    assert [m.content for m in caught_up] == ["m1", "m2", "m3", "m4"]
    assert caught_up[0].created_at == start + timedelta(minutes=1)
    query = emu.requests_matching("GET", rf"/channels/{world.general_id}/messages")[0].query
    assert query["after"] == seeded[0]["id"]

    newest = [m async for m in channel.history(limit=2)]
    assert [m.content for m in newest] == ["m4", "m3"]
    before_last = [m async for m in channel.history(before=newest[0], limit=10)]
    assert [m.content for m in before_last] == ["m3", "m2", "m1", "m0"]


async def test_content_is_withheld_without_message_content_intent(
    emu: DiscordEmulator, connect: Connect
) -> None:
    world = emu.world
    assert world is not None
    intents = bot_intents()
    intents.message_content = False
    bot = await connect(intents=intents)
    assert not emu.intents & Intent.MESSAGE_CONTENT

    plain = bot.wait_for("message", timeout=WAIT)
    await emu.send_message_create(world.general_id, world.alice, "private thoughts")
    assert (await plain).content == ""

    mention = bot.wait_for("message", timeout=WAIT)
    await emu.send_message_create(world.general_id, world.alice, f"<@{emu.bot_id}> help")
    assert (await mention).content == f"<@{emu.bot_id}> help"


async def test_default_member_chunking_is_answered(emu: DiscordEmulator, connect: Connect) -> None:
    intents = bot_intents()
    started = time.perf_counter()
    bot = await connect(
        chunk_guilds_at_startup=True,
        member_cache_flags=discord.MemberCacheFlags.from_intents(intents),
    )
    assert time.perf_counter() - started < 2.0  # unanswered chunk requests would wait 5 s
    assert emu.gateway_received("REQUEST_GUILD_MEMBERS")
    world = emu.world
    assert world is not None
    guild = bot.get_guild(world.guild_id)
    assert guild is not None and guild.chunked and len(guild.members) == 5


async def test_heartbeats_are_acknowledged(emu: DiscordEmulator, connect: Connect) -> None:
    emu.heartbeat_interval = 50  # milliseconds
    bot = await connect()
    await emu.wait_for_gateway("HEARTBEAT", count=3, timeout=WAIT)
    assert bot.latency < 1.0
    assert emu.gateway_received("HEARTBEAT")[-1].data == bot.ws.sequence


async def test_gateway_events_reach_discord_py_handlers(
    emu: DiscordEmulator, client: discord.Client
) -> None:
    world = emu.world
    assert world is not None
    posted = await emu.send_message_create(world.general_id, world.alice, "first post")
    mid = int(posted["id"])

    reaction = client.wait_for("raw_reaction_add", timeout=WAIT)
    await emu.send_reaction_add(world.general_id, mid, world.bob, "🎉")
    raw = await reaction
    assert (raw.user_id, raw.message_id, str(raw.emoji)) == (int(world.bob["id"]), mid, "🎉")
    assert raw.message_author_id == int(world.alice["id"])

    edit = client.wait_for("raw_message_edit", timeout=WAIT)
    await emu.send_message_update(world.general_id, mid, content="first post (edited)")
    assert (await edit).message.content == "first post (edited)"

    dana = emu.create_user("dana")
    join = client.wait_for("member_join", timeout=WAIT)
    await emu.send_member_add(world.guild_id, dana)
    assert (await join).id == int(dana["id"])
    leave = client.wait_for("raw_member_remove", timeout=WAIT)
    await emu.send_member_remove(world.guild_id, dana)
    assert (await leave).user.id == int(dana["id"])

    thread_created = client.wait_for("thread_create", timeout=WAIT)
    await emu.send_thread_create(world.general_id, "Q: deadlines?", owner=world.alice)
    thread = await thread_created
    assert thread.parent_id == world.general_id and thread.owner_id == int(world.alice["id"])

    channel = client.get_channel(world.general_id)
    assert isinstance(channel, discord.TextChannel)
    await channel.get_partial_message(mid).add_reaction("👍")
    assert emu.requests[-1][:2] == (
        "PUT",
        f"/channels/{world.general_id}/messages/{mid}/reactions/👍/@me",
    )
    assert {
        r["emoji"]["name"]: r["me"] for r in emu.messages_in(world.general_id)[0]["reactions"]
    } == {
        "🎉": False,
        "👍": True,
    }

    deleted = client.wait_for("raw_message_delete", timeout=WAIT)
    await emu.send_message_delete(world.general_id, mid)
    assert (await deleted).message_id == mid
    assert emu.messages_in(world.general_id) == []


async def test_malformed_dispatch_escapes_connect(emu: DiscordEmulator) -> None:
    """discord.py does not guard its parsers: a broken payload ends ``connect()`` with the
    parser's exception while ``is_closed()`` stays False. Adapters must supervise the task."""
    bot = make_client()
    task = await start_client(bot, emu, timeout=WAIT)
    try:
        await emu.send_raw({"op": 0, "t": "SOMETHING_NEW", "s": None, "d": {}})  # ignored
        await emu.send_raw({"op": 0, "t": "MESSAGE_CREATE", "s": None, "d": {"id": "1"}})
        with pytest.raises(KeyError):
            await asyncio.wait_for(task, WAIT)
        assert not bot.is_closed()
    finally:
        await bot.close()


async def test_edits_deletes_lookups_and_discord_validation(
    emu: DiscordEmulator, client: discord.Client
) -> None:
    world = emu.world
    assert world is not None
    channel = client.get_channel(world.general_id)
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send("draft")
    edited = await sent.edit(content="final")
    assert edited.content == "final" and edited.edited_at is not None
    assert emu.bot_messages(world.general_id)[-1]["content"] == "final"

    await sent.add_reaction("✅")
    assert client.user is not None
    await sent.remove_reaction("✅", client.user)
    assert emu.requests[-1][:2] == (
        "DELETE",
        f"/channels/{world.general_id}/messages/{sent.id}/reactions/✅/@me",
    )
    assert "reactions" not in emu.bot_messages(world.general_id)[-1]
    await sent.delete()
    assert emu.bot_messages(world.general_id) == []

    guild = client.get_guild(world.guild_id)
    assert guild is not None
    member = await guild.fetch_member(int(world.fran["id"]))
    assert [r.id for r in member.roles if not r.is_default()] == [world.facilitator_role_id]
    thread = await client.fetch_channel(world.thread_id)
    assert isinstance(thread, discord.Thread) and thread.name == "Week 1 discussion"

    with pytest.raises(discord.HTTPException) as too_long:
        await channel.send("x" * 2001)
    assert too_long.value.code == 50035 and "content" in too_long.value.text
    with pytest.raises(discord.NotFound) as unknown:
        await channel.get_partial_message(12345).edit(content="x")
    assert unknown.value.code == 10008
    with pytest.raises(discord.HTTPException) as bad_command:
        await client.http.bulk_upsert_global_commands(
            emu.application_id, [{"name": "Bad Name", "description": "x", "type": 1}]
        )
    assert bad_command.value.code == 50035 and emu.commands == []


async def test_deferred_interaction_then_edit_original(
    emu: DiscordEmulator, connect: Connect
) -> None:
    world = emu.world
    assert world is not None
    bot = make_client()

    @bot.event
    async def on_interaction(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        await interaction.edit_original_response(content="Here is your mirror")

    await connect(bot)
    payload = await emu.send_interaction("course me", user=world.alice)
    await emu.wait_for_request("PATCH", rf"/webhooks/{emu.application_id}/[^/]+/messages/@original")

    record = emu.interactions[int(payload["id"])]
    assert record.response_type == 5 and not record.ephemeral
    assert record.original is not None
    assert record.original["content"] == "Here is your mirror"
    assert not record.original["flags"] & 128  # no longer "thinking"
    assert emu.bot_messages(world.general_id)[-1]["content"] == "Here is your mirror"
