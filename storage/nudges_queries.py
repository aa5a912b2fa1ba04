"""Queries of the nudges capability: its own tables, and the hooks a nudge can point at.

Hook queries run once per community and round (never once per member): live conversations
with their participants, open questions, recent replies to learners, and the channels each
member has posted in. The cog matches them to members in memory.

Outcomes are derived from the contribution table (:meth:`NudgeRepo.reconcile_returns`), so a
return is recorded even when the message reached another bot process than the nudge did.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, case, delete, exists, func, literal, or_, select, update
from sqlalchemy.exc import IntegrityError

from storage.models import SentMessage
from storage.nudges_models import Kudos, Nudge, NudgeAlert
from storage.queries import conversation_key
from storage.repos import C, E, Store

N = Nudge.__table__
K = Kudos.__table__
A = NudgeAlert.__table__
S = SentMessage.__table__

#: Contribution kind bits (mirrors ``bot.classify.KINDS``; storage may not import bot).
KIND_BITS: tuple[str, ...] = ("idea", "builds_on", "reference", "question", "support")
QUESTION_BIT = 1 << KIND_BITS.index("question")

#: Dedupe-key prefixes of the messages this capability sends (``prefix:community:...``).
SENT_PREFIXES = ("nudge", "kudos", "nudges-alert", "nudges-handoff", "nudges-share")


def aware(value: Any) -> datetime | None:
    """Aggregates come back naive (or as text) on SQLite; everything inside is aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(slots=True)
class LiveThread:
    """A conversation: a platform thread, or a top-level post with the replies to it."""

    key: str
    channel_id: str
    thread_id: str | None
    opener_id: str | None
    messages: int
    last_at: datetime
    people: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Post:
    message_id: str
    member_id: str
    channel_id: str
    thread_id: str | None
    created_at: datetime
    is_question: bool = True


@dataclass(frozen=True, slots=True)
class ReplyTo:
    """``source`` replied to ``target`` in ``message_id``."""

    target: str
    source: str
    message_id: str
    channel_id: str
    thread_id: str | None
    created_at: datetime


