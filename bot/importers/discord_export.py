"""Import DiscordChatExporter JSON files (one channel or thread per file).

A file is one object: ``guild``, ``channel``, (``dateRange``, ``exportedAt``), ``messages``
(an array, possibly huge) and ``messageCount`` after the messages. Files are streamed: the
``messages`` array is decoded one message at a time with ``json.JSONDecoder.raw_decode`` over
1 MB chunks, so memory does not grow with the file.

How messages become neutral events (the same ones the live Discord adapter produces):

- message id: the snowflake string; community: the guild id; timestamps carry offsets and are
  converted to aware UTC;
- ``Default`` and ``Reply`` messages count; ``reference.messageId`` is the message replied to
  (its author comes from the export itself when the message is in it);
- ``GuildMemberJoin`` becomes ``MemberJoined``; every other type (``ThreadCreated``,
  ``ChannelPinnedMessage``, thread starter stubs, ...) is a system message and is skipped with
  its type counted; ``author.isBot`` posts are skipped;
- a thread is exported as its own file whose ``channel.categoryId``/``category`` name the
  parent channel: its messages are placed in the parent channel with ``thread_id`` = the
  thread's id (for a thread started from a message that id is the starter message's);
- ``mentions`` (newer exports) or raw ``<@id>`` in the content (older ones) are mentions;
  ``attachments`` are attachments; reactions with ``users`` (newer exports) give one
  ``ReactionAdded`` per user, older ones only have counts and are skipped as
  "reactions without users";
- an author with a role named like ``[discord] facilitator_role`` is a facilitator;
- direct-message exports are not imported (privacy; the live bot does not count DMs).

Two passes: the first streams every file, checks it fully (well-formed JSON, every message
usable, ``messageCount`` matching), converts it and notes each message's author (so replies
and thread follow-ups know whom they answer even across files, without a database lookup
each); it keeps the events up to ``KEEP_EVENTS``, so most exports are parsed once, and files
past that budget are streamed again. Only if every file is sound does the second pass
dispatch the events, channels before threads. A truncated file, a file in another format or
an HTML export stops the import with an :class:`~bot.importers.common.ImportError_` naming
the file, before anything is written.
"""

from __future__ import annotations

import codecs
import json
import logging
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from bot.app import HearthApp
from bot.events import (
    Attachment,
    Event,
    MemberJoined,
    MemberRef,
    MessagePosted,
    PlaceRef,
    ReactionAdded,
)
from bot.ids import discord_emoji
from bot.importers.common import (
    KEEP_EVENTS,
    CheckedFile,
    ImportError_,
    ImportProgress,
    ImportStats,
    ImportSummary,
    Recorder,
    fill_reply_authors,
)

log = logging.getLogger(__name__)

PLATFORM = "discord"
EXPECTED = "a DiscordChatExporter JSON export (an object with guild, channel and messages)"
CHUNK = 1 << 20
#: A single message bigger than this is not a message: the file is broken.
MAX_VALUE = 32 << 20
#: A JSON error this close to the end of the buffer may just be a value cut by the chunk edge.
_TAIL = 12

COUNTED_TYPES = frozenset({"Default", "Reply"})
JOIN_TYPE = "GuildMemberJoin"
DIRECT_CHANNEL_TYPES = frozenset({"DirectTextChat", "DirectGroupTextChat"})
#: Discord's numeric message types that DiscordChatExporter writes as numbers.
TYPE_NAMES = {"20": "ChatInputCommand", "21": "ThreadStarterMessage", "23": "ContextMenuCommand"}

_WS = re.compile(r"[ \t\n\r]*")
_RAW_MENTION = re.compile(r"<@!?(\d+)>")


# -- streaming reader ---------------------------------------------------------------------------


