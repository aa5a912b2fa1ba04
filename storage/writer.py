"""The batched writer: one task owns hot-path writes.

Events arrive far faster than one commit each could keep up with (a commit is an fsync on
SQLite), so contribution and edge rows are queued here and written with Core ``insert``
executemany in batches, in arrival order, inside one transaction per flush. Readers call
:meth:`BatchWriter.flush` first, so a command always sees what was said before it.

If the database is unreachable, rows stay queued (up to ``max_buffer``) and the flush is retried
with backoff; past the bound the writer logs loudly and refuses new rows instead of dropping
queued ones silently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, delete, insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

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
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closed = False
        self._on_flush = on_flush
        self.stats = WriterStats()
        dialect = engine.dialect.name
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        elif dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:  # pragma: no cover - other databases are not supported targets
            dialect_insert = None
        self._dialect_insert = dialect_insert

    @property
    def pending(self) -> int:
        return self._pending_rows

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="hearth-writer")

    # -- queueing ---------------------------------------------------------------------------

    def _check_room(self, n: int) -> None:
        if self._closed:
            raise RuntimeError("writer is closed")
        if self._pending_rows + n > self._max_buffer:
            log.error(
                "write buffer full (%s rows pending); the database has not accepted writes",
                self._pending_rows,
            )
            raise BufferFull(f"{self._pending_rows} rows pending")

    def _append(self, op: _Op, n: int) -> None:
        self._ops.append(op)
        self._pending_rows += n
        if self._pending_rows >= self._batch_size:
            self._wake.set()

    def insert_ignore(self, table: Table, row: dict[str, Any]) -> None:
        """Queue a row; a row that breaks a unique constraint (a redelivery) is skipped."""
        self._check_room(1)
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
        self._open.clear()  # inserts queued later must not jump ahead of this row
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

    async def flush(self) -> int:
        """Write everything queued so far; returns the number of rows written."""
        async with self._lock:
            if not self._ops:
                return 0
            ops, self._ops = self._ops, []
            self._open = {}
            count, self._pending_rows = self._pending_rows, 0
            started = time.perf_counter()
            try:
                async with self._engine.begin() as conn:
                    for op in ops:
                        await self._execute(conn, op)
            except BaseException:
                # Put the batch back in front so nothing is lost; the caller or the writer
                # task retries. CancelledError lands here too (shutdown mid-flush).
                self._ops = ops + self._ops
                self._pending_rows += count
                self.stats.failures += 1
                raise
            elapsed = time.perf_counter() - started
            self.stats.rows_written += count
            self.stats.flushes += 1
            self.stats.last_flush_seconds = elapsed
            if self._on_flush is not None:
                self._on_flush(count, elapsed)
            return count

    async def _execute(self, conn, op: _Op) -> None:
        if op.kind == "upsert_ignore":
            if self._dialect_insert is not None:
                stmt = self._dialect_insert(op.table).on_conflict_do_nothing()
            else:  # pragma: no cover
                stmt = insert(op.table)
            for start in range(0, len(op.rows), 5000):
                await conn.execute(stmt, op.rows[start : start + 5000])
        elif op.kind == "upsert":
            stmt = self._dialect_insert(op.table)
            stmt = stmt.on_conflict_do_update(
                index_elements=list(op.keys),
                set_={c: stmt.excluded[c] for c in op.overwrite},
            )
            for start in range(0, len(op.rows), 5000):
                await conn.execute(stmt, op.rows[start : start + 5000])
        elif op.kind == "delete":
            await conn.execute(delete(op.table).where(op.where))
        elif op.kind == "update":
            await conn.execute(update(op.table).where(op.where).values(**op.values))

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.flush()
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "database write failed; %s rows kept in memory, retrying in %.1fs",
                    self._pending_rows,
                    backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30)

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
