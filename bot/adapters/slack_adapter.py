"""The Slack adapter: slack-bolt's AsyncApp over HTTP (Events API) or Socket Mode.

Thin on purpose. Inbound, listeners registered by plain calls (``bolt.event(name)(fn)``,
``bolt.command(settings.slack.command)(fn)``, ``bolt.action(pattern)(fn)``) acknowledge first,
drop redeliveries, translate with the pure :mod:`bot.adapters.slack_translate` and queue the
neutral event; nothing slow happens before the acknowledgement. One worker applies queued
events in arrival order (so a reply never overtakes its parent), after adding what only the
Web API knows: display names, time zones, whether the member is a facilitator (listed in the
config, or a workspace admin), channel names. Commands and buttons run as their own tasks and
answer through the ``response_url`` Slack gave with them.

Outbound, one handler per action type (opsdroid's model): Block Kit rendered by the pure
:mod:`bot.adapters.slack_blocks`, DMs through ``conversations.open``, posts paced to about one
per second per channel, charts and CSVs through ``files_upload_v2``. The Web API client carries
slack_sdk's retry handlers, so a 429 waits ``Retry-After`` and tries again, and a failure that
survives the retries is logged and raised to the runtime (which marks it failed), never
dropped silently.

Redeliveries: Slack retries an event it thinks we missed (``X-Slack-Retry-Num`` over HTTP,
``retry_attempt`` in Socket Mode, which bolt mirrors into the same header). A bounded set of
recent ``event_id`` (and slash command / button ``trigger_id``) values stops a second copy
before it reaches the engine; message ids are in the same set, so catch-up and live delivery
of the same message meet there too. The database's unique keys stay the last line.

Catch-up after downtime: at start, before listening, the adapter notes the newest stored
message of every channel it knows (``conversations.list`` plus Hearth's channel table); once
listening, it replays ``conversations.history`` and ``conversations.replies`` after those
marks (at most ``catch_up_limit`` messages per channel) through the same queue and dedupe.

Many workspaces (``[slack] oauth = true``): bolt serves Slack's install flow at
``/slack/install`` and ``/slack/oauth_redirect`` and keeps each workspace's bot token in
Hearth's database (:mod:`bot.adapters.slack_install_store`), so every process sharing it serves
every workspace. Each workspace then gets its own Web API client and directory
(:class:`Workspace`): events are enriched, and actions sent, with the token of the workspace
(community) they belong to. A direct message with no event behind it (a scheduled nudge) goes
through the workspace the member was seen in.

Known limit: actions an event causes are sent by the worker before it takes the next event,
so a long ``Retry-After`` on such a send holds the queue for that long (commands, buttons
and scheduled jobs are not affected).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.actions import (
    Action,
    Attach,
    DirectMessage,
    FileAttachment,
    PostMessage,
    React,
    Reply,
)
from bot.adapters import slack_blocks
from bot.adapters.base import TaskSet
from bot.adapters.slack_install_store import HearthInstallationStore, HearthOAuthStateStore
from bot.adapters.slack_support import (
    ChannelMark,
    ChannelPacer,
    RecentKeys,
    SlackDirectory,
    fetch_missed,
    plan_catch_up,
)
from bot.adapters.slack_translate import (
    PLATFORM,
    TranslationError,
    display_name,
    envelope_team,
    is_admin,
    split_message_id,
    translate_block_actions,
    translate_command,
    translate_event,
    translate_message,
)
from bot.app import HearthApp
from bot.config import ConfigError, SlackSettings, secret
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
from bot.http_listen import start_site
from bot.ids import slack_message_id
from bot.logsafe import register_secret

log = logging.getLogger(__name__)

#: One URL for events, slash commands and interactivity (the manifest points all three here).
EVENTS_PATH = "/slack/events"
#: OAuth (``[slack] oauth = true``): where installers start, and where Slack sends them back.
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
#: Events an OAuth app also subscribes to, so an uninstall removes the stored token.
OAUTH_EVENTS = ("app_uninstalled", "tokens_revoked")
#: Web API errors after which a workspace's cached client (and token) is dropped and re-read.
AUTH_ERRORS = frozenset({"invalid_auth", "token_revoked", "token_expired", "account_inactive"})

#: Events API types the adapter subscribes to -> (manifest bot events, bot scopes they need).
SUBSCRIBED_EVENTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "message": (("message.channels", "message.groups"), ("channels:history", "groups:history")),
    "reaction_added": (("reaction_added",), ("reactions:read",)),
    "reaction_removed": (("reaction_removed",), ("reactions:read",)),
    "member_joined_channel": (("member_joined_channel",), ("channels:read", "groups:read")),
    "team_join": (("team_join",), ("users:read",)),
    "app_home_opened": (("app_home_opened",), ()),
}

#: Every Web API method the adapter calls (here and in slack_support) -> the bot scopes it
#: needs. The manifest asks for exactly these (plus ``commands`` and the events' scopes), and
#: a test checks that every call it saw the adapter make is covered.
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "auth.test": (),
    "apps.connections.open": (),  # app-level token (connections:write), not a bot scope
    "chat.postMessage": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "conversations.open": ("im:write",),
    "conversations.info": ("channels:read", "groups:read"),
    "conversations.list": ("channels:read", "groups:read"),
    "conversations.history": ("channels:history", "groups:history"),
    "conversations.replies": ("channels:history", "groups:history"),
    "users.info": ("users:read",),
    "reactions.add": ("reactions:write",),
    "views.publish": (),
    "files.getUploadURLExternal": ("files:write",),
    "files.completeUploadExternal": ("files:write",),
}

#: Errors that mean a member cannot get DMs at all (the member row is marked unreachable).
UNREACHABLE_ERRORS = frozenset(
    {"user_not_found", "user_disabled", "account_inactive", "cannot_dm_bot", "user_not_visible"}
)
#: A response_url takes at most five posts; longer answers continue in a DM or the channel.
RESPONSE_URL_USES = 5

# Emoji the cogs may name as characters; Slack's reactions.add wants names.
_EMOJI_NAMES = {
    "👍": "+1",
    "👎": "-1",
    "🎉": "tada",
    "🙏": "pray",
    "❤️": "heart",
    "❤": "heart",
    "👀": "eyes",
    "✅": "white_check_mark",
    "🌱": "seedling",
    "👋": "wave",
    "💡": "bulb",
    "🔥": "fire",
    "👏": "clap",
    "⭐": "star",
    "🙌": "raised_hands",
    "✨": "sparkles",
}
_CHANNEL_REF = re.compile(r"^<#([CGD][A-Z0-9]+)(?:\|[^>]*)?>$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]+$")


class SlackDeliveryError(RuntimeError):
    """Slack did not take a message (after the retry handlers had their go)."""


@dataclass(frozen=True, slots=True)
class OAuthCredentials:
    """The app's OAuth client id and secret (``[slack] oauth = true``)."""

    client_id: str
    client_secret: str


