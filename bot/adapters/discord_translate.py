"""Discord to neutral, and command specs to Discord application commands. Pure: no I/O.

Inbound, discord.py objects (what its parsers built from the gateway payloads) become the
neutral events of :mod:`bot.events`. The adapter listens to discord.py's *raw* events for
edits, deletes and reactions, so nothing here depends on discord.py's message cache (which
Hearth turns off to save memory). Conventions (see ``bot/ids.py``):

- community = the guild id; message ids are snowflakes as strings;
- a thread is its own channel on Discord: its messages get ``place.channel_id`` = the parent
  channel and ``place.thread_id`` = the thread id (for a thread started from a message that
  id is the starter message's id, so a follow-up in the thread answers the starter);
- a reply (message reference of type *reply*) gives ``reply_to_id``, and
  ``reply_to_author_id`` when Discord resolved the referenced message and its author is not a
  bot (a reply to one of Hearth's own prompts is no interaction with a peer);
- ``mentions`` are the mentioned users who are not bots (Discord also lists the author of the
  replied-to message there when the reply pings; the contributions cog does not count that
  twice);
- ``text`` is None when Discord withheld it: without the privileged message content intent,
  guild messages arrive with empty content unless they mention the bot;
- bots (Hearth included), webhooks and Discord's system user are ignored; system message types
  (joins, pins, boosts, thread-created notices, thread starter copies, and any type this code
  does not know) become ``MessagePosted(is_system=True)``, which the engine only uses to keep
  the member table current;
- reactions are keyed by ``str(emoji)`` (:func:`bot.ids.discord_emoji`); reactions to Hearth's
  own messages are not interactions between members and are dropped.

Outbound commands: :func:`build_command_groups` turns the shared :class:`CommandSpec` registry
into ``discord.app_commands`` objects: one root group (``/course``), subcommand groups for
two-word commands (``/course prompt post``), typed options (member pickers, integers with
bounds, choices, booleans, channels; dates and text as strings), descriptions cut to Discord's
100 characters. Discord honours ``default_member_permissions`` on top-level commands only, so
facilitator-only subcommands under the shared root cannot be hidden one by one: they are marked
"(facilitators)" and, like every command, checked in code on every call. With
``[discord] facilitator_root`` set they move to a second root that *is* hidden by default
(Manage Server), which a server admin can open to the facilitator role.
"""

from __future__ import annotations

import inspect
import keyword
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Union

import discord
from discord import app_commands

