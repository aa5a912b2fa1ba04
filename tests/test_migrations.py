"""Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL,
end on a single head, and upgrade an old (core-only) database without losing its rows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text

from storage.db import (
    MIGRATIONS,
    _alembic_config,
    current_revisions,
    make_engine,
    schema_change,
    upgrade,
)
from storage.queries import conversation_key
from storage.repos import C
from storage.schema import metadata
from tests.conftest import BACKENDS, MIGRATION_HEAD


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


def engine_for(settings):
    return make_engine(settings.storage.url(), schema=settings.storage.pg_schema)


def test_one_head():
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_heads() == [MIGRATION_HEAD]


async def _columns(engine) -> dict[str, set[str]]:
    def read(conn):
        inspector = inspect(conn)
        return {
            t: {c["name"] for c in inspector.get_columns(t)}
            for t in inspector.get_table_names()
            if t != "alembic_version"
        }

    async with engine.connect() as conn:
        return await conn.run_sync(read)


async def _indexes(engine) -> dict[str, set[tuple]]:
    """{table: {(index name, its columns, unique, partial)}} as the database reports them (not the
    indexes PostgreSQL keeps for unique constraints, which are constraints in the models)."""

    def read(conn):
        inspector = inspect(conn)
        return {
            t: {
                (
                    i["name"],
                    tuple(i["column_names"]),
                    bool(i["unique"]),
                    f"{conn.dialect.name}_where" in i.get("dialect_options", {}),
                )
                for i in inspector.get_indexes(t)
                if "duplicates_constraint" not in i
            }
            for t in inspector.get_table_names()
            if t != "alembic_version"
        }

    async with engine.connect() as conn:
        return await conn.run_sync(read)


async def test_migrations_build_the_model_schema(settings):
    engine = engine_for(settings)
    try:
        assert await upgrade(engine) == (set(), {MIGRATION_HEAD})
        assert await current_revisions(engine) == {MIGRATION_HEAD}
        assert await upgrade(engine) == ({MIGRATION_HEAD}, {MIGRATION_HEAD})
        migrated = await _columns(engine)
        tables = metadata().sorted_tables
        assert migrated == {t.name: {c.name for c in t.columns} for t in tables}
        # The indexes too: the queries' plans are written for them (tests/test_query_plans).
        where = f"{engine.dialect.name}_where"
        assert await _indexes(engine) == {
            t.name: {
                (
                    i.name,
                    tuple(c.name for c in i.columns),
                    bool(i.unique),
                    i.dialect_kwargs.get(where) is not None,
                )
                for i in t.indexes
            }
            for t in tables
        }
    finally:
        await engine.dispose()


async def test_an_old_schema_is_upgraded_with_its_rows(settings):
    engine = engine_for(settings)
    try:
        await upgrade(engine, "0001")
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO contribution (community_id, message_id, member_id, channel_id, "
                    "created_at, kinds, word_count, attachments) "
                    "VALUES ('c', 'm1', 'alice', 'general', :at, 1, 3, 0)"
                ),
                {"at": datetime(2026, 9, 7, 9, tzinfo=UTC).replace(tzinfo=None)},
            )
        tables_before = set(await _columns(engine))
        assert "nudge" not in tables_before
        before, after = await upgrade(engine)
        assert schema_change(before, after) == (
            f"migrated the schema from revision 0001 to {MIGRATION_HEAD}"
        )
        tables_after = set(await _columns(engine))
        assert {"nudge", "kudos", "slack_installation"} <= tables_after
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT message_id FROM contribution"))).all()
            # Rows from before the stored conversation key get theirs when read.
            keys = (await conn.execute(select(C.c.conversation_id, conversation_key()))).all()
        assert [r[0] for r in rows] == ["m1"]
        assert keys == [(None, "m1")]
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_postgres_sessions_run_without_jit(settings):
    engine = engine_for(settings)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SHOW jit"))).scalar_one() == "off"
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_postgres_sessions_get_work_mem_no_parallel_workers_and_custom_plans(app):
    async with app.store.engine.connect() as conn:
        show = {
            name: (await conn.execute(text(f"SHOW {name}"))).scalar_one()
            for name in ("work_mem", "max_parallel_workers_per_gather", "jit", "plan_cache_mode")
        }
    assert show == {
        "work_mem": "16MB",
        "max_parallel_workers_per_gather": "0",
        "jit": "off",
        "plan_cache_mode": "force_custom_plan",
    }


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_postgres_vacuums_new_contributions_after_fewer_inserts(settings):
    """Migration 0010: autovacuum reaches new contribution rows after 1% of the table rather
    than 20%, so the week's scans read the covering index alone; downgrading gives the
    server's default back; a server older than 13 is left alone."""
    engine = engine_for(settings)

    async def options() -> dict[str, list[str]]:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT relname, reloptions FROM pg_class "
                    "WHERE relnamespace = to_regnamespace(current_schema()) "
                    "AND relname IN ('contribution', 'edge', 'member')"
                )
            )
            return {name: list(opts or []) for name, opts in rows}

    try:
        await upgrade(engine)
        insert_scale = "autovacuum_vacuum_insert_scale_factor=0.01"
        assert await options() == {
            "contribution": [insert_scale],
            "edge": [],
            "member": [],
        }
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(_alembic_config(c), "0009"))
        assert await options() == {"contribution": [], "edge": [], "member": []}
        # PostgreSQL 12 has no such setting: there the migration passes without a change
        # rather than failing the whole upgrade.
        engine.sync_engine.dialect.server_version_info = (12, 20)
        assert await upgrade(engine) == ({"0009"}, {MIGRATION_HEAD})
        assert await options() == {"contribution": [], "edge": [], "member": []}
    finally:
        await engine.dispose()