class _Stream:
    """Incremental JSON over a binary file: whitespace, punctuation and whole values."""

    def __init__(self, fh: BinaryIO, where: str) -> None:
        self.fh = fh
        self.where = where
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.bytes_read = 0
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._json = json.JSONDecoder()

    def _fill(self) -> bool:
        if self.eof:
            return False
        chunk = self.fh.read(CHUNK)
        try:
            text = self._decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError:
            raise ImportError_(self.where, "not UTF-8 text", EXPECTED) from None
        if not chunk:
            self.eof = True
        self.bytes_read += len(chunk)
        self.buf = self.buf[self.pos :] + text
        self.pos = 0
        return bool(chunk)

    def peek(self) -> str:
        """The next non-whitespace character ("" at the end of the file)."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill():
                return ""

    def take(self, char: str, expected: str) -> None:
        found = self.peek()
        if found != char:
            raise self.error(found, expected)
        self.pos += 1

    def value(self, what: str) -> Any:
        """Decode one whole JSON value, reading more of the file while it is incomplete."""
        self.peek()
        while True:
            try:
                value, end = self._json.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                # An error well before the end of what we hold cannot be cured by reading
                # more (a cut "tru" or "\u12" fails a few characters from the end; an
                # unterminated string fails at its start).
                unterminated = exc.msg.startswith("Unterminated")
                end = len(self.buf.rstrip())
                near_end = exc.pos >= end - (1 if self.eof else _TAIL)
                if (not unterminated and not near_end) or len(self.buf) - self.pos > MAX_VALUE:
                    raise ImportError_(
                        self.where,
                        f"invalid JSON in {what} ({exc.msg} at character "
                        f"{self.bytes_read - len(self.buf) + exc.pos})",
                        EXPECTED,
                    ) from None
                if self.eof:
                    raise ImportError_(
                        self.where, f"truncated JSON: the file ends inside {what}", EXPECTED
                    ) from None
                self._fill()
                continue
            if end >= len(self.buf) and not self.eof and self._fill():
                continue  # a number may go on in the next chunk: decode again
            self.pos = end
            return value

    def error(self, found: str, expected: str) -> ImportError_:
        if not found:
            return ImportError_(
                self.where, f"truncated JSON: the file ends where {expected} should be", EXPECTED
            )
        return ImportError_(self.where, f"found {found!r} where {expected} should be", EXPECTED)


@dataclass(slots=True)
class ExportFile:
    """One DiscordChatExporter file's header, as read by the first pass."""

    path: Path
    guild_id: str
    guild_name: str
    channel_id: str
    channel_name: str
    channel_type: str
    parent_id: str | None
    parent_name: str
    size: int
    messages: int = 0

    @property
    def is_thread(self) -> bool:
        return self.channel_type.endswith("Thread")

    @property
    def is_direct(self) -> bool:
        return self.channel_type in DIRECT_CHANNEL_TYPES or self.guild_id == "0"


