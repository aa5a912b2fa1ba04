"""The Discord adapter: the real discord.py client, its command tree, and the outbound side.

Thin on purpose: translation lives in :mod:`bot.adapters.discord_translate` and rendering in
:mod:`bot.adapters.discord_render`; this module owns the connection and the order of things.

**Client.** Intents: guilds, guild messages, guild reactions, members, DM messages and message
content. Memory discipline: no member chunking at start-up, no member cache, no message cache
(``max_messages=None``): Hearth keeps its own member table, and edits, deletes and reactions
come through discord.py's *raw* events, which need no cache. Before connecting, the adapter
compares the privileged intents it wants with what the application has enabled (Developer
Portal > Bot): a missing Message Content intent is logged once, clearly, and Hearth runs on,
recording structure (replies, mentions, reactions, threads) without text; a missing Server
Members intent means joins and leaves are not seen. With ``[discord] shard_count`` set (or
when Discord recommends more than one shard, i.e. the bot is in many guilds) the client is an
``AutoShardedClient``.

**Inbound.** Gateway events are translated, queued and applied one at a time by a worker, in
the order Discord sent them (a reply never overtakes its parent). Message ids seen recently
are remembered, so a message that arrives live and again from history counts once (the
database's unique keys are the last line). Slash commands and buttons run as their own tasks:
each is answered within Discord's 3 seconds, directly when the engine is quick, otherwise it
is deferred ("Hearth is thinking...", private when the command is) and the answer follows;
commands declared ``slow`` are deferred at once. The member who runs a command is a
facilitator for the engine when they have the ``facilitator_role``; the engine checks that (or
its own member table) on every call, whatever Discord's default permissions say.

**Malformed payloads.** discord.py does not guard its parsers: a dispatch with a missing field
would end ``connect()``. Every parser of the client's state is wrapped so such a payload is
logged and skipped and the connection stays up; anything else that escapes ``connect()`` (a
frame that is not JSON) is logged and the adapter reconnects with a fresh client, which
IDENTIFYs again and catches up.

**Catch-up.** At start and after every reconnect that was not resumed (a READY, not RESUMED),
live processing pauses at READY; when the guilds are in (``on_ready``, or ``on_shard_ready``
per shard), each tracked text channel and its active threads are read with
``history(after=<last message Hearth stored>, limit=catch_up_limit)`` and applied through
the same dispatch path and dedupe, then live processing resumes. Holding live events meanwhile
keeps the marks from before the gap (a live message stored first would hide it) and keeps the
order: what was said in the gap is applied before what came after. A channel with nothing
stored starts after the
community's newest stored message; a community with nothing stored gets no catch-up (import
history with ``hearth import discord-export``). Reactions on caught-up messages are read too;
edits and deletes made while the bot was down are not.

**Outbound.** One handler per action type: posts (split across messages within Discord's
limits, charts and CSVs as attachments, a thread made from the post when asked, the new
message id reported in ``tagged`` for tagged posts), replies (interaction response, edit of a
deferred answer, or follow-ups), DMs through a paced queue (``dm_per_minute``; error 40003,
"opening DMs too fast", pauses the queue and retries; 50007, DMs closed, marks the member
unreachable in every course they are in and is never retried), reactions and attachments.
429 responses are retried by discord.py itself after ``retry_after``; what still fails is
raised to the runtime, which logs it and marks the send failed, never silently dropped.

**Emulator.** ``api_base_url`` and ``gateway_url`` point discord.py elsewhere (tests use a
loopback emulator). discord.py keeps them at module and class level (``Route.BASE``,
``DiscordWebSocket.DEFAULT_GATEWAY``), so the adapter sets them at start from these two
config values only, and restores the previous values at stop.

**DMs and communities.** A Discord DM has no guild. A DM (a reflection answer) is attributed
to the course the member was most recently seen joining; a member in two Hearth courses on
the same bot answers DM prompts of the newest one.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
import discord
import yarl
from discord import app_commands
from sqlalchemy import select

from bot.actions import Action, Attach, DirectMessage, PostMessage, React, Reply
from bot.adapters.base import TaskSet
from bot.adapters.discord_render import OutMessage, button_view, discord_files, render
from bot.adapters.discord_translate import (
    PLATFORM,
    ChannelInfo,
    build_command_groups,
    channel_info,
    member_ref,
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
from bot.app import HearthApp
from bot.commands import CommandSpec
from bot.config import ConfigError, DiscordSettings, secret
from bot.events import (
    ButtonPressed,
    CommandInvoked,
    Event,
    MemberRef,
    MessageEdited,
    MessagePosted,
    PlaceRef,
    ReactionAdded,
)
from bot.logsafe import register_secret
from storage.repos import CM, M

log = logging.getLogger(__name__)

#: Slash commands get a direct answer when the engine is this quick (Discord allows 3 s).
ANSWER_BUDGET_SECONDS = 2.0
#: How long live processing may wait for on_ready after a READY before it resumes anyway.
READY_TIMEOUT_SECONDS = 120.0
#: A whole catch-up may take this long before live processing resumes without it.
CATCH_UP_TIMEOUT_SECONDS = 300.0
#: Recently dispatched message ids remembered for dedupe between live and history.
RECENT_IDS = 20_000
#: Names, channel parents and DM communities remembered (small bounded caches).
CACHE_SIZE = 10_000
#: After "opening DMs too fast" (40003) the DM queue pauses this long, then retries.
DM_BACKOFF_SECONDS = 60.0
DM_ATTEMPTS = 3
#: Logging in at start: tries while Discord cannot be reached (1, 2, 4, 8 s apart).
LOGIN_ATTEMPTS = 5
#: Close codes after which reconnecting cannot help (bad token, bad shard, bad intents).
FATAL_CLOSE_CODES = frozenset({4004, 4010, 4012, 4013})
SHARDING_REQUIRED = 4011
#: A message's answer when the engine produced none (Discord wants every interaction answered).
DONE = "Done."


def wanted_intents() -> discord.Intents:
    """What Hearth asks Discord for (Server Members and Message Content are privileged)."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.guild_reactions = True
    intents.members = True
    intents.dm_messages = True
    intents.message_content = True
    return intents


