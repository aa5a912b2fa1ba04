"""Faults: a database that is not there at start, one that goes away mid-run and comes back,
a write buffer that fills up, and rows the database refuses for their content.

Nothing here waits on a wall clock: the writer is flushed by hand (its interval is a minute),
the background retry is awaited through the writer's ``on_flush`` callback, and start-up
retries use a 10 ms backoff.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from bot.app import DatabaseUnavailable, HearthApp
from bot.cli import cli
from bot.engine import NOT_RECORDED
from storage.repos import C, E, M
from storage.writer import BufferFull
from tests.conftest import BACKENDS

UNREACHABLE = "postgresql+asyncpg://hearth:s3cretpw@127.0.0.1:1/hearth"


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
async def settings(settings):
    # Rows stay queued until the test flushes; metrics on, so refusals are counted.
    settings.storage.flush_ms = 60_000
    settings.storage.batch_size = 10_000
    settings.metrics.enabled = True
    return settings


class FlakyDatabase:
    """Stands in for the writer's engine: the next ``failures`` transactions fail to connect."""

    def __init__(self, real, failures: int) -> None:
        self.real = real
        self.dialect = real.dialect
        self.failures = failures
        self.attempts = 0

    def begin(self):
        self.attempts += 1
        if self.failures > 0:
            self.failures -= 1
            return _Refused()
        return self.real.begin()


class _Refused:
    async def __aenter__(self):
        raise OperationalError(
            "BEGIN", {}, ConnectionRefusedError("Connect call failed ('127.0.0.1', 5432)")
        )

    async def __aexit__(self, *exc) -> bool:
        return False


async def rows(app, table) -> list[dict]:
    await app.store.flush()
    async with app.store.engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(select(table))).mappings()]


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


# -- database unreachable at start -------------------------------------------------------------


def test_hearth_run_exits_non_zero_with_a_clear_message(tmp_path, restore_logging):
    config = tmp_path / "config.toml"
    config.write_text(
        f'[storage]\ndatabase_url = "{UNREACHABLE}"\n'
        "connect_attempts = 3\nconnect_backoff_seconds = 0.01\n"
    )
    result = CliRunner().invoke(cli, ["run", "--config", str(config)])
    assert result.exit_code == 3, result.output
    output = result.output
    assert output.count("unreachable (attempt") == 2  # retried, with backoff in between
    assert (
        "cannot reach the database at postgresql+asyncpg://hearth:***@127.0.0.1:1/hearth" in output
    )
    assert "after 3 attempts" in output and "exit code 3" in output
    assert "s3cretpw" not in output and "Traceback" not in output


async def test_create_retries_then_gives_up(clock, caplog):
    from bot.config import Settings

    settings = Settings.model_validate({"storage": {"database_url": UNREACHABLE}})
    with pytest.raises(DatabaseUnavailable, match="after 4 attempts"):
        await HearthApp.create(
            settings, clock=clock, migrate=False, connect_attempts=4, connect_backoff=0.001
        )
    retries = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) == 3
    assert all("s3cretpw" not in r.getMessage() for r in caplog.records)


async def test_a_missing_sqlite_directory_is_a_clear_error_too(tmp_path, clock):
    from tests.conftest import make_settings

    settings = make_settings(tmp_path / "no" / "such" / "dir" / "hearth.db")
    with pytest.raises(DatabaseUnavailable, match="unable to open database file"):
        await HearthApp.create(settings, clock=clock, migrate=False, connect_backoff=0.001)
    # aiosqlite's worker thread reports the failed connect to the loop a moment later; let it
    # finish while the loop is still open.
    for thread in threading.enumerate():
        if "_connection_worker_thread" in thread.name:
            await asyncio.to_thread(thread.join, 5)


# -- database lost mid-run -----------------------------------------------------------------------


async def test_rows_wait_for_the_database_and_land_exactly_once(app, session):
    writer = app.store.writer
    flaky = FlakyDatabase(writer._engine, failures=3)
    writer._engine = flaky
    first = await session.say("alice", "Has anyone read Smith (2020)?")
    reply = await session.reply("bob", first, "Yes, thanks @alice!")
    await session.react("carol", first, "🎉")
    await session.say("dana", "A new idea https://example.org")
    queued = writer.pending
    assert queued >= 7  # 4 members, 2 contributions... all waiting in memory
    for _ in range(3):
        with pytest.raises(OperationalError):
            await writer.flush()
        assert writer.pending == queued  # nothing lost, nothing half-written
    assert writer.stats.failures == 3
    assert await writer.flush() == queued
    assert flaky.attempts == 4 and writer.pending == 0

    contributions = await rows(app, C)
    assert Counter(r["message_id"] for r in contributions) == {first: 1, reply: 1, "3": 1}
    edges = Counter((e["kind"], e["source_id"], e["target_id"]) for e in await rows(app, E))
    assert edges == {("reply", "bob", "alice"): 1, ("reaction", "carol", "alice"): 1}
    members = Counter(m["member_id"] for m in await rows(app, M))
    assert members == {"fran": 1, "alice": 1, "bob": 1, "carol": 1, "dana": 1}


async def test_the_writer_task_retries_on_its_own(app, session):
    writer = app.store.writer
    writer._engine = FlakyDatabase(writer._engine, failures=2)
    writer.retry_backoff = 0.001
    flushed = asyncio.Event()
    writer._on_flush = lambda count, seconds: flushed.set()
    message = await session.say("alice", "written once the database is back")
    writer._interval = 0.001  # the background task wakes at once and meets the outage
    writer._wake.set()
    await asyncio.wait_for(flushed.wait(), timeout=10)
    assert writer.stats.failures >= 2 and writer.pending == 0
    assert [r["message_id"] for r in await rows(app, C)] == [message]


