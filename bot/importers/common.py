"""What both history importers share: errors, the recording path, progress and the summary.

Imported history and live traffic are the same thing. The importers translate an export into
the neutral events a live adapter would produce (``bot.events``) and hand them to
:class:`Recorder`, which dispatches them through ``app.engine.dispatch``: the engine maps
members and the community, the contributions cog classifies each message and queues its rows
on the batched writer, exactly as for a message that arrives live. Nothing here writes a
contribution or an edge row itself.

Two things differ from live operation, both about bulk speed and safety:

- The app is built by :func:`open_import_app` with a large writer batch and without the
  writer's timer task. :class:`Recorder` starts a flush (one transaction) whenever
  ``flush_rows`` rows are queued and when a file is done, and keeps dispatching while it runs:
  SQLite's share of the work happens in aiosqlite's thread, outside the GIL, so reading and
  classifying overlap with writing. It waits only when a second batch piles up behind.
- Actions the cogs return (replies, nudges) are dropped: loading history must never message
  anyone.

All-or-nothing per file: the importers read, check and convert every file of an export before
the first event is dispatched (see each importer), so a corrupt zip, a truncated or foreign
file stops the import with :class:`ImportError_` and nothing from it is written (nor from
any other file). A re-run after a crash mid-write (the database went away, Ctrl-C) completes
the job without double counting, because contribution and edge rows are unique on the
platform message id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from sqlalchemy import func, select

from bot.app import HearthApp
from bot.classify import KINDS
from bot.clock import Clock
from bot.config import Settings
from bot.errors import UserError
from bot.events import Event, MemberJoined, MemberRef, MessagePosted, ReactionAdded
from storage.repos import E, M, masks_to_kinds

log = logging.getLogger(__name__)

#: Queued writer rows that trigger a flush (one transaction). Large enough that commits are a
#: small share of the work, small enough to bound memory.
FLUSH_ROWS = 20_000
#: Events dispatched between two looks at the writer (and yields to a running flush).
YIELD_EVERY = 256
#: Events the checking pass keeps for the writing pass (a few hundred bytes each), so most
#: exports are parsed once. Files past this budget are simply read again when written.
KEEP_EVENTS = 500_000


class ImportError_(UserError):  # noqa: N801 - trailing underscore: do not shadow the builtin
    """An export file cannot be imported. The message names the file and what was expected.

    A :class:`UserError`, so the CLI prints it as is (exit code 2) instead of a traceback.
    """

    def __init__(self, file: str | Path, problem: str, expected: str = "") -> None:
        message = f"{file}: {problem}"
        if expected:
            message += f"; expected {expected}"
        super().__init__(message)
        self.file = str(file)


# -- progress ----------------------------------------------------------------------------------


class ImportProgress:
    """A rich progress bar with counts (files or bytes, plus messages read).

    ``enabled=False`` (``--quiet``, tests) keeps the counters and draws nothing.
    """

    def __init__(self, console: Console | None = None, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.messages = 0
        self._progress: Progress | None = None
        self._task: Any = None
        self._console = console

    def start(self, description: str, total: float | None, unit: str = "files") -> None:
        self.stop()
        self.messages = 0
        if not self.enabled:
            return
        done = (
            [MofNCompleteColumn(), TextColumn("files")]
            if unit == "files"
            else [TextColumn("{task.percentage:>3.0f}%")]
        )
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            *done,
            TextColumn("{task.fields[messages]:,} messages"),
            TimeElapsedColumn(),
            console=self._console,
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(description, total=total, messages=self.messages)

    def advance(self, amount: float = 1, *, messages: int = 0) -> None:
        self.messages += messages
        if self._progress is not None:
            self._progress.update(self._task, advance=amount, messages=self.messages)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


# -- statistics and summary ----------------------------------------------------------------------


@dataclass(slots=True)
class ImportStats:
    """Counters the importers and the recorder keep while reading and writing."""

    files: int = 0
    messages_read: int = 0
    messages: int = 0  # MessagePosted dispatched
    reactions: int = 0  # ReactionAdded dispatched (one per member and emoji)
    joins: int = 0  # MemberJoined dispatched
    skipped: Counter[str] = field(default_factory=Counter)
    channels: set[str] = field(default_factory=set)
    threads: set[tuple[str, str]] = field(default_factory=set)
    members: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    #: When the import started (both passes count in the summary's messages/s).
    started: float = field(default_factory=time.perf_counter)

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] += n


@dataclass(slots=True)
class ImportSummary:
    """What one import read and what it changed in the database."""

    platform: str
    community_id: str
    source: str
    stats: ImportStats
    contributions_new: int
    kinds_new: dict[str, int]
    edges_new: dict[str, int]
    members_total: int
    members_new: int
    seconds: float

    @property
    def rate(self) -> float:
        """Messages read per second, the figure the benchmark reports."""
        return self.stats.messages_read / self.seconds if self.seconds > 0 else 0.0

    def table(self) -> Table:
        s = self.stats
        table = Table(
            title=f"Imported {self.source} into {self.platform} community {self.community_id}",
            show_header=True,
        )
        table.add_column("what")
        table.add_column("count", justify="right")
        table.add_row("files read", f"{s.files:,}")
        table.add_row("messages read", f"{s.messages_read:,}")
        table.add_row("contributions recorded (new)", f"{self.contributions_new:,}")
        for kind in KINDS:
            table.add_row(f"  {kind.replace('_', ' ')}", f"{self.kinds_new.get(kind, 0):,}")
        already = s.messages - self.contributions_new
        if already > 0:
            table.add_row("already recorded or not tracked", f"{already:,}")
        table.add_row("members (seen in export)", f"{len(s.members):,}")
        table.add_row("members (new in community)", f"{self.members_new:,}")
        table.add_row("channels", f"{len(s.channels):,}")
        table.add_row("threads", f"{len(s.threads):,}")
        table.add_row("reactions read", f"{s.reactions:,}")
        for kind in ("reply", "mention", "reaction"):
            table.add_row(f"{kind} interactions (new)", f"{self.edges_new.get(kind, 0):,}")
        if s.joins:
            table.add_row("member joins", f"{s.joins:,}")
        for reason, count in sorted(s.skipped.items(), key=lambda kv: (-kv[1], kv[0])):
            table.add_row(f"skipped: {reason}", f"{count:,}")
        table.add_row("seconds", f"{self.seconds:.1f}")
        return table

    def render(self, console: Console) -> None:
        console.print(self.table())
        for note in self.stats.notes:
            console.print(f"note: {note}")


@dataclass(slots=True)
class CheckedFile:
    """One export file after the checking pass: its events (or None: read it again when
    writing, past :data:`KEEP_EVENTS`), what it skipped and how many messages it held."""

    label: str
    events: list[Event] | None
    skipped: Counter[str]
    messages: int
    context: Any = None


def fill_reply_authors(events: list[Event], authors: dict[str, str]) -> None:
    """Give replies converted before their target was read the target's author, in place.

    A live adapter knows whom a reply answers (Slack ``parent_user_id``, Discord's resolved
    reference); an export sometimes only says it at the target, possibly in a later file.
    """
    for i, event in enumerate(events):
        if type(event) is not MessagePosted or event.reply_to_author_id is not None:
            continue
        target = event.reply_to_id
        if target is None and event.place.thread_id not in (None, event.message_id):
            target = event.place.thread_id
        author = authors.get(target) if target is not None else None
        if author is not None:
            events[i] = replace(event, reply_to_author_id=author)


# -- the recording path ----------------------------------------------------------------------------


async def open_import_app(
    settings: Settings, *, clock: Clock | None = None, migrate: bool = True
) -> HearthApp:
    """A HearthApp tuned for bulk loads: a big writer batch, flushed by :class:`Recorder`.

    The writer's timer task is not started, so rows are written in the large batches the
    recorder asks for (one transaction each), never a few at a time in between.
    """
    storage = settings.storage.model_copy(
        update={"batch_size": 100_000, "max_buffer": max(settings.storage.max_buffer, 10**7)}
    )
    bulk = settings.model_copy(update={"storage": storage})
    return await HearthApp.create(bulk, clock=clock, migrate=migrate, start_writer=False)


class Recorder:
    """Feeds an importer's neutral events through the engine, like a live adapter.

    Keeps the statistics for the summary and flushes the batched writer in large batches.
    """

    def __init__(
        self,
        app: HearthApp,
        platform: str,
        community_id: str,
        *,
        stats: ImportStats | None = None,
        flush_rows: int = FLUSH_ROWS,
    ) -> None:
        self.app = app
        self.engine = app.engine
        self.store = app.store
        self.platform = platform
        self.community_id = community_id
        self.stats = stats or ImportStats()
        self.flush_rows = flush_rows
        self.suppressed_actions = 0
        self._since_yield = 0
        self._flush_task: asyncio.Task | None = None
        self._before: tuple[int, dict[int, int], dict[str, int], int] | None = None

    # -- set-up ---------------------------------------------------------------------------------

    async def begin(self, *, name: str | None = None) -> None:
        """Create the community if needed (named after the export) and note the counts before."""
        existing = await self.store.get_community(self.community_id)
        await self.engine.ensure_community(self.community_id, self.platform)
        if existing is None and name:
            await self.store.update_community(self.community_id, name=name)
        elif existing is not None and existing["platform"] != self.platform:
            self.stats.notes.append(
                f"community {self.community_id} was created by the {existing['platform']} "
                f"adapter; {self.platform} history was added to it as asked"
            )
        self._before = await self._counts()

    async def member(self, ref: MemberRef) -> None:
        """Map a member to the community with the engine's own upsert (name, role, timezone),
        as a live sighting would; bots are never members."""
        if ref.is_bot:
            return
        await self.engine.ensure_member(self.community_id, ref)
        self.stats.members.add(ref.id)

    async def channel(self, channel_id: str, name: str = "") -> None:
        if channel_id not in self.stats.channels:
            await self.store.upsert_channel(self.community_id, channel_id, name)
            self.stats.channels.add(channel_id)

    # -- events ---------------------------------------------------------------------------------

    async def emit(self, event: Event) -> None:
        """Dispatch one event exactly as a live one; the cogs' actions are dropped."""
        actions = await self.engine.dispatch(event)
        if actions:
            self.suppressed_actions += len(actions)
        stats = self.stats
        if type(event) is MessagePosted:
            stats.messages += 1
            stats.members.add(event.author.id)
            thread_id = event.place.thread_id
            if thread_id is not None:
                stats.threads.add((event.place.channel_id, thread_id))
        elif type(event) is ReactionAdded:
            stats.reactions += 1
        elif type(event) is MemberJoined:
            stats.joins += 1
            stats.members.add(event.member.id)
        self._since_yield += 1
        if self._since_yield >= YIELD_EVERY:
            await self._pace()

    async def emit_all(self, events: Iterable[Event]) -> None:
        for event in events:
            await self.emit(event)

    async def emit_file(
        self, events: list[Event], progress: ImportProgress, *, amount: float, messages: int
    ) -> None:
        """Dispatch one checked file's events, moving the progress bar as they go (a big
        file is a bar of its own, not a jump at the end)."""
        step = 2000
        total = len(events) or 1
        shown_amount = shown_messages = 0.0
        for start in range(0, len(events), step):
            await self.emit_all(events[start : start + step])
            share = min(1.0, (start + step) / total)
            progress.advance(
                amount * share - shown_amount, messages=int(messages * share) - int(shown_messages)
            )
            shown_amount, shown_messages = amount * share, messages * share
        if not events:
            progress.advance(amount, messages=messages)

    async def _pace(self, *, end_of_file: bool = False) -> None:
        """Start a background flush when enough rows are queued (or a file is done), and let
        it progress.

        The flush runs while dispatching goes on: SQLite does its part (index maintenance,
        most of a row's cost) in aiosqlite's thread without the GIL, so the two overlap. Only
        when a second batch has piled up behind a running flush do we wait for it.
        """
        self._since_yield = 0
        task = self._flush_task
        if task is not None and task.done():
            self._flush_task = None
            task.result()  # a failed flush stops the import here, with its error
        pending = self.store.writer.pending
        if pending >= self.flush_rows or (end_of_file and pending):
            if self._flush_task is None:
                self._flush_task = asyncio.create_task(self.store.writer.flush())
            elif pending >= 2 * self.flush_rows:
                await self._flush_task
                return
        await asyncio.sleep(0)  # the running flush may hand its next chunk to SQLite

    async def end_of_file(self) -> None:
        """A file is done: start writing what it queued, without waiting for it."""
        await self._pace(end_of_file=True)

    async def flush(self) -> None:
        """Write everything queued and wait for it (the end of the import)."""
        if self._flush_task is not None:
            task, self._flush_task = self._flush_task, None
            await task
        await self.store.writer.flush()

    # -- the end --------------------------------------------------------------------------------

    async def finish(self, source: str) -> ImportSummary:
        """Flush, and compare the database with before."""
        await self.flush()
        before = self._before or (0, {}, {}, 0)
        after = await self._counts()
        masks_before, masks_after = before[1], after[1]
        diff = {m: masks_after.get(m, 0) - masks_before.get(m, 0) for m in masks_after}
        if self.suppressed_actions:
            log.info(
                "dropped %s actions the cogs returned for imported events", self.suppressed_actions
            )
        return ImportSummary(
            platform=self.platform,
            community_id=self.community_id,
            source=source,
            stats=self.stats,
            contributions_new=after[0] - before[0],
            kinds_new=masks_to_kinds({m: n for m, n in diff.items() if n > 0}, KINDS),
            edges_new={k: after[2].get(k, 0) - before[2].get(k, 0) for k in after[2]},
            members_total=after[3],
            members_new=after[3] - before[3],
            seconds=time.perf_counter() - self.stats.started,
        )

    async def _counts(self) -> tuple[int, dict[int, int], dict[str, int], int]:
        total, masks, _words = await self.store.kind_counts(self.community_id)
        async with self.store.engine.connect() as conn:
            edges = dict(
                (
                    await conn.execute(
                        select(E.c.kind, func.count())
                        .where(E.c.community_id == self.community_id)
                        .group_by(E.c.kind)
                    )
                ).all()
            )
            members = (
                await conn.execute(
                    select(func.count()).where(
                        M.c.community_id == self.community_id, M.c.is_bot.is_(False)
                    )
                )
            ).scalar_one()
        return total, masks, edges, int(members)


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"
