"""Timestamps read back from storage are the instants written, aware and in UTC, whichever
path parses them: the typed column's SQLite reader or :func:`storage.types.as_utc` for raw
text, aggregates and PostgreSQL's aware values."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, insert, select

from storage.types import AwareDateTime, as_utc, sqlite_text

moments = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones()
)


def _is_utc(value: datetime) -> bool:
    return value.tzinfo is UTC or value.utcoffset() == timedelta(0)


def _utc(value: datetime | None) -> datetime | None:
    # Compared in UTC: a local time in a DST gap or fold never equals another zone's
    # datetime (PEP 495), even for the same instant.
    return None if value is None else value.astimezone(UTC)


@given(moments)
def test_stored_text_parses_to_the_same_instant(moment):
    parsed = as_utc(sqlite_text(moment))
    assert parsed == _utc(moment) and _is_utc(parsed)


@given(moments)
def test_text_with_an_offset_and_aware_values_keep_their_instant(moment):
    for value in (moment.isoformat(), moment.isoformat(" "), moment, moment.astimezone(UTC)):
        parsed = as_utc(value)
        assert parsed == _utc(moment) and _is_utc(parsed)


def test_naive_values_and_dates_alone_are_read_as_utc():
    naive = datetime(2026, 11, 16, 12, 30)
    assert as_utc(naive) == naive.replace(tzinfo=UTC)
    # "+00:00" after a bare date reads as a time of day to fromisoformat; not here.
    assert as_utc(date(2026, 11, 16).isoformat()) == datetime(2026, 11, 16, tzinfo=UTC)
    assert as_utc("2026-11-16T12:00:00Z") == datetime(2026, 11, 16, 12, tzinfo=UTC)
    assert as_utc("2026-11-16 14:00:00+02:00") == datetime(2026, 11, 16, 12, tzinfo=UTC)
    assert as_utc(None) is None


def test_the_sqlite_column_reader_returns_aware_utc(tmp_path):
    table = Table(
        "t",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("at", AwareDateTime(), nullable=True),
    )
    engine = create_engine(f"sqlite:///{tmp_path / 't.db'}")
    table.metadata.create_all(engine)

    @hypothesis_settings(max_examples=50, deadline=None)
    @given(st.lists(st.none() | moments, min_size=1, max_size=5))
    def check(values):
        with engine.begin() as conn:
            conn.execute(table.delete())
            conn.execute(insert(table), [{"at": v} for v in values])
            read = conn.execute(select(table.c.at).order_by(table.c.id)).scalars().all()
        assert read == [_utc(v) for v in values]
        assert all(v is None or _is_utc(v) for v in read)

    try:
        check()
        # A fixed zone other than UTC is converted, not relabelled.
        plus_two = datetime(2026, 11, 16, 14, tzinfo=timezone(timedelta(hours=2)))
        with engine.begin() as conn:
            conn.execute(table.delete())
            conn.execute(insert(table), [{"at": plus_two}])
            (read,) = conn.execute(select(table.c.at)).scalars().all()
        assert read == plus_two and read.hour == 12 and _is_utc(read)
    finally:
        engine.dispose()


def test_the_asyncpg_column_reader_passes_utc_and_converts_the_rest():
    """asyncpg hands back timestamptz as aware UTC, which the reader passes as it is; a naive
    value or another zone (another driver's habit) still comes out as the same instant in
    UTC."""
    from sqlalchemy.dialects.postgresql import asyncpg

    read = AwareDateTime().result_processor(asyncpg.dialect(), None)
    utc = datetime(2026, 11, 16, 12, tzinfo=UTC)
    assert read(utc) is utc
    assert read(None) is None
    plus_two = datetime(2026, 11, 16, 14, tzinfo=timezone(timedelta(hours=2)))
    assert read(plus_two) == utc and read(plus_two).tzinfo is UTC
    assert read(datetime(2026, 11, 16, 12)) == utc


async def test_postgresql_reads_back_aware_utc_whatever_the_session_zone():
    """The reader trusts asyncpg to give UTC: checked against the server with a session
    zone far from UTC."""
    import asyncpg as driver

    from tests.conftest import _pg_reachable, postgres_url

    url = postgres_url()
    if not await _pg_reachable(url):
        pytest.skip(f"PostgreSQL not reachable at {url} (run .ci/run to start it)")
    conn = await driver.connect(
        url.replace("postgresql+asyncpg://", "postgresql://"),
        server_settings={"timezone": "Asia/Kathmandu"},
    )
    try:
        value = await conn.fetchval("SELECT '2026-11-16 12:00:00+00'::timestamptz")
    finally:
        await conn.close()
    assert value.tzinfo is UTC and value == datetime(2026, 11, 16, 12, tzinfo=UTC)
