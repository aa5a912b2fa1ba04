"""The batched writer: one flush per command, and upserts that do not split other tables'
batches. The writer's interval is a minute here, so only the test flushes."""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from storage import writer as writer_module
from storage.db import make_engine
from storage.repos import C, E, M
from storage.schema import metadata
from storage.writer import BatchWriter
from tests.conftest import BACKENDS, _pg_reachable, _pg_schema, postgres_url

AT = datetime(2026, 9, 7, 9, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
async def settings(settings):
    settings.storage.flush_ms = 60_000
    return settings


def contribution(message_id: str, member_id: str = "alice") -> dict:
    return {
        "community_id": "course",
        "message_id": message_id,
        "member_id": member_id,
        "channel_id": "general",
        "thread_id": None,
        "reply_to_id": None,
        "reply_to_member_id": None,
        "conversation_id": message_id,
        "created_at": AT,
        "kinds": 1,
        "word_count": 3,
        "attachments": 0,
        "text": None,
        "edited_at": None,
    }


def edge(message_id: str) -> dict:
    return {
        "community_id": "course",
        "kind": "reply",
        "source_id": "alice",
        "target_id": "bob",
        "message_id": message_id,
        "detail": "",
        "weight": 1.0,
        "created_at": AT,
    }


def member(member_id: str, name: str) -> dict:
    return {
        "community_id": "course",
        "member_id": member_id,
        "display_name": name,
        "is_bot": False,
        "is_facilitator": False,
        "joined_at": None,
        "left_at": None,
        "first_seen": AT,
        "timezone": None,
        "tracked": True,
        "reachable": True,
    }


async def test_a_command_flushes_once_and_still_reads_its_own_writes(app):
    writer = app.store.writer
    writer.insert_ignore(C, contribution("1"))

    async def another_member_posts(message_id: str) -> None:
        writer.insert_ignore(C, contribution(message_id, "bob"))

    with writer.read_scope():
        await app.store.flush()  # the command's first read: what came before is written
        assert writer.pending == 0
        # Meanwhile another event is handled in its own task (its own context).
        await asyncio.create_task(another_member_posts("2"), context=contextvars.Context())
        await app.store.flush()  # a later read of the same command does not wait for it
        assert writer.pending == 1
        writer.insert_ignore(C, contribution("3"))  # the command writes: it must read it back
        await app.store.flush()
        assert writer.pending == 0
    writer.insert_ignore(C, contribution("4"))
    await app.store.flush()  # outside a command every read flushes
    assert writer.pending == 0
    async with app.store.engine.connect() as conn:
        ids = (await conn.execute(select(C.c.message_id).order_by(C.c.message_id))).scalars()
        assert list(ids) == ["1", "2", "3", "4"]


async def test_an_upsert_does_not_split_another_tables_batch(app):
    writer = app.store.writer
    writer.insert_ignore(C, contribution("1"))
    writer.upsert(
        M, member("alice", "Alice"), keys=("community_id", "member_id"), overwrite=("display_name",)
    )
    writer.insert_ignore(C, contribution("2"))
    writer.upsert(
        M, member("bob", "Bob"), keys=("community_id", "member_id"), overwrite=("display_name",)
    )
    writer.insert_ignore(C, contribution("3"))
    # One executemany for the contributions, one for the members.
    assert [(op.table.name, len(op.rows)) for op in writer._ops] == [
        ("contribution", 3),
        ("member", 2),
    ]
    assert await writer.flush() == 5


async def test_same_table_order_is_kept_around_an_upsert(app):
    writer = app.store.writer
    keys = ("community_id", "member_id")
    writer.insert_ignore(M, member("alice", "first name"))
    writer.upsert(M, member("alice", "renamed"), keys=keys, overwrite=("display_name",))
    writer.insert_ignore(M, member("alice", "ignored: the row exists"))
    writer.upsert(M, member("bob", "Bob"), keys=keys, overwrite=("display_name",))
    writer.insert_ignore(M, member("bob", "ignored too"))
    await writer.flush()
    async with app.store.engine.connect() as conn:
        names = dict((await conn.execute(select(M.c.member_id, M.c.display_name))).all())
    assert names == {"alice": "renamed", "bob": "Bob"}


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_sqlite_flush_is_one_trip_to_the_driver_thread_per_table(app, monkeypatch):
    """Through SQLAlchemy each 1,000-row chunk cost three trips to aiosqlite's thread (cursor,
    execute, close), each waiting for the busy event loop; the writer now makes one per table,
    and the statements' values are prepared in that thread: multi-row VALUES inserts of one
    size, then the rest of the rows as one JSON insert."""
    import threading

    import aiosqlite

    writer = app.store.writer
    await writer.flush()
    calls: list[str] = []
    built_in: set[str] = set()
    statements: list[tuple[str, str, int]] = []
    real_execute = aiosqlite.Connection._execute
    real_write = writer_module._write_json

    async def counting_execute(self, fn, *args, **kwargs):
        calls.append(getattr(fn, "__name__", repr(fn)))
        return await real_execute(self, fn, *args, **kwargs)

    class Recording:  # the sqlite3 connection, as _write_json uses it
        def __init__(self, conn) -> None:
            self.conn = conn

        def getlimit(self, category: int) -> int:
            return self.conn.getlimit(category)

        def execute(self, sql: str, params):
            built_in.add(threading.current_thread().name)
            form = "VALUES" if " VALUES " in sql else "JSON"
            statements.append((sql.split()[2], form, len(params)))
            return self.conn.execute(sql, params)

    def _write_json(dbapi_conn, plan, rows):
        return real_write(Recording(dbapi_conn), plan, rows)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counting_execute)
    monkeypatch.setattr(writer_module, "_write_json", _write_json)
    monkeypatch.setattr(writer_module, "VALUES_ROWS", 1000)
    for i in range(3600):
        writer.insert_ignore(C, contribution(str(i), f"m{i % 7}"))
    for i in range(2500):
        writer.insert_ignore(E, edge(str(i)))
    assert await writer.flush() == 6100
    assert calls.count("_write_json") == 2  # one per table, whatever the number of chunks
    # The rest: the commit and the pool's reset of the returned connection.
    assert calls[2:] == ["commit", "rollback"], calls
    assert threading.current_thread().name not in built_in  # never on the event loop
    # Statements of 1,000 rows, and the rest of each table's rows as one JSON insert.
    width_c, width_e = len(contribution("1")), len(edge("1"))
    assert statements == [
        *[("contribution", "VALUES", 1000 * width_c)] * 3,
        ("contribution", "JSON", 1),
        *[("edge", "VALUES", 1000 * width_e)] * 2,
        ("edge", "JSON", 1),
    ]
    async with app.store.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(C))).scalar_one() == 3600
        assert (await conn.execute(select(func.count()).select_from(E))).scalar_one() == 2500


