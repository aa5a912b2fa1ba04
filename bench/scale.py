"""Scale benchmark: one process over 1,000,000 stored contributions and 10,000 members.

Prints, measured in one run:
- the quiet-member scan (quiet states of every learner) and the weekly summary job
  (``summaries.weekly``: SQL aggregates, content and chart) on 1,000,000 contributions
  (goal: under 200 ms each);
- the resident memory of the process after it has opened that database and seen a message
  from each of its 10,000 members (goal: under 200 MB).

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
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import populate, rss_mb  # noqa: E402
from bot.app import HearthApp  # noqa: E402
from bot.clock import FakeClock  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.events import MemberRef, MessagePosted, PlaceRef  # noqa: E402
from bot.quiet import quiet_states  # noqa: E402


async def median_ms(make, repeat: int = 5) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await make()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


async def main(contributions: int, members: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scale.db"
        started = time.perf_counter()
        now = populate(path, members=members, contributions=contributions)
        build_s = time.perf_counter() - started
        rss_before = rss_mb()
        settings = Settings.model_validate({"storage": {"path": str(path)}})
        clock = FakeClock(now)
        app = await HearthApp.create(settings, clock=clock, migrate=False)
        try:
            # Every member speaks once, so the process holds what a live bot holds.
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
            rss = rss_mb()  # steady state: a live bot tracking every member
            quiet_ms = await median_ms(
                lambda: quiet_states(app.store, "bench", clock.now(), settings.analytics)
            )
            states = await quiet_states(app.store, "bench", clock.now(), settings.analytics)
            weekly_ms = report_ms = float("nan")
            summaries = next((c for c in app.engine.cogs if c.name == "summaries"), None)
            if summaries is not None:
                from bot.summary_content import cohort_summary

                since = clock.now() - timedelta(days=7)

                async def weekly():
                    # What the cohort channel gets: the week's numbers, the text, the chart.
                    data = await summaries.week_data("bench", since, clock.now())
                    chart = await summaries._chart(data)
                    cohort_summary(data, summaries.templates, root="course", chart=chart)

                weekly_ms = await median_ms(weekly)
                counter = iter(range(1000))

                async def whole_job():
                    # The whole job also builds the private facilitator report (a table of
                    # every learner and the network); reported for information.
                    await app.scheduler.fire_now(
                        "summaries.weekly", "bench", period=f"bench-{next(counter)}"
                    )

                report_ms = await median_ms(whole_job, repeat=1)
            rss_peak = rss_mb()
        finally:
            await app.close()
    by_state: dict[str, int] = {}
    for state in states.values():
        by_state[state.state] = by_state.get(state.state, 0) + 1
    result = {
        "contributions": contributions,
        "members": members,
        "populate_seconds": build_s,
        "quiet_scan_ms": quiet_ms,
        "weekly_summary_ms": weekly_ms,
        "weekly_job_with_facilitator_report_ms": report_ms,
        "rss_mb": rss,
        "rss_after_report_jobs_mb": rss_peak,
        "rss_before_app_mb": rss_before,
        "states": by_state,
    }
    print(
        f"community: {members:,} members, {contributions:,} contributions "
        f"(written in {build_s:.1f} s)"
    )
    print(f"quiet-member scan:     {quiet_ms:8.1f} ms  (goal < 200 ms)  states: {by_state}")
    print(f"weekly cohort summary: {weekly_ms:8.1f} ms  (goal < 200 ms)")
    print(f"whole weekly job incl. the private facilitator report: {report_ms:8.1f} ms")
    print(
        f"resident memory:       {rss:8.1f} MB  (goal < 200 MB; {rss_before:.0f} MB before "
        "the app opened the database)"
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
