"""``hearth demo``: a scripted two-week course played through the whole bot.

Ten learners and a facilitator chat for two weeks (a few hundred messages from a fixed seed:
ideas, replies, threads, references, questions, thanks, reactions); two learners go quiet
after the first days. Everything goes through the console adapter, the engine, the scheduler
on a simulated clock and a SQLite file, which is left behind for ``hearth console --db``.

Capabilities add *chapters*: a chapter may act at the end of each simulated day (the nudges
chapter makes a nudged learner come back) and prints its part of the report at the end.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from rich.console import Console
from rich.table import Table

from bot.adapters.console import ConsoleSession
from bot.app import HearthApp
from bot.classify import KINDS
from bot.clock import FakeClock
from bot.config import Settings
from storage.repos import masks_to_kinds

LEARNERS = ["amara", "ben", "chen", "dina", "eli", "fatima", "gus", "hana", "ivan", "jo"]
FACILITATOR = "prof_lee"
QUIET = ("gus", "jo")  # these two drift away after the first days
DAYS = 14

IDEAS = [
    "I think spaced repetition matters more than the textbook admits.",
    "My takeaway from week one: feedback loops beat long lectures.",
    "Here's a summary of the reading: https://example.org/notes/week1",
    "Cognitive load theory explains why our first project felt so hard (Sweller, 1988).",
    "Does anyone else find the peer review rubric confusing?",
    "How do you all plan your study time around work?",
    "I tried the Feynman technique on chapter 3 and it helped a lot.",
    "Interesting paper on retrieval practice: doi:10.1177/1529100612453266",
    "What is the difference between formative and summative assessment here?",
    "Sharing my mind map of the module, attached.",
    "Why does the reading say motivation is social? I expected it to be individual.",
    "Freeman et al. (2014) found active learning cuts failure rates a lot.",
]
REPLIES = [
    "Good point, I had the same experience.",
    "I disagree a bit: the textbook covers it in chapter 4.",
    "Thanks, this really helped me!",
    "Have you looked at https://example.org/guide? It explains it well.",
    "Could you say more about how you applied it?",
    "Same here. What worked for me was short daily sessions.",
    "Great summary, thank you for sharing.",
    "I think the rubric is about evidence, not length.",
    "Building on that, Dweck (2006) argues mindset shapes effort.",
    "Why do you think that is?",
    "Happy to help if you want to go through it together.",
    "Interesting, I read it the other way round.",
]


class Chapter(Protocol):
    title: str

    async def during(self, demo: Demo, day: int) -> None: ...

    async def report(self, demo: Demo) -> None: ...


@dataclass(slots=True)
class Demo:
    app: HearthApp
    session: ConsoleSession
    console: Console
    rng: random.Random
    out_dir: Path
    start: datetime
    verbose: bool = True
    message_ids: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def active_on(self, name: str, day: int) -> bool:
        return not (name in QUIET and day >= 4)


def course_start(now: datetime) -> datetime:
    """Monday 08:00 UTC of the week that was two weeks ago: the course's two weeks end in
    the seven days before now (or, run on a Monday before 08:00, just after it)."""
    day = (now - timedelta(days=DAYS)).date()
    monday = day - timedelta(days=day.weekday())
    return datetime(monday.year, monday.month, monday.day, 8, 0, tzinfo=UTC)


def chapters() -> list[Chapter]:
    """Chapters added by each capability, in the order their reports print."""
    from bot.demo_analytics import AnalyticsChapter
    from bot.demo_nudges import NudgesChapter
    from bot.demo_reflections import ReflectionsChapter

    return [AnalyticsChapter(), ReflectionsChapter(), NudgesChapter()]


async def play_day(demo: Demo, day: int) -> None:
    s = demo.session
    rng = demo.rng
    recent: list[str] = []
    for _ in range(rng.randint(16, 26)):
        await s.advance(timedelta(minutes=rng.randint(10, 35)))
        speakers = [n for n in LEARNERS if demo.active_on(n, day)]
        name = rng.choice(speakers + [FACILITATOR])
        roll = rng.random()
        if recent and roll < 0.55:
            target = rng.choice(recent[-8:])
            text = rng.choice(REPLIES)
            if rng.random() < 0.25:
                other = rng.choice(LEARNERS)
                text += f" @{other} what do you think?"
            if rng.random() < 0.35:
                mid = await s.say(
                    name, text, thread=target, channel=s.channel_of.get(target, "general")
                )
            else:
                mid = await s.reply(name, target, text)
        else:
            channel = rng.choice(["general", "general", "readings", "help"])
            attachments = ("mindmap.png",) if rng.random() < 0.05 else ()
            mid = await s.say(name, rng.choice(IDEAS), channel=channel, attachments=attachments)
        recent.append(mid)
        demo.message_ids.setdefault(name, []).append(mid)
        if rng.random() < 0.4 and len(recent) > 1:
            reactor = rng.choice([n for n in LEARNERS if demo.active_on(n, day)])
            await s.react(reactor, rng.choice(recent[-5:]), rng.choice(["👍", "🎉", "💡"]))


async def learner_table(demo: Demo) -> Table:
    store = demo.app.store
    cid = demo.session.community_id
    per_member = await store.per_member_counts(cid)
    table = Table(title="Per-learner participation (whole course)")
    table.add_column("member")
    table.add_column("total", justify="right")
    for kind in KINDS:
        table.add_column(kind.replace("_", " "), justify="right")
    for member in await store.members(cid):
        masks = per_member.get(member["member_id"], {})
        counts = masks_to_kinds(masks, KINDS)
        label = member["display_name"] + (" (facilitator)" if member["is_facilitator"] else "")
        table.add_row(label, str(sum(masks.values())), *(str(counts[k]) for k in KINDS))
    return table


async def run_demo(db_path: Path, *, seed: int = 7, verbose: bool = True) -> Demo:
    db_path = Path(db_path)
    for suffix in ("", "-wal", "-shm"):
        Path(str(db_path) + suffix).unlink(missing_ok=True)
    start = course_start(datetime.now(UTC))
    clock = FakeClock(start)
    settings = Settings.model_validate(
        {
            "storage": {"path": str(db_path)},
            "course": {
                "name": "Learning to Learn (demo)",
                "timezone": "Europe/London",
                "start_date": start.date().isoformat(),
                "end_date": (start + timedelta(days=DAYS + 7)).date().isoformat(),
                "facilitator_ids": [FACILITATOR],
                "reflection_channel": "reflections",
                "cohort_channel": "general",
            },
            "console": {"community": "demo"},
            # Hourly follow-ups (reminders, closing prompts) keep the simulated weeks quick.
            "reflections": {"followup_schedule": "0 * * * *"},
        }
    )
    console = Console()
    app = await HearthApp.create(settings, clock=clock)
    session = await ConsoleSession.open(app, community_id="demo")
    demo = Demo(app, session, console, random.Random(seed), db_path.parent, start, verbose)
    parts = chapters()
    try:
        await app.scheduler.start()
        await session.join(FACILITATOR, facilitator=True)
        for name in LEARNERS:
            await session.join(name)
        for day in range(DAYS):
            day_start = start + timedelta(days=day)
            if clock.now() < day_start:
                await session.advance(day_start - clock.now())
            await play_day(demo, day)
            for chapter in parts:
                await chapter.during(demo, day)
        await app.store.flush()
        total, masks, words = await app.store.kind_counts("demo")
        by_kind = masks_to_kinds(masks, KINDS)
        console.rule("[bold]Hearth demo: what was recorded")
        console.print(
            f"{total} contributions, {words} words, from {len(LEARNERS)} learners and one "
            f"facilitator over {DAYS} days (seed {seed})."
        )
        kinds = Table(title="Contributions by kind")
        kinds.add_column("kind")
        kinds.add_column("messages", justify="right")
        for kind in KINDS:
            kinds.add_row(kind.replace("_", " "), str(by_kind[kind]))
        console.print(kinds)
        console.print(await learner_table(demo))
        console.print(f"Quiet on purpose: {', '.join(QUIET)} stopped posting after day 4.")
        for chapter in parts:
            console.rule(f"[bold]{chapter.title}")
            await chapter.report(demo)
    finally:
        await app.close()
    console.rule()
    console.print(
        f"Database left at [bold]{db_path}[/bold]; explore it with "
        f"`hearth console --db {db_path} --community demo`."
    )
    for note in demo.notes:
        console.print(note)
    return demo
