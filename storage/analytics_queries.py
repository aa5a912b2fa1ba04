"""Grouped SQL for interaction analytics: edge weights, per-thread participants, first replies,
unanswered posts, activity by day and by week.

Every function is one or two grouped statements over the indexed ``(community_id, created_at)``
ranges of ``contribution`` and ``edge`` (plus the unique ``(community_id, message_id)`` key for
joins), so the work done in Python is proportional to the number of *groups* (members, pairs,
threads, days), never to the number of messages. Works on SQLite and PostgreSQL; the two
dialect-specific expressions (calendar day, seconds between two times) are chosen here.

Windows are half-open and include their end: ``since < created_at <= until``, so a window that
ends "now" sees the message posted this instant and consecutive windows never share a row.
Times are aware UTC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import (
    and_,
    case,
    extract,
    func,
    literal,
    literal_column,
    or_,
    select,
    union,
    union_all,
)

from storage.repos import C, E, M, Store
from storage.types import as_utc

#: Order of the contribution kinds in the ``kinds`` bit mask (mirrors ``bot.classify.KINDS``;
#: ``storage`` may not import ``bot``, and a test checks the two stay equal).
KIND_BITS: tuple[str, ...] = ("idea", "builds_on", "reference", "question", "support")


@dataclass(frozen=True, slots=True)
class MemberRow:
    member_id: str
    display_name: str
    is_facilitator: bool


@dataclass(frozen=True, slots=True)
class MemberCounts:
    """One member's contributions in a window: total, words, and a count per kind."""

    member_id: str
    contributions: int
    words: int
    by_kind: dict[str, int]


class EdgeWeight(NamedTuple):
    """All interactions of one kind from ``source`` to ``target`` in a window (a tuple:
    tens of thousands of these come back for a big course)."""

    source: str
    target: str
    kind: str
    count: int
    stored_weight: float


@dataclass(frozen=True, slots=True)
class ThreadShape:
    """How many threads have this shape: ``participants`` (capped at 3) and ``both_ways``,
    the participants who both answered and were answered inside the thread (capped)."""

    participants: int
    both_ways: int
    threads: int


@dataclass(frozen=True, slots=True)
class MemberFeatures:
    """What a member's interaction pattern depends on, aggregated in SQL."""

    member_id: str
    partners: int
    reciprocal_partners: int
    top_weight: float
    total_weight: float


@dataclass(frozen=True, slots=True)
class UnansweredPost:
    message_id: str
    member_id: str
    channel_id: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ReplyTimes:
    """Top-level posts in a window and how fast peers answered them."""

    posts: int
    answered: int
    median_seconds: float | None
    unanswered: int
    unanswered_posts: list[UnansweredPost]


@dataclass(frozen=True, slots=True)
class DayActivity:
    day: date
    contributions: int
    by_kind: dict[str, int]


@dataclass(frozen=True, slots=True)
class WeekActivity:
    start: datetime
    contributions: int
    active_members: int
    interactions: int
    facilitator_interactions: int


def _kind_sums(column=None) -> list:
    """``SUM(kinds & bit != 0)`` for each kind: per-kind counts without fetching masks."""
    kinds = C.c.kinds if column is None else column
    return [
        func.sum(case((kinds.op("&")(1 << i) != 0, 1), else_=0)).label(kind)
        for i, kind in enumerate(KIND_BITS)
    ]


def _window(table, community_id: str, since: datetime, until: datetime):
    return and_(
        table.c.community_id == community_id,
        table.c.created_at > since,
        table.c.created_at <= until,
    )


def _day_expr(store: Store, column):
    """The UTC calendar day of a timestamp, as 'YYYY-MM-DD' text."""
    if store.engine.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    # SQLite stores AwareDateTime as naive UTC text, so date() is the UTC day.
    return func.date(column)


def _seconds_between(store: Store, later, earlier):
    if store.engine.dialect.name == "postgresql":
        return extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


# -- members and contributions --------------------------------------------------------------------


async def members(store: Store, community_id: str) -> list[MemberRow]:
    """Non-bot members who have not left, ordered by display name."""
    await store.flush()
    query = (
        select(M.c.member_id, M.c.display_name, M.c.is_facilitator)
        .where(M.c.community_id == community_id, M.c.is_bot.is_(False), M.c.left_at.is_(None))
        .order_by(M.c.display_name, M.c.member_id)
    )
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [MemberRow(m, name or m, bool(fac)) for m, name, fac in rows]