def bot_permissions() -> discord.Permissions:
    """Exactly the channel permissions the code uses (the invite URL asks for these)."""
    return discord.Permissions(
        view_channel=True,
        send_messages=True,
        send_messages_in_threads=True,
        create_public_threads=True,
        embed_links=True,
        attach_files=True,
        read_message_history=True,
        add_reactions=True,
        use_application_commands=True,
    )


def invite_url(application_id: int | str) -> str:
    """The URL a server admin opens to add Hearth (bot + slash commands scopes)."""
    return discord.utils.oauth_url(
        application_id,
        permissions=bot_permissions(),
        scopes=("bot", "applications.commands"),
    )


class DiscordDeliveryError(RuntimeError):
    """A Discord action could not be carried out (no such channel, no interaction...)."""


class _Bounded(OrderedDict):
    """A dict that forgets its oldest entries past ``capacity``."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > self.capacity:
            self.popitem(last=False)

    def first_time(self, key: Any) -> bool:
        """Remember ``key``; True unless it was already there."""
        if key in self:
            self.move_to_end(key)
            return False
        self.put(key, None)
        return True


@dataclass(slots=True)
class _Pending:
    """An interaction being answered: who answers first (response, edit or follow-up)."""

    interaction: discord.Interaction
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    deferred: bool = False
    deferred_ephemeral: bool = True
    answered: bool = False


@dataclass(slots=True)
class _DmJob:
    action: DirectMessage
    attempts: int = 0


class _HearthClientMixin:
    """Hands ``setup_hook`` (discord.py's async start-up, run by ``login``) to the adapter."""

    adapter: DiscordAdapter

    async def setup_hook(self) -> None:
        await self.adapter.setup_hook(self)  # type: ignore[arg-type]


class HearthClient(_HearthClientMixin, discord.Client):
    pass


class HearthShardedClient(_HearthClientMixin, discord.AutoShardedClient):
    pass


class DiscordAdapter:
    """Hearth on Discord; see the module docstring. Built by :func:`build_discord_adapter`."""

    platform = PLATFORM

    def __init__(
        self,
        hearth: HearthApp,
        *,
        token: str,
        on_client: Callable[[discord.Client], Any] | None = None,
    ) -> None:
        self.hearth = hearth
        self.settings: DiscordSettings = hearth.settings.discord
        self.runtime = hearth.runtime
        self.engine = hearth.engine
        self.store = hearth.store
        self.clock = hearth.clock
        self.token = token
        #: Called with every client built (tests remove discord.py's identify delays).
        self.on_client = on_client
        self.intents = wanted_intents()
        self.sharded = self.settings.shard_count is not None
        self.shard_count = self.settings.shard_count
        self.client: discord.Client | None = None
        self.tree: app_commands.CommandTree | None = None
        #: PostMessage tag -> the id Discord gave the post; the runtime pops it for the cogs.
        self.tagged: dict[str, str] = {}
        self.answer_budget = ANSWER_BUDGET_SECONDS
        self.login_backoff = 1.0
        self.dm_backoff = DM_BACKOFF_SECONDS
        self.dm_interval = 60.0 / self.settings.dm_per_minute
        # Counters (health, tests, the bench).
        self.handled = 0
        self.duplicates = 0
        self.malformed = 0
        self.restarts = 0
        self.dms_sent = 0
        self.dms_failed = 0
        #: Messages read from history at each READY (one entry per catch-up).
        self.catch_ups: list[int] = []
        self.ready = asyncio.Event()
        self._inbound: asyncio.Queue[Event] = asyncio.Queue()
        self._dms: asyncio.Queue[_DmJob] = asyncio.Queue()
        self._dm_next = 0.0
        self._seen: _Bounded = _Bounded(RECENT_IDS)
        self._names: _Bounded = _Bounded(CACHE_SIZE)  # user id -> (name, facilitator)
        self._channels: _Bounded = _Bounded(CACHE_SIZE)  # channel id -> ChannelInfo
        self._dm_communities: _Bounded = _Bounded(CACHE_SIZE)  # user id -> community
        self._known_channels: set[tuple[str, str]] = set()
        self._unreachable: set[str] = set()
        self._interactions: dict[str, _Pending] = {}
        self._pending_ready: dict[Any, asyncio.TimerHandle | None] = {}
        self._live = asyncio.Event()
        self._live.set()
        self._changed = asyncio.Event()
        self._tasks = TaskSet("Discord")
        self._worker: asyncio.Task[None] | None = None
        self._dm_worker: asyncio.Task[None] | None = None
        self._runner: asyncio.Task[None] | None = None
        self._stopping = False
        self._warned: set[str] = set()
        self._saved_urls: tuple[str, yarl.URL] | None = None
        self._senders: dict[type, Callable[[Any, Event | None], Awaitable[None]]] = {
            Reply: self._send_reply,
            PostMessage: self._send_post,
            DirectMessage: self._send_dm,
            React: self._send_react,
            Attach: self._send_attach,
        }

    # -- client -----------------------------------------------------------------------------------

    @property
    def content_intent(self) -> bool:
        return self.intents.message_content

    @property
    def bot_id(self) -> int | None:
        user = self.client.user if self.client is not None else None
        return user.id if user is not None else None

    def build_client(self) -> discord.Client:
        """A client with Hearth's intents, caches off, the command tree and the listeners."""
        options: dict[str, Any] = {
            # A copy: dropping an intent later must not change a client already built.
            "intents": discord.Intents._from_value(self.intents.value),
            "chunk_guilds_at_startup": False,
            "member_cache_flags": discord.MemberCacheFlags.none(),
            "max_messages": None,
            # Hearth may name people; it never pings @everyone or roles.
            "allowed_mentions": discord.AllowedMentions(
                everyone=False, roles=False, users=True, replied_user=False
            ),
        }
        # Hearth never joins voice: discord.py's warnings that the voice libraries (PyNaCl,
        # davey) are missing, at every start and every sync-commands, would only worry.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        client: discord.Client
        if self.sharded:
            client = HearthShardedClient(shard_count=self.shard_count, **options)
        else:
            client = HearthClient(**options)
        client.adapter = self  # type: ignore[attr-defined]
        self.tree = self.build_tree(client)
        for name in (
            "on_message",
            "on_raw_message_edit",
            "on_raw_message_delete",
            "on_raw_bulk_message_delete",
            "on_raw_reaction_add",
            "on_raw_reaction_remove",
            "on_member_join",
            "on_raw_member_remove",
            "on_interaction",
            "on_ready",
            "on_shard_ready",
            "on_resumed",
        ):
            setattr(client, name, getattr(self, name))
        self._guard_parsers(client)
        if self.on_client is not None:
            self.on_client(client)
        return client

    def build_tree(self, client: discord.Client) -> app_commands.CommandTree:
        """The application commands from the shared specs (``/course ...``)."""
        tree = app_commands.CommandTree(client, fallback_to_global=True)
        groups = build_command_groups(
            self.engine.registry,
            self._run_command,
            root=self.settings.command_root,
            facilitator_root=self.settings.facilitator_root,
        )
        for group in groups:
            tree.add_command(group)
        tree.on_error = self._on_tree_error  # type: ignore[method-assign]
        return tree

    def _guard_parsers(self, client: discord.Client) -> None:
        """Wrap every gateway parser so a malformed payload is logged and skipped.

        discord.py calls them unguarded; one KeyError would end ``connect()``. READY also
        pauses live processing until the catch-up that follows it has read its marks.
        """
        state = client._connection
        parsers: dict[str, Callable[[Any], None]] = state.parsers

        def guard(name: str, parse: Callable[[Any], None]) -> Callable[[Any], None]:
            def guarded(data: Any) -> None:
                if name == "READY":
                    shard = data.get("shard") if isinstance(data, dict) else None
                    self._pause_live(shard[0] if self.sharded and shard else None)
                try:
                    parse(data)
                except Exception as exc:  # noqa: BLE001 - one bad payload must not end the session
                    self.malformed += 1
                    # Field names only: an exception's text could quote a member's message.
                    keys = sorted(data)[:12] if isinstance(data, dict) else type(data).__name__
                    missing = f" {exc.args[0]!r}"[:40] if isinstance(exc, KeyError) else ""
                    log.warning(
                        "Discord: skipped a malformed %s payload (%s%s; keys %s)",
                        name,
                        type(exc).__name__,
                        missing,
                        keys,
                    )

            return guarded

        for name, parse in list(parsers.items()):
            parsers[name] = guard(name, parse)

    async def setup_hook(self, client: discord.Client) -> None:
        """discord.py's async start-up (inside ``login``): the workers start once."""
        loop = asyncio.get_running_loop()
        if self._worker is None:
            self._worker = loop.create_task(self._work(), name="discord-inbound")
        if self._dm_worker is None:
            self._dm_worker = loop.create_task(self._dm_work(), name="discord-dms")

    def _lookup(self, channel_id: int) -> ChannelInfo | None:
        client = self.client
        channel = client.get_channel(channel_id) if client is not None else None
        info = channel_info(channel) if channel is not None else None
        return info or self._channels.get(channel_id)

    async def _resolve_channel(self, channel_id: int) -> None:
        """Learn a channel discord.py does not cache (an old thread) with one fetch."""
        if self._lookup(channel_id) is not None or self.client is None:
            return
        try:
            channel = await self.client.fetch_channel(channel_id)
        except discord.HTTPException as exc:
            log.debug("could not fetch channel %s: %s", channel_id, exc)
            return
        info = channel_info(channel)
        if info is not None:
            self._channels.put(channel_id, info)

    # -- lifecycle --------------------------------------------------------------------------------

    def _point_at_config(self) -> None:
        """Set discord.py's REST base and gateway URL from ``api_base_url`` / ``gateway_url``.

        They are module/class attributes in discord.py, so this is the only place Hearth
        touches them, from these two config values only; `stop` restores the old values.
        """
        route = discord.http.Route
        ws = discord.gateway.DiscordWebSocket
        if self._saved_urls is None:
            self._saved_urls = (route.BASE, ws.DEFAULT_GATEWAY)
        route.BASE = self.settings.api_base_url.rstrip("/")
        ws.DEFAULT_GATEWAY = yarl.URL(self.settings.gateway_url)

    def _restore_urls(self) -> None:
        if self._saved_urls is not None:
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = (
                self._saved_urls
            )
            self._saved_urls = None

    async def _login(self) -> discord.Client:
        client = self.build_client()
        try:
            await client.login(self.token)
        except discord.LoginFailure:
            await client.close()
            raise ConfigError(
                f"Discord refused the bot token in {self.settings.token_env} (401): copy it "
                "again from the Developer Portal, Bot page"
            ) from None
        except BaseException:
            await client.close()
            raise
        self.client = client
        return client

    async def _first_login(self) -> discord.Client:
        """Log in at start, retrying while Discord cannot be reached (a network blip, a
        Discord outage), then giving up with a clear error instead of a traceback."""
        delay = self.login_backoff
        for attempt in range(1, LOGIN_ATTEMPTS + 1):
            try:
                return await self._login()
            except (OSError, aiohttp.ClientError, TimeoutError, discord.DiscordServerError) as exc:
                if attempt == LOGIN_ATTEMPTS:
                    raise ConfigError(
                        f"cannot reach Discord at {self.settings.api_base_url} after "
                        f"{attempt} attempts: {type(exc).__name__}: {exc}"
                    ) from None
                log.warning(
                    "Discord unreachable (attempt %d of %d: %s); retrying in %.1fs",
                    attempt,
                    LOGIN_ATTEMPTS,
                    type(exc).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        raise AssertionError("unreachable")  # pragma: no cover

    def _check_intents(self, flags: discord.ApplicationFlags | None) -> bool:
        """Drop privileged intents the application has not enabled; True if any was dropped."""
        if flags is None:
            return False  # unknown: ask, and fall back if Discord refuses (close code 4014)
        dropped = False
        if self.intents.message_content and not (
            flags.gateway_message_content or flags.gateway_message_content_limited
        ):
            self._drop_content_intent()
            dropped = True
        if self.intents.members and not (
            flags.gateway_guild_members or flags.gateway_guild_members_limited
        ):
            self._drop_members_intent()
            dropped = True
        return dropped

    def _drop_content_intent(self) -> None:
        self.intents.message_content = False
        self._warn_once(
            "content",
            "Discord: the Message Content intent is not enabled for this application, so "
            "Hearth cannot read message text. It keeps running and records structure only "
            "(replies, mentions, reactions, threads); the question, support and text-based "
            "reference kinds are unavailable. Enable it in the Developer Portal: Bot > "
            "Privileged Gateway Intents > Message Content Intent.",
        )

    def _drop_members_intent(self) -> None:
        self.intents.members = False
        self._warn_once(
            "members",
            "Discord: the Server Members intent is not enabled for this application, so "
            "Hearth does not see members join or leave (they are still recorded when they "
            "post). Enable it in the Developer Portal: Bot > Privileged Gateway Intents > "
            "Server Members Intent.",
        )

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("%s", message)

    async def start(self) -> None:
        """Log in, settle intents and sharding, then connect in the background."""
        self._stopping = False
        self._point_at_config()
        client = await self._first_login()
        rebuild = self._check_intents(client.application_flags)
        if not self.sharded:
            try:
                shards, _url, _limits = await client.http.get_bot_gateway()
            except discord.HTTPException as exc:
                log.debug("GET /gateway/bot failed (%s); not sharding", exc)
                shards = 1
            if shards > 1:
                # Discord requires sharding from 2,500 guilds and recommends it earlier.
                log.info("Discord recommends %d shards: running sharded", shards)
                self.sharded, self.shard_count = True, None
                rebuild = True
        if rebuild:
            await client.close()
            client = await self._login()
        if not self.intents.message_content:
            # The contributions cog says it too, but only once a message arrives.
            log.info("Discord: recording without message text (Message Content intent off)")
        self._runner = asyncio.create_task(self._run(), name="discord-connection")
        log.info(
            "Discord: logged in as %s (%s)%s",
            client.user,
            self.bot_id,
            f", {self.shard_count or 'automatic'} shards" if self.sharded else "",
        )

    async def _run(self) -> None:
        """Keep a connection: reconnect after anything discord.py does not handle itself."""
        failures = 0
        while not self._stopping:
            client = self.client
            assert client is not None
            try:
                await client.connect(reconnect=True)
                if self._stopping:
                    return
                log.warning("Discord: the connection ended; connecting again")
            except asyncio.CancelledError:
                raise
            except discord.PrivilegedIntentsRequired:
                if not (self.intents.message_content or self.intents.members):
                    log.error("Discord refused the intents even without privileged ones")
                    return
                if self.intents.message_content:
                    self._drop_content_intent()
                if self.intents.members:
                    self._drop_members_intent()
            except discord.ConnectionClosed as exc:
                if exc.code == SHARDING_REQUIRED and not self.sharded:
                    log.warning("Discord requires sharding for this bot: running sharded")
                    self.sharded, self.shard_count = True, None
                elif exc.code in FATAL_CLOSE_CODES:
                    log.error("Discord closed the gateway with %s; not reconnecting", exc.code)
                    return
                else:
                    log.warning("Discord closed the gateway with %s; reconnecting", exc.code)
            except Exception:  # noqa: BLE001 - anything else: reconnect with a fresh client
                log.exception("Discord: the gateway connection failed; reconnecting")
            if self._stopping:
                return
            # A connection that had become ready starts the count again.
            failures = 1 if self.ready.is_set() else failures + 1
            self.restarts += 1
            # The first reconnect is immediate; repeated failures back off up to a minute.
            await asyncio.sleep(0 if failures <= 1 else min(60.0, 2.0 ** (failures - 1)))
            await client.close()
            self.ready.clear()
            self._release_all()
            try:
                await self._login()
            except ConfigError as exc:
                log.error("%s", exc)
                return
            except Exception:  # noqa: BLE001 - try again on the next loop
                log.exception("Discord: logging in again failed")

    async def stop(self) -> None:
        self._stopping = True
        self._release_all()  # events held for a catch-up that will not come are applied
        if self._runner is not None:
            if self.client is not None:
                await self.client.close()
            try:
                await asyncio.wait_for(self._runner, timeout=10)
            except (TimeoutError, asyncio.CancelledError):
                self._runner.cancel()
            self._runner = None
        elif self.client is not None:
            await self.client.close()
        try:
            await asyncio.wait_for(self.drain(), timeout=10)
        except TimeoutError:
            log.warning(
                "Discord: stopped with %d events and %d DMs not handled",
                self._inbound.qsize(),
                self._dms.qsize(),
            )
        for task in (self._worker, self._dm_worker, *self._tasks):
            if task is not None:
                task.cancel()
        await asyncio.gather(
            *(t for t in (self._worker, self._dm_worker, *self._tasks) if t is not None),
            return_exceptions=True,
        )
        self._worker = self._dm_worker = None
        while not self._dms.empty():  # claimed in the ledger but never sent
            job = self._dms.get_nowait()
            await self._dm_failed(job.action, "the bot stopped before it went out")
        self._restore_urls()

    async def drain(self) -> None:
        """Wait until every queued event, DM and running interaction is handled."""
        while True:
            await self._inbound.join()
            await self._dms.join()
            pending = [t for t in self._tasks if not t.done()]
            if not pending and self._inbound.empty() and self._dms.empty():
                return
            if pending:
                await asyncio.wait(pending)

    def health(self) -> dict[str, Any]:
        """What /healthz shows about Discord."""
        client = self.client
        latency = client.latency if client is not None else float("nan")
        return {
            "connected": bool(client is not None and client.is_ready() and not client.is_closed()),
            "guilds": len(client.guilds) if client is not None else 0,
            "shards": (client.shard_count or 1) if client is not None else 0,
            "latency_ms": round(latency * 1000, 1) if math.isfinite(latency) else None,
            "message_content": self.intents.message_content,
            "queued_events": self._inbound.qsize(),
            "queued_dms": self._dms.qsize(),
            "malformed_payloads": self.malformed,
        }

    # -- waiting (tests and the bench) ------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_until(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Wait until ``predicate()`` is truthy, re-checked whenever the adapter handles
        something; TimeoutError after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout}s")
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 0.25))
            except TimeoutError:
                pass

    # -- live gate (catch-up before live) ------------------------------------------------------

    def _pause_live(self, key: Any) -> None:
        """READY arrived: hold live events until this session's catch-up has run."""
        old = self._pending_ready.pop(key, None)
        if old is not None:
            old.cancel()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # parsed outside a loop (unit tests of the parsers)
            return
        self._pending_ready[key] = loop.call_later(
            READY_TIMEOUT_SECONDS, self._release, key, "on_ready never came"
        )
        self._live.clear()

    def _release(self, key: Any, why: str = "") -> None:
        handle = self._pending_ready.pop(key, None)
        if handle is not None:
            handle.cancel()
        if why:
            log.warning("Discord: resuming live events without a catch-up (%s)", why)
        if not self._pending_ready:
            self._live.set()

    def _release_all(self) -> None:
        for key in list(self._pending_ready):
            self._release(key)
        self._live.set()

    # -- gateway listeners ------------------------------------------------------------------------

    def _enqueue(self, event: Event | None) -> None:
        if event is not None:
            self._inbound.put_nowait(event)

    @property
    def _role(self) -> str:
        return self.settings.facilitator_role

    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or message.webhook_id:
            return  # Hearth's own posts come back on the gateway; skip them cheaply
        if message.guild is not None and isinstance(message.channel, discord.PartialMessageable):
            await self._resolve_channel(message.channel.id)
        self._enqueue(
            translate_message(
                message,
                facilitator_role=self._role,
                content_intent=self.intents.message_content,
                bot_id=self.bot_id,
                lookup=self._lookup,
            )
        )

    async def on_raw_message_edit(self, raw: discord.RawMessageUpdateEvent) -> None:
        self._enqueue(
            translate_edit(
                raw,
                now=self.clock.now(),
                facilitator_role=self._role,
                content_intent=self.intents.message_content,
                bot_id=self.bot_id,
                lookup=self._lookup,
            )
        )

    async def on_raw_message_delete(self, raw: discord.RawMessageDeleteEvent) -> None:
        self._enqueue(translate_delete(raw, now=self.clock.now(), lookup=self._lookup))

    async def on_raw_bulk_message_delete(self, raw: discord.RawBulkMessageDeleteEvent) -> None:
        for event in translate_bulk_delete(raw, now=self.clock.now(), lookup=self._lookup):
            self._enqueue(event)

    async def on_raw_reaction_add(self, raw: discord.RawReactionActionEvent) -> None:
        self._enqueue(self._reaction(raw))

    async def on_raw_reaction_remove(self, raw: discord.RawReactionActionEvent) -> None:
        self._enqueue(self._reaction(raw))

    def _reaction(self, raw: discord.RawReactionActionEvent) -> Event | None:
        return translate_reaction(
            raw,
            now=self.clock.now(),
            facilitator_role=self._role,
            bot_id=self.bot_id,
            lookup=self._lookup,
        )

    async def on_member_join(self, member: discord.Member) -> None:
        self._enqueue(
            translate_member_join(member, now=self.clock.now(), facilitator_role=self._role)
        )

    async def on_raw_member_remove(self, raw: discord.RawMemberRemoveEvent) -> None:
        self._enqueue(translate_member_remove(raw, now=self.clock.now()))

    async def on_ready(self) -> None:
        if self.sharded:
            return  # each shard catches up its own guilds in on_shard_ready
        client = self.client
        assert client is not None
        await self._catch_up_then_go_live(None, list(client.guilds))

    async def on_shard_ready(self, shard_id: int) -> None:
        client = self.client
        if not self.sharded or client is None:
            return
        guilds = [g for g in client.guilds if g.shard_id == shard_id]
        await self._catch_up_then_go_live(shard_id, guilds)

    async def on_resumed(self) -> None:
        log.info("Discord: session resumed (no gap, nothing to catch up)")

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """Buttons (component interactions); slash commands go through the command tree."""
        if interaction.type is not discord.InteractionType.component:
            return
        event = translate_button(interaction, facilitator_role=self._role, lookup=self._lookup)
        if event is None:
            return  # not one of Hearth's buttons
        self._spawn(self._answer(interaction, event, slow=False, private=True))

    # -- commands ---------------------------------------------------------------------------------

    async def _run_command(
        self, interaction: discord.Interaction, spec: CommandSpec, values: dict[str, Any]
    ) -> None:
        """A slash command's callback (built from its spec by the translate module)."""
        if interaction.guild_id is None:
            await interaction.response.send_message(
                "Hearth commands work in your course server.", ephemeral=True
            )
            return
        event = translate_command(
            interaction, spec, values, facilitator_role=self._role, lookup=self._lookup
        )
        community = str(interaction.guild_id)
        for option in spec.options:
            value = values.get(option.name)
            if option.type == "member" and value is not None:
                # The picked member may never have posted: put them in the member table so
                # the command's handler can find them by id.
                await self.engine.ensure_community(community, PLATFORM)
                await self.engine.ensure_member(community, member_ref(value, self._role))
            elif option.type == "channel" and value is not None:
                # Likewise a picked channel or thread nobody has posted in yet, so the
                # handler knows it (and its name) rather than taking its id for a typo.
                place = PlaceRef(PLATFORM, community, str(value.id), channel_name=value.name)
                await self._note_channel(place)
        await self._answer(interaction, event, slow=spec.slow, private=spec.private)

    async def _answer(
        self, interaction: discord.Interaction, event: Event, *, slow: bool, private: bool
    ) -> None:
        """Run the event and answer within Discord's 3 s: directly, or defer then follow up."""
        key = str(interaction.id)
        pending = _Pending(interaction)
        self._interactions[key] = pending
        try:
            if slow:
                await self._defer(pending, private)
            work = self._spawn(self.runtime.handle(event, origin=self))
            done, _ = await asyncio.wait({work}, timeout=self.answer_budget)
            if not done:
                await self._defer(pending, private)
            await work
            async with pending.lock:
                if not interaction.response.is_done():
                    await interaction.response.send_message(DONE, ephemeral=True)
                elif pending.deferred and not pending.answered:
                    await interaction.edit_original_response(content=DONE)
        except discord.HTTPException as exc:
            log.error("Discord: answering interaction %s failed: %s", key, exc)
        finally:
            self._interactions.pop(key, None)
            self._notify()

    async def _defer(self, pending: _Pending, private: bool) -> None:
        async with pending.lock:
            if pending.interaction.response.is_done():
                return
            await pending.interaction.response.defer(ephemeral=private, thinking=True)
            pending.deferred = True
            pending.deferred_ephemeral = private

    async def _on_tree_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        if isinstance(error, app_commands.CommandNotFound):
            text = (
                "This command is not known to this Hearth; a facilitator can run "
                "`hearth discord sync-commands` to refresh the command list."
            )
            log.warning("Discord: unknown application command %s", error.name)
        elif isinstance(error, app_commands.TransformerError):
            text = f"I could not read the option {error.value!r}."
        else:
            log.error("Discord: command failed", exc_info=error)
            text = "Sorry, something went wrong on my side."
        try:
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)
        except discord.HTTPException as exc:
            log.error("Discord: could not answer a failed command: %s", exc)

    # -- inbound worker ---------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        return self._tasks.spawn(coro)

    async def _work(self) -> None:
        """Apply queued events one at a time, in gateway order, after any catch-up."""
        while True:
            event = await self._inbound.get()
            try:
                await self._live.wait()
                await self.handle(event)
            except Exception:  # noqa: BLE001 - one bad event must not stop the worker
                log.exception("handling a Discord %s failed", type(event).__name__)
            finally:
                self._inbound.task_done()
                self._notify()

    async def handle(self, event: Event) -> bool:
        """Dedupe, complete and dispatch one event; False when it was a duplicate or dropped."""
        if isinstance(event, MessagePosted) and not self._seen.first_time(event.message_id):
            self.duplicates += 1
            return False
        prepared = await self._prepare(event)
        if prepared is None:
            return False
        await self.runtime.handle(prepared, origin=self)
        self.handled += 1
        return True

    async def _prepare(self, event: Event) -> Event | None:
        """What only the adapter knows: DM communities, names of members seen before, and
        the channel table (catch-up starts from the channels Hearth has seen)."""
        changes: dict[str, Any] = {}
        place = getattr(event, "place", None)
        if isinstance(place, PlaceRef):
            if place.is_direct:
                actor = getattr(event, "author", None) or getattr(event, "member", None)
                community = await self._dm_community(actor.id) if actor is not None else None
                if community is None:
                    return None  # a DM from someone in no course Hearth knows
                changes["place"] = replace(place, community_id=community)
            else:
                await self._note_channel(place)
        for attr in ("author", "member"):
            ref = getattr(event, attr, None)
            if isinstance(ref, MemberRef):
                if ref.display_name:
                    self._names.put(ref.id, (ref.display_name, ref.is_facilitator))
                    continue
                where = changes.get("place")
                community = where.community_id if where is not None else _community_of(event)
                named = await self._named(community, ref)
                if named is not ref:
                    changes[attr] = named
        return replace(event, **changes) if changes else event

    async def _named(self, community: str | None, ref: MemberRef) -> MemberRef:
        """A member reference without a name (a reaction removal) gets the one known."""
        known = self._names.get(ref.id)
        if known is None and community:
            row = await self.store.get_member(community, ref.id)
            if row is not None:
                known = (row["display_name"], bool(row["is_facilitator"]))
                self._names.put(ref.id, known)
        if known is None:
            return ref
        return replace(ref, display_name=known[0], is_facilitator=ref.is_facilitator or known[1])

    async def _note_channel(self, place: PlaceRef) -> None:
        key = (place.community_id, place.channel_id)
        if key in self._known_channels:
            return
        self._known_channels.add(key)
        try:
            await self.engine.ensure_community(place.community_id, PLATFORM)
            await self.store.upsert_channel(
                place.community_id, place.channel_id, place.channel_name
            )
        except Exception:  # noqa: BLE001 - bookkeeping only
            self._known_channels.discard(key)
            log.exception("could not note channel %s", place.channel_id)

    async def _dm_community(self, user_id: str) -> str | None:
        cached = self._dm_communities.get(user_id)
        if cached is not None:
            return cached
        communities = await self._communities_of(user_id)
        if not communities:
            return None
        self._dm_communities.put(user_id, communities[0])
        return communities[0]

    async def _communities_of(self, user_id: str) -> list[str]:
        """The Discord courses a member is in, most recently joined first."""
        await self.store.flush()
        query = (
            select(M.c.community_id)
            .join(CM, CM.c.id == M.c.community_id)
            .where(
                M.c.member_id == user_id,
                CM.c.platform == PLATFORM,
                CM.c.archived_at.is_(None),
            )
            .order_by(M.c.first_seen.desc(), M.c.id.desc())
        )
        async with self.store.engine.connect() as conn:
            return [row[0] for row in await conn.execute(query)]

    # -- catch-up ---------------------------------------------------------------------------------

    async def _catch_up_then_go_live(self, key: Any, guilds: list[discord.Guild]) -> None:
        total = 0
        try:
            total = await asyncio.wait_for(self._catch_up(guilds), CATCH_UP_TIMEOUT_SECONDS)
        except TimeoutError:
            log.warning("Discord: catch-up took too long; going live without the rest")
        except Exception:  # noqa: BLE001 - live events must not wait for a broken catch-up
            log.exception("Discord: catch-up failed")
        finally:
            self.catch_ups.append(total)
            self._release(key)
            self.ready.set()
            self._notify()
        if total:
            log.info("Discord: caught up on %d messages posted while Hearth was away", total)

    async def catch_up(self) -> int:
        """Read what Hearth missed in every guild (also run at every READY)."""
        client = self.client
        return await self._catch_up(list(client.guilds)) if client is not None else 0

    async def _catch_up(self, guilds: Iterable[discord.Guild]) -> int:
        limit = self.settings.catch_up_limit
        if limit <= 0:
            return 0
        total = 0
        for guild in guilds:
            for channel, after in await self._catch_up_plan(guild):
                try:
                    total += await self._catch_up_channel(channel, after, limit)
                except discord.HTTPException as exc:
                    log.warning("Discord: catch-up of #%s failed: %s", channel, exc)
        return total

    async def _catch_up_plan(self, guild: discord.Guild) -> list[tuple[Any, int]]:
        """(channel or thread, read after this id) for every tracked channel of a guild."""
        community = str(guild.id)
        await self.store.flush()
        overrides = await self.store.community_settings(community)
        tracked = set(
            overrides.get("tracked_channels") or self.hearth.settings.course.tracked_channels
        )
        me = guild.me
        parents: list[Any] = []
        for channel in [*guild.text_channels, *guild.forums]:
            if tracked and not ({str(channel.id), channel.name} & tracked):
                continue
            if me is not None:
                perms = channel.permissions_for(me)
                if not (perms.view_channel and perms.read_message_history):
                    continue
            parents.append(channel)
        marks: dict[int, int] = {}
        for channel in parents:
            mark = await self.store.last_message_id(community, str(channel.id))
            if mark and mark.isdigit():
                marks[channel.id] = int(mark)
        if not marks:
            return []  # nothing stored for this server: a fresh install imports history
        newest = max(marks.values())
        plan: list[tuple[Any, int]] = []
        for channel in parents:
            after = marks.get(channel.id, newest)
            if not isinstance(channel, discord.ForumChannel):
                plan.append((channel, after))
            plan.extend((t, after) for t in guild.threads if t.parent_id == channel.id)
        return plan

    async def _catch_up_channel(self, channel: Any, after: int, limit: int) -> int:
        count = 0
        async for message in channel.history(
            limit=limit, after=discord.Object(after), oldest_first=True
        ):
            event = translate_message(
                message,
                facilitator_role=self._role,
                content_intent=self.intents.message_content,
                bot_id=self.bot_id,
                lookup=self._lookup,
            )
            if event is None or not await self.handle(event):
                continue
            count += 1
            if message.reactions and not event.is_system:
                await self._catch_up_reactions(message, event)
        return count

    async def _catch_up_reactions(self, message: discord.Message, event: MessagePosted) -> None:
        """Reactions on a message posted while Hearth was away (the edge key drops repeats)."""
        for reaction in message.reactions:
            async for user in reaction.users(limit=100):
                if user.bot:
                    continue
                await self.handle(
                    ReactionAdded(
                        at=event.at,
                        member=member_ref(user),
                        place=event.place,
                        message_id=event.message_id,
                        emoji=str(reaction.emoji),
                        message_author_id=event.author.id,
                    )
                )

    # -- outbound ---------------------------------------------------------------------------------

    async def send(self, action: Action, origin: Event | None) -> None:
        sender = self._senders.get(type(action))
        if sender is None:
            log.warning("the Discord adapter cannot send %s", type(action).__name__)
            return
        if self.client is None:
            raise DiscordDeliveryError("the Discord adapter is not started")
        await sender(action, origin)

    def _message_kwargs(self, message: OutMessage) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if message.content:
            kwargs["content"] = message.content
        if message.embeds:
            kwargs["embeds"] = message.embeds
        if message.files:
            kwargs["files"] = discord_files(message.files)
        view = button_view(message.buttons)
        if view is not None:
            kwargs["view"] = view
        return kwargs

    def _by_id(self, channel_id: int, community_id: str) -> discord.abc.Messageable:
        """A cached channel or thread, else a partial one (sending needs no cache)."""
        client = self.client
        assert client is not None
        channel = client.get_channel(channel_id)
        if isinstance(channel, discord.abc.Messageable):
            return channel
        guild_id = int(community_id) if community_id.isdigit() else None
        return client.get_partial_messageable(channel_id, guild_id=guild_id)

    async def _messageable(self, place: PlaceRef) -> discord.abc.Messageable:
        """Where to post: the thread if any, else the channel (an id, ``<#id>``, or a name)."""
        client = self.client
        assert client is not None
        if place.thread_id:
            return self._by_id(int(place.thread_id), place.community_id)
        raw = place.channel_id.strip()
        if raw.startswith("<#") and raw.endswith(">"):
            raw = raw[2:-1]
        if raw.isdigit():
            return self._by_id(int(raw), place.community_id)
        name = raw.lstrip("#").casefold()
        guild = client.get_guild(int(place.community_id)) if place.community_id.isdigit() else None
        if guild is not None:
            for channel in guild.text_channels:
                if channel.name.casefold() == name:
                    return channel
        raise DiscordDeliveryError(
            f"no text channel {place.channel_id!r} in Discord server {place.community_id}"
        )

    async def _send_post(self, action: PostMessage, origin: Event | None) -> None:
        client = self.client
        assert client is not None
        channel = await self._messageable(action.place)
        first: discord.Message | None = None
        for message in render(action.text, action.rich, action.files):
            sent = await channel.send(**self._message_kwargs(message))
            if first is not None:
                continue
            first = sent
            if action.as_thread_title and not action.place.thread_id:
                # A thread started from the post (its id is the post's id); the rest of a
                # long post continues inside it.
                data = await client.http.start_thread_with_message(
                    sent.channel.id,
                    sent.id,
                    name=action.as_thread_title[:100],
                    auto_archive_duration=10080,
                )
                channel = self._by_id(int(data["id"]), action.place.community_id)
        if first is not None and action.tag:
            self.tagged[action.tag] = str(first.id)

    async def _send_attach(self, action: Attach, origin: Event | None) -> None:
        channel = await self._messageable(action.place)
        for message in render(action.text, None, [action.file]):
            await channel.send(**self._message_kwargs(message))

    async def _send_react(self, action: React, origin: Event | None) -> None:
        channel = await self._messageable(action.place)
        partial = channel.get_partial_message(int(action.message_id))  # type: ignore[attr-defined]
        await partial.add_reaction(action.emoji)

    def _pending_for(self, origin: Event | None) -> _Pending | None:
        if isinstance(origin, CommandInvoked) and origin.interaction_id:
            return self._interactions.get(origin.interaction_id)
        if isinstance(origin, ButtonPressed) and origin.delivery_id:
            return self._interactions.get(origin.delivery_id)
        return None

    async def _send_reply(self, action: Reply, origin: Event | None) -> None:
        messages = render(action.text, action.rich, action.files, action.buttons)
        if not messages:
            return
        pending = self._pending_for(origin)
        if pending is not None:
            async with pending.lock:
                for message in messages:
                    await self._interaction_send(pending, message, action.ephemeral)
            return
        if isinstance(origin, MessagePosted | MessageEdited):
            author = getattr(origin, "author", None)
            if action.ephemeral and isinstance(author, MemberRef):
                # Discord has no private replies to a message: answer in a DM.
                await self._send_dm(
                    DirectMessage(
                        member=author, text=action.text, rich=action.rich, files=action.files
                    ),
                    None,
                )
                return
            channel = await self._messageable(origin.place)
            reference = discord.MessageReference(
                message_id=int(origin.message_id),
                channel_id=int(origin.place.thread_id or origin.place.channel_id),
                fail_if_not_exists=False,
            )
            for index, message in enumerate(messages):
                kwargs = self._message_kwargs(message)
                if index == 0:
                    kwargs["reference"] = reference
                await channel.send(**kwargs)
            return
        raise DiscordDeliveryError(
            f"a reply to {type(origin).__name__ if origin else 'nothing'} has nowhere to go"
        )

    async def _interaction_send(
        self, pending: _Pending, message: OutMessage, ephemeral: bool
    ) -> None:
        interaction = pending.interaction
        kwargs = self._message_kwargs(message)
        if not interaction.response.is_done():
            await interaction.response.send_message(ephemeral=ephemeral, **kwargs)
        elif pending.deferred and not pending.answered:
            if ephemeral and not pending.deferred_ephemeral:
                # A private answer (an error) after a public "thinking": do not show it.
                await interaction.delete_original_response()
                await interaction.followup.send(ephemeral=True, wait=True, **kwargs)
            else:
                edit: dict[str, Any] = {"content": kwargs.get("content")}
                if "embeds" in kwargs:
                    edit["embeds"] = kwargs["embeds"]
                if "files" in kwargs:
                    edit["attachments"] = kwargs["files"]
                if "view" in kwargs:
                    edit["view"] = kwargs["view"]
                await interaction.edit_original_response(**edit)
        else:
            await interaction.followup.send(ephemeral=ephemeral, wait=True, **kwargs)
        pending.answered = True

    # -- DMs: a paced queue -----------------------------------------------------------------------

    async def _send_dm(self, action: DirectMessage, origin: Event | None) -> None:
        """Queue a DM; the DM worker sends it at ``dm_per_minute``."""
        if action.member.id in self._unreachable:
            log.info("Discord: not sending a DM to %s: their DMs are closed", action.member.id)
            await self._dm_failed(action, "DMs closed", count=False)
            return
        self._dms.put_nowait(_DmJob(action))

    async def _dm_work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            job = await self._dms.get()
            try:
                wait = self._dm_next - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._dm_next = max(loop.time(), self._dm_next) + self.dm_interval
                await self._deliver_dm(job)
            except Exception:  # noqa: BLE001 - the queue must go on
                log.exception("Discord: sending a DM failed")
                await self._dm_failed(job.action, "unexpected error")
            finally:
                self._dms.task_done()
                self._notify()

    async def _deliver_dm(self, job: _DmJob) -> None:
        action = job.action
        client = self.client
        assert client is not None
        while True:
            job.attempts += 1
            try:
                channel = await client.create_dm(discord.Object(int(action.member.id)))
                for message in render(action.text, action.rich, action.files, action.buttons):
                    await channel.send(**self._message_kwargs(message))
            except discord.Forbidden as exc:
                if exc.code == 50007:
                    await self._mark_unreachable(action.member.id)
                    await self._dm_failed(action, "DMs closed (50007)")
                    return
                if exc.code == 40003 and job.attempts < DM_ATTEMPTS:
                    log.warning(
                        "Discord: opening DMs too fast (40003); pausing DMs for %.0fs",
                        self.dm_backoff,
                    )
                    await asyncio.sleep(self.dm_backoff)
                    continue
                log.error("Discord: DM to %s refused: %s", action.member.id, exc)
                await self._dm_failed(action, f"refused ({exc.code})")
                return
            except discord.HTTPException as exc:
                log.error("Discord: DM to %s failed: %s", action.member.id, exc)
                await self._dm_failed(action, f"HTTP {exc.status}")
                return
            self.dms_sent += 1
            return

    async def _dm_failed(self, action: DirectMessage, why: str, *, count: bool = True) -> None:
        """A queued DM that did not go out: counted, and its ledger entry marked failed (the
        runtime counted it as sent when it was queued)."""
        if count:
            self.dms_failed += 1
            self.engine.services.observer.action_failed("DirectMessage", PLATFORM)
        if action.dedupe_key:
            try:
                await self.store.mark_sent(action.dedupe_key, "failed")
            except Exception:  # noqa: BLE001 - bookkeeping only
                log.exception("could not mark %s failed", action.dedupe_key)
        log.info("Discord: DM to %s not sent: %s", action.member.id, why)

    async def _mark_unreachable(self, user_id: str) -> None:
        """DMs closed: never try again, and tell every course the member is in."""
        self._unreachable.add(user_id)
        for community in await self._communities_of(user_id):
            await self.store.set_member_fields(community, user_id, reachable=False)
        log.info("Discord: %s does not accept DMs (50007); marked unreachable", user_id)


def _community_of(event: Event) -> str | None:
    place = getattr(event, "place", None)
    if isinstance(place, PlaceRef):
        return place.community_id
    community = getattr(event, "community_id", None)
    return community if isinstance(community, str) else None


def build_discord_adapter(
    app: HearthApp, *, on_client: Callable[[discord.Client], Any] | None = None
) -> DiscordAdapter:
    """The adapter for ``[discord]``: the token from ``token_env``, registered as a secret."""
    token = secret(app.settings.discord.secret_envs()["token"])
    register_secret(token)
    return DiscordAdapter(app, token=token, on_client=on_client)


__all__ = [
    "DiscordAdapter",
    "DiscordDeliveryError",
    "bot_permissions",
    "build_discord_adapter",
    "invite_url",
    "wanted_intents",
]
