"""Grouped SQL for weekly summaries, the gradebook export and the cohort archive.

Windows here are ``[since, until)`` (a gradebook range from local midnight to local midnight),
except where a function says otherwise. Every aggregate is one grouped statement over the
indexed ``(community_id, created_at)`` ranges; Python only sees one row per member, thread or
day.

The archive (:func:`archive_cohort`) moves a cohort's activity to a new, archived community
id in one transaction, so old data stays queryable under that id and the live community's
numbers start from zero (see the summaries cog for the design).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    String,
    case,
    exists,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    union_all,
)
from sqlalchemy import delete as sql_delete
from sqlalchemy import update as sql_update

from storage.queries import conversation_key
from storage.repos import CH, CM, C, E, M, Store
from storage.types import as_utc

#: Contribution kinds in bit order (mirrors ``bot.classify.KINDS``; storage may not import bot).
KIND_BITS: tuple[str, ...] = ("idea", "builds_on", "reference", "question", "support")
QUESTION_BIT = 1 << KIND_BITS.index("question")


def _kind_sums(kinds=None) -> list:
    kinds = C.c.kinds if kinds is None else kinds
    return [
        func.sum(case((kinds.op("&")(1 << i) != 0, 1), else_=0)).label(kind)
        for i, kind in enumerate(KIND_BITS)
    ]


@dataclass(frozen=True, slots=True)
class Counts:
    """Contributions of one member (or everyone) in a window."""

    contributions: int
    words: int
    by_kind: dict[str, int]


async def member_counts(
    store: Store, community_id: str, since: datetime, until: datetime
) -> dict[str, Counts]:
    """{member: counts} for contributions in ``[since, until)``."""
    await store.flush()
    query = (
        select(
            C.c.member_id,
            func.count().label("n"),
            func.coalesce(func.sum(C.c.word_count), 0).label("words"),
            *_kind_sums(),
        )
        .where(C.c.community_id == community_id, C.c.created_at >= since, C.c.created_at < until)
        .group_by(C.c.member_id)
    )
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return {
        r["member_id"]: Counts(int(r["n"]), int(r["words"]), {k: int(r[k] or 0) for k in KIND_BITS})
        for r in rows
    }


def total(counts: Iterable[Counts]) -> Counts:
    by_kind = dict.fromkeys(KIND_BITS, 0)
    n = words = 0
    for c in counts:
        n += c.contributions
        words += c.words
        for kind, value in c.by_kind.items():
            by_kind[kind] += value
    return Counts(n, words, by_kind)


def _day_bucket(column, starts: Sequence[datetime]):
    """Index of the local day a timestamp falls in: a CASE over the days' UTC starts."""
    whens = [
        (column >= start, literal_column(str(i))) for i, start in reversed(list(enumerate(starts)))
    ]
    return case(*whens, else_=literal_column("-1"))


async def active_days(
    store: Store, community_id: str, day_starts: Sequence[datetime], until: datetime
) -> dict[str, int]:
    """{member: distinct local days with a contribution}. ``day_starts`` are the UTC instants
    the local days begin (DST-safe, computed by the caller), the last day ending at ``until``."""
    if not day_starts:
        return {}
    await store.flush()
    days = (
        select(C.c.member_id, _day_bucket(C.c.created_at, day_starts).label("day"))
        .where(
            C.c.community_id == community_id,
            C.c.created_at >= day_starts[0],
            C.c.created_at < until,
        )
        .subquery("days")
    )
    query = select(days.c.member_id, func.count(func.distinct(days.c.day))).group_by(
        days.c.member_id
    )
    async with store.engine.connect() as conn:
        return {m: int(n) for m, n in (await conn.execute(query)).all()}