async def member_counts(
    store: Store,
    community_id: str,
    since: datetime,
    until: datetime,
    *,
    member_id: str | None = None,
) -> dict[str, MemberCounts]:
    """Contributions, words and per-kind counts of every member (or one) in the window."""
    await store.flush()
    where = _window(C, community_id, since, until)
    if member_id is not None:
        where = and_(where, C.c.member_id == member_id)
    query = (
        select(
            C.c.member_id,
            func.count().label("n"),
            func.coalesce(func.sum(C.c.word_count), 0).label("words"),
            *_kind_sums(),
        )
        .where(where)
        .group_by(C.c.member_id)
    )
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return {
        row[0]: MemberCounts(
            row[0], int(row[1]), int(row[2]), dict(zip(KIND_BITS, map(int, row[3:]), strict=True))
        )
        for row in rows
    }


# -- interaction edges --------------------------------------------------------------------------


async def edge_weights(
    store: Store,
    community_id: str,
    since: datetime,
    until: datetime,
    *,
    member_id: str | None = None,
) -> list[EdgeWeight]:
    """Interaction counts per (source, target, kind) in the window, one grouped query.

    With ``member_id``, only edges the member gave or received (for one learner's pattern).
    """
    await store.flush()
    where = _window(E, community_id, since, until)
    if member_id is not None:
        where = and_(where, or_(E.c.source_id == member_id, E.c.target_id == member_id))
    query = (
        select(E.c.source_id, E.c.target_id, E.c.kind, func.count(), func.sum(E.c.weight))
        .where(where, E.c.source_id != E.c.target_id)
        .group_by(E.c.source_id, E.c.target_id, E.c.kind)
    )
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return list(map(EdgeWeight._make, rows))


# -- threads --------------------------------------------------------------------------------------


def _thread_key():
    """The thread a contribution belongs to, resolved through its parent and grandparent.

    A platform thread (``thread_id``) wins; otherwise a reply belongs to the thread of the
    message it answers, and a top-level post starts its own thread. Parents are looked up
    through the unique message key, so replies to replies (to replies) join the original
    post's thread; reply chains deeper than three without a platform thread split off there.
    """
    parent = C.alias("parent")
    grand = C.alias("grandparent")
    key = func.coalesce(
        C.c.thread_id,
        parent.c.thread_id,
        grand.c.thread_id,
        grand.c.reply_to_id,
        parent.c.reply_to_id,
        C.c.reply_to_id,
        C.c.message_id,
    )
    join = C.outerjoin(
        parent,
        and_(parent.c.community_id == C.c.community_id, parent.c.message_id == C.c.reply_to_id),
    ).outerjoin(
        grand,
        and_(grand.c.community_id == C.c.community_id, grand.c.message_id == parent.c.reply_to_id),
    )
    return key, join


async def thread_shapes(
    store: Store, community_id: str, since: datetime, until: datetime, *, both_cap: int
) -> list[ThreadShape]:
    """Threads with activity in the window, counted by shape, entirely in SQL.

    A thread's participants are its posters and the members they answered; ``both_ways``
    counts participants who answered someone in the thread and were answered there. Only a
    handful of rows come back, however many threads there are.
    """
    await store.flush()
    key, join = _thread_key()
    links = (
        select(key.label("th"), C.c.member_id.label("m"), C.c.reply_to_member_id.label("t"))
        .select_from(join)
        .where(_window(C, community_id, since, until))
        .cte("links")
    )
    people = union(
        select(links.c.th, links.c.m),
        select(links.c.th, links.c.t).where(links.c.t.is_not(None)),
    ).subquery("people")
    answered = and_(links.c.t.is_not(None), links.c.t != links.c.m)
    senders = select(links.c.th, links.c.m).where(answered).distinct().subquery("senders")
    receivers = (
        select(links.c.th, links.c.t.label("m")).where(answered).distinct().subquery("receivers")
    )
    both = (
        select(senders.c.th, func.count().label("n"))
        .select_from(
            senders.join(
                receivers, and_(receivers.c.th == senders.c.th, receivers.c.m == senders.c.m)
            )
        )
        .group_by(senders.c.th)
        .subquery("both_ways")
    )
    per = select(people.c.th, func.count().label("p")).group_by(people.c.th).subquery("per")
    n_both = func.coalesce(both.c.n, 0)
    three, cap = literal_column("3"), literal_column(str(int(both_cap)))
    shapes = (
        select(
            case((per.c.p >= three, three), else_=per.c.p).label("p"),
            case((n_both >= cap, cap), else_=n_both).label("b"),
        )
        .select_from(per.outerjoin(both, both.c.th == per.c.th))
        .subquery("shapes")
    )
    query = select(shapes.c.p, shapes.c.b, func.count()).group_by(shapes.c.p, shapes.c.b)
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [ThreadShape(int(p), int(b), int(n)) for p, b, n in rows]


