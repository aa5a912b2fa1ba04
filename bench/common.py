"""Shared helpers for the benchmarks: a large synthetic community written straight to SQLite,
and small timing/statistics utilities. Figures are always measured in the same run."""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine

from storage.schema import metadata
from storage.types import sqlite_text

KIND_MASKS = [1, 1 | 4, 1 | 8, 2, 2 | 16, 2 | 8, 2 | 4, 1 | 8 | 4]


#: The PostgreSQL server the PostgreSQL figures use (CI's: 127.0.0.1:5432, database test).
PG_URL = os.environ.get(
    "HEARTH_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


@asynccontextmanager
async def pg_schema(url: str = PG_URL) -> AsyncIterator[str | None]:
    """A fresh schema on the PostgreSQL server, dropped afterwards; None when no server
    answers (the PostgreSQL figures are then reported as not measured)."""
    import asyncpg

    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    try:
        admin = await asyncio.wait_for(asyncpg.connect(dsn), timeout=3)
    except Exception:  # noqa: BLE001 - no server: say so, skip
        yield None
        return
    schema = "bench_" + uuid.uuid4().hex[:10]
    await admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield schema
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


def settle_disk() -> None:
    """Write out the kernel's dirty pages before a timed phase: otherwise the writeback of
    what the previous phase wrote (the engine's 40 MB database, say) lands in this phase's
    time, on a disk both share. It does not remove the spread from run to run: on one
    2-core machine raw sqlite3 wrote 33,000-50,000 rows/s with it, 29,000-55,000 without."""
    if hasattr(os, "sync"):
        os.sync()


def reference_ms(repeat: int = 5) -> float:
    """Milliseconds a fixed pure-Python loop takes on this machine (the best of ``repeat``),
    written beside the figures so that runs on different machines can be told apart: the
    same code measured 2.5 times slower on one 2-core machine than on another, and this
    machine's speed drifted within one run."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        total = 0
        for i in range(200_000):
            row = {"id": i, "name": str(i)}
            total += len(row["name"])
        best = min(best, time.perf_counter() - started)
    return best * 1000


def runs_text(samples: list[float]) -> str:
    """The runs behind a median, in the order they ran: "578, 187, 191, 187, 208 ms"."""
    return ", ".join(f"{s:.0f}" for s in samples) + " ms"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        total = int(Path("/proc/meminfo").read_text().split()[1]) // (1024 * 1024)
        mem = f", {total} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{os.cpu_count()} cores ({cpu}){mem}"


def cpu_ticks() -> tuple[int, int]:
    """(all CPU ticks, stolen ticks) since boot, from /proc/stat (Linux); (0, 0) elsewhere.

    Steal is time the hypervisor gave this machine's virtual CPUs to someone else: on a
    shared host it slows every figure here, so the results say how much there was.
    """
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        ticks = [int(v) for v in fields]
    except (OSError, ValueError, IndexError):
        return 0, 0
    return sum(ticks[:8]), ticks[7] if len(ticks) > 7 else 0


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def timed(fn: Callable[[], object], repeat: int = 3) -> float:
    """Median wall time of ``fn`` in seconds."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


@dataclass(frozen=True)
class Synthetic:
    """A large synthetic community, the same rows whichever database it is written to.

    Activity is skewed like real courses (a few very active members, a long tail). About
    half the messages are replies, each to one of the fifty messages before it, so the edge
    table is about half as large. A reply joins its parent's conversation, and half of the
    conversations are platform threads (as on Slack, where every reply is in one): about a
    quarter of the messages are posted in a thread, questions among them.
    """

    community: str = "bench"
    members: int = 10_000
    contributions: int = 1_000_000
    days: int = 70
    end: datetime = datetime(2026, 11, 16, 12, tzinfo=UTC)
    seed: int = 3

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.days)

    def member_rows(self) -> list[tuple]:
        """(community_id, member_id, display_name, is_facilitator, first_seen)."""
        return [
            (self.community, f"u{i}", f"learner {i}", i < 3, self.start)
            for i in range(self.members)
        ]

    def batches(self, size: int = 50_000) -> Iterator[tuple[list[tuple], list[tuple]]]:
        """(contribution rows, edge rows) in batches, in :data:`CONTRIBUTION_COLUMNS` and
        :data:`EDGE_COLUMNS` order, timestamps aware UTC."""
        rng = random.Random(self.seed)
        weights = [1 / (i + 1) ** 0.8 for i in range(self.members)]
        step = max((self.end - self.start).total_seconds() / self.contributions, 0.001)
        authors = rng.choices(range(self.members), weights=weights, k=self.contributions)
        # The conversation (its first message) of the last messages: a reply's parent is
        # one of the fifty before it.
        roots = [0] * 64
        batch_c: list[tuple] = []
        batch_e: list[tuple] = []
        for i in range(self.contributions):
            at = self.start + timedelta(seconds=i * step)
            author = f"u{authors[i]}"
            parent = rng.randint(max(0, i - 50), i - 1) if i > 10 and rng.random() < 0.5 else -1
            root = roots[parent % 64] if parent >= 0 else i
            roots[i % 64] = root
            # NULL when the reply answers the author's own message, as Hearth stores it.
            target = f"u{authors[parent]}" if parent >= 0 else None
            if target == author:
                target = None
            mask = rng.choice(KIND_MASKS)
            batch_c.append(
                (
                    self.community,
                    str(i),
                    author,
                    f"c{root % 12}",
                    str(root) if parent >= 0 and root % 2 == 0 else None,
                    str(parent) if parent >= 0 else None,
                    target,
                    str(root),  # the conversation, stored as Hearth stores it
                    at,
                    mask,
                    rng.randint(3, 80),
                    0,
                )
            )
            if target:
                batch_e.append((self.community, "reply", author, target, str(i), "", 1.0, at))
            if len(batch_c) >= size:
                yield batch_c, batch_e
                batch_c, batch_e = [], []
        if batch_c:
            yield batch_c, batch_e


