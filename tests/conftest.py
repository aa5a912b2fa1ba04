"""Shared fixtures: a Hearth app on a temporary SQLite file with a fake clock, and a console
session that drives it like a user. Set HEARTH_TEST_DATABASE_URL (or run .ci/run, which
starts PostgreSQL) to run the ``db_url`` parametrised scenarios against PostgreSQL too."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event

from bot.adapters.console import ConsoleSession
from bot.app import HearthApp
from bot.clock import FakeClock
from bot.commands import CommandSpec, Option
from bot.config import Settings

# aiosqlite logs every operation at DEBUG from its worker thread; a test that turns DEBUG on
# would otherwise have those lines hit a closed capture stream after it ends.
logging.getLogger("aiosqlite").setLevel(logging.INFO)

START = datetime(2026, 9, 7, 9, 0, tzinfo=UTC)  # a Monday


def make_settings(db_path, **sections) -> Settings:
    raw = {"storage": {"path": str(db_path)}}
    for key, value in sections.items():
        raw.setdefault(key, {}).update(value)
    return Settings.model_validate(raw)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    return os.environ.get("HEARTH_TEST_DATABASE_URL", PG_URL)


async def _pg_reachable(url: str) -> bool:
    import asyncpg

    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    try:
        conn = await asyncio.wait_for(asyncpg.connect(dsn), timeout=3)
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False
    await conn.close()
    return True


async def _pg_schema(url: str, schema: str, *, drop: bool) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        if drop:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        else:
            await conn.execute(f"CREATE SCHEMA {schema}")
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite"])
def backend(request) -> str:
    """Override in a test module with ``params=BACKENDS`` to run it on PostgreSQL too."""
    return request.param


BACKENDS = ["sqlite", "postgresql"]

#: The newest migration: the revision a new or upgraded database ends at.
MIGRATION_HEAD = "0010"


@contextmanager
def sent_statements(engine) -> Iterator[list[tuple[str, Any]]]:
    """The (statement, parameters) an async engine sends to its database inside the block,
    in order."""
    seen: list[tuple[str, Any]] = []

    def record(_conn, _cursor, statement, parameters, _context, _many):
        seen.append((statement, parameters))

    sync = engine.sync_engine
    event.listen(sync, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(sync, "before_cursor_execute", record)


@pytest.fixture
async def settings(tmp_path, backend) -> Settings:
    if backend == "sqlite":
        yield make_settings(tmp_path / "hearth.db")
        return
    url = postgres_url()
    if not await _pg_reachable(url):
        pytest.skip(f"PostgreSQL not reachable at {url} (run .ci/run to start it)")
    schema = "t_" + uuid.uuid4().hex[:12]
    await _pg_schema(url, schema, drop=False)
    try:
        yield Settings.model_validate({"storage": {"database_url": url, "pg_schema": schema}})
    finally:
        await _pg_schema(url, schema, drop=True)


@pytest.fixture
async def app(settings, clock):
    hearth = await HearthApp.create(settings, clock=clock, migrate=False)
    yield hearth
    await hearth.close()


@pytest.fixture
async def import_app(tmp_path, clock):
    """A Hearth app set up the way ``hearth import`` sets one up (see bot.importers)."""
    from bot.importers import open_import_app

    app = await open_import_app(make_settings(tmp_path / "hearth.db"), clock=clock, migrate=False)
    yield app
    await app.close()


@pytest.fixture
async def session(app) -> ConsoleSession:
    s = await ConsoleSession.open(app)
    await s.join("fran", facilitator=True)
    return s


# -- valid arguments for any command, built from its spec ----------------------------------------


def sample_value(option: Option) -> str:
    """A valid raw value for an option of any type (what a user would type)."""
    if option.type == "integer":
        return str(option.min_value if option.min_value is not None else 1)
    return {
        "date": "2026-09-14",
        "choice": option.choices[0] if option.choices else "",
        "string": "x",
        "text": "thanks a lot",
        "member": "@bob",
        "channel": "#general",
        "boolean": "on",
    }[option.type]


def required_line(spec: CommandSpec, **override: str) -> str:
    values = {o.name: override.get(o.name, sample_value(o)) for o in spec.options if o.required}
    return " ".join([spec.name, *(f"{k}:{v}" for k, v in values.items())])


def required_options(spec: CommandSpec) -> dict[str, str]:
    return {o.name: sample_value(o) for o in spec.options if o.required}
