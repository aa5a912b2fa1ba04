"""The gradebook export: its columns, and values counted over local days in the course
timezone (across a DST change), with reflections, kudos, facilitators left out and learners
without activity kept."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import pytest

from bot.clock import FakeClock
from bot.export import EXPORT_COLUMNS, ExportRow, export_csv, export_rows
from storage.repos import E
from tests.conftest import BACKENDS
from tests.test_reflections import backend_storage, open_course


@pytest.fixture(params=BACKENDS)
async def db_storage(request):
    async with backend_storage(request.param) as settings:
        yield settings


NY = "America/New_York"  # clocks go back on Sunday 1 November 2026


def at(clock, *args):
    clock.set(datetime(*args, tzinfo=UTC))


async def build(session, clock):
    """Messages at chosen instants; the comments give the New York local day."""
    at(clock, 2026, 10, 30, 3, 0)  # Thu 29 Oct 23:00: before the range
    await session.say("alice", "Too early to count.")
    at(clock, 2026, 10, 31, 3, 30)  # Fri 30 Oct 23:30 EDT
    await session.say("alice", "I think spacing helps memory.")
    at(clock, 2026, 10, 31, 4, 30)  # Sat 31 Oct 00:30 EDT: another local day, same UTC day
    question = await session.say("alice", "How does this work?")
    at(clock, 2026, 11, 2, 4, 30)  # Sun 1 Nov 23:30 EST
    await session.say("bob", "Another idea about practice")
    at(clock, 2026, 11, 2, 5, 30)  # Mon 2 Nov 00:30 EST
    await session.reply("bob", question, "Thanks @alice, see https://example.org/x")
    await session.say("fran", "Facilitators are not in the gradebook.")
    at(clock, 2026, 11, 2, 15, 0)  # Mon 2 Nov 10:00 EST
    out = await session.command("fran", "/course prompt post text:What did you learn?")
    assert "Posted prompt #1" in out
    await session.say("alice", "My reflection on week one", thread="reflection-1")
    await session.say("alice", "and one more thought", thread="reflection-1")
    for giver, when in (
        ("alice", datetime(2026, 11, 3, 12, tzinfo=UTC)),
        ("carol", datetime(2026, 11, 3, 13, tzinfo=UTC)),
        ("carol", datetime(2026, 11, 5, 13, tzinfo=UTC)),
    ):  # after the range
        session.app.store.writer.insert_ignore(
            E,
            {
                "community_id": "console",
                "kind": "kudos",
                "source_id": giver,
                "target_id": "bob",
                "message_id": f"kudos-{giver}-{when:%d}",
                "detail": "",
                "weight": 1.0,
                "created_at": when,
            },
        )
    at(clock, 2026, 11, 4, 5, 30)  # Wed 4 Nov 00:30 EST: after the range
    await session.say("alice", "Too late to count.")


async def test_export_columns_and_values(tmp_path, db_storage):
    clock = FakeClock(datetime(2026, 10, 29, 12, tzinfo=UTC))
    app, session = await open_course(
        tmp_path / "x.db",
        clock,
        start=False,
        storage=db_storage,
        course={"timezone": NY, "start_date": "2026-10-26"},
    )
    try:
        await build(session, clock)
        assert "for facilitators only" in await session.command("alice", "/course export")
        out = await session.command("fran", "/course export from:2026-10-30 to:2026-11-03")
        assert "2026-10-30 to 2026-11-03 (America/New_York): 3 learners" in out
        sent = session.outbox[-1].action
        [attachment] = sent.files
        assert attachment.filename == "hearth-export-cohort1-2026-10-30-2026-11-03.csv"
        assert attachment.content_type == "text/csv"
        text = attachment.data.decode("utf-8")
        assert text.splitlines()[0] == ",".join(EXPORT_COLUMNS)
        assert EXPORT_COLUMNS == (
            "member_id",
            "display_name",
            "posts",
            "replies",
            "references",
            "questions",
            "support",
            "reflections",
            "words",
            "active_days",
            "kudos_received",
        )
        rows = {r["member_id"]: r for r in csv.DictReader(io.StringIO(text))}
        assert list(rows) == ["alice", "bob", "carol"]  # by name; fran is a facilitator
        assert rows["alice"] == {
            "member_id": "alice",
            "display_name": "alice",
            "posts": "4",  # two posts, two answers in the reflection thread
            "replies": "2",  # the thread answers build on the prompt
            "references": "0",
            "questions": "1",
            "support": "0",
            "reflections": "1",  # one prompt, however many messages
            "words": "18",  # 5 + 4 + 5 + 4
            "active_days": "3",  # Fri 30 Oct, Sat 31 Oct, Mon 2 Nov (New York days)
            "kudos_received": "0",
        }
        assert rows["bob"] == {
            "member_id": "bob",
            "display_name": "bob",
            "posts": "2",
            "replies": "1",
            "references": "1",
            "questions": "0",
            "support": "1",
            "reflections": "0",
            "words": "7",
            "active_days": "2",
            "kudos_received": "2",
        }
        assert set(rows["carol"].values()) - {"carol"} == {"0"}
        # The default range is the cohort so far; a backwards range is refused.
        at(clock, 2026, 11, 6, 12, 0)
        whole = await session.command("fran", "/course export")
        assert "2026-10-26 to 2026-11-06" in whole
        everything = {
            r["member_id"]: r
            for r in csv.DictReader(io.StringIO(session.outbox[-1].action.files[0].data.decode()))
        }
        assert everything["alice"]["posts"] == "6" and everything["bob"]["kudos_received"] == "3"
        bad = await session.command("fran", "/course export from:2026-11-03 to:2026-11-01")
        assert "ends (2026-11-01) before it starts (2026-11-03)" in bad
        assert "expected a date" in await session.command("fran", "/course export from:monday")
    finally:
        await app.close()


async def test_export_rows_directly_and_formula_names(tmp_path):
    clock = FakeClock(datetime(2026, 11, 2, 15, tzinfo=UTC))
    app, session = await open_course(
        tmp_path / "y.db", clock, start=False, learners=(), course={"timezone": NY}
    )
    try:
        await session.say("=HYPERLINK(evil)", "hello")
        await session.say("zoe", "hi there")
        rows = await export_rows(
            app.store,
            "console",
            first=date(2026, 11, 2),
            last=date(2026, 11, 2),
            timezone=NY,
            facilitators={"fran"},
        )
        assert [r.member_id for r in rows] == ["=HYPERLINK(evil)", "zoe"]
        assert rows[1] == ExportRow("zoe", "zoe", posts=1, words=2, active_days=1)
        lines = export_csv(rows).splitlines()
        assert lines[1].startswith("'=HYPERLINK(evil),'=HYPERLINK(evil),1,")
    finally:
        await app.close()
