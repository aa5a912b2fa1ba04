"""What the weekly summary costs on PostgreSQL before vacuum has reached the newest rows.

The weekly numbers read the week from the covering time index; PostgreSQL skips the table only
on pages vacuum has marked all-visible. ``bench/scale.py`` measures right after a VACUUM (with
only its live step's 10,000 rows newer). This measures two copies of the same million
contributions in one database, in turns:

- one just after VACUUM (as ``bench/scale.py``);
- one with its last ``--weeks`` weeks written since the last vacuum: what PostgreSQL's
  default autovacuum leaves on a million-row table (it waits until inserts reach 20% of it,
  about two weeks of this course), and what migration 0010 shortens to about a day.

    python bench/visibility.py [--contributions 1000000] [--weeks 2] [--rounds 9]

Needs a PostgreSQL server at ``HEARTH_TEST_DATABASE_URL`` (default 127.0.0.1:5432, database
test); not part of ``hearth bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import event  # noqa: E402

from bench.common import PG_URL, Synthetic, pg_schema, populate_postgres  # noqa: E402
from bench.scale import samples_ms, weekly_summary  # noqa: E402
from bot.app import HearthApp  # noqa: E402
from bot.clock import FakeClock  # noqa: E402
from bot.config import Settings  # noqa: E402
from storage import summary_queries as sq  # noqa: E402
from storage.db import redact  # noqa: E402


async def _sql(schema: str, *statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(
        PG_URL.replace("postgresql+asyncpg://", "postgresql://"),
        server_settings={"search_path": schema},
    )
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def _round(app: HearthApp, community: str, now) -> tuple[float, float]:
    """(weekly summary ms, open questions ms), one run each."""
    since = now - timedelta(days=7)
    (summary,) = await samples_ms(weekly_summary(app, community, now), repeat=1)
    (open_q,) = await samples_ms(
        lambda: sq.open_questions(app.store, community, since, now, limit=5), repeat=1
    )
    return summary, open_q


def _heap_fetches(plan: dict) -> int:
    return int(plan.get("Heap Fetches", 0)) + sum(_heap_fetches(p) for p in plan.get("Plans", ()))


async def _pages_read(app: HearthApp, community: str, now) -> tuple[int, int]:
    """(buffers, heap fetches) of the open questions' statement, from EXPLAIN (ANALYZE,
    BUFFERS): counts of work that do not drift with the machine's speed."""
    statements = []

    def capture(conn, cursor, statement, params, context, executemany):
        statements.append((statement, params))

    engine = app.store.engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        await sq.open_questions(app.store, community, now - timedelta(days=7), now, limit=5)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    statement, params = statements[-1]
    async with app.store.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        found = await raw.fetchval("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, *params)
    (plan,) = json.loads(found) if isinstance(found, str) else found
    top = plan["Plan"]
    return int(top["Shared Hit Blocks"]) + int(top["Shared Read Blocks"]), _heap_fetches(top)


async def main(contributions: int, weeks: int, rounds: int) -> dict | None:
    async with pg_schema() as schema:
        if schema is None:
            print(f"PostgreSQL: no server at {redact(PG_URL)}; not measured")
            return None
        # The same community twice: "vacuumed" as loaded, "behind" with its last weeks
        # written again after the vacuum. Measured in turns, so that the machine's speed,
        # which drifts over a minute, weighs on both alike.
        vacuumed = Synthetic(community="vacuumed", contributions=contributions)
        behind = Synthetic(community="behind", contributions=contributions)
        settings = Settings.model_validate(
            {"storage": {"database_url": PG_URL, "pg_schema": schema}}
        )
        app = await HearthApp.create(settings, clock=FakeClock(vacuumed.end))  # the schema
        await app.close()
        for data in (vacuumed, behind):
            await populate_postgres(PG_URL, schema, data)  # each load ends with VACUUM
        cutoff = (behind.end - timedelta(weeks=weeks)).isoformat()
        # The rows of the last weeks written again: their pages are new and not marked
        # all-visible, as if autovacuum had not come round to them yet. Autovacuum is off
        # for the table from here, so that it cannot catch up mid-way.
        await _sql(
            schema,
            "ALTER TABLE contribution SET (autovacuum_enabled = false)",
            "CREATE TEMP TABLE recent AS SELECT * FROM contribution "
            f"WHERE community_id = 'behind' AND created_at >= '{cutoff}'",
            f"DELETE FROM contribution WHERE community_id = 'behind' AND created_at >= '{cutoff}'",
            "VACUUM contribution",
            "INSERT INTO contribution SELECT * FROM recent",
            "ANALYZE contribution",
        )
        app = await HearthApp.create(settings, clock=FakeClock(behind.end), migrate=False)
        runs: dict[str, list[tuple[float, float]]] = {"vacuumed": [], "behind": []}
        try:
            for name in runs:  # first runs pay imports and caches: not counted
                await _round(app, name, behind.end)
            for _ in range(rounds):
                for name in runs:
                    runs[name].append(await _round(app, name, behind.end))
            pages = {name: await _pages_read(app, name, behind.end) for name in runs}
        finally:
            await app.close()
    result = {
        name: {
            "weekly_summary_ms": statistics.median(r[0] for r in samples),
            "open_questions_ms": statistics.median(r[1] for r in samples),
            "open_questions_buffers": pages[name][0],
            "open_questions_heap_fetches": pages[name][1],
        }
        for name, samples in runs.items()
    }
    print(f"PostgreSQL, {contributions:,} contributions, medians of {rounds} runs in turns:")
    for name, label in (
        ("vacuumed", "just after VACUUM"),
        ("behind", f"the last {weeks} weeks not vacuumed"),
    ):
        figures = result[name]
        print(
            f"  {label:34s} weekly summary {figures['weekly_summary_ms']:7.1f} ms, "
            f"open questions {figures['open_questions_ms']:7.1f} ms "
            f"({figures['open_questions_buffers']:,} buffers, "
            f"{figures['open_questions_heap_fetches']:,} rows fetched from the table)"
        )
    for key, label in (("weekly_summary_ms", "weekly summary"), ("open_questions_ms", "open q")):
        ratio = result["behind"][key] / result["vacuumed"][key]
        print(f"  {label}: not vacuumed / vacuumed = {ratio:.2f}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contributions", type=int, default=1_000_000)
    parser.add_argument("--weeks", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    asyncio.run(main(args.contributions, args.weeks, args.rounds))