async def daily_counts(
    store: Store, community_id: str, day_starts: Sequence[datetime], until: datetime
) -> dict[int, Counts]:
    """{index of the local day: contributions that day}, days given as in :func:`active_days`
    (any consecutive periods work: a week, then days).

    One aggregate per day over its ``(community_id, created_at)`` range, glued with UNION
    ALL: bucketing every row with a CASE and grouping on it costs a sort of the whole range.
    """
    if not day_starts:
        return {}
    await store.flush()
    ends = [*day_starts[1:], until]
    parts = [
        select(
            literal_column(str(i)).label("day"),
            func.count().label("n"),
            func.coalesce(func.sum(C.c.word_count), 0).label("words"),
            *_kind_sums(),
        ).where(C.c.community_id == community_id, C.c.created_at >= start, C.c.created_at < end)
        for i, (start, end) in enumerate(zip(day_starts, ends, strict=True))
    ]
    rows = []
    async with store.engine.connect() as conn:
        # SQLite allows at most 500 terms in a compound SELECT.
        for i in range(0, len(parts), 400):
            chunk = parts[i : i + 400]
            query = union_all(*chunk) if len(chunk) > 1 else chunk[0]
            rows += (await conn.execute(query)).mappings().all()
    return {
        int(r["day"]): Counts(int(r["n"]), int(r["words"]), {k: int(r[k] or 0) for k in KIND_BITS})
        for r in rows
        if r["n"]
    }


async def kudos_counts(
    store: Store, community_id: str, since: datetime, until: datetime, *, given: bool = False
) -> dict[str, int]:
    """{member: kudos received} (or given) in ``[since, until)``: ``edge`` rows of kind kudos."""
    column = E.c.source_id if given else E.c.target_id
    await store.flush()
    query = (
        select(column, func.count())
        .where(
            E.c.community_id == community_id,
            E.c.kind == "kudos",
            E.c.created_at >= since,
            E.c.created_at < until,
        )
        .group_by(column)
    )
    async with store.engine.connect() as conn:
        return {m: int(n) for m, n in (await conn.execute(query)).all()}


async def kudos_received(
    store: Store, community_id: str, since: datetime, until: datetime
) -> dict[str, int]:
    """{member: kudos received} in ``[since, until)``."""
    return await kudos_counts(store, community_id, since, until)


def _learners(community_id: str, exclude: Iterable[str]) -> list:
    """Conditions on ``member`` for the learners: no bots, nobody who left, not ``exclude``."""
    return [
        M.c.community_id == community_id,
        M.c.is_bot.is_(False),
        M.c.left_at.is_(None),
        M.c.member_id.not_in(list(exclude)),
    ]


async def learner_counts(
    store: Store, community_id: str, since: datetime, until: datetime, exclude: Iterable[str]
) -> tuple[int, int]:
    """(learners, learners with a contribution in ``[since, until)``), learners being the
    members who are not bots, have not left and are not in ``exclude`` (the facilitators).

    One statement over the member rows: no member rows loaded, no grouping of the window's
    contributions."""
    await store.flush()
    in_window = (C.c.created_at >= since, C.c.created_at < until)
    if store.engine.dialect.name == "postgresql":
        # PostgreSQL hashes the window's authors once (one range scan) rather than probing
        # the index per member: on a million contributions 27 ms against 46 ms. On SQLite
        # the probes are the faster way (21 ms against 44 ms).
        posted = M.c.member_id.in_(
            select(C.c.member_id).where(C.c.community_id == community_id, *in_window)
        )
    else:
        posted = exists().where(
            C.c.community_id == M.c.community_id, C.c.member_id == M.c.member_id, *in_window
        )
    query = select(func.count(), func.coalesce(func.sum(case((posted, 1), else_=0)), 0)).where(
        *_learners(community_id, exclude)
    )
    async with store.engine.connect() as conn:
        n, active = (await conn.execute(query)).one()
    return int(n), int(active)


async def learner_ids(store: Store, community_id: str, exclude: Iterable[str]) -> set[str]:
    """Ids of the learners (as in :func:`learner_counts`)."""
    await store.flush()
    query = select(M.c.member_id).where(*_learners(community_id, exclude))
    async with store.engine.connect() as conn:
        return set((await conn.execute(query)).scalars())


@dataclass(frozen=True, slots=True)
class ThreadRow:
    key: str
    channel_id: str
    messages: int
    participants: int


