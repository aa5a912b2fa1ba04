"""Scale benchmark: one process over 1,000,000 stored contributions and 10,000 members.

Prints, measured in one run:
- the quiet-member scan (quiet states of every learner) and the weekly summary job
  (``summaries.weekly``: SQL aggregates, content and chart) on 1,000,000 contributions
  (goal: under 200 ms each);
- the resident memory of the process after it has opened that database and seen a message
  from each of its 10,000 members (goal: under 200 MB);
- the same scan and summary on PostgreSQL (the same rows, written with COPY), when a server
  answers at ``HEARTH_TEST_DATABASE_URL`` (default 127.0.0.1:5432, database test).

    python bench/scale.py [--contributions 1000000] [--members 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    PG_URL,
    Synthetic,
    pg_schema,
    populate,
    populate_postgres,
    rss_mb,
    runs_text,
    settle_disk,
)
from bot.app import HearthApp  # noqa: E402
from bot.clock import FakeClock  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.events import MemberRef, MessagePosted, PlaceRef  # noqa: E402
from bot.quiet import quiet_states  # noqa: E402
from storage.db import redact  # noqa: E402


async def samples_ms(make, repeat: int = 5) -> list[float]:
    """Milliseconds each of ``repeat`` runs of ``make()`` took, in order (the first one
    includes whatever a first run pays: imports, caches)."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await make()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def everyone_speaks(app: HearthApp, clock: FakeClock, members: int) -> None:
    """Every member posts once more, through the engine, so the process holds what a live
    bot holds (its caches of every member)."""
    place = PlaceRef("console", "bench", "c1")
    for i in range(members):
        clock.advance(timedelta(seconds=1))
        await app.engine.dispatch(
            MessagePosted(
                at=clock.now(),
                author=MemberRef("console", f"u{i}", f"learner {i}"),
                place=place,
                message_id=f"live-{i}",
                text="hello again",
            )
        )
    await app.store.flush()


def weekly_summary(app: HearthApp, community_id: str, now: datetime):
    """What the cohort channel gets each week: the week's numbers, the text, the chart."""
    from bot.summary_content import cohort_summary

    summaries = next(c for c in app.engine.cogs if c.name == "summaries")

    async def build():
        data = await summaries.week_data(community_id, now - timedelta(days=7), now, chart=True)
        cohort_summary(data, summaries.templates, root="course", chart=data.chart)

    return build


async def on_postgres(contributions: int, members: int) -> dict | None:
    """Quiet scan and weekly summary over the same community on PostgreSQL."""
    async with pg_schema() as schema:
        if schema is None:
            return None
        data = Synthetic(members=members, contributions=contributions)
        settings = Settings.model_validate(
            {"storage": {"database_url": PG_URL, "pg_schema": schema}}
        )
        clock = FakeClock(data.end)
        app = await HearthApp.create(settings, clock=clock)  # migrations build the schema
        await app.close()
        started = time.perf_counter()
        await populate_postgres(PG_URL, schema, data)
        load_s = time.perf_counter() - started
        settle_disk()
        app = await HearthApp.create(settings, clock=clock, migrate=False)
        try:
            await everyone_speaks(app, clock, members)
            now = clock.now()
            quiet = await samples_ms(
                lambda: quiet_states(app.store, data.community, now, settings.analytics)
            )
            weekly = await samples_ms(weekly_summary(app, data.community, now))
            states = await quiet_states(app.store, data.community, now, settings.analytics)
        finally:
            await app.close()
    return {
        "load_seconds": load_s,
        "quiet_scan_ms": statistics.median(quiet),
        "weekly_summary_ms": statistics.median(weekly),
        "quiet_scan_samples_ms": quiet,
        "weekly_summary_samples_ms": weekly,
        "states": state_counts(states),
    }


def state_counts(states: dict) -> dict[str, int]:
    return dict(Counter(state.state for state in states.values()))


async def main(contributions: int, members: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scale.db"
        started = time.perf_counter()
        now = populate(path, members=members, contributions=contributions)
        build_s = time.perf_counter() - started
        settle_disk()  # the 350 MB just written, out of the way of the timed phases
        rss_before = rss_mb()
        settings = Settings.model_validate({"storage": {"path": str(path)}})
        clock = FakeClock(now)
        app = await HearthApp.create(settings, clock=clock, migrate=False)
        try:
            await everyone_speaks(app, clock, members)
            rss = rss_mb()  # steady state: a live bot tracking every member
            quiet = await samples_ms(
                lambda: quiet_states(app.store, "bench", clock.now(), settings.analytics)
            )
            states = await quiet_states(app.store, "bench", clock.now(), settings.analytics)
            weekly = await samples_ms(weekly_summary(app, "bench", clock.now()))
            counter = iter(range(1000))

            async def whole_job():
                # The whole job also builds the private facilitator report (a table of
                # every learner and the network); reported for information.
                await app.scheduler.fire_now(
                    "summaries.weekly", "bench", period=f"bench-{next(counter)}"
                )

            (report_ms,) = await samples_ms(whole_job, repeat=1)
            rss_peak = rss_mb()
        finally:
            await app.close()
    pg = await on_postgres(contributions, members)
    by_state = state_counts(states)
    result = {
        "contributions": contributions,
        "members": members,
        "populate_seconds": build_s,
        "quiet_scan_ms": statistics.median(quiet),
        "weekly_summary_ms": statistics.median(weekly),
        "quiet_scan_samples_ms": quiet,
        "weekly_summary_samples_ms": weekly,
        "weekly_job_with_facilitator_report_ms": report_ms,
        "rss_mb": rss,
        "rss_after_report_jobs_mb": rss_peak,
        "rss_before_app_mb": rss_before,
        "states": by_state,
        "postgres": pg,
    }
    print(
        f"community: {members:,} members, {contributions:,} contributions "
        f"(written in {build_s:.1f} s)"
    )
    print(
        f"quiet-member scan:     {result['quiet_scan_ms']:8.1f} ms  (goal < 200 ms)  "
        f"runs: {runs_text(quiet)}  states: {by_state}"
    )
    print(
        f"weekly cohort summary: {result['weekly_summary_ms']:8.1f} ms  (goal < 200 ms)  "
        f"runs: {runs_text(weekly)}"
    )
    print(f"whole weekly job incl. the private facilitator report: {report_ms:8.1f} ms")
    print(
        f"resident memory:       {rss:8.1f} MB  (goal < 200 MB; {rss_before:.0f} MB before "
        "the app opened the database)"
    )
    if pg is None:
        print(f"PostgreSQL: no server at {redact(PG_URL)}; not measured")
    else:
        same = "yes" if pg["states"] == by_state else f"NO: {pg['states']}"
        print(
            f"PostgreSQL (loaded with COPY in {pg['load_seconds']:.1f} s): quiet-member scan "
            f"{pg['quiet_scan_ms']:.1f} ms (runs: {runs_text(pg['quiet_scan_samples_ms'])}), "
            f"weekly cohort summary {pg['weekly_summary_ms']:.1f} ms "
            f"(runs: {runs_text(pg['weekly_summary_samples_ms'])})  (goal < 200 ms each); "
            f"the same states as on SQLite: {same}"
        )
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contributions", type=int, default=1_000_000)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args()
    figures = asyncio.run(main(args.contributions, args.members))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