# -- SQLite writes through json_each store exactly what SQLAlchemy would --------------------

texts = st.one_of(
    st.none(),
    st.text(max_size=60),  # any code point but surrogates: controls, NUL, RTL, emoji...
    st.sampled_from(["", "'; DROP TABLE contribution; --", "\u202eevil", "😀" * 30, "a\x00b"]),
)
_moments = {"min_value": datetime(1, 1, 2), "max_value": datetime(9999, 12, 30)}
moments = st.one_of(
    st.datetimes(**_moments, timezones=st.timezones()),  # through the writer's callback
    # UTC, as every adapter gives: orjson's own text, turned into the stored text by the SQL
    st.datetimes(**_moments, timezones=st.just(UTC)),
    st.datetimes(**_moments, timezones=st.just(UTC)).map(lambda d: d.replace(microsecond=0)),
)
contribution_rows = st.fixed_dictionaries(
    {
        "community_id": st.text(min_size=1, max_size=20),
        "message_id": st.text(min_size=1, max_size=20),
        "member_id": st.text(min_size=1, max_size=20),
        "channel_id": st.text(max_size=20),
        "thread_id": texts,
        "reply_to_id": texts,
        "reply_to_member_id": texts,
        "conversation_id": texts,
        "created_at": moments,
        "kinds": st.integers(0, 31),
        "word_count": st.integers(0, 2**31),
        "attachments": st.integers(0, 100),
        "text": texts,
        "edited_at": st.none() | moments,
    }
)
edge_rows = st.fixed_dictionaries(
    {
        "community_id": st.text(min_size=1, max_size=20),
        "kind": st.sampled_from(["reply", "mention", "reaction", "kudos"]),
        "source_id": st.text(min_size=1, max_size=20),
        "target_id": st.text(min_size=1, max_size=20),
        "message_id": st.text(min_size=1, max_size=20),
        "detail": st.text(max_size=20),
        "weight": st.floats(-1e6, 1e6, allow_nan=False) | st.sampled_from([0.5, 1.0, 2.0]),
        "created_at": moments,
    }
)


