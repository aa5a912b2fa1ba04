"""The batched writer: one flush per command, and upserts that do not split other tables'
batches. The writer's interval is a minute here, so only the test flushes."""

from __future__ import annotations

import asyncio
import contextvars
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from storage.repos import C, M
from tests.conftest import BACKENDS

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
        "created_at": AT,
        "kinds": 1,
        "word_count": 3,
        "attachments": 0,
        "text": None,
        "edited_at": None,
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