CONTRIBUTION_COLUMNS = (
    "community_id",
    "message_id",
    "member_id",
    "channel_id",
    "thread_id",
    "reply_to_id",
    "reply_to_member_id",
    "conversation_id",
    "created_at",
    "kinds",
    "word_count",
    "attachments",
)
EDGE_COLUMNS = (
    "community_id",
    "kind",
    "source_id",
    "target_id",
    "message_id",
    "detail",
    "weight",
    "created_at",
)


def populate(
    path: Path,
    *,
    community: str = "bench",
    members: int = 10_000,
    contributions: int = 1_000_000,
    days: int = 70,
    end: datetime | None = None,
    seed: int = 3,
) -> datetime:
    """Create the schema and write a :class:`Synthetic` community straight to SQLite;
    returns its 'now'."""
    data = Synthetic(community, members, contributions, days, end or Synthetic.end, seed)
    engine = create_engine(f"sqlite:///{path}")
    metadata().create_all(engine)
    engine.dispose()
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    first_seen = sqlite_text(data.start)
    con.executemany(
        "INSERT INTO member (community_id, member_id, display_name, is_bot, is_facilitator, "
        "first_seen, tracked, reachable) VALUES (?, ?, ?, 0, ?, ?, 1, 1)",
        [(c, m, name, int(fac), first_seen) for c, m, name, fac, _ in data.member_rows()],
    )
    con.execute(
        "INSERT INTO community (id, platform, name, timezone, cohort, settings_json, created_at) "
        "VALUES (?, 'console', 'Bench course', 'UTC', 1, '{}', ?)",
        (community, first_seen),
    )
    at = CONTRIBUTION_COLUMNS.index("created_at")
    for batch_c, batch_e in data.batches():
        # Stored as AwareDateTime stores them on SQLite: naive UTC text.
        _flush(
            con,
            [(*r[:at], sqlite_text(r[at]), *r[at + 1 :]) for r in batch_c],
            [(*r[:-1], sqlite_text(r[-1])) for r in batch_e],
        )
    con.close()
    return data.end


async def populate_postgres(url: str, schema: str, data: Synthetic) -> None:
    """Write a :class:`Synthetic` community with COPY into ``schema`` (tables already made),
    then VACUUM ANALYZE it, as autovacuum would have done to a table that size in service."""
    import asyncpg

    conn = await asyncpg.connect(
        url.replace("postgresql+asyncpg://", "postgresql://"),
        server_settings={"search_path": schema},
    )
    try:
        await conn.execute(
            "INSERT INTO community (id, platform, name, timezone, cohort, settings_json, "
            "created_at) VALUES ($1, 'console', 'Bench course', 'UTC', 1, '{}', $2)",
            data.community,
            data.start,
        )
        await conn.copy_records_to_table(
            "member",
            records=[(*row, False, True, True) for row in data.member_rows()],
            columns=[
                "community_id",
                "member_id",
                "display_name",
                "is_facilitator",
                "first_seen",
                "is_bot",
                "tracked",
                "reachable",
            ],
        )
        for batch_c, batch_e in data.batches():
            await conn.copy_records_to_table(
                "contribution", records=batch_c, columns=list(CONTRIBUTION_COLUMNS)
            )
            await conn.copy_records_to_table("edge", records=batch_e, columns=list(EDGE_COLUMNS))
        await conn.execute("VACUUM ANALYZE member, contribution, edge")
        try:
            # The load's dirty buffers written now rather than by a checkpoint that falls in
            # a timed phase (as a server in service would have written them long before).
            await conn.execute("CHECKPOINT")
        except asyncpg.InsufficientPrivilegeError:
            pass
    finally:
        await conn.close()


def _flush(con: sqlite3.Connection, batch_c: list, batch_e: list) -> None:
    with con:
        for table, columns, rows in (
            ("contribution", CONTRIBUTION_COLUMNS, batch_c),
            ("edge", EDGE_COLUMNS, batch_e),
        ):
            con.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' * len(columns))})",
                rows,
            )