@pytest.mark.parametrize("db", BACKENDS)
def test_json_inserts_store_what_sqlalchemy_stores(tmp_path, db, monkeypatch):
    """Two databases, one written through the JSON insert and one through SQLAlchemy's
    executemany, hold the same values (and on SQLite the same storage types), row for row.
    On SQLite the writer's statements of two rows take each pair as a multi-row VALUES
    insert, and an odd row left over as JSON, so both are compared."""
    if db == "sqlite":
        monkeypatch.setattr(writer_module, "VALUES_ROWS", 2)
        targets = {flag: (f"sqlite+aiosqlite:///{tmp_path / f'{flag}.db'}", "") for flag in (1, 0)}
    else:
        url = postgres_url()
        if not asyncio.run(_pg_reachable(url)):
            pytest.skip(f"PostgreSQL not reachable at {url} (run .ci/run to start it)")
        suffix = uuid.uuid4().hex[:10]
        targets = {flag: (url, f"t_json{flag}_{suffix}") for flag in (1, 0)}
        for _, schema in targets.values():
            asyncio.run(_pg_schema(url, schema, drop=False))

    async def write(rows_c, rows_e) -> list:
        stored = []
        for json_inserts, (url, schema) in targets.items():
            engine = make_engine(url, schema=schema)
            try:
                async with engine.begin() as conn:
                    await conn.run_sync(metadata().create_all)
                    for table in (C, E):
                        await conn.execute(table.delete())
                writer = BatchWriter(engine)
                writer._json_inserts = bool(json_inserts)
                writer.insert_many_ignore(C, rows_c)
                writer.insert_many_ignore(E, rows_e)
                await writer.flush()
                async with engine.connect() as conn:
                    stored.append([await read(conn, table) for table in (C, E)])
            finally:
                await engine.dispose()
        return stored

    async def read(conn, table) -> list:
        names = [c for c in table.c.keys() if c != "id"]
        if db == "sqlite":
            picks = ", ".join(f"{c}, typeof({c})" for c in names)
            sql = f"SELECT {picks} FROM {table.name} ORDER BY id"
            return (await conn.exec_driver_sql(sql)).all()
        query = select(*(table.c[c] for c in names)).order_by(table.c.id)
        return (await conn.execute(query)).all()

    @hypothesis_settings(max_examples=50, deadline=None)
    @given(st.lists(contribution_rows, max_size=6), st.lists(edge_rows, max_size=6))
    def check(rows_c, rows_e):
        through_json, through_sqlalchemy = asyncio.run(write(rows_c, rows_e))
        assert through_json == through_sqlalchemy

    try:
        check()
    finally:
        if db == "postgresql":
            for url, schema in targets.values():
                asyncio.run(_pg_schema(url, schema, drop=True))


async def test_a_refused_row_in_a_batch_is_found_and_dropped(app, backend):
    writer = app.store.writer
    assert writer._json_inserts  # the JSON insert finds the row at fault like executemany
    good = [contribution(str(i)) for i in range(10)]
    broken = contribution("broken") | {"member_id": None}  # NOT NULL
    for row in good[:5] + [broken] + good[5:]:
        writer.insert_ignore(C, row)
    assert await writer.flush() == 10
    assert writer.stats.rejected == 1
    async with app.store.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(C))).scalar_one() == 10


