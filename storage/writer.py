"""The batched writer: one task owns hot-path writes.

Events arrive far faster than one commit each could keep up with (a commit is an fsync on
SQLite), so contribution and edge rows are queued here and written in batches, in arrival
order, inside one transaction per flush: plain inserts (:class:`_JsonPlan`) on SQLite as
multi-row ``INSERT .. VALUES`` statements of one size and an ``INSERT .. SELECT`` over a JSON
array for the rest, all of a table's rows in one call to the connection's thread; on
PostgreSQL as a binary COPY first, in a savepoint, falling back to the JSON insert when a row
exists already. Anything else goes through Core executemany. Reads flush first,
once per command (:meth:`BatchWriter.read_scope`), so a command always sees what was said
before it.

If the database is unreachable, rows stay queued (up to ``max_buffer``) and the flush is retried
with backoff; past the bound the writer logs loudly and refuses new rows instead of dropping
queued ones silently.

A batch the database refuses for its *content* (PostgreSQL rejects a NUL character in text or
an id longer than its column; SQLite a broken foreign key) would otherwise be retried forever
and block every later row. Such a batch is split until the offending rows are found; each is
repaired once (NUL characters removed, over-long strings cut to the column's length) and, if
the database still refuses it, logged as an error with its table and dropped, and counted.
Connection errors are never treated this way: those rows wait for the database.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import operator
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain, repeat
from typing import Any

import orjson
from sqlalchemy import Boolean, Float, Integer, String, Table, delete, insert, update
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.types import TypeDecorator

from storage.types import AwareDateTime, sqlite_text

log = logging.getLogger(__name__)


class BufferFull(RuntimeError):
    """The database has been unreachable long enough that the in-memory buffer is full."""


@dataclass(slots=True)
class _Op:
    kind: str  # "insert", "upsert_ignore", "delete", "update"
    table: Table
    rows: list[dict[str, Any]] = field(default_factory=list)
    where: Any = None
    values: dict[str, Any] | None = None
    #: For "upsert": the unique columns and the columns a conflict overwrites.
    keys: tuple[str, ...] = ()
    overwrite: tuple[str, ...] = ()


@dataclass(slots=True)
class WriterStats:
    rows_written: int = 0
    flushes: int = 0
    last_flush_seconds: float = 0.0
    failures: int = 0
    #: Rows the database refused for their content even after repair (logged, then dropped).
    rejected: int = 0
    #: Rows written only after repair (NUL characters removed, over-long values cut).
    repaired: int = 0


@dataclass(slots=True)
class _ReadScope:
    #: True once a read in this scope has flushed and nothing was queued in it since.
    settled: bool = False


#: The read scope of the running command (see :meth:`BatchWriter.read_scope`).
_read_scope: ContextVar[_ReadScope | None] = ContextVar("hearth_read_scope", default=None)


@dataclass(frozen=True, slots=True)
class _JsonPlan:
    """One ``INSERT .. SELECT`` over a JSON array of rows per chunk (SQLite and PostgreSQL).

    An executemany hands every row to the driver from Python: on SQLite the writer's thread
    needs the GIL back for each row, so it crawled while the event loop thread classified
    messages; on PostgreSQL the per-row encoding cost about as much as the server's work.
    One statement per chunk leaves the per-row work to the database. Values go through the
    same conversion as the column type's own (a test compares both paths value by value).
    On SQLite the plan may be an upsert (``_json_plan``'s ``keys``), and most rows go as
    multi-row ``VALUES`` inserts (:meth:`values_sql`), the JSON insert taking the rest of a
    chunk; on PostgreSQL it also says how to COPY the same rows (``copy_into``).
    """

    sql: str
    values: Callable[[dict[str, Any]], tuple]
    #: (position, converter) of the columns whose values need converting (datetimes).
    processors: tuple[tuple[int, Callable[[Any], Any]], ...]
    width: int
    #: What a datetime is written as (the AwareDateTime text of this database), when the
    #: only conversions are datetimes and floats: orjson then encodes the rows' tuples
    #: directly, calling back only for datetimes. None: every value goes through
    #: ``processors`` and the standard library's encoder.
    datetime_text: Callable[[datetime], str] | None = None
    #: Positions of float columns: JSON has no NaN or infinity, which orjson would write as
    #: null, so a chunk holding one takes the ordinary path (as the standard encoder's
    #: refusal sends it).
    floats: tuple[int, ...] = ()
    #: PostgreSQL: (table, columns) for a binary COPY, tried first inside a savepoint. For
    #: 50,000 contributions and their edges the server took 0.97 s through the JSON insert
    #: with ON CONFLICT, 0.75 s without it (checking every row for a conflict first) and
    #: 0.62 s through COPY, and conflicts are rare (redeliveries). None on SQLite, where
    #: OR IGNORE costs next to nothing.
    copy_into: tuple[str, list[str]] | None = None
    #: Positions of datetime columns (a naive datetime is refused, as the column type does).
    datetimes: tuple[int, ...] = ()
    #: SQLite: the insert as ``INSERT .. VALUES (?, ..), (?, ..) ..`` before its rows, and
    #: the conflict clause after them (see :meth:`values_sql`).
    values_head: str | None = None
    values_tail: str = ""
    _values_sql: dict[int, str] = field(default_factory=dict, compare=False)

    def values_sql(self, rows: int) -> str:
        """SQLite: the multi-row ``VALUES`` insert of exactly ``rows`` rows, with one
        parameter per value. SQLite binds them in C and runs the statement without the GIL,
        and reading them cost it half what extracting the same values from JSON did (for
        100,000 contributions and their edges: 0.6-0.9 s against 1.3-1.8 s). Each size is
        its own prepared statement, kept in sqlite3's statement cache, so the writer uses
        one size per table and sends the rest of a chunk as JSON."""
        sql = self._values_sql.get(rows)
        if sql is None:
            row = f"({', '.join('?' * self.width)})"
            sql = f"{self.values_head}{', '.join([row] * rows)}{self.values_tail}"
            self._values_sql[rows] = sql
        return sql

    def params(self, rows: Sequence[dict[str, Any]]) -> list | None:
        """SQLite: the rows' values in one flat list, converted as the column types convert
        them; None when a row has other columns or a value sqlite3 would not store the way
        SQLAlchemy stores it (the chunk then takes SQLAlchemy's path, which says why)."""
        items = self._tuples(rows)
        if items is None:
            return None
        flat = list(chain.from_iterable(items))
        width = self.width
        for index, process in self.processors:
            column = flat[index::width]
            if process is sqlite_text:
                column = _sqlite_texts(column)
                if column is None:
                    return None
            else:
                try:
                    column = list(map(process, column))
                except (TypeError, ValueError):
                    return None
            flat[index::width] = column
        if not set(map(type, flat)) <= _BINDABLE:
            return None
        return flat

    def payload(self, rows: Sequence[dict[str, Any]]) -> str | None:
        """The rows as one JSON array; None when a value would not survive JSON."""
        if self.datetime_text is not None:
            payload = self._direct(rows)
        else:
            payload = self._converted(rows)
        # SQLite's JSON functions stop a string at NUL and PostgreSQL's jsonb refuses it; the
        # ordinary path stores it (SQLite) or repairs the row (PostgreSQL), as it always did.
        return None if payload is None or "\\u0000" in payload else payload

    def _direct(self, rows: Sequence[dict[str, Any]]) -> str | None:
        # About 1.3 us a row against 2.4 us below: the encoding is the writer's largest share
        # of Python work per row, and on SQLite it competes for the GIL with the event loop.
        items = self._tuples(rows)
        if items is None:
            return None
        for index in self.floats:
            if not _all_finite(map(_at(index), items)):
                return None
        try:
            if self._all_utc(items):
                # orjson's own RFC 3339 text ("...T09:00:00+00:00", microseconds only when
                # not zero), which the insert's SQL turns into the stored text: a callback
                # per datetime was about 3.3 us a row, held under the GIL, against 0.4 us.
                return orjson.dumps(items).decode()
            return orjson.dumps(
                items, default=self._datetime, option=orjson.OPT_PASSTHROUGH_DATETIME
            ).decode()
        except TypeError:  # orjson.JSONEncodeError: not JSON, a naive datetime, a huge int
            return None

    def _all_utc(self, items: list[tuple]) -> bool:
        """Every datetime among the rows is a plain ``datetime`` in ``UTC`` (checked in C):
        orjson's own text of it then needs no conversion but the one the SQL makes."""
        return all(
            _only_utc([v for v in map(_at(index), items) if v is not None])  # NULLs stay
            for index in self.datetimes
        )

    def records(self, rows: Sequence[dict[str, Any]]) -> list[tuple] | None:
        """The rows as tuples in column order for COPY; None when one has other columns or a
        naive datetime (the JSON insert then deals with it as it always did)."""
        items = self._tuples(rows)
        if items is None:
            return None
        for index in self.datetimes:
            if not all(v is None or v.tzinfo is not None for v in map(_at(index), items)):
                return None
        return items

    def _tuples(self, rows: Sequence[dict[str, Any]]) -> list[tuple] | None:
        """The rows' values in column order; None when a row has other columns (the
        ordinary path then says which)."""
        if not all(map(self.width.__eq__, map(len, rows))):
            return None
        try:
            return list(map(self.values, rows))
        except KeyError:
            return None

    def _datetime(self, value: Any) -> str:
        if not isinstance(value, datetime):
            raise TypeError(f"{type(value).__name__} is not a datetime")
        return self.datetime_text(value)

    def _converted(self, rows: Sequence[dict[str, Any]]) -> str | None:
        items = self._tuples(rows)
        if items is None:
            return None
        processors = self.processors
        chunk = []
        for values in items:
            item = list(values)
            for index, process in processors:
                item[index] = process(item[index])
            chunk.append(item)
        try:
            return _dumps(chunk)
        except (TypeError, ValueError):  # not JSON (bytes, NaN) or a naive datetime
            return None


_at = operator.itemgetter
#: What sqlite3 binds as SQLAlchemy would; any other type (a str subclass, a date) takes
#: SQLAlchemy's path.
_BINDABLE = {str, int, float, bool, type(None)}
_DATETIME_OR_NONE = {datetime, type(None)}
_MICROSECONDS_FOR_OFFSET = operator.methodcaller("replace", "+00:00", ".000000")
_SPACE_FOR_T = operator.methodcaller("replace", "T", " ")
_STORED_LENGTH = slice(26)


def _sqlite_texts(column: list) -> list | None:
    """A datetime column's values as :class:`AwareDateTime` stores them on SQLite; None when
    one is not an aware datetime (SQLAlchemy's path then refuses it, as the type does).

    UTC datetimes, as every adapter gives, go through orjson and three string operations,
    all in C: ``sqlite_text`` called per value took about 2 us each, 15 times as long."""
    kinds = set(map(type, column))
    if not kinds <= _DATETIME_OR_NONE:
        return None
    try:
        if type(None) in kinds:
            return [None if v is None else sqlite_text(v) for v in column]
        if _only_utc(column):
            # orjson writes "2026-09-07T09:00:00+00:00", or "...09:00:00.000005+00:00"
            # when there are microseconds: cut to "2026-09-07 09:00:00.000000" or
            # "2026-09-07 09:00:00.000005", what sqlite_text writes.
            texts = orjson.loads(orjson.dumps(column))
            texts = map(_SPACE_FOR_T, map(_MICROSECONDS_FOR_OFFSET, texts))
            return list(map(operator.getitem, texts, repeat(_STORED_LENGTH)))
        return list(map(sqlite_text, column))
    except (ValueError, OverflowError):  # naive, or out of range once converted to UTC
        return None


_tzinfo = operator.attrgetter("tzinfo")
_DATETIME = {datetime}
_UTC = {UTC}


def _only_utc(values: list) -> bool:
    """Every one of ``values`` is a plain ``datetime`` in ``UTC`` (checked in C), which
    orjson writes as "2026-09-07T09:00:00+00:00" whatever else it holds."""
    return set(map(type, values)) <= _DATETIME and set(map(_tzinfo, values)) <= _UTC


def _all_finite(values: Iterator[Any]) -> bool:
    """No NaN or infinity among ``values`` (numbers or None), checked in C when it can be."""
    values = list(values)
    try:
        return math.isfinite(math.fsum(values))
    except (TypeError, ValueError, OverflowError):  # None among them, inf - inf, overflow
        return not any(isinstance(v, float) and not math.isfinite(v) for v in values)


#: Rows per JSON insert statement built on the event loop (PostgreSQL): a few milliseconds.
JSON_CHUNK = 1000
#: Rows whose values aiosqlite's thread prepares at once on SQLite (for ``VALUES``
#: statements, then a JSON insert of the rest). Each statement costs that thread a wait for
#: the GIL when it returns (up to the switch interval, bot.gil, while the event loop is
#: busy): with 5 ms, 1,000-row JSON statements lost about 0.4 s per 100,000 events that way.
DRIVER_CHUNK = 10_000
#: Rows per multi-row ``VALUES`` insert on SQLite: a chunk of 10,000 contributions is two
#: statements of this size (one GIL wait each when it returns) and one JSON insert of the
#: rest. One size per table keeps one prepared statement per table in sqlite3's cache.
#: (Halves of it down to 256 rows for the rest, leaving JSON a few rows, measured the same.)
VALUES_ROWS = 4096
#: Events between yields to the event loop while a flush waits on the database.
YIELD_EVERY = 16
#: Seconds a table's batches skip COPY after one met an existing row: a redelivery seldom
#: comes alone (a reconnect replays a stretch), and each costs the batch twice.
CONFLICT_MEMORY = 60.0

_dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


def _pg_text(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to an AwareDateTime column")
    return value.isoformat()  # with its offset: timestamptz reads it exactly


def _pg_cast(column) -> str | None:
    """The cast of a column's JSON text on PostgreSQL: "" for strings, which are not cast so
    that the insert's own assignment checks their length (a cast to varchar(n) would cut
    silently), None for a type this path does not know."""
    kind = column.type
    if isinstance(kind, AwareDateTime):
        return "::timestamptz"
    if isinstance(kind, TypeDecorator):  # sqlmodel's AutoString wraps a String
        kind = kind.impl
    for known, cast in (
        (Boolean, "::boolean"),
        (Integer, "::bigint"),
        (Float, "::double precision"),
        (String, ""),
    ):
        if isinstance(kind, known):
            return cast
    return None


def _json_plan(
    table: Table,
    names: tuple[str, ...],
    dialect,
    *,
    keys: tuple[str, ...] = (),
    overwrite: tuple[str, ...] = (),
) -> _JsonPlan | None:
    """The plan of an insert that skips existing rows or, with ``keys``, an upsert that
    overwrites ``overwrite`` on a conflict over ``keys`` (SQLite only: there an executemany
    of upserts crawled, one GIL wait a row, when a course's members first appeared; on
    PostgreSQL asyncpg's executemany is fast, and one statement may not update a row twice)."""
    needed = {c.name for c in table.columns if not (c.primary_key and c.autoincrement)}
    if set(names) != needed:
        return None  # a column left to its default: SQLAlchemy fills those in
    if keys and dialect.name != "sqlite":
        return None
    quote = dialect.identifier_preparer.quote
    target = f"{dialect.identifier_preparer.format_table(table)} ({', '.join(map(quote, names))})"
    processors: list[tuple[int, Callable[[Any], Any]]] = []
    floats = tuple(i for i, name in enumerate(names) if _is_float(table.c[name]))
    if dialect.name == "sqlite":
        picks = ", ".join(
            _sqlite_stamp(f"json_extract(value, '$[{i}]')")
            if isinstance(table.c[name].type, AwareDateTime)
            else f"json_extract(value, '$[{i}]')"
            for i, name in enumerate(names)
        )
        # WHERE true: without it SQLite reads ON CONFLICT as part of the SELECT's join.
        source = f"SELECT {picks} FROM json_each(?) WHERE true"
        for i, name in enumerate(names):
            column = table.c[name]
            if isinstance(column.type, AwareDateTime):
                processors.append((i, sqlite_text))  # what the type stores, computed directly
            elif proc := column.type.dialect_impl(dialect).bind_processor(dialect):
                processors.append((i, proc))
        datetime_text = sqlite_text
    elif dialect.name == "postgresql":
        picks = []
        for i, name in enumerate(names):
            cast = _pg_cast(table.c[name])
            if cast is None:
                return None
            if isinstance(table.c[name].type, AwareDateTime):
                processors.append((i, _pg_text))
            picks.append(f"(r->>{i}){cast}")
        datetime_text = _pg_text
        source = f"SELECT {', '.join(picks)} FROM jsonb_array_elements($1::jsonb) AS r"
    else:  # pragma: no cover - other databases are not supported targets
        return None
    if keys:
        updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in overwrite)
        conflict = f"({', '.join(map(quote, keys))}) DO UPDATE SET {updates}"
    else:
        conflict = "DO NOTHING"
    sql = f"INSERT INTO {target} {source} ON CONFLICT {conflict}"
    values_head = f"INSERT INTO {target} VALUES " if dialect.name == "sqlite" else None
    # Datetimes and floats are all orjson needs help with; any other conversion (booleans
    # on SQLite, say) keeps every value going through the column type's processor.
    direct = all(fn in (sqlite_text, _pg_text) or i in floats for i, fn in processors)
    return _JsonPlan(
        sql,
        operator.itemgetter(*names),
        tuple(processors),
        len(names),
        datetime_text if direct else None,
        floats,
        (table.name, list(names)) if dialect.name == "postgresql" else None,
        tuple(i for i, name in enumerate(names) if isinstance(table.c[name].type, AwareDateTime)),
        values_head,
        f" ON CONFLICT {conflict}",
    )


#: The interpreter's switch interval (seconds) while a flush runs in aiosqlite's thread.
FLUSH_SWITCH_INTERVAL = 0.0001


@contextmanager
def _quick_handoff() -> Iterator[None]:
    """Pass the GIL between threads every ``FLUSH_SWITCH_INTERVAL`` while a flush runs in
    aiosqlite's thread, and go back to the interval set before afterwards.

    The thread needs the GIL for short steps (binding a statement's values, taking it back
    when SQLite returns) while the event loop's thread runs Python all the time under
    ingest; each step waits up to the switch interval. With 0.5 ms (bot.gil) a 5,000-row
    flush took 450 ms of which the thread worked 60, the producer filled the buffer meanwhile
    and then waited for the next flush: 35,000-37,000 events/s, 0.47-0.53 of raw sqlite3. With
    0.1 ms during flushes: 43,600-49,800 events/s, 0.61-0.73. Kept to flushes because everywhere
    else the shorter interval cost time: the weekly summary, whose threads all run Python,
    took 214 ms against 200 ms with it."""
    # Counted, so that flushes of several writers overlapping (several stores in one
    # process) restore the interval once, when the last of them ends.
    if _handoff[0] == 0:
        _handoff[1] = sys.getswitchinterval()
        sys.setswitchinterval(min(_handoff[1], FLUSH_SWITCH_INTERVAL))
    _handoff[0] += 1
    try:
        yield
    finally:
        _handoff[0] -= 1
        if _handoff[0] == 0:
            sys.setswitchinterval(_handoff[1])


#: [flushes running in a driver thread, the switch interval from before the first of them]
_handoff: list = [0, 0.0]


def _sqlite_stamp(text: str) -> str:
    """SQL turning a UTC timestamp's JSON text into what :class:`AwareDateTime` stores on
    SQLite: orjson's "2026-09-07T09:00:00+00:00" or "2026-09-07T09:00:00.000005+00:00"
    becomes "2026-09-07 09:00:00.000000" or "2026-09-07 09:00:00.000005"; text already in
    that form (``sqlite_text``'s, from the other paths) and NULL pass unchanged. Only UTC
    reaches it as orjson's text (``_JsonPlan._all_utc``)."""
    return f"substr(replace(replace({text}, '+00:00', '.000000'), 'T', ' '), 1, 26)"


def _is_float(column) -> bool:
    kind = column.type
    if isinstance(kind, TypeDecorator):
        kind = kind.impl
    return isinstance(kind, Float)


def _write_json(dbapi_conn: sqlite3.Connection, plan: _JsonPlan, rows: list) -> int:
    """Runs in aiosqlite's thread: write each chunk as multi-row ``VALUES`` inserts of one
    size (``VALUES_ROWS`` rows, fewer when SQLite allows fewer parameters) and the rest of it
    as one JSON insert. Returns how many rows were written before the first statement that
    could not carry its rows (all of them, usually); SQLAlchemy's path writes the others."""
    limit = dbapi_conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    width = plan.width
    size = min(VALUES_ROWS, limit // width)
    for start in range(0, len(rows), DRIVER_CHUNK):
        chunk = rows[start : start + DRIVER_CHUNK]
        whole = len(chunk) - len(chunk) % size if size else 0
        if whole:
            params = plan.params(chunk[:whole])
            if params is None:
                return start
            sql, step = plan.values_sql(size), size * width
            for first in range(0, len(params), step):
                try:
                    dbapi_conn.execute(sql, params[first : first + step])
                except (OverflowError, UnicodeEncodeError):
                    # sqlite3 refused to bind a value (an integer past 64 bits, a lone
                    # surrogate) before the statement ran: nothing of it was written.
                    return start + first // width
        if whole < len(chunk):
            payload = plan.payload(chunk[whole:])
            if payload is None:
                return start + whole
            dbapi_conn.execute(plan.sql, (payload,))
    return len(rows)


async def _json_in_driver_thread(conn, plan: _JsonPlan, rows: list) -> int:
    """Write ``rows`` through ``plan`` on SQLite in one call to the connection's own thread.

    Through SQLAlchemy every statement is three round trips to aiosqlite's thread (cursor,
    execute, close), and each waits until the event loop next runs, which under ingest is
    whenever the producer yields: over 100,000 events the cursor and close trips waited 0.8 s
    in all for 6 ms of work in the thread. Here the thread also builds the JSON, so the event
    loop never holds for it. The call goes
    through aiosqlite's queue (``_execute``), as SQLAlchemy's own adapter does for settings
    aiosqlite has no API for; the transaction is the one SQLAlchemy opened on the connection.
    """
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection  # aiosqlite.Connection
    try:
        return await driver._execute(_write_json, driver._conn, plan, rows)
    except sqlite3.Error as exc:
        # As SQLAlchemy would raise it, so that a refused row is told from a lost database.
        raise DBAPIError.instance(
            plan.sql, None, exc, sqlite3.Error, hide_parameters=True, dialect=conn.dialect
        ) from exc


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    for candidate in (orig, getattr(orig, "__cause__", None)):
        for attr in ("sqlstate", "pgcode"):
            code = getattr(candidate, attr, None)
            if isinstance(code, str) and code:
                return code
    return None


def is_content_error(exc: BaseException) -> bool:
    """True when the database refused the rows themselves, not the connection.

    SQLSTATE classes 22 (data exception: a NUL byte, a value too long) and 23 (integrity
    constraint) are about the rows; anything else (a lost connection, a locked SQLite file, a
    missing table) is about the database and must not cost a row.
    """
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return False
    if isinstance(exc, DataError | IntegrityError):
        return True
    code = _sqlstate(exc) if isinstance(exc, DBAPIError) else None
    return code is not None and code[:2] in ("22", "23")


def _reason(exc: BaseException) -> str:
    """The driver's message, without the SQL and its parameters (they may hold message text)."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def repair_row(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    """The row with NUL characters removed and strings cut to their column's length."""
    fixed = dict(row)
    for name, value in row.items():
        if not isinstance(value, str):
            continue
        value = value.replace("\x00", "")
        column = table.c.get(name)
        kind = column.type if column is not None else None
        if isinstance(kind, TypeDecorator):  # sqlmodel's AutoString wraps a String
            kind = kind.impl
        length = kind.length if isinstance(kind, String) else None
        if length:
            value = value[:length]
        fixed[name] = value
    return fixed


def _size(op: _Op) -> int:
    """Rows an op counts for in the buffer (deletes and updates count one)."""
    return len(op.rows) if op.kind in ("upsert_ignore", "upsert") else 1


class BatchWriter:
    """Queue rows; flush in batches from one background task."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        batch_size: int = 500,
        flush_ms: int = 200,
        max_buffer: int = 100_000,
        on_flush: Callable[[int, float], None] | None = None,
        on_reject: Callable[[str, int], None] | None = None,
        retry_backoff: float = 0.5,
    ) -> None:
        self._engine = engine
        self._batch_size = batch_size
        self._interval = flush_ms / 1000
        self._max_buffer = max_buffer
        self._ops: list[_Op] = []
        # Insert ops still open for more rows, per table, since the last delete/update: rows
        # for different tables interleave on the hot path (contribution, edge, contribution,
        # ...), and one executemany per table per flush is far cheaper than one per row.
        self._open: dict[Table, _Op] = {}
        self._pending_rows = 0
        self._lock = asyncio.Lock()
        self._since_yield = 0  # events since backpressure last yielded during a flush
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closed = False
        self._on_flush = on_flush
        self._on_reject = on_reject
        # True between a failed flush and the next successful one (outage in progress).
        self._failing = False
        #: First wait (seconds) before the background task retries a failed flush; doubles.
        self.retry_backoff = retry_backoff
        self.stats = WriterStats()
        dialect = engine.dialect.name
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        elif dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:  # pragma: no cover - other databases are not supported targets
            dialect_insert = None
        self._dialect_insert = dialect_insert
        self._upserts: dict[tuple, Any] = {}
        self._plans: dict[tuple, _JsonPlan | None] = {}
        #: When a COPY into a table last met an existing row (monotonic seconds).
        self._conflict_at: dict[Table, float] = {}
        self._yield_in_flush = dialect == "postgresql"
        #: SQLite's statements run in aiosqlite's thread (see :func:`_quick_handoff`).
        self._in_driver_thread = dialect == "sqlite"
        self._json_inserts = (dialect, engine.dialect.driver) in (
            ("sqlite", "aiosqlite"),
            ("postgresql", "asyncpg"),
        )

    @property
    def pending(self) -> int:
        return self._pending_rows

    @property
    def max_buffer(self) -> int:
        return self._max_buffer

    async def backpressure(self) -> None:
        """Slow producers down when the database falls behind, instead of filling the buffer.

        Called after each event. On PostgreSQL, while a flush is in progress, it yields every
        ``YIELD_EVERY`` events: the flush waits on the server's reply to each statement, and a
        producer that never awaits I/O would leave the server idle until the buffer filled.
        (On SQLite the flush runs in aiosqlite's thread, which competes with the event loop
        for the GIL: yielding as often there measured slower, 0.46 of raw sqlite3 against
        0.55.) Past a batch with no flush running it yields so the writer task can start one;
        past two batches it yields every ``YIELD_EVERY`` events while a flush runs, and on
        every event while none does; past eight it waits for a flush. While the
        database is failing it does none of this: the buffer absorbs the outage up to
        ``max_buffer``, and the writer task retries.
        """
        pending = self._pending_rows
        if pending < 2 * self._batch_size:
            if self._lock.locked():
                self._since_yield += 1
                if not self._yield_in_flush or self._since_yield < YIELD_EVERY:
                    return
            elif pending < self._batch_size:
                return
            self._since_yield = 0
            await asyncio.sleep(0)
            return
        if self.stats.failures and self._failing:
            return
        if pending < min(8 * self._batch_size, self._max_buffer // 2):
            if self._lock.locked():
                # A flush is running: a turn of the loop every few events lets it go on to
                # its next statement. On every event, the turns cost the producer about a
                # tenth of its time on SQLite, where a flush mostly waits on its thread.
                self._since_yield += 1
                if self._since_yield < YIELD_EVERY:
                    return
                self._since_yield = 0
            await asyncio.sleep(0)
            return
        try:
            await self.flush()
        except Exception:  # noqa: BLE001 - the writer task logs and retries failures
            self._failing = True

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="hearth-writer")

    # -- queueing ---------------------------------------------------------------------------

    def _check_room(self, n: int) -> None:
        scope = _read_scope.get()
        if scope is not None:
            scope.settled = False  # the command wrote: its next read must flush again
        if self._closed:
            raise RuntimeError("writer is closed")
        if self._pending_rows + n > self._max_buffer:
            log.error(
                "write buffer full (%s rows pending); the database has not accepted writes",
                self._pending_rows,
            )
            raise BufferFull(f"{self._pending_rows} rows pending")

    def ensure_room(self, rows: int) -> None:
        """Raise :class:`BufferFull` now unless ``rows`` more rows fit.

        A caller that queues several rows for one event checks first, so an event is queued
        whole or not at all (never a contribution without its edges).
        """
        self._check_room(rows)

    def _append(self, op: _Op, n: int) -> None:
        self._ops.append(op)
        self._pending_rows += n
        if self._pending_rows >= self._batch_size:
            self._wake.set()

    def insert_ignore(self, table: Table, row: dict[str, Any]) -> None:
        """Queue a row; a row that breaks a unique constraint (a redelivery) is skipped."""
        self._check_room(1)
        self._queue_ignore(table, row)

    def insert_ignore_together(self, rows: Sequence[tuple[Table, dict[str, Any]]]) -> None:
        """Queue one event's rows (table, row) as :meth:`insert_ignore` does, all of them or,
        past the buffer bound, none (:class:`BufferFull`): never a contribution without its
        edges. One room check for them all, on the hot path."""
        self._check_room(len(rows))
        for table, row in rows:
            self._queue_ignore(table, row)

    def _queue_ignore(self, table: Table, row: dict[str, Any]) -> None:
        last = self._open.get(table)
        if last is None and self._ops and self._ops[-1].table is table:
            last = self._ops[-1] if self._ops[-1].kind == "upsert_ignore" else None
        if last is not None:
            last.rows.append(row)
            self._pending_rows += 1
            if self._pending_rows >= self._batch_size:
                self._wake.set()
            return
        op = _Op("upsert_ignore", table, [row])
        # Rows may only move ahead of other tables' inserts when they reference nothing.
        if not table.foreign_keys:
            self._open[table] = op
        self._append(op, 1)

    def upsert(
        self,
        table: Table,
        row: dict[str, Any],
        *,
        keys: tuple[str, ...],
        overwrite: tuple[str, ...],
    ) -> None:
        """Queue an insert that, on a unique conflict over ``keys``, overwrites ``overwrite``.

        Consecutive upserts of one table with the same shape share one executemany.
        """
        self._check_room(1)
        last = self._ops[-1] if self._ops else None
        if (
            last is not None
            and last.kind == "upsert"
            and last.table is table
            and last.keys == keys
            and last.overwrite == overwrite
        ):
            last.rows.append(row)
            self._pending_rows += 1
            return
        # Later inserts into this table must not jump ahead of this row. Other tables' open
        # inserts may: they reference nothing (only tables without foreign keys stay open).
        self._open.pop(table, None)
        self._append(_Op("upsert", table, [row], keys=keys, overwrite=overwrite), 1)

    def insert_many_ignore(self, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        for row in rows:
            self.insert_ignore(table, row)

    def delete(self, table: Table, where: Any) -> None:
        self._check_room(1)
        self._open.clear()  # later inserts must run after this delete
        self._append(_Op("delete", table, where=where), 1)

    def update(self, table: Table, where: Any, values: dict[str, Any]) -> None:
        self._check_room(1)
        self._open.clear()
        self._append(_Op("update", table, where=where, values=values), 1)

    # -- flushing ---------------------------------------------------------------------------

    @contextmanager
    def read_scope(self) -> Iterator[None]:
        """Within the block (one command), the first read flushes and later ones do not.

        A command makes several reads (member, counts, edges); flushing before each made it
        wait for every batch that other members' messages queued meanwhile, so its latency
        grew with the ingest rate. The answer now reflects the moment of its first read; a
        command that queues writes of its own still reads them back (the scope unsettles).
        """
        token = _read_scope.set(_ReadScope())
        try:
            yield
        finally:
            _read_scope.reset(token)

    async def flush_for_read(self) -> None:
        """Flush before a read, once per read scope (see :meth:`read_scope`)."""
        scope = _read_scope.get()
        if scope is not None and scope.settled:
            return
        await self.flush()
        if scope is not None:
            scope.settled = True

    async def flush(self) -> int:
        """Write everything queued so far; returns the number of rows written."""
        async with self._lock:
            if not self._ops:
                return 0
            if self._in_driver_thread:
                with _quick_handoff():
                    return await self._flush_locked()
            return await self._flush_locked()

    async def _flush_locked(self) -> int:
        """:meth:`flush` with its lock held and something queued."""
        ops, self._ops = self._ops, []
        self._open = {}
        count, self._pending_rows = self._pending_rows, 0
        started = time.perf_counter()
        try:
            async with self._engine.begin() as conn:
                for op in ops:
                    await self._execute(conn, op)
        except BaseException as exc:
            if not (isinstance(exc, Exception) and is_content_error(exc)):
                # Put the batch back in front so nothing is lost; the caller or the writer
                # task retries. CancelledError lands here too (shutdown mid-flush).
                self._ops = ops + self._ops
                self._pending_rows += count
                self.stats.failures += 1
                raise
            count -= await self._isolate(ops, exc)
        elapsed = time.perf_counter() - started
        self.stats.rows_written += count
        self.stats.flushes += 1
        self.stats.last_flush_seconds = elapsed
        if self._on_flush is not None:
            self._on_flush(count, elapsed)
        return count

    async def _isolate(self, ops: list[_Op], first: Exception) -> int:
        """Write ``ops`` one by one, bisecting refused ones; returns how many rows were dropped.

        Each op gets its own transaction here (only after a content error: a rare path). A
        connection error on the way puts the op in hand and all later ones back in the queue;
        rewriting the part already committed is harmless, every op is idempotent (inserts
        ignore conflicts, upserts overwrite with the same values).
        """
        log.warning(
            "the database refused a batch (%s); looking for the rows at fault", _reason(first)
        )
        dropped = 0
        for index, op in enumerate(ops):
            try:
                if op.kind in ("upsert_ignore", "upsert"):
                    dropped += await self._write_rows(op, op.rows)
                else:
                    try:
                        async with self._engine.begin() as conn:
                            await self._execute(conn, op)
                    except Exception as exc:
                        if not is_content_error(exc):
                            raise
                        log.error(
                            "the database refused a %s on %s; skipping it: %s",
                            op.kind,
                            op.table.name,
                            _reason(exc),
                        )
                        self._rejected(op.table.name, 1)
                        dropped += 1
            except BaseException:
                rest = ops[index:]
                self._ops = rest + self._ops
                self._pending_rows += sum(_size(o) for o in rest)
                self.stats.failures += 1
                raise
        return dropped

    async def _write_rows(self, op: _Op, rows: list[dict[str, Any]]) -> int:
        """Write rows in one transaction; on a content error split them in halves, down to
        single rows, which are repaired once and otherwise dropped. Returns rows dropped."""
        part = _Op(op.kind, op.table, rows, keys=op.keys, overwrite=op.overwrite)
        try:
            async with self._engine.begin() as conn:
                await self._execute(conn, part)
            return 0
        except Exception as exc:
            if not is_content_error(exc):
                raise
            error = exc
        if len(rows) > 1:
            middle = len(rows) // 2
            return await self._write_rows(op, rows[:middle]) + await self._write_rows(
                op, rows[middle:]
            )
        fixed = repair_row(op.table, rows[0])
        if fixed != rows[0]:
            part = _Op(op.kind, op.table, [fixed], keys=op.keys, overwrite=op.overwrite)
            try:
                async with self._engine.begin() as conn:
                    await self._execute(conn, part)
                self.stats.repaired += 1
                log.warning(
                    "wrote a %s row after removing NUL characters or cutting over-long values",
                    op.table.name,
                )
                return 0
            except Exception as exc:
                if not is_content_error(exc):
                    raise
                error = exc
        log.error(
            "the database refused a %s row for its content, even repaired; dropping it "
            "(columns: %s): %s",
            op.table.name,
            ", ".join(sorted(rows[0])),
            _reason(error),
        )
        self._rejected(op.table.name, 1)
        return 1

    def _rejected(self, table: str, rows: int) -> None:
        self.stats.rejected += rows
        if self._on_reject is not None:
            self._on_reject(table, rows)

    def _upsert_statement(self, table: Table, keys: tuple[str, ...], overwrite: tuple[str, ...]):
        # Built once per shape: ``excluded`` builds a column collection each time it is
        # touched (about a millisecond), which added up when new members arrive in bursts.
        key = (table, keys, overwrite)
        stmt = self._upserts.get(key)
        if stmt is None:
            stmt = self._dialect_insert(table)
            stmt = stmt.on_conflict_do_update(
                index_elements=list(keys), set_={c: stmt.excluded[c] for c in overwrite}
            )
            self._upserts[key] = stmt
        return stmt

    def _conflicted_lately(self, table: Table) -> bool:
        seen = self._conflict_at.get(table)
        return seen is not None and time.monotonic() - seen < CONFLICT_MEMORY

    async def _copy(self, conn, table: Table, plan: _JsonPlan, rows: list) -> bool:
        """PostgreSQL: write ``rows`` with a binary COPY inside a savepoint. False, with
        nothing written, when it is not for these rows: a row exists already (the table's
        batches then skip COPY for a while), or the server or asyncpg refused a value (the
        JSON insert then finds, repairs or drops the row at fault, as it always did)."""
        if plan.copy_into is None or self._conflicted_lately(table):
            return False
        records = plan.records(rows)
        if records is None:
            return False
        import asyncpg

        name, columns = plan.copy_into
        raw = await conn.get_raw_connection()
        try:
            async with conn.begin_nested():
                await raw.driver_connection.copy_records_to_table(
                    name, records=records, columns=columns
                )
        except asyncpg.UniqueViolationError:
            self._conflict_at[table] = time.monotonic()
            return False
        except (asyncpg.PostgresError, asyncpg.DataError, TypeError, ValueError, OverflowError):
            # asyncpg refuses a value as it encodes it (a str for an integer, an integer past
            # 32 bits), the server as it stores it. Should the server be going away, the JSON
            # insert fails next as SQLAlchemy reports it, and the batch waits for it.
            return False
        return True

    async def _insert_chunks(self, conn, rows: list, plan, stmt) -> None:
        """Chunks of JSON_CHUNK rows, so building one holds the event loop for a few
        milliseconds at most; rows JSON cannot carry go through SQLAlchemy's executemany."""
        for start in range(0, len(rows), JSON_CHUNK):
            chunk = rows[start : start + JSON_CHUNK]
            payload = plan.payload(chunk) if plan is not None else None
            if payload is not None:
                await conn.exec_driver_sql(plan.sql, (payload,))
            else:
                await conn.execute(stmt, chunk)

    def _plan_for(self, op: _Op) -> _JsonPlan | None:
        if not self._json_inserts:
            return None
        key = (op.table, tuple(op.rows[0]), op.keys, op.overwrite)
        if key not in self._plans:
            self._plans[key] = _json_plan(
                op.table, key[1], self._engine.dialect, keys=op.keys, overwrite=op.overwrite
            )
        return self._plans[key]

    async def _execute(self, conn, op: _Op) -> None:
        if op.kind == "upsert_ignore":
            plan = self._plan_for(op)
            if self._dialect_insert is not None:
                stmt = self._dialect_insert(op.table).on_conflict_do_nothing()
            else:  # pragma: no cover
                stmt = insert(op.table)
            done = 0
            if plan is not None and self._engine.dialect.name == "sqlite":
                done = await _json_in_driver_thread(conn, plan, op.rows)
            if done == len(op.rows):
                return
            if plan is not None and await self._copy(conn, op.table, plan, op.rows[done:]):
                return
            await self._insert_chunks(conn, op.rows[done:], plan, stmt)
        elif op.kind == "upsert":
            plan = self._plan_for(op)  # SQLite only
            done = 0 if plan is None else await _json_in_driver_thread(conn, plan, op.rows)
            stmt = self._upsert_statement(op.table, op.keys, op.overwrite)
            for start in range(done, len(op.rows), 5000):
                await conn.execute(stmt, op.rows[start : start + 5000])
        elif op.kind == "delete":
            await conn.execute(delete(op.table).where(op.where))
        elif op.kind == "update":
            await conn.execute(update(op.table).where(op.where).values(**op.values))

    async def _run(self) -> None:
        failed = 0  # consecutive failed flushes: the wait doubles with each
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.flush()
                failed = 0
                self._failing = False
            except asyncio.CancelledError:
                raise
            except Exception:
                backoff = min(self.retry_backoff * 2**failed, 30.0)
                failed += 1
                self._failing = True
                log.exception(
                    "database write failed; %s rows kept in memory, retrying in %.1fs",
                    self._pending_rows,
                    backoff,
                )
                await asyncio.sleep(backoff)

    async def close(self) -> None:
        """Stop the task and flush what is left (called on SIGINT/SIGTERM)."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
            self._task = None
        await self.flush()
