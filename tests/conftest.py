"""Shared fixtures: a Hearth app on a temporary SQLite file with a fake clock, and a console
session that drives it like a user. Set HEARTH_TEST_DATABASE_URL (or run .ci/run, which
starts PostgreSQL) to run the ``db_url`` parametrised scenarios against PostgreSQL too."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from bot.adapters.console import ConsoleSession
from bot.app import HearthApp
from bot.clock import FakeClock
from bot.config import Settings

START = datetime(2026, 9, 7, 9, 0, tzinfo=UTC)  # a Monday


def make_settings(db_path, **sections) -> Settings:
    raw = {"storage": {"path": str(db_path)}}
    for key, value in sections.items():
        raw.setdefault(key, {}).update(value)
    return Settings.model_validate(raw)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return make_settings(tmp_path / "hearth.db")


@pytest.fixture
async def app(settings, clock):
    hearth = await HearthApp.create(settings, clock=clock, migrate=False)
    yield hearth
    await hearth.close()


@pytest.fixture
async def session(app) -> ConsoleSession:
    s = await ConsoleSession.open(app)
    await s.join("fran", facilitator=True)
    return s


def postgres_url() -> str | None:
    return os.environ.get("HEARTH_TEST_DATABASE_URL")