def _str_id(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def read_export(path: Path) -> Iterator[ExportFile | tuple[dict[str, Any], int]]:
    """Stream one file: yields its :class:`ExportFile` header, then ``(message, bytes read)``
    for each message. Raises :class:`ImportError_` when the file is not a sound export."""
    where = str(path)
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise ImportError_(where, f"cannot be opened ({exc.strerror or exc})", EXPECTED) from None
    with fh:
        stream = _Stream(fh, where)
        first = stream.peek()
        if first != "{":
            if first == "[":
                problem = "found a JSON array (a Slack day file?)"
            elif first == "<":
                problem = "found HTML or XML (export with --format Json)"
            elif not first:
                problem = "the file is empty"
            else:
                problem = "not JSON"
            raise ImportError_(where, problem, EXPECTED)
        stream.pos += 1
        head: dict[str, Any] = {}
        header: ExportFile | None = None
        count_seen = False
        declared: int | None = None
        n = 0
        while True:
            char = stream.peek()
            if char == "}":
                stream.pos += 1
                break
            if head or header is not None or count_seen:
                stream.take(",", "',' or '}'")
            key = stream.value("a key")
            if not isinstance(key, str):
                raise ImportError_(where, "a key is not a string", EXPECTED)
            stream.take(":", "':'")
            if key != "messages":
                value = stream.value(f"the {key!r} field")
                if header is None:
                    head[key] = value
                elif key == "messageCount":
                    count_seen = True
                    declared = value if isinstance(value, int) else None
                continue
            header = _header(path, head, where)
            yield header
            stream.take("[", "the start of the messages array")
            if stream.peek() == "]":
                stream.pos += 1
            else:
                while True:
                    message = stream.value(f"message {n}")
                    yield message, stream.bytes_read
                    n += 1
                    char = stream.peek()
                    if char == ",":
                        stream.pos += 1
                    elif char == "]":
                        stream.pos += 1
                        break
                    else:
                        raise stream.error(char, "',' or ']' after a message")
            head = {"messages": True}
        if stream.peek():
            raise ImportError_(where, "extra data after the export object", EXPECTED)
        if header is None:
            raise ImportError_(where, "no messages array", EXPECTED)
        if declared is not None and declared != n:
            raise ImportError_(
                where,
                f"messageCount says {declared} but the file holds {n} messages",
                "a complete export (re-export the channel)",
            )


def _header(path: Path, head: dict[str, Any], where: str) -> ExportFile:
    guild = head.get("guild")
    channel = head.get("channel")
    if not isinstance(guild, dict) or not isinstance(channel, dict):
        raise ImportError_(where, "no guild and channel before the messages", EXPECTED)
    guild_id = _str_id(guild.get("id"))
    channel_id = _str_id(channel.get("id"))
    if guild_id is None or channel_id is None:
        raise ImportError_(where, "guild or channel without an id", EXPECTED)
    ctype = channel.get("type")
    return ExportFile(
        path=path,
        guild_id=guild_id,
        guild_name=str(guild.get("name") or ""),
        channel_id=channel_id,
        channel_name=str(channel.get("name") or ""),
        channel_type=str(ctype) if ctype is not None else "GuildTextChat",
        parent_id=_str_id(channel.get("categoryId")),
        parent_name=str(channel.get("category") or ""),
        size=path.stat().st_size,
    )


def _timestamp(value: Any, where: str, index: int) -> datetime:
    if isinstance(value, str):
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            # DiscordChatExporter always writes an offset; a bare time is taken as UTC.
            return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    raise ImportError_(
        where,
        f"message {index} has no valid timestamp ({value!r})",
        "ISO 8601 timestamps like 2024-03-01T10:00:00+00:00",
    )


# -- conversion ----------------------------------------------------------------------------------


class _Converter:
    """One file's message dicts to neutral events (shared by both passes)."""

    def __init__(
        self,
        community_id: str,
        authors: dict[str, str],
        *,
        facilitator_role: str,
        facilitator_ids: set[str],
    ) -> None:
        self.community_id = community_id
        self.authors = authors
        self._role = facilitator_role.casefold()
        self._facilitators = facilitator_ids
        self._refs: dict[str, MemberRef] = {}
        self.file: ExportFile | None = None
        self.place = PlaceRef(PLATFORM, community_id, "")

    def start_file(self, file: ExportFile) -> None:
        self.file = file
        if file.is_thread and file.parent_id:
            self.place = PlaceRef(
                PLATFORM,
                self.community_id,
                file.parent_id,
                thread_id=file.channel_id,
                channel_name=file.parent_name,
            )
        else:
            self.place = PlaceRef(
                PLATFORM, self.community_id, file.channel_id, channel_name=file.channel_name
            )

    def ref(self, user: dict[str, Any]) -> MemberRef:
        user_id = _str_id(user.get("id")) or ""
        ref = self._refs.get(user_id)
        roles = user.get("roles")
        # Roles appear on newer exports and only on authors: a later sighting may upgrade.
        if ref is not None and (ref.is_facilitator or not isinstance(roles, list)):
            return ref
        is_fac = user_id in self._facilitators or (
            isinstance(roles, list)
            and any(
                isinstance(r, dict) and str(r.get("name", "")).casefold() == self._role
                for r in roles
            )
        )
        if ref is not None and not is_fac:
            return ref
        name = user.get("nickname") or user.get("name") or ""
        ref = MemberRef(
            PLATFORM, user_id, str(name), is_bot=bool(user.get("isBot")), is_facilitator=is_fac
        )
        self._refs[user_id] = ref
        return ref

    def convert(self, msg: Any, index: int, out: list[Event], skipped: Counter[str]) -> None:
        """Append one message's events to ``out`` (or count why it is skipped); validate."""
        file = self.file
        assert file is not None
        where = str(file.path)
        if not isinstance(msg, dict):
            raise ImportError_(where, f"message {index} is not an object", EXPECTED)
        message_id = _str_id(msg.get("id"))
        author = msg.get("author")
        if message_id is None or not isinstance(author, dict) or _str_id(author.get("id")) is None:
            raise ImportError_(
                where,
                f"message {index} has no id or author",
                "messages with id, type, timestamp and author",
            )
        at = _timestamp(msg.get("timestamp"), where, index)
        author_ref = self.ref(author)
        # Every author, bots included: a live reply to a bot's post names the bot too.
        self.authors[message_id] = author_ref.id
        kind = str(msg.get("type") or "Default")
        if kind == JOIN_TYPE:
            if author_ref.is_bot:
                skipped["bot posts"] += 1
            else:
                out.append(MemberJoined(at=at, member=author_ref, community_id=self.community_id))
            return
        if kind not in COUNTED_TYPES:
            skipped[f"system messages ({TYPE_NAMES.get(kind, kind)})"] += 1
            return
        if author_ref.is_bot:
            skipped["bot posts"] += 1
            return
        content = msg.get("content")
        text = content if isinstance(content, str) else ""
        place = self.place
        reply_to = None
        reference = msg.get("reference")
        if isinstance(reference, dict):
            reply_to = _str_id(reference.get("messageId"))
        if reply_to is not None:
            reply_author = self.authors.get(reply_to)
        elif place.thread_id is not None and place.thread_id != message_id:
            # A follow-up in a thread answers the thread's opening post (the cog's rule);
            # its author is known when the parent channel is in the export.
            reply_author = self.authors.get(place.thread_id)
        else:
            reply_author = None
        mentions_raw = msg.get("mentions")
        if isinstance(mentions_raw, list):
            mentions = tuple(
                dict.fromkeys(
                    mid
                    for m in mentions_raw
                    if isinstance(m, dict)
                    and not m.get("isBot")
                    and (mid := _str_id(m.get("id"))) is not None
                )
            )
        elif "<@" in text:
            mentions = tuple(dict.fromkeys(_RAW_MENTION.findall(text)))
        else:
            mentions = ()
        files = msg.get("attachments")
        attachments = (
            tuple(
                Attachment(str(a.get("fileName") or "file"), str(a.get("url") or ""))
                for a in files
                if isinstance(a, dict)
            )
            if isinstance(files, list) and files
            else ()
        )
        out.append(
            MessagePosted(
                at=at,
                author=author_ref,
                place=place,
                message_id=message_id,
                text=text,
                reply_to_id=reply_to,
                reply_to_author_id=reply_author,
                mentions=mentions,
                attachments=attachments,
            )
        )
        reactions = msg.get("reactions")
        if isinstance(reactions, list) and reactions:
            self._reactions(reactions, at, message_id, author_ref.id, out, skipped)

    def _reactions(
        self,
        reactions: list,
        at: datetime,
        message_id: str,
        author: str,
        out: list[Event],
        skipped: Counter[str],
    ) -> None:
        for reaction in reactions:
            if not isinstance(reaction, dict):
                continue
            emoji = reaction.get("emoji") if isinstance(reaction.get("emoji"), dict) else {}
            key = discord_emoji(
                str(emoji.get("name") or "?"),
                _str_id(emoji.get("id")),
                bool(emoji.get("isAnimated")),
            )
            users = reaction.get("users")
            count = reaction.get("count") if isinstance(reaction.get("count"), int) else 1
            if not isinstance(users, list) or not users:
                skipped["reactions without users"] += count
                continue
            if count > len(users):
                skipped["reactions without users"] += count - len(users)
            for user in users:
                if not isinstance(user, dict) or _str_id(user.get("id")) is None:
                    continue
                ref = self.ref(user)
                if ref.is_bot:
                    skipped["reactions by bots"] += 1
                    continue
                out.append(
                    ReactionAdded(
                        at=at,
                        member=ref,
                        place=self.place,
                        message_id=message_id,
                        emoji=key,
                        message_author_id=author,
                    )
                )


# -- the importer -------------------------------------------------------------------------------


def export_files(paths: list[str | Path]) -> list[Path]:
    """The JSON files named, with folders expanded (sorted, recursively)."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.json") if p.is_file())
            if not found:
                raise ImportError_(path, "the folder holds no .json files", EXPECTED)
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise ImportError_(path, "no such file or folder", EXPECTED)
    return list(dict.fromkeys(files))


async def import_discord_exports(
    app: HearthApp,
    paths: list[str | Path],
    *,
    community_id: str | None = None,
    progress: ImportProgress | None = None,
) -> ImportSummary:
    """Import DiscordChatExporter JSON files (or folders of them) into one community.

    The community is ``community_id``, or the guild the files come from (files from several
    guilds need an explicit ``community_id``). Raises :class:`ImportError_`, with nothing
    written, when any file is not a sound export.
    """
    progress = progress or ImportProgress(enabled=False)
    files = export_files(paths)
    stats = ImportStats()
    authors: dict[str, str] = {}
    settings = app.settings
    converter = _Converter(
        community_id or "",
        authors,
        facilitator_role=settings.discord.facilitator_role,
        facilitator_ids=set(settings.course.facilitator_ids),
    )
    try:
        # Pass 1: stream, check and convert every file; keep the events within budget.
        checked: list[CheckedFile] = []
        guilds: dict[str, str] = {}
        kept = 0
        progress.start("checking", sum(f.stat().st_size for f in files), unit="bytes")
        for path in files:
            item = _check_file(path, converter, guilds, keep=KEEP_EVENTS - kept, progress=progress)
            kept += len(item.events or ())
            checked.append(item)
        progress.stop()
        direct = [c for c in checked if c.context.is_direct]
        checked = [c for c in checked if not c.context.is_direct]
        if community_id is None:
            if len(guilds) > 1:
                raise ImportError_(
                    ", ".join(c.label for c in checked[:3]),
                    f"the files come from {len(guilds)} servers ({', '.join(sorted(guilds))})",
                    "files from one server, or --community to put them all in one community",
                )
            if not guilds:
                raise ImportError_(
                    ", ".join(c.label for c in direct[:3]) or "(no files)",
                    "only direct-message exports, which are not imported (privacy)",
                    "exports of server channels",
                )
            community_id = next(iter(guilds))
        for item in checked:
            if item.events:
                fill_reply_authors(item.events, authors)
        # Pass 2: everything is sound; write, channels before their threads.
        recorder = Recorder(app, PLATFORM, community_id, stats=stats)
        await recorder.begin(name=guilds.get(community_id) or None)
        checked.sort(key=lambda c: c.context.is_thread)
        progress.start("importing", sum(c.context.size for c in checked), unit="bytes")
        for item in checked:
            header: ExportFile = item.context
            if header.is_thread and header.parent_id:
                await recorder.channel(header.parent_id, header.parent_name)
            else:
                await recorder.channel(header.channel_id, header.channel_name)
            stats.files += 1
            stats.messages_read += item.messages
            if item.events is not None:
                stats.skipped.update(item.skipped)
                await recorder.emit_file(
                    item.events, progress, amount=header.size, messages=item.messages
                )
                item.events = None
            else:  # past the budget: stream it again, now with every author known
                await _stream_into(header, converter, recorder, stats, progress)
            await recorder.end_of_file()
        progress.stop()
        if direct:
            stats.skip("direct messages (not read: private)", sum(c.messages for c in direct))
            stats.notes.append(
                f"direct-message exports not imported: {len(direct)} (direct messages are "
                "private and never count as course participation)"
            )
        return await recorder.finish(", ".join(str(p) for p in paths))
    finally:
        progress.stop()


def _check_file(
    path: Path,
    converter: _Converter,
    guilds: dict[str, str],
    *,
    keep: int,
    progress: ImportProgress,
) -> CheckedFile:
    """Pass 1 for one file: stream it, check and convert every message, note authors."""
    events: list[Event] | None = []
    skipped: Counter[str] = Counter()
    header: ExportFile | None = None
    seen = 0
    for item in read_export(path):
        if isinstance(item, ExportFile):
            header = item
            if not header.is_direct:
                guilds.setdefault(header.guild_id, header.guild_name)
                if not converter.community_id:
                    converter.community_id = header.guild_id
            converter.start_file(header)
            continue
        message, position = item
        assert header is not None
        if not header.is_direct:
            converter.convert(
                message, header.messages, events if events is not None else [], skipped
            )
            if events is not None and len(events) > keep:
                events = None  # over budget: this file is streamed again when written
        header.messages += 1
        if header.messages % 2000 == 0:
            progress.advance(position - seen, messages=2000)
            seen = position
    assert header is not None
    progress.advance(header.size - seen, messages=header.messages % 2000)
    return CheckedFile(str(path), events, skipped, header.messages, header)


async def _stream_into(
    header: ExportFile,
    converter: _Converter,
    recorder: Recorder,
    stats: ImportStats,
    progress: ImportProgress,
) -> None:
    events: list[Event] = []
    seen = batch = index = 0
    for item in read_export(header.path):
        if isinstance(item, ExportFile):
            converter.start_file(header)
            continue
        message, position = item
        converter.convert(message, index, events, stats.skipped)
        index += 1
        batch += 1
        if len(events) >= 1000:
            await recorder.emit_all(events)
            events.clear()
            progress.advance(position - seen, messages=batch)
            seen, batch = position, 0
    await recorder.emit_all(events)
    progress.advance(header.size - seen, messages=batch)
