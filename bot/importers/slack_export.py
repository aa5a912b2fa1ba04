"""Import a standard Slack workspace export (the zip, or the folder it unpacks to).

Layout: ``channels.json``, ``users.json`` and optionally ``groups.json`` (private channels),
``dms.json`` and ``mpims.json`` (direct and group-direct conversations) at the top, and one
folder per conversation holding one JSON array of messages per day (``2020-03-01.json``).

How messages become neutral events (the same ones the live Slack adapter produces):

- message id: ``slack_message_id(channel, ts)`` from :mod:`bot.ids`; ``ts`` is the truth for
  time (day files are bucketed in the exporting workspace's timezone);
- a thread reply (``thread_ts`` != ``ts``) replies to the parent
  ``slack_message_id(channel, thread_ts)``, which is also its ``thread_id``; the parent's
  author comes from ``parent_user_id`` or, for exports that lack it, from the parent itself,
  which may sit in another day file (the first pass collects every parent's author);
- ``<@U123>`` in the text are mentions; ``file`` (old exports) or ``files`` are attachments;
- ``reactions: [{name, users, count}]`` give one ``ReactionAdded`` per user; a reaction
  without ``users`` (or with fewer users than ``count``) cannot be attributed and is skipped;
- ``channel_join``/``leave``/``topic``/``purpose``/``name`` and other system subtypes,
  ``bot_message`` and anything with ``bot_id`` are skipped, with the reason counted; the
  live translator's ``COUNTED_SUBTYPES`` (``thread_broadcast``, ``file_share``,
  ``me_message``) count. A member's earliest
  ``channel_join`` becomes their join date (a ``MemberJoined`` event);
- direct messages and group DMs are never read (privacy; the live bot does not count them
  either); the summary says how many were left out.

Two passes: the first reads, checks and converts every day file (collecting thread parents'
authors and join dates, and keeping the events up to ``KEEP_EVENTS`` so most exports are
parsed once); only if every file is sound does the second pass dispatch the events. A corrupt
zip, a truncated day file or a file in another format therefore stops the import with an
:class:`~bot.importers.common.ImportError_` naming the file, before anything is written.
Text, mentions and ids are made with the live translator's helpers
(``bot.adapters.slack_translate``), so an imported message and the same message seen live
are recorded identically.
"""

from __future__ import annotations

import json
import logging
import re
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from bot.adapters.slack_translate import (
    COUNTED_SUBTYPES,
    display_name,
    is_admin,
    mentions_in,
    plain_text,
)
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
from bot.ids import slack_message_id
from bot.importers.common import (
    KEEP_EVENTS,
    CheckedFile,
    ImportError_,
    ImportProgress,
    ImportStats,
    ImportSummary,
    Recorder,
    fill_reply_authors,
    plural,
)

log = logging.getLogger(__name__)

PLATFORM = "slack"
EXPECTED = "a Slack workspace export (the .zip or its unpacked folder with channels.json)"

_DAY_FILE = re.compile(r"^\d{4}-\d{2}-\d{2}\.json$")
_TS = re.compile(r"^\d{1,12}(?:\.\d{1,6})?$")