async def busiest_threads(
    store: Store, community_id: str, since: datetime, until: datetime, *, limit: int = 3
) -> list[ThreadRow]:
    """Conversations with the most messages in ``[since, until)``, at least two people each.

    A conversation is a platform thread, or a top-level post with the replies to it.

    Counting each conversation's people (``count(DISTINCT ...)``) makes the database sort
    every message of the week with its author, so it is done only for the conversations
    with the most messages (:data:`BUSIEST_CANDIDATES` times ``limit`` of them), found first
    with a plain count. They are a prefix of the full ranking, so the first ``limit`` of
    them with two people or more are the answer; if fewer than ``limit`` have, the whole
    ranking is computed as before. On a million contributions (100,000 in the week):
    SQLite 76 ms against 107 ms, PostgreSQL 82 ms against 111 ms.
    """
    await store.flush()

    def messages(name: str):
        return (
            select(conversation_key().label("k"), C.c.member_id, C.c.channel_id)
            .where(
                C.c.community_id == community_id, C.c.created_at >= since, C.c.created_at < until
            )
            .subquery(name)
        )

    def ranking(inner, *, among=None):
        n = func.count().label("n")
        people = func.count(func.distinct(inner.c.member_id))
        query = select(inner.c.k, func.min(inner.c.channel_id), n, people.label("people"))
        if among is not None:
            query = query.where(inner.c.k.in_(among))
        return (
            query.group_by(inner.c.k).having(people >= 2).order_by(n.desc(), inner.c.k).limit(limit)
        )

    ranked = messages("ranked")
    candidates = (
        select(ranked.c.k)
        .group_by(ranked.c.k)
        .having(func.count() >= 2)
        .order_by(func.count().desc(), ranked.c.k)
        .limit(max(limit, 1) * BUSIEST_CANDIDATES)
    )
    async with store.engine.connect() as conn:
        rows = (await conn.execute(ranking(messages("msgs"), among=candidates))).all()
        if len(rows) < limit:
            rows = (await conn.execute(ranking(messages("msgs")))).all()
    return [ThreadRow(str(k), str(ch), int(m), int(p)) for k, ch, m, p in rows]


#: How many of the conversations with the most messages :func:`busiest_threads` counts the
#: people of, per conversation it returns.
BUSIEST_CANDIDATES = 10


async def newcomers(
    store: Store, community_id: str, since: datetime, until: datetime, exclude: Iterable[str]
) -> list[dict[str, Any]]:
    """Members (not bots, not ``exclude``) who joined, or first appeared, in the window."""
    joined = func.coalesce(M.c.joined_at, M.c.first_seen)
    query = (
        select(M.c.member_id, M.c.display_name)
        .where(
            M.c.community_id == community_id,
            M.c.is_bot.is_(False),
            M.c.left_at.is_(None),
            joined >= since,
            joined < until,
            M.c.member_id.not_in(list(exclude)),
        )
        .order_by(joined, M.c.display_name)
    )
    async with store.engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(query)).mappings()]


@dataclass(frozen=True, slots=True)
class OpenQuestion:
    message_id: str
    channel_id: str
    thread_id: str | None
    member_id: str
    created_at: datetime