from bot.commands import CommandSpec, Option, Registry
from bot.events import (
    Attachment,
    ButtonPressed,
    CommandInvoked,
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
from bot.ids import discord_emoji

log = logging.getLogger(__name__)

PLATFORM = "discord"

#: Message types that are a member speaking; every other type is a system message.
CONTENT_TYPES = frozenset({discord.MessageType.default, discord.MessageType.reply})
#: Discord's limits for application commands.
MAX_DESCRIPTION = 100
MAX_CHILDREN = 25
ROOT_DESCRIPTION = "Hearth: your participation, course stats and settings"
FACILITATOR_ROOT_DESCRIPTION = "Hearth facilitator tools: stats, nudges, prompts, summaries"
#: What hides a facilitator root by default (server admins can change it per role).
FACILITATOR_PERMISSIONS = discord.Permissions(manage_guild=True)


async def _help_placeholder(*_args: Any, **_kwargs: Any) -> None:  # pragma: no cover
    """Never called: the engine answers ``help`` itself, from the specs."""


#: ``/course help``: not a spec (the engine answers it for every front end), but Discord
#: needs it in the tree to offer it.
HELP = CommandSpec(
    name="help",
    description="The Hearth commands you may run, or one of them in full",
    handler=_help_placeholder,
    options=(Option("command", "string", "A command to explain, e.g. stats or prompt"),),
)


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """What translation needs to know about a channel id: a thread's parent, and a name
    (the parent's name for a thread), since ``tracked_channels`` may name channels."""

    id: int
    parent_id: int | None = None
    name: str = ""


#: Channel id -> what is known about it (the adapter answers from discord.py's cache and
#: from its own small cache of channels it had to fetch).
ChannelLookup = Callable[[int], ChannelInfo | None]


def _no_lookup(channel_id: int) -> ChannelInfo | None:
    return None


def channel_info(channel: Any) -> ChannelInfo | None:
    """What a discord.py channel object tells (None for DMs and partial channels)."""
    if isinstance(channel, discord.Thread):
        parent = channel.parent
        return ChannelInfo(channel.id, channel.parent_id, parent.name if parent is not None else "")
    if isinstance(channel, discord.abc.GuildChannel):
        return ChannelInfo(channel.id, None, channel.name)
    return None


def place_for(
    guild_id: int | None, channel_id: int, lookup: ChannelLookup = _no_lookup
) -> PlaceRef:
    """The neutral place of a guild channel or thread (or a DM when ``guild_id`` is None).

    A DM has no community on Discord; it is left empty here and the adapter fills in the
    course the member belongs to.
    """
    if guild_id is None:
        return PlaceRef(PLATFORM, "", str(channel_id), is_direct=True)
    info = lookup(channel_id)
    if info is not None and info.parent_id is not None:
        return PlaceRef(
            PLATFORM, str(guild_id), str(info.parent_id), str(channel_id), channel_name=info.name
        )
    return PlaceRef(
        PLATFORM, str(guild_id), str(channel_id), channel_name=info.name if info else ""
    )


def _message_place(message: discord.Message, lookup: ChannelLookup) -> PlaceRef:
    info = channel_info(message.channel)
    guild_id = (
        message.guild.id
        if message.guild is not None
        else getattr(message.channel, "guild_id", None)
    )
    if info is not None:
        return place_for(guild_id, message.channel.id, lambda _cid: info)
    return place_for(guild_id, message.channel.id, lookup)


def has_role(user: Any, role_name: str) -> bool:
    """Whether a member has the facilitator role (by name, case-insensitive). Users seen
    outside a guild payload (history, DMs) carry no roles and are not facilitators here;
    the engine still checks its own member table."""
    wanted = role_name.casefold()
    roles = getattr(user, "roles", None) or ()
    return bool(wanted) and any(getattr(r, "name", "").casefold() == wanted for r in roles)


def member_ref(user: discord.abc.User, facilitator_role: str = "") -> MemberRef:
    return MemberRef(
        PLATFORM,
        str(user.id),
        user.display_name or user.name,
        is_bot=bool(user.bot or user.system),
        is_facilitator=has_role(user, facilitator_role),
    )


def content_visible(message: discord.Message, *, content_intent: bool, bot_id: int | None) -> bool:
    """Whether ``message.content`` is the real text. Without the message content intent
    Discord still sends it for DMs, for messages that mention the bot and for the bot's own."""
    if content_intent or message.guild is None:
        return True
    if bot_id is not None and (
        message.author.id == bot_id or any(u.id == bot_id for u in message.mentions)
    ):
        return True
    return False


def _mentions(users: Iterable[discord.abc.User]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(u.id) for u in users if not u.bot))


def _attachments(message: discord.Message) -> tuple[Attachment, ...]:
    return tuple(Attachment(a.filename, a.url, a.content_type or "") for a in message.attachments)


def _reply_target(message: discord.Message) -> tuple[str | None, str | None]:
    """(replied message id, its author id when known and not a bot). Forwards are not
    replies: they copy a message, they do not answer it."""
    ref = message.reference
    if ref is None or ref.message_id is None:
        return None, None
    if getattr(ref, "type", discord.MessageReferenceType.reply) is not (
        discord.MessageReferenceType.reply
    ):
        return None, None
    resolved = ref.resolved
    author: str | None = None
    if isinstance(resolved, discord.Message) and not resolved.author.bot:
        author = str(resolved.author.id)
    return str(ref.message_id), author


def is_ignored_author(message: discord.Message) -> bool:
    """Bots (Hearth included), webhooks and Discord's own system user never count."""
    return bool(message.author.bot or message.author.system or message.webhook_id)


def translate_message(
    message: discord.Message,
    *,
    facilitator_role: str = "",
    content_intent: bool = True,
    bot_id: int | None = None,
    lookup: ChannelLookup = _no_lookup,
) -> MessagePosted | None:
    """A new message (live or read back from history) as ``MessagePosted``; None for bots."""
    if is_ignored_author(message):
        return None
    place = _message_place(message, lookup)
    author = member_ref(message.author, facilitator_role)
    if message.type not in CONTENT_TYPES:
        log.debug("system message %s of type %s", message.id, message.type)
        return MessagePosted(
            at=message.created_at,
            author=author,
            place=place,
            message_id=str(message.id),
            text=None,
            is_system=True,
        )
    visible = content_visible(message, content_intent=content_intent, bot_id=bot_id)
    reply_to, reply_author = _reply_target(message)
    return MessagePosted(
        at=message.created_at,
        author=author,
        place=place,
        message_id=str(message.id),
        text=message.content if visible else None,
        reply_to_id=reply_to,
        reply_to_author_id=reply_author,
        mentions=_mentions(message.mentions),
        attachments=_attachments(message),
    )


