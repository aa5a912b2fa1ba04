"""Loopback emulator of Discord's gateway and REST API, so the real discord.py client runs in tests.

`DiscordEmulator` serves both halves from one aiohttp app on 127.0.0.1 with a random free port:

- the gateway (``/gateway``, and ``/resume`` which READY hands out as ``resume_gateway_url``):
  HELLO, IDENTIFY -> READY + one GUILD_CREATE per guild, HEARTBEAT -> ACK, RESUME -> replay of
  missed dispatches + RESUMED (or INVALID_SESSION), REQUEST_GUILD_MEMBERS -> GUILD_MEMBERS_CHUNK,
  zlib-stream transport compression when the client asks for it, per-session sequence numbers,
  intent filtering and MESSAGE_CONTENT withholding like Discord's;
- the REST API (``/api/v10``): the routes a bot uses (messages, DMs, reactions, history,
  interaction callbacks and webhooks, application commands, members), every request recorded in
  `DiscordEmulator.requests`, failures injectable with `DiscordEmulator.fail_next`.

The emulator keeps a small world (users, guilds, roles, channels, threads, members, messages) so
what tests dispatch over the gateway is also what REST returns (history catch-up, replies).
`dispatch` applies an event to that world and sends it to every session; the ``send_*`` helpers
build realistic payloads first.

Point discord.py at it with `patch_discord` (sets ``Route.BASE`` and ``DEFAULT_GATEWAY``), then
``await client.login(emu.token)`` and run ``client.connect()`` as a task (`start_client` does it).
discord.py waits ``guild_ready_timeout`` (2 s by default) after the last GUILD_CREATE before
``on_ready``, and sleeps 5 s in ``before_identify_hook`` before every re-IDENTIFY: pass
``guild_ready_timeout=0.05`` and call `make_fast` (or override the hook) to keep tests quick.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import logging
import math
import mimetypes
import re
import secrets
import socket
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from types import EllipsisType
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import unquote

from aiohttp import BodyPartReader, WSMsgType, web

if TYPE_CHECKING:
    import discord

log = logging.getLogger(__name__)

DISCORD_EPOCH_MS = 1_420_070_400_000
API_VERSION = 10


class Intent:
    """Gateway intent bits, as in Discord's documentation."""

    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_PRESENCES = 1 << 8
    GUILD_MESSAGES = 1 << 9
    GUILD_MESSAGE_REACTIONS = 1 << 10
    GUILD_MESSAGE_TYPING = 1 << 11
    DIRECT_MESSAGES = 1 << 12
    DIRECT_MESSAGE_REACTIONS = 1 << 13
    DIRECT_MESSAGE_TYPING = 1 << 14
    MESSAGE_CONTENT = 1 << 15
    PRIVILEGED = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT


class Perm:
    """Permission bits used by the default world and permission computation."""

    CREATE_INSTANT_INVITE = 1 << 0
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    CHANGE_NICKNAME = 1 << 26
    USE_APPLICATION_COMMANDS = 1 << 31
    MANAGE_THREADS = 1 << 34
    CREATE_PUBLIC_THREADS = 1 << 35
    CREATE_PRIVATE_THREADS = 1 << 36
    SEND_MESSAGES_IN_THREADS = 1 << 38
    ALL = (1 << 51) - 1
    EVERYONE_DEFAULT = (
        CREATE_INSTANT_INVITE
        | ADD_REACTIONS
        | VIEW_CHANNEL
        | SEND_MESSAGES
        | EMBED_LINKS
        | ATTACH_FILES
        | READ_MESSAGE_HISTORY
        | USE_EXTERNAL_EMOJIS
        | CHANGE_NICKNAME
        | USE_APPLICATION_COMMANDS
        | CREATE_PUBLIC_THREADS
        | SEND_MESSAGES_IN_THREADS
    )


# Gateway opcodes and the names used in `DiscordEmulator.gateway_log`.
OP_NAMES = {
    0: "DISPATCH",
    1: "HEARTBEAT",
    2: "IDENTIFY",
    3: "PRESENCE_UPDATE",
    4: "VOICE_STATE_UPDATE",
    6: "RESUME",
    7: "RECONNECT",
    8: "REQUEST_GUILD_MEMBERS",
    9: "INVALID_SESSION",
    10: "HELLO",
    11: "HEARTBEAT_ACK",
}
_OPS_BY_NAME = {name: op for op, name in OP_NAMES.items()}

# Which intent a guild event needs; message-ish events need the guild or the DM flavour.
_GUILD_EVENT_INTENTS = {
    **dict.fromkeys(
        (
            "GUILD_CREATE",
            "GUILD_UPDATE",
            "GUILD_DELETE",
            "GUILD_ROLE_CREATE",
            "GUILD_ROLE_UPDATE",
            "GUILD_ROLE_DELETE",
            "CHANNEL_CREATE",
            "CHANNEL_UPDATE",
            "CHANNEL_DELETE",
            "CHANNEL_PINS_UPDATE",
            "THREAD_CREATE",
            "THREAD_UPDATE",
            "THREAD_DELETE",
            "THREAD_LIST_SYNC",
            "THREAD_MEMBER_UPDATE",
        ),
        Intent.GUILDS,
    ),
    **dict.fromkeys(
        ("GUILD_MEMBER_ADD", "GUILD_MEMBER_UPDATE", "GUILD_MEMBER_REMOVE", "THREAD_MEMBERS_UPDATE"),
        Intent.GUILD_MEMBERS,
    ),
    "PRESENCE_UPDATE": Intent.GUILD_PRESENCES,
}
_MESSAGE_EVENTS = {"MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE", "MESSAGE_DELETE_BULK"}
_REACTION_EVENTS = {
    "MESSAGE_REACTION_ADD",
    "MESSAGE_REACTION_REMOVE",
    "MESSAGE_REACTION_REMOVE_ALL",
    "MESSAGE_REACTION_REMOVE_EMOJI",
}

_APP_FLAG_PRESENCE_LIMITED = 1 << 13
_APP_FLAG_MEMBERS_LIMITED = 1 << 15
_APP_FLAG_CONTENT_LIMITED = 1 << 19

_WITHHELD = {"content": "", "embeds": [], "attachments": [], "components": []}

_MENTION_USER_RE = re.compile(r"<@!?(\d+)>")
_MENTION_ROLE_RE = re.compile(r"<@&(\d+)>")
_COMMAND_NAME_RE = re.compile(r"^[-_\w]{1,32}$")


# ---------------------------------------------------------------------------------------------
# Snowflakes and times


class SnowflakeGenerator:
    """Discord-style ids: milliseconds since the Discord epoch in the top bits, so
    ``discord.utils.snowflake_time`` gives the creation time. `next` is strictly increasing."""

    def __init__(self, worker: int = 1, process: int = 0) -> None:
        self._low = ((worker & 0x1F) << 17) | ((process & 0x1F) << 12)
        self._last = 0
        self._counter = itertools.count()

    def next(self, at: datetime | None = None) -> int:
        """A new id; with ``at`` the id encodes that time instead (for backdated messages)."""
        if at is not None:
            ms = int(at.timestamp() * 1000)
            return ((ms - DISCORD_EPOCH_MS) << 22) | self._low | (next(self._counter) & 0xFFF)
        ms = time.time_ns() // 1_000_000
        candidate = ((ms - DISCORD_EPOCH_MS) << 22) | self._low
        if candidate <= self._last:
            candidate = self._last + 1
        self._last = candidate
        return candidate


_default_snowflakes = SnowflakeGenerator(worker=2)


def snowflake(at: datetime | None = None) -> int:
    """A fresh Discord-style snowflake from a module-wide generator."""
    return _default_snowflakes.next(at)


def snowflake_time(value: int | str) -> datetime:
    """The UTC creation time encoded in a snowflake."""
    return datetime.fromtimestamp(((int(value) >> 22) + DISCORD_EPOCH_MS) / 1000, UTC)


def iso(moment: datetime) -> str:
    """Discord's ISO 8601 timestamp format (microseconds, +00:00)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _now_iso() -> str:
    return iso(datetime.now(UTC))


def _sid(value: Any) -> str:
    return str(int(value))


# ---------------------------------------------------------------------------------------------
# Records kept for assertions


class _RequestRow(NamedTuple):
    method: str
    path: str
    body: Any


class RecordedRequest(_RequestRow):
    """One REST call: unpacks as ``(method, path, body)``; ``path`` has no ``/api/v10`` prefix
    and is percent-decoded; ``body`` is the JSON body, or for multipart the ``payload_json``.
    Also: ``query`` (dict), ``files`` (uploaded filenames), ``headers``, ``status`` (set once
    answered, None before)."""

    query: dict[str, str]
    files: list[str]
    headers: dict[str, str]
    status: int | None


@dataclass
class GatewayRecord:
    """One payload the client sent on the gateway."""

    op: int
    name: str
    data: Any
    connection: int


@dataclass
class ConnectionInfo:
    """One websocket connection: its number, path (``/gateway`` or ``/resume``), query, and
    the close code (the emulator's when it closed first, else the client's)."""

    index: int
    path: str
    query: dict[str, str]
    close_code: int | None = None


@dataclass
class GatewaySession:
    """A gateway session: created by IDENTIFY, survives disconnects until invalidated."""

    session_id: str
    intents: int
    identify: dict[str, Any]
    shard: tuple[int, int] | None
    seq: int = 0
    resumable: bool = True
    connection: _Connection | None = None
    # Serialized dispatch frames kept for RESUME replay: (seq, text).
    sent: deque[tuple[int, str]] = field(default_factory=lambda: deque(maxlen=2000))


@dataclass
class InteractionRecord:
    """An interaction dispatched to the bot and what the bot answered."""

    id: int
    token: str
    payload: dict[str, Any]
    created: float
    responses: list[dict[str, Any]] = field(default_factory=list)
    original: dict[str, Any] | None = None
    followups: list[dict[str, Any]] = field(default_factory=list)

    @property
    def acknowledged(self) -> bool:
        return bool(self.responses)

    @property
    def response_type(self) -> int | None:
        return self.responses[0]["type"] if self.responses else None

    @property
    def response_data(self) -> dict[str, Any]:
        return (self.responses[0].get("data") or {}) if self.responses else {}

    @property
    def ephemeral(self) -> bool:
        return bool(int(self.response_data.get("flags") or 0) & 64)


@dataclass
class World:
    """Ids and users of the default world built by `DiscordEmulator(default_world=True)`."""

    guild_id: int
    category_id: int
    general_id: int
    introductions_id: int
    help_id: int
    thread_id: int
    everyone_role_id: int
    facilitator_role_id: int
    bot_role_id: int
    fran: dict[str, Any]
    alice: dict[str, Any]
    bob: dict[str, Any]


@dataclass
class _FailureRule:
    method: str
    pattern: re.Pattern[str]
    status: int
    body: Any
    headers: dict[str, str | None]
    remaining: int


@dataclass
class _Req:
    request: web.Request
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    files: list[tuple[str, str, bytes, str | None]]
    record: RecordedRequest


class _Connection:
    """One live websocket, with optional zlib-stream compression and serialized sends."""

    def __init__(self, ws: web.WebSocketResponse, info: ConnectionInfo, compress: bool) -> None:
        self.ws = ws
        self.info = info
        self.session: GatewaySession | None = None
        self.closed_by_server = False
        self._lock = asyncio.Lock()
        self._zlib = zlib.compressobj() if compress else None

    async def send_text(self, text: str) -> bool:
        async with self._lock:
            if self.ws.closed:
                return False
            try:
                if self._zlib is not None:
                    data = self._zlib.compress(text.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
                    await self.ws.send_bytes(data)
                else:
                    await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return False
            return True

    async def send(self, payload: Mapping[str, Any]) -> bool:
        return await self.send_text(_dumps(payload))

    async def close(self, code: int, reason: str = "") -> None:
        self.closed_by_server = True
        if self.info.close_code is None:
            self.info.close_code = code
        if not self.ws.closed:
            await self.ws.close(code=code, message=reason.encode())


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON response whose content type is exactly ``application/json`` (no charset), the
    only form discord.py parses."""
    merged = {"Content-Type": "application/json", **(headers or {})}
    return web.Response(body=_dumps(data).encode(), status=status, headers=merged)


def discord_error(
    status: int, code: int, message: str, errors: Mapping[str, Any] | None = None
) -> web.Response:
    body: dict[str, Any] = {"message": message, "code": code}
    if errors:
        body["errors"] = dict(errors)
    return json_response(body, status)


def _field_error(path: str, code: str, message: str) -> dict[str, Any]:
    """Discord's nested ``errors`` shape for one field, e.g. ``content`` or ``0.name``."""
    node: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(path.split(".")):
        node = {part: node}
    return node


