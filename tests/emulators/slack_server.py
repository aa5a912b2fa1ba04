"""Loopback emulators for Slack, so the real slack-bolt and slack_sdk clients run in tests.

Three pieces, all served by aiohttp on 127.0.0.1 with a random free port:

- `SlackWebAPI`: a mock Web API (``https://slack.com/api/``) with an in-memory workspace
  (channels, messages, users), failure injection, the files_upload_v2 upload URL, recorded
  ``response_url`` posts and ``oauth.v2.access`` for install flows.
- `SocketModeServer`: a Socket Mode websocket endpoint that ``apps.connections.open`` points at.
- Payload helpers (`sign_request`, `event_envelope`, `message_event`, `slash_command_form`, ...)
  and `serve_bolt_app` / `post_signed` to drive an `AsyncApp` over HTTP.

Nothing here reaches the network: point ``AsyncWebClient(base_url=api.base_url)`` at the mock.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import inspect
import itertools
import json
import logging
import math
import mimetypes
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiohttp
from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

log = logging.getLogger(__name__)

TEAM_ID = "T1"
TEAM_NAME = "Hearth Test"
TEAM_DOMAIN = "hearth-test"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
BOT_NAME = "hearth"
APP_ID = "A1"
DEFAULT_BOT_SCOPES = (
    "app_mentions:read,channels:history,channels:read,chat:write,commands,files:write,"
    "groups:history,groups:read,im:history,im:read,im:write,reactions:write,users:read"
)

# Methods that authenticate with client credentials instead of a token.
_NO_TOKEN_METHODS = frozenset({"oauth.v2.access", "oauth.v2.exchange", "oauth.access", "api.test"})
_TS_BASE = 1_700_000_000

Handler = Callable[[dict[str, Any], "Call"], "dict[str, Any] | Awaitable[dict[str, Any]]"]


class Call(NamedTuple):
    """One recorded Web API request: method, merged params and request headers."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]

    @property
    def token(self) -> str | None:
        """The token the caller sent (Bearer header or ``token`` param)."""
        for key, value in self.headers.items():
            if key.lower() == "authorization" and value.startswith("Bearer "):
                return value[len("Bearer ") :]
        token = self.params.get("token")
        return token if isinstance(token, str) else None


@dataclass
class _Injected:
    status: int
    headers: dict[str, str]
    body: Any
    remaining: int | None  # None: forever


