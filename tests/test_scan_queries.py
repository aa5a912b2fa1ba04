"""The quiet-member scan and the weekly summary's counts against brute force.

A random community (members who left, a bot, a facilitator, replies, mentions, posts on the
window edges) is written straight to the tables; ``member_activity``, ``learner_counts`` and
``daily_counts`` must give exactly what a loop over every row gives, on SQLite and
PostgreSQL."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from storage import summary_queries as sq
from storage.queries import member_activity
from storage.repos import C, E, M
from tests.conftest import BACKENDS

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

CID = "scan"
NOW = datetime(2026, 11, 16, 12, tzinfo=UTC)
WINDOW = NOW - timedelta(days=7)
BASE = WINDOW - timedelta(days=21)


async def _community(app, seed: int = 7) -> tuple[list[dict], list[dict], list[dict]]:
    rng = random.Random(seed)
    members = []
    for i in range(40):
        members.append(
            {
                "community_id": CID,
                "member_id": f"m{i}",
                "display_name": "" if i % 7 == 0 else f"member {i}",
                "is_bot": i == 1,
                "is_facilitator": i == 2,
                "joined_at": NOW - timedelta(days=rng.randint(0, 60)) if i % 3 else None,
                "left_at": NOW - timedelta(days=1) if i == 3 else None,
                "first_seen": NOW - timedelta(days=60, microseconds=i),
                "tracked": True,
                "reachable": True,
            }
        )
    # Members 32 and up never post; the others post at random times, some exactly on the
    # window's edges, one after "now".
    edges_on = [WINDOW, NOW, BASE, WINDOW - timedelta(microseconds=1), NOW + timedelta(hours=1)]
    posts, edges = [], []
    for n in range(600):
        author = f"m{rng.randrange(30)}"
        at = (
            edges_on[n]
            if n < len(edges_on)
            else NOW - timedelta(seconds=rng.randint(0, 50 * 86400))
        )
        at = at.replace(microsecond=0) if n % 5 == 0 and n >= len(edges_on) else at
        posts.append(
            {
                "community_id": CID,
                "message_id": str(n),
                "member_id": author,
                "channel_id": "c",
                "created_at": at,
                "kinds": rng.randrange(32),
                "word_count": rng.randint(0, 40),
                "attachments": 0,
            }
        )
        # Interactions only among the first twenty: 20-29 post alone.
        if int(author[1:]) < 20 and rng.random() < 0.4:
            target = f"m{rng.randrange(20)}"
            if target != author:
                kind = rng.choice(("reply", "mention", "reaction"))
                edges.append(
                    {
                        "community_id": CID,
                        "kind": kind,
                        "source_id": author,
                        "target_id": target,
                        "message_id": str(n),
                        "detail": "",
                        "weight": 1.0,
                        "created_at": at,
                    }
                )
    # Member 30 last posted before the baseline (the last post ever is then found apart
    # from the window's counts), member 31 only after "now".
    for message_id, author, at in (
        ("old", "m30", BASE - timedelta(days=9)),
        ("late", "m31", NOW + timedelta(hours=2)),
    ):
        posts.append(
            {
                "community_id": CID,
                "message_id": message_id,
                "member_id": author,
                "channel_id": "c",
                "created_at": at,
                "kinds": 1,
                "word_count": 3,
                "attachments": 0,
            }
        )
    async with app.store.engine.begin() as conn:
        await conn.execute(insert(M), members)
        await conn.execute(insert(C), posts)
        await conn.execute(insert(E), edges)
    return members, posts, edges


async def test_member_activity_equals_a_loop_over_every_row(app):
    members, posts, edges = await _community(app)
    got = await member_activity(app.store, CID, window_start=WINDOW, now=NOW, baseline_start=BASE)
    expected_ids = {m["member_id"] for m in members if not m["is_bot"] and m["left_at"] is None}
    assert set(got) == expected_ids
    isolated = 0
    for member_id, a in got.items():
        row = next(m for m in members if m["member_id"] == member_id)
        own = [p["created_at"] for p in posts if p["member_id"] == member_id]
        in_window = [t for t in own if WINDOW <= t <= NOW]
        given = sum(
            1 for e in edges if e["source_id"] == member_id and WINDOW <= e["created_at"] <= NOW
        )
        received = sum(
            1 for e in edges if e["target_id"] == member_id and WINDOW <= e["created_at"] <= NOW
        )
        assert a.display_name == (row["display_name"] or member_id)
        assert a.is_facilitator == row["is_facilitator"]
        assert a.joined_at == row["joined_at"]
        assert a.first_seen == row["first_seen"]
        assert a.last_post == max((t for t in own if t <= NOW), default=None)
        assert a.posts_in_window == len(in_window)
        assert a.posts_before_window == sum(1 for t in own if BASE <= t < WINDOW)
        assert (a.edges_given, a.edges_received) == (given, received)
        alone = bool(in_window) and not given and not received
        isolated += alone
        # Looked up exactly where the quiet labels read it.
        assert a.first_post_in_window == (min(in_window) if alone else None)
        for value in (a.joined_at, a.first_seen, a.last_post, a.first_post_in_window):
            assert value is None or value.tzinfo is not None
    assert isolated >= 5  # members 20-29 post without interacting
    assert got["m30"].last_post == BASE - timedelta(days=9)
    assert got["m31"].last_post is None and got["m32"].last_post is None


async def test_learner_counts_and_periods_equal_a_loop_over_every_row(app):
    members, posts, _edges = await _community(app, seed=11)
    staff = {"m2", "m5"}  # the flagged facilitator and one named in the config
    since, until = WINDOW, NOW
    learners = [
        m["member_id"]
        for m in members
        if not m["is_bot"] and m["left_at"] is None and m["member_id"] not in staff
    ]
    posted = {p["member_id"] for p in posts if since <= p["created_at"] < until}
    assert await sq.learner_counts(app.store, CID, since, until, staff) == (
        len(learners),
        sum(1 for m in learners if m in posted),
    )
    assert await sq.learner_ids(app.store, CID, staff) == set(learners)
    # The week before, then days (one of them empty), as the weekly summary asks.
    starts = [since - timedelta(days=7), since, since + timedelta(hours=5)]
    starts += [since + timedelta(days=d) for d in range(1, 7)]
    starts.insert(3, starts[2] + timedelta(seconds=1))
    got = await sq.daily_counts(app.store, CID, starts, until)
    ends = [*starts[1:], until]
    for i, (start, end) in enumerate(zip(starts, ends, strict=True)):
        rows = [p for p in posts if start <= p["created_at"] < end]
        if not rows:
            assert i not in got
            continue
        counts = got[i]
        assert counts.contributions == len(rows)
        assert counts.words == sum(p["word_count"] for p in rows)
        assert counts.by_kind == {
            kind: sum(1 for p in rows if p["kinds"] & (1 << bit))
            for bit, kind in enumerate(sq.KIND_BITS)
        }
    assert 2 not in got  # the one-second period


async def test_daily_counts_over_more_days_than_one_compound_select_takes(app):
    _members, posts, _edges = await _community(app, seed=3)
    starts = [NOW - timedelta(hours=h) for h in range(1300, 0, -1)]  # hourly, 1,300 periods
    got = await sq.daily_counts(app.store, CID, starts, NOW)
    assert sum(c.contributions for c in got.values()) == sum(
        1 for p in posts if starts[0] <= p["created_at"] < NOW
    )


async def test_open_questions_counts_past_its_limit_and_lists_the_oldest(app):
    def post(i: int, author: str, kinds: int, reply_to: str | None = None) -> dict:
        return {
            "community_id": CID,
            "message_id": f"q{i}",
            "member_id": author,
            "channel_id": "general",
            "thread_id": None,
            "reply_to_id": reply_to,
            "reply_to_member_id": "m1" if reply_to else None,
            "created_at": WINDOW + timedelta(hours=i),
            "kinds": kinds,
            "word_count": 5,
            "attachments": 0,
        }

    question = sq.QUESTION_BIT
    rows = [post(i, "m1", question) for i in range(8)]  # eight questions, in time order
    rows.append(post(20, "m2", 0, reply_to="q3"))  # someone answers the fourth
    async with app.store.engine.begin() as conn:
        await conn.execute(insert(C), rows)
    count, oldest = await sq.open_questions(app.store, CID, WINDOW, NOW, limit=5)
    assert count == 7
    assert [q.message_id for q in oldest] == ["q0", "q1", "q2", "q4", "q5"]
    count, none = await sq.open_questions(app.store, CID, WINDOW, NOW, limit=0)
    assert (count, none) == (7, [])
    assert await sq.open_questions(app.store, CID, NOW, NOW + timedelta(days=1)) == (0, [])


async def _conversations(app, seed: int) -> list[dict]:
    """Messages in conversations of every shape the key resolves: stored keys, platform
    threads, replies whose key is left to the parent's thread or to the parent, monologues
    (the busiest of them longer than any conversation between people), messages outside the
    week and another community's."""
    rng = random.Random(seed)
    rows: list[dict] = []

    def add(message_id: str, author: str, at: datetime, **keys) -> None:
        rows.append(
            {
                "community_id": keys.pop("community_id", CID),
                "message_id": message_id,
                "member_id": author,
                "channel_id": f"c{rng.randrange(3)}",
                "created_at": at,
                "kinds": 1,
                "word_count": 1,
                "attachments": 0,
                "conversation_id": None,
                "thread_id": None,
                "reply_to_id": None,
                **keys,
            }
        )

    for t in range(60):
        root = f"k{t:04d}"
        at = WINDOW + timedelta(hours=rng.randint(-30, 7 * 24 - 1))
        add(root, f"m{rng.randrange(6)}", at, conversation_id=root)
        monologue = t % 7 == 0
        for r in range(rng.randint(0, 14 if monologue else 6)):
            author = rows[-1]["member_id"] if monologue else f"m{rng.randrange(6)}"
            at += timedelta(minutes=rng.randint(1, 600))
            shape = rng.randrange(4)
            if shape == 0:  # the key was stored
                add(f"{root}-{r}", author, at, conversation_id=root, reply_to_id=root)
            elif shape == 1:  # a message in the platform thread the root opened
                add(f"{root}-{r}", author, at, thread_id=root)
            elif shape == 2:  # a reply written before its parent was seen: the parent's key
                add(f"{root}-{r}", author, at, reply_to_id=root)
            else:  # a reply to a message inside the thread: that message's thread
                parent = f"{root}-t{r}"
                add(parent, author, at, thread_id=root)
                add(f"{root}-{r}", author, at, reply_to_id=parent)
    add("other", "m1", WINDOW + timedelta(hours=1), community_id="elsewhere")
    async with app.store.engine.begin() as conn:
        await conn.execute(insert(C), rows)
    return rows