# -- the hot path's encoding, yields and conflict handling -----------------------------------


@pytest.mark.parametrize("dialect_name", ["sqlite", "postgresql"])
def test_contribution_and_edge_rows_are_encoded_by_orjson_like_the_standard_encoder(
    dialect_name,
):
    """orjson writes the rows' tuples as they are, UTC datetimes included (the SQL turns its
    text into the stored text), and calls back for other datetimes; what the insert stores
    is what the column-by-column path stores, and what JSON cannot hold (NaN, infinity, a
    naive datetime, bytes, a lone surrogate) sends the chunk the ordinary way."""
    from zoneinfo import ZoneInfo

    from sqlalchemy.dialects import postgresql, sqlite

    dialect = sqlite.dialect() if dialect_name == "sqlite" else postgresql.asyncpg.dialect()
    late = AT.replace(microsecond=5)
    rows = {C: [contribution("1"), contribution("2") | {"text": "ça 😀", "edited_at": late}]}
    rows[E] = [edge("1"), edge("2") | {"weight": 2, "created_at": late}]
    paris = late.astimezone(ZoneInfo("Europe/Paris"))
    for table, good in rows.items():
        plan = writer_module._json_plan(table, tuple(good[0]), dialect)
        assert plan.datetime_text is not None, f"{table.name} rows take the slow path"
        assert plan._all_utc(plan._tuples(good))
        elsewhere = good + [good[1] | {"created_at": paris}]
        assert not plan._all_utc(plan._tuples(elsewhere))  # the callback's text, converted
        for chunk in (good, elsewhere):
            direct, converted = plan.payload(chunk), plan._converted(chunk)
            assert direct is not None and converted is not None
            assert _stored(dialect_name, table, plan, direct) == _stored(
                dialect_name, table, plan, converted
            )
    plan = writer_module._json_plan(E, tuple(edge("1")), dialect)
    for bad in (float("nan"), float("inf"), -float("inf")):
        assert plan.payload([edge("1"), edge("2") | {"weight": bad}]) is None
    plan = writer_module._json_plan(C, tuple(contribution("1")), dialect)
    for field, bad in (
        ("created_at", AT.replace(tzinfo=None)),
        ("text", b"bytes"),
        ("text", "\ud800"),
        ("text", "a\x00b"),
        ("word_count", 2**70),
    ):
        assert plan.payload([contribution("1") | {field: bad}]) is None, (field, bad)
    assert plan.payload([contribution("1"), {"community_id": "course"}]) is None


def _stored(dialect_name: str, table, plan, payload: str) -> list:
    """What ``plan``'s insert stores from ``payload``: run on SQLite in memory; on PostgreSQL,
    whose ``::timestamptz`` reads any ISO text with an offset, the datetimes parsed."""
    if dialect_name == "postgresql":
        values = writer_module.json.loads(payload)
        for row in values:
            for index in plan.datetimes:
                if row[index] is not None:
                    row[index] = datetime.fromisoformat(row[index])
        return values
    from sqlalchemy import create_engine

    engine = create_engine("sqlite://")
    with engine.begin() as conn:
        metadata().create_all(conn)
        conn.exec_driver_sql(plan.sql, (payload,))
        names = ", ".join(c for c in table.c.keys() if c != "id")
        stored = conn.exec_driver_sql(f"SELECT {names} FROM {table.name} ORDER BY id").all()
    engine.dispose()
    assert stored  # the insert wrote the rows
    return [tuple(row) for row in stored]