class NudgeRepo:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine

    # -- nudges -----------------------------------------------------------------------------

    async def insert_nudge(self, **row: Any) -> int | None:
        """Record one ladder step; None if this step of this episode is already recorded
        (another process, or an earlier run, got there first)."""
        row.setdefault("outcome", "")
        try:
            async with self.engine.begin() as conn:
                result = await conn.execute(N.insert().values(**row))
                return int(result.inserted_primary_key[0])
        except IntegrityError:
            return None

    async def nudges(
        self, community_id: str, *, member_id: str | None = None
    ) -> list[dict[str, Any]]:
        query = select(N).where(N.c.community_id == community_id).order_by(N.c.created_at, N.c.id)
        if member_id is not None:
            query = query.where(N.c.member_id == member_id)
        async with self.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings()]

    async def nudge(self, nudge_id: int) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(N).where(N.c.id == nudge_id))).mappings().first()
        return dict(row) if row else None

    async def due(self, community_id: str, now: datetime) -> list[dict[str, Any]]:
        """Held-back nudges whose time has come."""
        query = (
            select(N)
            .where(N.c.community_id == community_id, N.c.status == "scheduled", N.c.due_at <= now)
            .order_by(N.c.due_at, N.c.id)
        )
        async with self.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings()]

    async def mark_sent(self, nudge_id: int, now: datetime) -> bool:
        """scheduled -> sent, once (compare-and-set): True if this caller should send it."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(N)
                .where(N.c.id == nudge_id, N.c.status == "scheduled")
                .values(status="sent", sent_at=now)
            )
            return (result.rowcount or 0) == 1

    async def cancel(self, nudge_id: int, why: str) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(N)
                .where(N.c.id == nudge_id, N.c.status == "scheduled")
                .values(status="cancelled", outcome=why[:40])
            )
            return (result.rowcount or 0) == 1

    async def cancel_member(self, community_id: str, member_id: str, why: str) -> int:
        """Cancel a member's held-back nudges (they opted out or snoozed)."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(N)
                .where(
                    N.c.community_id == community_id,
                    N.c.member_id == member_id,
                    N.c.status == "scheduled",
                )
                .values(status="cancelled", outcome=why[:40])
            )
            return result.rowcount or 0

    async def set_outcome(self, ids: Iterable[int], outcome: str) -> None:
        ids = list(ids)
        if not ids:
            return
        async with self.engine.begin() as conn:
            await conn.execute(
                update(N).where(N.c.id.in_(ids), N.c.outcome == "").values(outcome=outcome)
            )

    async def reconcile_returns(self, community_id: str, member_id: str | None = None) -> int:
        """Fill in outcomes from the contribution table: ``returned_at`` is the first
        contribution after the nudge (or after the moment a hold-out member would have had it);
        held-back nudges of members who posted since they were planned are cancelled. Returns
        how many rows changed."""
        await self.store.flush()
        first_after = (
            select(func.min(C.c.created_at))
            .where(
                C.c.community_id == N.c.community_id,
                C.c.member_id == N.c.member_id,
                C.c.created_at > N.c.sent_at,
            )
            .scalar_subquery()
        )
        posted_after_sent = exists().where(
            C.c.community_id == N.c.community_id,
            C.c.member_id == N.c.member_id,
            C.c.created_at > N.c.sent_at,
        )
        posted_after_plan = exists().where(
            C.c.community_id == N.c.community_id,
            C.c.member_id == N.c.member_id,
            C.c.created_at > N.c.created_at,
        )
        where = [N.c.community_id == community_id]
        if member_id is not None:
            where.append(N.c.member_id == member_id)
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(N)
                .where(
                    *where,
                    N.c.status.in_(("sent", "holdout")),
                    N.c.sent_at.is_not(None),
                    N.c.returned_at.is_(None),
                    posted_after_sent,
                )
                .values(
                    returned_at=first_after,
                    outcome=case((N.c.outcome == "", "returned"), else_=N.c.outcome),
                )
                .execution_options(synchronize_session=False)
            )
            cancelled = await conn.execute(
                update(N)
                .where(*where, N.c.status == "scheduled", posted_after_plan)
                .values(status="cancelled", outcome="came back first")
                .execution_options(synchronize_session=False)
            )
        return (result.rowcount or 0) + (cancelled.rowcount or 0)

    async def open_members(self, community_id: str | None = None) -> set[tuple[str, str]]:
        """(community, member) with a nudge still waiting for its outcome."""
        query = select(N.c.community_id, N.c.member_id).where(
            or_(
                and_(N.c.status.in_(("sent", "holdout")), N.c.returned_at.is_(None)),
                N.c.status == "scheduled",
            )
        )
        if community_id is not None:
            query = query.where(N.c.community_id == community_id)
        async with self.engine.connect() as conn:
            return {(c, m) for c, m in (await conn.execute(query.distinct())).all()}

    async def exposures(
        self, community_id: str
    ) -> list[tuple[str, bool, datetime, datetime | None]]:
        """Every step 1, sent or hold-out: (member, hold-out, when, returned_at)."""
        query = select(N.c.member_id, N.c.holdout, N.c.sent_at, N.c.returned_at).where(
            N.c.community_id == community_id,
            N.c.step == 1,
            N.c.status.in_(("sent", "holdout")),
            N.c.sent_at.is_not(None),
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [(m, bool(h), aware(s), aware(r)) for m, h, s, r in rows]  # type: ignore[misc]

    # -- alerts -----------------------------------------------------------------------------

    async def add_alert(
        self,
        community_id: str,
        kind: str,
        ref: str,
        *,
        now: datetime,
        member_id: str | None = None,
        detail: str = "",
        notified: bool = False,
    ) -> int | None:
        """Record an alert once per (community, kind, ref); None if it was already there."""
        row = {
            "community_id": community_id,
            "kind": kind,
            "ref": ref[:200],
            "member_id": member_id,
            "detail": detail[:200],
            "created_at": now,
            "notified_at": now if notified else None,
        }
        try:
            async with self.engine.begin() as conn:
                result = await conn.execute(A.insert().values(**row))
                return int(result.inserted_primary_key[0])
        except IntegrityError:
            return None

    async def alerts(
        self, community_id: str, *, kind: str | None = None, pending: bool = False
    ) -> list[dict[str, Any]]:
        query = select(A).where(A.c.community_id == community_id).order_by(A.c.created_at, A.c.id)
        if kind is not None:
            query = query.where(A.c.kind == kind)
        if pending:
            query = query.where(A.c.notified_at.is_(None))
        async with self.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings()]

    async def claim_alert(self, alert_id: int, now: datetime) -> bool:
        """Mark an alert delivered, once (compare-and-set)."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(A)
                .where(A.c.id == alert_id, A.c.notified_at.is_(None))
                .values(notified_at=now)
            )
            return (result.rowcount or 0) == 1

    async def handoffs(self, community_id: str) -> set[str]:
        """Refs (``member@episode``) of every hand-off so far."""
        query = select(A.c.ref).where(A.c.community_id == community_id, A.c.kind == "handoff")
        async with self.engine.connect() as conn:
            return {r[0] for r in (await conn.execute(query)).all()}

    # -- kudos ------------------------------------------------------------------------------

    async def add_kudos(self, **row: Any) -> int:
        async with self.engine.begin() as conn:
            result = await conn.execute(K.insert().values(**row))
            return int(result.inserted_primary_key[0])

    async def kudos_given_since(self, community_id: str, giver_id: str, since: datetime) -> int:
        query = select(func.count()).where(
            K.c.community_id == community_id, K.c.giver_id == giver_id, K.c.created_at >= since
        )
        async with self.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def gave_kudos_since(
        self, community_id: str, giver_id: str, receiver_id: str, since: datetime
    ) -> bool:
        query = select(func.count()).where(
            K.c.community_id == community_id,
            K.c.giver_id == giver_id,
            K.c.receiver_id == receiver_id,
            K.c.created_at >= since,
        )
        async with self.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one()) > 0

    async def kudos_of(self, community_id: str, member_id: str) -> dict[str, int]:
        """{"given": n, "received": n} over the whole course."""
        out = {}
        async with self.engine.connect() as conn:
            for label, column in (("given", K.c.giver_id), ("received", K.c.receiver_id)):
                query = select(func.count()).where(
                    K.c.community_id == community_id, column == member_id
                )
                out[label] = int((await conn.execute(query)).scalar_one())
        return out

    async def kudos_rows(self, community_id: str) -> list[dict[str, Any]]:
        query = select(K).where(K.c.community_id == community_id).order_by(K.c.id)
        async with self.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings()]

    # -- hooks ------------------------------------------------------------------------------

    async def live_threads(
        self,
        community_id: str,
        *,
        active_since: datetime,
        lookback: datetime,
        now: datetime,
        limit: int = 200,
    ) -> list[LiveThread]:
        """Conversations with a message since ``active_since`` and at least two people,
        newest first, with everyone who posted in them since ``lookback``."""
        await self.store.flush()
        msgs = (
            select(
                conversation_key().label("k"),
                C.c.member_id,
                C.c.channel_id,
                C.c.thread_id,
                C.c.created_at,
            )
            .where(
                C.c.community_id == community_id,
                C.c.created_at >= lookback,
                C.c.created_at <= now,
            )
            .cte("msgs")
        )
        last = func.max(msgs.c.created_at)
        groups = (
            select(
                msgs.c.k,
                func.min(msgs.c.channel_id),
                func.max(msgs.c.thread_id),
                func.count(),
                last,
            )
            .group_by(msgs.c.k)
            .having(and_(last >= active_since, func.count(func.distinct(msgs.c.member_id)) >= 2))
            .order_by(last.desc())
            .limit(limit)
        )
        opener = C.alias("opener")
        async with self.engine.connect() as conn:
            rows = (await conn.execute(groups)).all()
            threads = {
                str(k): LiveThread(str(k), str(ch), th, None, int(n), aware(at))  # type: ignore[arg-type]
                for k, ch, th, n, at in rows
            }
            if not threads:
                return []
            keys = list(threads)
            people = await conn.execute(
                select(msgs.c.k, msgs.c.member_id).where(msgs.c.k.in_(keys)).distinct()
            )
            for k, member in people.all():
                threads[str(k)].people.add(member)
            openers = await conn.execute(
                select(opener.c.message_id, opener.c.member_id).where(
                    opener.c.community_id == community_id, opener.c.message_id.in_(keys)
                )
            )
            for message_id, member in openers.all():
                threads[str(message_id)].opener_id = member
        return sorted(threads.values(), key=lambda t: (t.last_at, t.key), reverse=True)

    async def open_questions(
        self, community_id: str, *, since: datetime, until: datetime, limit: int = 200
    ) -> list[Post]:
        """Questions posted in ``[since, until)`` that nobody else has answered, newest first.

        Answered: another member replied to it, posted in the thread it opened, or (for a
        question inside a thread) posted in that thread after it.
        """
        await self.store.flush()
        query = (
            select(C.c.message_id, C.c.member_id, C.c.channel_id, C.c.thread_id, C.c.created_at)
            .where(
                C.c.community_id == community_id,
                C.c.created_at >= since,
                C.c.created_at < until,
                C.c.kinds.op("&")(QUESTION_BIT) != 0,
            )
            .order_by(C.c.created_at.desc(), C.c.message_id)
        )
        async with self.engine.connect() as conn:
            posts = [
                Post(m, a, ch, t, aware(at))  # type: ignore[arg-type]
                for m, a, ch, t, at in (await conn.execute(query)).all()
            ]
            answered = await _answered_among(conn, community_id, posts)
        return [p for p in posts if p.message_id not in answered][:limit]

    async def unanswered_posts(
        self,
        community_id: str,
        *,
        since: datetime,
        deadline: datetime,
        exclude_authors: Sequence[str] = (),
    ) -> list[Post]:
        """Learners' questions, and members' first top-level posts, made in
        ``[since, deadline]`` that nobody else has answered yet (oldest first)."""
        await self.store.flush()
        firsts = (
            select(C.c.member_id.label("fm"), func.min(C.c.created_at).label("first_at"))
            .where(C.c.community_id == community_id)
            .group_by(C.c.member_id)
            .subquery("firsts")
        )
        is_question = C.c.kinds.op("&")(QUESTION_BIT) != 0
        is_first = and_(
            C.c.created_at == firsts.c.first_at,
            C.c.reply_to_id.is_(None),
            or_(C.c.thread_id.is_(None), C.c.thread_id == C.c.message_id),
        )
        conds = [
            C.c.community_id == community_id,
            C.c.created_at >= since,
            C.c.created_at <= deadline,
            or_(is_question, is_first),
        ]
        if exclude_authors:
            conds.append(C.c.member_id.not_in(list(exclude_authors)))
        query = (
            select(
                C.c.message_id,
                C.c.member_id,
                C.c.channel_id,
                C.c.thread_id,
                C.c.created_at,
                is_question,
            )
            .select_from(C.join(firsts, firsts.c.fm == C.c.member_id))
            .where(*conds)
            .order_by(C.c.created_at, C.c.message_id)
        )
        async with self.engine.connect() as conn:
            posts = [
                Post(m, a, ch, t, aware(at), bool(isq))  # type: ignore[arg-type]
                for m, a, ch, t, at, isq in (await conn.execute(query)).all()
            ]
            answered = await _answered_among(conn, community_id, posts)
        return [p for p in posts if p.message_id not in answered]

    async def last_posts(
        self, community_id: str, members: Iterable[str], now: datetime
    ) -> dict[str, datetime]:
        """{member: their latest contribution up to ``now``} (members who never posted are
        left out)."""
        members = list(members)
        if not members:
            return {}
        await self.store.flush()
        query = (
            select(C.c.member_id, func.max(C.c.created_at))
            .where(
                C.c.community_id == community_id,
                C.c.member_id.in_(members),
                C.c.created_at <= now,
            )
            .group_by(C.c.member_id)
        )
        async with self.engine.connect() as conn:
            return {m: aware(at) for m, at in (await conn.execute(query)).all()}  # type: ignore[misc]

    async def answered_ids(self, community_id: str, posts: Sequence[Post]) -> set[str]:
        """Which of these posts someone else has answered by now."""
        await self.store.flush()
        async with self.engine.connect() as conn:
            return await _answered_among(conn, community_id, posts)

    async def replies_to_members(
        self, community_id: str, since: datetime, targets: Iterable[str]
    ) -> list[ReplyTo]:
        """Replies to ``targets`` since ``since``, newest first, with where they were posted
        (mentions are left out: a nudge says "replied to you")."""
        targets = list(targets)
        if not targets:
            return []
        await self.store.flush()
        query = (
            select(
                E.c.target_id,
                E.c.source_id,
                E.c.message_id,
                C.c.channel_id,
                C.c.thread_id,
                E.c.created_at,
            )
            .select_from(
                E.join(
                    C, and_(C.c.community_id == E.c.community_id, C.c.message_id == E.c.message_id)
                )
            )
            .where(
                E.c.community_id == community_id,
                E.c.kind == "reply",
                E.c.created_at >= since,
                E.c.target_id.in_(targets),
            )
            .order_by(E.c.created_at.desc(), E.c.id.desc())
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [ReplyTo(t, s, m, ch, th, aware(at)) for t, s, m, ch, th, at in rows]  # type: ignore[arg-type]

    async def member_channels(
        self, community_id: str, members: Iterable[str]
    ) -> dict[str, set[str]]:
        """{member: channels they have posted in} over the whole course."""
        members = list(members)
        if not members:
            return {}
        await self.store.flush()
        query = (
            select(C.c.member_id, C.c.channel_id)
            .where(C.c.community_id == community_id, C.c.member_id.in_(members))
            .distinct()
        )
        out: dict[str, set[str]] = {}
        async with self.engine.connect() as conn:
            for member, channel in (await conn.execute(query)).all():
                out.setdefault(member, set()).add(channel)
        return out

    async def answered_prompt(self, community_id: str, prompt_id: int) -> set[str]:
        """Members who answered a reflection prompt, if the reflections tables exist."""
        from storage.schema import metadata

        table = metadata().tables.get("reflection")
        if table is None or "prompt_id" not in table.c:
            return set()
        query = select(table.c.member_id).where(
            table.c.community_id == community_id, table.c.prompt_id == prompt_id
        )
        async with self.engine.connect() as conn:
            return {r[0] for r in (await conn.execute(query)).all()}

    # -- facilitator share ------------------------------------------------------------------

    async def interaction_counts(
        self, community_id: str, since: datetime, until: datetime, staff: Iterable[str]
    ) -> tuple[int, int]:
        """(interactions, of which involve a facilitator) in ``[since, until]``: edges between
        two different members, counted, not weighted."""
        staff = list(staff)
        await self.store.flush()
        if staff:
            involves = or_(E.c.source_id.in_(staff), E.c.target_id.in_(staff))
            with_staff = func.coalesce(func.sum(case((involves, 1), else_=0)), 0)
        else:
            with_staff = literal(0)
        query = select(func.count(), with_staff).where(
            E.c.community_id == community_id,
            E.c.created_at >= since,
            E.c.created_at <= until,
            E.c.source_id != E.c.target_id,
        )
        async with self.engine.connect() as conn:
            total, with_staff = (await conn.execute(query)).one()
        return int(total), int(with_staff or 0)

    async def peer_helpers(
        self,
        community_id: str,
        since: datetime,
        until: datetime,
        staff: Iterable[str],
        limit: int = 3,
    ) -> list[str]:
        """Learners who replied to other learners most in the window (candidates to hand
        questions to)."""
        staff = list(staff)
        await self.store.flush()
        conds = [
            E.c.community_id == community_id,
            E.c.kind == "reply",
            E.c.created_at >= since,
            E.c.created_at <= until,
            E.c.source_id != E.c.target_id,
        ]
        if staff:
            conds += [E.c.source_id.not_in(staff), E.c.target_id.not_in(staff)]
        n = func.count().label("n")
        query = (
            select(E.c.source_id, n)
            .where(*conds)
            .group_by(E.c.source_id)
            .order_by(n.desc(), E.c.source_id)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            return [r[0] for r in (await conn.execute(query)).all()]

    # -- erasure ----------------------------------------------------------------------------

    async def forget(self, community_id: str | None, member_id: str) -> None:
        """What the schema-wide erase cannot see: nudge texts that name the member as a peer,
        and the sent-ledger rows of this capability's direct messages (written without a
        community, so the per-community erase misses them)."""
        peer_where = [N.c.peer_id == member_id]
        sent_where = [S.c.member_id == member_id]
        if community_id is not None:
            peer_where.append(N.c.community_id == community_id)
            sent_where.append(
                or_(*(S.c.dedupe_key.like(f"{p}:{community_id}:%") for p in SENT_PREFIXES))
            )
        else:
            sent_where.append(or_(*(S.c.dedupe_key.like(f"{p}:%") for p in SENT_PREFIXES)))
        async with self.engine.begin() as conn:
            await conn.execute(update(N).where(*peer_where).values(text=None, hook_ref=None))
            await conn.execute(delete(S).where(*sent_where))


async def _answered_among(conn, community_id: str, posts: Sequence[Post]) -> set[str]:
    """Ids of the posts another member has answered: replied to, posted in the thread the post
    opened, or (for a post inside a thread) posted in that thread after it.

    One read of the replies and thread messages since the oldest post, over the
    ``(community, created_at)`` index, matched in memory: a correlated NOT EXISTS would need an
    index on ``reply_to_id`` and is quadratic without one.
    """
    if not posts:
        return set()
    since = min(p.created_at for p in posts)
    query = select(C.c.member_id, C.c.reply_to_id, C.c.thread_id, C.c.created_at).where(
        C.c.community_id == community_id,
        C.c.created_at >= since,
        or_(C.c.reply_to_id.is_not(None), C.c.thread_id.is_not(None)),
    )
    replied: dict[str, set[str]] = {}
    in_thread: dict[str, list[tuple[str, datetime]]] = {}
    for author, reply_to, thread, at in (await conn.execute(query)).all():
        if reply_to is not None:
            replied.setdefault(reply_to, set()).add(author)
        if thread is not None:
            in_thread.setdefault(thread, []).append((author, aware(at)))  # type: ignore[arg-type]
    answered: set[str] = set()
    for p in posts:
        if replied.get(p.message_id, set()) - {p.member_id}:
            answered.add(p.message_id)
        elif any(a != p.member_id for a, _ in in_thread.get(p.message_id, ())):
            answered.add(p.message_id)
        elif p.thread_id is not None and any(
            a != p.member_id and at > p.created_at for a, at in in_thread.get(p.thread_id, ())
        ):
            answered.add(p.message_id)
    return answered