def _ranking(rows: list[dict]) -> list[tuple]:
    """(key, channel, messages, people) of every conversation with messages in the week,
    most messages first."""
    by_id = {r["message_id"]: r for r in rows if r["community_id"] == CID}

    def key(r: dict) -> str:
        parent = by_id.get(r.get("reply_to_id") or "")
        parent_thread = parent.get("thread_id") if parent else None
        return (
            r.get("conversation_id")
            or r.get("thread_id")
            or parent_thread
            or r.get("reply_to_id")
            or r["message_id"]
        )

    groups: dict[str, list[dict]] = {}
    for r in by_id.values():
        if WINDOW <= r["created_at"] < NOW:
            groups.setdefault(key(r), []).append(r)
    return sorted(
        (
            (k, min(r["channel_id"] for r in g), len(g), len({r["member_id"] for r in g}))
            for k, g in groups.items()
        ),
        key=lambda t: (-t[2], t[0]),
    )


@pytest.mark.parametrize("candidates", [10, 1])
async def test_busiest_threads_equal_a_loop_over_every_row(app, monkeypatch, candidates):
    """With one candidate per conversation asked for, the monologues at the top of the
    count crowd out the conversations between people, and the whole ranking is computed."""
    monkeypatch.setattr(sq, "BUSIEST_CANDIDATES", candidates)
    rows = await _conversations(app, seed=5)
    for limit in (1, 3, 8):
        got = await sq.busiest_threads(app.store, CID, WINDOW, NOW, limit=limit)
        expected = [t for t in _ranking(rows) if t[3] >= 2][:limit]
        assert len(expected) == limit
        assert [(t.key, t.channel_id, t.messages, t.participants) for t in got] == expected
    # The data has what the test is about: monologues ranked above the first answer, and
    # replies whose key comes from the parent's thread and from the parent.
    ranking = _ranking(rows)
    assert ranking[0][3] == 1 and ranking[1][3] == 1