@dataclass(slots=True)
class Workspace:
    """One workspace the adapter acts in: its Web API client (token), lookups and bot user."""

    team_id: str | None
    client: AsyncWebClient
    directory: SlackDirectory
    bot_user_id: str | None = None


def emoji_name(emoji: str) -> str:
    """``"🎉"`` or ``":tada:"`` -> ``"tada"`` for reactions.add."""
    emoji = emoji.strip()
    return _EMOJI_NAMES.get(emoji) or emoji.strip(":")


def bot_scopes() -> list[str]:
    """The bot scopes the code uses: Web API methods, subscribed events, the slash command."""
    scopes = {"commands"}
    for needed in METHOD_SCOPES.values():
        scopes.update(needed)
    for _events, needed in SUBSCRIBED_EVENTS.values():
        scopes.update(needed)
    return sorted(scopes)


def _header(request: Any, name: str) -> str | None:
    headers = getattr(request, "headers", None) or {}
    value = headers.get(name)
    if isinstance(value, list | tuple):
        return value[0] if value else None
    return value


class SlackAdapter:
    """Hearth on Slack; see the module docstring. Built by :func:`build_slack_adapter`."""

    platform = PLATFORM

    def __init__(
        self,
        hearth: HearthApp,
        *,
        bot_token: str | None,
        signing_secret: str | None = None,
        app_token: str | None = None,
        oauth: OAuthCredentials | None = None,
    ) -> None:
        self.hearth = hearth
        self.settings: SlackSettings = hearth.settings.slack
        self.runtime = hearth.runtime
        self.engine = hearth.engine
        self.store = hearth.store
        self.clock = hearth.clock
        self.mode = self.settings.mode
        self.app_token = app_token
        self.oauth = oauth
        self.retry_handlers: list[AsyncRetryHandler] = [
            AsyncConnectionErrorRetryHandler(max_retry_count=self.settings.max_retries),
            AsyncRateLimitErrorRetryHandler(max_retry_count=self.settings.max_retries),
            AsyncServerErrorRetryHandler(max_retry_count=self.settings.max_retries),
        ]
        self.client = AsyncWebClient(
            token=bot_token,
            base_url=self.settings.api_base_url,
            retry_handlers=list(self.retry_handlers),
        )
        self.installations: HearthInstallationStore | None = None
        oauth_settings = None
        if oauth is not None:
            # bolt answers /slack/install and /slack/oauth_redirect, and authorises every
            # request with the bot token stored for its workspace; the default client (no
            # token) only calls oauth.v2.access.
            self.installations = HearthInstallationStore(
                self.store, oauth.client_id, self.clock, on_change=self.forget_workspace
            )
            public = self.settings.public_url.rstrip("/")
            oauth_settings = AsyncOAuthSettings(
                client_id=oauth.client_id,
                client_secret=oauth.client_secret,
                scopes=bot_scopes(),
                user_scopes=[],
                redirect_uri=public + REDIRECT_PATH if public else None,
                install_path=INSTALL_PATH,
                redirect_uri_path=REDIRECT_PATH,
                installation_store=self.installations,
                installation_store_bot_only=True,
                state_store=HearthOAuthStateStore(self.store, self.clock),
            )
        # The token lives on the client: bolt ignores AsyncApp(token=...) when given a client.
        # process_before_response: listeners only ack, check and queue, so answering after them
        # is immediate and skips bolt's 10 ms polling for a background ack.
        self.bolt = AsyncApp(
            client=self.client,
            signing_secret=signing_secret or "",
            request_verification_enabled=self.mode == "http",
            process_before_response=True,
            name="hearth",
            oauth_settings=oauth_settings,
            installation_store_bot_only=True if oauth is not None else None,
        )
        self.directory = SlackDirectory(self.client, self.settings.user_cache_seconds)
        #: The single-token workspace (team filled in at start); OAuth workspaces by team id.
        self.default = Workspace(None, self.client, self.directory)
        self.workspaces: dict[str, Workspace] = {}
        self.pacer = ChannelPacer(self.settings.post_interval_seconds)
        self.recent = RecentKeys()
        self.team_id: str | None = None
        self.bot_user_id: str | None = None
        self.url: str | None = None
        #: PostMessage tag -> the id Slack gave the post; the runtime pops it for the cogs.
        self.tagged: dict[str, str] = {}
        self.duplicates = 0
        self.dropped = 0
        self._inbound: asyncio.Queue[Event] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._tasks = TaskSet("Slack")
        self._response_urls: dict[str, list[Any]] = {}  # interaction key -> [url, uses]
        self._dm_channels: dict[tuple[str, str], str] = {}  # (team, user) -> DM channel
        self._known_channels: set[tuple[str, str]] = set()
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._socket: Any = None
        self._catch_up_plan: list[tuple[Workspace, ChannelMark]] = []
        self.catch_up_task: asyncio.Task[int] | None = None
        self._senders: dict[type, Callable[[Any, Event | None, Workspace], Awaitable[None]]] = {
            Reply: self._send_reply,
            PostMessage: self._send_post,
            DirectMessage: self._send_dm,
            React: self._send_react,
            Attach: self._send_attach,
        }
        self._register()

    # -- listeners ---------------------------------------------------------------------------

    def _register(self) -> None:
        """Plain calls over the event table and the one slash command (bolt's model)."""
        for name in SUBSCRIBED_EVENTS:
            if name == "app_home_opened":
                self.bolt.event(name)(self._on_home_opened)
            else:
                self.bolt.event(name)(self._on_event)
        self.bolt.command(self.settings.command)(self._on_command)
        # Button action ids are "<cog>:<what>"; the engine routes them by that prefix.
        self.bolt.action(re.compile(r"^[a-z_]+:"))(self._on_action)
        if self.oauth is not None:
            # app_uninstalled / tokens_revoked delete the stored token (bolt's built-in
            # listeners over our installation store, which then drops the cached client).
            self.bolt.enable_token_revocation_listeners()

    def _first_delivery(self, key: str | None, request: Any = None) -> bool:
        if not key or self.recent.first_time(key):
            return True
        self.duplicates += 1
        log.info(
            "dropping a redelivered Slack payload %s (retry %s, %s)",
            key,
            _header(request, "x-slack-retry-num") or "-",
            _header(request, "x-slack-retry-reason") or "same id",
        )
        return False

    async def _on_event(self, body: dict[str, Any], request: Any, context: Any = None) -> None:
        event_id = body.get("event_id")
        if not self._first_delivery(f"ev:{event_id}" if event_id else None, request):
            return
        # Each workspace has its own bot user; bolt's authorisation found this one's.
        bot_user_id = getattr(context, "bot_user_id", None) or self.bot_user_id
        try:
            event = translate_event(body, bot_user_id=bot_user_id)
        except TranslationError as exc:
            self.dropped += 1
            log.warning("dropping a malformed Slack event %s: %s", event_id, exc)
            return
        except Exception:  # noqa: BLE001 - a payload nobody planned for: log, never escape
            self.dropped += 1
            log.exception("dropping a Slack event %s the translator could not read", event_id)
            return
        if event is None:
            return
        if isinstance(event, MessagePosted) and not self._first_delivery(
            f"msg:{event.message_id}", request
        ):
            return
        team_join_user = body.get("event", {}).get("user")
        if isinstance(team_join_user, Mapping):
            self._directory_for(_team_of(event)).remember_user(team_join_user)
        self._inbound.put_nowait(event)

    async def _on_home_opened(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        event_id = body.get("event_id")
        if not self._first_delivery(f"ev:{event_id}" if event_id else None):
            return
        if event.get("tab") != "home" or not isinstance(event.get("user"), str):
            return
        try:
            team = envelope_team(body)
        except TranslationError as exc:
            log.warning("dropping a malformed app_home_opened: %s", exc)
            return
        self._spawn(self.publish_home(team, event["user"]))

    async def _on_command(self, ack: Any, body: dict[str, Any]) -> None:
        # Acknowledge first: Slack gives a slash command three seconds. The answer follows
        # through response_url once the engine has run the command.
        await ack()
        trigger = body.get("trigger_id")
        if not self._first_delivery(f"cmd:{trigger}" if trigger else None):
            return
        try:
            event = translate_command(body, at=self.clock.now())
        except TranslationError as exc:
            self.dropped += 1
            log.warning("dropping a malformed slash command: %s", exc)
            return
        except Exception:  # noqa: BLE001 - never let a payload escape the listener
            self.dropped += 1
            log.exception("dropping a slash command the translator could not read")
            return
        self._spawn(self._run_interactions([event], body.get("response_url")))

    async def _on_action(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        trigger = body.get("trigger_id")
        ids = ",".join(
            str(a.get("action_id")) for a in body.get("actions") or [] if isinstance(a, Mapping)
        )
        if not self._first_delivery(f"act:{trigger}:{ids}" if trigger else None):
            return
        try:
            events = translate_block_actions(body, at=self.clock.now())
        except TranslationError as exc:
            self.dropped += 1
            log.warning("dropping a malformed block action: %s", exc)
            return
        except Exception:  # noqa: BLE001 - never let a payload escape the listener
            self.dropped += 1
            log.exception("dropping a block action the translator could not read")
            return
        self._spawn(self._run_interactions(events, body.get("response_url")))

    # -- workspaces -----------------------------------------------------------------------------

    def _new_client(self, token: str) -> AsyncWebClient:
        return AsyncWebClient(
            token=token,
            base_url=self.settings.api_base_url,
            retry_handlers=list(self.retry_handlers),
            session=self._http,
        )

    def _directory_for(self, team_id: str | None) -> SlackDirectory:
        ws = self.workspaces.get(team_id or "")
        return ws.directory if ws is not None else self.directory

    async def workspace(self, team_id: str | None) -> Workspace:
        """The workspace (client, directory, bot user) of a community.

        With one bot token every community is the default workspace; with OAuth the token
        stored for the team is read once and its client cached until the token changes.
        """
        if self.installations is None:
            return self.default
        if team_id:
            cached = self.workspaces.get(team_id)
            if cached is not None:
                return cached
            found = await self.installations.token_for(team_id)
            if found is not None:
                client = self._new_client(found[0])
                directory = SlackDirectory(client, self.settings.user_cache_seconds)
                ws = Workspace(team_id, client, directory, found[1] or None)
                self.workspaces[team_id] = ws
                return ws
        raise SlackDeliveryError(f"Hearth is not installed in the Slack workspace {team_id!r}")

    def forget_workspace(self, team_id: str) -> None:
        """Drop a cached workspace client (its token was replaced, revoked or refused)."""
        self.workspaces.pop(team_id, None)
        self._dm_channels = {k: v for k, v in self._dm_channels.items() if k[0] != team_id}

    async def _workspace_for(self, action: Action, origin: Event | None) -> Workspace:
        if self.installations is None:
            return self.default
        place = getattr(action, "place", None)
        team = place.community_id if isinstance(place, PlaceRef) else _team_of(origin)
        if team is None and isinstance(action, DirectMessage):
            # A scheduled DM has no event behind it: the member's workspace is where they
            # were seen (Slack user ids are unique across workspaces).
            team = await self.installations.community_of_member(action.member.id)
        return await self.workspace(team)

    def health(self) -> dict[str, Any]:
        """What /healthz shows about Slack: mode, workspaces in use, events waiting."""
        return {
            "mode": self.mode,
            "oauth": self.installations is not None,
            "workspaces": len(self.workspaces) if self.installations else int(bool(self.team_id)),
            "queued_events": self._inbound.qsize(),
        }

    # -- inbound processing ------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        return self._tasks.spawn(coro)

    async def _work(self) -> None:
        """Apply queued events one at a time, in the order Slack delivered them."""
        while True:
            event = await self._inbound.get()
            try:
                await self.runtime.handle(await self._enrich(event), origin=self)
            except Exception:  # noqa: BLE001 - one bad event must not stop the worker
                log.exception("handling a Slack %s failed", type(event).__name__)
            finally:
                self._inbound.task_done()

    async def _run_interactions(self, events: Sequence[Event], response_url: Any) -> None:
        keys = {_interaction_key(e) for e in events} - {None}
        for key in keys:
            if isinstance(response_url, str) and response_url:
                self._response_urls[key] = [response_url, 0]
        try:
            for event in events:
                await self.runtime.handle(await self._enrich(event), origin=self)
        finally:
            for key in keys:
                self._response_urls.pop(key, None)

    async def member(self, ref: MemberRef, ws: Workspace | None = None) -> MemberRef:
        """``ref`` with the name, time zone and facilitator flag the workspace knows."""
        user = await (ws or self.default).directory.user(ref.id)
        facilitator = ref.is_facilitator or ref.id in self.settings.facilitator_user_ids
        if user is None:
            return replace(ref, is_facilitator=facilitator)
        if self.settings.admins_are_facilitators and is_admin(user):
            facilitator = True
        tz = user.get("tz")
        return replace(
            ref,
            display_name=display_name(user) or ref.display_name,
            timezone=tz if isinstance(tz, str) and tz else ref.timezone,
            is_bot=ref.is_bot or bool(user.get("is_bot")),
            is_facilitator=facilitator,
        )

    async def _place(self, place: PlaceRef, ws: Workspace) -> PlaceRef:
        """Add the channel name (settings may name channels) and note the channel for catch-up."""
        if place.is_direct or place.channel_id == "app_home":
            return place
        key = (place.community_id, place.channel_id)
        name = place.channel_name
        if not name:
            info = await ws.directory.channel(place.channel_id)
            name = str(info.get("name") or "") if info else ""
        if key not in self._known_channels:
            self._known_channels.add(key)
            try:
                await self.store.upsert_channel(place.community_id, place.channel_id, name)
            except Exception:  # noqa: BLE001 - bookkeeping only
                log.exception("could not note channel %s", place.channel_id)
        return replace(place, channel_name=name) if name != place.channel_name else place

    async def _enrich(self, event: Event) -> Event:
        ws = await self.workspace(_team_of(event))
        changes: dict[str, Any] = {}
        for attr in ("author", "member"):
            ref = getattr(event, attr, None)
            if isinstance(ref, MemberRef):
                changes[attr] = await self.member(ref, ws)
        place = getattr(event, "place", None)
        if isinstance(place, PlaceRef):
            changes["place"] = await self._place(place, ws)
        return replace(event, **changes) if changes else event

    async def publish_home(self, team_id: str, user_id: str) -> None:
        """Show the learner their participation mirror (what ``/course me`` says) on App Home."""
        try:
            ws = await self.workspace(team_id)
        except SlackDeliveryError as exc:
            log.warning("App Home not published: %s", exc)
            return
        member = await self.member(MemberRef(PLATFORM, user_id), ws)
        if member.is_bot:
            return
        now = self.clock.now()
        event = CommandInvoked(
            at=now,
            member=member,
            place=PlaceRef(PLATFORM, team_id, "app_home", is_direct=True),
            name="me",
        )
        actions = await self.engine.dispatch(event)
        text = "\n\n".join(
            a.rich.as_text() if a.rich else a.text for a in actions if isinstance(a, Reply)
        )
        footer = (
            f"Updated {now:%Y-%m-%d %H:%M} UTC. "
            f"`{self.settings.command} help` lists what you can ask Hearth."
        )
        view = slack_blocks.home_view("Your participation", text or "Nothing yet.", footer)
        try:
            await ws.client.views_publish(user_id=user_id, view=view)
        except SlackApiError as exc:
            log.error("views.publish for %s failed: %s", user_id, exc.response.get("error"))

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        # One keep-alive session for every Web API and response_url call (slack_sdk would
        # otherwise open a new connection per call).
        self._http = aiohttp.ClientSession()
        self.client.session = self._http
        if self.installations is None:
            try:
                auth = await self.client.auth_test()
            except SlackApiError as exc:
                await self._http.close()
                raise ConfigError(
                    f"Slack refused the bot token in {self.settings.bot_token_env}: "
                    f"{exc.response.get('error')}"
                ) from None
            self.team_id = auth.get("team_id")
            self.bot_user_id = auth.get("user_id")
            self.default.team_id, self.default.bot_user_id = self.team_id, self.bot_user_id
            log.info("Slack: connected to workspace %s as %s", self.team_id, self.bot_user_id)
        else:
            installed = await self.installations.installed()
            log.info(
                "Slack: OAuth app installed in %d workspace(s); new installs at %s",
                len(installed),
                INSTALL_PATH,
            )
        if self.settings.catch_up_limit > 0:
            # Marks first, listeners second: a live message stored before the marks were read
            # would hide the gap behind it.
            self._catch_up_plan = await self._plan_catch_up()
        self._worker = asyncio.create_task(self._work())
        if self.mode == "socket":
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            # Built inside the running loop: the handler binds to it.
            self._socket = AsyncSocketModeHandler(self.bolt, self.app_token)
            await self._socket.connect_async()
            log.info("Slack: Socket Mode connected")
        else:
            self._runner = web.AppRunner(
                self.bolt.web_app(path=EVENTS_PATH), access_log=None, shutdown_timeout=2.0
            )
            await self._runner.setup()
            await start_site(self._runner, self.settings.host, self.settings.port, "[slack] port")
            port = self._runner.addresses[0][1]
            self.url = f"http://{self.settings.host}:{port}{EVENTS_PATH}"
            log.info("Slack: listening for events on %s", self.url)
        if self._catch_up_plan:
            self.catch_up_task = asyncio.create_task(self._catch_up(self._catch_up_plan))

    async def drain(self) -> None:
        """Wait until every received event, command and catch-up message has been handled."""
        while True:
            if self.catch_up_task is not None and not self.catch_up_task.done():
                await asyncio.wait({self.catch_up_task})
            await self._inbound.join()
            pending = [t for t in self._tasks if not t.done()]
            if not pending:
                if self._inbound.empty():
                    return
                continue
            await asyncio.wait(pending)

    async def stop(self) -> None:
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._worker is not None:
            try:
                await asyncio.wait_for(self.drain(), timeout=10)
            except TimeoutError:
                log.warning("Slack: stopped with %d events unhandled", self._inbound.qsize())
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
            self._http = None

    # -- catch-up ----------------------------------------------------------------------------

    async def catch_up(self) -> int:
        """Run the catch-up planned at start (tests and the CLI may call it again)."""
        return await self._catch_up(await self._plan_catch_up())

    async def _plan_catch_up(self) -> list[tuple[Workspace, ChannelMark]]:
        """Catch-up marks of every workspace: the one of the bot token, or every installed one."""
        if self.installations is None:
            workspaces = [self.default] if self.team_id else []
        else:
            workspaces = []
            for row in await self.installations.installed():
                try:
                    workspaces.append(await self.workspace(row["community_id"]))
                except SlackDeliveryError:
                    continue  # uninstalled meanwhile
        plan: list[tuple[Workspace, ChannelMark]] = []
        for ws in workspaces:
            try:
                marks = await plan_catch_up(ws.client, self.store, ws.team_id or "")
            except SlackApiError as exc:
                log.warning("catch-up of %s not planned: %s", ws.team_id, exc.response.get("error"))
                continue
            plan.extend((ws, mark) for mark in marks)
        return plan

    async def _catch_up(self, plan: Sequence[tuple[Workspace, ChannelMark]]) -> int:
        total = 0
        for ws, mark in plan:
            try:
                total += await self._catch_up_channel(ws, mark)
            except SlackApiError as exc:
                log.warning("catch-up of %s failed: %s", mark.channel, exc.response.get("error"))
            except Exception:  # noqa: BLE001 - one channel must not stop the others
                log.exception("catch-up of %s failed", mark.channel)
        if total:
            log.info("Slack: caught up on %d messages missed while offline", total)
        return total

    async def _catch_up_channel(self, ws: Workspace, mark: ChannelMark) -> int:
        messages = await fetch_missed(ws.client, mark, self.settings.catch_up_limit)
        queued = 0
        for message in messages:
            try:
                event = translate_message(
                    message,
                    team_id=ws.team_id or "",
                    channel=mark.channel,
                    channel_type=mark.channel_type,
                    bot_user_id=ws.bot_user_id,
                )
            except TranslationError as exc:
                log.warning("catch-up: skipping a malformed message in %s: %s", mark.channel, exc)
                continue
            if not isinstance(event, MessagePosted):
                continue
            if not self._first_delivery(f"msg:{event.message_id}"):
                continue
            self._inbound.put_nowait(event)
            queued += 1
            for reaction in self._history_reactions(message, event, ws.bot_user_id):
                self._inbound.put_nowait(reaction)
        return queued

    def _history_reactions(
        self, message: Mapping[str, Any], event: MessagePosted, bot_user_id: str | None
    ):
        """Reactions a history message carries (the edges' unique key drops repeats)."""
        for reaction in message.get("reactions") or []:
            for user in reaction.get("users") or []:
                if user == bot_user_id or not reaction.get("name"):
                    continue
                yield ReactionAdded(
                    at=event.at,
                    member=MemberRef(PLATFORM, user),
                    place=event.place,
                    message_id=event.message_id,
                    emoji=reaction["name"],
                    message_author_id=event.author.id,
                )

    # -- outbound ----------------------------------------------------------------------------

    async def send(self, action: Action, origin: Event | None) -> None:
        sender = self._senders.get(type(action))
        if sender is None:
            log.warning("the Slack adapter cannot send %s", type(action).__name__)
            return
        ws = await self._workspace_for(action, origin)
        try:
            await sender(action, origin, ws)
        except SlackApiError as exc:
            log.error(
                "Slack refused %s: %s (status %s)",
                type(action).__name__,
                exc.response.get("error"),
                exc.response.status_code,
            )
            if ws.team_id and exc.response.get("error") in AUTH_ERRORS:
                self.forget_workspace(ws.team_id)  # re-read the token (reinstalled elsewhere?)
            raise

    async def _post(
        self,
        ws: Workspace,
        channel: str,
        message: Mapping[str, Any],
        thread_ts: str | None = None,
    ) -> Mapping[str, Any]:
        async with self.pacer.slot(channel):
            return await ws.client.chat_postMessage(
                channel=channel,
                text=message["text"],
                blocks=message["blocks"],
                thread_ts=thread_ts,
                unfurl_links=False,
            )

    async def _upload(
        self,
        ws: Workspace,
        channel: str,
        files: Sequence[FileAttachment],
        *,
        comment: str | None = None,
        thread_ts: str | None = None,
    ) -> None:
        if not files:
            return
        uploads = [
            {"file": f.data, "filename": f.filename, "title": f.description or f.filename}
            for f in files
        ]
        async with self.pacer.slot(channel):
            await ws.client.files_upload_v2(
                channel=channel, file_uploads=uploads, initial_comment=comment, thread_ts=thread_ts
            )

    async def channel_id(self, value: str, ws: Workspace | None = None) -> str:
        """A channel id for a PlaceRef channel that may be ``<#C1|x>``, ``#name`` or a name."""
        match = _CHANNEL_REF.match(value)
        if match:
            return match.group(1)
        bare = value.lstrip("#")
        if _CHANNEL_ID.match(bare):
            return bare
        return await (ws or self.default).directory.channel_by_name(bare) or bare

    async def dm_channel(self, user_id: str, ws: Workspace | None = None) -> str:
        ws = ws or self.default
        key = (ws.team_id or "", user_id)
        channel = self._dm_channels.get(key)
        if channel is None:
            opened = await ws.client.conversations_open(users=user_id)
            channel = opened["channel"]["id"]
            self._dm_channels[key] = channel
        return channel

    async def _send_reply(self, action: Reply, origin: Event | None, ws: Workspace) -> None:
        messages = slack_blocks.render_messages(action.text, action.rich, action.buttons)
        files = _files_of(action)
        key = _interaction_key(origin) if origin is not None else None
        entry = self._response_urls.get(key) if key else None
        member = getattr(origin, "member", None) or getattr(origin, "author", None)
        place = getattr(origin, "place", None)
        if entry is not None:
            overflow = await self._respond(entry, messages, ephemeral=action.ephemeral)
            if overflow:
                # Past response_url's five posts: private answers continue in a DM, public
                # ones in the channel, so nothing is cut off.
                if action.ephemeral and isinstance(member, MemberRef):
                    target = await self.dm_channel(member.id, ws)
                elif isinstance(place, PlaceRef):
                    target = place.channel_id
                else:
                    raise SlackDeliveryError("an answer outgrew its response_url")
                for message in overflow:
                    await self._post(ws, target, message)
            if files and isinstance(member, MemberRef) and isinstance(place, PlaceRef):
                target = (
                    await self.dm_channel(member.id, ws) if action.ephemeral else place.channel_id
                )
                await self._upload(ws, target, files)
            return
        if isinstance(origin, MessagePosted | MessageEdited) and isinstance(member, MemberRef):
            channel = origin.place.channel_id
            thread = origin.place.thread_id or origin.message_id
            thread_ts = split_message_id(thread)[1]
            for message in messages:
                if action.ephemeral:
                    await ws.client.chat_postEphemeral(
                        channel=channel,
                        user=member.id,
                        text=message["text"],
                        blocks=message["blocks"],
                        thread_ts=thread_ts,
                    )
                else:
                    await self._post(ws, channel, message, thread_ts)
            await self._upload(ws, channel, files, thread_ts=thread_ts)
            return
        raise SlackDeliveryError(
            f"a reply to {type(origin).__name__} has nowhere to go (no response_url or message)"
        )

    async def _respond(
        self, entry: list[Any], messages: Sequence[Mapping[str, Any]], *, ephemeral: bool
    ) -> list[Mapping[str, Any]]:
        """Post to a response_url; returns the messages its five uses could not carry."""
        url = entry[0]
        webhook = AsyncWebhookClient(
            url, session=self._http, retry_handlers=list(self.retry_handlers)
        )
        remaining = list(messages)
        while remaining and entry[1] < RESPONSE_URL_USES:
            message = remaining.pop(0)
            if remaining and entry[1] == RESPONSE_URL_USES - 1:
                blocks = message["blocks"][: slack_blocks.MAX_BLOCKS - 1]
                where = "a direct message" if ephemeral else "the channel"
                note = slack_blocks.context(f"Continued in {where}.")
                message = {**message, "blocks": [*blocks, note]}
            response = await webhook.send(
                text=message["text"],
                blocks=message["blocks"],
                response_type="ephemeral" if ephemeral else "in_channel",
            )
            entry[1] += 1
            if response.status_code != 200:
                raise SlackDeliveryError(
                    f"response_url answered {response.status_code}: {response.body[:200]}"
                )
        return remaining

    async def _send_post(self, action: PostMessage, origin: Event | None, ws: Workspace) -> None:
        channel = await self.channel_id(action.place.channel_id, ws)
        thread_ts = split_message_id(action.place.thread_id)[1] if action.place.thread_id else None
        text = action.text
        if action.as_thread_title and action.rich is None:
            title = f"*{action.as_thread_title}*"
            text = f"{title}\n{text}" if text else title
        first: str | None = None
        for message in slack_blocks.render_messages(text, action.rich):
            posted = await self._post(ws, channel, message, thread_ts)
            channel = posted.get("channel") or channel
            first = first or posted.get("ts")
        if action.tag and first:
            # The runtime hands this to the cogs (a reflection prompt's replies thread here).
            self.tagged[action.tag] = slack_message_id(channel, first)
        await self._upload(ws, channel, _files_of(action), thread_ts=thread_ts)

    async def _send_dm(self, action: DirectMessage, origin: Event | None, ws: Workspace) -> None:
        try:
            channel = await self.dm_channel(action.member.id, ws)
            for message in slack_blocks.render_messages(action.text, action.rich, action.buttons):
                await self._post(ws, channel, message)
        except SlackApiError as exc:
            if exc.response.get("error") in UNREACHABLE_ERRORS and ws.team_id:
                # Deactivated or gone: stop planning nudges for them instead of failing daily.
                await self.store.set_member_fields(ws.team_id, action.member.id, reachable=False)
            raise
        files = _files_of(action)
        await self._upload(ws, channel, files)

    async def _send_react(self, action: React, origin: Event | None, ws: Workspace) -> None:
        channel, ts = split_message_id(action.message_id)
        try:
            await ws.client.reactions_add(
                channel=channel, timestamp=ts, name=emoji_name(action.emoji)
            )
        except SlackApiError as exc:
            if exc.response.get("error") != "already_reacted":
                raise

    async def _send_attach(self, action: Attach, origin: Event | None, ws: Workspace) -> None:
        channel = await self.channel_id(action.place.channel_id, ws)
        thread_ts = split_message_id(action.place.thread_id)[1] if action.place.thread_id else None
        await self._upload(
            ws, channel, [action.file], comment=action.text or None, thread_ts=thread_ts
        )


def _files_of(action: Reply | PostMessage | DirectMessage) -> list[FileAttachment]:
    """Attached files plus a rich message's image (Slack shows charts as uploaded files)."""
    image = action.rich.image if action.rich is not None else None
    return [*action.files, *([image] if image is not None else [])]


def _team_of(event: Event | None) -> str | None:
    """The workspace (community) an event belongs to."""
    place = getattr(event, "place", None)
    if isinstance(place, PlaceRef):
        return place.community_id
    community = getattr(event, "community_id", None)
    return community if isinstance(community, str) else None


def _interaction_key(event: Event | None) -> str | None:
    if isinstance(event, CommandInvoked):
        return event.interaction_id
    if isinstance(event, ButtonPressed):
        return event.delivery_id
    return None


def build_slack_adapter(app: HearthApp) -> SlackAdapter:
    """The adapter for ``[slack]``: the secrets its settings name (``secret_envs``: which
    ones depends on OAuth and the mode) from the environment, registered as secrets."""
    secrets = {role: secret(env) for role, env in app.settings.slack.secret_envs().items()}
    for role, value in secrets.items():
        if role != "client_id":  # public: it is in every install link
            register_secret(value)
    oauth = None
    if "client_secret" in secrets:
        oauth = OAuthCredentials(
            client_id=secrets["client_id"], client_secret=secrets["client_secret"]
        )
    bot_token = secrets.get("bot_token")
    signing_secret = secrets.get("signing_secret")
    app_token = secrets.get("app_token")
    return SlackAdapter(
        app, bot_token=bot_token, signing_secret=signing_secret, app_token=app_token, oauth=oauth
    )


__all__ = [
    "EVENTS_PATH",
    "INSTALL_PATH",
    "OAUTH_EVENTS",
    "REDIRECT_PATH",
    "OAuthCredentials",
    "Workspace",
    "METHOD_SCOPES",
    "SUBSCRIBED_EVENTS",
    "SlackAdapter",
    "SlackDeliveryError",
    "bot_scopes",
    "build_slack_adapter",
    "emoji_name",
]
