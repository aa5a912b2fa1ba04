"""Ingest benchmark: synthetic message events through the engine into SQLite.

Pushes N message events (ideas, replies, mentions, references, questions, thanks) through
``Engine.dispatch`` (classification, reply resolution, batched writer) into a SQLite file, then
writes the same contribution and edge rows with a raw ``sqlite3`` executemany into a second
file with the same schema, and prints events/s for both and their ratio, measured in one run.

The two are measured in alternating pairs (``--repeat``, 3 by default) and the medians
reported, with every pair: the speed of a small shared machine moves within seconds, and a
single slow phase under one side decided the ratio (engine 3.2 s against 2.1-2.4 s in the
runs around it, on the same code).

    python bench/ingest.py [--events 100000] [--repeat 3]

Goals: at least 20,000 events/s; a ratio of at least 0.5 (issue 9; issue 2 asked 0.25).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine  # noqa: E402

from bench.common import settle_disk  # noqa: E402
from bot.app import HearthApp  # noqa: E402
from bot.clock import FakeClock  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.events import MemberRef, MessagePosted, PlaceRef  # noqa: E402
from storage.repos import C, E  # noqa: E402
from storage.schema import metadata  # noqa: E402

TEXTS = [
    "I think spaced repetition matters more than the textbook admits.",
    "How do you all plan your study time around work?",
    "Retrieval practice works (Roediger & Karpicke, 2006), see https://example.org/rp",
    "Thanks, this really helped me!",
    "Good point, I had the same experience with the first project.",
    "Could you say more about how you applied it in week two?",
    "Here is my summary of the reading, with the key figures and a few open questions.",
    "Happy to help if you want to go through it together tomorrow.",
]


def make_events(n: int, members: int = 500, seed: int = 1) -> list[MessagePosted]:
    rng = random.Random(seed)
    start = datetime(2026, 9, 7, 9, tzinfo=UTC)
    refs = [MemberRef("console", f"m{i}", f"member {i}") for i in range(members)]
    places = [PlaceRef("console", "bench", f"c{i}", channel_name=f"c{i}") for i in range(8)]
    events: list[MessagePosted] = []
    for i in range(n):
        author = rng.choice(refs)
        reply_to = str(rng.randint(max(0, i - 200), i - 1)) if i and rng.random() < 0.5 else None
        mentions = (rng.choice(refs).id,) if rng.random() < 0.15 else ()
        events.append(
            MessagePosted(
                at=start + timedelta(seconds=i),
                author=author,
                place=rng.choice(places),
                message_id=str(i),
                text=rng.choice(TEXTS),
                reply_to_id=reply_to,
                mentions=mentions,
            )
        )
    return events


async def through_engine(events: list[MessagePosted], path: Path) -> tuple[float, dict]:
    settings = Settings.model_validate(
        {"storage": {"path": str(path), "batch_size": 5000, "flush_ms": 200}}
    )
    app = await HearthApp.create(settings, clock=FakeClock(events[0].at))
    engine = app.engine
    # Warm the member cache so the timed part measures steady-state ingest, as in a live bot.
    for event in events[:1]:
        await engine.dispatch(event)
    settle_disk()
    started = time.perf_counter()
    for event in events[1:]:
        await engine.dispatch(event)
    await app.store.flush()
    elapsed = time.perf_counter() - started
    async with app.store.engine.connect() as conn:
        from sqlalchemy import func, select

        contributions = (await conn.execute(select(func.count()).select_from(C))).scalar_one()
        edges = (await conn.execute(select(func.count()).select_from(E))).scalar_one()
    await app.close()
    return elapsed, {"contributions": contributions, "edges": edges}


def dump_rows(path: Path) -> tuple[list[tuple], list[tuple], list[str], list[str]]:
    con = sqlite3.connect(path)
    c_cols = [c.name for c in C.columns if c.name != "id"]
    e_cols = [c.name for c in E.columns if c.name != "id"]
    c_rows = con.execute(f"SELECT {', '.join(c_cols)} FROM contribution ORDER BY id").fetchall()
    e_rows = con.execute(f"SELECT {', '.join(e_cols)} FROM edge ORDER BY id").fetchall()
    con.close()
    return c_rows, e_rows, c_cols, e_cols


def raw_sqlite(path: Path, c_rows, e_rows, c_cols, e_cols) -> float:
    engine = create_engine(f"sqlite:///{path}")
    metadata().create_all(engine)
    engine.dispose()
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    c_sql = (
        f"INSERT OR IGNORE INTO contribution ({', '.join(c_cols)}) "
        f"VALUES ({', '.join('?' * len(c_cols))})"
    )
    e_sql = (
        f"INSERT OR IGNORE INTO edge ({', '.join(e_cols)}) VALUES ({', '.join('?' * len(e_cols))})"
    )
    settle_disk()
    started = time.perf_counter()
    # Same batch size as the engine's writer, one transaction per batch.
    step = 5000
    for i in range(0, max(len(c_rows), len(e_rows)), step):
        with con:
            con.executemany(c_sql, c_rows[i : i + step])
            con.executemany(e_sql, e_rows[i : i + step])
    elapsed = time.perf_counter() - started
    con.close()
    return elapsed


async def main(n: int, repeat: int = 3) -> dict:
    events = make_events(n)
    engine_s: list[float] = []
    raw_s: list[float] = []
    ratios: list[float] = []
    timed = n - 1
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeat):
            engine_db, raw_db = Path(tmp) / f"engine{i}.db", Path(tmp) / f"raw{i}.db"
            elapsed, counts = await through_engine(events, engine_db)
            if i == 0:
                c_rows, e_rows, c_cols, e_cols = dump_rows(engine_db)
            raw = raw_sqlite(raw_db, c_rows, e_rows, c_cols, e_cols)
            for path in (engine_db, raw_db):
                path.unlink()
            engine_s.append(elapsed)
            raw_s.append(raw)
            ratios.append((timed / elapsed) / (len(c_rows) / raw))
            print(
                f"  pair {i + 1}: engine {elapsed:5.2f} s, raw sqlite3 {raw:5.2f} s, "
                f"ratio {ratios[-1]:.3f}",
                flush=True,
            )
    elapsed, raw = statistics.median(engine_s), statistics.median(raw_s)
    engine_rate = timed / elapsed
    raw_rate = len(c_rows) / raw
    result = {
        "events": n,
        "engine_seconds": elapsed,
        "engine_events_per_s": engine_rate,
        "raw_seconds": raw,
        "raw_rows_per_s": raw_rate,
        # The median of the pairs' ratios: each pair ran back to back, on the same phase.
        "ratio": statistics.median(ratios),
        "engine_seconds_samples": engine_s,
        "raw_seconds_samples": raw_s,
        "ratio_samples": ratios,
        **counts,
    }
    print(
        f"events pushed through the engine: {n:,} ({counts['contributions']:,} contributions, "
        f"{counts['edges']:,} edges); medians of {repeat} pairs:"
    )
    print(
        f"engine -> SQLite:        {elapsed:7.2f} s  {engine_rate:10,.0f} events/s"
        "  (goal >= 20,000)"
    )
    print(f"raw sqlite3 executemany: {raw:7.2f} s  {raw_rate:10,.0f} rows/s")
    print(f"ratio engine/raw:        {result['ratio']:.3f}  (goal >= 0.5; issue 2 asked 0.25)")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="engine/raw pairs to run")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args()
    figures = asyncio.run(main(args.events, max(1, args.repeat)))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