async def open_questions(
    store: Store,
    community_id: str,
    since: datetime,
    until: datetime,
    *,
    exclude_authors: Iterable[str] = (),
    limit: int = 10,
) -> tuple[int, list[OpenQuestion]]:
    """Questions posted in ``[since, until)`` that nobody else has answered.

    Answered means another member replied to the question (in the window), posted in the
    thread it opened, or (for a question asked inside a thread) posted in that thread after
    it. Returns the count and the ``limit`` oldest.

    Each test is its own index-friendly condition (an OR of them defeats every index): the
    replies are the window's replies to another member, gathered once over the time index
    (an answer to a question of the window is in the window too); the two thread tests are
    lookups on the thread index ``(community_id, thread_id, created_at)``, which holds only
    the rows in a thread. A post in the thread a question opened comes after the question,
    so it is bounded by ``since`` too: PostgreSQL then hashes the threads' posts since the
    window began rather than every threaded post ever made (on a million contributions, a
    quarter of them in threads: 265 ms without the bound, 135 ms with it, 118 ms with it
    and the partial index).
    """
    await store.flush()
    q = C.alias("q")
    r = C.alias("r")
    replies = (
        C.c.community_id == community_id,
        C.c.created_at >= since,
        C.c.created_at < until,
        C.c.reply_to_id.is_not(None),
        # NULL when the reply answered the author's own message.
        C.c.reply_to_member_id.is_not(None),
    )
    if store.engine.dialect.name == "postgresql":
        # An anti-join, which PostgreSQL hashes once over the window's replies: 66-70 ms
        # against 76-84 ms for NOT IN on a million contributions. SQLite runs NOT EXISTS as
        # a scan per question (no index on reply_to_id), so it keeps the list.
        unanswered = ~exists().where(*replies, C.c.reply_to_id == q.c.message_id)
    else:
        unanswered = q.c.message_id.not_in(select(C.c.reply_to_id).where(*replies))
    in_its_thread = exists().where(
        r.c.community_id == community_id,
        r.c.thread_id == q.c.message_id,
        r.c.created_at >= since,
        r.c.member_id != q.c.member_id,
    )
    later_in_thread = exists().where(
        r.c.community_id == community_id,
        r.c.thread_id == q.c.thread_id,
        r.c.created_at > q.c.created_at,
        r.c.member_id != q.c.member_id,
    )
    conds = [
        q.c.community_id == community_id,
        q.c.created_at >= since,
        q.c.created_at < until,
        q.c.kinds.op("&")(QUESTION_BIT) != 0,
        unanswered,
        ~in_its_thread,
        or_(q.c.thread_id.is_(None), ~later_in_thread),
    ]
    excluded = list(exclude_authors)
    if excluded:
        conds.append(q.c.member_id.not_in(excluded))
    # The open questions once, then their count and the oldest of them from that: a window
    # count over them sorted them all before LIMIT applied (on 100,000 messages in the week,
    # SQLite took 64 ms this way against 72 ms; PostgreSQL 76 ms either way).
    open_ = (
        select(q.c.message_id, q.c.channel_id, q.c.thread_id, q.c.member_id, q.c.created_at)
        .where(*conds)
        .cte("open_questions")
    )
    query = (
        select(open_, select(func.count()).select_from(open_).scalar_subquery().label("total"))
        .order_by(open_.c.created_at, open_.c.message_id)
        .limit(max(limit, 1))
    )
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    count = rows[0].total if rows else 0
    return int(count), [
        OpenQuestion(m, ch, t, a, as_utc(at)) for m, ch, t, a, at, _ in rows[:limit]
    ]


# -- nudges (tables of the nudges capability, read defensively) --------------------------------


def _table(metadata, names: Sequence[str]):
    for name in names:
        table = metadata.tables.get(name)
        if table is not None:
            return table
    return None


async def nudge_counts(
    store: Store, metadata, community_id: str, since: datetime, until: datetime
) -> dict[str, tuple[int, int]] | None:
    """{member: (nudges sent, came back afterwards)} from the nudges capability's ``nudge``
    table (``storage.nudges_models``), or None when that table is not part of this
    installation. Read defensively, by column name, so the two capabilities stay independent:
    the send time (``sent_at``), the outcome (``returned_at`` set, or an ``outcome`` of
    returned) and ``status == "sent"``, whichever exist."""
    table = _table(metadata, ("nudge", "nudges", "nudge_log", "nudge_sent"))
    if table is None or "member_id" not in table.c or "community_id" not in table.c:
        return None
    cols = table.c
    when = next((cols[n] for n in ("sent_at", "created_at", "at") if n in cols), None)
    back = None
    for name in ("returned_at", "came_back_at", "back_at", "outcome_at"):
        if name in cols:
            back = cols[name].is_not(None)
            break
    if back is None and "outcome" in cols:
        back = cols["outcome"].in_(("returned", "came_back", "back", "success"))
    where = [cols["community_id"] == community_id]
    if when is not None:
        where += [when >= since, when < until]
    if "status" in cols:
        # Only nudges that went out: not the hold-out group's would-be nudges, not ones still
        # held back by quiet hours or cancelled.
        where.append(cols["status"] == "sent")
    back_sum = func.sum(case((back, 1), else_=0)) if back is not None else literal(0)
    query = select(cols["member_id"], func.count(), back_sum).where(*where)
    query = query.group_by(cols["member_id"])
    await store.flush()
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return {m: (int(n), int(b or 0)) for m, n, b in rows}


