"""Interaction analytics on hand-built communities whose answers are known: the four patterns
per learner and per thread, the network figures, quiet states, the ``/course network``
command, the pattern line in ``/course me`` and ``/course stats member:``, betweenness and
the charts."""

from __future__ import annotations

from datetime import timedelta

import networkx as nx
import pytest

from bot.actions import Reply
from bot.analytics import (
    LABELS,
    PatternResult,
    compute_analytics,
    label_pattern,
    member_pattern,
    thread_pattern,
)
from bot.centrality import betweenness
from bot.charts import NetworkNode, activity_chart, network_chart, pattern_chart
from bot.classify import KINDS
from bot.config import AnalyticsSettings
from bot.quiet import quiet_states
from storage.analytics_queries import KIND_BITS
from tests.analytics_scenarios import EXPECTED_PATTERNS, course_with_known_patterns, later
from tests.conftest import BACKENDS

PNG = b"\x89PNG\r\n\x1a\n"


async def analytics_now(session, days: int = 7, **kw):
    app = session.app
    now = app.clock.now()
    return await compute_analytics(
        app.store,
        session.community_id,
        since=now - timedelta(days=days),
        until=now,
        settings=app.settings.analytics,
        **kw,
    )


# -- the known community, on SQLite and (when reachable) PostgreSQL ---------------------------


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_patterns_threads_and_figures_of_a_known_community(session):
    ids = await course_with_known_patterns(session)
    a = await analytics_now(session)

    assert {m: s.pattern for m, s in a.learners.items() if m != "fran"} == EXPECTED_PATTERNS
    assert a.patterns == {
        "one-alone": 1,
        "one-to-one": 5,
        "one-to-many": 1,
        "many-to-many": 4,
        "inactive": 1,
    }
    assert a.learners["fran"].is_facilitator and a.learners["fran"].pattern == "inactive"
    bob = a.learners["bob"]
    assert (bob.partners, bob.reciprocal_partners, bob.interactions_received) == (3, 0, 3)
    assert a.learners["xa"].reciprocal_partners == 3

    # Threads: bob's three (one-to-one each), the pair's, lou's two, the lively one.
    assert a.figures.threads == 7
    assert a.thread_patterns == {
        "one-alone": 2,
        "one-to-one": 4,
        "one-to-many": 0,
        "many-to-many": 1,
    }

    f = a.figures
    assert (f.members, f.facilitators, f.active_members) == (13, 1, 11)
    assert f.isolated == ["lou"]
    assert f.facilitator_share == 0.0 and not f.facilitator_centric
    # Directed pairs: bob's 3, the pair 2, the lively group 12 -> 17 of 13 * 12.
    assert len(a.pairs) == 17
    assert f.density == pytest.approx(17 / (13 * 12))
    assert f.reciprocity == pytest.approx(14 / 17)
    # bob links his three repliers, so he is the only learner between others.
    assert [m for m, _v in f.brokers] == ["bob"]
    # Top-level learner posts: bob 3, pat 1, lou 2, xa 1; only lou's two got no answer.
    assert (f.posts, f.answered, f.unanswered) == (7, 5, 2)
    assert [p.message_id for p in a.unanswered_posts] == [ids["lonely_1"], ids["lonely_2"]]
    assert {p.member_id for p in a.unanswered_posts} == {"lou"}
    # First replies after 20, 20, 20 (bob), 15 (pat) and 10 minutes (xa).
    assert f.median_first_reply_minutes == pytest.approx(20.0)
    assert a.by_kind["idea"] == 7 and sum(a.by_kind.values()) >= f.contributions
    assert a.by_edge_kind["reply"] == f.interactions  # no reactions or kudos here

    assert a.learners["lou"].quiet_state == "isolated"
    assert a.learners["ned"].quiet_state == "new"
    assert a.learners["fran"].quiet_state is None  # facilitators get no quiet state
    assert a.learners["xa"].quiet_state == "active"