def translate_edit(
    raw: discord.RawMessageUpdateEvent,
    *,
    now: datetime,
    facilitator_role: str = "",
    content_intent: bool = True,
    bot_id: int | None = None,
    lookup: ChannelLookup = _no_lookup,
) -> MessageEdited | None:
    """A member's edit. Updates Discord makes on its own (link previews filled in, pins)
    carry no ``edited_timestamp`` and are not edits."""
    message = raw.message
    if not raw.data.get("edited_timestamp") or is_ignored_author(message):
        return None
    visible = content_visible(message, content_intent=content_intent, bot_id=bot_id)
    return MessageEdited(
        at=message.edited_at or now,
        place=_message_place(message, lookup),
        message_id=str(message.id),
        text=message.content if visible else None,
        author=member_ref(message.author, facilitator_role),
        mentions=_mentions(message.mentions),
        # Withheld with the text: unknown, so the stored count stays.
        attachments=_attachments(message) if visible else None,
    )


def translate_delete(
    raw: discord.RawMessageDeleteEvent, *, now: datetime, lookup: ChannelLookup = _no_lookup
) -> MessageDeleted | None:
    if raw.guild_id is None:
        return None  # DMs are never recorded, so there is nothing to delete
    return MessageDeleted(
        at=now,
        place=place_for(raw.guild_id, raw.channel_id, lookup),
        message_id=str(raw.message_id),
    )


def translate_bulk_delete(
    raw: discord.RawBulkMessageDeleteEvent, *, now: datetime, lookup: ChannelLookup = _no_lookup
) -> list[MessageDeleted]:
    if raw.guild_id is None:
        return []
    place = place_for(raw.guild_id, raw.channel_id, lookup)
    return [
        MessageDeleted(at=now, place=place, message_id=str(mid)) for mid in sorted(raw.message_ids)
    ]


def emoji_text(emoji: discord.PartialEmoji) -> str:
    return discord_emoji(emoji.name or "", str(emoji.id) if emoji.id else None, emoji.animated)


def translate_reaction(
    raw: discord.RawReactionActionEvent,
    *,
    now: datetime,
    facilitator_role: str = "",
    bot_id: int | None = None,
    lookup: ChannelLookup = _no_lookup,
) -> ReactionAdded | ReactionRemoved | None:
    """A reaction added or removed in a guild (raw: works for messages no cache holds).

    Removals carry no member: the name is filled in by the adapter from what it knows.
    """
    if raw.guild_id is None or raw.user_id == bot_id:
        return None
    author = raw.message_author_id
    if author is not None and author == bot_id:
        return None  # reacting to Hearth's own post is not an interaction with a peer
    if raw.member is not None:
        member = member_ref(raw.member, facilitator_role)
    else:
        member = MemberRef(PLATFORM, str(raw.user_id))
    place = place_for(raw.guild_id, raw.channel_id, lookup)
    emoji = emoji_text(raw.emoji)
    if raw.event_type == "REACTION_ADD":
        return ReactionAdded(
            at=now,
            member=member,
            place=place,
            message_id=str(raw.message_id),
            emoji=emoji,
            message_author_id=str(author) if author is not None else None,
        )
    return ReactionRemoved(
        at=now, member=member, place=place, message_id=str(raw.message_id), emoji=emoji
    )


def translate_member_join(
    member: discord.Member, *, now: datetime, facilitator_role: str = ""
) -> MemberJoined:
    return MemberJoined(
        at=member.joined_at or now,
        member=member_ref(member, facilitator_role),
        community_id=str(member.guild.id),
    )


def translate_member_remove(raw: discord.RawMemberRemoveEvent, *, now: datetime) -> MemberLeft:
    return MemberLeft(at=now, member=member_ref(raw.user), community_id=str(raw.guild_id))


# -- interactions ---------------------------------------------------------------------------------


