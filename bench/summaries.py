"""Benchmark: the weekly jobs of reflections and summaries on a big course.

Builds a SQLite community (default 5,000 members, 500,000 contributions over ten weeks, via
``bench.common.populate``), adds an open reflection prompt answered by 40% of the learners,
and opts 10% of them into the mirror. Then it times, in one run:

- the cohort summary's numbers (``week_data``: kinds against last week, busiest threads,
  newcomers, reflections, open questions, days) and its text and chart;
- the facilitator report (analytics, per-learner table, network picture, CSV);
- the gradebook export of the whole ten weeks;
- a mirror run (one private mirror per opted-in learner, policy checked for each);
- a reflection follow-up run that sends the reminders (one per non-responder).

    .venv/bin/python bench/summaries.py [--members 5000] [--contributions 500000]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, populate, rss_mb  # noqa: E402
from bot.app import HearthApp  # noqa: E402
from bot.clock import FakeClock  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.events import ScheduledTick  # noqa: E402
from bot.export import export_csv, export_rows  # noqa: E402
from bot.summary_content import cohort_summary, weekly_chart  # noqa: E402


def add_reflections(path: Path, community: str, members: int, end) -> None:
    """An open prompt (posted five days ago) answered by 40% of members; 10% want a mirror."""
    fmt = "%Y-%m-%d %H:%M:%S.%f"
    posted = (end - timedelta(days=6)).replace(tzinfo=None)
    con = sqlite3.connect(path)
    with con:
        con.execute(
            "INSERT INTO reflection_prompt (id, community_id, cohort, slot, week, prompt_key, "
            "title, text, delivery, channel_id, thread_id, status, posted_at, remind_at, "
            "closes_at, created_at) VALUES (1, ?, 1, 'c1:w9', 9, 'x', 'Bench prompt', 'Text', "
            "'thread', 'reflections', 'p1', 'posted', ?, ?, ?, ?)",
            (
                community,
                posted.strftime(fmt),
                (posted + timedelta(days=5)).strftime(fmt),
                (posted + timedelta(days=7)).strftime(fmt),
                posted.strftime(fmt),
            ),
        )
        con.executemany(
            "INSERT INTO reflection (community_id, prompt_id, member_id, message_id, created_at, "
            "word_count, responded) VALUES (?, 1, ?, ?, ?, 40, ?)",
            [
                (
                    community,
                    f"u{i}",
                    f"r{i}",
                    (posted + timedelta(hours=1)).strftime(fmt),
                    i % 3 == 0,
                )
                for i in range(3, members)
                if i % 5 < 2
            ],
        )
        con.executemany(
            "INSERT INTO member_pref (community_id, member_id, key, value) VALUES (?, ?, ?, ?)",
            [(community, f"u{i}", "mirror", "on") for i in range(3, members, 10)],
        )
    con.close()


async def main(members: int, contributions: int, db: Path) -> None:
    started = time.perf_counter()
    end = populate(db, members=members, contributions=contributions, days=70)
    add_reflections(db, "bench", members, end)
    built = time.perf_counter() - started
    settings = Settings.model_validate(
        {
            "storage": {"path": str(db)},
            "course": {"reflection_channel": "reflections", "cohort_channel": "general"},
            "nudges": {"enabled": False},
        }
    )
    app = await HearthApp.create(settings, clock=FakeClock(end), migrate=False)
    summaries = next(c for c in app.engine.cogs if c.name == "summaries")
    reflections = next(c for c in app.engine.cogs if c.name == "reflections")
    since = end - timedelta(days=7)
    rows: list[tuple[str, str]] = []

    async def timed(label: str, coro):
        t = time.perf_counter()
        result = await coro
        rows.append((label, f"{time.perf_counter() - t:.2f} s"))
        return result

    try:
        week = await timed(
            "cohort summary numbers (week_data)", summaries.week_data("bench", since, end)
        )
        t = time.perf_counter()
        cohort_summary(
            week, summaries.templates, chart=await asyncio.to_thread(weekly_chart, week.daily)
        )
        rows.append(("cohort summary text and chart", f"{time.perf_counter() - t:.2f} s"))
        report = await timed(
            "facilitator report (analytics, table, picture, CSV)",
            summaries.build_report("bench", since, end, week),
        )
        rich, files = report
        export = await timed(
            "gradebook export, 70 days",
            export_rows(
                app.store,
                "bench",
                first=(end - timedelta(days=69)).date(),
                last=end.date(),
                timezone="UTC",
                facilitators={"u0", "u1", "u2"},
            ),
        )
        csv_text = export_csv(export)
        tick = ScheduledTick(at=end, job="summaries.mirror", community_id="bench", period="b")
        mirrors = await timed("mirror run", summaries.run_mirror(tick))
        tick = ScheduledTick(at=end, job="reflections.followup", community_id="bench", period="b")
        reminders = await timed(
            "reflection follow-up run (reminders)", reflections.run_followup(tick)
        )
    finally:
        await app.close()
    print(f"Machine: {machine()}")
    print(
        f"Community: {members:,} members, {contributions:,} contributions over 70 days "
        f"(built in {built:.1f} s); this week: {week.contributions:,} contributions."
    )
    for label, value in rows:
        print(f"  {label:<55} {value:>9}")
    print(
        f"Outputs: summary with {len(week.threads)} threads and {week.open_questions:,} open "
        f"questions; report CSV {len(files[0].data) // 1024} KiB for "
        f"{len(rich.sections)} sections; export {len(export):,} rows "
        f"({len(csv_text) // 1024} KiB); {len(mirrors):,} mirrors; {len(reminders):,} reminders."
    )
    print(f"Peak memory (RSS now): {rss_mb():.0f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=5000)
    parser.add_argument("--contributions", type=int, default=500_000)
    parser.add_argument("--db", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(args.members, args.contributions, args.db or Path(tmp) / "bench.db"))
