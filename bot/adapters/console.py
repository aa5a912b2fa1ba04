"""The console adapter: an in-memory community you drive by typing or from tests.

``ConsoleSession`` reads like a user (errbot's test backend is the model)::

    s = await ConsoleSession.open(app)
    await s.say("alice", "Has anyone read Smith (2020)?")
    await s.reply("bob", 1, "Yes, thanks @alice!")
    out = await s.command("carol", "/course stats")

Everything goes through the same runtime, engine, sent ledger and scheduler as the real
platforms; "sending" appends to :attr:`ConsoleSession.outbox` (and prints, in the REPL).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from bot.actions import Action, Attach, DirectMessage, PostMessage, React, Reply
from bot.app import HearthApp
from bot.events import (
    Attachment,
    ButtonPressed,
    CommandInvoked,
    Event,
    MemberJoined,
    MemberLeft,
    MemberRef,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    PlaceRef,
    ReactionAdded,
    ReactionRemoved,
)
from storage.repos import C

PLATFORM = "console"
_MENTION = re.compile(r"@([A-Za-z][\w.-]*)")


@dataclass(slots=True)
class Sent:
    """One thing the bot "sent" on the console."""

    kind: str  # reply, post, dm, react, attach
    to: str  # member name, channel, or "you"
    text: str
    action: Action
    #: The message id a tagged post got (members answer in its thread with ``thread=``).
    message_id: str | None = None


class ConsoleSession:
    platform = PLATFORM

    def __init__(self, app: HearthApp, community_id: str, echo: Callable[[str], None] | None):
        self.app = app
        self.community_id = community_id
        self.members: dict[str, MemberRef] = {}
        self.outbox: list[Sent] = []
        self.echo = echo
        self._next_id = 1
        self.channel_of: dict[str, str] = {}  # message id -> channel (for replies)
        self.thread_of: dict[str, str | None] = {}
        #: PostMessage tags -> the message id the post got here (see bot.adapters.base).
        self.tagged: dict[str, str] = {}
        #: Channels recorded in the store, as the platform adapters record theirs: commands
        #: that name a channel can then tell a typo from a quiet channel.
        self.channels_seen: set[str] = set()

    @classmethod
    async def open(
        cls,
        app: HearthApp,
        *,
        community_id: str | None = None,
        echo: Callable[[str], None] | None = None,
    ) -> ConsoleSession:
        session = cls(app, community_id or app.settings.console.community, echo)
        app.add_adapter(session)
        await session._load()
        return session

    async def _load(self) -> None:
        """Pick up members, channels and message numbering from an existing database."""
        store = self.app.store
        await store.flush()
        self.channels_seen = {r["channel_id"] for r in await store.channels(self.community_id)}
        for row in await store.members(self.community_id, include_bots=True):
            self.members[row["member_id"]] = MemberRef(
                PLATFORM,
                row["member_id"],
                row["display_name"] or row["member_id"],
                is_bot=row["is_bot"],
                is_facilitator=row["is_facilitator"],
            )
        async with store.engine.connect() as conn:
            ids = (
                await conn.execute(
                    select(C.c.message_id, C.c.channel_id, C.c.thread_id).where(
                        C.c.community_id == self.community_id
                    )
                )
            ).all()
        numbers = [int(i) for i, _c, _t in ids if i.isdigit()]
        self._next_id = max(numbers, default=0) + 1
        for message_id, channel, thread in ids:
            self.channel_of[message_id] = channel
            self.thread_of[message_id] = thread

    # -- adapter side ---------------------------------------------------------------------------

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, action: Action, origin: Event | None) -> None:
        if isinstance(action, Reply):
            text = action.rich.as_text() if action.rich else action.text
            for f in action.files:
                text += f"\n[file: {f.filename}, {len(f.data)} bytes]"
            for b in action.buttons:
                text += f"\n[button {b.label}: type :press {b.action_id} {b.value}]".rstrip()
            who = origin.member.display_name if isinstance(origin, CommandInvoked) else "you"
            self._emit(Sent("reply", who, text, action), ("(private) " if action.ephemeral else ""))
        elif isinstance(action, PostMessage):
            text = action.rich.as_text() if action.rich else action.text
            if action.as_thread_title:
                text = f"[thread] {action.as_thread_title}\n{text}"
            for f in action.files:
                text += f"\n[file: {f.filename}, {len(f.data)} bytes]"
            message_id = None
            if action.tag:
                # Like a platform, give the post a message id so members can answer in its
                # thread (":thread ID text" in the REPL, say(..., thread=ID) in tests).
                # Derived from the tag, not the running number: unique, stable across
                # restarts, and never equal to a member's (numeric) message id.
                message_id = action.tag.replace(":", "-")
                self.channel_of[message_id] = action.place.channel_id
                self.thread_of[message_id] = message_id
                self.tagged[action.tag] = message_id
                text += f"\n(message {message_id}: answer with :thread {message_id} <text>)"
            self._emit(Sent("post", "#" + action.place.channel_id, text, action, message_id))
        elif isinstance(action, DirectMessage):
            text = action.rich.as_text() if action.rich else action.text
            for b in action.buttons:
                text += f"\n[button {b.label}: type :press {b.action_id} {b.value}]".rstrip()
            self._emit(Sent("dm", action.member.display_name or action.member.id, text, action))
        elif isinstance(action, React):
            self._emit(Sent("react", action.message_id, action.emoji, action))
        elif isinstance(action, Attach):
            self._emit(Sent("attach", "#" + action.place.channel_id, action.file.filename, action))

    def _emit(self, sent: Sent, prefix: str = "") -> None:
        self.outbox.append(sent)
        if self.echo is not None:
            self.echo(f"[hearth -> {sent.kind} {sent.to}] {prefix}{sent.text}")

    # -- driving side -----------------------------------------------------------------------------

    def member(self, name: str, *, facilitator: bool = False, bot: bool = False) -> MemberRef:
        """The member called ``name`` (created on first use; its id is the name)."""
        ref = self.members.get(name)
        if ref is None or (facilitator and not ref.is_facilitator):
            ref = MemberRef(PLATFORM, name, name, is_bot=bot, is_facilitator=facilitator)
            self.members[name] = ref
        return ref

    def place(self, channel: str = "general", thread: str | None = None) -> PlaceRef:
        return PlaceRef(PLATFORM, self.community_id, channel, thread, channel_name=channel)

    @property
    def now(self):
        return self.app.clock.now()

    def _new_id(self) -> str:
        message_id = str(self._next_id)
        self._next_id += 1
        return message_id

    async def _handle(self, event: Event) -> list[Sent]:
        before = len(self.outbox)
        await self.app.runtime.handle(event, origin=self)
        return self.outbox[before:]

    async def say(
        self,
        name: str,
        text: str | None,
        *,
        channel: str | None = None,
        thread: str | None = None,
        reply_to: int | str | None = None,
        attachments: tuple[str, ...] = (),
        message_id: str | None = None,
        system: bool = False,
    ) -> str:
        """Post a message as ``name``; returns its message id.

        Without ``channel`` it goes to the channel of the thread or message it answers, else
        to ``general``.
        """
        reply_id = str(reply_to) if reply_to is not None else None
        if reply_id is not None:
            channel = self.channel_of.get(reply_id, channel)
            thread = thread or self.thread_of.get(reply_id)
        if channel is None:
            channel = self.channel_of.get(thread, "general") if thread else "general"
        message_id = message_id or self._new_id()
        author = self.member(name)
        mentions = tuple(
            self.members[m].id for m in _MENTION.findall(text or "") if m in self.members
        )
        event = MessagePosted(
            at=self.now,
            author=author,
            place=self.place(channel, thread),
            message_id=message_id,
            text=text,
            reply_to_id=reply_id,
            mentions=mentions,
            attachments=tuple(Attachment(a) for a in attachments),
            is_system=system,
        )
        self.channel_of[message_id] = channel
        self.thread_of[message_id] = thread
        if channel not in self.channels_seen:
            await self.app.store.upsert_channel(self.community_id, channel, channel)
            self.channels_seen.add(channel)
        await self._handle(event)
        return message_id

    async def reply(self, name: str, reply_to: int | str, text: str, **kw) -> str:
        return await self.say(name, text, reply_to=reply_to, **kw)

    async def edit(self, name: str, message_id: int | str, text: str) -> list[Sent]:
        mid = str(message_id)
        mentions = tuple(self.members[m].id for m in _MENTION.findall(text) if m in self.members)
        return await self._handle(
            MessageEdited(
                at=self.now,
                place=self.place(self.channel_of.get(mid, "general")),
                message_id=mid,
                text=text,
                author=self.member(name),
                mentions=mentions,
            )
        )

    async def delete(self, message_id: int | str) -> list[Sent]:
        mid = str(message_id)
        return await self._handle(
            MessageDeleted(
                at=self.now, place=self.place(self.channel_of.get(mid, "general")), message_id=mid
            )
        )

    async def react(self, name: str, message_id: int | str, emoji: str = "👍") -> list[Sent]:
        mid = str(message_id)
        return await self._handle(
            ReactionAdded(
                at=self.now,
                member=self.member(name),
                place=self.place(self.channel_of.get(mid, "general")),
                message_id=mid,
                emoji=emoji,
            )
        )

    async def unreact(self, name: str, message_id: int | str, emoji: str = "👍") -> list[Sent]:
        mid = str(message_id)
        return await self._handle(
            ReactionRemoved(
                at=self.now,
                member=self.member(name),
                place=self.place(self.channel_of.get(mid, "general")),
                message_id=mid,
                emoji=emoji,
            )
        )

    async def join(self, name: str, *, facilitator: bool = False) -> list[Sent]:
        return await self._handle(
            MemberJoined(
                at=self.now,
                member=self.member(name, facilitator=facilitator),
                community_id=self.community_id,
            )
        )

    async def leave(self, name: str) -> list[Sent]:
        return await self._handle(
            MemberLeft(at=self.now, member=self.member(name), community_id=self.community_id)
        )

    async def command(self, name: str, line: str, *, channel: str = "general") -> str:
        """Run ``/course ...`` as ``name``; returns the text of the bot's answer(s)."""
        text = line.strip()
        root = "/" + self.app.engine.registry.root
        if text.startswith(root):
            text = text[len(root) :]
        event = CommandInvoked(
            at=self.now,
            member=self.member(name),
            place=self.place(channel),
            name="",
            text=text.strip(),
        )
        sent = await self._handle(event)
        return "\n".join(s.text for s in sent)

    async def press(self, name: str, action_id: str, value: str = "") -> str:
        event = ButtonPressed(
            at=self.now,
            member=self.member(name),
            place=self.place(),
            action_id=action_id,
            value=value,
        )
        sent = await self._handle(event)
        return "\n".join(s.text for s in sent)

    async def advance(self, delta: timedelta) -> int:
        """Move the fake clock and run every scheduled job that fell due, in order."""
        clock = self.app.clock
        if not hasattr(clock, "advance"):
            raise RuntimeError("the clock of this session cannot be moved")
        clock.advance(delta)
        return await self.app.scheduler.advance_to(clock.now())

    async def tick(self, job: str, period: str | None = None) -> list[Sent]:
        """Fire a job now for this community (``:tick NAME [PERIOD]``)."""
        before = len(self.outbox)
        await self.app.scheduler.fire_now(job, self.community_id, period)
        return self.outbox[before:]

    def dms_to(self, name: str) -> list[Sent]:
        return [s for s in self.outbox if s.kind == "dm" and s.to == name]