async def _threads(app, seed: int) -> list[dict]:
    """Questions of every shape the open-questions test tells apart: top-level and inside
    platform threads, answered by a reply, by someone else in the thread they opened, by a
    later post in their thread, or only by their own author; some before the window."""
    rng = random.Random(seed)
    rows: list[dict] = []

    def add(author: str, at: datetime, **keys) -> dict:
        row = {
            "community_id": CID,
            "message_id": f"t{len(rows)}",
            "member_id": author,
            "channel_id": "help",
            "thread_id": None,
            "reply_to_id": None,
            "reply_to_member_id": None,
            "created_at": at,
            "kinds": sq.QUESTION_BIT if rng.random() < 0.5 else 1,
            "word_count": 4,
            "attachments": 0,
            **keys,
        }
        rows.append(row)
        return row

    for _ in range(80):
        at = WINDOW + timedelta(minutes=rng.randint(-3 * 24 * 60, 7 * 24 * 60 - 1))
        root = add(f"m{rng.randrange(5)}", at)
        in_thread: list[dict] = []
        for _ in range(rng.choice((0, 0, 1, 2, 4))):
            at += timedelta(minutes=rng.randint(0, 300))
            author = root["member_id"] if rng.random() < 0.3 else f"m{rng.randrange(5)}"
            if rng.random() < 0.3:  # a reply to the root or to a post in the thread
                parent = rng.choice([root, *in_thread])
                other = parent["member_id"] if parent["member_id"] != author else None
                keys = {"reply_to_id": parent["message_id"], "reply_to_member_id": other}
                if parent is not root or rng.random() < 0.5:
                    keys["thread_id"] = root["message_id"]
                row = add(author, at, **keys)
            else:
                row = add(author, at, thread_id=root["message_id"])
            if row["thread_id"] is not None:
                in_thread.append(row)
    async with app.store.engine.begin() as conn:
        await conn.execute(insert(C), rows)
    return rows