async def test_a_window_before_anything_happened_is_empty(session):
    await course_with_known_patterns(session)
    app = session.app
    now = app.clock.now()
    a = await compute_analytics(
        app.store,
        "console",
        since=now - timedelta(days=30),
        until=now - timedelta(days=20),
        settings=app.settings.analytics,
    )
    assert a.figures.contributions == 0 and a.pairs == []
    assert a.patterns["inactive"] == 12 and a.figures.median_first_reply_minutes is None
    assert a.figures.threads == 0 and a.figures.facilitator_share is None


# -- facilitator-centric --------------------------------------------------------------------


async def test_a_facilitator_who_answers_everything_makes_the_course_facilitator_centric(
    session,
):
    learners = ("ana", "ben", "cat", "dev", "eve")
    for name in learners:
        await session.join(name)
    for day in range(3):
        for name in learners:
            post = await session.say(name, f"Question {day} from {name}: how does this work?")
            later(session, timedelta(minutes=30))
            await session.reply("fran", post, f"@{name} good question, here is how.")
            later(session, timedelta(minutes=30))
        later(session, timedelta(hours=20))
    a = await analytics_now(session)
    f = a.figures
    assert f.facilitator_share == 1.0 and f.facilitator_centric
    assert f.brokers == []  # the hub is the facilitator, and facilitators are not brokers
    assert all(a.learners[n].pattern == "one-to-one" for n in learners)
    assert a.learners["fran"].pattern == "one-to-many"
    # Every learner post got the facilitator's answer after 30 minutes.
    assert f.median_first_reply_minutes == pytest.approx(30.0) and f.unanswered == 0
    assert a.weekly[-1].facilitator_interactions == a.weekly[-1].interactions == 15


async def test_facilitators_named_in_the_config_count_as_facilitators(tmp_path, clock):
    from bot.adapters.console import ConsoleSession
    from bot.app import HearthApp
    from tests.conftest import make_settings

    settings = make_settings(tmp_path / "h.db", course={"facilitator_ids": ["tutor"]})
    app = await HearthApp.create(settings, clock=clock, migrate=False)
    try:
        s = await ConsoleSession.open(app)
        post = await s.say("ana", "Where is the syllabus?")
        await s.reply("tutor", post, "Pinned in #general.")
        a = await analytics_now(s, facilitator_ids=settings.course.facilitator_ids)
        assert a.learners["tutor"].is_facilitator and a.figures.facilitator_share == 1.0
    finally:
        await app.close()


# -- quiet states -----------------------------------------------------------------------------


async def test_a_learner_who_went_from_daily_to_silent_is_dropping(session):
    for name in ("dora", "gil"):
        await session.join(name)
    for day in range(21):
        post = await session.say("dora", f"Day {day}: my notes on today's reading.")
        later(session, timedelta(hours=1))
        await session.reply("gil", post, "Thanks, this helps!")
        later(session, timedelta(hours=23))
    # dora stops; gil keeps posting every day for five more days.
    later(session, timedelta(hours=3))
    for day in range(5):
        await session.say("gil", f"Day {21 + day}: still here.")
        later(session, timedelta(days=1))
    states = await quiet_states(
        session.app.store, "console", session.app.clock.now(), session.app.settings.analytics
    )
    assert states["dora"].state == "dropping"
    assert states["dora"].detail == "1 post this week vs 6.7 a week before"
    assert states["gil"].state == "active"
    a = await analytics_now(session)
    assert a.learners["dora"].quiet_state == "dropping"
    assert a.learners["dora"].contributions == 1  # one post in the last seven days
    # Both weeks gil was her only partner.
    assert a.learners["dora"].pattern == a.learners["dora"].previous_pattern == "one-to-one"
    trend = [w.contributions for w in a.weekly]
    assert trend[-1] < trend[-2]


# -- commands ---------------------------------------------------------------------------------


