"""Async repositories over the core tables.

Small, explicit queries; reads flush the batched writer first so they see every event that
was dispatched before them.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.models import (
    Channel,
    Community,
    Contribution,
    Edge,
    JobClaim,
    Member,
    MemberPref,
    SentMessage,
)
from storage.schema import member_columns
from storage.writer import BatchWriter

C = Contribution.__table__
E = Edge.__table__
M = Member.__table__
P = MemberPref.__table__
CH = Channel.__table__
CM = Community.__table__
J = JobClaim.__table__
S = SentMessage.__table__


class Tables:
    """The core tables, for code that queues rows on the writer."""

    member = M
    contribution = C
    edge = E


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Store:
    """All core repositories over one engine and one batched writer."""

    def __init__(self, engine: AsyncEngine, writer: BatchWriter) -> None:
        self.engine = engine
        self.writer = writer
        self.owner = process_name()
        self.tables = Tables()
        if engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        self.dialect_insert = dialect_insert

    async def flush(self) -> None:
        """Make queued writes visible before a read (once per command: see the writer)."""
        await self.writer.flush_for_read()

    # -- communities ------------------------------------------------------------------------

    async def get_community(self, community_id: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(CM).where(CM.c.id == community_id))).mappings().first()
        return dict(row) if row else None

    async def ensure_community(
        self, community_id: str, platform: str, *, name: str, timezone: str, now: datetime
    ) -> dict[str, Any]:
        existing = await self.get_community(community_id)
        if existing is not None:
            return existing
        async with self.engine.begin() as conn:
            await conn.execute(
                self.dialect_insert(CM)
                .values(
                    id=community_id,
                    platform=platform,
                    name=name,
                    timezone=timezone,
                    cohort=1,
                    settings_json="{}",
                    created_at=now,
                )
                .on_conflict_do_nothing()
            )
        return await self.get_community(community_id)  # type: ignore[return-value]

    async def communities(self) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(CM).where(CM.c.archived_at.is_(None)))).mappings()
            return [dict(r) for r in rows]

    async def update_community(self, community_id: str, **values: Any) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(CM).where(CM.c.id == community_id).values(**values))

    async def community_settings(self, community_id: str) -> dict[str, Any]:
        row = await self.get_community(community_id)
        return json.loads(row["settings_json"]) if row else {}

    async def save_community_settings(self, community_id: str, settings: dict[str, Any]) -> None:
        await self.update_community(
            community_id, settings_json=json.dumps(settings, sort_keys=True, default=str)
        )

    # -- members ----------------------------------------------------------------------------

    async def upsert_member(self, community_id: str, member_id: str, **values: Any) -> None:
        """Insert a member or update the given fields (display name, facilitator flag...)."""
        now = values.pop("now")
        row = {
            "community_id": community_id,
            "member_id": member_id,
            "display_name": values.get("display_name", ""),
            "is_bot": values.get("is_bot", False),
            "is_facilitator": values.get("is_facilitator", False),
            "joined_at": values.get("joined_at"),
            "first_seen": now,
            "tracked": True,
            "reachable": True,
        }
        stmt = self.dialect_insert(M).values(**row)
        changes = {k: v for k, v in values.items() if k in M.c and v is not None}
        if changes:
            stmt = stmt.on_conflict_do_update(
                index_elements=["community_id", "member_id"], set_=changes
            )
        else:
            stmt = stmt.on_conflict_do_nothing()
        async with self.engine.begin() as conn:
            await conn.execute(stmt)

    async def get_member(self, community_id: str, member_id: str) -> dict[str, Any] | None:
        await self.flush()
        async with self.engine.connect() as conn:
            row = (
                (
                    await conn.execute(
                        select(M).where(
                            M.c.community_id == community_id, M.c.member_id == member_id
                        )
                    )
                )
                .mappings()
                .first()
            )
        return dict(row) if row else None

    async def members_by_id(
        self, community_id: str, member_ids: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        """{member id: member row} for those of ``member_ids`` the community has."""
        await self.flush()
        out: dict[str, dict[str, Any]] = {}
        async with self.engine.connect() as conn:
            for chunk in in_chunks(member_ids):
                query = select(M).where(M.c.community_id == community_id, M.c.member_id.in_(chunk))
                rows = (await conn.execute(query)).mappings()
                out.update((r["member_id"], dict(r)) for r in rows)
        return out

    async def members(self, community_id: str, *, include_bots: bool = False) -> list[dict]:
        await self.flush()
        query = select(M).where(M.c.community_id == community_id).order_by(M.c.display_name)
        if not include_bots:
            query = query.where(M.c.is_bot.is_(False))
        async with self.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings()]

    async def find_member(self, community_id: str, token: str) -> dict[str, Any] | None:
        """Resolve ``@name``, ``<@id>``, ``<@id|name>`` or a bare id/name to a member row."""
        token = token.strip()
        for prefix, suffix in (("<@!", ">"), ("<@", ">")):
            if token.startswith(prefix) and token.endswith(suffix):
                token = token[len(prefix) : -len(suffix)].split("|", 1)[0]
                break
        token = token.lstrip("@")
        if not token:
            return None
        row = await self.get_member(community_id, token)
        if row:
            return row
        async with self.engine.connect() as conn:
            row = (
                (
                    await conn.execute(
                        select(M).where(
                            M.c.community_id == community_id,
                            func.lower(M.c.display_name) == token.lower(),
                        )
                    )
                )
                .mappings()
                .first()
            )
        return dict(row) if row else None

    async def facilitator_ids(self, community_id: str) -> set[str]:
        await self.flush()
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(M.c.member_id).where(
                    M.c.community_id == community_id, M.c.is_facilitator.is_(True)
                )
            )
            return {r[0] for r in rows}

    async def set_member_fields(self, community_id: str, member_id: str, **values: Any) -> None:
        await self.flush()  # the member's row may still be queued on the writer
        async with self.engine.begin() as conn:
            await conn.execute(
                update(M)
                .where(M.c.community_id == community_id, M.c.member_id == member_id)
                .values(**values)
            )

    # -- channels ---------------------------------------------------------------------------

    async def upsert_channel(self, community_id: str, channel_id: str, name: str = "") -> None:
        stmt = self.dialect_insert(CH).values(
            community_id=community_id, channel_id=channel_id, name=name, tracked=True
        )
        if name:
            stmt = stmt.on_conflict_do_update(
                index_elements=["community_id", "channel_id"], set_={"name": name}
            )
        else:
            stmt = stmt.on_conflict_do_nothing()
        async with self.engine.begin() as conn:
            await conn.execute(stmt)

    async def find_channel(self, community_id: str, name_or_id: str) -> dict[str, Any] | None:
        """The recorded channel with this id, else the one with this name (any case)."""
        query = (
            select(CH)
            .where(
                CH.c.community_id == community_id,
                or_(CH.c.channel_id == name_or_id, func.lower(CH.c.name) == name_or_id.lower()),
            )
            # An id wins over a name: a channel may be named like another one's id.
            .order_by(case((CH.c.channel_id == name_or_id, 0), else_=1))
            .limit(1)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return dict(row) if row else None

    async def channels(self, community_id: str) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(CH).where(CH.c.community_id == community_id))
            return [dict(r) for r in rows.mappings()]

    # -- contributions ----------------------------------------------------------------------

    async def contribution(self, community_id: str, message_id: str) -> dict[str, Any] | None:
        await self.flush()
        async with self.engine.connect() as conn:
            row = (
                (
                    await conn.execute(
                        select(C).where(
                            C.c.community_id == community_id, C.c.message_id == message_id
                        )
                    )
                )
                .mappings()
                .first()
            )
        return dict(row) if row else None

    async def message_origin(
        self, community_id: str, message_id: str
    ) -> tuple[str, str | None] | None:
        """(author, thread id) of a stored message, without flushing the writer.

        The hot path keeps recently queued messages in memory, so it only asks the database
        about older ones; flushing here would turn every such lookup into a tiny commit.
        """
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(C.c.member_id, C.c.thread_id).where(
                        C.c.community_id == community_id, C.c.message_id == message_id
                    )
                )
            ).first()
        return (row[0], row[1]) if row else None

    async def last_contribution_at(self, community_id: str, *, until: datetime) -> datetime | None:
        """When the community's latest contribution at or before ``until`` was posted."""
        await self.flush()
        async with self.engine.connect() as conn:
            return (
                await conn.execute(
                    select(func.max(C.c.created_at)).where(
                        C.c.community_id == community_id, C.c.created_at <= until
                    )
                )
            ).scalar_one()

    async def last_message_id(self, community_id: str, channel_id: str) -> str | None:
        """Newest stored message in a channel (catch-up after downtime starts after it)."""
        await self.flush()
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(C.c.message_id)
                    .where(C.c.community_id == community_id, C.c.channel_id == channel_id)
                    .order_by(C.c.created_at.desc(), C.c.id.desc())
                    .limit(1)
                )
            ).first()
        return row[0] if row else None

    async def kind_counts(
        self,
        community_id: str,
        *,
        member_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        channel_id: str | None = None,
    ) -> tuple[int, dict[int, int], int]:
        """(messages, {kinds mask: count}, words) for a member or the whole community, in one
        channel (with its threads), one thread, or everywhere."""
        await self.flush()
        conds = [C.c.community_id == community_id]
        if member_id is not None:
            conds.append(C.c.member_id == member_id)
        if channel_id is not None:
            conds.append(in_channel(channel_id))
        if since is not None:
            conds.append(C.c.created_at >= since)
        if until is not None:
            conds.append(C.c.created_at < until)
        query = (
            select(C.c.kinds, func.count(), func.coalesce(func.sum(C.c.word_count), 0))
            .where(and_(*conds))
            .group_by(C.c.kinds)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        masks = {int(r[0]): int(r[1]) for r in rows}
        return sum(masks.values()), masks, sum(int(r[2]) for r in rows)

    async def per_member_counts(
        self, community_id: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> dict[str, dict[int, int]]:
        """{member: {mask: count}} in one grouped query."""
        await self.flush()
        conds = [C.c.community_id == community_id]
        if since is not None:
            conds.append(C.c.created_at >= since)
        if until is not None:
            conds.append(C.c.created_at < until)
        query = (
            select(C.c.member_id, C.c.kinds, func.count())
            .where(and_(*conds))
            .group_by(C.c.member_id, C.c.kinds)
        )
        out: dict[str, dict[int, int]] = {}
        async with self.engine.connect() as conn:
            for member_id, mask, count in (await conn.execute(query)).all():
                out.setdefault(member_id, {})[int(mask)] = int(count)
        return out

    async def active_members(
        self, community_id: str, *, since: datetime, channel_id: str | None = None
    ) -> tuple[int, int]:
        """(members with a contribution since ``since``, in ``channel_id`` if given, all
        members), bots left out.

        One statement of two scalars: an index seek per member on (community, member, time)
        instead of grouping the window's contributions, so it costs the same however busy the
        window was.
        """
        await self.flush()
        where = () if channel_id is None else (in_channel(channel_id),)
        posted = (
            select(C.c.id)
            .where(
                C.c.community_id == M.c.community_id,
                C.c.member_id == M.c.member_id,
                C.c.created_at >= since,
                *where,
            )
            .exists()
        )
        people = and_(M.c.community_id == community_id, M.c.is_bot.is_(False))
        query = select(
            select(func.count()).where(people, posted).scalar_subquery(),
            select(func.count()).where(people).scalar_subquery(),
        )
        async with self.engine.connect() as conn:
            active, total = (await conn.execute(query)).one()
        return int(active), int(total)

    async def edge_counts(self, community_id: str, member_id: str, since: datetime) -> dict:
        await self.flush()
        async with self.engine.connect() as conn:
            given = (
                await conn.execute(
                    select(E.c.kind, func.count())
                    .where(
                        E.c.community_id == community_id,
                        E.c.source_id == member_id,
                        E.c.created_at >= since,
                    )
                    .group_by(E.c.kind)
                )
            ).all()
            received = (
                await conn.execute(
                    select(E.c.kind, func.count())
                    .where(
                        E.c.community_id == community_id,
                        E.c.target_id == member_id,
                        E.c.created_at >= since,
                    )
                    .group_by(E.c.kind)
                )
            ).all()
        return {"given": dict(given), "received": dict(received)}

    async def delete_text_before(self, cutoff: datetime) -> int:
        """Retention: clear stored message text older than the cutoff."""
        await self.flush()
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(C).where(C.c.text.is_not(None), C.c.created_at < cutoff).values(text=None)
            )
            return result.rowcount or 0

    # -- preferences ------------------------------------------------------------------------

    async def get_pref(self, community_id: str, member_id: str, key: str) -> str | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(P.c.value).where(
                        P.c.community_id == community_id,
                        P.c.member_id == member_id,
                        P.c.key == key,
                    )
                )
            ).first()
        return row[0] if row else None

    async def set_pref(self, community_id: str, member_id: str, key: str, value: str) -> None:
        stmt = (
            self.dialect_insert(P)
            .values(community_id=community_id, member_id=member_id, key=key, value=value)
            .on_conflict_do_update(
                index_elements=["community_id", "member_id", "key"], set_={"value": value}
            )
        )
        async with self.engine.begin() as conn:
            await conn.execute(stmt)

    async def prefs(self, community_id: str, key: str) -> dict[str, str]:
        """{member: value} for one key across a community."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(P.c.member_id, P.c.value).where(
                    P.c.community_id == community_id, P.c.key == key
                )
            )
            return {r[0]: r[1] for r in rows}

    async def prefs_of(
        self, community_id: str, member_ids: Sequence[str]
    ) -> dict[str, dict[str, str]]:
        """{member id: {key: value}} of the preferences of ``member_ids`` (members without
        any are left out)."""
        out: dict[str, dict[str, str]] = {}
        async with self.engine.connect() as conn:
            for chunk in in_chunks(member_ids):
                rows = await conn.execute(
                    select(P.c.member_id, P.c.key, P.c.value).where(
                        P.c.community_id == community_id, P.c.member_id.in_(chunk)
                    )
                )
                for member_id, key, value in rows:
                    out.setdefault(member_id, {})[key] = value
        return out

    async def member_prefs(self, community_id: str, member_id: str) -> dict[str, str]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(P.c.key, P.c.value).where(
                    P.c.community_id == community_id, P.c.member_id == member_id
                )
            )
            return {r[0]: r[1] for r in rows}

    # -- scheduler claims -------------------------------------------------------------------

    async def claim(
        self, job: str, community_id: str, period: str, *, now: datetime, lease: timedelta
    ) -> bool:
        """Claim one run. True if this process may act; False if it ran or runs elsewhere.

        A running claim whose lease expired (its process died) is taken over atomically.
        """
        row = {
            "job": job,
            "community_id": community_id,
            "period": period,
            "status": "running",
            "claimed_by": self.owner,
            "claimed_at": now,
            "expires_at": now + lease,
        }
        try:
            async with self.engine.begin() as conn:
                await conn.execute(J.insert().values(**row))
            return True
        except IntegrityError:
            pass
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(J)
                .where(
                    J.c.job == job,
                    J.c.community_id == community_id,
                    J.c.period == period,
                    J.c.status == "running",
                    J.c.expires_at < now,
                )
                .values(claimed_by=self.owner, claimed_at=now, expires_at=now + lease)
            )
            return (result.rowcount or 0) == 1

    async def finish_claim(self, job: str, community_id: str, period: str, now: datetime) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(J)
                .where(J.c.job == job, J.c.community_id == community_id, J.c.period == period)
                .values(status="done", done_at=now)
            )

    async def release_claim(self, job: str, community_id: str, period: str) -> None:
        """Give a run back (shutdown mid-run) so the next start does it."""
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(J).where(
                    J.c.job == job,
                    J.c.community_id == community_id,
                    J.c.period == period,
                    J.c.status == "running",
                    J.c.claimed_by == self.owner,
                )
            )

    async def runs_between(
        self, job: str, community_id: str, first: str, last: str, *, now: datetime
    ) -> list[str]:
        """Periods of ``job`` for the community from ``first`` to ``last`` (inclusive) that
        ran or run now: done, or claimed by a process whose lease holds. Scheduled periods
        are UTC instants that sort as text; manual runs ("manual:...") sort after them and
        are left out by the bounds."""
        query = select(J.c.period).where(
            J.c.job == job,
            J.c.community_id == community_id,
            J.c.period >= first,
            J.c.period <= last,
            or_(J.c.status == "done", J.c.expires_at >= now),
        )
        async with self.engine.connect() as conn:
            return list((await conn.execute(query)).scalars())

    async def claims(self, job: str | None = None) -> list[dict[str, Any]]:
        query = select(J).order_by(J.c.id)
        if job is not None:
            query = query.where(J.c.job == job)
        async with self.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings()]

    # -- sent ledger ------------------------------------------------------------------------

    async def claim_send(
        self, dedupe_key: str, *, community_id: str, member_id: str | None, now: datetime
    ) -> bool:
        """Record an outbound message before sending it; False if it was already sent."""
        stmt = (
            self.dialect_insert(S)
            .values(
                dedupe_key=dedupe_key,
                community_id=community_id,
                member_id=member_id,
                status="claimed",
                created_at=now,
            )
            .on_conflict_do_nothing()
        )
        async with self.engine.begin() as conn:
            result = await conn.execute(stmt)
            return (result.rowcount or 0) == 1

    async def mark_sent(self, dedupe_key: str, status: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(S).where(S.c.dedupe_key == dedupe_key).values(status=status))

    # -- erasure ----------------------------------------------------------------------------

    async def erase_member(self, community_id: str | None, member_id: str) -> dict[str, int]:
        """Delete or clear every row that refers to the member, across the whole schema.

        ``community_id=None`` erases the member from every community (platform ids are global).
        """
        await self.flush()
        removed: dict[str, int] = {}
        async with self.engine.begin() as conn:
            for table, column, action in member_columns():
                params = {"m": member_id}
                where = f"{column} = :m"
                if community_id is not None:
                    # Rows written without a community (older ledger rows) belong to nobody
                    # else: they go with the member too.
                    where += " AND community_id IN (:c, '')"
                    params["c"] = community_id
                if action == "null":
                    sql = f"UPDATE {table} SET {column} = NULL WHERE {where}"  # noqa: S608
                else:
                    sql = f"DELETE FROM {table} WHERE {where}"  # noqa: S608
                result = await conn.execute(text(sql), params)
                removed[f"{table}.{column}"] = result.rowcount or 0
        return removed

    async def rows_mentioning(self, value: str) -> list[tuple[str, str]]:
        """(table, column) of every text cell equal to ``value`` — used to prove erasure."""
        from storage.schema import metadata

        await self.flush()
        hits: list[tuple[str, str]] = []
        async with self.engine.connect() as conn:
            for table in metadata().sorted_tables:
                for column in table.columns:
                    if not _is_text(column):
                        continue
                    count = (
                        await conn.execute(select(func.count()).where(column == value))
                    ).scalar_one()
                    if count:
                        hits.append((table.name, column.name))
        return hits


#: Ids per ``IN (...)`` list: under the drivers' limits on bound parameters (SQLite's
#: 32,766, asyncpg's 32,767) with room for the rest of the statement.
IN_CHUNK = 5000


def in_channel(channel_id: str):
    """Contributions in a channel, its threads included, or in a thread (a thread's posts carry
    their parent's ``channel_id``, and the thread's own id as ``thread_id``)."""
    return or_(C.c.channel_id == channel_id, C.c.thread_id == channel_id)


def in_chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    """``ids`` in pieces of :data:`IN_CHUNK`, one ``IN (...)`` list each."""
    for i in range(0, len(ids), IN_CHUNK):
        yield ids[i : i + IN_CHUNK]


def _is_text(column) -> bool:
    from sqlalchemy import String, Text
    from sqlalchemy.types import TypeDecorator

    kind = column.type.impl if isinstance(column.type, TypeDecorator) else column.type
    return isinstance(kind, String | Text)


def masks_to_kinds(masks: dict[int, int], kinds: Iterable[str]) -> dict[str, int]:
    """Turn {mask: count} into {kind: count} (a message counts once for each of its kinds)."""
    kinds = list(kinds)
    out = dict.fromkeys(kinds, 0)
    for mask, count in masks.items():
        for i, kind in enumerate(kinds):
            if mask & (1 << i):
                out[kind] += count
    return out