@pytest.mark.parametrize(
    ("url", "yields_while_flushing"),
    [("postgresql+asyncpg://u@127.0.0.1:1/db", True), ("sqlite+aiosqlite://", False)],
)
async def test_a_producer_yields_every_few_events_while_a_postgresql_flush_waits(
    monkeypatch, url, yields_while_flushing
):
    """Without the yields the server sat idle between statements until the producer filled
    two batches; on SQLite the same yields measured slower (the GIL), so there it waits."""
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)  # never connects: nothing here flushes
    writer = BatchWriter(engine, batch_size=100)
    yields = 0
    real_sleep = asyncio.sleep

    async def counting_sleep(delay, *args):
        nonlocal yields
        yields += delay == 0
        await real_sleep(delay, *args)

    monkeypatch.setattr(writer_module.asyncio, "sleep", counting_sleep)
    writer._pending_rows = 10  # well under a batch
    for _ in range(64):
        await writer.backpressure()
    assert yields == 0  # nothing to write, nothing in flight: no loop turn per event
    async with writer._lock:  # a flush is in progress
        for _ in range(64):
            await writer.backpressure()
    expected = 64 // writer_module.YIELD_EVERY if yields_while_flushing else 0
    assert yields == expected
    writer._pending_rows = 150  # a batch is ready and no flush runs: let the writer start one
    await writer.backpressure()
    assert yields == expected + 1
    writer._pending_rows = 350  # the database falls behind: every few events while it writes
    async with writer._lock:
        for _ in range(64):
            await writer.backpressure()
    assert yields == expected + 1 + 64 // writer_module.YIELD_EVERY
    for _ in range(3):  # ... and on every event while no flush runs
        await writer.backpressure()
    assert yields == expected + 1 + 64 // writer_module.YIELD_EVERY + 3
    await engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_postgresql_copies_until_a_row_exists_then_skips_existing_rows(app):
    """COPY runs in a savepoint; a redelivered row undoes it and the batch is written again
    with INSERT .. ON CONFLICT DO NOTHING, which the table's next batches use at once."""
    import asyncpg
    from sqlalchemy import event

    writer = app.store.writer
    await writer.flush()
    statements: list[str] = []
    copies: list[int] = []
    real_copy = asyncpg.Connection.copy_records_to_table

    async def counting_copy(self, table_name, *, records, **kwargs):
        copies.append(len(records))
        return await real_copy(self, table_name, records=records, **kwargs)

    def record(conn, cursor, statement, *args):
        if "contribution" in statement or "SAVEPOINT" in statement:
            statements.append(" ".join(statement.split()))

    sync_engine = app.store.engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", record)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(asyncpg.Connection, "copy_records_to_table", counting_copy)
            for i in range(3):
                writer.insert_ignore(C, contribution(str(i)))
            await writer.flush()
            assert copies == [3]
            assert statements == ["SAVEPOINT sa_savepoint_1", "RELEASE SAVEPOINT sa_savepoint_1"]
            statements.clear()
            for i in range(2, 6):  # "2" again: a redelivery
                writer.insert_ignore(C, contribution(str(i)))
            assert await writer.flush() == 4
            assert copies == [3, 4]
            assert statements[1].startswith("ROLLBACK TO SAVEPOINT"), statements
            assert statements[2].endswith("ON CONFLICT DO NOTHING"), statements
            assert C in writer._conflict_at
            statements.clear()
            writer.insert_ignore(C, contribution("6"))
            await writer.flush()
            assert copies == [3, 4]  # no COPY for a while
            assert len(statements) == 1, statements  # and no savepoint
            assert statements[0].endswith("ON CONFLICT DO NOTHING"), statements
            # A minute later COPY is tried again.
            writer._conflict_at[C] -= writer_module.CONFLICT_MEMORY
            writer.insert_ignore(C, contribution("7"))
            await writer.flush()
            assert copies == [3, 4, 1]
    finally:
        event.remove(sync_engine, "before_cursor_execute", record)
    async with app.store.engine.connect() as conn:
        ids = (await conn.execute(select(C.c.message_id))).scalars().all()
    assert sorted(ids, key=int) == [str(i) for i in range(8)]


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_value_copy_refuses_is_written_the_way_the_json_insert_writes_it(app):
    """A NUL character (refused by the server) and a value of the wrong type (refused by
    asyncpg) undo the COPY; the JSON insert repairs the first row and drops the second."""
    writer = app.store.writer
    for row in (
        contribution("1"),
        contribution("2") | {"text": "a\x00b"},
        contribution("3") | {"word_count": "many"},
        contribution("4"),
    ):
        writer.insert_ignore(C, row)
    assert await writer.flush() == 3
    assert (writer.stats.repaired, writer.stats.rejected) == (1, 1)
    assert not writer._conflict_at
    async with app.store.engine.connect() as conn:
        rows = (await conn.execute(select(C.c.message_id, C.c.text))).all()
    assert sorted(rows) == [("1", None), ("2", "ab"), ("4", None)]


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_upserts_go_to_the_driver_thread_as_one_json_statement(
    app, tmp_path, monkeypatch
):
    """A course's members first appearing came as an executemany of upserts, which on SQLite
    waited for the GIL once a row while the event loop classified messages. They are one
    JSON statement now, and store what the executemany stores, repeated members included."""
    import aiosqlite

    keys = ("community_id", "member_id")
    overwrite = ("display_name", "is_facilitator")
    rows = [
        member(f"m{i}", f"name {i}") | {"is_facilitator": i % 3 == 0, "timezone": None}
        for i in range(40)
    ]
    rows += [member("m1", "renamed"), member("m2", "renamed") | {"is_facilitator": True}]

    async def stored(json_inserts: bool) -> list:
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / f'{json_inserts}.db'}")
        try:
            async with engine.begin() as conn:
                await conn.run_sync(metadata().create_all)
            writer = BatchWriter(engine)
            writer._json_inserts = json_inserts
            writer.insert_ignore(M, member("m3", "first") | {"first_seen": AT.replace(year=2025)})
            await writer.flush()
            for row in rows:
                writer.upsert(M, row, keys=keys, overwrite=overwrite)
            assert await writer.flush() == len(rows)
            async with engine.connect() as conn:
                names = [c for c in M.c.keys() if c != "id"]
                picks = ", ".join(f"{c}, typeof({c})" for c in names)
                sql = f"SELECT {picks} FROM member ORDER BY member_id"
                return (await conn.exec_driver_sql(sql)).all()
        finally:
            await engine.dispose()

    calls: list[str] = []
    real_execute = aiosqlite.Connection._execute

    async def counting_execute(self, fn, *args, **kwargs):
        calls.append(getattr(fn, "__name__", repr(fn)))
        return await real_execute(self, fn, *args, **kwargs)

    through_sqlalchemy = await stored(False)
    monkeypatch.setattr(aiosqlite.Connection, "_execute", counting_execute)
    through_json = await stored(True)
    assert through_json == through_sqlalchemy
    assert calls.count("_write_json") == 2  # the insert, then all the upserts at once
    assert "executemany" not in calls
    by_id = {row[2]: row for row in through_json}
    assert by_id["m1"][4] == "renamed" and by_id["m2"][8] == 1  # display_name, facilitator


