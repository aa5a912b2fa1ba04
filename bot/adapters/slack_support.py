"""Plumbing for the Slack adapter: redelivery keys, per-channel pacing, cached lookups and
the catch-up reads. Kept apart so the adapter itself stays a thin set of listeners and send
handlers; everything here is small, stateful and tested directly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack_translate import split_message_id
from storage.repos import Store

log = logging.getLogger(__name__)

#: Delivery keys remembered for redelivery checks (Slack retries within about an hour).
RECENT_KEYS = 20_000


class RecentKeys:
    """A bounded set of recently seen delivery keys (oldest forgotten first)."""

    def __init__(self, capacity: int = RECENT_KEYS) -> None:
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    def first_time(self, key: str) -> bool:
        """Remember ``key``; True unless it was already seen."""
        if key in self._keys:
            self._keys.move_to_end(key)
            return False
        self._keys[key] = None
        if len(self._keys) > self._capacity:
            self._keys.popitem(last=False)
        return True

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)


class ChannelPacer:
    """At most one post per ``interval`` seconds per channel; waiters go in arrival order.

    Slack allows about one message per second per channel and answers bursts with 429s;
    pacing here keeps a nudge round or a split report from tripping that limit.
    """

    def __init__(
        self,
        interval: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.interval = interval
        self._monotonic = monotonic
        self._sleep = sleep
        self._locks: dict[str, asyncio.Lock] = {}
        self._last: dict[str, float] = {}

    @asynccontextmanager
    async def slot(self, channel: str):
        lock = self._locks.setdefault(channel, asyncio.Lock())
        async with lock:
            last = self._last.get(channel)
            if last is not None:
                wait = last + self.interval - self._monotonic()
                if wait > 0:
                    await self._sleep(wait)
            try:
                yield
            finally:
                self._last[channel] = self._monotonic()
        if len(self._last) > 10_000:
            self._prune()

    def _prune(self) -> None:
        cutoff = self._monotonic() - self.interval
        for channel in [c for c, t in self._last.items() if t < cutoff]:
            lock = self._locks.get(channel)
            if lock is None or not lock.locked():
                self._last.pop(channel, None)
                self._locks.pop(channel, None)


@dataclass(slots=True)
class Cached:
    value: Any
    expires: float


class SlackDirectory:
    """``users.info`` and ``conversations.info`` answers, cached for ``ttl`` seconds.

    The facilitator check reads the admin flag from here, so a promotion or demotion in the
    workspace shows up within ``ttl``. Lookups that fail are logged and cached as unknown
    too, so a missing scope costs one warning, not one failed call per message.
    """

    def __init__(
        self,
        client: AsyncWebClient,
        ttl: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.ttl = ttl
        self._monotonic = monotonic
        self._cache: dict[str, Cached] = {}
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._names: dict[str, str] = {}
        self._names_expire = 0.0

    async def _cached(self, key: str, fetch: Callable[[], Awaitable[Any]]) -> Any:
        hit = self._cache.get(key)
        now = self._monotonic()
        if hit is not None and hit.expires > now:
            return hit.value
        pending = self._pending.get(key)
        if pending is not None:
            # Several events from one new member: one lookup, the others wait for it.
            return await asyncio.shield(pending)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        value = None
        try:
            value = await fetch()
        except SlackApiError as exc:
            log.warning("Slack lookup %s failed: %s", key, exc.response.get("error"))
        except Exception:  # noqa: BLE001 - a lookup must never stop an event
            log.exception("Slack lookup %s failed", key)
        finally:
            self._pending.pop(key, None)
            # Resolved even when cancelled, so no waiter hangs on an abandoned lookup.
            future.set_result(value)
        self._cache[key] = Cached(value, now + self.ttl)
        if len(self._cache) > 50_000:
            self._cache = {k: v for k, v in self._cache.items() if v.expires > now}
        return value

    async def user(self, user_id: str) -> Mapping[str, Any] | None:
        async def fetch() -> Any:
            return (await self.client.users_info(user=user_id))["user"]

        return await self._cached("user:" + user_id, fetch)

    def remember_user(self, user: Mapping[str, Any]) -> None:
        """Keep a user object that arrived with an event (team_join) instead of fetching it."""
        if isinstance(user.get("id"), str):
            self._cache["user:" + user["id"]] = Cached(dict(user), self._monotonic() + self.ttl)

    async def channel(self, channel_id: str) -> Mapping[str, Any] | None:
        async def fetch() -> Any:
            return (await self.client.conversations_info(channel=channel_id))["channel"]

        return await self._cached("channel:" + channel_id, fetch)

    async def channel_by_name(self, name: str) -> str | None:
        """A channel id from its name (for settings that name channels, like ``general``)."""
        if self._monotonic() >= self._names_expire:
            names: dict[str, str] = {}
            try:
                async for page in await self.client.conversations_list(
                    types="public_channel,private_channel", exclude_archived=True, limit=200
                ):
                    for channel in page.get("channels", []):
                        if channel.get("name"):
                            names[channel["name"]] = channel["id"]
            except SlackApiError as exc:
                log.warning("conversations.list failed: %s", exc.response.get("error"))
            self._names = names
            self._names_expire = self._monotonic() + self.ttl
        return self._names.get(name)


def ts_key(ts: str) -> Decimal:
    """A Slack ts as a sortable number (strings sort wrong across digit counts)."""
    try:
        return Decimal(ts)
    except InvalidOperation:
        return Decimal(0)


@dataclass(frozen=True, slots=True)
class ChannelMark:
    """Where catch-up starts in one channel."""

    channel: str
    channel_type: str  # "channel" or "group" (private)
    oldest: str  # ts of the newest stored message: fetch what came after it
    thread_ts: str | None  # the thread we were last part of, checked for new replies


async def plan_catch_up(client: AsyncWebClient, store: Store, team_id: str) -> list[ChannelMark]:
    """Where catch-up starts in every channel the bot knows (read before listening).

    Channels come from ``conversations.list`` (those the bot is in) and Hearth's channel table;
    each starts after its newest stored message. A channel with nothing stored starts where
    the community's newest message is (roughly when the bot went down); a community with
    nothing stored at all gets no catch-up (a fresh install imports history separately).
    """
    channels: dict[str, str] = {}
    try:
        async for page in await client.conversations_list(
            types="public_channel,private_channel", exclude_archived=True, limit=200
        ):
            for c in page.get("channels", []):
                if c.get("is_member"):
                    channels[c["id"]] = "group" if c.get("is_private") else "channel"
    except SlackApiError as exc:
        log.warning("catch-up: conversations.list failed: %s", exc.response.get("error"))
    for row in await store.channels(team_id):
        if not row["channel_id"].startswith("D"):
            channels.setdefault(row["channel_id"], "channel")
    marks = {channel: await store.last_message_id(team_id, channel) for channel in channels}
    stamps = [split_message_id(m)[1] for m in marks.values() if m and ":" in m]
    if not stamps:
        return []
    newest = max(stamps, key=ts_key)
    plan = []
    for channel, mark in marks.items():
        oldest = split_message_id(mark)[1] if mark and ":" in mark else newest
        thread_ts = None
        if mark:
            # The conversation we were last part of may have gone on in its thread: the
            # thread of the last stored message, or the replies to that message itself.
            row = await store.contribution(team_id, mark)
            thread_id = row.get("thread_id") if row else None
            thread_ts = split_message_id(thread_id or mark)[1]
        plan.append(ChannelMark(channel, channels[channel], oldest, thread_ts))
    return plan


async def fetch_missed(client: AsyncWebClient, mark: ChannelMark, limit: int) -> list[dict]:
    """Messages after ``mark`` (history, then replies in active threads), oldest first.

    At most ``limit`` messages. Threads checked: those whose parent is in the window, and the
    thread we were last part of. A thread older than the mark that only got new replies while
    we were down is not seen (``conversations.history`` does not list it).
    """
    fetched: list[dict[str, Any]] = []
    cursor = None
    while len(fetched) < limit:
        page = await client.conversations_history(
            channel=mark.channel,
            oldest=mark.oldest,
            limit=min(200, limit - len(fetched)),
            cursor=cursor,
        )
        fetched.extend(page.get("messages", []))
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            break
    threads = [
        m["ts"]
        for m in fetched
        if m.get("reply_count") and m.get("ts") and m.get("thread_ts") == m.get("ts")
    ]
    if mark.thread_ts and mark.thread_ts not in threads:
        threads.append(mark.thread_ts)
    for parent in threads:
        if len(fetched) >= limit:
            break
        try:
            fetched.extend(await _replies(client, mark, parent, limit - len(fetched)))
        except SlackApiError as exc:
            # A deleted parent answers thread_not_found; the rest of the channel still counts.
            log.info(
                "catch-up: thread %s in %s: %s", parent, mark.channel, exc.response.get("error")
            )
    fetched = fetched[:limit]
    fetched.sort(key=lambda m: ts_key(str(m.get("ts", "0"))))
    return fetched


async def _replies(client: AsyncWebClient, mark: ChannelMark, parent: str, limit: int) -> list:
    replies: list[dict[str, Any]] = []
    cursor = None
    while len(replies) < limit:
        page = await client.conversations_replies(
            channel=mark.channel,
            ts=parent,
            oldest=mark.oldest,
            limit=min(200, limit - len(replies)),
            cursor=cursor,
        )
        replies.extend(m for m in page.get("messages", []) if m.get("ts") != parent)
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            break
    return replies