def _known_members(community_id: str):
    return select(M.c.member_id).where(
        M.c.community_id == community_id, M.c.is_bot.is_(False), M.c.left_at.is_(None)
    )


async def member_features(
    store: Store,
    community_id: str,
    since: datetime,
    until: datetime,
    *,
    weights: Mapping[str, float],
) -> dict[str, MemberFeatures]:
    """Per member, in SQL: interaction partners (either direction), partners with
    interaction both ways, and the weight with the top partner and with everyone.

    ``weights`` gives the weight of each edge kind (other kinds keep their stored weight).
    Only members who have not left and are not bots count, as in the interaction graph.
    """
    await store.flush()
    weight = case(
        *((E.c.kind == kind, literal(float(w))) for kind, w in weights.items()),
        else_=E.c.weight,
    )
    known = _known_members(community_id)
    pairs = (
        select(E.c.source_id.label("s"), E.c.target_id.label("t"), func.sum(weight).label("w"))
        .where(
            _window(E, community_id, since, until),
            E.c.source_id != E.c.target_id,
            E.c.source_id.in_(known),
            E.c.target_id.in_(known),
        )
        .group_by(E.c.source_id, E.c.target_id)
        .having(func.sum(weight) > 0)
        .cte("pairs")
    )
    zero = literal_column("0.0")
    sides = union_all(
        select(pairs.c.s.label("m"), pairs.c.t.label("p"), pairs.c.w.label("wo"), zero.label("wi")),
        select(pairs.c.t, pairs.c.s, zero, pairs.c.w),
    ).subquery("sides")
    per = (
        select(
            sides.c.m, sides.c.p, func.sum(sides.c.wo).label("wo"), func.sum(sides.c.wi).label("wi")
        )
        .group_by(sides.c.m, sides.c.p)
        .subquery("per")
    )
    query = select(
        per.c.m,
        func.count(),
        func.sum(case((and_(per.c.wo > 0, per.c.wi > 0), 1), else_=0)),
        func.max(per.c.wo + per.c.wi),
        func.sum(per.c.wo + per.c.wi),
    ).group_by(per.c.m)
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return {
        m: MemberFeatures(m, int(n), int(r or 0), float(top or 0.0), float(total or 0.0))
        for m, n, r, top, total in rows
    }


# -- first replies and unanswered posts ---------------------------------------------------------


async def reply_times(
    store: Store,
    community_id: str,
    since: datetime,
    until: datetime,
    *,
    unanswered_after: timedelta,
    exclude_authors: Sequence[str] = (),
    list_limit: int = 200,
) -> ReplyTimes:
    """Top-level posts made in the window: how many got a reply from another member before
    ``until``, the median time to that first reply, and the posts still unanswered after
    ``unanswered_after`` (the ``list_limit`` oldest are listed; the count covers all).

    A top-level post is neither a reply nor a follow-up inside someone's thread. Authors in
    ``exclude_authors`` (facilitators' announcements) are left out.
    """
    await store.flush()
    first = (
        select(C.c.reply_to_id.label("mid"), func.min(C.c.created_at).label("first_at"))
        .where(
            C.c.community_id == community_id,
            C.c.created_at > since,
            C.c.created_at <= until,
            C.c.reply_to_id.is_not(None),
            # NULL when the reply answered the author's own message (see the contributions cog).
            C.c.reply_to_member_id.is_not(None),
        )
        .group_by(C.c.reply_to_id)
        .subquery("first_reply")
    )
    root_where = [
        _window(C, community_id, since, until),
        C.c.reply_to_id.is_(None),
        or_(C.c.thread_id.is_(None), C.c.thread_id == C.c.message_id),
    ]
    if exclude_authors:
        root_where.append(C.c.member_id.not_in(list(exclude_authors)))
    delay = _seconds_between(store, first.c.first_at, C.c.created_at)
    posts = (
        select(
            C.c.message_id,
            C.c.member_id,
            C.c.channel_id,
            C.c.created_at,
            first.c.first_at,
            delay.label("delay"),
        )
        .select_from(C.outerjoin(first, first.c.mid == C.c.message_id))
        .where(*root_where)
        .cte("posts")
    )
    deadline = until - unanswered_after
    is_unanswered = and_(posts.c.first_at.is_(None), posts.c.created_at <= deadline)
    totals = select(
        func.count(),
        func.count(posts.c.first_at),
        func.coalesce(func.sum(case((is_unanswered, 1), else_=0)), 0),
    )
    async with store.engine.connect() as conn:
        n_posts, n_answered, n_unanswered = (await conn.execute(totals)).one()
        median: float | None = None
        if n_answered:
            # The median without fetching every delay: one or two middle rows by OFFSET.
            offset = (int(n_answered) - 1) // 2
            count = 1 if n_answered % 2 else 2
            middle = (
                await conn.execute(
                    select(posts.c.delay)
                    .where(posts.c.first_at.is_not(None))
                    .order_by(posts.c.delay)
                    .offset(offset)
                    .limit(count)
                )
            ).scalars()
            values = [float(v) for v in middle]
            median = sum(values) / len(values) if values else None
        listed = (
            await conn.execute(
                select(
                    posts.c.message_id, posts.c.member_id, posts.c.channel_id, posts.c.created_at
                )
                .where(is_unanswered)
                .order_by(posts.c.created_at, posts.c.message_id)
                .limit(list_limit)
            )
        ).all()
    return ReplyTimes(
        posts=int(n_posts),
        answered=int(n_answered),
        median_seconds=median,
        unanswered=int(n_unanswered),
        unanswered_posts=[UnansweredPost(m, a, ch, as_utc(t)) for m, a, ch, t in listed],
    )