def interaction_place(interaction: discord.Interaction, lookup: ChannelLookup) -> PlaceRef:
    channel = interaction.channel
    info = channel_info(channel) if channel is not None else None
    channel_id = interaction.channel_id or 0
    if info is not None:
        return place_for(interaction.guild_id, channel_id, lambda _cid: info)
    return place_for(interaction.guild_id, channel_id, lookup)


def option_value(option: Option, value: Any) -> Any:
    """A value discord.py resolved for an option, in the form the shared parser produces
    (members as ``<@id>`` tokens the store resolves, channels as ids, the rest as given)."""
    if value is None:
        return None
    if option.type == "member":
        return f"<@{value.id}>"
    if option.type == "channel":
        return str(value.id)
    return value


def translate_command(
    interaction: discord.Interaction,
    spec: CommandSpec,
    values: dict[str, Any],
    *,
    facilitator_role: str = "",
    lookup: ChannelLookup = _no_lookup,
) -> CommandInvoked:
    """A slash command with its typed options (already checked by Discord and discord.py)."""
    by_name = {o.name: o for o in spec.options}
    options = {
        name: option_value(by_name[name], value)
        for name, value in values.items()
        if name in by_name and value is not None
    }
    return CommandInvoked(
        at=interaction.created_at,
        member=member_ref(interaction.user, facilitator_role),
        place=interaction_place(interaction, lookup),
        name=spec.name,
        # Help is answered from the text path, which knows who is asking.
        options=None if spec is HELP else options,
        text=str(options.get("command", "")) if spec is HELP else "",
        interaction_id=str(interaction.id),
    )


def button_custom_id(action_id: str, value: str) -> str:
    """A button's ``custom_id``: ``action_id:value`` (action ids are ``<cog>:<what>``)."""
    return f"{action_id}:{value}"


def parse_custom_id(custom_id: str) -> tuple[str, str] | None:
    """``"nudges:confirm:abc"`` -> ``("nudges:confirm", "abc")``; None if it is not ours."""
    parts = custom_id.split(":", 2)
    if len(parts) < 2 or not all(parts[:2]):
        return None
    return f"{parts[0]}:{parts[1]}", parts[2] if len(parts) == 3 else ""


def translate_button(
    interaction: discord.Interaction,
    *,
    facilitator_role: str = "",
    lookup: ChannelLookup = _no_lookup,
) -> ButtonPressed | None:
    data = interaction.data or {}
    custom_id = data.get("custom_id")
    parsed = parse_custom_id(custom_id) if isinstance(custom_id, str) else None
    if parsed is None:
        return None
    return ButtonPressed(
        at=interaction.created_at,
        delivery_id=str(interaction.id),
        member=member_ref(interaction.user, facilitator_role),
        place=interaction_place(interaction, lookup),
        action_id=parsed[0],
        value=parsed[1],
    )


# -- command specs -> application commands --------------------------------------------------------

#: What a command callback receives: the interaction and the option values by option name.
CommandCallback = Callable[[discord.Interaction, CommandSpec, dict[str, Any]], Awaitable[None]]


def clip(text: str, limit: int = MAX_DESCRIPTION) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _annotation(option: Option) -> Any:
    """The discord.py annotation that gives the option its Discord type."""
    if option.type == "integer":
        low, high = option.bounds()
        return app_commands.Range[int, low, high]
    if option.type == "boolean":
        return bool
    if option.type == "member":
        # A member picker; a user who left the server still resolves (as a User).
        return Union[discord.Member, discord.User]  # noqa: UP007 - discord.py reads typing.Union
    if option.type == "channel":
        return Union[app_commands.AppCommandChannel, app_commands.AppCommandThread]  # noqa: UP007
    if option.type == "choice" and len(option.choices) <= MAX_CHILDREN:
        return Literal[tuple(option.choices)]
    if option.type in ("string", "text"):
        return app_commands.Range[str, 1, 2000]
    # Dates ("2027-01-10") and long choice lists: text the shared parser checks, as everywhere.
    return str


def _python_name(name: str) -> str:
    """Option names become callback parameters; ``from`` is a Python keyword."""
    return name if name.isidentifier() and not keyword.iskeyword(name) else f"{name}_"


def describe(spec: CommandSpec, *, mark_facilitator: bool) -> str:
    suffix = " (facilitators)" if mark_facilitator and spec.facilitator_only else ""
    return clip(spec.description, MAX_DESCRIPTION - len(suffix)) + suffix


