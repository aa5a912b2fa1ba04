"""Contribution tracking: every member message becomes a contribution with kinds and edges.

This is the hot path. A message is classified (``bot.classify``), its reply target resolved
from a bounded in-memory map of recent messages (falling back to the database), and its rows
queued on the batched writer; nothing here waits for a commit. Redeliveries are dropped by the
unique (community, message id) key, edits re-classify, deletes remove the contribution and
its edges.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from datetime import timedelta
from typing import Any

from sqlalchemy import and_

from bot.actions import Action
from bot.classify import KINDS, classify, kinds_from_mask
from bot.commands import CommandSpec, Option
from bot.engine import Cog, CommandContext, Services
from bot.errors import UserError
from bot.events import (
    Event,
    MemberLeft,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    PlaceRef,
    ReactionAdded,
    ReactionRemoved,
)
from bot.wording import counted
from storage.repos import C, E, masks_to_kinds

log = logging.getLogger(__name__)

RECENT_MESSAGES = 50_000


class RecentAuthors:
    """Bounded map (community, message id) -> (author id, thread id), newest kept.

    An author of "" records a message looked up and not found."""

    def __init__(self, capacity: int = RECENT_MESSAGES) -> None:
        self._data: OrderedDict[tuple[str, str], tuple[str, str | None]] = OrderedDict()
        self._capacity = capacity

    def put(
        self, community_id: str, message_id: str, author_id: str, thread_id: str | None = None
    ) -> None:
        self._data[(community_id, message_id)] = (author_id, thread_id)
        if len(self._data) > self._capacity:
            self._data.popitem(last=False)

    def get(self, community_id: str, message_id: str) -> tuple[str, str | None] | None:
        return self._data.get((community_id, message_id))

    def pop(self, community_id: str, message_id: str) -> None:
        self._data.pop((community_id, message_id), None)

    def drop_author(self, author_id: str) -> None:
        for key in [k for k, v in self._data.items() if v[0] == author_id]:
            del self._data[key]


class ContributionsCog(Cog):
    name = "contributions"

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self.recent = RecentAuthors()
        # Members who switched tracking off: their messages are not recorded at all.
        self.untracked: set[tuple[str, str]] = set()
        self._tracked_channels: dict[str, set[str]] = {}
        self.text_retention = services.settings.storage.retain_text_days > 0
        self._text_warned = False

    async def start(self) -> None:
        for community in await self.store.communities():
            for member_id, value in (await self.store.prefs(community["id"], "tracking")).items():
                if value == "off":
                    self.untracked.add((community["id"], member_id))

    def commands(self) -> list[CommandSpec]:
        return [
            CommandSpec(
                name="stats",
                description="Participation by kind for the course, a member or a channel",
                handler=self.cmd_stats,
                options=(
                    Option("member", "member", "Whose participation (default: everyone)"),
                    Option(
                        "days",
                        "integer",
                        "How many days back (default 7)",
                        min_value=1,
                        max_value=3650,
                        default=7,
                    ),
                    Option("channel", "channel", "Only this channel and its threads"),
                ),
                facilitator_only=True,
                examples=("stats channel:#readings days:14", "stats member:@alice"),
            ),
            CommandSpec(
                name="me",
                description="Your own participation mirror (only you see it)",
                handler=self.cmd_me,
                options=(
                    Option(
                        "days",
                        "integer",
                        "How many days back (default 7)",
                        min_value=1,
                        max_value=3650,
                        default=7,
                    ),
                ),
            ),
        ]

    # -- channel tracking ---------------------------------------------------------------------

    async def tracked_channels(self, community_id: str) -> set[str]:
        cached = self._tracked_channels.get(community_id)
        if cached is None:
            settings = await self.store.community_settings(community_id)
            cached = set(settings.get("tracked_channels") or self.settings.course.tracked_channels)
            self._tracked_channels[community_id] = cached
        return cached

    def invalidate(self, community_id: str) -> None:
        self._tracked_channels.pop(community_id, None)

    @staticmethod
    def counts(place: PlaceRef, tracked: set[str] | None) -> bool:
        """Whether messages in ``place`` count, given the community's tracked channels."""
        if place.is_direct:
            return False
        if not tracked:
            return True
        return bool({place.channel_id, place.channel_name, place.thread_id} & tracked)

    # -- events -------------------------------------------------------------------------------

    async def on_event(self, event: Event) -> list[Action]:
        if isinstance(event, MessagePosted):
            await self.record(event)
        elif isinstance(event, MessageEdited):
            await self.edit(event)
        elif isinstance(event, MessageDeleted):
            self.remove(event)
        elif isinstance(event, ReactionAdded):
            await self.react(event)
        elif isinstance(event, ReactionRemoved):
            self.unreact(event)
        elif isinstance(event, MemberLeft):
            await self.store.set_member_fields(
                event.community_id, event.member.id, left_at=event.at
            )
        return []

    async def _message(
        self, community_id: str, message_id: str, *, look_up: bool = True
    ) -> tuple[str, str | None] | None:
        """(author, thread id) of a message: from memory, else (with ``look_up``) from the
        database; None when it is not known."""
        known = self.recent.get(community_id, message_id)
        if known is None and look_up:
            known = await self.store.message_origin(community_id, message_id) or ("", None)
            # Remember misses too (as ""): a thread whose opening post Hearth never saw would
            # otherwise cost a query for every reply in it.
            self.recent.put(community_id, message_id, *known)
        return known if known is not None and known[0] else None

    async def _author_of(self, community_id: str, message_id: str) -> str | None:
        known = await self._message(community_id, message_id)
        return known[0] if known else None

    async def record(self, event: MessagePosted) -> bool:
        """Queue one contribution and its edges; False if it does not count."""
        place = event.place
        community_id = place.community_id
        author = event.author.id
        if (community_id, author) in self.untracked:
            return False
        # The tracked channels are loaded once: no await per message after that.
        tracked = self._tracked_channels.get(community_id)
        if tracked is None and not place.is_direct:
            tracked = await self.tracked_channels(community_id)
        if not self.counts(place, tracked):
            return False
        if event.text is None and not self._text_warned:
            self._text_warned = True
            log.warning(
                "message text is withheld by the platform; recording structure only "
                "(question, support and text-based reference kinds are unavailable)"
            )
        reply_to = event.reply_to_id
        in_thread = place.thread_id is not None and place.thread_id != event.message_id
        if reply_to is None and in_thread:
            # A follow-up inside a thread answers the thread's opening post.
            reply_to = place.thread_id
        target = event.reply_to_author_id
        parent = None
        if reply_to is not None:
            # The database is asked only for an author the platform did not give.
            parent = self.recent.get(community_id, reply_to)  # usually known: no await
            if parent is None:
                parent = await self._message(community_id, reply_to, look_up=target is None)
            elif not parent[0]:
                parent = None  # looked up before and not found
            if target is None and parent is not None:
                target = parent[0]
        if place.thread_id is not None:
            conversation = place.thread_id
        elif reply_to is None:
            conversation = event.message_id
        elif parent is not None:
            conversation = parent[1] or reply_to
        else:  # replies to a message not seen yet: resolved when read (storage.queries)
            conversation = None
        replies_to_other = reply_to is not None and target != author
        mentioned = (
            tuple(dict.fromkeys(m for m in event.mentions if m != author)) if event.mentions else ()
        )
        result = classify(
            event.text,
            is_reply=reply_to is not None,
            replies_to_other=replies_to_other,
            mentions_other=bool(mentioned),
            has_attachments=bool(event.attachments),
            in_thread=in_thread,
        )
        row = {
            "community_id": community_id,
            "message_id": event.message_id,
            "member_id": author,
            "channel_id": place.channel_id,
            "thread_id": place.thread_id,
            "reply_to_id": reply_to,
            "reply_to_member_id": target if target != author else None,
            "conversation_id": conversation,
            "created_at": event.at,
            "kinds": result.mask,
            "word_count": result.word_count,
            "attachments": len(event.attachments),
            "text": event.text if self.text_retention else None,
            "edited_at": None,
        }
        weights = self.settings.analytics
        rows = [(C, row)]  # the contribution, then its edges
        if target is not None and target != author:
            rows.append(
                (E, self._edge(community_id, "reply", author, target, event, weights.reply_weight))
            )
        for member_id in mentioned:
            if member_id != target:
                edge = self._edge(
                    community_id, "mention", author, member_id, event, weights.mention_weight
                )
                rows.append((E, edge))
        # All or nothing: past the buffer bound (database down for long) this raises
        # BufferFull before queueing, and the engine logs the event as not recorded.
        self.store.writer.insert_ignore_together(rows)
        self.recent.put(community_id, event.message_id, author, place.thread_id)
        return True

    @staticmethod
    def _edge(community_id, kind, source, target, event, weight, detail="") -> dict[str, Any]:
        return {
            "community_id": community_id,
            "kind": kind,
            "source_id": source,
            "target_id": target,
            "message_id": event.message_id,
            "detail": detail,
            "weight": weight,
            "created_at": event.at,
        }

    async def edit(self, event: MessageEdited) -> None:
        community_id = event.place.community_id
        row = await self.store.contribution(community_id, event.message_id)
        if row is None:
            return
        author = row["member_id"]
        mentioned = tuple(dict.fromkeys(m for m in event.mentions if m != author))
        attachments = (
            len(event.attachments) if event.attachments is not None else row["attachments"]
        )
        in_thread = row["thread_id"] is not None and row["thread_id"] != row["message_id"]
        result = classify(
            event.text,
            is_reply=row["reply_to_id"] is not None,
            replies_to_other=row["reply_to_id"] is not None and row["reply_to_member_id"] != author,
            mentions_other=bool(mentioned),
            has_attachments=attachments > 0,
            in_thread=in_thread,
        )
        writer = self.store.writer
        where = and_(C.c.community_id == community_id, C.c.message_id == event.message_id)
        writer.update(
            C,
            where,
            {
                "kinds": result.mask,
                "word_count": result.word_count,
                "attachments": attachments,
                "text": event.text if self.text_retention else None,
                "edited_at": event.at,
            },
        )
        writer.delete(
            E,
            and_(
                E.c.community_id == community_id,
                E.c.message_id == event.message_id,
                E.c.kind == "mention",
            ),
        )
        for member_id in mentioned:
            if member_id != row["reply_to_member_id"]:
                writer.insert_ignore(
                    E,
                    {
                        "community_id": community_id,
                        "kind": "mention",
                        "source_id": author,
                        "target_id": member_id,
                        "message_id": event.message_id,
                        "detail": "",
                        "weight": self.settings.analytics.mention_weight,
                        "created_at": row["created_at"],
                    },
                )

    def remove(self, event: MessageDeleted) -> None:
        community_id = event.place.community_id
        writer = self.store.writer
        writer.delete(C, and_(C.c.community_id == community_id, C.c.message_id == event.message_id))
        # Replies, mentions and reactions carried by the deleted message go with it.
        writer.delete(E, and_(E.c.community_id == community_id, E.c.message_id == event.message_id))
        self.recent.pop(community_id, event.message_id)

    async def react(self, event: ReactionAdded) -> None:
        community_id = event.place.community_id
        if (community_id, event.member.id) in self.untracked:
            return
        target = event.message_author_id or await self._author_of(community_id, event.message_id)
        if target is None or target == event.member.id:
            return
        self.store.writer.insert_ignore(
            E,
            {
                "community_id": community_id,
                "kind": "reaction",
                "source_id": event.member.id,
                "target_id": target,
                "message_id": event.message_id,
                "detail": event.emoji[:100],
                "weight": self.settings.analytics.reaction_weight,
                "created_at": event.at,
            },
        )

    def unreact(self, event: ReactionRemoved) -> None:
        self.store.writer.delete(
            E,
            and_(
                E.c.community_id == event.place.community_id,
                E.c.kind == "reaction",
                E.c.message_id == event.message_id,
                E.c.source_id == event.member.id,
                E.c.detail == event.emoji[:100],
            ),
        )

    # -- commands -----------------------------------------------------------------------------

    async def participation_lines(
        self, community_id: str, member_id: str | None, days: int, channel_id: str | None = None
    ) -> list[str]:
        now = self.clock.now()
        since = now - timedelta(days=days)
        total, masks, words = await self.store.kind_counts(
            community_id, member_id=member_id, since=since, channel_id=channel_id
        )
        by_kind = masks_to_kinds(masks, KINDS)
        lines = [f"{counted(total, 'contribution')}, {counted(words, 'word')}"]
        lines.append(
            "  " + ", ".join(f"{kind.replace('_', ' ')}: {by_kind[kind]}" for kind in KINDS)
        )
        # Interactions are not kept per channel: a member's are given for the whole course.
        if member_id is not None and channel_id is None:
            edges = await self.store.edge_counts(community_id, member_id, since)
            given = sum(edges["given"].values())
            received = sum(edges["received"].values())
            lines.append(f"  interactions given: {given}, received: {received}")
        return lines

    async def cmd_stats(
        self, ctx: CommandContext, member: str | None, days: int, channel: str | None = None
    ) -> str:
        cid = ctx.community_id
        channel_id, place = await self._channel(cid, channel) if channel else (None, "")
        period = f"last {counted(days, 'day')}"
        if member:
            row = await self.store.find_member(cid, member)
            if row is None:
                answer = f"I don't know a member called {member}."
                if member.isdigit():  # the first option is the member, not the days
                    root = self.services.registry.root
                    answer += f" For the last {member} days: `/{root} stats days:{member}`."
                return answer
            name = row["display_name"] or row["member_id"]
            header = f"{name} in {place}, {period}:" if place else f"{name}, {period}:"
            lines = await self.participation_lines(cid, row["member_id"], days, channel_id)
            extra = [] if place else await self._extra_member_lines(cid, row["member_id"])
        else:
            header = f"{place or ctx.community['name']}, {period}:"
            lines = await self.participation_lines(cid, None, days, channel_id)
            active, members = await self.store.active_members(
                cid, since=ctx.now - timedelta(days=days), channel_id=channel_id
            )
            who = "members who posted here" if place else "active members"
            lines.append(f"  {who}: {active} of {members}")
            extra = []
        return "\n".join([header, *lines, *extra])

    async def _channel(self, community_id: str, name_or_id: str) -> tuple[str, str]:
        """(channel id, "#name") for a channel option: an id, or a name the platform adapter
        has recorded. Where no channel is recorded at all (the console), the name is the id."""
        row = await self.store.find_channel(community_id, name_or_id)
        if row is not None:
            return row["channel_id"], f"#{row['name'] or row['channel_id']}"
        if await self.store.channels(community_id):
            raise UserError(f"I don't know a channel called #{name_or_id}.")
        return name_or_id, f"#{name_or_id}"

    async def cmd_me(self, ctx: CommandContext, days: int) -> str:
        lines = await self.participation_lines(ctx.community_id, ctx.member_id, days)
        extra = await self._extra_member_lines(ctx.community_id, ctx.member_id)
        return "\n".join(
            [
                f"Your participation, last {counted(days, 'day')} (only you see this):",
                *lines,
                *extra,
            ]
        )

    async def _extra_member_lines(self, community_id: str, member_id: str) -> list[str]:
        """Lines other capabilities add to a member's stats (pattern, trend)."""
        lines: list[str] = []
        engine = self.services.engine
        for cog in engine.cogs if engine else []:
            describe = getattr(cog, "describe_member", None)
            if describe is not None and cog is not self:
                lines.extend(await describe(community_id, member_id))
        return lines

    # -- privacy ------------------------------------------------------------------------------

    async def erase_member(self, community_id: str | None, member_id: str) -> None:
        # Rows are deleted by the store's schema-wide erase; only caches live here.
        self.recent.drop_author(member_id)
        self.untracked = {k for k in self.untracked if k[1] != member_id}

    async def member_data(self, community_id: str, member_id: str) -> dict[str, Any]:
        total, masks, words = await self.store.kind_counts(community_id, member_id=member_id)
        return {
            "contributions": total,
            "by_kind": masks_to_kinds(masks, KINDS),
            "words": words,
            "text_stored": self.text_retention,
            "kinds_legend": {str(1 << i): k for i, k in enumerate(KINDS)},
            "example_kinds": sorted(kinds_from_mask(max(masks, default=0))),
        }
