"""Benchmark: what the Discord adapter costs per message, and the bot's memory in a big guild.

Measured in one run against the loopback Discord emulator, each client in its own process
(so the emulator's work and the client's are not on the same event loop, and each process's
resident memory is its own):

1. **Per-message overhead.** The emulator pushes the same N pre-serialized MESSAGE_CREATE
   dispatches (50 members, a quarter with mentions) to
   - a bare discord.py client with Hearth's intents and cache settings that ignores the
     messages (only counts them): gateway frame -> JSON -> discord.py's parser -> Message;
   - Hearth: the same, then translate -> queue -> engine -> classifier -> batched SQLite
     writes, timed until every contribution is committed.
   Both report messages/s from the first message in to the last one done; the difference
   per message is the adapter's and engine's cost.
2. **Memory with a 5,000-member guild.** A guild with ``member_count`` 5,000 (GUILD_CREATE
   lists only the bot, like Discord for large guilds), then 5,000 GUILD_MEMBER_ADD
   dispatches, each recorded by Hearth in its member table. The resident set (VmRSS) of the
   Hearth process is read after start, after the joins, and compared with a bare discord.py
   client using discord.py's defaults (members intent, chunking at start-up, member cache),
   which holds all 5,000 members in memory.

    .venv/bin/python bench/discord_overhead.py            # 20,000 messages, 5,000 members
    .venv/bin/python bench/discord_overhead.py -n 5000 --members 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, rss_mb  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "hearth-bench-token"


# -- the child processes ----------------------------------------------------------------------


def _point(api: str, gateway: str) -> None:
    import discord
    import yarl

    discord.http.Route.BASE = api
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)


def _say(**values: Any) -> None:
    print(json.dumps(values), flush=True)


async def child_bare(args: argparse.Namespace) -> None:
    """A discord.py client that ignores messages (counts them to know when it is done)."""
    import discord

    from tests.emulators.discord_server import make_fast  # no Hearth module: a bare client

    _point(args.api, args.gateway)
    defaults = args.mode == "defaults"
    intents = discord.Intents.none()  # the same intents Hearth asks for
    intents.guilds = intents.guild_messages = intents.guild_reactions = True
    intents.members = intents.dm_messages = intents.message_content = True
    options: dict[str, Any] = {"intents": intents}
    if not defaults:
        options.update(
            chunk_guilds_at_startup=False,
            member_cache_flags=discord.MemberCacheFlags.none(),
            max_messages=None,
        )
    client = make_fast(discord.Client(**options))
    seen = 0
    first = 0.0
    done = asyncio.Event()

    async def on_message(message: discord.Message) -> None:
        nonlocal seen, first
        if seen == 0:
            first = time.perf_counter()
        seen += 1
        if seen >= args.n:
            done.set()

    client.on_message = on_message  # type: ignore[attr-defined]
    imported = rss_mb()
    await client.login(TOKEN)
    task = asyncio.create_task(client.connect())
    await client.wait_until_ready()
    if defaults:
        guild = client.guilds[0]
        _say(ready=True, rss_mb=rss_mb(), imported_mb=imported, cached_members=len(guild.members))
        await client.close()
        await task
        return
    _say(ready=True, rss_mb=rss_mb(), imported_mb=imported)
    await asyncio.wait_for(done.wait(), timeout=600)
    elapsed = time.perf_counter() - first
    _say(messages=seen, seconds=elapsed, rss_mb=rss_mb())
    await client.close()
    await task


async def child_hearth(args: argparse.Namespace) -> None:
    """Hearth: HearthApp on a temporary SQLite file with the real Discord adapter."""
    from bot.adapters.discord_adapter import build_discord_adapter
    from bot.app import HearthApp
    from bot.config import Settings
    from tests.emulators.discord_server import make_fast

    os.environ["HEARTH_DISCORD_TOKEN"] = TOKEN
    imported = rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.model_validate(
            {
                "storage": {"path": str(Path(tmp) / "bench.db")},
                "discord": {"enabled": True, "api_base_url": args.api, "gateway_url": args.gateway},
            }
        )
        app = await HearthApp.create(settings, migrate=False)
        adapter = build_discord_adapter(app, on_client=make_fast)
        app.add_adapter(adapter)
        first = 0.0
        original = adapter.on_message

        async def timed(message: Any) -> None:
            nonlocal first
            if not first:
                first = time.perf_counter()
            await original(message)

        adapter.on_message = timed  # type: ignore[method-assign]
        await adapter.start()
        await adapter.ready.wait()
        _say(ready=True, rss_mb=rss_mb(), imported_mb=imported)
        await adapter.wait_until(lambda: adapter.handled >= args.n, timeout=600)
        await app.store.flush()
        elapsed = time.perf_counter() - first
        _say(events=adapter.handled, seconds=elapsed, rss_mb=rss_mb())
        await app.close()


# -- the parent: emulator and driver -----------------------------------------------------------


class Child:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, mode: str, emu: Any, n: int) -> Child:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--child",
            mode,
            "--api",
            emu.api_base,
            "--gateway",
            emu.gateway_url,
            "-n",
            str(n),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def line(self, timeout: float = 600) -> dict[str, Any]:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not raw:
            raise RuntimeError(f"child exited with {await self.proc.wait()}")
        return json.loads(raw)

    async def finish(self) -> None:
        await asyncio.wait_for(self.proc.wait(), 60)


def message_frames(emu: Any, n: int, authors: list[dict[str, Any]]) -> list[str]:
    """N MESSAGE_CREATE frames as Discord sends them (JSON text), built before timing."""
    world = emu.world
    frames = []
    for i in range(n):
        author = authors[i % len(authors)]
        if i % 4 == 0:
            peer = authors[(i + 7) % len(authors)]
            text = f"<@{peer['id']}> I think the reading on week {i % 12} answers that."
        elif i % 4 == 1:
            text = "How do we cite a source from the lecture? (asking for the essay)"
        else:
            text = f"Here is my idea number {i}: start from the examples, then generalise."
        payload = emu.message_payload(world.general_id, author, text)
        frames.append(json.dumps({"op": 0, "t": "MESSAGE_CREATE", "s": None, "d": payload}))
    return frames


def join_frames(emu: Any, guild_id: int, users: list[dict[str, Any]]) -> list[str]:
    frames = []
    for user in users:
        member = {
            "guild_id": str(guild_id),
            "user": user,
            "roles": [],
            "joined_at": "2026-09-07T09:00:00.000000+00:00",
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "nick": None,
        }
        frames.append(json.dumps({"op": 0, "t": "GUILD_MEMBER_ADD", "s": None, "d": member}))
    return frames


async def push(emu: Any, frames: list[str]) -> None:
    for frame in frames:
        await emu.send_raw(frame)


async def overhead(n: int) -> dict[str, Any]:
    from tests.emulators.discord_server import DiscordEmulator

    async with DiscordEmulator(token=TOKEN, echo_bot_events=False) as emu:
        world = emu.world
        authors = [emu.create_user(f"learner{i}") for i in range(50)]
        for user in authors:
            emu.add_member(world.guild_id, user)
        frames = message_frames(emu, n, authors)
        results: dict[str, Any] = {}
        for mode in ("bare", "hearth"):
            child = await Child.start(mode, emu, n)
            ready = await child.line()
            await push(emu, frames)
            results[mode] = {**await child.line(), "imported_mb": ready["imported_mb"]}
            await child.finish()
        return results


async def memory(members: int) -> dict[str, Any]:
    from tests.emulators.discord_server import DiscordEmulator

    async with DiscordEmulator(token=TOKEN, default_world=False, echo_bot_events=False) as emu:
        guild = emu.create_guild("Big course")
        gid = int(guild["id"])
        emu.create_channel(gid, "general")
        users = [emu.create_user(f"member{i}") for i in range(members)]
        for user in users:
            emu.add_member(gid, user)
        results: dict[str, Any] = {"member_count": len(emu.members[gid])}
        # GUILD_CREATE says member_count N and lists only the bot (a large guild); then each
        # member arrives as a GUILD_MEMBER_ADD, which Hearth records in its member table.
        child = await Child.start("hearth", emu, members)
        results["hearth_ready"] = await child.line()
        await push(emu, join_frames(emu, gid, users))
        results["hearth_after_joins"] = await child.line()
        await child.finish()
        # discord.py's defaults: the members intent with chunking at start-up and a member
        # cache, i.e. every member held in memory.
        child = await Child.start("defaults", emu, 0)
        results["discordpy_defaults"] = await child.line()
        await child.finish()
        return results


async def run(n: int, members: int) -> None:
    over = await overhead(n)
    mem = await memory(members)
    bare, hearth = over["bare"], over["hearth"]
    bare_rate = bare["messages"] / bare["seconds"]
    hearth_rate = hearth["events"] / hearth["seconds"]
    print(f"Discord adapter overhead ({machine()}, Python {platform.python_version()})")
    print(
        f"  {n:,} MESSAGE_CREATE dispatches from the loopback emulator, client in its own process"
    )
    print(f"  bare discord.py client (parse only):   {bare_rate:10,.0f} messages/s")
    print(f"  Hearth (parse, translate, engine, SQLite): {hearth_rate:6,.0f} messages/s")
    per = (1 / hearth_rate - 1 / bare_rate) * 1e6
    print(
        f"  Hearth/bare: {hearth_rate / bare_rate:.2f}; adapter + engine + storage add "
        f"{per:.0f} µs per message"
    )
    print(f"Memory with a {members:,}-member guild (VmRSS of each client process)")
    print(
        f"  (after imports, before connecting: bare discord.py "
        f"{bare['imported_mb']:.1f} MB, Hearth {mem['hearth_ready']['imported_mb']:.1f} MB)"
    )
    print(
        f"  Hearth after start (member_count {mem['member_count']:,}): "
        f"{mem['hearth_ready']['rss_mb']:7.1f} MB"
    )
    print(
        f"  Hearth after {mem['hearth_after_joins']['events']:,} members recorded: "
        f"{mem['hearth_after_joins']['rss_mb']:7.1f} MB"
    )
    defaults = mem["discordpy_defaults"]
    cached = defaults["cached_members"]
    print(
        f"  bare discord.py with its defaults (chunking, member cache, {cached:,} members "
        f"cached): {defaults['rss_mb']:.1f} MB"
    )
    print(f"  bare discord.py with Hearth's settings after {n:,} messages: {bare['rss_mb']:.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=20_000, help="messages to push (default 20,000)")
    parser.add_argument("--members", type=int, default=5000, help="guild size (default 5,000)")
    parser.add_argument("--child", choices=("bare", "hearth", "defaults"), help=argparse.SUPPRESS)
    parser.add_argument("--api", help=argparse.SUPPRESS)
    parser.add_argument("--gateway", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if args.child:
        args.mode = args.child
        child = child_hearth if args.child == "hearth" else child_bare
        asyncio.run(child(args))
        return
    asyncio.run(run(args.n, args.members))


if __name__ == "__main__":
    main()
