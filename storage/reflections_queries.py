"""Repository of reflection prompts and reflections (tables in ``storage.reflections_models``).

Small explicit queries: the prompt tables hold a handful of rows per community and week, and
reflections are grouped in SQL (per prompt, per member) wherever a report needs numbers.
Reads flush the batched writer first, because reflections are queued on it like contributions.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update

from storage.reflections_models import Reflection, ReflectionPrompt
from storage.repos import S, Store

RP = ReflectionPrompt.__table__
RF = Reflection.__table__


class ReflectionRepo:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine

    # -- prompts --------------------------------------------------------------------------------

    async def create_prompt(self, **values: Any) -> dict[str, Any]:
        """Insert a prompt unless its (community, slot) exists; return the stored row.

        Two processes running the weekly job at once both get the same single row.
        """
        stmt = self.store.dialect_insert(RP).values(**values).on_conflict_do_nothing()
        async with self.engine.begin() as conn:
            await conn.execute(stmt)
        row = await self.prompt_by_slot(values["community_id"], values["slot"])
        assert row is not None
        return row

    async def prompt_by_slot(self, community_id: str, slot: str) -> dict[str, Any] | None:
        return await self._one(and_(RP.c.community_id == community_id, RP.c.slot == slot))

    async def prompt(self, prompt_id: int) -> dict[str, Any] | None:
        return await self._one(RP.c.id == prompt_id)

    async def prompt_for_thread(self, community_id: str, thread_id: str) -> dict[str, Any] | None:
        return await self._one(and_(RP.c.community_id == community_id, RP.c.thread_id == thread_id))

    async def _one(self, where) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(RP).where(where))).mappings().first()
        return dict(row) if row else None

    async def prompts(
        self,
        community_id: str,
        *,
        cohort: int | None = None,
        statuses: Iterable[str] | None = None,
    ) -> list[dict[str, Any]]:
        query = select(RP).where(RP.c.community_id == community_id)
        if cohort is not None:
            query = query.where(RP.c.cohort == cohort)
        if statuses is not None:
            query = query.where(RP.c.status.in_(list(statuses)))
        query = query.order_by(
            func.coalesce(RP.c.posted_at, RP.c.scheduled_for, RP.c.created_at), RP.c.id
        )
        async with self.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings()]

    async def followup_prompts(self, community_id: str, closed_since: datetime) -> list[dict]:
        """Prompts the follow-up job looks at, in one query: scheduled, open, and closed since
        ``closed_since`` (their close reports may still be going out)."""
        query = (
            select(RP)
            .where(
                RP.c.community_id == community_id,
                or_(
                    RP.c.status.in_(("scheduled", "posted")),
                    and_(RP.c.status == "closed", RP.c.closed_at >= closed_since),
                ),
            )
            .order_by(func.coalesce(RP.c.posted_at, RP.c.scheduled_for, RP.c.created_at), RP.c.id)
        )
        async with self.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings()]

    async def update_prompt(
        self, prompt_id: int, *, only_status: Iterable[str] | None = None, **values: Any
    ) -> bool:
        """Change a prompt; with ``only_status``, only if it is still in one of those states
        (a compare-and-set, so a double run or a second process changes it once)."""
        where = [RP.c.id == prompt_id]
        if only_status is not None:
            where.append(RP.c.status.in_(list(only_status)))
        async with self.engine.begin() as conn:
            result = await conn.execute(update(RP).where(*where).values(**values))
            return (result.rowcount or 0) == 1

    async def weekly_count(self, community_id: str, cohort: int) -> int:
        """How many sequence prompts this cohort has (for courses without a start date)."""
        async with self.engine.connect() as conn:
            return int(
                (
                    await conn.execute(
                        select(func.count()).where(
                            RP.c.community_id == community_id,
                            RP.c.cohort == cohort,
                            RP.c.week.is_not(None),
                        )
                    )
                ).scalar_one()
            )

    # -- reflections ----------------------------------------------------------------------------

    def add_reflection(self, row: dict[str, Any]) -> None:
        """Queue one reflection (a redelivered message is recorded once)."""
        self.store.writer.insert_ignore(RF, row)

    def mark_responded(
        self,
        community_id: str,
        *,
        at: datetime,
        message_id: str | None = None,
        prompt_id: int | None = None,
        member_id: str | None = None,
    ) -> None:
        """Queue "someone responded": to one reflection message, or to every reflection of a
        member on a prompt (a mention in the thread)."""
        where = [RF.c.community_id == community_id, RF.c.responded.is_(False)]
        if message_id is not None:
            where.append(RF.c.message_id == message_id)
        else:
            where += [RF.c.prompt_id == prompt_id, RF.c.member_id == member_id]
        self.store.writer.update(RF, and_(*where), {"responded": True, "responded_at": at})

    async def reflection(self, community_id: str, message_id: str) -> dict[str, Any] | None:
        await self.store.flush()
        async with self.engine.connect() as conn:
            row = (
                (
                    await conn.execute(
                        select(RF).where(
                            RF.c.community_id == community_id, RF.c.message_id == message_id
                        )
                    )
                )
                .mappings()
                .first()
            )
        return dict(row) if row else None

    async def reflections(self, community_id: str, prompt_id: int) -> list[dict[str, Any]]:
        await self.store.flush()
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(RF)
                .where(RF.c.community_id == community_id, RF.c.prompt_id == prompt_id)
                .order_by(RF.c.created_at, RF.c.id)
            )
            return [dict(r) for r in rows.mappings()]

    async def answered(self, community_id: str, prompt_id: int) -> set[str]:
        """Members who answered the prompt."""
        await self.store.flush()
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(RF.c.member_id)
                .where(RF.c.community_id == community_id, RF.c.prompt_id == prompt_id)
                .distinct()
            )
            return {r[0] for r in rows}

    async def answered_counts(self, community_id: str, prompt_ids: Iterable[int]) -> dict[int, int]:
        """{prompt: distinct members who answered} in one grouped query."""
        ids = list(prompt_ids)
        if not ids:
            return {}
        await self.store.flush()
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(RF.c.prompt_id, func.count(func.distinct(RF.c.member_id)))
                .where(RF.c.community_id == community_id, RF.c.prompt_id.in_(ids))
                .group_by(RF.c.prompt_id)
            )
            return {int(p): int(n) for p, n in rows}

    async def per_member(
        self,
        community_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> dict[str, int]:
        """{member: prompts answered} for reflections posted in ``[since, until)``."""
        await self.store.flush()
        where = [RF.c.community_id == community_id]
        if since is not None:
            where.append(RF.c.created_at >= since)
        if until is not None:
            where.append(RF.c.created_at < until)
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(RF.c.member_id, func.count(func.distinct(RF.c.prompt_id)))
                .where(*where)
                .group_by(RF.c.member_id)
            )
            return {m: int(n) for m, n in rows}

    async def member_reflections(self, community_id: str, member_id: str) -> list[dict[str, Any]]:
        await self.store.flush()
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(RF.c.prompt_id, RF.c.created_at, RF.c.word_count, RF.c.responded)
                .where(RF.c.community_id == community_id, RF.c.member_id == member_id)
                .order_by(RF.c.created_at)
            )
            return [dict(r) for r in rows.mappings()]

    # -- the sent ledger -------------------------------------------------------------------------

    async def sent_keys(self, prefix: str) -> set[str]:
        """Dedupe keys already in the sent ledger that start with ``prefix`` (so a follow-up
        run only builds the messages that are still missing)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(S.c.dedupe_key).where(S.c.dedupe_key.like(escaped + "%", escape="\\"))
            )
            return {r[0] for r in rows}
