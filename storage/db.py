"""Database engines: SQLite (aiosqlite, WAL) by default, anything SQLAlchemy speaks otherwise."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from storage.schema import metadata

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def redact(url: str) -> str:
    """The URL with any password hidden, for logs and error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a broken URL still must not leak
        return "<unparseable database url>"


def make_engine(
    url: str, *, echo: bool = False, schema: str = "", work_mem: str = ""
) -> AsyncEngine:
    """Create an async engine; SQLite gets WAL, a busy timeout and NORMAL sync; PostgreSQL
    sessions get ``schema`` as their search path and ``work_mem`` (``StorageSettings``)."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
            cursor = dbapi_conn.cursor()
            # WAL lets readers (reports, commands) run while the writer task commits, and
            # lets two bot processes share one file; the busy timeout makes them wait their turn.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    # JIT compilation pays off for long analytic queries, not for a bot's: on a million
    # contributions PostgreSQL compiled the quiet-member scan for 300 ms of its 1.2 s (its
    # cost estimate crossed jit_above_cost) before running it.
    # Nor do parallel workers: Hearth already runs a job's statements side by side, one
    # connection each, so workers only add their start-up and more processes than cores.
    # The weekly summary's statements took 216 ms without them against 234 ms with them
    # (1,000,000 contributions, 2 cores, three runs each).
    # And every statement is planned for its own values: asyncpg prepares each statement
    # once per connection, and after five runs PostgreSQL may switch it to one generic plan
    # for every community and window, whether a course has ten members or ten thousand. On
    # a million contributions, from the sixth run on, the generic plans took the busiest
    # threads from 62 ms to 96 and the open questions from 104 ms to 118 (medians of 12).
    server_settings = {
        "jit": "off",
        "max_parallel_workers_per_gather": "0",
        "plan_cache_mode": "force_custom_plan",
    }
    if schema:
        server_settings["search_path"] = schema
    if work_mem:
        server_settings["work_mem"] = work_mem
    connect_args = {"server_settings": server_settings}
    return create_async_engine(
        url,
        echo=echo,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        connect_args=connect_args,
    )


def _alembic_config(connection):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


async def upgrade(engine: AsyncEngine, revision: str = "heads") -> tuple[set[str], set[str]]:
    """Apply Alembic migrations up to ``revision`` (all heads by default); returns the schema's
    revisions before and after (an empty set before: there was no schema)."""
    from alembic import command

    def _run(connection) -> tuple[set[str], set[str]]:
        before = _heads(connection)
        command.upgrade(_alembic_config(connection), revision)
        return before, _heads(connection)

    async with engine.begin() as conn:
        return await conn.run_sync(_run)


def schema_change(before: set[str], after: set[str]) -> str:
    """What an upgrade did, in words: created, migrated (from, to) or nothing to do."""
    now = ", ".join(sorted(after))
    if not before:
        return f"created the schema (revision {now})"
    if before == after:
        return f"already up to date (revision {now})"
    return f"migrated the schema from revision {', '.join(sorted(before))} to {now}"


async def current_revisions(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return await conn.run_sync(_heads)


def _heads(connection) -> set[str]:
    """The schema's Alembic revisions (empty: no schema yet)."""
    from alembic.runtime.migration import MigrationContext

    return set(MigrationContext.configure(connection).get_current_heads())


async def create_all(engine: AsyncEngine) -> None:
    """Create tables straight from the models (tests); production uses :func:`upgrade`."""
    async with engine.begin() as conn:
        await conn.run_sync(metadata().create_all)