# -- the cohort archive --------------------------------------------------------------------------

#: Tables that stay with the live community when a cohort is archived: the community row
#: itself, the channel list, people and their preferences (an opt-out outlives a cohort), the
#: scheduler's claims and the sent ledger (their keys are already unique per cohort).
KEEP_ON_ARCHIVE = frozenset(
    {"community", "channel", "member", "member_pref", "job_claim", "sent_message"}
)


async def archive_cohort(
    store: Store,
    metadata,
    community_id: str,
    archive_id: str,
    *,
    now: datetime,
    cohort: int,
    keep_members: Iterable[str],
    new_settings_json: str,
) -> dict[str, int]:
    """Move cohort ``cohort`` of ``community_id`` to the archived community ``archive_id``.

    In one transaction: a copy of the community row (``archived_at`` set, so schedulers and
    lists skip it), copies of its member and channel rows, and every other row that carries
    this ``community_id`` (contributions, edges, prompts, reflections, and the tables of any
    other capability) re-labelled to ``archive_id``. The live community keeps its id, people
    in ``keep_members`` (facilitators), preferences and settings, and starts cohort
    ``cohort + 1``. Returns the number of rows moved per table.
    """
    await store.flush()
    moved: dict[str, int] = {}
    async with store.engine.begin() as conn:
        row = (await conn.execute(select(CM).where(CM.c.id == community_id))).mappings().one()
        await conn.execute(
            insert(CM).values(
                id=archive_id,
                platform=row["platform"],
                name=f"{row['name']} (cohort {cohort})",
                timezone=row["timezone"],
                cohort=cohort,
                settings_json=row["settings_json"],
                created_at=row["created_at"],
                archived_at=now,
            )
        )
        for table, key_columns in ((M, "member"), (CH, "channel")):
            columns = [c.name for c in table.c if c.name not in ("id", "community_id")]
            # Typed, so PostgreSQL knows the parameter's type in a SELECT list.
            copied = select(literal(archive_id, String()), *(table.c[c] for c in columns)).where(
                table.c.community_id == community_id
            )
            result = await conn.execute(
                insert(table).from_select(["community_id", *columns], copied)
            )
            moved[f"{key_columns} (copied)"] = result.rowcount or 0
        result = await conn.execute(
            sql_delete(M).where(
                M.c.community_id == community_id, M.c.member_id.not_in(list(keep_members))
            )
        )
        moved["member (left the live cohort)"] = result.rowcount or 0
        for table in metadata.sorted_tables:
            if table.name in KEEP_ON_ARCHIVE or "community_id" not in table.c:
                continue
            result = await conn.execute(
                sql_update(table)
                .where(table.c.community_id == community_id)
                .values(community_id=archive_id)
            )
            moved[table.name] = result.rowcount or 0
        await conn.execute(
            sql_update(CM)
            .where(CM.c.id == community_id)
            .values(cohort=cohort + 1, settings_json=new_settings_json)
        )
    return moved


async def archives_of(store: Store, community_id: str) -> list[dict[str, Any]]:
    """Archived cohorts of a community (their ids start with ``<community>/cohort-``)."""
    prefix = f"{community_id}/cohort-"
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(CM)
            .where(CM.c.id.like(escaped + "%", escape="\\"), CM.c.archived_at.is_not(None))
            .order_by(CM.c.cohort)
        )
        return [dict(r) for r in rows.mappings()]
