"""Live-path benchmark: what a member feels while the bot ingests.

Measured in one run, on SQLite (and PostgreSQL when reachable):
- event-loop lag p99 while events are ingested as fast as they come (goal under 20 ms);
- ``/course stats`` latency p50/p99 while ingesting 1,000 events/s (goal p99 under 100 ms);
- PostgreSQL ingest through the engine against a raw asyncpg ``copy_records_to_table`` of the
  same rows.

    python bench/live.py [--seconds 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    CONTRIBUTION_COLUMNS,
    EDGE_COLUMNS,
    PG_URL,
    percentile,
    pg_schema,
    settle_disk,
)
from bench.ingest import make_events  # noqa: E402
from bot.app import HearthApp  # noqa: E402
from bot.clock import FakeClock  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.events import CommandInvoked, MemberRef, PlaceRef  # noqa: E402


async def loop_lag_probe(stop: asyncio.Event, samples: list[float], interval=0.005) -> None:
    """How late the loop wakes a task that asked to sleep ``interval`` seconds."""
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(interval)
        samples.append((time.perf_counter() - started - interval) * 1000)


async def open_app(settings: Settings, events) -> HearthApp:
    app = await HearthApp.create(settings, clock=FakeClock(events[0].at))
    await app.engine.dispatch(events[0])
    facilitator = MemberRef("console", "fac", "facilitator", is_facilitator=True)
    await app.engine.ensure_member("bench", facilitator)
    return app


async def lag_while_ingesting(settings: Settings, n: int) -> dict:
    events = make_events(n, seed=5)
    app = await open_app(settings, events)
    stop, samples = asyncio.Event(), []
    probe = asyncio.create_task(loop_lag_probe(stop, samples))
    started = time.perf_counter()
    for i, event in enumerate(events[1:], 1):
        await app.engine.dispatch(event)
        if i % 50 == 0:
            # A live adapter yields between network reads; do the same so the probe and the
            # writer get their turn, as they would in production.
            await asyncio.sleep(0)
    await app.store.flush()
    elapsed = time.perf_counter() - started
    stop.set()
    await probe
    await app.close()
    return {
        "events": n,
        "events_per_s": (n - 1) / elapsed,
        "loop_lag_p50_ms": percentile(samples, 50),
        "loop_lag_p99_ms": percentile(samples, 99),
        "loop_lag_max_ms": max(samples) if samples else float("nan"),
    }


async def stats_while_ingesting(settings: Settings, seconds: float, rate: int = 1000) -> dict:
    events = make_events(int(seconds * rate) + 1, seed=6)
    app = await open_app(settings, events)
    latencies: list[float] = []
    done = asyncio.Event()

    async def produce() -> None:
        started = time.perf_counter()
        for i, event in enumerate(events[1:], 1):
            await app.engine.dispatch(event)
            due = started + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        done.set()

    async def ask() -> None:
        facilitator = MemberRef("console", "fac", "facilitator", is_facilitator=True)
        place = PlaceRef("console", "bench", "c1")
        while not done.is_set():
            command = CommandInvoked(
                at=app.clock.now(), member=facilitator, place=place, name="", text="stats days:7"
            )
            started = time.perf_counter()
            actions = await app.engine.dispatch(command)
            latencies.append((time.perf_counter() - started) * 1000)
            assert actions and "contributions" in actions[0].text, actions
            await asyncio.sleep(0.05)

    await asyncio.gather(produce(), ask())
    await app.close()
    return {
        "rate": rate,
        "seconds": seconds,
        "stats_calls": len(latencies),
        "stats_p50_ms": percentile(latencies, 50),
        "stats_p99_ms": percentile(latencies, 99),
    }


async def pg_ingest(n: int) -> dict | None:
    import asyncpg

    dsn = PG_URL.replace("postgresql+asyncpg://", "postgresql://")
    async with pg_schema() as schema:
        if schema is None:
            return None
        settings = Settings.model_validate(
            {"storage": {"database_url": PG_URL, "pg_schema": schema, "batch_size": 5000}}
        )
        events = make_events(n, seed=7)
        app = await open_app(settings, events)
        settle_disk()
        started = time.perf_counter()
        for event in events[1:]:
            await app.engine.dispatch(event)
        await app.store.flush()
        engine_s = time.perf_counter() - started
        await app.close()
        conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
        columns = [*CONTRIBUTION_COLUMNS, "text", "edited_at"]
        rows = await conn.fetch(f"SELECT {', '.join(columns)} FROM contribution")
        edge_cols = list(EDGE_COLUMNS)
        edges = await conn.fetch(f"SELECT {', '.join(edge_cols)} FROM edge")
        await conn.execute("TRUNCATE contribution, edge")
        settle_disk()
        started = time.perf_counter()
        await conn.copy_records_to_table(
            "contribution", records=[tuple(r) for r in rows], columns=columns
        )
        await conn.copy_records_to_table(
            "edge", records=[tuple(r) for r in edges], columns=edge_cols
        )
        copy_s = time.perf_counter() - started
        await conn.close()
    engine_rate = (n - 1) / engine_s
    copy_rate = len(rows) / copy_s
    return {
        "events": n,
        "engine_events_per_s": engine_rate,
        "copy_rows_per_s": copy_rate,
        "ratio": engine_rate / copy_rate,
    }


async def main(seconds: float, events: int, json_path: str | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = Settings.model_validate({"storage": {"path": f"{tmp}/lag.db"}})
        lag = await lag_while_ingesting(sqlite, events)
        stats_settings = Settings.model_validate({"storage": {"path": f"{tmp}/stats.db"}})
        stats = await stats_while_ingesting(stats_settings, seconds)
    pg = await pg_ingest(events)
    print(
        f"event-loop lag while ingesting {lag['events']:,} events "
        f"({lag['events_per_s']:,.0f}/s): p50 {lag['loop_lag_p50_ms']:.1f} ms, "
        f"p99 {lag['loop_lag_p99_ms']:.1f} ms (goal < 20 ms)"
    )
    print(
        f"/course stats while ingesting {stats['rate']:,} events/s for {stats['seconds']:.0f} s "
        f"({stats['stats_calls']} calls): p50 {stats['stats_p50_ms']:.1f} ms, "
        f"p99 {stats['stats_p99_ms']:.1f} ms (goal p99 < 100 ms)"
    )
    if pg is None:
        print("PostgreSQL ingest: skipped (no server reachable at 127.0.0.1:5432)")
    else:
        print(
            f"PostgreSQL ingest: engine {pg['engine_events_per_s']:,.0f} events/s, asyncpg "
            f"copy_records_to_table {pg['copy_rows_per_s']:,.0f} rows/s, ratio {pg['ratio']:.3f}"
        )
    result = {"loop_lag": lag, "stats": stats, "postgres": pg}
    if json_path:
        Path(json_path).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.events, args.json))