async def test_network_command_is_for_facilitators_and_sends_a_picture(session):
    await course_with_known_patterns(session)
    refused = await session.command("bob", "/course network")
    assert "for facilitators only" in refused
    assert not any(
        isinstance(s.action, Reply) and s.action.files for s in session.outbox if s.to == "bob"
    )

    text = await session.command("fran", "/course network 14")
    sent = session.outbox[-1]
    assert isinstance(sent.action, Reply) and sent.action.ephemeral
    (png,) = sent.action.files
    assert png.content_type == "image/png" and png.data.startswith(PNG)
    assert png.filename == "network-14d.png"
    assert "Interaction network, last 14 days" in text
    assert "Isolated learners: 1 (lou)" in text
    assert "many-to-many 4" in text
    assert "unanswered after 24h: 2 of 7 posts" in text

    bad = await session.command("fran", "/course network 0")
    assert "usage" in bad.lower()


async def test_network_figures_count_in_words_for_one(session):
    await session.say("alice", "My first idea")
    text = await session.command("fran", "/course network")
    assert "(1 facilitator), active: 1; 1 contribution, 0 interactions, 1 thread" in text
    assert "unanswered after 24h: 0 of 1 post" in text and "1 posts" not in text


async def test_me_and_stats_show_the_pattern_and_last_weeks(session):
    for name in ("pat", "quinn", "xa", "yb"):
        await session.join(name)
    # Week 1: pat only talks with quinn.
    last = await session.say("pat", "Quinn, notes?")
    for speaker in ("quinn", "pat", "quinn"):
        later(session, timedelta(minutes=10))
        last = await session.reply(speaker, last, "Sure.")
    later(session, timedelta(days=7))
    # Week 2: pat exchanges both ways with xa and yb.
    for other in ("xa", "yb"):
        post = await session.say(other, f"{other} asks: what did you think?")
        later(session, timedelta(minutes=5))
        answer = await session.reply("pat", post, "I liked it.")
        later(session, timedelta(minutes=5))
        await session.reply(other, answer, "Same here!")
    me = await session.command("pat", "/course me")
    assert "Pattern: many-to-many (last week: one-to-one)" in me
    stats = await session.command("fran", "/course stats member:quinn")
    assert "Pattern: no interactions yet (last week: one-to-one)" in stats
    result = await member_pattern(
        session.app.store,
        "console",
        "pat",
        since=session.app.clock.now() - timedelta(days=7),
        until=session.app.clock.now(),
        settings=session.app.settings.analytics,
    )
    assert (result.pattern, result.partners, result.reciprocal_partners) == (
        "many-to-many",
        2,
        2,
    )


async def test_erasure_removes_a_member_from_the_analytics(session):
    await course_with_known_patterns(session)
    await session.command("lou", "/course forgetme confirm:yes")
    a = await analytics_now(session)
    assert "lou" not in a.learners and a.figures.isolated == []
    assert all(p.member_id != "lou" for p in a.unanswered_posts)


# -- pure rules ------------------------------------------------------------------------------


def test_pattern_thresholds_come_from_the_settings():
    settings = AnalyticsSettings()
    assert label_pattern(3, {}, {}, settings) == PatternResult("one-alone")
    assert label_pattern(0, {}, {}, settings).pattern == "inactive"
    # 0.6 of the weight with one partner is enough for one-to-one...
    assert label_pattern(1, {"a": 0.6}, {"b": 0.4}, settings).pattern == "one-to-one"
    # ...just below it is one-to-many.
    assert label_pattern(1, {"a": 0.59}, {"b": 0.41}, settings).pattern == "one-to-many"
    # Two reciprocated partners make many-to-many, whatever the shares.
    both = label_pattern(1, {"a": 5, "b": 1}, {"a": 5, "b": 1}, settings)
    assert (both.pattern, both.reciprocal_partners, both.top_partner) == ("many-to-many", 2, "a")
    stricter = AnalyticsSettings(many_to_many_partners=3, one_to_one_share=0.9)
    assert label_pattern(1, {"a": 5, "b": 1}, {"a": 5, "b": 1}, stricter).pattern == ("one-to-many")
    assert [thread_pattern(p, b, settings) for p, b in ((1, 0), (2, 2), (3, 2), (5, 3))] == [
        "one-alone",
        "one-to-one",
        "one-to-many",
        "many-to-many",
    ]
    assert LABELS[-1] == "inactive" and len(LABELS) == 5