def make_command(spec: CommandSpec, run: CommandCallback, *, mark_facilitator: bool) -> Any:
    """One ``app_commands.Command`` whose parameters are the spec's options.

    discord.py reads option types from the callback's signature, so the callback gets a
    ``__signature__`` built from the spec (plus descriptions and renames for keywords).
    """
    renames: dict[str, str] = {}
    descriptions: dict[str, str] = {}
    parameters = [
        inspect.Parameter(
            "interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=discord.Interaction
        )
    ]
    by_python: dict[str, str] = {}
    # Discord wants required options first.
    for option in sorted(spec.options, key=lambda o: not o.required):
        pyname = _python_name(option.name)
        by_python[pyname] = option.name
        if pyname != option.name:
            renames[pyname] = option.name
        descriptions[pyname] = clip(option.description)
        parameters.append(
            inspect.Parameter(
                pyname,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=_annotation(option),
                default=inspect.Parameter.empty if option.required else None,
            )
        )

    async def callback(interaction: discord.Interaction, **values: Any) -> None:
        await run(interaction, spec, {by_python.get(k, k): v for k, v in values.items()})

    callback.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    # discord.py treats a callback whose qualified name differs from its name as a method
    # (one more leading parameter), so both are set.
    callback.__name__ = callback.__qualname__ = f"hearth_{spec.name.replace(' ', '_')}"
    callback.__discord_app_commands_param_description__ = descriptions  # type: ignore[attr-defined]
    if renames:
        callback.__discord_app_commands_param_rename__ = renames  # type: ignore[attr-defined]
    return app_commands.Command(
        name=spec.words[-1],
        description=describe(spec, mark_facilitator=mark_facilitator),
        callback=callback,
    )


def _subgroup_description(group: str, specs: list[CommandSpec]) -> str:
    names = ", ".join(s.words[1] for s in specs)
    return clip(f"{group.capitalize()}: {names}")


def build_command_groups(
    registry: Registry,
    run: CommandCallback,
    *,
    root: str,
    facilitator_root: str = "",
) -> list[app_commands.Group]:
    """The application commands for every spec: ``/<root> ...`` (and ``/<facilitator_root>
    ...`` for facilitator-only commands when that is set). Raises ValueError when a root would
    hold more than Discord's 25 subcommands and groups."""
    roots = {root: app_commands.Group(name=root, description=ROOT_DESCRIPTION, guild_only=True)}
    if facilitator_root:
        roots[facilitator_root] = app_commands.Group(
            name=facilitator_root,
            description=FACILITATOR_ROOT_DESCRIPTION,
            guild_only=True,
            default_permissions=FACILITATOR_PERMISSIONS,
        )
    placed: dict[tuple[str, str], list[CommandSpec]] = {}
    singles: list[tuple[str, CommandSpec]] = []
    specs = list(registry)
    if "help" not in registry.specs:
        specs.append(HELP)
    for spec in specs:
        target = facilitator_root if facilitator_root and spec.facilitator_only else root
        if len(spec.words) == 2:
            placed.setdefault((target, spec.words[0]), []).append(spec)
        else:
            singles.append((target, spec))
    mark = not facilitator_root
    try:
        for target, spec in singles:
            roots[target].add_command(make_command(spec, run, mark_facilitator=mark))
        for (target, group_name), specs in placed.items():
            group = app_commands.Group(
                name=group_name,
                description=_subgroup_description(group_name, specs),
            )
            for spec in specs:
                group.add_command(make_command(spec, run, mark_facilitator=mark))
            roots[target].add_command(group)
    except ValueError as exc:
        raise ValueError(
            f"the Discord commands do not fit: {exc} (Discord allows {MAX_CHILDREN} "
            "subcommands and groups per root; set [discord] facilitator_root to split them)"
        ) from None
    return [g for g in roots.values() if g.commands]


def command_payload(groups: list[app_commands.Group], tree: app_commands.CommandTree) -> list:
    """The JSON Discord receives when the commands are synced (for checks and dry runs)."""
    return [g.to_dict(tree) for g in groups]


__all__ = [
    "PLATFORM",
    "ChannelInfo",
    "ChannelLookup",
    "build_command_groups",
    "button_custom_id",
    "channel_info",
    "command_payload",
    "content_visible",
    "member_ref",
    "parse_custom_id",
    "place_for",
    "translate_bulk_delete",
    "translate_button",
    "translate_command",
    "translate_delete",
    "translate_edit",
    "translate_member_join",
    "translate_member_remove",
    "translate_message",
    "translate_reaction",
]