def _parse_emoji(value: str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    text = value.strip("<>")
    match = re.fullmatch(r"(a:)?(\w+):(\d+)", text)
    if match:
        return {"id": match.group(3), "name": match.group(2), "animated": bool(match.group(1))}
    return {"id": None, "name": text}


def _emoji_key(emoji: Mapping[str, Any]) -> str:
    return str(emoji.get("id") or emoji.get("name"))


# ---------------------------------------------------------------------------------------------
# The emulator


class DiscordEmulator:
    """A fake Discord (gateway + REST) on 127.0.0.1 for the real discord.py client.

    Use as ``async with DiscordEmulator() as emu:`` or call `start` / `stop`. With
    ``default_world=True`` a course guild is created (see `World`, available as ``emu.world``).
    """

    def __init__(
        self,
        *,
        token: str = "hearth-test-token",
        heartbeat_interval: int = 41250,
        default_world: bool = True,
        echo_bot_events: bool = True,
        interaction_timeout: float | None = 3.0,
        allowed_privileged_intents: int = Intent.PRIVILEGED,
        compression: bool = True,
        bot_name: str = "Hearth",
    ) -> None:
        self.token = token
        self.heartbeat_interval = heartbeat_interval
        # Discord sends MESSAGE_CREATE (and edits, deletes, reactions) for the bot's own
        # actions too; keep that on so tests catch a bot answering itself.
        self.echo_bot_events = echo_bot_events
        # Discord forgets an interaction that is not answered within 3 seconds (10062).
        self.interaction_timeout = interaction_timeout
        self.allowed_privileged_intents = allowed_privileged_intents
        self.compression = compression
        self.ack_heartbeats = True

        self.snowflakes = SnowflakeGenerator()
        self.users: dict[int, dict[str, Any]] = {}
        self.guilds: dict[int, dict[str, Any]] = {}
        self.roles: dict[int, dict[int, dict[str, Any]]] = {}
        self.members: dict[int, dict[int, dict[str, Any]]] = {}
        self.channels: dict[int, dict[str, Any]] = {}
        self.messages: dict[int, dict[int, dict[str, Any]]] = {}
        self.commands: list[dict[str, Any]] = []
        self.guild_commands: dict[int, list[dict[str, Any]]] = {}
        self.interactions: dict[int, InteractionRecord] = {}
        self.attachments: dict[int, bytes] = {}
        self._dm_by_user: dict[int, int] = {}
        self._dms_closed: set[int] = set()
        self._reactors: dict[tuple[int, str], list[int]] = {}

        self.requests: list[RecordedRequest] = []
        self.unhandled: list[RecordedRequest] = []
        self.gateway_log: list[GatewayRecord] = []
        self.connections: list[ConnectionInfo] = []
        self.identifies: list[dict[str, Any]] = []
        self.sessions: dict[str, GatewaySession] = {}
        self.presence_updates: list[dict[str, Any]] = []
        self._live: list[_Connection] = []
        self._failures: list[_FailureRule] = []
        self._resume_failures = 0
        self._gate = asyncio.Event()
        self._gate.set()
        self._waiters: list[asyncio.Future[None]] = []

        self._runner: web.AppRunner | None = None
        self.port: int | None = None

        self.bot_user = self.create_user(bot_name.lower(), bot=True, global_name=bot_name)
        self.bot_id = int(self.bot_user["id"])
        # Newer applications share the bot user's id.
        self.application_id = self.bot_id
        self.owner_user = self.create_user("course-owner")
        self.world: World | None = self._build_default_world() if default_world else None

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> DiscordEmulator:
        """Serve on 127.0.0.1 with a free port."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway_handler)
        app.router.add_get("/resume", self._gateway_handler)
        app.router.add_get("/attachments/{cid}/{aid}/{filename}", self._attachment_handler)
        app.router.add_route("*", r"/api/v{version:\d+}/{tail:.*}", self._rest_handler)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def stop(self) -> None:
        """Close every websocket (1001) and stop serving."""
        self._gate.set()
        for conn in list(self._live):
            await conn.close(1001, "emulator stopping")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> DiscordEmulator:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def http_base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        """What ``discord.http.Route.BASE`` must be set to."""
        return f"{self.http_base}/api/v{API_VERSION}"

    @property
    def gateway_url(self) -> str:
        """What ``DiscordWebSocket.DEFAULT_GATEWAY`` must be (discord.py appends the query)."""
        return f"ws://127.0.0.1:{self.port}/gateway"

    @property
    def resume_gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/resume"

    # -- world building (no events sent) ----------------------------------------------------

    def snowflake(self, at: datetime | None = None) -> int:
        return self.snowflakes.next(at)

    def create_user(
        self,
        username: str,
        *,
        user_id: int | None = None,
        bot: bool = False,
        global_name: str | None = None,
        dms_open: bool = True,
    ) -> dict[str, Any]:
        """Register a user; ``dms_open=False`` makes sends to their DM fail with 50007."""
        uid = user_id or self.snowflake()
        user: dict[str, Any] = {
            "id": _sid(uid),
            "username": username,
            "discriminator": "0",
            "global_name": global_name if global_name is not None else username.title(),
            "avatar": None,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
        }
        if bot:
            user["bot"] = True
        self.users[uid] = user
        if not dms_open:
            self._dms_closed.add(uid)
        return user

    def create_guild(
        self,
        name: str,
        *,
        guild_id: int | None = None,
        owner: Mapping[str, Any] | int | None = None,
        everyone_permissions: int = Perm.EVERYONE_DEFAULT,
        bot_permissions: int = Perm.EVERYONE_DEFAULT | Perm.MANAGE_MESSAGES | Perm.MANAGE_THREADS,
    ) -> dict[str, Any]:
        """A guild with @everyone, a managed bot role and the bot as a member."""
        gid = guild_id or self.snowflake()
        owner_id = self._user_id(owner) if owner is not None else int(self.owner_user["id"])
        guild = {
            "id": _sid(gid),
            "name": name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": _sid(owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 1,
            "default_message_notifications": 1,
            "explicit_content_filter": 2,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "preferred_locale": "en-US",
            "features": [],
            "max_members": 500000,
            "max_video_channel_users": 25,
            "application_id": None,
            "incidents_data": None,
            "joined_at": _now_iso(),
        }
        self.guilds[gid] = guild
        self.roles[gid] = {}
        self.members[gid] = {}
        self.guild_commands.setdefault(gid, [])
        self.create_role(gid, "@everyone", permissions=everyone_permissions, role_id=gid)
        bot_role = self.create_role(
            gid,
            self.bot_user["global_name"],
            permissions=bot_permissions,
            managed=True,
            tags={"bot_id": self.bot_user["id"]},
        )
        self.add_member(gid, self.bot_user, roles=[int(bot_role["id"])])
        if owner_id in self.users and owner_id != self.bot_id:
            self.add_member(gid, owner_id)
        return guild

    def create_role(
        self,
        guild_id: int,
        name: str,
        *,
        permissions: int = 0,
        role_id: int | None = None,
        color: int = 0,
        hoist: bool = False,
        managed: bool = False,
        mentionable: bool = False,
        tags: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        rid = role_id or self.snowflake()
        role: dict[str, Any] = {
            "id": _sid(rid),
            "name": name,
            "color": color,
            "colors": {"primary_color": color, "secondary_color": None, "tertiary_color": None},
            "hoist": hoist,
            "icon": None,
            "unicode_emoji": None,
            "position": len(self.roles[guild_id]),
            "permissions": str(permissions),
            "managed": managed,
            "mentionable": mentionable,
            "flags": 0,
        }
        if tags:
            role["tags"] = dict(tags)
        self.roles[guild_id][rid] = role
        return role

    def create_channel(
        self,
        guild_id: int,
        name: str,
        *,
        type: int = 0,
        parent_id: int | None = None,
        topic: str | None = None,
        channel_id: int | None = None,
        position: int | None = None,
    ) -> dict[str, Any]:
        """A guild channel (text by default; 4 = category, 5 = announcement, 2 = voice)."""
        cid = channel_id or self.snowflake()
        siblings = [c for c in self.channels.values() if c.get("guild_id") == _sid(guild_id)]
        channel: dict[str, Any] = {
            "id": _sid(cid),
            "type": type,
            "guild_id": _sid(guild_id),
            "name": name,
            "position": position if position is not None else len(siblings),
            "parent_id": _sid(parent_id) if parent_id else None,
            "permission_overwrites": [],
            "nsfw": False,
            "flags": 0,
        }
        if type in (0, 5):
            channel.update(
                topic=topic,
                last_message_id=None,
                rate_limit_per_user=0,
                default_auto_archive_duration=1440,
            )
        elif type == 2:
            channel.update(bitrate=64000, user_limit=0, rtc_region=None, last_message_id=None)
        self.channels[cid] = channel
        self.messages.setdefault(cid, {})
        return channel

    def create_thread(
        self,
        parent_id: int,
        name: str,
        *,
        owner: Mapping[str, Any] | int | None = None,
        type: int = 11,
        thread_id: int | None = None,
        archived: bool = False,
    ) -> dict[str, Any]:
        """A thread under a text channel (11 public, 12 private); no event is sent."""
        parent = self.channels[int(parent_id)]
        tid = thread_id or self.snowflake()
        owner_id = self._user_id(owner) if owner is not None else self.bot_id
        now = _now_iso()
        thread: dict[str, Any] = {
            "id": _sid(tid),
            "type": type,
            "guild_id": parent["guild_id"],
            "parent_id": parent["id"],
            "owner_id": _sid(owner_id),
            "name": name,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "flags": 0,
            "applied_tags": [],
            "thread_metadata": {
                "archived": archived,
                "auto_archive_duration": 1440,
                "archive_timestamp": now,
                "locked": False,
                "invitable": type == 12,
                "create_timestamp": now,
            },
        }
        self.channels[tid] = thread
        self.messages.setdefault(tid, {})
        return thread

    def add_member(
        self,
        guild_id: int,
        user: Mapping[str, Any] | int,
        *,
        roles: Iterable[int] = (),
        nick: str | None = None,
        joined_at: datetime | None = None,
    ) -> dict[str, Any]:
        """Add a member to a guild without an event (see `send_member_add` for the event)."""
        uid = self._user_id(user)
        member = {
            "user": self.users[uid],
            "roles": [_sid(r) for r in roles],
            "joined_at": iso(joined_at or datetime.now(UTC)),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "nick": nick,
            "avatar": None,
            "banner": None,
            "communication_disabled_until": None,
        }
        self.members[guild_id][uid] = member
        return member

    def dm_channel(self, user: Mapping[str, Any] | int) -> dict[str, Any]:
        """The bot's DM channel with a user (created on first use, like Discord)."""
        uid = self._user_id(user)
        cid = self._dm_by_user.get(uid)
        if cid is None:
            cid = self.snowflake()
            self.channels[cid] = {
                "id": _sid(cid),
                "type": 1,
                "last_message_id": None,
                "flags": 0,
                "recipients": [self.users[uid]],
            }
            self.messages.setdefault(cid, {})
            self._dm_by_user[uid] = cid
        return self.channels[cid]

    def _build_default_world(self) -> World:
        fran = self.create_user("fran", global_name="Fran Facilitator")
        alice = self.create_user("alice", global_name="Alice")
        bob = self.create_user("bob", global_name="Bob")
        guild = self.create_guild("Hearth Test Course")
        gid = int(guild["id"])
        facilitator = self.create_role(
            gid,
            "Facilitator",
            permissions=Perm.EVERYONE_DEFAULT
            | Perm.MANAGE_GUILD
            | Perm.MANAGE_MESSAGES
            | Perm.MANAGE_THREADS
            | Perm.MENTION_EVERYONE,
            hoist=True,
            mentionable=True,
        )
        category = self.create_channel(gid, "Course", type=4)
        cat_id = int(category["id"])
        general = self.create_channel(gid, "general", parent_id=cat_id, topic="Say hello")
        intros = self.create_channel(gid, "introductions", parent_id=cat_id)
        help_ = self.create_channel(gid, "help", parent_id=cat_id)
        guild["system_channel_id"] = general["id"]
        self.add_member(gid, fran, roles=[int(facilitator["id"])])
        self.add_member(gid, alice)
        self.add_member(gid, bob)
        thread = self.create_thread(int(general["id"]), "Week 1 discussion", owner=fran)
        bot_role = next(r for r in self.roles[gid].values() if r.get("managed"))
        return World(
            guild_id=gid,
            category_id=cat_id,
            general_id=int(general["id"]),
            introductions_id=int(intros["id"]),
            help_id=int(help_["id"]),
            thread_id=int(thread["id"]),
            everyone_role_id=gid,
            facilitator_role_id=int(facilitator["id"]),
            bot_role_id=int(bot_role["id"]),
            fran=fran,
            alice=alice,
            bob=bob,
        )

    # -- world queries ----------------------------------------------------------------------

    def _user_id(self, user: Mapping[str, Any] | int | str) -> int:
        if isinstance(user, Mapping):
            uid = int(user["id"])
            self.users.setdefault(uid, dict(user))
            return uid
        uid = int(user)
        if uid not in self.users:
            raise KeyError(f"unknown user {uid}; create it with create_user()")
        return uid

    def _guild_of(self, channel_id: int) -> int | None:
        channel = self.channels.get(int(channel_id))
        if channel is None or channel.get("guild_id") is None:
            return None
        return int(channel["guild_id"])

    def messages_in(self, channel_id: int) -> list[dict[str, Any]]:
        """Stored messages of a channel, oldest first (canonical gateway shape)."""
        store = self.messages.get(int(channel_id), {})
        return [store[mid] for mid in sorted(store)]

    def bot_messages(self, channel_id: int | None = None) -> list[dict[str, Any]]:
        """Stored messages the bot authored (ephemeral replies live in `interactions`)."""
        channels = [int(channel_id)] if channel_id is not None else list(self.messages)
        found = [
            m
            for cid in channels
            for m in self.messages_in(cid)
            if m["author"]["id"] == self.bot_user["id"]
        ]
        return sorted(found, key=lambda m: int(m["id"]))

    def member_permissions(self, guild_id: int, user_id: int) -> int:
        """Guild-level permissions of a member (channel overwrites are not modelled)."""
        guild = self.guilds[guild_id]
        if guild["owner_id"] == _sid(user_id):
            return Perm.ALL
        roles = self.roles[guild_id]
        perms = int(roles[guild_id]["permissions"])
        member = self.members[guild_id].get(user_id)
        for rid in member["roles"] if member else ():
            role = roles.get(int(rid))
            if role:
                perms |= int(role["permissions"])
        return Perm.ALL if perms & Perm.ADMINISTRATOR else perms

    def member_payload(
        self, guild_id: int, user_id: int, *, with_user: bool = True, permissions: bool = False
    ) -> dict[str, Any]:
        member = dict(self.members[guild_id][user_id])
        if with_user:
            member["user"] = dict(self.users[user_id])
        else:
            member.pop("user", None)
        if permissions:
            member["permissions"] = str(self.member_permissions(guild_id, user_id))
        return member

    def guild_create_payload(
        self, guild_id: int, *, intents: int = 0, large_threshold: int = 50
    ) -> dict[str, Any]:
        """GUILD_CREATE as Discord sends it. Without GUILD_PRESENCES (or for large guilds) the
        member list holds only the bot, like Discord; `member_count` is always the total."""
        gid = int(guild_id)
        members = self.members[gid]
        large = len(members) > large_threshold
        listed = (
            list(members)
            if intents & Intent.GUILD_PRESENCES and not large
            else [uid for uid in members if uid == self.bot_id]
        )
        channels, threads = [], []
        for channel in self.channels.values():
            if channel.get("guild_id") != _sid(gid):
                continue
            if channel["type"] in (10, 11, 12):
                if not channel["thread_metadata"]["archived"]:
                    threads.append(dict(channel))
            else:
                channels.append({k: v for k, v in channel.items() if k != "guild_id"})
        return {
            **self.guilds[gid],
            "unavailable": False,
            "large": large,
            "lazy": True,
            "member_count": len(members),
            "roles": list(self.roles[gid].values()),
            "emojis": [],
            "stickers": [],
            "channels": channels,
            "threads": threads,
            "members": [self.member_payload(gid, uid) for uid in listed],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    # -- payload builders -------------------------------------------------------------------

    def message_payload(
        self,
        channel_id: int,
        author: Mapping[str, Any] | int,
        content: str = "",
        *,
        message_id: int | None = None,
        reference_id: int | None = None,
        mentions: Iterable[Mapping[str, Any] | int] = (),
        mention_roles: Iterable[int] = (),
        attachments: Iterable[str | Mapping[str, Any]] = (),
        embeds: Iterable[Mapping[str, Any]] = (),
        type: int | None = None,
        guild_id: int | None | EllipsisType = ...,
        at: datetime | None = None,
        ping_reply: bool = True,
        flags: int = 0,
    ) -> dict[str, Any]:
        """A MESSAGE_CREATE payload (not stored, not sent).

        ``guild_id=...`` infers it from the channel (None for DMs). Mentions also come from
        ``<@id>`` / ``<@&id>`` in the content. ``type=None`` means 19 (reply) when
        ``reference_id`` is given, else 0. A reply to a stored message carries it as
        ``referenced_message`` and, with ``ping_reply``, mentions its author like the Discord
        client does by default. ``at`` backdates the id and timestamp.
        """
        cid = int(channel_id)
        gid = self._guild_of(cid) if guild_id is ... else guild_id
        uid = self._user_id(author)
        mid = message_id or self.snowflake(at)
        stamp = at or snowflake_time(mid)
        mention_ids: list[int] = []
        for m in itertools.chain(mentions, (int(x) for x in _MENTION_USER_RE.findall(content))):
            mention_uid = self._user_id(m) if isinstance(m, Mapping) else int(m)
            if mention_uid not in mention_ids:
                mention_ids.append(mention_uid)
        msg: dict[str, Any] = {
            "id": _sid(mid),
            "channel_id": _sid(cid),
            "author": dict(self.users[uid]),
            "content": content,
            "timestamp": iso(stamp),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": "@everyone" in content or "@here" in content,
            "mentions": [],
            "mention_roles": [
                _sid(r)
                for r in dict.fromkeys(
                    [*map(int, mention_roles), *map(int, _MENTION_ROLE_RE.findall(content))]
                )
            ],
            "attachments": [self._attachment(cid, a) for a in attachments],
            "embeds": [dict(e) for e in embeds],
            "components": [],
            "pinned": False,
            "type": type if type is not None else (19 if reference_id else 0),
            "flags": flags,
        }
        if reference_id is not None:
            ref: dict[str, Any] = {
                "type": 0,
                "message_id": _sid(reference_id),
                "channel_id": _sid(cid),
            }
            if gid is not None:
                ref["guild_id"] = _sid(gid)
            msg["message_reference"] = ref
            referenced = self.messages.get(cid, {}).get(int(reference_id))
            if referenced is not None:
                msg["referenced_message"] = self.rest_message(referenced)
                ref_author = int(referenced["author"]["id"])
                if ping_reply and ref_author not in mention_ids and ref_author != uid:
                    mention_ids.append(ref_author)
        if gid is not None:
            msg["guild_id"] = _sid(gid)
            if uid in self.members.get(gid, {}):
                msg["member"] = self.member_payload(gid, uid, with_user=False)
        for mention_uid in mention_ids:
            mention = dict(self.users.get(mention_uid) or {"id": _sid(mention_uid)})
            if gid is not None and mention_uid in self.members.get(gid, {}):
                mention["member"] = self.member_payload(gid, mention_uid, with_user=False)
            msg["mentions"].append(mention)
        return msg

    def _attachment(
        self, channel_id: int, item: str | Mapping[str, Any], data: bytes | None = None
    ) -> dict[str, Any]:
        if isinstance(item, Mapping):
            return dict(item)
        aid = self.snowflake()
        if data is not None:
            self.attachments[aid] = data
        url = f"{self.http_base}/attachments/{channel_id}/{aid}/{item}"
        return {
            "id": _sid(aid),
            "filename": item,
            "size": len(data) if data is not None else 1024,
            "url": url,
            "proxy_url": url,
            "content_type": mimetypes.guess_type(item)[0] or "application/octet-stream",
        }

    def rest_message(self, msg: Mapping[str, Any]) -> dict[str, Any]:
        """A stored message as REST returns it: no ``guild_id``, ``member`` or mention members."""
        out = {k: v for k, v in msg.items() if k not in ("guild_id", "member")}
        out["mentions"] = [
            {k: v for k, v in m.items() if k != "member"} for m in msg.get("mentions", [])
        ]
        if out.get("referenced_message"):
            out["referenced_message"] = self.rest_message(out["referenced_message"])
        return out

    def interaction_payload(
        self,
        command: str,
        *,
        user: Mapping[str, Any] | int,
        channel_id: int | None = None,
        guild_id: int | None | EllipsisType = ...,
        options: Mapping[str, Any] | list[dict[str, Any]] | None = None,
        command_type: int = 1,
        command_guild_id: int | None | EllipsisType = ...,
        interaction_id: int | None = None,
        token: str | None = None,
        locale: str = "en-US",
    ) -> dict[str, Any]:
        """An APPLICATION_COMMAND interaction. ``command`` may name a subcommand path
        (``"course stats"`` or ``"course prompt post"``). ``options`` maps names to values:
        str, int, float and bool become options of that type; a user dict becomes a USER
        option with ``resolved`` users/members; a channel dict a CHANNEL option; a role dict
        a ROLE option; ``(type, value)`` gives the type explicitly; a list is used raw.
        ``command_guild_id=...`` uses the guild of a registered guild command of that name.
        Without ``channel_id`` the default world's #general is used; a DM channel id (or
        ``guild_id=None``) gives a DM interaction."""
        uid = self._user_id(user)
        if channel_id is None:
            if self.world is None:
                raise ValueError("channel_id is required without the default world")
            channel_id = self.world.general_id
        cid = int(channel_id)
        gid = self._guild_of(cid) if guild_id is ... else guild_id
        resolved: dict[str, dict[str, Any]] = {}
        leaf = self._command_options(options, resolved, gid)
        parts = command.split()
        opts: list[dict[str, Any]]
        if len(parts) == 3:
            sub = {"name": parts[2], "type": 1, "options": leaf}
            opts = [{"name": parts[1], "type": 2, "options": [sub]}]
        elif len(parts) == 2:
            opts = [{"name": parts[1], "type": 1, "options": leaf}]
        else:
            opts = leaf
        registered_gid, cmd_id = self._registered_command(parts[0], gid, command_type)
        data: dict[str, Any] = {"id": _sid(cmd_id), "name": parts[0], "type": command_type}
        if opts:
            data["options"] = opts
        if resolved:
            data["resolved"] = resolved
        cmd_gid = registered_gid if command_guild_id is ... else command_guild_id
        if cmd_gid is not None:
            data["guild_id"] = _sid(cmd_gid)
        iid = interaction_id or self.snowflake()
        channel = dict(self.channels.get(cid) or {"id": _sid(cid), "type": 0 if gid else 1})
        payload: dict[str, Any] = {
            "id": _sid(iid),
            "application_id": _sid(self.application_id),
            "type": 2,
            "token": token or f"itoken-{iid}-{secrets.token_urlsafe(16)}",
            "version": 1,
            "channel_id": _sid(cid),
            "channel": channel,
            "data": data,
            "locale": locale,
            "entitlements": [],
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if gid is not None:
            bot_perms = str(self.member_permissions(gid, self.bot_id))
            channel["permissions"] = bot_perms
            payload.update(
                guild_id=_sid(gid),
                guild={"id": _sid(gid), "locale": "en-US", "features": []},
                guild_locale="en-US",
                member=self.member_payload(gid, uid, permissions=True),
                app_permissions=bot_perms,
                authorizing_integration_owners={"0": _sid(gid)},
                context=0,
            )
        else:
            payload.update(
                user=dict(self.users[uid]),
                app_permissions=str(Perm.EVERYONE_DEFAULT),
                authorizing_integration_owners={"0": _sid(uid)},
                context=1,
            )
        return payload

    def _command_options(
        self,
        options: Mapping[str, Any] | list[dict[str, Any]] | None,
        resolved: dict[str, dict[str, Any]],
        guild_id: int | None,
    ) -> list[dict[str, Any]]:
        if options is None:
            return []
        if isinstance(options, list):
            return options
        out = []
        for name, value in options.items():
            opt_type, raw = value if isinstance(value, tuple) else (None, value)
            if opt_type is None:
                opt_type, raw = self._infer_option(raw)
            if opt_type in (6, 7, 8, 9):
                raw = self._resolve_option(opt_type, raw, resolved, guild_id)
            out.append({"name": name, "type": opt_type, "value": raw})
        return out

    @staticmethod
    def _infer_option(value: Any) -> tuple[int, Any]:
        if isinstance(value, bool):
            return 5, value
        if isinstance(value, int):
            return 4, value
        if isinstance(value, float):
            return 10, value
        if isinstance(value, Mapping):
            if "username" in value:
                return 6, value
            if "permissions" in value and "type" not in value:
                return 8, value
            return 7, value
        return 3, str(value)

    def _resolve_option(
        self, opt_type: int, value: Any, resolved: dict[str, dict[str, Any]], guild_id: int | None
    ) -> str:
        ident = int(value["id"]) if isinstance(value, Mapping) else int(value)
        if opt_type in (6, 9) and ident in self.users:
            resolved.setdefault("users", {})[_sid(ident)] = dict(self.users[ident])
            if guild_id is not None and ident in self.members.get(guild_id, {}):
                member = self.member_payload(guild_id, ident, with_user=False, permissions=True)
                resolved.setdefault("members", {})[_sid(ident)] = member
        elif opt_type in (7, 9) and ident in self.channels:
            channel = dict(self.channels[ident])
            channel["permissions"] = str(Perm.EVERYONE_DEFAULT)
            resolved.setdefault("channels", {})[_sid(ident)] = channel
        elif opt_type in (8, 9) and guild_id is not None and ident in self.roles.get(guild_id, {}):
            resolved.setdefault("roles", {})[_sid(ident)] = dict(self.roles[guild_id][ident])
        return _sid(ident)

    def _registered_command(
        self, name: str, guild_id: int | None, command_type: int
    ) -> tuple[int | None, int]:
        if guild_id is not None:
            for cmd in self.guild_commands.get(guild_id, []):
                if cmd["name"] == name and cmd.get("type", 1) == command_type:
                    return guild_id, int(cmd["id"])
        for cmd in self.commands:
            if cmd["name"] == name and cmd.get("type", 1) == command_type:
                return None, int(cmd["id"])
        return None, self.snowflake()

    def reaction_payload(
        self,
        channel_id: int,
        message_id: int,
        user: Mapping[str, Any] | int,
        emoji: str | Mapping[str, Any] = "👍",
    ) -> dict[str, Any]:
        uid = self._user_id(user)
        cid = int(channel_id)
        gid = self._guild_of(cid)
        payload: dict[str, Any] = {
            "user_id": _sid(uid),
            "channel_id": _sid(cid),
            "message_id": _sid(message_id),
            "emoji": _parse_emoji(emoji),
            "burst": False,
            "burst_colors": [],
            "type": 0,
        }
        stored = self.messages.get(cid, {}).get(int(message_id))
        if stored is not None:
            payload["message_author_id"] = stored["author"]["id"]
        if gid is not None:
            payload["guild_id"] = _sid(gid)
            if uid in self.members.get(gid, {}):
                payload["member"] = self.member_payload(gid, uid)
        return payload

    # -- events (apply to the world, then send to every session) ----------------------------

    async def dispatch(self, event: str, data: Mapping[str, Any]) -> int:
        """Apply an event to the world and send it to every session that should get it
        (intents, shards; disconnected-but-resumable sessions get it on RESUME).
        Returns how many live connections it was written to."""
        data = copy.deepcopy(dict(data))
        self._apply_event(event, data)
        delivered = 0
        for session in list(self.sessions.values()):
            if not session.resumable:
                continue
            if not self._session_wants(session, event, data):
                continue
            if await self._send_dispatch(session, event, self._shape_for(session, event, data)):
                delivered += 1
        return delivered

    async def send_message_create(
        self, channel_id: int, author: Mapping[str, Any] | int, content: str = "", **kwargs: Any
    ) -> dict[str, Any]:
        """A user posts a message: stored and sent as MESSAGE_CREATE. Keyword arguments are
        those of `message_payload`."""
        payload = self.message_payload(channel_id, author, content, **kwargs)
        await self.dispatch("MESSAGE_CREATE", payload)
        return payload

    def store_message(
        self, channel_id: int, author: Mapping[str, Any] | int, content: str = "", **kwargs: Any
    ) -> dict[str, Any]:
        """A message that exists only in history (posted while the bot was away)."""
        payload = self.message_payload(channel_id, author, content, **kwargs)
        self._apply_event("MESSAGE_CREATE", payload)
        return payload

    async def send_message_update(
        self,
        channel_id: int,
        message_id: int,
        *,
        content: str | None = None,
        embeds: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """An edit of a stored message: MESSAGE_UPDATE with the full updated message."""
        stored = self.messages[int(channel_id)][int(message_id)]
        updated = copy.deepcopy(stored)
        if content is not None:
            updated["content"] = content
        if embeds is not None:
            updated["embeds"] = embeds
        updated["edited_timestamp"] = _now_iso()
        await self.dispatch("MESSAGE_UPDATE", updated)
        return updated

    async def send_message_delete(self, channel_id: int, message_id: int) -> dict[str, Any]:
        payload = {"id": _sid(message_id), "channel_id": _sid(channel_id)}
        gid = self._guild_of(int(channel_id))
        if gid is not None:
            payload["guild_id"] = _sid(gid)
        await self.dispatch("MESSAGE_DELETE", payload)
        return payload

    async def send_reaction_add(
        self,
        channel_id: int,
        message_id: int,
        user: Mapping[str, Any] | int,
        emoji: str | Mapping[str, Any] = "👍",
    ) -> dict[str, Any]:
        payload = self.reaction_payload(channel_id, message_id, user, emoji)
        await self.dispatch("MESSAGE_REACTION_ADD", payload)
        return payload

    async def send_reaction_remove(
        self,
        channel_id: int,
        message_id: int,
        user: Mapping[str, Any] | int,
        emoji: str | Mapping[str, Any] = "👍",
    ) -> dict[str, Any]:
        payload = self.reaction_payload(channel_id, message_id, user, emoji)
        payload.pop("member", None)
        payload.pop("message_author_id", None)
        await self.dispatch("MESSAGE_REACTION_REMOVE", payload)
        return payload

    async def send_member_add(
        self,
        guild_id: int,
        user: Mapping[str, Any] | int,
        *,
        roles: Iterable[int] = (),
        nick: str | None = None,
    ) -> dict[str, Any]:
        uid = self._user_id(user)
        payload = {
            "guild_id": _sid(guild_id),
            "user": dict(self.users[uid]),
            "roles": [_sid(r) for r in roles],
            "joined_at": _now_iso(),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "nick": nick,
            "avatar": None,
            "communication_disabled_until": None,
        }
        await self.dispatch("GUILD_MEMBER_ADD", payload)
        return payload

    async def send_member_remove(
        self, guild_id: int, user: Mapping[str, Any] | int
    ) -> dict[str, Any]:
        uid = self._user_id(user)
        payload = {"guild_id": _sid(guild_id), "user": dict(self.users[uid])}
        await self.dispatch("GUILD_MEMBER_REMOVE", payload)
        return payload

    async def send_thread_create(
        self,
        parent_id: int,
        name: str,
        *,
        owner: Mapping[str, Any] | int | None = None,
        type: int = 11,
        thread_id: int | None = None,
    ) -> dict[str, Any]:
        """A new thread: registered and sent as THREAD_CREATE with ``newly_created``."""
        thread = self.create_thread(parent_id, name, owner=owner, type=type, thread_id=thread_id)
        payload = {**thread, "newly_created": True}
        await self.dispatch("THREAD_CREATE", payload)
        return payload

    async def send_interaction(self, command: str, **kwargs: Any) -> dict[str, Any]:
        """An application command interaction (see `interaction_payload` for arguments);
        its answers are collected in ``emu.interactions[int(payload["id"])]``."""
        payload = self.interaction_payload(command, **kwargs)
        await self.dispatch("INTERACTION_CREATE", payload)
        return payload

    async def send_raw(self, payload: Mapping[str, Any] | str | bytes) -> int:
        """Write anything to every live connection, as is: a dict as JSON text, a str as a
        text frame, bytes as a binary frame (bypassing compression). No sequence handling."""
        count = 0
        for conn in list(self._live):
            if conn.ws.closed:
                continue
            try:
                if isinstance(payload, bytes):
                    await conn.ws.send_bytes(payload)
                elif isinstance(payload, str):
                    await conn.ws.send_str(payload)
                else:
                    await conn.ws.send_str(_dumps(payload))
            except (ConnectionError, RuntimeError):
                continue
            count += 1
        return count

    async def send_reconnect(self) -> None:
        """Op 7 RECONNECT: discord.py closes and RESUMEs."""
        for conn in list(self._live):
            await conn.send({"op": 7, "d": None})

    async def send_invalid_session(self, resumable: bool = False) -> None:
        """Op 9 to every live connection; non-resumable also ends the sessions."""
        for conn in list(self._live):
            if conn.session is not None and not resumable:
                conn.session.resumable = False
            await conn.send({"op": 9, "d": resumable})

    async def drop_connections(self, code: int = 4000, *, invalidate: bool = False) -> int:
        """Close every live websocket with ``code`` (4000 = unknown error, which discord.py
        answers with an immediate RESUME). ``invalidate`` also ends the sessions so the
        RESUME gets INVALID_SESSION and the client re-IDENTIFYs."""
        conns = list(self._live)
        for conn in conns:
            if invalidate and conn.session is not None:
                conn.session.resumable = False
            await conn.close(code, "emulator dropped the connection")
        return len(conns)

    def fail_next_resume(self, times: int = 1) -> None:
        """Answer the next ``times`` RESUMEs with INVALID_SESSION (d=false)."""
        self._resume_failures += times

    def hold_gateway(self) -> None:
        """New websocket connections wait (no HELLO) until `release_gateway`; dispatches made
        meanwhile are buffered in the sessions and replayed on RESUME."""
        self._gate.clear()

    def release_gateway(self) -> None:
        self._gate.set()

    @property
    def intents(self) -> int | None:
        """The intents of the most recent IDENTIFY."""
        return self.identifies[-1].get("intents") if self.identifies else None

    @property
    def live_connections(self) -> int:
        return sum(1 for c in self._live if not c.ws.closed and c.session is not None)

    # -- failure injection ------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        json_body: Any = None,
        *,
        times: int = 1,
        headers: Mapping[str, str | None] | None = None,
    ) -> None:
        """Answer the next ``times`` requests whose method matches (``"*"`` for any) and whose
        decoded path (without ``/api/v10``) fully matches ``path_regex`` with ``status``.

        For 429 the body defaults to ``{"message", "retry_after": 0.05, "global": false}``
        (merged with ``json_body``) and the headers include ``Via`` (without it discord.py
        assumes a Cloudflare ban and raises) and the X-RateLimit set; a header set to None
        in ``headers`` is removed. A str body is sent as text/html."""
        hdrs: dict[str, str | None] = {}
        body = json_body
        if status == 429:
            body = {
                "message": "You are being rate limited.",
                "retry_after": 0.05,
                "global": False,
                **(json_body or {}),
            }
            retry = float(body["retry_after"])
            hdrs = {
                "Via": "1.1 google",
                "Retry-After": str(max(1, math.ceil(retry))),
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset-After": f"{retry:.3f}",
                "X-RateLimit-Reset": f"{time.time() + retry:.3f}",
                "X-RateLimit-Scope": "shared" if body.get("global") is False else "global",
            }
        elif body is None:
            body = {"message": f"{status}: {HTTPStatus(status).phrase}", "code": 0}
        hdrs.update(headers or {})
        self._failures.append(
            _FailureRule(method.upper(), re.compile(path_regex), status, body, hdrs, times)
        )

    def _take_failure(self, method: str, path: str) -> _FailureRule | None:
        for rule in self._failures:
            if rule.remaining > 0 and rule.method in ("*", method) and rule.pattern.fullmatch(path):
                rule.remaining -= 1
                if rule.remaining == 0:
                    self._failures.remove(rule)
                return rule
        return None

    # -- waiting ----------------------------------------------------------------------------

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def wait_until(
        self, predicate: Callable[[], Any], *, timeout: float = 5.0, what: str = "condition"
    ) -> Any:
        """Wait until ``predicate()`` is truthy (re-checked whenever the emulator records
        something) and return its value; TimeoutError after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append(fut)
            await asyncio.wait({fut}, timeout=remaining)

    def requests_matching(self, method: str, path_regex: str) -> list[RecordedRequest]:
        """Answered requests with that method (``"*"`` for any) whose path fully matches."""
        pattern = re.compile(path_regex)
        return [
            r
            for r in self.requests
            if r.status is not None
            and method.upper() in ("*", r.method)
            and pattern.fullmatch(r.path)
        ]

    async def wait_for_request(
        self, method: str, path_regex: str, *, count: int = 1, timeout: float = 5.0
    ) -> RecordedRequest:
        """The ``count``-th answered request matching (see `requests_matching`)."""
        found = await self.wait_until(
            lambda: len(self.requests_matching(method, path_regex)) >= count,
            timeout=timeout,
            what=f"{count} x {method} {path_regex}",
        )
        assert found
        return self.requests_matching(method, path_regex)[count - 1]

    def gateway_received(self, op: int | str) -> list[GatewayRecord]:
        """Payloads the client sent with that opcode (number or name, e.g. ``"RESUME"``)."""
        number = _OPS_BY_NAME[op] if isinstance(op, str) else op
        return [r for r in self.gateway_log if r.op == number]

    async def wait_for_gateway(
        self, op: int | str, *, count: int = 1, timeout: float = 5.0
    ) -> GatewayRecord:
        """The ``count``-th payload the client sent with that opcode."""
        await self.wait_until(
            lambda: len(self.gateway_received(op)) >= count,
            timeout=timeout,
            what=f"{count} x gateway op {op}",
        )
        return self.gateway_received(op)[count - 1]

    # -- gateway ----------------------------------------------------------------------------

    async def _gateway_handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
        await ws.prepare(request)
        query = dict(request.query)
        info = ConnectionInfo(len(self.connections), request.path, query)
        self.connections.append(info)
        compress = self.compression and query.get("compress") == "zlib-stream"
        conn = _Connection(ws, info, compress)
        self._live.append(conn)
        self._notify()
        try:
            await self._gate.wait()
            hello = {"heartbeat_interval": self.heartbeat_interval, "_trace": ['["emu",{}]']}
            await conn.send({"op": 10, "s": None, "t": None, "d": hello})
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self._on_gateway_text(conn, msg.data)
                elif msg.type is WSMsgType.BINARY:
                    await conn.close(4002, "Error while decoding payload.")
                elif msg.type is WSMsgType.ERROR:
                    break
        finally:
            self._live.remove(conn)
            if info.close_code is None:  # closed by the client: record its code
                info.close_code = ws.close_code
            session = conn.session
            if session is not None and session.connection is conn:
                session.connection = None
                # A client closing with 1000/1001 ends its session, as on Discord.
                if not conn.closed_by_server and ws.close_code in (1000, 1001):
                    session.resumable = False
            self._notify()
        return ws

    async def _on_gateway_text(self, conn: _Connection, text: str) -> None:
        try:
            payload = json.loads(text)
            op = payload["op"]
        except (ValueError, KeyError, TypeError):
            await conn.close(4002, "Error while decoding payload.")
            return
        data = payload.get("d")
        self.gateway_log.append(GatewayRecord(op, OP_NAMES.get(op, str(op)), data, conn.info.index))
        try:
            if op == 1:
                if self.ack_heartbeats:
                    await conn.send({"op": 11, "s": None, "t": None, "d": None})
            elif op == 2:
                await self._on_identify(conn, data)
            elif op == 6:
                await self._on_resume(conn, data)
            elif conn.session is None:
                await conn.close(4003, "Not authenticated.")
            elif op == 3:
                self.presence_updates.append(data)
            elif op == 4:
                pass
            elif op == 8:
                await self._on_request_members(conn, data)
            else:
                await conn.close(4001, "Unknown opcode.")
        finally:
            self._notify()

    async def _on_identify(self, conn: _Connection, data: Mapping[str, Any]) -> None:
        if conn.session is not None:
            await conn.close(4005, "Already authenticated.")
            return
        if not isinstance(data, Mapping) or data.get("token") != self.token:
            await conn.close(4004, "Authentication failed.")
            return
        intents = data.get("intents")
        if not isinstance(intents, int) or intents < 0:
            await conn.close(4013, "Invalid intent(s).")
            return
        if intents & Intent.PRIVILEGED & ~self.allowed_privileged_intents:
            await conn.close(4014, "Disallowed intent(s).")
            return
        shard = data.get("shard")
        if shard is not None and not (0 <= shard[0] < shard[1]):
            await conn.close(4010, "Invalid shard.")
            return
        self.identifies.append(dict(data))
        session = GatewaySession(
            session_id=secrets.token_hex(16),
            intents=intents,
            identify=dict(data),
            shard=tuple(shard) if shard else None,
        )
        self.sessions[session.session_id] = session
        session.connection = conn
        conn.session = session
        guild_ids = [gid for gid in self.guilds if self._session_sees_guild(session, gid)]
        ready = {
            "v": API_VERSION,
            "user": {**self.bot_user, "verified": True, "mfa_enabled": False, "email": None},
            "guilds": [{"id": _sid(gid), "unavailable": True} for gid in guild_ids],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.resume_gateway_url,
            "application": {"id": _sid(self.application_id), "flags": self._app_flags()},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "auth": {},
            "_trace": ['["emu-gateway",{}]'],
        }
        if session.shard is not None:
            ready["shard"] = list(session.shard)
        await self._send_dispatch(session, "READY", ready)
        threshold = int(data.get("large_threshold", 50))
        for gid in guild_ids:
            guild = self.guild_create_payload(gid, intents=intents, large_threshold=threshold)
            await self._send_dispatch(session, "GUILD_CREATE", guild)

    async def _on_resume(self, conn: _Connection, data: Mapping[str, Any]) -> None:
        if not isinstance(data, Mapping) or data.get("token") != self.token:
            await conn.close(4004, "Authentication failed.")
            return
        session = self.sessions.get(str(data.get("session_id")))
        seq = int(data.get("seq") or 0)
        forced = self._resume_failures > 0
        if forced:
            self._resume_failures -= 1
        if forced or session is None or not session.resumable or seq > session.seq:
            if session is not None:
                session.resumable = False
            await conn.send({"op": 9, "s": None, "t": None, "d": False})
            return
        old = session.connection
        if old is not None and old is not conn:
            old.session = None
            await old.close(4000, "session resumed elsewhere")
        session.connection = conn
        conn.session = session
        for frame_seq, text in list(session.sent):
            if frame_seq > seq:
                await conn.send_text(text)
        await self._send_dispatch(session, "RESUMED", {"_trace": ['["emu-gateway",{}]']})

    async def _on_request_members(self, conn: _Connection, data: Mapping[str, Any]) -> None:
        session = conn.session
        assert session is not None
        raw_ids = data.get("guild_id")
        guild_ids = raw_ids if isinstance(raw_ids, list) else [raw_ids]
        query = (data.get("query") or "").lower()
        limit = int(data.get("limit") or 0)
        user_ids = data.get("user_ids")
        if user_ids is not None and not isinstance(user_ids, list):
            user_ids = [user_ids]
        for raw_gid in guild_ids:
            gid = int(raw_gid)
            members = self.members.get(gid, {})
            not_found: list[str] = []
            if user_ids is not None:
                picked = [int(u) for u in user_ids if int(u) in members]
                not_found = [_sid(u) for u in user_ids if int(u) not in members]
            else:
                picked = [
                    uid
                    for uid, m in members.items()
                    if not query
                    or self.users[uid]["username"].lower().startswith(query)
                    or (m.get("nick") or "").lower().startswith(query)
                ]
            if limit:
                picked = picked[:limit]
            chunks = [picked[i : i + 1000] for i in range(0, len(picked), 1000)] or [[]]
            for index, chunk in enumerate(chunks):
                body: dict[str, Any] = {
                    "guild_id": _sid(gid),
                    "members": [self.member_payload(gid, uid) for uid in chunk],
                    "chunk_index": index,
                    "chunk_count": len(chunks),
                }
                if not_found and index == 0:
                    body["not_found"] = not_found
                if data.get("nonce") is not None:
                    body["nonce"] = data["nonce"]
                await self._send_dispatch(session, "GUILD_MEMBERS_CHUNK", body)

    def _app_flags(self) -> int:
        flags = 0
        if self.allowed_privileged_intents & Intent.GUILD_PRESENCES:
            flags |= _APP_FLAG_PRESENCE_LIMITED
        if self.allowed_privileged_intents & Intent.GUILD_MEMBERS:
            flags |= _APP_FLAG_MEMBERS_LIMITED
        if self.allowed_privileged_intents & Intent.MESSAGE_CONTENT:
            flags |= _APP_FLAG_CONTENT_LIMITED
        return flags

    async def _send_dispatch(self, session: GatewaySession, event: str, data: Any) -> bool:
        session.seq += 1
        text = _dumps({"op": 0, "s": session.seq, "t": event, "d": data})
        session.sent.append((session.seq, text))
        conn = session.connection
        if conn is None:
            return False
        return await conn.send_text(text)

    def _session_sees_guild(self, session: GatewaySession, guild_id: int) -> bool:
        if session.shard is None:
            return True
        shard_id, count = session.shard
        return (guild_id >> 22) % count == shard_id

    def _session_wants(self, session: GatewaySession, event: str, data: Mapping[str, Any]) -> bool:
        raw_gid = data.get("guild_id") if isinstance(data, Mapping) else None
        if event in ("GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE"):
            raw_gid = data.get("id")
        if raw_gid is not None:
            if not self._session_sees_guild(session, int(raw_gid)):
                return False
        elif session.shard is not None and session.shard[0] != 0:
            return False  # DMs go to shard 0
        intents = session.intents
        if event in _MESSAGE_EVENTS:
            need = Intent.GUILD_MESSAGES if raw_gid is not None else Intent.DIRECT_MESSAGES
        elif event in _REACTION_EVENTS:
            need = (
                Intent.GUILD_MESSAGE_REACTIONS
                if raw_gid is not None
                else Intent.DIRECT_MESSAGE_REACTIONS
            )
        elif event == "TYPING_START":
            need = (
                Intent.GUILD_MESSAGE_TYPING if raw_gid is not None else Intent.DIRECT_MESSAGE_TYPING
            )
        else:
            need = _GUILD_EVENT_INTENTS.get(event, 0)
        return not need or bool(intents & need)

    def _shape_for(self, session: GatewaySession, event: str, data: dict[str, Any]) -> Any:
        """Withhold message content like Discord when the session lacks MESSAGE_CONTENT."""
        if event not in ("MESSAGE_CREATE", "MESSAGE_UPDATE"):
            return data
        if session.intents & Intent.MESSAGE_CONTENT:
            return data
        return self._withhold_content(data)

    def _withhold_content(self, msg: dict[str, Any]) -> dict[str, Any]:
        if "guild_id" not in msg:
            return msg  # DMs keep their content
        author = (msg.get("author") or {}).get("id")
        mentioned = any(m.get("id") == self.bot_user["id"] for m in msg.get("mentions", []))
        if author == self.bot_user["id"] or mentioned:
            return msg
        out = {**msg, **_WITHHELD}
        out.pop("poll", None)
        ref = out.get("referenced_message")
        if ref and (ref.get("author") or {}).get("id") != self.bot_user["id"]:
            out["referenced_message"] = {**ref, **_WITHHELD}
        return out

    # -- world updates from events ----------------------------------------------------------

    def _apply_event(self, event: str, data: dict[str, Any]) -> None:
        try:
            self._apply_event_unchecked(event, data)
        except (KeyError, TypeError, ValueError) as exc:
            log.debug("emulator could not apply %s to its world: %r", event, exc)

    def _apply_event_unchecked(self, event: str, data: dict[str, Any]) -> None:
        if event == "MESSAGE_CREATE":
            cid = int(data["channel_id"])
            self.messages.setdefault(cid, {})[int(data["id"])] = copy.deepcopy(data)
            channel = self.channels.get(cid)
            if channel is not None:
                channel["last_message_id"] = data["id"]
                if channel["type"] in (10, 11, 12):
                    channel["message_count"] = channel.get("message_count", 0) + 1
                    channel["total_message_sent"] = channel.get("total_message_sent", 0) + 1
        elif event == "MESSAGE_UPDATE":
            stored = self.messages.get(int(data["channel_id"]), {}).get(int(data["id"]))
            if stored is not None:
                stored.update(copy.deepcopy(data))
        elif event == "MESSAGE_DELETE":
            self.messages.get(int(data["channel_id"]), {}).pop(int(data["id"]), None)
        elif event in ("MESSAGE_REACTION_ADD", "MESSAGE_REACTION_REMOVE"):
            self._apply_reaction(event == "MESSAGE_REACTION_ADD", data)
        elif event == "GUILD_MEMBER_ADD":
            gid = int(data["guild_id"])
            uid = self._user_id(data["user"])
            member = {k: v for k, v in data.items() if k != "guild_id"}
            member["user"] = self.users[uid]
            self.members[gid][uid] = member
        elif event == "GUILD_MEMBER_UPDATE":
            gid = int(data["guild_id"])
            uid = int(data["user"]["id"])
            if uid in self.members.get(gid, {}):
                self.members[gid][uid].update({k: v for k, v in data.items() if k != "user"})
        elif event == "GUILD_MEMBER_REMOVE":
            self.members.get(int(data["guild_id"]), {}).pop(int(data["user"]["id"]), None)
        elif event in ("THREAD_CREATE", "THREAD_UPDATE", "CHANNEL_CREATE", "CHANNEL_UPDATE"):
            channel = {k: v for k, v in data.items() if k not in ("newly_created", "member")}
            cid = int(channel["id"])
            self.channels.setdefault(cid, {}).update(channel)
            self.messages.setdefault(cid, {})
        elif event in ("THREAD_DELETE", "CHANNEL_DELETE"):
            self.channels.pop(int(data["id"]), None)
        elif event == "INTERACTION_CREATE":
            iid = int(data["id"])
            self.interactions[iid] = InteractionRecord(
                iid, str(data["token"]), data, time.monotonic()
            )

    def _apply_reaction(self, added: bool, data: Mapping[str, Any]) -> None:
        cid, mid, uid = int(data["channel_id"]), int(data["message_id"]), int(data["user_id"])
        msg = self.messages.get(cid, {}).get(mid)
        if msg is None:
            return
        emoji = _parse_emoji(data["emoji"])
        key = _emoji_key(emoji)
        users = self._reactors.setdefault((mid, key), [])
        if added and uid not in users:
            users.append(uid)
        elif not added and uid in users:
            users.remove(uid)
        reactions = [r for r in msg.get("reactions", []) if _emoji_key(r["emoji"]) != key]
        if users:
            reactions.append(
                {
                    "emoji": emoji,
                    "count": len(users),
                    "count_details": {"burst": 0, "normal": len(users)},
                    "me": self.bot_id in users,
                    "me_burst": False,
                    "burst_colors": [],
                }
            )
        if reactions:
            msg["reactions"] = reactions
        else:
            msg.pop("reactions", None)

    # -- REST -------------------------------------------------------------------------------

    async def _attachment_handler(self, request: web.Request) -> web.Response:
        data = self.attachments.get(int(request.match_info["aid"]))
        if data is None:
            return web.Response(status=404, text="not found")
        ctype = mimetypes.guess_type(request.match_info["filename"])[0]
        return web.Response(body=data, content_type=ctype or "application/octet-stream")

    async def _rest_handler(self, request: web.Request) -> web.StreamResponse:
        raw_tail = request.rel_url.raw_path.split("/", 3)[3]  # after /api/vN/
        raw_path = "/" + raw_tail
        path = unquote(raw_path)
        method = request.method.upper()
        body, files = await self._read_body(request)
        headers = {k: v for k, v in request.headers.items()}
        record = RecordedRequest(method, path, body)
        record.query = dict(request.query)
        record.files = [f[1] for f in files]
        record.headers = headers
        record.status = None
        self.requests.append(record)
        try:
            response = await self._route(request, method, raw_path, path, body, files, record)
        except Exception:
            log.exception("emulator failed on %s %s", method, path)
            response = discord_error(500, 0, "500: Internal Server Error (emulator bug)")
        record.status = response.status
        self._notify()
        return response

    async def _read_body(
        self, request: web.Request
    ) -> tuple[Any, list[tuple[str, str, bytes, str | None]]]:
        files: list[tuple[str, str, bytes, str | None]] = []
        if not request.can_read_body:
            return None, files
        ctype = request.content_type
        if ctype.startswith("multipart/"):
            payload: dict[str, Any] = {}
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader):
                    continue
                if part.filename:
                    data = await part.read()
                    part_type = part.headers.get("Content-Type")
                    files.append((part.name or "", part.filename, bytes(data), part_type))
                elif part.name == "payload_json":
                    payload.update(json.loads(await part.text()))
                else:
                    payload[part.name or ""] = await part.text()
            return payload, files
        raw = await request.read()
        if not raw:
            return None, files
        if ctype == "application/json":
            try:
                return json.loads(raw), files
            except ValueError:
                return raw.decode(errors="replace"), files
        if ctype == "application/x-www-form-urlencoded":
            return dict(await request.post()), files
        return raw.decode(errors="replace"), files

    _ROUTES: list[tuple[str, str, str, bool]] = [
        # method, template, handler name, needs bot auth
        ("GET", "/gateway", "_r_gateway", False),
        ("GET", "/gateway/bot", "_r_gateway_bot", True),
        ("GET", "/users/@me", "_r_me", True),
        ("GET", "/users/@me/guilds", "_r_my_guilds", True),
        ("POST", "/users/@me/channels", "_r_create_dm", True),
        ("GET", "/users/{uid}", "_r_user", True),
        ("GET", "/oauth2/applications/@me", "_r_app_info", True),
        ("GET", "/applications/@me", "_r_app_info", True),
        ("GET", "/applications/{app}/commands", "_r_get_commands", True),
        ("PUT", "/applications/{app}/commands", "_r_put_commands", True),
        ("GET", "/applications/{app}/guilds/{gid}/commands", "_r_get_commands", True),
        ("PUT", "/applications/{app}/guilds/{gid}/commands", "_r_put_commands", True),
        ("GET", "/guilds/{gid}", "_r_guild", True),
        ("GET", "/guilds/{gid}/channels", "_r_guild_channels", True),
        ("GET", "/guilds/{gid}/roles", "_r_guild_roles", True),
        ("GET", "/guilds/{gid}/members", "_r_guild_members", True),
        ("GET", "/guilds/{gid}/members/{uid}", "_r_guild_member", True),
        ("GET", "/channels/{cid}", "_r_channel", True),
        ("GET", "/channels/{cid}/messages", "_r_history", True),
        ("POST", "/channels/{cid}/messages", "_r_send", True),
        ("GET", "/channels/{cid}/messages/{mid}", "_r_get_message", True),
        ("PATCH", "/channels/{cid}/messages/{mid}", "_r_edit", True),
        ("DELETE", "/channels/{cid}/messages/{mid}", "_r_delete", True),
        ("PUT", "/channels/{cid}/messages/{mid}/reactions/{emoji}/@me", "_r_react", True),
        ("DELETE", "/channels/{cid}/messages/{mid}/reactions/{emoji}/@me", "_r_unreact", True),
        ("GET", "/channels/{cid}/messages/{mid}/reactions/{emoji}", "_r_reactors", True),
        ("POST", "/channels/{cid}/typing", "_r_typing", True),
        ("POST", "/channels/{cid}/threads", "_r_create_thread", True),
        ("POST", "/channels/{cid}/messages/{mid}/threads", "_r_create_thread", True),
        ("POST", "/interactions/{iid}/{token}/callback", "_r_callback", False),
        ("POST", "/webhooks/{app}/{token}", "_r_followup", False),
        ("GET", "/webhooks/{app}/{token}/messages/{mid}", "_r_webhook_get", False),
        ("PATCH", "/webhooks/{app}/{token}/messages/{mid}", "_r_webhook_edit", False),
        ("DELETE", "/webhooks/{app}/{token}/messages/{mid}", "_r_webhook_delete", False),
    ]
    _COMPILED: list[tuple[str, re.Pattern[str], str, bool]] = [
        (m, re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", t) + "$"), h, a)
        for m, t, h, a in _ROUTES
    ]

    async def _route(
        self,
        request: web.Request,
        method: str,
        raw_path: str,
        path: str,
        body: Any,
        files: list[tuple[str, str, bytes, str | None]],
        record: RecordedRequest,
    ) -> web.StreamResponse:
        rule = self._take_failure(method, path)
        if rule is not None:
            hdrs = {k: v for k, v in rule.headers.items() if v is not None}
            if isinstance(rule.body, str):
                return web.Response(
                    text=rule.body, status=rule.status, headers=hdrs, content_type="text/html"
                )
            return json_response(rule.body, rule.status, hdrs)
        for route_method, pattern, handler_name, needs_auth in self._COMPILED:
            if route_method != method:
                continue
            match = pattern.match(raw_path)
            if not match:
                continue
            if needs_auth and request.headers.get("Authorization") != f"Bot {self.token}":
                return discord_error(401, 0, "401: Unauthorized")
            params = {k: unquote(v) for k, v in match.groupdict().items()}
            req = _Req(request, method, path, params, dict(request.query), body, files, record)
            response: web.StreamResponse = await getattr(self, handler_name)(req)
            if 200 <= response.status < 300:
                response.headers.update(self._ratelimit_headers(route_method, pattern.pattern))
            return response
        self.unhandled.append(record)
        log.warning("Discord emulator has no route for %s %s", method, path)
        return discord_error(404, 0, "404: Not Found")

    @staticmethod
    def _ratelimit_headers(method: str, pattern: str) -> dict[str, str]:
        bucket = f"{abs(hash((method, pattern))) & 0xFFFFFFFF:08x}"
        return {
            "X-RateLimit-Bucket": bucket,
            "X-RateLimit-Limit": "50",
            "X-RateLimit-Remaining": "49",
            "X-RateLimit-Reset-After": "1.000",
            "X-RateLimit-Reset": f"{time.time() + 1:.3f}",
        }

    # -- REST handlers: identity ------------------------------------------------------------

    async def _r_gateway(self, req: _Req) -> web.Response:
        return json_response({"url": self.gateway_url})

    async def _r_gateway_bot(self, req: _Req) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1}
        return json_response({"url": self.gateway_url, "shards": 1, "session_start_limit": limit})

    async def _r_me(self, req: _Req) -> web.Response:
        return json_response({**self.bot_user, "verified": True, "mfa_enabled": False})

    async def _r_my_guilds(self, req: _Req) -> web.Response:
        return json_response(
            [
                {
                    "id": g["id"],
                    "name": g["name"],
                    "icon": None,
                    "owner": False,
                    "permissions": str(self.member_permissions(gid, self.bot_id)),
                    "features": [],
                }
                for gid, g in self.guilds.items()
            ]
        )

    async def _r_user(self, req: _Req) -> web.Response:
        user = self.users.get(int(req.params["uid"]))
        if user is None:
            return discord_error(404, 10013, "Unknown User")
        return json_response(user)

    async def _r_app_info(self, req: _Req) -> web.Response:
        return json_response(
            {
                "id": _sid(self.application_id),
                "name": self.bot_user["global_name"],
                "icon": None,
                "description": "Hearth test application",
                "summary": "",
                "type": None,
                "bot_public": False,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "flags": self._app_flags(),
                "owner": self.owner_user,
                "team": None,
                "bot": self.bot_user,
                "redirect_uris": [],
                "interactions_endpoint_url": None,
                "approximate_guild_count": len(self.guilds),
                "integration_types_config": {"0": {}},
            }
        )

    async def _r_create_dm(self, req: _Req) -> web.Response:
        body = req.body if isinstance(req.body, Mapping) else {}
        try:
            uid = int(body["recipient_id"])
        except (KeyError, TypeError, ValueError):
            err = _field_error("recipient_id", "BASE_TYPE_REQUIRED", "This field is required")
            return discord_error(400, 50035, "Invalid Form Body", err)
        if uid not in self.users:
            return discord_error(404, 10013, "Unknown User")
        return json_response(self.dm_channel(uid))

    # -- REST handlers: guilds and channels -------------------------------------------------

    def _guild_or_404(self, req: _Req) -> int | web.Response:
        gid = int(req.params["gid"])
        if gid not in self.guilds:
            return discord_error(404, 10004, "Unknown Guild")
        return gid

    async def _r_guild(self, req: _Req) -> web.Response:
        gid = self._guild_or_404(req)
        if isinstance(gid, web.Response):
            return gid
        guild = {
            **self.guilds[gid],
            "roles": list(self.roles[gid].values()),
            "emojis": [],
            "stickers": [],
        }
        guild.pop("joined_at", None)
        if req.query.get("with_counts") in ("true", "True", "1"):
            guild["approximate_member_count"] = len(self.members[gid])
            guild["approximate_presence_count"] = 0
        return json_response(guild)

    async def _r_guild_channels(self, req: _Req) -> web.Response:
        gid = self._guild_or_404(req)
        if isinstance(gid, web.Response):
            return gid
        return json_response(
            [
                c
                for c in self.channels.values()
                if c.get("guild_id") == _sid(gid) and c["type"] not in (10, 11, 12)
            ]
        )

    async def _r_guild_roles(self, req: _Req) -> web.Response:
        gid = self._guild_or_404(req)
        if isinstance(gid, web.Response):
            return gid
        return json_response(list(self.roles[gid].values()))

    async def _r_guild_members(self, req: _Req) -> web.Response:
        gid = self._guild_or_404(req)
        if isinstance(gid, web.Response):
            return gid
        limit = max(1, min(int(req.query.get("limit", 1)), 1000))
        after = int(req.query.get("after", 0))
        ids = sorted(uid for uid in self.members[gid] if uid > after)[:limit]
        return json_response([self.member_payload(gid, uid) for uid in ids])

    async def _r_guild_member(self, req: _Req) -> web.Response:
        gid = self._guild_or_404(req)
        if isinstance(gid, web.Response):
            return gid
        uid = int(req.params["uid"])
        if uid not in self.members[gid]:
            return discord_error(404, 10007, "Unknown Member")
        return json_response(self.member_payload(gid, uid))

    def _channel_or_404(self, req: _Req) -> dict[str, Any] | web.Response:
        channel = self.channels.get(int(req.params["cid"]))
        if channel is None:
            return discord_error(404, 10003, "Unknown Channel")
        return channel

    async def _r_channel(self, req: _Req) -> web.Response:
        channel = self._channel_or_404(req)
        if isinstance(channel, web.Response):
            return channel
        return json_response(channel)

    async def _r_typing(self, req: _Req) -> web.Response:
        channel = self._channel_or_404(req)
        if isinstance(channel, web.Response):
            return channel
        return web.Response(status=204)

    async def _r_create_thread(self, req: _Req) -> web.Response:
        channel = self._channel_or_404(req)
        if isinstance(channel, web.Response):
            return channel
        body = req.body if isinstance(req.body, Mapping) else {}
        name = str(body.get("name") or "")
        if not 1 <= len(name) <= 100:
            err = _field_error(
                "name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
            )
            return discord_error(400, 50035, "Invalid Form Body", err)
        from_message = "mid" in req.params
        if from_message:
            mid = int(req.params["mid"])
            if mid not in self.messages.get(int(channel["id"]), {}):
                return discord_error(404, 10008, "Unknown Message")
            if mid in self.channels:
                return discord_error(
                    400, 160004, "A thread has already been created for this message"
                )
        thread = self.create_thread(
            int(channel["id"]),
            name,
            owner=self.bot_id,
            type=11 if from_message else int(body.get("type", 12)),
            thread_id=int(req.params["mid"]) if from_message else None,
        )
        if body.get("auto_archive_duration"):
            thread["thread_metadata"]["auto_archive_duration"] = int(body["auto_archive_duration"])
        thread_member = {
            "id": thread["id"],
            "user_id": self.bot_user["id"],
            "join_timestamp": _now_iso(),
            "flags": 1,
        }
        if from_message:
            started = self.messages[int(channel["id"])][int(thread["id"])]
            started["thread"] = dict(thread)
        await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        return json_response({**thread, "member": thread_member}, 201)

    # -- REST handlers: messages ------------------------------------------------------------

    async def _r_history(self, req: _Req) -> web.Response:
        channel = self._channel_or_404(req)
        if isinstance(channel, web.Response):
            return channel
        store = self.messages.get(int(channel["id"]), {})
        ids = sorted(store)
        try:
            limit = max(1, min(int(req.query.get("limit", 50)), 100))
        except ValueError:
            err = _field_error("limit", "NUMBER_TYPE_COERCE", "Value is not int.")
            return discord_error(400, 50035, "Invalid Form Body", err)
        if "around" in req.query:
            around = int(req.query["around"])
            older = [i for i in ids if i < around][-(limit // 2) :] if limit > 1 else []
            newer = [i for i in ids if i >= around][: limit - len(older)]
            picked = older + newer
        elif "before" in req.query:
            before = int(req.query["before"])
            picked = [i for i in ids if i < before][-limit:]
        elif "after" in req.query:
            after = int(req.query["after"])
            picked = [i for i in ids if i > after][:limit]
        else:
            picked = ids[-limit:]
        return json_response([self.rest_message(store[i]) for i in reversed(picked)])

    async def _r_get_message(self, req: _Req) -> web.Response:
        channel = self._channel_or_404(req)
        if isinstance(channel, web.Response):
            return channel
        msg = self.messages.get(int(channel["id"]), {}).get(int(req.params["mid"]))
        if msg is None:
            return discord_error(404, 10008, "Unknown Message")
        return json_response(self.rest_message(msg))

    async def _r_send(self, req: _Req) -> web.Response:
        channel = self._channel_or_404(req)
        if isinstance(channel, web.Response):
            return channel
        cid = int(channel["id"])
        if channel["type"] == 1:
            recipient = int(channel["recipients"][0]["id"])
            if recipient in self._dms_closed:
                return discord_error(403, 50007, "Cannot send messages to this user")
        if channel["type"] in (2, 4):
            return discord_error(400, 50008, "Cannot send messages in a non-text channel")
        body = req.body if isinstance(req.body, Mapping) else {}
        error = self._validate_message(body, req.files, require_content=True)
        if error is not None:
            return error
        reference_id = None
        ref = body.get("message_reference")
        if ref and ref.get("message_id"):
            reference_id = int(ref["message_id"])
            ref_channel = int(ref.get("channel_id") or cid)
            if reference_id not in self.messages.get(ref_channel, {}):
                if ref.get("fail_if_not_exists", True):
                    err = _field_error(
                        "message_reference",
                        "MESSAGE_REFERENCE_UNKNOWN_MESSAGE",
                        "Unknown message",
                    )
                    return discord_error(400, 50035, "Invalid Form Body", err)
                reference_id = None
        msg = self._bot_message(cid, body, req.files, reference_id=reference_id)
        await self._publish("MESSAGE_CREATE", msg)
        return json_response(self.rest_message(msg))

    def _bot_message(
        self,
        channel_id: int,
        body: Mapping[str, Any],
        files: list[tuple[str, str, bytes, str | None]],
        *,
        reference_id: int | None = None,
        type: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        msg = self.message_payload(
            channel_id,
            self.bot_id,
            str(body.get("content") or ""),
            reference_id=reference_id,
            embeds=body.get("embeds") or [],
            type=type,
            ping_reply=bool((body.get("allowed_mentions") or {}).get("replied_user", True)),
            flags=int(body.get("flags") or 0),
        )
        msg["attachments"] = self._attachments_from(channel_id, body, files)
        msg["components"] = list(body.get("components") or [])
        msg["tts"] = bool(body.get("tts", False))
        if body.get("nonce") is not None:
            msg["nonce"] = body["nonce"]
        if extra:
            msg.update(extra)
        return msg

    def _attachments_from(
        self,
        channel_id: int,
        body: Mapping[str, Any],
        files: list[tuple[str, str, bytes, str | None]],
    ) -> list[dict[str, Any]]:
        # Uploads arrive as files[N]; the payload's attachments entry with id N describes it.
        described = {
            f"files[{e.get('id')}]": e.get("description") for e in body.get("attachments") or []
        }
        out = []
        for field_name, filename, data, _ in files:
            attachment = self._attachment(channel_id, filename, data)
            if described.get(field_name):
                attachment["description"] = described[field_name]
            out.append(attachment)
        return out

    def _validate_message(
        self,
        body: Mapping[str, Any],
        files: list[tuple[str, str, bytes, str | None]],
        *,
        require_content: bool,
    ) -> web.Response | None:
        content = body.get("content")
        if content is not None and len(str(content)) > 2000:
            err = _field_error(
                "content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length."
            )
            return discord_error(400, 50035, "Invalid Form Body", err)
        embeds = body.get("embeds") or []
        if len(embeds) > 10:
            err = _field_error("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
            return discord_error(400, 50035, "Invalid Form Body", err)
        total = 0
        limits = {"title": 256, "description": 4096}
        for i, embed in enumerate(embeds):
            for key, limit in limits.items():
                text = str(embed.get(key) or "")
                total += len(text)
                if len(text) > limit:
                    msg = f"Must be {limit} or fewer in length."
                    err = _field_error(f"embeds.{i}.{key}", "BASE_TYPE_MAX_LENGTH", msg)
                    return discord_error(400, 50035, "Invalid Form Body", err)
            fields = embed.get("fields") or []
            if len(fields) > 25:
                msg = "Must be 25 or fewer in length."
                err = _field_error(f"embeds.{i}.fields", "BASE_TYPE_MAX_LENGTH", msg)
                return discord_error(400, 50035, "Invalid Form Body", err)
            for j, fld in enumerate(fields):
                for key, limit in (("name", 256), ("value", 1024)):
                    text = str(fld.get(key) or "")
                    total += len(text)
                    if not text or len(text) > limit:
                        msg = f"Must be between 1 and {limit} in length."
                        path = f"embeds.{i}.fields.{j}.{key}"
                        err = _field_error(path, "BASE_TYPE_BAD_LENGTH", msg)
                        return discord_error(400, 50035, "Invalid Form Body", err)
            total += len(str((embed.get("footer") or {}).get("text") or ""))
            total += len(str((embed.get("author") or {}).get("name") or ""))
        if total > 6000:
            err = _field_error(
                "embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"
            )
            return discord_error(400, 50035, "Invalid Form Body", err)
        has_payload = any(
            body.get(key) for key in ("content", "embeds", "sticker_ids", "components", "poll")
        )
        if require_content and not has_payload and not files:
            return discord_error(400, 50006, "Cannot send an empty message")
        return None

    async def _publish(self, event: str, msg: dict[str, Any]) -> None:
        """Store a bot action and, like Discord, echo it on the gateway."""
        if self.echo_bot_events:
            await self.dispatch(event, msg)
        else:
            self._apply_event(event, msg)

    async def _r_edit(self, req: _Req) -> web.Response:
        channel = self._channel_or_404(req)
        if isinstance(channel, web.Response):
            return channel
        cid = int(channel["id"])
        msg = self.messages.get(cid, {}).get(int(req.params["mid"]))
        if msg is None:
            return discord_error(404, 10008, "Unknown Message")
        body = req.body if isinstance(req.body, Mapping) else {}
        if msg["author"]["id"] != self.bot_user["id"]:
            keys = set(body) - {"flags"}
            if keys:
                return discord_error(403, 50005, "Cannot edit a message authored by another user")
        error = self._validate_message(body, req.files, require_content=False)
        if error is not None:
            return error
        updated = copy.deepcopy(msg)
        self._merge_edit(updated, cid, body, req.files)
        await self._publish("MESSAGE_UPDATE", updated)
        return json_response(self.rest_message(self.messages[cid][int(updated["id"])]))

    def _merge_edit(
        self,
        msg: dict[str, Any],
        channel_id: int,
        body: Mapping[str, Any],
        files: list[tuple[str, str, bytes, str | None]],
    ) -> None:
        for key in ("content", "embeds", "components", "flags"):
            if key in body:
                msg[key] = body[key] if body[key] is not None else ([] if key != "content" else "")
        if "attachments" in body or files:
            kept_ids = {str(a.get("id")) for a in body.get("attachments") or []}
            kept = [a for a in msg.get("attachments", []) if a["id"] in kept_ids]
            msg["attachments"] = kept + self._attachments_from(channel_id, body, files)
        msg["edited_timestamp"] = _now_iso()

    async def _r_delete(self, req: _Req) -> web.Response:
        channel = self._channel_or_404(req)
        if isinstance(channel, web.Response):
            return channel
        cid = int(channel["id"])
        mid = int(req.params["mid"])
        if mid not in self.messages.get(cid, {}):
            return discord_error(404, 10008, "Unknown Message")
        payload = {"id": _sid(mid), "channel_id": _sid(cid)}
        if channel.get("guild_id"):
            payload["guild_id"] = channel["guild_id"]
        await self._publish("MESSAGE_DELETE", payload)
        return web.Response(status=204)

    async def _r_react(self, req: _Req, *, add: bool = True) -> web.Response:
        channel = self._channel_or_404(req)
        if isinstance(channel, web.Response):
            return channel
        cid = int(channel["id"])
        mid = int(req.params["mid"])
        if mid not in self.messages.get(cid, {}):
            return discord_error(404, 10008, "Unknown Message")
        emoji = req.params["emoji"]
        if not emoji or (emoji.isascii() and not re.fullmatch(r"(a:)?\w+:\d+", emoji)):
            return discord_error(400, 10014, "Unknown Emoji")
        payload = self.reaction_payload(cid, mid, self.bot_id, emoji)
        event = "MESSAGE_REACTION_ADD" if add else "MESSAGE_REACTION_REMOVE"
        if not add:
            payload.pop("member", None)
            payload.pop("message_author_id", None)
        await self._publish(event, payload)
        return web.Response(status=204)

    async def _r_unreact(self, req: _Req) -> web.Response:
        return await self._r_react(req, add=False)

    async def _r_reactors(self, req: _Req) -> web.Response:
        key = _emoji_key(_parse_emoji(req.params["emoji"]))
        users = self._reactors.get((int(req.params["mid"]), key), [])
        return json_response([self.users[u] for u in users if u in self.users])

    # -- REST handlers: interactions and webhooks -------------------------------------------

    async def _r_callback(self, req: _Req) -> web.Response:
        rec = self.interactions.get(int(req.params["iid"]))
        if rec is None or rec.token != req.params["token"]:
            return discord_error(404, 10062, "Unknown interaction")
        if (
            self.interaction_timeout is not None
            and not rec.acknowledged
            and time.monotonic() - rec.created > self.interaction_timeout
        ):
            return discord_error(404, 10062, "Unknown interaction")
        if rec.acknowledged:
            return discord_error(400, 40060, "Interaction has already been acknowledged.")
        body = dict(req.body) if isinstance(req.body, Mapping) else {}
        rtype = int(body.get("type", 0))
        if rtype not in (1, 4, 5, 6, 7, 8, 9, 10, 12):
            err = _field_error("type", "BASE_TYPE_CHOICES", "Value must be one of ...")
            return discord_error(400, 50035, "Invalid Form Body", err)
        data = body.get("data") or {}
        if rtype == 4:
            error = self._validate_message(data, req.files, require_content=True)
            if error is not None:
                return error
        rec.responses.append(body)
        cid = int(rec.payload["channel_id"])
        ephemeral = bool(int(data.get("flags") or 0) & 64)
        resource: dict[str, Any] = {"type": rtype}
        response_message_id: str | None = None
        if rtype in (4, 5):
            loading = rtype == 5
            msg = self._bot_message(
                cid,
                data if rtype == 4 else {"flags": (64 if ephemeral else 0) | 128},
                req.files if rtype == 4 else [],
                type=20 if rec.payload["type"] == 2 else 0,
                extra=self._interaction_extras(rec),
            )
            if loading:
                msg["flags"] = (64 if ephemeral else 0) | 128
            rec.original = msg
            response_message_id = msg["id"]
            resource["message"] = self.rest_message(msg)
            if not ephemeral:
                await self._publish("MESSAGE_CREATE", msg)
        elif rtype == 7 and rec.payload.get("message"):
            target = copy.deepcopy(rec.payload["message"])
            self._merge_edit(target, cid, data, req.files)
            response_message_id = target["id"]
            resource["message"] = self.rest_message(target)
            await self._publish("MESSAGE_UPDATE", target)
        self._notify()
        if req.query.get("with_response") not in ("1", "true", "True"):
            return web.Response(status=204)
        callback: dict[str, Any] = {
            "id": _sid(rec.id),
            "type": rec.payload["type"],
            "response_message_loading": rtype == 5,
            "response_message_ephemeral": ephemeral,
        }
        if response_message_id is not None:
            callback["response_message_id"] = response_message_id
        return json_response({"interaction": callback, "resource": resource})

    def _interaction_extras(self, rec: InteractionRecord) -> dict[str, Any]:
        payload = rec.payload
        user = (payload.get("member") or {}).get("user") or payload.get("user")
        return {
            "webhook_id": _sid(self.application_id),
            "application_id": _sid(self.application_id),
            "interaction_metadata": {
                "id": _sid(rec.id),
                "type": payload["type"],
                "user": user,
                "authorizing_integration_owners": payload.get("authorizing_integration_owners", {}),
                "name": (payload.get("data") or {}).get("name"),
            },
        }

    def _interaction_by_token(self, req: _Req) -> InteractionRecord | web.Response:
        if int(req.params["app"]) != self.application_id:
            return discord_error(404, 10015, "Unknown Webhook")
        for rec in self.interactions.values():
            if rec.token == req.params["token"]:
                if not rec.acknowledged:
                    return discord_error(404, 10015, "Unknown Webhook")
                return rec
        return discord_error(404, 10015, "Unknown Webhook")

    def _webhook_target(
        self, rec: InteractionRecord, mid: str
    ) -> tuple[dict[str, Any] | None, bool]:
        """The interaction message addressed by ``@original`` or an id, and whether it is the
        original response."""
        if mid == "@original":
            return rec.original, True
        for msg in rec.followups:
            if msg["id"] == mid:
                return msg, False
        if rec.original is not None and rec.original["id"] == mid:
            return rec.original, True
        return None, False

    async def _r_followup(self, req: _Req) -> web.Response:
        rec = self._interaction_by_token(req)
        if isinstance(rec, web.Response):
            return rec
        body = req.body if isinstance(req.body, Mapping) else {}
        error = self._validate_message(body, req.files, require_content=True)
        if error is not None:
            return error
        cid = int(rec.payload["channel_id"])
        msg = self._bot_message(cid, body, req.files, type=0, extra=self._interaction_extras(rec))
        rec.followups.append(msg)
        if not int(msg.get("flags") or 0) & 64:
            await self._publish("MESSAGE_CREATE", msg)
        self._notify()
        if req.query.get("wait") in ("1", "true", "True"):
            return json_response(self.rest_message(msg))
        return web.Response(status=204)

    async def _r_webhook_get(self, req: _Req) -> web.Response:
        rec = self._interaction_by_token(req)
        if isinstance(rec, web.Response):
            return rec
        msg, _ = self._webhook_target(rec, req.params["mid"])
        if msg is None:
            return discord_error(404, 10008, "Unknown Message")
        return json_response(self.rest_message(msg))

    async def _r_webhook_edit(self, req: _Req) -> web.Response:
        rec = self._interaction_by_token(req)
        if isinstance(rec, web.Response):
            return rec
        msg, _ = self._webhook_target(rec, req.params["mid"])
        if msg is None:
            return discord_error(404, 10008, "Unknown Message")
        body = req.body if isinstance(req.body, Mapping) else {}
        error = self._validate_message(body, req.files, require_content=False)
        if error is not None:
            return error
        was_loading = bool(int(msg.get("flags") or 0) & 128)
        cid = int(rec.payload["channel_id"])
        self._merge_edit(msg, cid, {k: v for k, v in body.items() if k != "flags"}, req.files)
        msg["flags"] = int(msg.get("flags") or 0) & ~128
        if was_loading:
            msg["edited_timestamp"] = None
        if not int(msg["flags"]) & 64:
            await self._publish("MESSAGE_UPDATE", copy.deepcopy(msg))
        self._notify()
        return json_response(self.rest_message(msg))

    async def _r_webhook_delete(self, req: _Req) -> web.Response:
        rec = self._interaction_by_token(req)
        if isinstance(rec, web.Response):
            return rec
        msg, is_original = self._webhook_target(rec, req.params["mid"])
        if msg is None:
            return discord_error(404, 10008, "Unknown Message")
        if is_original:
            rec.original = None
        else:
            rec.followups.remove(msg)
        if not int(msg.get("flags") or 0) & 64:
            payload = {"id": msg["id"], "channel_id": msg["channel_id"]}
            if msg.get("guild_id"):
                payload["guild_id"] = msg["guild_id"]
            await self._publish("MESSAGE_DELETE", payload)
        return web.Response(status=204)

    # -- REST handlers: application commands -----------------------------------------------

    def _command_list(self, req: _Req) -> list[dict[str, Any]] | web.Response:
        if int(req.params["app"]) != self.application_id:
            return discord_error(403, 50001, "Missing Access")
        if "gid" in req.params:
            gid = int(req.params["gid"])
            if gid not in self.guilds:
                return discord_error(403, 50001, "Missing Access")
            return self.guild_commands.setdefault(gid, [])
        return self.commands

    async def _r_get_commands(self, req: _Req) -> web.Response:
        commands = self._command_list(req)
        if isinstance(commands, web.Response):
            return commands
        return json_response(commands)

    async def _r_put_commands(self, req: _Req) -> web.Response:
        current = self._command_list(req)
        if isinstance(current, web.Response):
            return current
        body = req.body
        if not isinstance(body, list):
            err = _field_error("_", "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
            return discord_error(400, 50035, "Invalid Form Body", err)
        errors: dict[str, Any] = {}
        seen: set[tuple[str, int]] = set()
        for index, cmd in enumerate(body):
            problem = self._command_problem(cmd)
            key = (str(cmd.get("name")), int(cmd.get("type", 1)))
            if problem is None and key in seen:
                problem = ("name", "APPLICATION_COMMANDS_DUPLICATE_NAME", "Duplicate name")
            seen.add(key)
            if problem is not None:
                errors.update(_field_error(f"{index}.{problem[0]}", problem[1], problem[2]))
        if len([c for c in body if int(c.get("type", 1)) == 1]) > 100:
            errors.update(_field_error("_", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer"))
        if errors:
            return discord_error(400, 50035, "Invalid Form Body", errors)
        old_ids = {(c["name"], c.get("type", 1)): c["id"] for c in current}
        gid = req.params.get("gid")
        echoed = []
        for cmd in body:
            ctype = int(cmd.get("type", 1))
            out = {
                "id": old_ids.get((cmd["name"], ctype)) or _sid(self.snowflake()),
                "application_id": _sid(self.application_id),
                "version": _sid(self.snowflake()),
                "type": ctype,
                "name": cmd["name"],
                "name_localizations": cmd.get("name_localizations"),
                "description": cmd.get("description", ""),
                "description_localizations": cmd.get("description_localizations"),
                "default_member_permissions": cmd.get("default_member_permissions"),
                "dm_permission": cmd.get("dm_permission", True),
                "contexts": cmd.get("contexts"),
                "integration_types": cmd.get("integration_types", [0]),
                "nsfw": cmd.get("nsfw", False),
            }
            if cmd.get("options"):
                out["options"] = copy.deepcopy(cmd["options"])
            if gid is not None:
                out["guild_id"] = gid
            echoed.append(out)
        current[:] = echoed
        return json_response(echoed)

    def _command_problem(self, cmd: Any) -> tuple[str, str, str] | None:
        if not isinstance(cmd, Mapping):
            return ("_", "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        name = str(cmd.get("name") or "")
        ctype = int(cmd.get("type", 1))
        if ctype == 1:
            if not _COMMAND_NAME_RE.fullmatch(name) or name != name.lower():
                return ("name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
            if not 1 <= len(str(cmd.get("description") or "")) <= 100:
                return ("description", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100")
            return self._options_problem(cmd.get("options") or [], "options")
        if not 1 <= len(name) <= 32:
            return ("name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")
        if cmd.get("description"):
            return ("description", "APPLICATION_COMMAND_CONTEXT_MENU_DESCRIPTION", "Not allowed")
        return None

    def _options_problem(self, options: list[Any], where: str) -> tuple[str, str, str] | None:
        if len(options) > 25:
            return (where, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        seen_optional = False
        for i, opt in enumerate(options):
            here = f"{where}.{i}"
            name = str(opt.get("name") or "")
            if not _COMMAND_NAME_RE.fullmatch(name) or name != name.lower():
                return (f"{here}.name", "APPLICATION_COMMAND_INVALID_NAME", "Name is invalid")
            if not 1 <= len(str(opt.get("description") or "")) <= 100:
                return (f"{here}.description", "BASE_TYPE_BAD_LENGTH", "Must be 1 to 100")
            if len(opt.get("choices") or []) > 25:
                return (f"{here}.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer")
            if opt.get("type") in (1, 2):
                nested = self._options_problem(opt.get("options") or [], f"{here}.options")
                if nested is not None:
                    return nested
                continue
            if opt.get("required"):
                if seen_optional:
                    return (
                        here,
                        "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                        "Required options must be placed before non-required options",
                    )
            else:
                seen_optional = True
        return None


# ---------------------------------------------------------------------------------------------
# Pointing discord.py at the emulator


class DiscordPatch:
    """Points discord.py at an emulator; undo with `restore` or by leaving the ``with`` (or
    ``async with``, so it can share a line with the emulator)."""

    def __init__(self, emulator: DiscordEmulator) -> None:
        import discord.gateway
        import discord.http
        import yarl

        self._route = discord.http.Route
        self._ws = discord.gateway.DiscordWebSocket
        self._saved = (self._route.BASE, self._ws.DEFAULT_GATEWAY)
        self._route.BASE = emulator.api_base
        self._ws.DEFAULT_GATEWAY = yarl.URL(emulator.gateway_url)
        self._active = True

    def restore(self) -> None:
        if self._active:
            self._route.BASE, self._ws.DEFAULT_GATEWAY = self._saved
            self._active = False

    def __enter__(self) -> DiscordPatch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.restore()

    async def __aenter__(self) -> DiscordPatch:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.restore()


def patch_discord(emulator: DiscordEmulator) -> DiscordPatch:
    """Set ``discord.http.Route.BASE`` and ``DiscordWebSocket.DEFAULT_GATEWAY`` to the
    emulator now; the returned object restores them (``restore()`` or use it in ``with``)."""
    return DiscordPatch(emulator)


async def _no_identify_delay(shard_id: int | None, *, initial: bool = False) -> None:
    return None


def make_fast(client: discord.Client, *, guild_ready_timeout: float = 0.05) -> discord.Client:
    """Remove discord.py's test-unfriendly waits on a client: the 5 s sleep before every
    re-IDENTIFY (``before_identify_hook``) and the 2 s wait for more GUILD_CREATEs before
    ``on_ready`` (``guild_ready_timeout``)."""
    client.before_identify_hook = _no_identify_delay  # type: ignore[method-assign]
    client._connection.guild_ready_timeout = guild_ready_timeout
    return client


async def start_client(
    client: discord.Client, emulator: DiscordEmulator, *, timeout: float = 5.0
) -> asyncio.Task[None]:
    """Log in and run ``client.connect()`` as a task; return it once the client is ready.
    If the connection task fails first, its exception is raised here."""
    await client.login(emulator.token)
    task = asyncio.create_task(client.connect(), name="discord-client-connect")
    ready = asyncio.create_task(client.wait_until_ready())
    done, _ = await asyncio.wait({task, ready}, timeout=timeout, return_when="FIRST_COMPLETED")
    if ready not in done:
        ready.cancel()
        if task in done:
            task.result()  # raises the connection error
            raise RuntimeError("discord client stopped before it was ready")
        await stop_client(client, task)
        raise TimeoutError(f"discord client not ready within {timeout}s")
    return task


async def stop_client(client: discord.Client, task: asyncio.Task[None] | None = None) -> None:
    """Close the client and wait for its connection task to end."""
    await client.close()
    if task is not None:
        try:
            await asyncio.wait_for(task, timeout=5.0)
        except (asyncio.CancelledError, TimeoutError):
            task.cancel()