#: Subtypes that are not contributions, with the reason shown in the summary. Any other
#: subtype is skipped as "system message (<subtype>)".
SKIPPED_SUBTYPES = {
    "channel_join": "channel joins",
    "group_join": "channel joins",
    "channel_leave": "channel leaves",
    "group_leave": "channel leaves",
    "channel_topic": "topic, purpose and name changes",
    "channel_purpose": "topic, purpose and name changes",
    "channel_name": "topic, purpose and name changes",
    "group_topic": "topic, purpose and name changes",
    "group_purpose": "topic, purpose and name changes",
    "group_name": "topic, purpose and name changes",
    "channel_archive": "archive changes",
    "channel_unarchive": "archive changes",
    "group_archive": "archive changes",
    "group_unarchive": "archive changes",
    "bot_message": "bot posts",
    "bot_add": "bot posts",
    "bot_remove": "bot posts",
    "bot_enable": "bot posts",
    "bot_disable": "bot posts",
    "pinned_item": "pins",
    "unpinned_item": "pins",
    "tombstone": "deleted messages",
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
JOIN_SUBTYPES = frozenset({"channel_join", "group_join"})
#: Slackbot is listed in users.json without ``is_bot``.
SLACKBOT = "USLACKBOT"


# -- reading the export ----------------------------------------------------------------------------


class _Source:
    """The export's files by relative POSIX path, from a zip or a folder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self._prefix = ""
        if path.is_dir():
            self._files = {
                p.relative_to(path).as_posix(): p for p in path.rglob("*.json") if p.is_file()
            }
        elif path.is_file():
            try:
                self._zip = zipfile.ZipFile(path)
                names = [n for n in self._zip.namelist() if n.endswith(".json")]
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
                what = "a JSON file" if path.suffix.lower() == ".json" else "not a valid zip"
                raise ImportError_(path, f"{what} ({exc})", EXPECTED) from None
            self._files = {n: n for n in names}
        else:
            raise ImportError_(path, "no such file or folder", EXPECTED)
        # Zips made by hand often wrap everything in one top folder.
        tops = sorted(
            (n for n in self._files if PurePosixPath(n).name == "channels.json"),
            key=lambda n: n.count("/"),
        )
        if not tops:
            raise ImportError_(path, "no channels.json found", EXPECTED)
        parent = str(PurePosixPath(tops[0]).parent)
        self._prefix = "" if parent == "." else parent + "/"
        if self._prefix:
            self._files = {
                n[len(self._prefix) :]: v
                for n, v in self._files.items()
                if n.startswith(self._prefix)
            }

    def names(self) -> list[str]:
        return list(self._files)

    def has(self, name: str) -> bool:
        return name in self._files

    def where(self, name: str) -> str:
        if self._zip is not None:
            return f"{self.path}:{self._prefix}{name}"
        return str(self.path / name)

    def read(self, name: str) -> bytes:
        try:
            if self._zip is not None:
                return self._zip.read(self._files[name])
            return Path(self._files[name]).read_bytes()
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise ImportError_(
                self.where(name), f"cannot be read, the archive is damaged ({exc})", EXPECTED
            ) from None

    def load(self, name: str, kind: type, expected: str) -> Any:
        """Parse one JSON file fully; any problem names the file and what was expected."""
        raw = self.read(name)
        where = self.where(name)
        try:
            data = json.loads(raw.decode("utf-8-sig"))
        except UnicodeDecodeError:
            raise ImportError_(where, "not UTF-8 text", expected) from None
        except json.JSONDecodeError as exc:
            body = raw.rstrip()
            if exc.pos >= len(body.decode("utf-8-sig", "replace")) - 1 or "Unterminated" in exc.msg:
                problem = "truncated JSON (the file ends too early)"
            else:
                problem = f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
            raise ImportError_(where, problem, expected) from None
        if not isinstance(data, kind):
            raise ImportError_(where, f"found a JSON {_json_type(data)}", expected)
        return data

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


@dataclass(slots=True)
class _Conversation:
    id: str
    name: str
    folder: str
    private: bool = False
    days: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Plan:
    """What the first pass learned: conversations, users, parents' authors, join dates."""

    channels: list[_Conversation]
    users: dict[str, dict[str, Any]]
    bots: set[str]
    team_ids: Counter[str]
    parents: dict[str, str] = field(default_factory=dict)
    joined: dict[str, str] = field(default_factory=dict)
    private_conversations: int = 0
    private_files: int = 0
    unlisted_folders: list[str] = field(default_factory=list)
    day_files: int = 0


# -- conversion ------------------------------------------------------------------------------------


def ts_to_datetime(ts: str) -> datetime:
    """Slack ``ts`` (``"1712345678.000100"``, already checked against ``_TS``) as an aware
    UTC datetime, exactly (the live translator's result, without going through Decimal)."""
    seconds, _, fraction = ts.partition(".")
    return _EPOCH + timedelta(seconds=int(seconds), microseconds=int((fraction + "00000")[:6]))


def _attachments(message: dict[str, Any]) -> tuple[Attachment, ...]:
    """Files as the live translator reads them: ``files``, or the old single ``file``;
    files deleted since (``mode: tombstone``) do not count."""
    files = message.get("files") or []
    if not files and isinstance(message.get("file"), dict):
        files = [message["file"]]
    if not isinstance(files, list):
        return ()
    return tuple(
        Attachment(
            str(f.get("name") or f.get("title") or f.get("id") or "file"),
            url=str(f.get("url_private") or f.get("permalink") or ""),
            content_type=str(f.get("mimetype") or ""),
        )
        for f in files
        if isinstance(f, dict) and f.get("mode") != "tombstone"
    )


class _Converter:
    """Turns message dicts into the events the live Slack adapter produces.

    Export messages have the shape of ``conversations.history`` messages, which the live
    adapter translates with ``bot.adapters.slack_translate.translate_message``. This builds
    the same ``MessagePosted`` with the translator's own helpers (``plain_text`` for the text,
    ``mentions_in``, the ``bot.ids`` conventions), without its per-message re-validation,
    which the checking pass has already done; a test holds the two field for field equal.
    It adds what only the export knows: the skip reason for the summary, member names from
    users.json, the channel's name, a reply's parent author when the export omits
    ``parent_user_id``, and one ``ReactionAdded`` per reacting user.
    """

    def __init__(
        self,
        community_id: str,
        plan: _Plan,
        *,
        admins_are_facilitators: bool,
        facilitator_ids: set[str],
    ) -> None:
        self.community_id = community_id
        self.plan = plan
        self._refs: dict[str, MemberRef] = {}
        self._admins = admins_are_facilitators
        self._facilitators = facilitator_ids
        self._places: dict[tuple[str, str | None], PlaceRef] = {}
        self.channel = _Conversation("", "", "")

    def ref(self, user_id: str, message: dict[str, Any] | None = None) -> MemberRef:
        ref = self._refs.get(user_id)
        if ref is None:
            user = self.plan.users.get(user_id)
            if (
                user is None
                and message is not None
                and isinstance(message.get("user_profile"), dict)
            ):
                user = {"profile": message["user_profile"]}
            user = user or {"id": user_id}
            is_fac = user_id in self._facilitators or (self._admins and is_admin(user))
            tz = user.get("tz")
            ref = MemberRef(
                PLATFORM,
                user_id,
                display_name(user) if user.get("profile") or user.get("name") else "",
                is_bot=user_id in self.plan.bots,
                is_facilitator=is_fac,
                timezone=tz if isinstance(tz, str) and tz else None,
            )
            self._refs[user_id] = ref
        return ref

    def place(self, thread_id: str | None) -> PlaceRef:
        key = (self.channel.id, thread_id)
        place = self._places.get(key)
        if place is None:
            # The channel name lets ``tracked_channels`` list channels by name.
            place = PlaceRef(
                PLATFORM,
                self.community_id,
                self.channel.id,
                thread_id=thread_id,
                channel_name=self.channel.name,
            )
            self._places[key] = place
        return place

    def convert(
        self, msg: Any, where: str, index: int, out: list[Event], skipped: Counter[str]
    ) -> None:
        """Append the events of one message to ``out`` (or count why it is skipped).

        Checks what the translator relies on, so a malformed message is reported with its
        file and index here, in the checking pass.
        """
        if not isinstance(msg, dict):
            raise ImportError_(
                where, f"item {index} is a JSON {_json_type(msg)}", "an array of message objects"
            )
        ts = msg.get("ts")
        if not isinstance(ts, str) or not _TS.match(ts):
            raise ImportError_(
                where,
                f"message {index} has no valid ts ({ts!r})",
                'Slack messages with a ts like "1712345678.000100"',
            )
        subtype = msg.get("subtype")
        user = msg.get("user")
        plan = self.plan
        if subtype is not None and subtype not in COUNTED_SUBTYPES:
            if subtype in JOIN_SUBTYPES and isinstance(user, str):
                earliest = plan.joined.get(user)
                if earliest is None or float(ts) < float(earliest):
                    plan.joined[user] = ts
            skipped[SKIPPED_SUBTYPES.get(subtype) or f"system messages ({subtype})"] += 1
            return
        if msg.get("bot_id") or user in plan.bots:
            skipped["bot posts"] += 1
            return
        if not isinstance(user, str) or not user:
            skipped["messages without an author"] += 1
            return
        thread_ts = msg.get("thread_ts")
        if thread_ts is not None and (not isinstance(thread_ts, str) or not _TS.match(thread_ts)):
            raise ImportError_(
                where,
                f"message {index} has an invalid thread_ts ({thread_ts!r})",
                'a ts like "1712345678.000100"',
            )
        reactions = msg.get("reactions")
        if reactions is not None and not isinstance(reactions, list):
            raise ImportError_(
                where,
                f"message {index} has reactions that are not a list",
                "reactions: [{name, users, count}]",
            )
        channel_id = self.channel.id
        message_id = slack_message_id(channel_id, ts)
        reply_to = reply_author = None
        if thread_ts is not None and thread_ts != ts:
            reply_to = slack_message_id(channel_id, thread_ts)
            parent_user = msg.get("parent_user_id")
            if parent_user is None and isinstance(msg.get("root"), dict):
                parent_user = msg["root"].get("user")  # thread_broadcast carries its root
            reply_author = (
                parent_user if isinstance(parent_user, str) else plan.parents.get(reply_to)
            )
        elif thread_ts is not None:
            plan.parents[message_id] = user
        raw = msg.get("text")
        raw = raw if isinstance(raw, str) else ""
        at = ts_to_datetime(ts)
        out.append(
            MessagePosted(
                at=at,
                author=self.ref(user, msg),
                place=self.place(reply_to),  # a thread is its parent's message id
                message_id=message_id,
                text=plain_text(raw),
                reply_to_id=reply_to,
                reply_to_author_id=reply_author,
                mentions=self._mentions(raw) if "<@" in raw else (),
                attachments=_attachments(msg) if "files" in msg or "file" in msg else (),
            )
        )
        if reactions:
            self._reactions(reactions, where, index, at, message_id, user, out, skipped)

    def _mentions(self, raw: str) -> tuple[str, ...]:
        # Mentioning a bot ("@Hearth help") is not an interaction with a member.
        bots = self.plan.bots
        return tuple(m for m in mentions_in(raw) if m not in bots)

    def _reactions(
        self,
        reactions: list,
        where: str,
        index: int,
        at: datetime,
        message_id: str,
        author: str,
        out: list[Event],
        skipped: Counter[str],
    ) -> None:
        place = self.place(None)
        bots = self.plan.bots
        for reaction in reactions:
            if not isinstance(reaction, dict) or not isinstance(reaction.get("name"), str):
                raise ImportError_(
                    where,
                    f"message {index} has a reaction without a name",
                    "reactions: [{name, users, count}]",
                )
            users = reaction.get("users")
            count = reaction.get("count")
            if not isinstance(users, list) or not users:
                skipped["reactions without users"] += count if isinstance(count, int) else 1
                continue
            if isinstance(count, int) and count > len(users):
                # Slack lists at most a few dozen users per reaction.
                skipped["reactions without users"] += count - len(users)
            for user_id in users:
                if not isinstance(user_id, str):
                    continue
                if user_id in bots:
                    skipped["reactions by bots"] += 1
                    continue
                out.append(
                    ReactionAdded(
                        at=at,
                        member=self.ref(user_id),
                        place=place,
                        message_id=message_id,
                        emoji=reaction["name"],
                        message_author_id=author,
                    )
                )


# -- the importer ----------------------------------------------------------------------------------


def _conversations(src: _Source, name: str, *, folder_key: str) -> list[dict]:
    if not src.has(name):
        return []
    items = src.load(name, list, f"{name}: an array of conversation objects")
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise ImportError_(
                src.where(name),
                f"item {i} has no id",
                "an array of conversation objects with id and name",
            )
        if not isinstance(item.get(folder_key, item.get("id")), str):
            raise ImportError_(
                src.where(name),
                f"item {i} has no {folder_key}",
                "an array of conversation objects with id and name",
            )
    return items


def _plan(src: _Source) -> _Plan:
    """First pass, part one: the conversation lists and users (no messages yet)."""
    channels = [
        _Conversation(c["id"], c.get("name") or c["id"], c.get("name") or c["id"])
        for c in _conversations(src, "channels.json", folder_key="name")
    ]
    channels += [
        _Conversation(c["id"], c.get("name") or c["id"], c.get("name") or c["id"], private=True)
        for c in _conversations(src, "groups.json", folder_key="name")
    ]
    dm_folders = {c["id"] for c in _conversations(src, "dms.json", folder_key="id")}
    dm_folders |= {
        c.get("name") or c["id"] for c in _conversations(src, "mpims.json", folder_key="name")
    }
    users: dict[str, dict[str, Any]] = {}
    if src.has("users.json"):
        for i, user in enumerate(src.load("users.json", list, "users.json: an array of users")):
            if not isinstance(user, dict) or not isinstance(user.get("id"), str):
                raise ImportError_(
                    src.where("users.json"),
                    f"user {i} has no id",
                    "an array of user objects with id",
                )
            users[user["id"]] = user
    bots = {uid for uid, u in users.items() if u.get("is_bot") or u.get("is_app_user")}
    bots.add(SLACKBOT)
    team_ids = Counter(
        u["team_id"] for u in users.values() if isinstance(u.get("team_id"), str) and u["team_id"]
    )
    plan = _Plan(channels=channels, users=users, bots=bots, team_ids=team_ids)
    by_folder = {c.folder: c for c in channels}
    unlisted: set[str] = set()
    for name in sorted(src.names()):
        parts = name.split("/")
        if len(parts) != 2 or not _DAY_FILE.match(parts[1]):
            continue
        folder = parts[0]
        if folder in dm_folders:
            plan.private_files += 1
        elif folder in by_folder:
            by_folder[folder].days.append(name)
            plan.day_files += 1
        else:
            unlisted.add(folder)
    plan.private_conversations = len(dm_folders)
    plan.unlisted_folders = sorted(unlisted)
    return plan


def _convert_day(
    src: _Source, name: str, converter: _Converter
) -> tuple[list[Event], Counter[str], int]:
    """One day file: its events, what it skipped and how many messages it held."""
    where = src.where(name)
    messages = src.load(name, list, "a JSON array of Slack messages (one day)")
    events: list[Event] = []
    skipped: Counter[str] = Counter()
    for i, msg in enumerate(messages):
        converter.convert(msg, where, i, events, skipped)
    return events, skipped, len(messages)


def _team_from_messages(src: _Source, plan: _Plan) -> None:
    """Exports without team ids in users.json: the messages still say their team."""
    for channel in plan.channels:
        for name in channel.days[:3]:
            for msg in src.load(name, list, "a JSON array of Slack messages (one day)"):
                team = msg.get("team") or msg.get("user_team") if isinstance(msg, dict) else None
                if isinstance(team, str) and team:
                    plan.team_ids[team] += 1


async def import_slack_export(
    app: HearthApp,
    path: str | Path,
    *,
    community_id: str | None = None,
    progress: ImportProgress | None = None,
) -> ImportSummary:
    """Import a Slack workspace export into ``community_id`` (default: the export's team id).

    Raises :class:`ImportError_`, with nothing written, when any file of the export is
    unreadable, truncated or not what a Slack export holds.
    """
    path = Path(path)
    progress = progress or ImportProgress(enabled=False)
    src = _Source(path)
    try:
        stats = ImportStats()
        plan = _plan(src)
        if community_id is None:
            if not plan.team_ids:
                _team_from_messages(src, plan)
            if not plan.team_ids:
                raise ImportError_(
                    path,
                    "the export does not say which workspace it is from "
                    "(no team_id in users.json or the messages)",
                    "--community TEAM_ID to name the target community",
                )
            community_id = plan.team_ids.most_common(1)[0][0]
        settings = app.settings
        converter = _Converter(
            community_id,
            plan,
            admins_are_facilitators=settings.slack.admins_are_facilitators,
            facilitator_ids=set(settings.slack.facilitator_user_ids),
        )
        # Pass 1: read, check and convert every day file; keep the events within budget.
        checked: list[CheckedFile] = []
        kept = 0
        progress.start("checking", plan.day_files)
        for channel in plan.channels:
            converter.channel = channel
            for name in channel.days:
                events, skipped, n = _convert_day(src, name, converter)
                keep = kept + len(events) <= KEEP_EVENTS
                kept += len(events) if keep else 0
                checked.append(CheckedFile(name, events if keep else None, skipped, n, channel))
                progress.advance(1, messages=n)
        progress.stop()
        for item in checked:
            if item.events:
                fill_reply_authors(item.events, plan.parents)
        # Pass 2: everything is sound; write.
        recorder = Recorder(app, PLATFORM, community_id, stats=stats)
        await recorder.begin(name=workspace_name(path))
        for user_id, user in plan.users.items():
            if user_id in plan.bots or user.get("deleted"):
                continue
            await recorder.member(converter.ref(user_id))
        for channel in plan.channels:
            await recorder.channel(channel.id, channel.name)
        for user_id, ts in sorted(plan.joined.items(), key=lambda kv: float(kv[1])):
            if user_id not in plan.bots:
                await recorder.emit(
                    MemberJoined(
                        at=ts_to_datetime(ts),
                        member=converter.ref(user_id),
                        community_id=community_id,
                    )
                )
        progress.start("importing", plan.day_files)
        previous = None
        for item in checked:
            if item.context is not previous and previous is not None:
                await recorder.end_of_file()  # a channel's days are written together
            previous = converter.channel = item.context
            events, skipped = item.events, item.skipped
            if events is None:  # past the budget: read it again, now with every parent known
                events, skipped, _n = _convert_day(src, item.label, converter)
            stats.files += 1
            stats.messages_read += item.messages
            stats.skipped.update(skipped)
            await recorder.emit_file(events, progress, amount=1, messages=item.messages)
            item.events = None  # free memory as we go
        progress.stop()
        _notes(stats, plan)
        return await recorder.finish(str(path))
    finally:
        progress.stop()
        src.close()


def workspace_name(path: Path) -> str | None:
    """The workspace's name, when the export kept Slack's file name
    ("Course Team Slack export Jan 1 2026 - Mar 1 2026.zip" gives "Course Team")."""
    name, found, _dates = path.stem.partition(" Slack export")
    return name.strip() or None if found else None


def _notes(stats: ImportStats, plan: _Plan) -> None:
    if plan.private_conversations:
        stats.skip("direct and group messages (not read: private)", plan.private_files)
        stats.notes.append(
            f"private conversations not read: {plan.private_conversations} DMs and group DMs "
            f"({plural(plan.private_files, 'day file')}); direct messages are private and "
            "never count as course participation"
        )
    private_channels = sum(1 for c in plan.channels if c.private)
    if private_channels:
        stats.notes.append(f"private channels imported from groups.json: {private_channels}")
    if plan.unlisted_folders:
        stats.notes.append(
            "folders not listed in channels.json, groups.json, dms.json or mpims.json were "
            f"ignored: {', '.join(plan.unlisted_folders[:5])}"
            + (" ..." if len(plan.unlisted_folders) > 5 else "")
        )
