"""What both importer test modules read back from the database, written once."""

from __future__ import annotations

from sqlalchemy import func, select

from storage.repos import C, E


async def contributions(app, community: str) -> dict[str, dict]:
    await app.store.flush()
    async with app.store.engine.connect() as conn:
        rows = (await conn.execute(select(C).where(C.c.community_id == community))).mappings()
        return {r["message_id"]: dict(r) for r in rows}


async def edges(app, community: str) -> set[tuple[str, str, str, str]]:
    await app.store.flush()
    async with app.store.engine.connect() as conn:
        rows = await conn.execute(
            select(E.c.kind, E.c.source_id, E.c.target_id, E.c.detail).where(
                E.c.community_id == community
            )
        )
        return {tuple(r) for r in rows}


async def table_count(app, table) -> int:
    async with app.store.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()