def _truthy(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True")


def _maybe_json(value: Any) -> Any:
    """Form/query params carry lists and dicts as JSON strings; decode those."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _ts_key(ts: str) -> Decimal:
    return Decimal(ts)


def _parse_bound(value: Any, default: Decimal) -> Decimal:
    if value in (None, ""):
        return default
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return default


def _encode_cursor(kind: str, value: Any) -> str:
    return base64.b64encode(f"{kind}:{value}".encode()).decode()


def _decode_cursor(cursor: str, kind: str) -> str | None:
    try:
        decoded = base64.b64decode(cursor.encode(), validate=True).decode()
    except ValueError:
        return None
    prefix = f"{kind}:"
    return decoded[len(prefix) :] if decoded.startswith(prefix) else None


def _limit(params: Mapping[str, Any], default: int = 100) -> int:
    try:
        value = int(params.get("limit") or default)
    except (TypeError, ValueError):
        value = default
    return max(1, min(value, 1000))


def _tz_offset(tz: str) -> int:
    try:
        offset = datetime.now(ZoneInfo(tz)).utcoffset()
    except (ZoneInfoNotFoundError, ValueError):
        return 0
    return int(offset.total_seconds()) if offset is not None else 0


async def _start_site(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    # A short shutdown timeout: cleanup must not hang on a websocket or keep-alive connection.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_port = runner.addresses[0][1]
    return runner, bound_port


class SlackWebAPI:
    """A mock Slack Web API on loopback with an in-memory workspace.

    Every request is recorded in `calls`. Unknown methods answer ``{"ok": true}``; register
    extra behaviour with `set_handler`. Use `fail_next` / `error_next` to inject 429s, 5xx and
    ``{"ok": false}`` answers.
    """

    def __init__(
        self,
        *,
        team_id: str = TEAM_ID,
        team_name: str = TEAM_NAME,
        team_domain: str = TEAM_DOMAIN,
        bot_user_id: str = BOT_USER_ID,
        bot_id: str = BOT_ID,
        bot_name: str = BOT_NAME,
        app_id: str = APP_ID,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.team_id = team_id
        self.team_name = team_name
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_name = bot_name
        self.app_id = app_id
        self.host = host
        self.port = port

        self.calls: list[Call] = []
        self.responses: list[tuple[str, Any]] = []
        """``(name, json_body)`` posted to `response_url` URLs, in order."""
        self.views: dict[str, dict[str, Any]] = {}
        """Latest published App Home view per user id (``views.publish``)."""
        self.uploads: dict[str, dict[str, Any]] = {}
        """files_upload_v2 uploads by file id: filename, length, content bytes, title..."""
        self.files: dict[str, dict[str, Any]] = {}
        """Completed file objects by file id, as ``files.completeUploadExternal`` returned them."""
        self.reactions: list[tuple[str, str, str, str]] = []
        """``(channel, ts, name, user)`` for every ``reactions.add``."""
        self.tokens: dict[str, dict[str, Any]] = {}
        """Identity per token (team_id, team, user_id, bot_id); others map to the default bot."""
        self.revoked_tokens: set[str] = set()
        self.socket_mode_url: str | None = None
        """What ``apps.connections.open`` answers; `SocketModeServer` sets it."""
        self.oauth_client_id: str | None = None
        self.oauth_client_secret: str | None = None
        """When set, ``oauth.v2.access`` checks the client credentials against these."""

        self._channels: dict[str, dict[str, Any]] = {}
        self._messages: dict[str, list[dict[str, Any]]] = {}
        self._users: dict[str, dict[str, Any]] = {}
        self._dms: dict[tuple[str, ...], str] = {}
        self._oauth_codes: dict[str, dict[str, Any]] = {}
        self._used_codes: set[str] = set()
        self._failures: dict[str, list[_Injected]] = {}
        self._handlers: dict[str, Handler] = self._builtin_handlers()
        self._ids = itertools.count(1)
        self._ts_counter = 0
        self._max_ts = Decimal(_TS_BASE)
        self._cond: asyncio.Condition | None = None
        self._runner: web.AppRunner | None = None
        self.root_url = ""

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> SlackWebAPI:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/upload/v1/{file_id}", self._handle_upload)
        app.router.add_post("/response/{name}", self._handle_response_url)
        self._cond = asyncio.Condition()
        self._runner, self.port = await _start_site(app, self.host, self.port)
        self.root_url = f"http://{self.host}:{self.port}"
        log.debug("mock Slack Web API on %s", self.root_url)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackWebAPI:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """The value for ``AsyncWebClient(base_url=...)`` (ends in ``/api/``)."""
        return f"{self.root_url}/api/"

    def response_url(self, name: str = "default") -> str:
        """A loopback ``response_url``; JSON posted to it lands in `responses`."""
        return f"{self.root_url}/response/{name}"

    # ------------------------------------------------------------------ seeding

    def add_user(
        self,
        user_id: str,
        name: str | None = None,
        *,
        real_name: str | None = None,
        display_name: str | None = None,
        is_admin: bool = False,
        is_owner: bool = False,
        is_bot: bool = False,
        tz: str = "UTC",
        deleted: bool = False,
        team_id: str | None = None,
        email: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Add (or replace) a workspace member served by users.info / users.list."""
        name = name or user_id.lower()
        real_name = real_name if real_name is not None else name.title()
        profile = {
            "real_name": real_name,
            "real_name_normalized": real_name,
            "display_name": display_name if display_name is not None else name,
            "display_name_normalized": display_name if display_name is not None else name,
            "first_name": real_name.split(" ")[0] if real_name else "",
            "last_name": " ".join(real_name.split(" ")[1:]) if real_name else "",
            "image_72": f"https://avatars.example.invalid/{user_id}_72.png",
            "team": team_id or self.team_id,
        }
        if email is not None:
            profile["email"] = email
        if is_bot:
            profile["bot_id"] = extra.pop("bot_id", f"B{user_id[1:]}")
        user = {
            "id": user_id,
            "team_id": team_id or self.team_id,
            "name": name,
            "deleted": deleted,
            "real_name": real_name,
            "tz": tz,
            "tz_label": tz,
            "tz_offset": _tz_offset(tz),
            "profile": {**profile, **extra.pop("profile", {})},
            "is_admin": is_admin or is_owner,
            "is_owner": is_owner,
            "is_primary_owner": extra.pop("is_primary_owner", False),
            "is_restricted": extra.pop("is_restricted", False),
            "is_ultra_restricted": extra.pop("is_ultra_restricted", False),
            "is_bot": is_bot,
            "is_app_user": extra.pop("is_app_user", False),
            "updated": _TS_BASE,
            **extra,
        }
        self._users[user_id] = user
        return user

    def add_channel(
        self,
        channel_id: str,
        name: str | None = None,
        *,
        is_private: bool = False,
        is_member: bool = True,
        is_archived: bool = False,
        members: list[str] | None = None,
        topic: str = "",
        purpose: str = "",
        **extra: Any,
    ) -> dict[str, Any]:
        """Add (or replace) a conversation served by conversations.info / .list / .history."""
        is_im = extra.pop("is_im", channel_id.startswith("D"))
        is_mpim = extra.pop("is_mpim", False)
        channel: dict[str, Any] = {
            "id": channel_id,
            "created": _TS_BASE,
            "is_archived": is_archived,
            "is_im": is_im,
            "is_mpim": is_mpim,
            "context_team_id": self.team_id,
        }
        if not is_im:
            channel.update(
                {
                    "name": name or channel_id.lower(),
                    "name_normalized": name or channel_id.lower(),
                    "is_channel": not is_private and not is_mpim,
                    "is_group": is_private and not is_mpim,
                    "is_private": is_private or is_mpim,
                    "is_general": extra.pop("is_general", False),
                    "is_member": is_member,
                    "creator": extra.pop("creator", BOT_USER_ID),
                    "topic": {"value": topic, "creator": "", "last_set": 0},
                    "purpose": {"value": purpose, "creator": "", "last_set": 0},
                    "num_members": len(members) if members is not None else 0,
                }
            )
        else:
            channel.update({"is_org_shared": False, "is_user_deleted": False, "priority": 0})
        if members is not None:
            channel["members"] = list(members)
        channel.update(extra)
        self._channels[channel_id] = channel
        self._messages.setdefault(channel_id, [])
        return channel

    def add_message(self, channel: str, msg: Mapping[str, Any]) -> dict[str, Any]:
        """Store a message (a copy) in a channel's history; fills ``type``/``ts`` if missing.

        A message with a ``thread_ts`` other than its own ``ts`` is a reply: the parent's
        ``reply_count``, ``reply_users`` and ``latest_reply`` are updated like Slack does.
        """
        if channel not in self._channels:
            self.add_channel(channel)
        stored = {"type": "message", **msg}
        stored.setdefault("ts", self._next_ts())
        ts = stored["ts"]
        self._max_ts = max(self._max_ts, _ts_key(ts))
        history = self._messages[channel]
        history.append(stored)
        history.sort(key=lambda m: _ts_key(m["ts"]))
        thread_ts = stored.get("thread_ts")
        if thread_ts and thread_ts != ts:
            parent = self._find_message(channel, thread_ts)
            if parent is not None:
                parent["thread_ts"] = thread_ts
                parent["reply_count"] = parent.get("reply_count", 0) + 1
                users = parent.setdefault("reply_users", [])
                if stored.get("user") and stored["user"] not in users:
                    users.append(stored["user"])
                parent["reply_users_count"] = len(users)
                parent["latest_reply"] = max(parent.get("latest_reply", ts), ts, key=_ts_key)
        return stored

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """All stored messages of a channel (replies included), oldest first."""
        return list(self._messages.get(channel, []))

    def add_oauth_code(
        self,
        code: str,
        *,
        team_id: str | None = None,
        team_name: str | None = None,
        bot_user_id: str | None = None,
        bot_id: str | None = None,
        installer_user_id: str = "U1",
        scope: str = DEFAULT_BOT_SCOPES,
        enterprise: dict[str, str] | None = None,
        access_token: str | None = None,
    ) -> None:
        """Make ``oauth.v2.access`` answer ``code`` with this workspace (else: the default one)."""
        self._oauth_codes[code] = {
            "team_id": team_id or self.team_id,
            "team_name": team_name or self.team_name,
            "bot_user_id": bot_user_id or self.bot_user_id,
            "bot_id": bot_id or self.bot_id,
            "installer_user_id": installer_user_id,
            "scope": scope,
            "enterprise": enterprise,
            "access_token": access_token,
        }

    def set_handler(self, method: str, handler: Handler) -> None:
        """Answer ``method`` with ``handler(params, call)``, sync or async; ``ok`` defaults true."""
        self._handlers[method] = handler

    # ------------------------------------------------------------------ failure injection

    def fail_next(
        self,
        method: str,
        status: int = 429,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        times: int | None = 1,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with an HTTP error (None: forever).

        For 429 the default headers are ``{"Retry-After": "1"}`` and the default body
        ``{"ok": false, "error": "ratelimited"}``. Note slack_sdk's rate-limit retry handler
        sleeps ``Retry-After + random()`` seconds, so use ``"0"`` in tests to keep them fast.
        """
        if headers is None:
            headers = {"Retry-After": "1"} if status == 429 else {}
        if body is None:
            error = "ratelimited" if status == 429 else f"http_{status}"
            body = {"ok": False, "error": error}
        self._failures.setdefault(method, []).append(
            _Injected(status=status, headers=dict(headers), body=body, remaining=times)
        )

    def error_next(self, method: str, error: str, *, times: int | None = 1, **extra: Any) -> None:
        """Answer the next ``times`` calls of ``method`` with HTTP 200 ``{"ok": false, ...}``."""
        self.fail_next(
            method, status=200, headers={}, body={"ok": False, "error": error, **extra}, times=times
        )

    def clear_failures(self) -> None:
        self._failures.clear()

    def revoke_token(self, token: str) -> None:
        """Calls with ``token`` from now on answer ``token_revoked``."""
        self.revoked_tokens.add(token)

    # ------------------------------------------------------------------ inspection / waiting

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        """The params of every recorded call to ``method``, in order."""
        return [c.params for c in self.calls if c.method == method]

    async def wait_for_call(
        self,
        method: str,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        *,
        count: int = 1,
        timeout: float = 5.0,
    ) -> Call:
        """Wait for ``count`` calls to ``method`` (matching ``predicate``); return the last one.

        Listeners run after the ack, so tests wait for their Web API calls instead of sleeping.
        """

        def matching() -> list[Call]:
            return [
                c
                for c in self.calls
                if c.method == method and (predicate is None or predicate(c.params))
            ]

        await self._wait(lambda: len(matching()) >= count, timeout, f"{count} call(s) to {method}")
        return matching()[count - 1]

    async def wait_for_response(self, name: str = "default", *, timeout: float = 5.0) -> Any:
        """Wait for the first JSON body posted to `response_url` ``name`` and return it."""

        def found() -> list[Any]:
            return [body for n, body in self.responses if n == name]

        await self._wait(lambda: bool(found()), timeout, f"a post to response_url {name!r}")
        return found()[0]

    async def _wait(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        assert self._cond is not None, "start() the SlackWebAPI first"
        try:
            async with asyncio.timeout(timeout):
                async with self._cond:
                    await self._cond.wait_for(ready)
        except TimeoutError:
            seen = [c.method for c in self.calls]
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what}; calls: {seen}"
            ) from None

    async def _notify(self) -> None:
        if self._cond is not None:
            async with self._cond:
                self._cond.notify_all()

    # ------------------------------------------------------------------ HTTP plumbing

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            params.update(await self._read_body(request))
        call = Call(method, params, dict(request.headers))
        self.calls.append(call)
        try:
            return await self._answer(method, params, call)
        finally:
            # Waiters wake after the store reflects this call.
            await self._notify()

    async def _answer(self, method: str, params: dict[str, Any], call: Call) -> web.Response:
        injected = self._take_failure(method)
        if injected is not None:
            if isinstance(injected.body, (dict, list)):
                return web.json_response(
                    injected.body, status=injected.status, headers=injected.headers
                )
            text = injected.body.decode() if isinstance(injected.body, bytes) else injected.body
            return web.Response(text=str(text), status=injected.status, headers=injected.headers)

        auth_error = self._check_auth(call)
        if auth_error is not None:
            return web.json_response({"ok": False, "error": auth_error})

        handler = self._handlers.get(method, self._generic)
        result = handler(params, call)
        if inspect.isawaitable(result):
            result = await result
        body = {"ok": True, **result} if "ok" not in result else result
        return web.json_response(body)

    @staticmethod
    async def _read_body(request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            data = await request.json()
            return data if isinstance(data, dict) else {"_json": data}
        if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            out: dict[str, Any] = {}
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    out[key] = {
                        "filename": value.filename,
                        "content_type": value.content_type,
                        "content": value.file.read(),
                    }
                else:
                    out[key] = value
            return out
        raw = await request.read()
        return {"_raw": raw} if raw else {}

    def _take_failure(self, method: str) -> _Injected | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        injected = queue[0]
        if injected.remaining is not None:
            injected.remaining -= 1
            if injected.remaining <= 0:
                queue.pop(0)
        return injected

    def _check_auth(self, call: Call) -> str | None:
        if call.method in _NO_TOKEN_METHODS:
            return None
        token = call.token
        if not token:
            return "not_authed"
        if token in self.revoked_tokens:
            return "token_revoked"
        return None

    async def _handle_upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        upload = self.uploads.get(file_id)
        if upload is None:
            return web.Response(status=404, text="file not found")
        upload["content"] = await request.read()
        await self._notify()
        return web.Response(text=f"OK - {len(upload['content'])}")

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        self.responses.append((name, body))
        await self._notify()
        return web.Response(text="ok")

    # ------------------------------------------------------------------ store helpers

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08d}"

    def _next_ts(self) -> str:
        self._ts_counter += 1
        seconds = max(_TS_BASE + self._ts_counter, math.floor(self._max_ts) + 1)
        ts = f"{seconds}.{self._ts_counter % 1_000_000:06d}"
        self._max_ts = Decimal(ts)
        return ts

    def _find_message(self, channel: str, ts: str) -> dict[str, Any] | None:
        for msg in self._messages.get(channel, []):
            if msg.get("ts") == ts:
                return msg
        return None

    def _identity(self, call: Call) -> dict[str, Any]:
        token = call.token
        if token is not None and token in self.tokens:
            return self.tokens[token]
        return {
            "team_id": self.team_id,
            "team": self.team_name,
            "user_id": self.bot_user_id,
            "user": self.bot_name,
            "bot_id": self.bot_id,
        }

    def _dm_for(self, users: list[str]) -> str:
        key = tuple(sorted(users))
        channel_id = self._dms.get(key)
        if channel_id is None:
            prefix = "D" if len(key) == 1 else "G"
            channel_id = self._next_id(prefix)
            self._dms[key] = channel_id
            if len(key) == 1:
                self.add_channel(channel_id, is_im=True, user=key[0])
            else:
                self.add_channel(
                    channel_id, f"mpdm-{'--'.join(key)}-1", is_mpim=True, members=list(key)
                )
        return channel_id

    def _resolve_channel(self, channel: str) -> str:
        """Posting to a user id lands in the DM with that user, as on Slack."""
        if channel[:1] in ("U", "W"):
            return self._dm_for([channel])
        if channel not in self._channels:
            self.add_channel(channel)
        return channel

    @staticmethod
    def _page(items: list[Any], params: Mapping[str, Any]) -> tuple[list[Any], str] | None:
        """Offset cursor pagination for list methods; None for a bad cursor."""
        start = 0
        cursor = params.get("cursor")
        if cursor:
            raw = _decode_cursor(str(cursor), "offset")
            if raw is None or not raw.isdigit():
                return None
            start = int(raw)
        end = start + _limit(params)
        next_cursor = _encode_cursor("offset", end) if end < len(items) else ""
        return items[start:end], next_cursor

    # ------------------------------------------------------------------ method handlers

    def _builtin_handlers(self) -> dict[str, Handler]:
        return {
            "api.test": lambda params, call: {"args": params},
            "auth.test": self._auth_test,
            "apps.connections.open": self._apps_connections_open,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.getPermalink": self._chat_get_permalink,
            "conversations.open": self._conversations_open,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "conversations.list": self._conversations_list,
            "conversations.info": self._conversations_info,
            "conversations.members": self._conversations_members,
            "conversations.join": self._conversations_join,
            "users.info": self._users_info,
            "users.list": self._users_list,
            "users.lookupByEmail": self._users_lookup_by_email,
            "views.publish": self._views_publish,
            "views.open": self._views_open,
            "views.push": self._views_open,
            "views.update": self._views_update,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
            "files.info": self._files_info,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "oauth.v2.access": self._oauth_v2_access,
        }

    @staticmethod
    def _generic(params: dict[str, Any], call: Call) -> dict[str, Any]:
        return {}

    def _auth_test(self, params: dict[str, Any], call: Call) -> dict[str, Any]:
        ident = self._identity(call)
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": ident["team"],
            "user": ident.get("user", self.bot_name),
            "team_id": ident["team_id"],
            "user_id": ident["user_id"],
            "bot_id": ident.get("bot_id"),
            "is_enterprise_install": False,
        }

    def _apps_connections_open(self, params: dict[str, Any], call: Call) -> dict[str, Any]:
        if not (call.token or "").startswith("xapp-"):
            return {"ok": False, "error": "not_allowed_token_type"}
        if self.socket_mode_url is None:
            return {"ok": False, "error": "socket_mode_not_enabled"}
        return {"url": self.socket_mode_url}

    def _chat_post_message(self, params: dict[str, Any], call: Call) -> dict[str, Any]:
        if not params.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not (params.get("text") or params.get("blocks") or params.get("attachments")):
            return {"ok": False, "error": "no_text"}
        channel = self._resolve_channel(str(params["channel"]))
        ident = self._identity(call)
        msg: dict[str, Any] = {
            "type": "message",
            "user": ident["user_id"],
            "bot_id": ident.get("bot_id"),
            "app_id": self.app_id,
            "text": params.get("text") or "",
            "team": ident["team_id"],
            "ts": self._next_ts(),
        }
        for key in ("blocks", "attachments", "metadata"):
            if params.get(key):
                msg[key] = _maybe_json(params[key])
        if params.get("thread_ts"):
            msg["thread_ts"] = str(params["thread_ts"])
            msg["parent_user_id"] = (self._find_message(channel, msg["thread_ts"]) or {}).get(
                "user"
            )
            if _truthy(params.get("reply_broadcast")):
                msg["subtype"] = "thread_broadcast"
        stored = self.add_message(channel, msg)
        return {"channel": channel, "ts": stored["ts"], "message": dict(stored)}

    def _chat_post_ephemeral(self, params: dict[str, Any], call: Call) -> dict[str, Any]:
        if not params.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not params.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        return {"message_ts": self._next_ts()}

    def _chat_update(self, params: dict[str, Any], call: Call) -> dict[str, Any]:
        channel, ts = str(params.get("channel", "")), str(params.get("ts", ""))
        msg = self._find_message(channel, ts)
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        for key in ("text", "blocks", "attachments", "metadata"):
            if key in params:
                msg[key] = _maybe_json(params[key])
        msg["edited"] = {"user": self._identity(call)["user_id"], "ts": self._next_ts()}
        return {"channel": channel, "ts": ts, "text": msg.get("text", ""), "message": dict(msg)}

    def _chat_delete(self, params: dict[str, Any], call: Call) -> dict[str, Any]:
        channel, ts = str(params.get("channel", "")), str(params.get("ts", ""))
        msg = self._find_message(channel, ts)
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        self._messages[channel].remove(msg)
        return {"channel": channel, "ts": ts}

    def _chat_get_permalink(self, params: dict[str, Any], call: Call) -> dict[str, Any]:
        channel, ts = str(params.get("channel", "")), str(params.get("message_ts", ""))
        link = f"https://{self.team_domain}.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        return {"channel": channel, "permalink": link}

    def _conversations_open(self, params: dict[str, Any], call: Call) -> dict[str, Any]:
        if params.get("channel"):
            channel = self._channels.get(str(params["channel"]))
            if channel is None:
                return {"ok": False, "error": "channel_not_found"}
            return {"no_op": True, "already_open": True, "channel": {"id": channel["id"]}}
        users = [u for u in str(params.get("users") or "").split(",") if u]
        if not users:
            return {"ok": False, "error": "users_list_not_supplied"}
        existed = tuple(sorted(users)) in self._dms
        channel_id = self._dm_for(users)
        channel = {"id": channel_id}
        if _truthy(params.get("return_im")):
            channel = dict(self._channels[channel_id])
        return {"no_op": existed, "already_open": existed, "channel": channel}

    @staticmethod
    def _is_top_level(msg: Mapping[str, Any]) -> bool:
        thread_ts = msg.get("thread_ts")
        return (
            thread_ts is None or thread_ts == msg["ts"] or msg.get("subtype") == "thread_broadcast"
        )

    def _ts_window(
        self, msgs: list[dict[str, Any]], params: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        oldest = _parse_bound(params.get("oldest"), Decimal(0))
        latest = _parse_bound(params.get("latest"), Decimal("Infinity"))
        inclusive = _truthy(params.get("inclusive"))

        def inside(msg: Mapping[str, Any]) -> bool:
            ts = _ts_key(msg["ts"])
            if inclusive:
                return oldest <= ts <= latest
            return oldest < ts < latest

        return [m for m in msgs if inside(m)]

    def _conversations_history(self, params: dict[str, Any], call: Call) -> dict[str, Any]:
        channel = str(params.get("channel", ""))
        if channel not in self._channels:
            return {"ok": False, "error": "channel_not_found"}
        msgs = [m for m in self._messages[channel] if self._is_top_level(m)]
        msgs = sorted(self._ts_window(msgs, params), key=lambda m: _ts_key(m["ts"]), reverse=True)
        if params.get("cursor"):
            before = _decode_cursor(str(params["cursor"]), "next_ts")
            if before is None:
                return {"ok": False, "error": "invalid_cursor"}
            msgs = [m for m in msgs if _ts_key(m["ts"]) <= Decimal(before)]
        limit = _limit(params)
        page, has_more = msgs[:limit], len(msgs) > limit
        next_cursor = _encode_cursor("next_ts", msgs[limit]["ts"]) if has_more else ""
        return {
            "messages": [dict(m) for m in page],
            "has_more": has_more,
            "pin_count": 0,
            "channel_actions_ts": None,
            "channel_actions_count": 0,
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _conversations_replies(self, params: dict[str, Any], call: Call) -> dict[str, Any]:
        channel, ts = str(params.get("channel", "")), str(params.get("ts", ""))
        if channel not in self._channels:
            return {"ok": False, "error": "channel_not_found"}
        parent = self._find_message(channel, ts)
        if parent is None:
            return {"ok": False, "error": "thread_not_found"}
        thread = [parent] + [
            m for m in self._messages[channel] if m.get("thread_ts") == ts and m["ts"] != ts
        ]
        thread = sorted(self._ts_window(thread, params), key=lambda m: _ts_key(m["ts"]))
        if params.get("cursor"):
            after = _decode_cursor(str(params["cursor"]), "next_ts")
            if after is None:
                return {"ok": False, "error": "invalid_cursor"}
            thread = [m for m in thread if _ts_key(m["ts"]) >= Decimal(after)]
        limit = _limit(params, default=1000)
        page, has_more = thread[:limit], len(thread) > limit
        next_cursor = _encode_cursor("next_ts", thread[limit]["ts"]) if has_more else ""
        return {
            "messages": [dict(m) for m in page],
            "has_more": has_more,
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _conversations_list(self, params: dict[str, Any], call: Call) -> dict[str, Any]:
        types = set(str(params.get("types") or "public_channel").split(","))
        exclude_archived = _truthy(params.get("exclude_archived"))

        def kind(channel: Mapping[str, Any]) -> str:
            if channel.get("is_im"):
                return "im"
            if channel.get("is_mpim"):
                return "mpim"
            return "private_channel" if channel.get("is_private") else "public_channel"

        channels = [
            dict(c)
            for c in self._channels.values()
            if kind(c) in types and not (exclude_archived and c.get("is_archived"))
        ]
        paged = self._page(channels, params)
        if paged is None:
            return {"ok": False, "error": "invalid_cursor"}
        page, next_cursor = paged
        return {"channels": page, "response_metadata": {"next_cursor": next_cursor}}

    def _conversations_info(self, params: dict[str, Any], call: Call) -> dict[str, Any]:
        channel = self._channels.get(str(params.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        return {"channel": dict(channel)}

    def _conversations_members(self, params: dict[str, Any], call: Call) -> dict[str, Any]:
        channel = self._channels.get(str(params.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        paged = self._page(list(channel.get("members", [])), params)
        if paged is None:
            return {"ok": False, "error": "invalid_cursor"}
        page, next_cursor = paged
        return {"members": page, "response_metadata": {"next_cursor": next_cursor}}

    def _conversations_join(self, params: dict[str, Any], call: Call) -> dict[str, Any]:
        channel = self._channels.get(str(params.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        already = bool(channel.get("is_member"))
        channel["is_member"] = True
        return {"channel": dict(channel), **({"warning": "already_in_channel"} if already else {})}

    def _users_info(self, params: dict[str, Any], call: Call) -> dict[str, Any]:
        user = self._users.get(str(params.get("user", "")))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"user": dict(user)}

    def _users_list(self, params: dict[str, Any], call: Call) -> dict[str, Any]:
        paged = self._page([dict(u) for u in self._users.values()], params)
        if paged is None:
            return {"ok": False, "error": "invalid_cursor"}
        page, next_cursor = paged
        return {
            "members": page,
            "cache_ts": _TS_BASE,
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _users_lookup_by_email(self, params: dict[str, Any], call: Call) -> dict[str, Any]:
        for user in self._users.values():
            if user["profile"].get("email") == params.get("email"):
                return {"user": dict(user)}
        return {"ok": False, "error": "users_not_found"}

    def _view_object(self, view: Any, call: Call, view_id: str | None = None) -> dict[str, Any]:
        view = _maybe_json(view)
        if not isinstance(view, dict):
            view = {}
        ident = self._identity(call)
        return {
            "id": view_id or self._next_id("V"),
            "team_id": ident["team_id"],
            "type": view.get("type", "modal"),
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
            "state": {"values": {}},
            "hash": f"{_TS_BASE}.{next(self._ids):08x}",
            "title": view.get("title"),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "clear_on_close": view.get("clear_on_close", False),
            "notify_on_close": view.get("notify_on_close", False),
            "root_view_id": view_id,
            "previous_view_id": None,
            "app_id": self.app_id,
            "bot_id": ident.get("bot_id"),
        }

    def _views_publish(self, params: dict[str, Any], call: Call) -> dict[str, Any]:
        user_id = str(params.get("user_id", ""))
        if not user_id:
            return {"ok": False, "error": "invalid_arguments"}
        previous = self.views.get(user_id)
        view = self._view_object(params.get("view"), call, previous["id"] if previous else None)
        self.views[user_id] = view
        return {"view": view}

    def _views_open(self, params: dict[str, Any], call: Call) -> dict[str, Any]:
        if not params.get("trigger_id") and not params.get("interactivity_pointer"):
            return {"ok": False, "error": "invalid_arguments"}
        return {"view": self._view_object(params.get("view"), call)}

    def _views_update(self, params: dict[str, Any], call: Call) -> dict[str, Any]:
        if not params.get("view_id") and not params.get("external_id"):
            return {"ok": False, "error": "invalid_arguments"}
        view_id = str(params.get("view_id") or self._next_id("V"))
        return {"view": self._view_object(params.get("view"), call, view_id)}

    def _files_get_upload_url(self, params: dict[str, Any], call: Call) -> dict[str, Any]:
        filename = params.get("filename")
        length = params.get("length")
        if not filename or length in (None, ""):
            return {"ok": False, "error": "invalid_arguments"}
        file_id = self._next_id("F")
        self.uploads[file_id] = {
            "id": file_id,
            "filename": str(filename),
            "length": int(length),
            "alt_txt": params.get("alt_txt"),
            "snippet_type": params.get("snippet_type"),
            "content": None,
        }
        return {"upload_url": f"{self.root_url}/upload/v1/{file_id}", "file_id": file_id}

    def _files_complete_upload(self, params: dict[str, Any], call: Call) -> dict[str, Any]:
        entries = _maybe_json(params.get("files"))
        if not isinstance(entries, list) or not entries:
            return {"ok": False, "error": "invalid_arguments"}
        channels = [c for c in str(params.get("channels") or "").split(",") if c]
        if params.get("channel_id"):
            channels.append(str(params["channel_id"]))
        ident = self._identity(call)
        files = []
        for entry in entries:
            upload = self.uploads.get(str(entry.get("id")))
            if upload is None:
                return {"ok": False, "error": "file_not_found"}
            if upload["content"] is None:
                return {"ok": False, "error": "file_upload_not_completed"}
            name = upload["filename"]
            mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
            file_obj = {
                "id": upload["id"],
                "created": _TS_BASE,
                "timestamp": _TS_BASE,
                "name": name,
                "title": entry.get("title") or name,
                "mimetype": mimetype,
                "filetype": name.rsplit(".", 1)[-1] if "." in name else "binary",
                "user": ident["user_id"],
                "user_team": ident["team_id"],
                "size": len(upload["content"]),
                "is_external": False,
                "url_private": f"{self.root_url}/files-pri/{upload['id']}/{name}",
                "permalink": f"https://{self.team_domain}.slack.com/files/{upload['id']}",
                "channels": [c for c in channels if not c.startswith(("G", "D"))],
                "groups": [c for c in channels if c.startswith("G")],
                "ims": [c for c in channels if c.startswith("D")],
                "alt_txt": upload.get("alt_txt"),
            }
            self.files[upload["id"]] = file_obj
            files.append(file_obj)
        for channel in channels:
            msg: dict[str, Any] = {
                "type": "message",
                "user": ident["user_id"],
                "bot_id": ident.get("bot_id"),
                "text": params.get("initial_comment") or "",
                "files": [dict(f) for f in files],
                "upload": True,
            }
            if params.get("thread_ts"):
                msg["thread_ts"] = str(params["thread_ts"])
            self.add_message(self._resolve_channel(channel), msg)
        return {"files": files}

    def _files_info(self, params: dict[str, Any], call: Call) -> dict[str, Any]:
        file_obj = self.files.get(str(params.get("file", "")))
        if file_obj is None:
            return {"ok": False, "error": "file_not_found"}
        return {"file": dict(file_obj), "comments": [], "response_metadata": {"next_cursor": ""}}

    def _reactions_add(self, params: dict[str, Any], call: Call) -> dict[str, Any]:
        channel, ts = str(params.get("channel", "")), str(params.get("timestamp", ""))
        name = str(params.get("name", "")).strip(":")
        if not name:
            return {"ok": False, "error": "invalid_name"}
        user = self._identity(call)["user_id"]
        # Lenient on purpose: a reaction to a message the test never seeded is still recorded.
        msg = self._find_message(channel, ts)
        if msg is not None:
            reactions = msg.setdefault("reactions", [])
            entry = next((r for r in reactions if r["name"] == name), None)
            if entry is None:
                entry = {"name": name, "users": [], "count": 0}
                reactions.append(entry)
            if user in entry["users"]:
                return {"ok": False, "error": "already_reacted"}
            entry["users"].append(user)
            entry["count"] += 1
        self.reactions.append((channel, ts, name, user))
        return {}

    def _reactions_remove(self, params: dict[str, Any], call: Call) -> dict[str, Any]:
        channel, ts = str(params.get("channel", "")), str(params.get("timestamp", ""))
        name = str(params.get("name", "")).strip(":")
        user = self._identity(call)["user_id"]
        msg = self._find_message(channel, ts)
        if msg is not None:
            entry = next((r for r in msg.get("reactions", []) if r["name"] == name), None)
            if entry is None or user not in entry["users"]:
                return {"ok": False, "error": "no_reaction"}
            entry["users"].remove(user)
            entry["count"] -= 1
            if entry["count"] == 0:
                msg["reactions"].remove(entry)
        return {}

    def _oauth_v2_access(self, params: dict[str, Any], call: Call) -> dict[str, Any]:
        client_id, client_secret = params.get("client_id"), params.get("client_secret")
        for key, value in call.headers.items():
            if key.lower() == "authorization" and value.startswith("Basic "):
                decoded = base64.b64decode(value[len("Basic ") :]).decode()
                client_id, _, client_secret = decoded.partition(":")
        if self.oauth_client_id is not None and client_id != self.oauth_client_id:
            return {"ok": False, "error": "invalid_client_id"}
        if self.oauth_client_secret is not None and client_secret != self.oauth_client_secret:
            return {"ok": False, "error": "bad_client_secret"}
        code = str(params.get("code") or "")
        if not code or code in self._used_codes:
            return {"ok": False, "error": "invalid_code"}
        self._used_codes.add(code)
        grant = self._oauth_codes.get(code)
        if grant is None:
            self.add_oauth_code(code)
            grant = self._oauth_codes[code]
        token = grant["access_token"] or f"xoxb-{grant['team_id']}-{next(self._ids)}"
        self.tokens[token] = {
            "team_id": grant["team_id"],
            "team": grant["team_name"],
            "user_id": grant["bot_user_id"],
            "user": self.bot_name,
            "bot_id": grant["bot_id"],
        }
        return {
            "app_id": self.app_id,
            "authed_user": {"id": grant["installer_user_id"]},
            "scope": grant["scope"],
            "token_type": "bot",
            "access_token": token,
            "bot_user_id": grant["bot_user_id"],
            "team": {"id": grant["team_id"], "name": grant["team_name"]},
            "enterprise": grant["enterprise"],
            "is_enterprise_install": False,
        }


class SocketModeServer:
    """A loopback Socket Mode endpoint (``ws://127.0.0.1:PORT/socket``).

    Give it the `SlackWebAPI` so ``apps.connections.open`` answers with this URL. The test
    pushes envelopes with `send_envelope` and reads the client's acks with `wait_ack`.
    """

    def __init__(
        self,
        api: SlackWebAPI | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/socket",
        app_id: str = APP_ID,
    ) -> None:
        self.api = api
        self.host = host
        self.port = port
        self.path = path
        self.app_id = app_id
        self.url = ""
        self.connections: list[web.WebSocketResponse] = []
        """Currently open client connections, oldest first."""
        self.connection_count = 0
        """Connections accepted since start (reconnects count again)."""
        self.received: list[Any] = []
        """Every text frame the clients sent, decoded from JSON when possible."""
        self.acks: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._cond: asyncio.Condition | None = None
        self._runner: web.AppRunner | None = None

    async def start(self) -> SocketModeServer:
        app = web.Application()
        app.router.add_get(self.path, self._handle_ws)
        self._cond = asyncio.Condition()
        self._runner, self.port = await _start_site(app, self.host, self.port)
        self.url = f"ws://{self.host}:{self.port}{self.path}"
        if self.api is not None:
            self.api.socket_mode_url = self.url
        return self

    async def stop(self) -> None:
        for ws in list(self.connections):
            await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.api is not None and self.api.socket_mode_url == self.url:
            self.api.socket_mode_url = None

    async def __aenter__(self) -> SocketModeServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _handle_ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connection_count += 1
        self.connections.append(ws)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self.connections),
                "debug_info": {
                    "host": "applink-emulator",
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": self.app_id},
            }
        )
        await self._notify()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    data: Any = json.loads(msg.data)
                except ValueError:
                    data = msg.data
                self.received.append(data)
                if isinstance(data, dict) and "envelope_id" in data:
                    self.acks[data["envelope_id"]] = data
                await self._notify()
        finally:
            if ws in self.connections:
                self.connections.remove(ws)
            await self._notify()
        return ws

    async def _notify(self) -> None:
        if self._cond is not None:
            async with self._cond:
                self._cond.notify_all()

    async def _wait(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        assert self._cond is not None, "start() the SocketModeServer first"
        try:
            async with asyncio.timeout(timeout):
                async with self._cond:
                    await self._cond.wait_for(ready)
        except TimeoutError:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None

    async def wait_connected(self, count: int = 1, *, timeout: float = 5.0) -> None:
        """Wait until ``count`` connections have been accepted since start."""
        await self._wait(
            lambda: self.connection_count >= count and bool(self.connections),
            timeout,
            f"{count} socket mode connection(s)",
        )

    async def send_raw(self, message: Mapping[str, Any] | str) -> None:
        """Send a frame to the newest open connection (waits briefly for one)."""
        await self._wait(lambda: bool(self.connections), 5.0, "a socket mode connection")
        ws = self.connections[-1]
        if isinstance(message, str):
            await ws.send_str(message)
        else:
            await ws.send_json(dict(message))

    async def send_envelope(
        self,
        type: str = "events_api",
        payload: Mapping[str, Any] | None = None,
        envelope_id: str | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
        accepts_response_payload: bool | None = None,
    ) -> str:
        """Deliver an envelope (events_api, slash_commands, interactive); return its id."""
        envelope_id = envelope_id or f"env-{next(self._ids):06d}"
        if accepts_response_payload is None:
            accepts_response_payload = type != "events_api"
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "payload": dict(payload or {}),
            "type": type,
            "accepts_response_payload": accepts_response_payload,
        }
        if type == "events_api":
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = retry_reason
        await self.send_raw(envelope)
        return envelope_id

    async def send_disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask the client to reconnect, as Slack does before recycling a connection."""
        await self.send_raw(
            {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-emulator"}}
        )

    async def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """Wait for the client's ack: ``{"envelope_id": ...}`` plus ``payload`` when it sent one."""
        await self._wait(lambda: envelope_id in self.acks, timeout, f"ack of {envelope_id}")
        return self.acks[envelope_id]


# ---------------------------------------------------------------------- signing / payloads


def sign_request(
    signing_secret: str,
    body: bytes | str,
    timestamp: int | None = None,
    *,
    content_type: str | None = None,
) -> dict[str, str]:
    """Headers Slack would send with ``body``: v0 HMAC-SHA256 signature, timestamp, content type.

    The content type is guessed from the body (JSON object or url-encoded form) unless given.
    """
    raw = body.encode() if isinstance(body, str) else body
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(
        signing_secret.encode(), b"v0:" + ts.encode() + b":" + raw, hashlib.sha256
    ).hexdigest()
    if content_type is None:
        content_type = (
            "application/json"
            if raw.lstrip().startswith(b"{")
            else "application/x-www-form-urlencoded"
        )
    return {
        "X-Slack-Signature": f"v0={digest}",
        "X-Slack-Request-Timestamp": ts,
        "Content-Type": content_type,
    }


_event_ids = itertools.count(1)


def event_envelope(
    event: Mapping[str, Any],
    team_id: str = TEAM_ID,
    event_id: str | None = None,
    api_app_id: str = APP_ID,
    *,
    event_time: int | None = None,
    bot_user_id: str = BOT_USER_ID,
    enterprise_id: str | None = None,
) -> dict[str, Any]:
    """An Events API ``event_callback`` body around ``event`` (HTTP body or socket payload)."""
    event_id = event_id or f"Ev{next(_event_ids):010d}"
    return {
        "token": "verification-token",
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": enterprise_id,
        "api_app_id": api_app_id,
        "event": dict(event),
        "type": "event_callback",
        "event_id": event_id,
        "event_time": event_time if event_time is not None else int(time.time()),
        "authorizations": [
            {
                "enterprise_id": enterprise_id,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{base64.b64encode(event_id.encode()).decode()}",
    }


def _channel_type(channel: str) -> str:
    return {"D": "im", "G": "group"}.get(channel[:1], "channel")


def message_event(
    channel: str,
    user: str | None,
    text: str,
    ts: str,
    thread_ts: str | None = None,
    parent_user_id: str | None = None,
    subtype: str | None = None,
    files: list[dict[str, Any]] | None = None,
    *,
    team: str = TEAM_ID,
    channel_type: str | None = None,
    bot_id: str | None = None,
    blocks: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A ``message`` event. With ``files`` and no subtype, the subtype is ``file_share``."""
    event: dict[str, Any] = {
        "type": "message",
        "channel": channel,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "channel_type": channel_type or _channel_type(channel),
        "team": team,
    }
    if user is not None:
        event["user"] = user
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
        if parent_user_id is not None:
            event["parent_user_id"] = parent_user_id
    if files:
        event["files"] = files
        event["upload"] = False
        subtype = subtype or "file_share"
    if subtype is not None:
        event["subtype"] = subtype
    if bot_id is not None:
        event["bot_id"] = bot_id
    if blocks is not None:
        event["blocks"] = blocks
    event.update(extra)
    return event


def reaction_event(
    user: str,
    reaction: str,
    channel: str,
    ts: str,
    item_user: str | None = None,
    *,
    removed: bool = False,
    event_ts: str | None = None,
) -> dict[str, Any]:
    """A ``reaction_added`` (or ``reaction_removed``) event on a message."""
    event: dict[str, Any] = {
        "type": "reaction_removed" if removed else "reaction_added",
        "user": user,
        "reaction": reaction,
        "item": {"type": "message", "channel": channel, "ts": ts},
        "event_ts": event_ts or f"{int(time.time())}.000100",
    }
    if item_user is not None:
        event["item_user"] = item_user
    return event


def app_mention_event(channel: str, user: str, text: str, ts: str, **extra: Any) -> dict[str, Any]:
    """An ``app_mention`` event (text should contain ``<@UBOT>``)."""
    return {
        **message_event(channel, user, text, ts, **extra),
        "type": "app_mention",
    }


def member_joined_event(
    channel: str, user: str, *, inviter: str | None = None, team: str = TEAM_ID
) -> dict[str, Any]:
    """A ``member_joined_channel`` event."""
    event = {
        "type": "member_joined_channel",
        "user": user,
        "channel": channel,
        "channel_type": "G" if channel.startswith("G") else "C",
        "team": team,
        "event_ts": f"{int(time.time())}.000200",
    }
    if inviter is not None:
        event["inviter"] = inviter
    return event


def app_home_opened_event(
    user: str, *, channel: str = "D0HOME", tab: str = "home"
) -> dict[str, Any]:
    """An ``app_home_opened`` event."""
    return {
        "type": "app_home_opened",
        "user": user,
        "channel": channel,
        "tab": tab,
        "event_ts": f"{int(time.time())}.000300",
    }


def slash_command_payload(
    command: str,
    text: str = "",
    user_id: str = "U1",
    channel_id: str = "C1",
    team_id: str = TEAM_ID,
    response_url: str = "https://hooks.slack.invalid/commands/T1/1/x",
    trigger_id: str = "1.1.trigger",
    *,
    user_name: str | None = None,
    channel_name: str | None = None,
    api_app_id: str = APP_ID,
) -> dict[str, str]:
    """A slash command's fields, as the Socket Mode ``slash_commands`` payload carries them."""
    return {
        "token": "verification-token",
        "team_id": team_id,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel_id,
        "channel_name": channel_name or channel_id.lower(),
        "user_id": user_id,
        "user_name": user_name or user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def slash_command_form(
    command: str,
    text: str = "",
    user_id: str = "U1",
    channel_id: str = "C1",
    team_id: str = TEAM_ID,
    response_url: str = "https://hooks.slack.invalid/commands/T1/1/x",
    trigger_id: str = "1.1.trigger",
    **kwargs: Any,
) -> bytes:
    """A slash command HTTP body (``application/x-www-form-urlencoded``)."""
    fields = slash_command_payload(
        command, text, user_id, channel_id, team_id, response_url, trigger_id, **kwargs
    )
    return urlencode(fields).encode()


def block_actions_payload(
    action_id: str,
    user_id: str = "U1",
    *,
    value: str | None = None,
    block_id: str = "b1",
    team_id: str = TEAM_ID,
    channel_id: str | None = "C1",
    message_ts: str | None = None,
    response_url: str | None = None,
    trigger_id: str = "1.1.trigger",
    view: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``block_actions`` interaction payload for a button click."""
    action: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "block_id": block_id,
        "text": {"type": "plain_text", "text": action_id},
        "action_ts": f"{int(time.time())}.000400",
    }
    if value is not None:
        action["value"] = value
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_id.lower(), "team_id": team_id},
        "api_app_id": APP_ID,
        "token": "verification-token",
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "trigger_id": trigger_id,
        "actions": [action],
        "is_enterprise_install": False,
    }
    if channel_id is not None:
        payload["channel"] = {"id": channel_id, "name": channel_id.lower()}
        payload["container"] = {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": False,
        }
    if message_ts is not None:
        payload["message"] = {"type": "message", "ts": message_ts, "text": ""}
    if response_url is not None:
        payload["response_url"] = response_url
    if view is not None:
        payload["view"] = view
        payload["container"] = {"type": "view", "view_id": view.get("id")}
    return payload


def interactive_form(payload: Mapping[str, Any]) -> bytes:
    """An interactivity HTTP body: ``payload=<json>`` url-encoded."""
    return urlencode({"payload": json.dumps(dict(payload))}).encode()


# ---------------------------------------------------------------------- serving a bolt app


@asynccontextmanager
async def serve_bolt_app(
    app: AsyncApp, *, path: str = "/slack/events", host: str = "127.0.0.1"
) -> AsyncIterator[str]:
    """Serve a slack-bolt `AsyncApp` over HTTP on loopback; yield the events URL.

    Uses bolt's own aiohttp adapter (``app.web_app()``), so requests go through the same code
    path as ``app.start()``; the port is picked by the OS.
    """
    runner, port = await _start_site(app.web_app(path=path), host, 0)
    try:
        yield f"http://{host}:{port}{path}"
    finally:
        await runner.cleanup()


class PostResult(NamedTuple):
    status: int
    text: str
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.text)


async def post_signed(
    url: str,
    body: bytes | str,
    signing_secret: str,
    *,
    timestamp: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> PostResult:
    """POST ``body`` to ``url`` signed like Slack does; ``headers`` override or extend those."""
    raw = body.encode() if isinstance(body, str) else body
    all_headers = {**sign_request(signing_secret, raw, timestamp), **(headers or {})}
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=raw, headers=all_headers) as resp:
            return PostResult(resp.status, await resp.text(), dict(resp.headers))