async def test_past_the_bound_events_are_refused_loudly_never_half_written(app, session, caplog):
    writer = app.store.writer
    real = writer._engine
    writer._engine = FlakyDatabase(real, failures=10**6)  # the database is gone
    await session.say("alice", "first")
    await session.say("bob", "second")
    # Room for one more reply (carol's member row, her contribution and its two edges).
    writer._max_buffer = writer.pending + 4
    accepted = await session.reply("carol", "1", "a reply, cc @bob")
    assert writer.pending == writer.max_buffer
    refused = await session.reply("bob", "1", "this reply does not fit, cc @carol")
    assert writer.pending == writer.max_buffer  # nothing of it was queued

    not_recorded = [r for r in caplog.records if "NOT recorded" in r.getMessage()]
    assert len(not_recorded) == 1 and not_recorded[0].levelno == logging.ERROR
    assert f"MessagePosted {refused} in community console" in not_recorded[0].getMessage()
    assert (
        app.metrics.value(
            "hearth_events_not_recorded_total", type="MessagePosted", reason="buffer_full"
        )
        == 1
    )
    # A newcomer's command cannot even record the newcomer: the answer says so plainly.
    assert await session.command("erin", "/course me") == NOT_RECORDED

    writer._engine = real  # the database is back
    await writer.flush()
    contributions = {r["message_id"] for r in await rows(app, C)}
    assert {"1", "2", accepted} <= contributions and refused not in contributions
    edges = {
        (e["kind"], e["source_id"], e["target_id"], e["message_id"]) for e in await rows(app, E)
    }
    # The accepted reply landed whole: its contribution with both of its edges.
    assert edges == {("reply", "carol", "alice", accepted), ("mention", "carol", "bob", accepted)}


async def test_buffer_full_is_raised_by_the_writer_itself(app):
    writer = app.store.writer
    writer._max_buffer = 2
    row = {
        "community_id": "c",
        "kind": "reply",
        "source_id": "a",
        "target_id": "b",
        "message_id": "m",
        "detail": "",
        "weight": 1.0,
        "created_at": datetime.now(UTC),
    }
    writer.insert_ignore(E, row)
    with pytest.raises(BufferFull):
        writer.ensure_room(2)
    with pytest.raises(BufferFull):  # one event's rows: all of them or none
        writer.insert_ignore_together(
            [(E, {**row, "message_id": "x"}), (E, {**row, "message_id": "x", "kind": "mention"})]
        )
    assert writer.pending == 1
    writer.insert_ignore(E, {**row, "message_id": "m2"})
    with pytest.raises(BufferFull):
        writer.insert_ignore(E, {**row, "message_id": "m3"})
    assert writer.pending == 2
    await writer.flush()
    assert {e["message_id"] for e in await rows(app, E)} == {"m", "m2"}


# -- rows the database refuses -----------------------------------------------------------------


async def test_a_refused_row_is_repaired_or_dropped_loudly_and_never_blocks_the_rest(app, caplog):
    writer = app.store.writer
    now = datetime.now(UTC)

    def contribution(message_id: str, **extra):
        return {
            "community_id": "c1",
            "message_id": message_id,
            "member_id": "alice",
            "channel_id": "general",
            "thread_id": None,
            "reply_to_id": None,
            "reply_to_member_id": None,
            "created_at": now,
            "kinds": 1,
            "word_count": 3,
            "attachments": 0,
            "text": "plain",
            "edited_at": None,
            **extra,
        }

    writer.insert_ignore(C, contribution("ok-1"))
    writer.insert_ignore(C, contribution("nul", text="NUL\x00inside"))  # PostgreSQL refuses
    writer.insert_ignore(C, contribution("long", channel_id="x" * 150))  # longer than 100
    writer.insert_ignore(C, contribution("broken", created_at=None))  # NOT NULL: unrepairable
    writer.insert_ignore(C, contribution("ok-2"))
    await writer.flush()
    stored = {r["message_id"]: r for r in await rows(app, C)}
    assert set(stored) == {"ok-1", "nul", "long", "ok-2"}
    assert writer.stats.rejected == 1 and writer.pending == 0
    dropped = [r for r in caplog.records if "dropping it" in r.getMessage()]
    assert len(dropped) == 1 and "contribution" in dropped[0].getMessage()
    if app.store.engine.dialect.name == "postgresql":
        assert stored["nul"]["text"] == "NULinside"
        assert stored["long"]["channel_id"] == "x" * 100
        assert writer.stats.repaired == 2


async def test_a_producer_that_never_yields_is_slowed_not_dropped(tmp_path, clock):
    """Backpressure: a tight loop of events (no I/O between them) fills the buffer far beyond
    its bound unless the engine makes it wait for the writer; every event must land."""
    from bot.app import HearthApp
    from bot.events import MemberRef, MessagePosted, PlaceRef
    from tests.conftest import make_settings

    settings = make_settings(tmp_path / "bp.db", storage={"batch_size": 50, "max_buffer": 1000})
    app = await HearthApp.create(settings, clock=clock, migrate=False)
    try:
        place = PlaceRef("console", "console", "general")
        for i in range(3000):
            await app.engine.dispatch(
                MessagePosted(
                    at=clock.now(),
                    author=MemberRef("console", f"m{i % 7}", "m"),
                    place=place,
                    message_id=str(i),
                    text="hello there",
                    reply_to_id=str(i - 1) if i else None,
                )
            )
            assert app.store.writer.pending <= 1000
        total, _masks, _words = await app.store.kind_counts("console")
        assert total == 3000
    finally:
        await app.close()
