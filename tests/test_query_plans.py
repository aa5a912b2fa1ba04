"""SQLite keeps the plans the summary's queries were written for, on the schema the
migrations build, before and after ``ANALYZE`` (which a DBA, or ``PRAGMA optimize``, may run
at any time).

A plan is a property of the data's shape as much as of the query: the open-questions query
once walked the time index over every later message for each question asked inside a thread
(a Slack course, where every reply is in a thread, made the weekly summary take minutes), and
after ``ANALYZE`` the old thread index looked so unselective that both thread tests became
full scans. Only the plan shows this on a test-sized database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, text

from storage import summary_queries as sq
from storage.db import make_engine, upgrade
from storage.repos import C, Store
from storage.writer import BatchWriter
from tests.conftest import sent_statements

NOW = datetime(2026, 11, 16, 12, tzinfo=UTC)
WINDOW = NOW - timedelta(days=7)


def _rows(n: int) -> list[dict]:
    """A Slack-like week and the week before: every third message opens a thread, the two
    after it are posted in it, questions among both."""
    rows = []
    for i in range(n):
        root = i - i % 3
        rows.append(
            {
                "community_id": "plans",
                "message_id": f"m{i}",
                "member_id": f"u{i % 17}",
                "channel_id": "general",
                "thread_id": None if i == root else f"m{root}",
                "reply_to_id": None if i == root else f"m{root}",
                "reply_to_member_id": None if i == root else f"u{root % 17}",
                "created_at": NOW - timedelta(minutes=10 * (n - i)),
                "kinds": sq.QUESTION_BIT if i % 2 else 1,
                "word_count": 5,
                "attachments": 0,
            }
        )
    return rows


@pytest.fixture
async def store(tmp_path):
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'plans.db'}")
    await upgrade(engine)
    async with engine.begin() as conn:
        await conn.execute(insert(C), _rows(3000))
    yield Store(engine, BatchWriter(engine))
    await engine.dispose()


async def _plans(store: Store, run) -> tuple[object, list[list[str]]]:
    """What ``run()`` returns, and EXPLAIN QUERY PLAN of each SELECT it really sends."""
    with sent_statements(store.engine) as sent:
        result = await run()
    seen = [
        (statement, parameters)
        for statement, parameters in sent
        if statement.lstrip().upper().startswith(("SELECT", "WITH"))
    ]
    plans = []
    async with store.engine.connect() as conn:
        for statement, parameters in seen:
            plan = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            plans.append([row[3] for row in plan])
    return result, plans


async def _plan_of_open_questions(store: Store) -> list[str]:
    (count, _oldest), [plan] = await _plans(
        store, lambda: sq.open_questions(store, "plans", WINDOW, NOW, exclude_authors={"u0"})
    )
    assert count > 0
    return plan


def _thread_lookups(plan: list[str]) -> list[str]:
    """The plan lines of the two thread tests (the correlated subqueries over ``r``)."""
    return [line for line in plan if line.split(" USING")[0] in ("SEARCH r", "SCAN r")]


async def _analyze(store: Store) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(text("ANALYZE"))


ANALYZED = pytest.mark.parametrize("analyzed", [False, True], ids=["no stats", "after ANALYZE"])


@ANALYZED
async def test_open_questions_look_threads_up_by_thread_and_time(store, analyzed):
    if analyzed:
        await _analyze(store)
    plan = await _plan_of_open_questions(store)
    lookups = _thread_lookups(plan)
    assert len(lookups) == 2, plan
    for line in lookups:
        assert line.startswith("SEARCH r USING INDEX ix_contribution_thread_time "), plan
        assert "thread_id=?" in line, plan


@ANALYZED
async def test_the_weekly_window_scans_read_the_time_index_alone(store, analyzed):
    """The days, the week before, the busiest conversations and the open questions each
    scan the week's range: from the covering time index, without a lookup of each row in
    the table."""
    if analyzed:
        await _analyze(store)

    async def run():
        await sq.daily_counts(store, "plans", [WINDOW - timedelta(days=7), WINDOW], NOW)
        await sq.busiest_threads(store, "plans", WINDOW, NOW)
        await sq.open_questions(store, "plans", WINDOW, NOW)

    _, plans = await _plans(store, run)
    assert len(plans) == 3
    for plan in plans:
        scans = [line for line in plan if "created_at>? AND created_at<?" in line]
        assert scans, plan
        for line in scans:
            assert "USING COVERING INDEX ix_contribution_time " in line, plan