def _open_questions(rows: list[dict], exclude: set[str]) -> list[dict]:
    """The questions of the week nobody else answered, oldest first, by brute force."""

    def answered(q: dict) -> bool:
        return any(
            WINDOW <= r["created_at"] < NOW
            and r["reply_to_id"] == q["message_id"]
            and r["reply_to_member_id"] is not None
            for r in rows
        ) or any(
            r["member_id"] != q["member_id"]
            and (
                r["thread_id"] == q["message_id"]
                or (
                    q["thread_id"] is not None
                    and r["thread_id"] == q["thread_id"]
                    and r["created_at"] > q["created_at"]
                )
            )
            for r in rows
        )

    open_ = [
        q
        for q in rows
        if WINDOW <= q["created_at"] < NOW
        and q["kinds"] & sq.QUESTION_BIT
        and q["member_id"] not in exclude
        and not answered(q)
    ]
    return sorted(open_, key=lambda q: (q["created_at"], q["message_id"]))


async def test_open_questions_equal_a_loop_over_every_row(app):
    rows = await _threads(app, seed=13)
    for exclude in (set(), {"m0"}):
        expected = _open_questions(rows, exclude)
        count, oldest = await sq.open_questions(
            app.store, CID, WINDOW, NOW, exclude_authors=exclude, limit=6
        )
        assert count == len(expected)
        assert [q.message_id for q in oldest] == [q["message_id"] for q in expected[:6]]
        assert [q.thread_id for q in oldest] == [q["thread_id"] for q in expected[:6]]
    # The data has what the test is about: questions inside threads both open and answered
    # by a later post, and questions answered only in the thread they opened.
    in_window = [
        q for q in rows if WINDOW <= q["created_at"] < NOW and q["kinds"] & sq.QUESTION_BIT
    ]
    still_open = {q["message_id"] for q in _open_questions(rows, set())}
    threaded = [q for q in in_window if q["thread_id"]]
    assert any(q["message_id"] in still_open for q in threaded)
    assert any(q["message_id"] not in still_open for q in threaded)
    opened = {r["thread_id"] for r in rows if r["thread_id"]}
    assert any(q["message_id"] in opened and q["message_id"] not in still_open for q in in_window)