async def test_the_gil_changes_hands_quickly_only_while_a_sqlite_flush_runs(app, backend):
    """During a SQLite flush the switch interval is ``FLUSH_SWITCH_INTERVAL`` (aiosqlite's
    thread waits for the GIL at each step); before and after it is what it was. PostgreSQL's
    flushes run on the event loop and leave it alone."""
    import sys

    writer = app.store.writer
    await writer.flush()
    before = sys.getswitchinterval()
    seen: list[float] = []
    real = writer._execute

    async def execute(conn, op):
        seen.append(sys.getswitchinterval())
        return await real(conn, op)

    writer._execute = execute
    writer.insert_ignore(C, contribution("handoff"))
    assert await writer.flush() == 1
    expected = writer_module.FLUSH_SWITCH_INTERVAL if backend == "sqlite" else before
    assert seen == [pytest.approx(min(expected, before))]
    assert sys.getswitchinterval() == before


def test_overlapping_handoffs_restore_the_interval_once_the_last_ends():
    import sys

    before = sys.getswitchinterval()
    first, second = writer_module._quick_handoff(), writer_module._quick_handoff()
    first.__enter__()
    second.__enter__()
    short = pytest.approx(min(before, writer_module.FLUSH_SWITCH_INTERVAL))
    assert sys.getswitchinterval() == short
    first.__exit__(None, None, None)  # the first writer's flush ends while the second runs
    assert sys.getswitchinterval() == short
    second.__exit__(None, None, None)
    assert sys.getswitchinterval() == before
