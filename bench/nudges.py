"""Benchmark: a nudge round, ``/course quiet``, the effect report and the hot-path hook.

Builds the synthetic community of ``bench/analytics.py`` (members in study groups, skewed
activity, so many learners are new, quiet, isolated or dropping), then times in one run:

- planning a round (``NudgesCog.plan``: quiet states, ladder, the proactive-message policy per
  member, hooks read once per community), which is what ``/course quiet`` and ``/course
  nudge`` cost;
- executing it (each step recorded under its unique key, the direct messages built);
- planning again right after (everyone just nudged now waits);
- the effect report over every exposure;
- the per-message hook (``NudgesCog.on_event``) for authors without an open nudge (a set
  lookup) and for authors with one (a return recorded from the contribution table).

    .venv/bin/python bench/nudges.py [--members 2000] [--contributions 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.analytics import COMMUNITY, NOW, build  # noqa: E402
from bench.common import machine  # noqa: E402
from bot.clock import FakeClock  # noqa: E402
from bot.cogs.nudges import NudgesCog  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.engine import Services  # noqa: E402
from bot.events import MemberRef, MessagePosted, PlaceRef  # noqa: E402
from bot.nudging import Exposure, effect_report  # noqa: E402
from storage.db import create_all, make_engine  # noqa: E402
from storage.repos import Store  # noqa: E402
from storage.writer import BatchWriter  # noqa: E402


async def main(members: int, contributions: int, db: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    await create_all(engine)
    store = Store(engine, BatchWriter(engine))
    print(f"machine: {machine()}")
    edges, seconds = await build(store, members, contributions)
    print(
        f"built {members:,} members, {contributions:,} contributions, {edges:,} edges "
        f"in {seconds:.1f}s"
    )
    settings = Settings.model_validate(
        {
            "storage": {"path": str(db)},
            "nudges": {"quiet_hours": {"start": "23:59:00", "end": "00:00:00"}},
        }
    )
    clock = FakeClock(NOW)
    cog = NudgesCog(Services(store=store, settings=settings, clock=clock))
    await cog.start()

    started = time.perf_counter()
    entries = await cog.plan(COMMUNITY, NOW)
    plan_s = time.perf_counter() - started
    actions_by = Counter(e.action for e in entries)
    states = Counter(e.state for e in entries)
    print(
        f"plan: {len(entries):,} learners not active {dict(states)} -> {dict(actions_by)}: "
        f"{plan_s:.2f}s ({plan_s / max(1, len(entries)) * 1000:.1f} ms per learner)"
    )

    started = time.perf_counter()
    actions, counts = await cog.execute(COMMUNITY, entries, NOW)
    run_s = time.perf_counter() - started
    print(f"execute: {counts}, {len(actions):,} direct messages built: {run_s:.2f}s")

    started = time.perf_counter()
    again = await cog.plan(COMMUNITY, NOW + timedelta(minutes=5))
    again_s = time.perf_counter() - started
    print(f"plan again: {dict(Counter(e.action for e in again))}: {again_s:.2f}s")

    exposures = [Exposure(m, h, at, b) for m, h, at, b in await cog.repo.exposures(COMMUNITY)]
    started = time.perf_counter()
    effect_report(exposures, NOW + timedelta(days=8))
    print(
        f"effect report over {len(exposures):,} exposures: "
        f"{(time.perf_counter() - started) * 1000:.1f} ms"
    )

    place = PlaceRef("console", COMMUNITY, "c0")
    quiet_ids = [e.member_id for e in entries if e.action == "send"][:200]
    n = 20_000
    started = time.perf_counter()
    for i in range(n):
        event = MessagePosted(
            at=NOW,
            author=MemberRef("console", f"x{i}"),
            place=place,
            message_id=f"b{i}",
            text="hi",
        )
        await cog.on_event(event)
    cold = (time.perf_counter() - started) / n * 1e6
    started = time.perf_counter()
    for i, member_id in enumerate(quiet_ids):
        event = MessagePosted(
            at=NOW + timedelta(hours=1),
            author=MemberRef("console", member_id),
            place=place,
            message_id=f"r{i}",
            text="back",
        )
        await cog.on_event(event)
    warm = (time.perf_counter() - started) / max(1, len(quiet_ids)) * 1000
    print(
        f"on_event: {cold:.1f} us per message without an open nudge; {warm:.1f} ms per "
        f"message from a nudged member ({len(quiet_ids)} returns; contributions are not "
        "inserted here, so this is the reconcile query's cost)"
    )
    await store.writer.close()
    await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--contributions", type=int, default=200_000)
    parser.add_argument("--db", type=Path, default=None)
    args = parser.parse_args()
    path = args.db or Path(tempfile.mkdtemp()) / "nudges-bench.db"
    try:
        asyncio.run(main(args.members, args.contributions, path))
    finally:
        if args.db is None:
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(f"{path}{suffix}"):
                    os.remove(f"{path}{suffix}")
