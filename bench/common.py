"""Shared helpers for the benchmarks: a large synthetic community written straight to SQLite,
and small timing/statistics utilities. Figures are always measured in the same run."""

from __future__ import annotations

import os
import random
import sqlite3
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine

from storage.schema import metadata

KIND_MASKS = [1, 1 | 4, 1 | 8, 2, 2 | 16, 2 | 8, 2 | 4, 1 | 8 | 4]


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
    """Create the schema and write a community straight to SQLite; returns its 'now'.

    Activity is skewed like real courses (a few very active members, a long tail); about
    half the messages are replies, so the edge table is about half as large.
    """
    end = end or datetime(2026, 11, 16, 12, tzinfo=UTC)
    start = end - timedelta(days=days)
    engine = create_engine(f"sqlite:///{path}")
    metadata().create_all(engine)
    engine.dispose()
    rng = random.Random(seed)
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    fmt = "%Y-%m-%d %H:%M:%S.%f"
    first_seen = start.replace(tzinfo=None).strftime(fmt)
    con.executemany(
        "INSERT INTO member (community_id, member_id, display_name, is_bot, is_facilitator, "
        "first_seen, tracked, reachable) VALUES (?, ?, ?, 0, ?, ?, 1, 1)",
        [(community, f"u{i}", f"learner {i}", int(i < 3), first_seen) for i in range(members)],
    )
    con.execute(
        "INSERT INTO community (id, platform, name, timezone, cohort, settings_json, created_at) "
        "VALUES (?, 'console', 'Bench course', 'UTC', 1, '{}', ?)",
        (community, first_seen),
    )
    weights = [1 / (i + 1) ** 0.8 for i in range(members)]
    span = (end - start).total_seconds()
    batch_c: list[tuple] = []
    batch_e: list[tuple] = []
    step = max(span / contributions, 0.001)
    authors = rng.choices(range(members), weights=weights, k=contributions)
    for i in range(contributions):
        at = (start + timedelta(seconds=i * step)).replace(tzinfo=None).strftime(fmt)
        author = f"u{authors[i]}"
        reply = i > 10 and rng.random() < 0.5
        target = f"u{authors[rng.randint(max(0, i - 50), i - 1)]}" if reply else None
        if target == author:
            target = None
        mask = rng.choice(KIND_MASKS)
        batch_c.append(
            (
                community,
                str(i),
                author,
                f"c{i % 12}",
                None,
                str(i - 1) if target else None,
                target,
                at,
                mask,
                rng.randint(3, 80),
                0,
            )
        )
        if target:
            batch_e.append((community, "reply", author, target, str(i), "", 1.0, at))
        if len(batch_c) >= 50_000:
            _flush(con, batch_c, batch_e)
    _flush(con, batch_c, batch_e)
    con.close()
    return end


def _flush(con: sqlite3.Connection, batch_c: list, batch_e: list) -> None:
    with con:
        con.executemany(
            "INSERT INTO contribution (community_id, message_id, member_id, channel_id, thread_id, "
            "reply_to_id, reply_to_member_id, created_at, kinds, word_count, attachments) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            batch_c,
        )
        con.executemany(
            "INSERT INTO edge (community_id, kind, source_id, target_id, message_id, detail, "
            "weight, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            batch_e,
        )
    batch_c.clear()
    batch_e.clear()