# -- activity over time -----------------------------------------------------------------------


async def daily_activity(
    store: Store, community_id: str, since: datetime, until: datetime
) -> list[DayActivity]:
    """Contributions per UTC day and kind in the window (days without any are left out)."""
    await store.flush()
    # Grouped over a subquery: PostgreSQL only matches a GROUP BY expression with bound
    # parameters (the timezone, the format) to its SELECT twin by name, not by value.
    days = (
        select(_day_expr(store, C.c.created_at).label("day"), C.c.kinds)
        .where(_window(C, community_id, since, until))
        .subquery("days")
    )
    query = (
        select(days.c.day, func.count().label("n"), *_kind_sums(days.c.kinds))
        .group_by(days.c.day)
        .order_by(days.c.day)
    )
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [
        DayActivity(
            date.fromisoformat(str(r["day"])[:10]),
            int(r["n"]),
            {kind: int(r[kind] or 0) for kind in KIND_BITS},
        )
        for r in rows
    ]


async def weekly_activity(
    store: Store,
    community_id: str,
    until: datetime,
    *,
    weeks: int,
    facilitator_ids: Sequence[str] = (),
) -> list[WeekActivity]:
    """The ``weeks`` seven-day periods ending at ``until``, oldest first: contributions,
    distinct active members, interactions and interactions involving a facilitator.

    One UNION ALL of simple range aggregates per table: each week is an index range scan,
    cheaper than bucketing every row with a CASE and grouping.
    """
    await store.flush()
    starts = [until - timedelta(days=7 * (weeks - i)) for i in range(weeks)]
    fac_list = list(facilitator_ids)
    involves = (
        or_(E.c.source_id.in_(fac_list), E.c.target_id.in_(fac_list))
        if fac_list
        else literal_column("1") == literal_column("0")
    )
    posts = union_all(
        *(
            select(
                literal_column(str(i)).label("week"),
                func.count().label("n"),
                func.count(func.distinct(C.c.member_id)).label("active"),
            ).where(_window(C, community_id, start, start + timedelta(days=7)))
            for i, start in enumerate(starts)
        )
    )
    edges = union_all(
        *(
            select(
                literal_column(str(i)).label("week"),
                func.count().label("n"),
                func.coalesce(func.sum(case((involves, 1), else_=0)), 0).label("fac"),
            ).where(
                _window(E, community_id, start, start + timedelta(days=7)),
                E.c.source_id != E.c.target_id,
            )
            for i, start in enumerate(starts)
        )
    )
    out = {i: [0, 0, 0, 0] for i in range(weeks)}
    async with store.engine.connect() as conn:
        for week, n, active in (await conn.execute(posts)).all():
            out[int(week)][0:2] = [int(n), int(active)]
        for week, n, fac in (await conn.execute(edges)).all():
            out[int(week)][2:4] = [int(n), int(fac or 0)]
    return [WeekActivity(starts[i], *out[i]) for i in range(weeks)]
