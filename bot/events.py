"""Neutral inbound events.

Adapters (Discord, Slack, console, importers) translate platform traffic into these types and
the scheduler turns clock ticks into :class:`ScheduledTick`. The engine and the cogs only ever
see these, so a capability written once works on every platform. Identifiers are strings on
every platform; times are timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class MemberRef:
    """Who did something. ``id`` is the platform's user id as a string."""

    platform: str
    id: str
    display_name: str = ""
    is_bot: bool = False
    # Adapters that can see roles (Discord facilitator role, Slack admin flag) say so here;
    # the engine still checks its own member table as well.
    is_facilitator: bool = False
    timezone: str | None = None


@dataclass(frozen=True, slots=True)
class PlaceRef:
    """Where something happened: a channel in a community, maybe a thread or a DM."""

    platform: str
    community_id: str
    channel_id: str
    thread_id: str | None = None
    is_direct: bool = False
    channel_name: str = ""


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    url: str = ""
    content_type: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of every inbound event."""

    at: datetime
    # A platform delivery id when there is one (Slack event_id); used to drop redeliveries.
    delivery_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MessagePosted(Event):
    author: MemberRef
    place: PlaceRef
    message_id: str
    # None when the platform withheld the text (Discord without the message content intent).
    text: str | None
    reply_to_id: str | None = None
    # Author of the message replied to, when the platform tells us (Slack parent_user_id,
    # Discord's resolved reference); saves a lookup and works for parents we never saw.
    reply_to_author_id: str | None = None
    mentions: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    is_system: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageEdited(Event):
    place: PlaceRef
    message_id: str
    text: str | None
    author: MemberRef | None = None
    mentions: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageDeleted(Event):
    place: PlaceRef
    message_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReactionAdded(Event):
    member: MemberRef
    place: PlaceRef
    message_id: str
    emoji: str
    message_author_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReactionRemoved(Event):
    member: MemberRef
    place: PlaceRef
    message_id: str
    emoji: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberJoined(Event):
    member: MemberRef
    community_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberLeft(Event):
    member: MemberRef
    community_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandInvoked(Event):
    """A slash command (or console ``/course ...`` line).

    Platforms with typed options (Discord) pass ``options`` already parsed; text platforms
    (Slack, console) pass ``text`` and the engine parses it with the shared parser.
    """

    member: MemberRef
    place: PlaceRef
    name: str
    text: str = ""
    options: dict[str, Any] | None = None
    interaction_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ButtonPressed(Event):
    """A confirm button (Discord component, Slack block action, console ``:confirm``)."""

    member: MemberRef
    place: PlaceRef
    action_id: str
    value: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduledTick(Event):
    """A scheduler job firing for one community and one period (already claimed)."""

    job: str
    community_id: str
    period: str
    payload: dict[str, Any] = field(default_factory=dict)


InboundEvent = (
    MessagePosted
    | MessageEdited
    | MessageDeleted
    | ReactionAdded
    | ReactionRemoved
    | MemberJoined
    | MemberLeft
    | CommandInvoked
    | ButtonPressed
    | ScheduledTick
)