async def test_edge_weights_follow_the_settings(session):
    await session.join("ana")
    await session.join("ben")
    post = await session.say("ana", "A thought.")
    await session.react("ben", post, "👍")
    await session.react("ben", post, "🎉")
    app = session.app
    now = app.clock.now()
    window = dict(since=now - timedelta(days=1), until=now)
    a = await compute_analytics(app.store, "console", settings=app.settings.analytics, **window)
    (pair,) = a.pairs
    assert (pair.source, pair.target, pair.count, pair.weight) == ("ben", "ana", 2, 0.5)
    heavy = AnalyticsSettings(reaction_weight=2.0)
    b = await compute_analytics(app.store, "console", settings=heavy, **window)
    assert b.pairs[0].weight == 4.0
    assert a.by_edge_kind["reaction"] == 2


def test_storage_kind_bits_match_the_classifier():
    assert KIND_BITS == KINDS


# -- betweenness --------------------------------------------------------------------------------


def test_betweenness_equals_networkx_and_sampling_is_seeded():
    graph = nx.relabel_nodes(nx.gnm_random_graph(60, 150, seed=3), lambda i: f"m{i}")
    graph.remove_nodes_from([v for v in list(graph) if graph.degree(v) == 0])
    expected = nx.betweenness_centrality(graph)
    mine = betweenness(list(graph.edges()) + [(v, u) for u, v in graph.edges()])
    assert set(mine) == set(expected)
    assert max(abs(mine[v] - expected[v]) for v in graph) < 1e-12
    # Two components, a star and a path.
    star = betweenness([("hub", "a"), ("hub", "b"), ("hub", "c"), ("x", "y"), ("y", "z")])
    reference = nx.betweenness_centrality(
        nx.Graph([("hub", "a"), ("hub", "b"), ("hub", "c"), ("x", "y"), ("y", "z")])
    )
    assert star == pytest.approx(reference)
    sampled = betweenness(graph.edges(), k=20, seed=7)
    assert sampled == betweenness(graph.edges(), k=20, seed=7)
    assert sampled != betweenness(graph.edges(), k=20, seed=8)
    top = max(expected, key=expected.get)
    assert sampled[top] > 0
    assert betweenness([]) == {} and betweenness([("a", "a")]) == {}


# -- charts -------------------------------------------------------------------------------------


def test_network_chart_is_deterministic_and_readable_at_300_learners():
    nodes = [
        NetworkNode(f"m{i}", f"learner {i}", size=i % 17, group=LABELS[i % 5], marked=i < 2)
        for i in range(320)
    ]
    edges = [(f"m{i}", f"m{(i * 7 + 3) % 320}", 1 + i % 4) for i in range(900)]
    first = network_chart(nodes, edges, title="Big course", seed=3, max_nodes=300)
    assert first.startswith(PNG)
    assert first == network_chart(list(reversed(nodes)), edges, title="Big course", seed=3)
    assert first != network_chart(nodes, edges, title="Big course", seed=4)
    empty = network_chart([], [], title="Nobody yet")
    assert empty.startswith(PNG)


def test_activity_and_pattern_charts_render():
    from datetime import date

    days = [date(2026, 9, 7) + timedelta(days=i) for i in range(10)]
    png = activity_chart(days, {"idea": list(range(10))}, total=[i * 2 for i in range(10)])
    assert png.startswith(PNG)
    assert activity_chart([], {}).startswith(PNG)
    assert pattern_chart({"one-alone": 2, "many-to-many": 7}).startswith(PNG)
