"""Peer kudos on the console: the recipient's DM, the support edge and its weight, the daily
allowance per course-local day, no self-kudos or bot kudos, no credit for rings of
back-and-forth thanks, tracking-off members, and what is stored of the reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.adapters.console import ConsoleSession
from bot.app import HearthApp
from storage.nudges_queries import NudgeRepo
from storage.repos import E
from tests.conftest import make_settings

CID = "console"


async def open_course(tmp_path, clock, **nudges_and_more):
    storage = nudges_and_more.pop("storage", {})
    settings = make_settings(
        tmp_path / "kudos.db",
        course={"timezone": "Europe/London"},
        nudges=nudges_and_more,
        analytics={"kudos_weight": 1.5},
        storage=storage,
        reflections={"enabled": False},
        summaries={"enabled": False},
    )
    app = await HearthApp.create(settings, clock=clock, migrate=False)
    session = await ConsoleSession.open(app)
    await session.join("fran", facilitator=True)
    for name in ("alice", "bob", "carol"):
        await session.join(name)
    return app, session


async def kudos_edges(app):
    from sqlalchemy import select

    await app.store.flush()
    async with app.store.engine.connect() as conn:
        rows = await conn.execute(select(E).where(E.c.kind == "kudos").order_by(E.c.id))
        return [dict(r) for r in rows.mappings()]


def dms(session, name):
    return [s for s in session.outbox if s.kind == "dm" and s.to == name]


async def test_kudos_reach_the_recipient_and_count_as_support(tmp_path, clock):
    app, s = await open_course(tmp_path, clock)
    try:
        out = await s.command("alice", "/course kudos member:@bob reason:your summary saved me")
        assert "bob will get your kudos privately" in out
        [dm] = dms(s, "bob")
        assert "alice" in dm.text and '"your summary saved me"' in dm.text
        [edge] = await kudos_edges(app)
        assert (edge["source_id"], edge["target_id"]) == ("alice", "bob")
        assert edge["detail"] == "support" and edge["weight"] == 1.5
        counts = await app.store.edge_counts(CID, "bob", clock.now() - timedelta(days=1))
        assert counts["received"] == {"kudos": 1}
        assert "Kudos: 1 received, 0 given" in await s.command("bob", "/course me")
        # Free text is not kept unless the community keeps message text.
        assert [k["reason"] for k in await NudgeRepo(app.store).kudos_rows(CID)] == [None]
        # Nothing public: no post to any channel.
        assert not [x for x in s.outbox if x.kind == "post"]
    finally:
        await app.close()


async def test_no_self_kudos_no_bots_no_strangers(tmp_path, clock):
    app, s = await open_course(tmp_path, clock)
    try:
        await app.store.upsert_member(
            CID, "robo", is_bot=True, display_name="robo", now=clock.now()
        )
        assert "someone else" in await s.command("alice", "/course kudos member:@alice")
        assert "Bots" in await s.command("alice", "/course kudos member:@robo")
        assert "don't know a member" in await s.command("alice", "/course kudos member:@zed")
        assert "missing member" in await s.command("alice", "/course kudos")
        assert await kudos_edges(app) == []
        assert await NudgeRepo(app.store).kudos_rows(CID) == []
        assert [x for x in s.outbox if x.kind == "dm"] == []
    finally:
        await app.close()


async def test_daily_allowance_per_giver_in_course_local_days(tmp_path, clock):
    clock.set(datetime(2026, 9, 7, 22, 30, tzinfo=UTC))  # 23:30 in London
    app, s = await open_course(tmp_path, clock, kudos_per_day=2)
    try:
        assert "Thanks sent" in await s.command("alice", "/course kudos member:@bob")
        assert "Thanks sent" in await s.command("alice", "/course kudos member:@carol")
        out = await s.command("alice", "/course kudos member:@carol reason:again")
        assert "2 kudos today" in out and "daily allowance" in out
        # Another giver has their own allowance.
        assert "Thanks sent" in await s.command("bob", "/course kudos member:@carol")
        clock.advance(timedelta(hours=1))  # 00:30 in London: a new day, though still the 7th UTC
        assert "Thanks sent" in await s.command("alice", "/course kudos member:@carol")
        assert len(await NudgeRepo(app.store).kudos_rows(CID)) == 4
        assert len(dms(s, "carol")) == 3
    finally:
        await app.close()


async def test_back_and_forth_thanks_earn_no_extra_credit(tmp_path, clock):
    app, s = await open_course(tmp_path, clock)
    try:
        await s.command("bob", "/course kudos member:@alice reason:thanks")
        clock.advance(timedelta(days=2))
        out = await s.command("alice", "/course kudos member:@bob reason:thanks back")
        assert "thanked each other recently" in out
        assert len(dms(s, "bob")) == 1  # still delivered
        edges = await kudos_edges(app)
        assert [(e["source_id"], e["target_id"]) for e in edges] == [("bob", "alice")]
        rows = await NudgeRepo(app.store).kudos_rows(CID)
        assert [(r["giver_id"], r["credited"]) for r in rows] == [("bob", True), ("alice", False)]
        # A third member is not part of the ring.
        await s.command("carol", "/course kudos member:@bob")
        # Outside the ring window, thanks count again.
        clock.advance(timedelta(days=8))
        out = await s.command("alice", "/course kudos member:@bob")
        assert "thanked each other" not in out
        edges = await kudos_edges(app)
        assert [(e["source_id"], e["target_id"]) for e in edges] == [
            ("bob", "alice"),
            ("carol", "bob"),
            ("alice", "bob"),
        ]
    finally:
        await app.close()


async def test_tracking_off_members_get_no_credit(tmp_path, clock):
    app, s = await open_course(tmp_path, clock)
    try:
        await s.command("carol", "/course tracking off")
        out = await s.command("alice", "/course kudos member:@carol")
        assert "Tracking is paused" not in out  # carol's setting is not alice's business
        await s.command("alice", "/course tracking off")
        assert "Tracking is paused" in await s.command("alice", "/course kudos member:@bob")
        assert len(dms(s, "carol")) == 1
        assert await kudos_edges(app) == []
    finally:
        await app.close()


async def test_reason_is_kept_only_with_text_retention_and_kudos_can_be_off(tmp_path, clock):
    app, s = await open_course(tmp_path, clock, storage={"retain_text_days": 30})
    try:
        await s.command("alice", "/course kudos member:@bob reason:great links")
        assert [k["reason"] for k in await NudgeRepo(app.store).kudos_rows(CID)] == ["great links"]
    finally:
        await app.close()
    (tmp_path / "off").mkdir()
    app, s = await open_course(tmp_path / "off", clock, kudos_per_day=0)
    try:
        assert "switched off" in await s.command("alice", "/course kudos member:@bob")
    finally:
        await app.close()


async def test_two_processes_never_deliver_a_kudos_twice(tmp_path, clock):
    app1, s1 = await open_course(tmp_path, clock)
    app2 = await HearthApp.create(app1.settings, clock=clock, migrate=False)
    s2 = await ConsoleSession.open(app2)
    try:
        await s1.command("alice", "/course kudos member:@bob")
        dm = dms(s1, "bob")[0].action
        # The same DM replayed through the other process (a retried delivery) is dropped by
        # the sent ledger.
        await app2.runtime.deliver([dm])
        assert dms(s2, "bob") == []
    finally:
        await app2.close()
        await app1.close()
