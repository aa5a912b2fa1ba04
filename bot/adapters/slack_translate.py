"""Slack payloads in, neutral events out (pure: no I/O, no slack_bolt, testable with recorded
payloads).

One translation table per payload family, as opsdroid does per connector: Events API
``event_callback`` bodies go through :data:`EVENT_TRANSLATORS` keyed by event type (and, for
messages, :data:`COUNTED_SUBTYPES` / :data:`SYSTEM_SUBTYPES` by subtype); slash commands and
``block_actions`` have their own functions. The same :func:`translate_message` serves live
events and catch-up from ``conversations.history``, so a message counts the same either way.

Conventions (see ``bot/ids.py``): the community id is the workspace (team) id, the message id
is ``"<channel>:<ts>"``, a thread is identified by its parent's message id, and reactions keep
Slack's name (``"tada"``, ``"+1::skin-tone-2"``).

Each translator returns an event, or ``None`` for something Hearth deliberately ignores (bot
messages, hidden housekeeping subtypes, reactions to files) after logging why at debug level.
A payload that is malformed (a missing channel, a ``ts`` that is not a number) raises
:class:`TranslationError`, which the adapter logs and drops: never an exception escaping it.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.events import (
    Attachment,
    ButtonPressed,
    CommandInvoked,
    Event,
    MemberJoined,
    MemberRef,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    PlaceRef,
    ReactionAdded,
    ReactionRemoved,
)
from bot.ids import slack_message_id

log = logging.getLogger(__name__)

PLATFORM = "slack"

#: Message subtypes that are a member's own contribution.
COUNTED_SUBTYPES = frozenset({"thread_broadcast", "file_share", "me_message"})
#: Housekeeping a member caused: the engine registers the member but records no contribution.
SYSTEM_SUBTYPES = frozenset(
    {
        "channel_join",
        "channel_leave",
        "channel_topic",
        "channel_purpose",
        "channel_name",
        "channel_archive",
        "channel_unarchive",
        "channel_convert_to_private",
        "channel_convert_to_public",
        "group_join",
        "group_leave",
        "group_topic",
        "group_purpose",
        "group_name",
        "group_archive",
        "group_unarchive",
        "pinned_item",
        "unpinned_item",
        "reminder_add",
        "huddle_thread",
    }
)
#: Channel types of direct conversations (never contributions, see ContributionsCog.counts).
DIRECT_TYPES = frozenset({"im", "mpim", "app_home"})

_USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_TOKEN = re.compile(r"<([^<>]*)>")
_CHANNEL_TOKEN = re.compile(r"<#([CGD][A-Z0-9]+)(?:\|[^>]*)?>")
_LINK_TOKEN = re.compile(r"<((?:https?|mailto|ftp):[^|<>]*)(?:\|([^<>]*))?>")


class TranslationError(ValueError):
    """A payload Hearth cannot read; the message says what was wrong with it."""


# -- small pure helpers -------------------------------------------------------------------------


def ts_to_datetime(ts: Any) -> datetime:
    """A Slack ``ts`` (``"1712345678.000100"``) as an aware UTC datetime."""
    try:
        seconds = Decimal(str(ts))
    except (InvalidOperation, ValueError):
        raise TranslationError(f"bad ts {str(ts)[:40]!r}") from None
    if not seconds.is_finite() or seconds < 0:
        raise TranslationError(f"bad ts {str(ts)[:40]!r}")
    # Exact: a float would turn ".000100" into 99 microseconds now and then.
    whole = int(seconds)
    micros = int((seconds - whole) * 1_000_000)
    try:
        return datetime.fromtimestamp(whole, tz=UTC) + timedelta(microseconds=micros)
    except (OverflowError, ValueError, OSError):  # past year 9999 or the platform's time_t
        raise TranslationError(f"ts out of range {str(ts)[:40]!r}") from None


def split_message_id(message_id: str) -> tuple[str, str]:
    """The ``(channel, ts)`` of a message id built by :func:`bot.ids.slack_message_id`."""
    channel, sep, ts = message_id.partition(":")
    if not sep or not channel or not ts:
        raise TranslationError(f"not a Slack message id: {message_id[:60]!r}")
    return channel, ts


def mentions_in(text: str | None, *, exclude: str | None = None) -> tuple[str, ...]:
    """User ids mentioned as ``<@U…>`` / ``<@U…|name>``, in order, once each."""
    found = dict.fromkeys(_USER_MENTION.findall(text or ""))
    found.pop(exclude or "", None)
    return tuple(found)


def plain_text(text: str | None) -> str | None:
    """Slack mrkdwn as the classifier and the text store should see it.

    ``<@U1>`` becomes ``@U1``, ``<#C1|general>`` ``#general``, ``<https://x|label>``
    ``label (https://x)`` (the URL stays, so the message still counts as a reference), special
    mentions (``<!here>``) their label, and ``&amp; &lt; &gt;`` the characters themselves.
    """
    if text is None:
        return None

    def token(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            return target
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!"):
            if label:
                return label
            return "@" + target[1:].split("^", 1)[0]
        if label and label != target:
            return f"{label} ({target})"
        return target

    return html.unescape(_TOKEN.sub(token, text)) if "<" in text or "&" in text else text


def command_text(text: str) -> str:
    """Slash command text for the shared parser.

    Escaped channels (``<#C1|general>``) become ``#C1`` so options resolve to stable ids; user
    references stay ``<@U1|name>`` (the store resolves those); links lose their brackets.
    """
    text = _CHANNEL_TOKEN.sub(lambda m: "#" + m.group(1), text)
    text = _LINK_TOKEN.sub(lambda m: m.group(1), text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def display_name(user: Mapping[str, Any]) -> str:
    """The name Slack shows for a user object (profile display name first)."""
    profile = user.get("profile")
    if not isinstance(profile, Mapping):
        profile = {}
    for value in (
        profile.get("display_name"),
        profile.get("real_name"),
        user.get("real_name"),
        user.get("name"),
    ):
        if isinstance(value, str) and value.strip():
            return value.strip()
    return str(user.get("id", ""))


def member_from_user(user: Mapping[str, Any], *, is_facilitator: bool = False) -> MemberRef:
    """A MemberRef from a ``users.info`` / ``team_join`` user object."""
    user_id = user.get("id")
    if not isinstance(user_id, str) or not user_id:
        raise TranslationError("user object without an id")
    tz = user.get("tz")
    return MemberRef(
        PLATFORM,
        user_id,
        display_name(user),
        is_bot=bool(user.get("is_bot")) or user_id == "USLACKBOT",
        is_facilitator=is_facilitator,
        timezone=tz if isinstance(tz, str) and tz else None,
    )


def is_admin(user: Mapping[str, Any]) -> bool:
    """Workspace admins and owners (who may count as facilitators)."""
    return any(user.get(k) for k in ("is_admin", "is_owner", "is_primary_owner"))


def _required(mapping: Mapping[str, Any], key: str, what: str) -> str:
    value = mapping.get(key)
    if not isinstance(value, str) or not value:
        raise TranslationError(f"{what} without {key}")
    return value


def _attachments(message: Mapping[str, Any]) -> tuple[Attachment, ...]:
    given = message.get("files")
    # Anything but a list (hostile or broken payloads: true, a string) carries no files.
    files = list(given) if isinstance(given, list) else []
    if not files and isinstance(message.get("file"), Mapping):
        files = [message["file"]]  # older file_share events carry a single ``file``
    out = []
    for f in files:
        if not isinstance(f, Mapping) or f.get("mode") == "tombstone":
            continue
        name = f.get("name") or f.get("title") or f.get("id") or "file"
        out.append(
            Attachment(
                str(name),
                url=str(f.get("url_private") or f.get("permalink") or ""),
                content_type=str(f.get("mimetype") or ""),
            )
        )
    return tuple(out)


def _place(
    team_id: str, channel: str, channel_type: str | None, thread_ts: str | None, ts: str | None
) -> PlaceRef:
    thread_id = None
    if thread_ts and thread_ts != ts:
        thread_id = slack_message_id(channel, thread_ts)
    return PlaceRef(
        PLATFORM,
        team_id,
        channel,
        thread_id,
        is_direct=(channel_type or "") in DIRECT_TYPES or channel.startswith("D"),
    )


def _is_bot_message(message: Mapping[str, Any], bot_user_id: str | None) -> bool:
    return (
        message.get("subtype") == "bot_message"
        or bool(message.get("bot_id"))
        or (bot_user_id is not None and message.get("user") == bot_user_id)
        or message.get("user") == "USLACKBOT"
    )


def _ignore(reason: str, *args: Any) -> None:
    log.debug("ignoring Slack payload: " + reason, *args)
    return None


# -- messages ------------------------------------------------------------------------------


def translate_message(
    message: Mapping[str, Any],
    *,
    team_id: str,
    channel: str | None = None,
    channel_type: str | None = None,
    bot_user_id: str | None = None,
    delivery_id: str | None = None,
) -> Event | None:
    """One ``message`` event, or one message from ``conversations.history`` / ``.replies``.

    History messages carry no channel, so catch-up passes ``channel`` (and ``channel_type``).
    """
    channel = channel or message.get("channel")
    if not isinstance(channel, str) or not channel:
        raise TranslationError("message without channel")
    channel_type = channel_type or message.get("channel_type")
    subtype = message.get("subtype")
    if subtype is not None and not isinstance(subtype, str):
        raise TranslationError("subtype is not a string")
    if channel_type is not None and not isinstance(channel_type, str):
        raise TranslationError("channel_type is not a string")
    if subtype == "message_changed":
        return _message_changed(message, team_id, channel, channel_type, bot_user_id, delivery_id)
    if subtype == "message_deleted":
        deleted_ts = _required(message, "deleted_ts", "message_deleted")
        ts_to_datetime(deleted_ts)
        return MessageDeleted(
            at=ts_to_datetime(message.get("ts") or message.get("event_ts") or deleted_ts),
            delivery_id=delivery_id,
            place=_place(team_id, channel, channel_type, None, None),
            message_id=slack_message_id(channel, deleted_ts),
        )
    if _is_bot_message(message, bot_user_id):
        return _ignore("bot message in %s", channel)
    if subtype is not None and subtype not in COUNTED_SUBTYPES and subtype not in SYSTEM_SUBTYPES:
        return _ignore("message subtype %s", subtype)
    ts = _required(message, "ts", "message")
    user = _required(message, "user", "message")
    at = ts_to_datetime(ts)
    thread_ts = message.get("thread_ts")
    if thread_ts is not None:
        if not isinstance(thread_ts, str):
            raise TranslationError("thread_ts is not a string")
        ts_to_datetime(thread_ts)
    place = _place(team_id, channel, channel_type, thread_ts, ts)
    is_system = subtype in SYSTEM_SUBTYPES
    reply_to_id = place.thread_id
    reply_to_author = message.get("parent_user_id")
    if reply_to_author is None and isinstance(message.get("root"), Mapping):
        reply_to_author = message["root"].get("user")  # thread_broadcast carries its root
    raw = message.get("text")
    return MessagePosted(
        at=at,
        delivery_id=delivery_id,
        author=MemberRef(PLATFORM, user),
        place=place,
        message_id=slack_message_id(channel, ts),
        text=plain_text(raw if isinstance(raw, str) else ""),
        reply_to_id=reply_to_id,
        reply_to_author_id=reply_to_author if isinstance(reply_to_author, str) else None,
        mentions=mentions_in(raw if isinstance(raw, str) else "", exclude=bot_user_id),
        attachments=_attachments(message),
        is_system=is_system,
    )


def _message_changed(
    event: Mapping[str, Any],
    team_id: str,
    channel: str,
    channel_type: str | None,
    bot_user_id: str | None,
    delivery_id: str | None,
) -> Event | None:
    new = event.get("message")
    if not isinstance(new, Mapping):
        raise TranslationError("message_changed without message")
    ts = _required(new, "ts", "message_changed")
    at = ts_to_datetime(event.get("ts") or event.get("event_ts") or ts)
    thread_ts = new.get("thread_ts") if isinstance(new.get("thread_ts"), str) else None
    place = _place(team_id, channel, channel_type, thread_ts, ts)
    message_id = slack_message_id(channel, ts)
    if new.get("subtype") == "tombstone":
        # A thread parent deleted while it has replies stays as a tombstone: it is gone.
        return MessageDeleted(at=at, delivery_id=delivery_id, place=place, message_id=message_id)
    if _is_bot_message(new, bot_user_id):
        return _ignore("edit of a bot message in %s", channel)
    previous = event.get("previous_message")
    if isinstance(previous, Mapping) and previous.get("text") == new.get("text"):
        if _attachments(previous) == _attachments(new):
            # Unfurls and reply counters also arrive as message_changed.
            return _ignore("message_changed without a change to text or files")
    user = new.get("user")
    raw = new.get("text") if isinstance(new.get("text"), str) else ""
    return MessageEdited(
        at=at,
        delivery_id=delivery_id,
        place=place,
        message_id=message_id,
        text=plain_text(raw),
        author=MemberRef(PLATFORM, user) if isinstance(user, str) and user else None,
        mentions=mentions_in(raw, exclude=bot_user_id),
        attachments=_attachments(new) if ("files" in new or "file" in new) else None,
    )


# -- other events ----------------------------------------------------------------------------


def _reaction(
    event: Mapping[str, Any], team_id: str, bot_user_id: str | None, delivery_id: str | None
) -> Event | None:
    item = event.get("item")
    if not isinstance(item, Mapping):
        raise TranslationError("reaction without item")
    if item.get("type") != "message":
        return _ignore("reaction to a %s", item.get("type"))
    user = _required(event, "user", "reaction")
    if bot_user_id is not None and user == bot_user_id:
        return _ignore("the bot's own reaction")
    channel = _required(item, "channel", "reaction item")
    ts = _required(item, "ts", "reaction item")
    ts_to_datetime(ts)
    emoji = _required(event, "reaction", "reaction")
    at = ts_to_datetime(event.get("event_ts") or ts)
    place = _place(team_id, channel, None, None, None)
    message_id = slack_message_id(channel, ts)
    member = MemberRef(PLATFORM, user)
    if event.get("type") == "reaction_removed":
        return ReactionRemoved(
            at=at,
            delivery_id=delivery_id,
            member=member,
            place=place,
            message_id=message_id,
            emoji=emoji,
        )
    item_user = event.get("item_user")
    return ReactionAdded(
        at=at,
        delivery_id=delivery_id,
        member=member,
        place=place,
        message_id=message_id,
        emoji=emoji,
        message_author_id=item_user if isinstance(item_user, str) and item_user else None,
    )


def _member_joined_channel(
    event: Mapping[str, Any], team_id: str, bot_user_id: str | None, delivery_id: str | None
) -> Event | None:
    user = _required(event, "user", "member_joined_channel")
    if bot_user_id is not None and user == bot_user_id:
        return _ignore("the bot joined a channel")
    return MemberJoined(
        at=ts_to_datetime(event.get("event_ts") or 0),
        delivery_id=delivery_id,
        member=MemberRef(PLATFORM, user),
        community_id=team_id,
    )


def _team_join(
    event: Mapping[str, Any], team_id: str, bot_user_id: str | None, delivery_id: str | None
) -> Event | None:
    user = event.get("user")
    if not isinstance(user, Mapping):
        raise TranslationError("team_join without a user object")
    member = member_from_user(user)
    if member.is_bot:
        return _ignore("a bot joined the workspace")
    return MemberJoined(
        at=ts_to_datetime(event.get("event_ts") or user.get("updated") or 0),
        delivery_id=delivery_id,
        member=member,
        community_id=team_id,
    )


def _message(
    event: Mapping[str, Any], team_id: str, bot_user_id: str | None, delivery_id: str | None
) -> Event | None:
    return translate_message(
        event, team_id=team_id, bot_user_id=bot_user_id, delivery_id=delivery_id
    )


Translator = Callable[[Mapping[str, Any], str, "str | None", "str | None"], "Event | None"]

#: Events API event type -> translator. The adapter subscribes to exactly these (plus
#: ``app_home_opened``, which is a view to publish rather than something to record).
EVENT_TRANSLATORS: dict[str, Translator] = {
    "message": _message,
    "reaction_added": _reaction,
    "reaction_removed": _reaction,
    "member_joined_channel": _member_joined_channel,
    "team_join": _team_join,
}


def envelope_team(body: Mapping[str, Any]) -> str:
    """The workspace an Events API body belongs to (the community id)."""
    team = body.get("team_id") or body.get("context_team_id")
    if not team and isinstance(body.get("event"), Mapping):
        team = body["event"].get("team")
    if not isinstance(team, str) or not team:
        raise TranslationError("event without team_id")
    return team


def translate_event(body: Mapping[str, Any], *, bot_user_id: str | None = None) -> Event | None:
    """An Events API ``event_callback`` body -> a neutral event (or None when ignored)."""
    if not isinstance(body, Mapping):
        raise TranslationError("body is not an object")
    event = body.get("event")
    if not isinstance(event, Mapping):
        raise TranslationError("event_callback without event")
    kind = event.get("type")
    translator = EVENT_TRANSLATORS.get(kind) if isinstance(kind, str) else None
    if translator is None:
        return _ignore("event type %s", kind)
    if "event_ts" not in event and isinstance(body.get("event_time"), int | float):
        # A few events (team_join) may lack event_ts; the envelope's event_time is as good.
        event = {**event, "event_ts": str(body["event_time"])}
    event_id = body.get("event_id")
    return translator(
        event,
        envelope_team(body),
        bot_user_id,
        event_id if isinstance(event_id, str) else None,
    )


# -- commands and buttons ----------------------------------------------------------------------


def translate_command(form: Mapping[str, Any], *, at: datetime) -> CommandInvoked:
    """A slash command (HTTP form or Socket Mode payload) -> ``CommandInvoked(name="")``.

    The whole text goes to the engine, which parses it with the shared parser; ``at`` is the
    receive time (slash commands carry no timestamp of their own).
    """
    team = _required(form, "team_id", "command")
    user = _required(form, "user_id", "command")
    channel = _required(form, "channel_id", "command")
    channel_name = form.get("channel_name")
    channel_name = channel_name if isinstance(channel_name, str) else ""
    is_direct = channel.startswith("D") or channel_name in ("directmessage", "mpdm")
    if channel_name in ("directmessage", "privategroup", "mpdm"):
        channel_name = ""
    trigger = form.get("trigger_id")
    return CommandInvoked(
        at=at,
        delivery_id=trigger if isinstance(trigger, str) else None,
        member=MemberRef(PLATFORM, user, str(form.get("user_name") or "")),
        place=PlaceRef(PLATFORM, team, channel, is_direct=is_direct, channel_name=channel_name),
        name="",
        text=command_text(str(form.get("text") or "")),
        interaction_id=trigger if isinstance(trigger, str) else None,
    )


def translate_block_actions(payload: Mapping[str, Any], *, at: datetime) -> list[ButtonPressed]:
    """A ``block_actions`` payload -> one ButtonPressed per button in it."""
    if payload.get("type") != "block_actions":
        raise TranslationError(f"not block_actions: {str(payload.get('type'))[:40]}")
    user = payload.get("user")
    team = payload.get("team")
    if not isinstance(user, Mapping) or not isinstance(user.get("id"), str):
        raise TranslationError("block_actions without user")
    team_id = team.get("id") if isinstance(team, Mapping) else user.get("team_id")
    if not isinstance(team_id, str) or not team_id:
        raise TranslationError("block_actions without team")
    channel = payload.get("channel")
    channel_id = channel.get("id") if isinstance(channel, Mapping) else None
    if channel_id is not None and (not isinstance(channel_id, str) or not channel_id):
        raise TranslationError("block_actions with a bad channel id")
    actions = payload.get("actions") or []
    if not isinstance(actions, list):
        raise TranslationError("block_actions without a list of actions")
    member = MemberRef(PLATFORM, user["id"], str(user.get("username") or user.get("name") or ""))
    place = PlaceRef(
        PLATFORM,
        team_id,
        channel_id or "app_home",
        is_direct=channel_id is None or channel_id.startswith("D"),
    )
    trigger = payload.get("trigger_id")
    out = []
    for action in actions:
        if not isinstance(action, Mapping) or not isinstance(action.get("action_id"), str):
            raise TranslationError("block action without action_id")
        out.append(
            ButtonPressed(
                at=at,
                delivery_id=trigger if isinstance(trigger, str) else None,
                member=member,
                place=place,
                action_id=action["action_id"],
                value=str(action.get("value") or ""),
            )
        )
    return out


__all__ = [
    "COUNTED_SUBTYPES",
    "EVENT_TRANSLATORS",
    "SYSTEM_SUBTYPES",
    "TranslationError",
    "command_text",
    "display_name",
    "envelope_team",
    "is_admin",
    "member_from_user",
    "mentions_in",
    "plain_text",
    "split_message_id",
    "translate_block_actions",
    "translate_command",
    "translate_event",
    "translate_message",
    "ts_to_datetime",
]
