"""Aggregate queries for analytics, quiet-member detection and reports.

Each function is one or two grouped SQL statements over indexed columns; callers get
per-member numbers, never raw rows to loop over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, select

from storage.repos import C, E, M, Store


@dataclass(slots=True)
class MemberActivity:
    member_id: str
    display_name: str
    is_facilitator: bool
    joined_at: datetime | None
    first_seen: datetime
    last_post: datetime | None = None
    first_post_in_window: datetime | None = None
    posts_in_window: int = 0
    posts_before_window: int = 0
    edges_given: int = 0
    edges_received: int = 0


async def member_activity(
    store: Store,
    community_id: str,
    *,
    window_start: datetime,
    now: datetime,
    baseline_start: datetime,
) -> dict[str, MemberActivity]:
    """Per non-bot member: last post ever, posts in [window_start, now] and in
    [baseline_start, window_start), reply/mention/reaction/kudos edges given and received in the
    window. Three queries whatever the community size."""
    await store.flush()
    out: dict[str, MemberActivity] = {}
    async with store.engine.connect() as conn:
        # Per member, index-only lookups on (community_id, member_id, created_at): one seek for
        # the last post ever, short range counts for the window and the baseline. Grouping the
        # contributions by member instead reads (and looks up) every row in the range.
        own = (C.c.community_id == M.c.community_id, C.c.member_id == M.c.member_id)
        in_window = (C.c.created_at >= window_start, C.c.created_at <= now)
        in_base = (C.c.created_at >= baseline_start, C.c.created_at < window_start)
        members = await conn.execute(
            select(
                M.c.member_id,
                M.c.display_name,
                M.c.is_facilitator,
                M.c.joined_at,
                M.c.first_seen,
                select(func.max(C.c.created_at))
                .where(*own, C.c.created_at <= now)
                .scalar_subquery(),
                select(func.min(C.c.created_at)).where(*own, *in_window).scalar_subquery(),
                select(func.count()).where(*own, *in_window).scalar_subquery(),
                select(func.count()).where(*own, *in_base).scalar_subquery(),
            ).where(M.c.community_id == community_id, M.c.is_bot.is_(False), M.c.left_at.is_(None))
        )
        for member_id, name, fac, joined, first_seen, last, first, n_window, n_base in members:
            activity = MemberActivity(member_id, name or member_id, fac, joined, first_seen)
            activity.last_post = _aware(last)
            activity.first_post_in_window = _aware(first)
            activity.posts_in_window = int(n_window or 0)
            activity.posts_before_window = int(n_base or 0)
            out[member_id] = activity
        edge_window = and_(
            E.c.community_id == community_id, E.c.created_at >= window_start, E.c.created_at <= now
        )
        for column, attr in ((E.c.source_id, "edges_given"), (E.c.target_id, "edges_received")):
            rows = await conn.execute(
                select(column, func.count()).where(edge_window).group_by(column)
            )
            for member_id, count in rows:
                if member_id in out:
                    setattr(out[member_id], attr, int(count))
    return out


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything inside Hearth is aware UTC."""
    from datetime import UTC

    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
