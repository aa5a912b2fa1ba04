"""Interaction analytics: the interaction graph of a window, the four interaction patterns per
learner and per thread, and the network figures a facilitator needs (DESIGN section 1).

The heavy lifting is grouped SQL (``storage.analytics_queries``); this module only works on the
aggregated rows: one weighted edge per (source, target) pair, one row per member, per thread
and per day. networkx sees the already aggregated graph, and betweenness is sampled on large
graphs, so a week of a 5,000-member course takes well under two seconds.

Interaction weight
    Every edge kind has a weight in ``[analytics]`` (reply 1, mention 0.5, reaction 0.25,
    kudos 1). The weight of a pair is the sum over its interactions of the *current* setting
    of their kind, so changing a weight re-weights history too.

Patterns per learner (over the window; checked in this order)
    ``inactive``
        no contribution and no interaction in the window (not one of the four patterns).
    ``one-alone``
        contributed, but nobody answered, mentioned, reacted to or thanked them and they did
        none of that to anyone: no interaction partner at all.
    ``many-to-many``
        reciprocated exchanges (interaction in both directions) with at least
        ``many_to_many_partners`` (default 2) different members.
    ``one-to-one``
        at least ``one_to_one_share`` (default 0.6) of the learner's interaction weight, given
        and received, is with a single partner.
    ``one-to-many``
        everything else: several partners but little back-and-forth (one addresses many, or
        many answer one).

Patterns per thread
    A thread is a platform thread, or a top-level post with the replies to it (and replies to
    those, two levels deep). Its participants are the members who posted in it plus the
    members they answered. One participant: ``one-alone``; two: ``one-to-one``; three or more:
    ``many-to-many`` when at least ``many_to_many_partners + 1`` participants both answered
    and were answered inside the thread, else ``one-to-many`` (a star around one member).

Network figures
    ``density`` directed pairs with any interaction / n(n-1) over the members; ``reciprocity``
    the share of those pairs that interact both ways; ``isolated`` learners labelled
    ``one-alone``; ``facilitator_share`` the share of interactions (counted, not weighted)
    with a facilitator at either end, flagged *facilitator-centric* at
    ``facilitator_centric_share``; ``brokers`` the (at most five) learners with the highest
    betweenness, at least 0.05, on the undirected, unweighted graph of members who interacted
    (estimated from ``broker_samples`` sources with a fixed seed above
    ``broker_sample_above`` members);
    ``median_first_reply_minutes`` over learners' top-level posts that a peer answered;
    ``unanswered`` learners' top-level posts without a reply after ``unanswered_hours``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from bot.config import AnalyticsSettings
from bot.quiet import quiet_states
from bot.wording import counted
from storage import analytics_queries as q
from storage.repos import Store

log = logging.getLogger(__name__)

PATTERNS: tuple[str, ...] = ("one-alone", "one-to-one", "one-to-many", "many-to-many")
INACTIVE = "inactive"
#: Every label a learner can get: the four patterns, then "inactive".
LABELS: tuple[str, ...] = (*PATTERNS, INACTIVE)
EDGE_KINDS: tuple[str, ...] = ("reply", "mention", "reaction", "kudos")
BROKERS_SHOWN = 5
#: Below this normalised betweenness nobody is a broker: in a dense group every member lies on
#: a few shortest paths, and naming them would be noise.
BROKER_MIN_BETWEENNESS = 0.05


def kind_weights(settings: AnalyticsSettings) -> dict[str, float]:
    """The configured weight of each interaction kind."""
    return {
        "reply": settings.reply_weight,
        "mention": settings.mention_weight,
        "reaction": settings.reaction_weight,
        "kudos": settings.kudos_weight,
    }


# -- patterns (pure) ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PatternResult:
    pattern: str
    partners: int = 0
    reciprocal_partners: int = 0
    top_partner: str | None = None
    top_share: float = 0.0


def label_from_features(
    contributions: int,
    partners: int,
    reciprocal_partners: int,
    top_weight: float,
    total_weight: float,
    settings: AnalyticsSettings,
) -> str:
    """The pattern from aggregated features (the rules of the module docstring)."""
    if partners == 0 or total_weight <= 0:
        return INACTIVE if contributions == 0 else "one-alone"
    if reciprocal_partners >= settings.many_to_many_partners:
        return "many-to-many"
    if top_weight / total_weight >= settings.one_to_one_share:
        return "one-to-one"
    return "one-to-many"


def label_pattern(
    contributions: int,
    given: Mapping[str, float],
    received: Mapping[str, float],
    settings: AnalyticsSettings,
) -> PatternResult:
    """The pattern of one learner from their interaction weight per partner (see module doc)."""
    weight: dict[str, float] = defaultdict(float)
    for partner, w in given.items():
        weight[partner] += w
    for partner, w in received.items():
        weight[partner] += w
    partners = sorted(p for p, w in weight.items() if w > 0)
    if not partners:
        return PatternResult(INACTIVE if contributions == 0 else "one-alone")
    reciprocal = sum(1 for p in partners if given.get(p, 0) > 0 and received.get(p, 0) > 0)
    total = sum(weight[p] for p in partners)
    top = max(partners, key=lambda p: weight[p])  # sorted first, so ties break by id
    pattern = label_from_features(
        contributions, len(partners), reciprocal, weight[top], total, settings
    )
    return PatternResult(pattern, len(partners), reciprocal, top, weight[top] / total)


def thread_pattern(participants: int, both_ways: int, settings: AnalyticsSettings) -> str:
    """The pattern of one thread from its number of participants and of participants who
    both answered and were answered in it (see module doc)."""
    if participants <= 1:
        return "one-alone"
    if participants == 2:
        return "one-to-one"
    if both_ways >= settings.many_to_many_partners + 1:
        return "many-to-many"
    return "one-to-many"


# -- results --------------------------------------------------------------------------------------


@dataclass(slots=True)
class LearnerStats:
    """One member in the window. Facilitators are included and flagged."""

    member_id: str
    display_name: str
    is_facilitator: bool
    contributions: int = 0
    words: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    interactions_given: int = 0
    interactions_received: int = 0
    partners: int = 0
    reciprocal_partners: int = 0
    top_partner: str | None = None
    top_share: float = 0.0
    pattern: str = INACTIVE
    previous_pattern: str | None = None
    betweenness: float = 0.0
    quiet_state: str | None = None
    quiet_detail: str = ""


class Pair(NamedTuple):
    """All interactions from ``source`` to ``target`` in the window."""

    source: str
    target: str
    count: int
    weight: float


@dataclass(slots=True)
class Figures:
    members: int = 0
    learners: int = 0
    facilitators: int = 0
    active_members: int = 0
    active_learners: int = 0
    contributions: int = 0
    words: int = 0
    interactions: int = 0
    density: float = 0.0
    reciprocity: float = 0.0
    isolated: list[str] = field(default_factory=list)
    facilitator_share: float | None = None
    facilitator_centric: bool = False
    brokers: list[tuple[str, float]] = field(default_factory=list)
    betweenness_sampled: bool = False
    threads: int = 0
    posts: int = 0
    answered: int = 0
    median_first_reply_minutes: float | None = None
    unanswered: int = 0


@dataclass(slots=True)
class Analytics:
    """Everything computed for one community and window; reports render it, cogs quote it."""

    community_id: str
    since: datetime
    until: datetime
    settings: AnalyticsSettings
    figures: Figures
    learners: dict[str, LearnerStats]
    by_kind: dict[str, int]
    by_edge_kind: dict[str, int]
    patterns: dict[str, int]
    thread_patterns: dict[str, int]
    pairs: list[Pair]
    daily: list[q.DayActivity]
    weekly: list[q.WeekActivity]
    unanswered_posts: list[q.UnansweredPost]

    def name(self, member_id: str) -> str:
        learner = self.learners.get(member_id)
        return learner.display_name if learner else member_id

    def facilitator_ids(self) -> set[str]:
        return {m for m, s in self.learners.items() if s.is_facilitator}

    def digraph(self):
        """The interaction graph as a networkx ``DiGraph`` (every member a node; edges carry
        ``weight`` and ``count``), for further analysis. Built on demand: the figures above
        do not need it."""
        import networkx as nx

        graph = nx.DiGraph()
        for member_id, learner in self.learners.items():
            graph.add_node(member_id, name=learner.display_name, facilitator=learner.is_facilitator)
        graph.add_edges_from(
            (p.source, p.target, {"weight": p.weight, "count": p.count}) for p in self.pairs
        )
        return graph


# -- computing ----------------------------------------------------------------------------------


def _pairs(
    rows: Iterable[q.EdgeWeight], known: set[str], weights: Mapping[str, float]
) -> dict[tuple[str, str], list[float]]:
    """Fold (source, target, kind) rows into {(source, target): [count, weight]}."""
    out: dict[tuple[str, str], list[float]] = {}
    for source, target, kind, count, stored in rows:
        if source not in known or target not in known:
            continue  # bots, members who left
        weight = weights.get(kind)
        w = count * weight if weight is not None else float(stored or 0.0)
        pair = out.get((source, target))
        if pair is None:
            out[(source, target)] = [count, w]
        else:
            pair[0] += count
            pair[1] += w
    return out


def _directed(pairs: Mapping[tuple[str, str], list[float]]):
    given: dict[str, dict[str, float]] = defaultdict(dict)
    received: dict[str, dict[str, float]] = defaultdict(dict)
    for (source, target), (_count, weight) in pairs.items():
        given[source][target] = weight
        received[target][source] = weight
    return given, received


async def _previous_patterns(
    store: Store,
    community_id: str,
    since: datetime,
    until: datetime,
    settings: AnalyticsSettings,
) -> dict[str, str]:
    """Every member's pattern in an earlier window, from per-member features (SQL)."""
    counts, features = await asyncio.gather(
        q.member_counts(store, community_id, since, until),
        q.member_features(store, community_id, since, until, weights=kind_weights(settings)),
    )
    out: dict[str, str] = {}
    for member_id in set(counts) | set(features):
        f = features.get(member_id)
        c = counts[member_id].contributions if member_id in counts else 0
        out[member_id] = (
            label_from_features(
                c, f.partners, f.reciprocal_partners, f.top_weight, f.total_weight, settings
            )
            if f
            else label_from_features(c, 0, 0, 0.0, 0.0, settings)
        )
    return out


def _betweenness(
    pairs: Iterable[tuple[str, str]], settings: AnalyticsSettings
) -> tuple[dict[str, float], bool]:
    """Betweenness on the undirected, unweighted graph of members who interacted; sampled
    from ``broker_samples`` sources (fixed seed) above ``broker_sample_above`` members."""
    from bot.centrality import betweenness

    pairs = list(pairs)
    n = len({m for pair in pairs for m in pair})
    sampled = n > settings.broker_sample_above
    k = min(settings.broker_samples, n) if sampled else None
    return betweenness(pairs, k=k, seed=settings.seed), sampled


async def compute_analytics(
    store: Store,
    community_id: str,
    *,
    since: datetime,
    until: datetime,
    settings: AnalyticsSettings,
    facilitator_ids: Iterable[str] = (),
    previous: bool = True,
    quiet: bool = True,
    trend: bool = True,
) -> Analytics:
    """All analytics of ``community_id`` for the window ``(since, until]``.

    ``previous`` also labels every learner over the window of the same length just before
    (``previous_pattern``); ``quiet`` adds each learner's quiet state as of ``until``;
    ``trend`` adds the weekly trend. ``facilitator_ids`` adds to the members flagged as
    facilitators in the database. The independent SQL aggregates run concurrently, each on
    its own pooled connection (SQLite runs each connection's query in its own thread, outside
    the GIL), so they share the machine's cores.
    """
    members = await q.members(store, community_id)  # flushes the writer once for all
    known = {m.member_id for m in members}
    facilitators = {m.member_id for m in members if m.is_facilitator} | (
        set(facilitator_ids) & known
    )
    length = until - since

    async def nothing():
        return None

    (
        counts,
        edge_rows,
        previous_labels,
        shapes,
        replies,
        daily,
        weekly,
        states,
    ) = await asyncio.gather(
        q.member_counts(store, community_id, since, until),
        q.edge_weights(store, community_id, since, until),
        _previous_patterns(store, community_id, since - length, since, settings)
        if previous
        else nothing(),
        q.thread_shapes(
            store, community_id, since, until, both_cap=settings.many_to_many_partners + 1
        ),
        q.reply_times(
            store,
            community_id,
            since,
            until,
            unanswered_after=timedelta(hours=settings.unanswered_hours),
            exclude_authors=sorted(facilitators),
        ),
        q.daily_activity(store, community_id, since, until),
        q.weekly_activity(
            store,
            community_id,
            until,
            weeks=settings.trend_weeks,
            facilitator_ids=sorted(facilitators),
        )
        if trend
        else nothing(),
        quiet_states(store, community_id, until, settings) if quiet else nothing(),
    )
    pair_map = _pairs(edge_rows, known, kind_weights(settings))
    given, received = _directed(pair_map)
    by_edge_kind = dict.fromkeys(EDGE_KINDS, 0)
    for source, target, kind, count, _w in edge_rows:
        if source in known and target in known:
            by_edge_kind[kind] = by_edge_kind.get(kind, 0) + count

    learners: dict[str, LearnerStats] = {}
    for m in members:
        c = counts.get(m.member_id)
        label = label_pattern(
            c.contributions if c else 0,
            given.get(m.member_id, {}),
            received.get(m.member_id, {}),
            settings,
        )
        learners[m.member_id] = LearnerStats(
            member_id=m.member_id,
            display_name=m.display_name,
            is_facilitator=m.member_id in facilitators,
            contributions=c.contributions if c else 0,
            words=c.words if c else 0,
            by_kind=dict(c.by_kind) if c else dict.fromkeys(q.KIND_BITS, 0),
            partners=label.partners,
            reciprocal_partners=label.reciprocal_partners,
            top_partner=label.top_partner,
            top_share=label.top_share,
            pattern=label.pattern,
            previous_pattern=previous_labels.get(m.member_id, INACTIVE) if previous else None,
        )
    # Unsorted here; renderers sort when they need a stable order.
    pairs = [Pair(s, t, int(n), w) for (s, t), (n, w) in pair_map.items()]
    for pair in pairs:
        learners[pair.source].interactions_given += pair.count
        learners[pair.target].interactions_received += pair.count

    figures = Figures()
    figures.members = len(members)
    figures.facilitators = len(facilitators)
    figures.learners = len(members) - len(facilitators)
    figures.active_members = sum(1 for s in learners.values() if s.contributions > 0)
    figures.active_learners = sum(
        1 for s in learners.values() if s.contributions > 0 and not s.is_facilitator
    )
    figures.contributions = sum(c.contributions for c in counts.values())
    figures.words = sum(c.words for c in counts.values())
    figures.interactions = sum(p.count for p in pairs)
    n = len(known)
    figures.density = len(pairs) / (n * (n - 1)) if n > 1 else 0.0
    reciprocated = sum(1 for (s, t) in pair_map if (t, s) in pair_map)
    figures.reciprocity = reciprocated / len(pairs) if pairs else 0.0
    figures.isolated = [
        m for m, s in learners.items() if not s.is_facilitator and s.pattern == "one-alone"
    ]
    if figures.interactions:
        with_facilitator = sum(
            p.count for p in pairs if p.source in facilitators or p.target in facilitators
        )
        figures.facilitator_share = with_facilitator / figures.interactions
        figures.facilitator_centric = (
            figures.facilitator_share >= settings.facilitator_centric_share
        )
    betweenness, figures.betweenness_sampled = _betweenness(pair_map.keys(), settings)
    for member_id, value in betweenness.items():
        learners[member_id].betweenness = value
    ranked = sorted(
        (
            (m, v)
            for m, v in betweenness.items()
            if v >= BROKER_MIN_BETWEENNESS and not learners[m].is_facilitator
        ),
        key=lambda item: (-item[1], learners[item[0]].display_name),
    )
    figures.brokers = ranked[:BROKERS_SHOWN]

    thread_counts = dict.fromkeys(PATTERNS, 0)
    for shape in shapes:
        thread_counts[thread_pattern(shape.participants, shape.both_ways, settings)] += (
            shape.threads
        )
    figures.threads = sum(shape.threads for shape in shapes)
    figures.posts = replies.posts
    figures.answered = replies.answered
    figures.unanswered = replies.unanswered
    if replies.median_seconds is not None:
        figures.median_first_reply_minutes = replies.median_seconds / 60.0
    if quiet:
        for member_id, state in states.items():
            if member_id in learners:
                learners[member_id].quiet_state = state.state
                learners[member_id].quiet_detail = state.detail

    by_kind = dict.fromkeys(q.KIND_BITS, 0)
    for c in counts.values():
        for kind, value in c.by_kind.items():
            by_kind[kind] += value
    pattern_counts = dict.fromkeys(LABELS, 0)
    for s in learners.values():
        if not s.is_facilitator:
            pattern_counts[s.pattern] += 1
    return Analytics(
        community_id=community_id,
        since=since,
        until=until,
        settings=settings,
        figures=figures,
        learners=learners,
        by_kind=by_kind,
        by_edge_kind=by_edge_kind,
        patterns=pattern_counts,
        thread_patterns=thread_counts,
        pairs=pairs,
        daily=daily,
        weekly=weekly or [],
        unanswered_posts=replies.unanswered_posts,
    )


async def member_pattern(
    store: Store,
    community_id: str,
    member_id: str,
    *,
    since: datetime,
    until: datetime,
    settings: AnalyticsSettings,
) -> PatternResult:
    """One member's pattern in ``(since, until]``, from their own edges only (cheap)."""
    known = {m.member_id for m in await q.members(store, community_id)}
    counts = await q.member_counts(store, community_id, since, until, member_id=member_id)
    rows = await q.edge_weights(store, community_id, since, until, member_id=member_id)
    given, received = _directed(_pairs(rows, known, kind_weights(settings)))
    contributions = counts[member_id].contributions if member_id in counts else 0
    return label_pattern(
        contributions, given.get(member_id, {}), received.get(member_id, {}), settings
    )


# -- words for people --------------------------------------------------------------------------

PATTERN_MEANING = {
    "one-alone": "posts that nobody answered, and no replies to anyone",
    "one-to-one": "most interaction is with one partner",
    "one-to-many": "several partners, little back-and-forth",
    "many-to-many": "reciprocal exchanges with several members",
    INACTIVE: "no contributions or interactions",
}


def figure_lines(a: Analytics, *, names: int = 5) -> list[str]:
    """The network figures in a few lines of plain text (for chat and the console)."""
    f = a.figures

    def who(ids: Iterable[str]) -> str:
        ids = list(ids)
        shown = ", ".join(a.name(m) for m in ids[:names])
        return shown + (f" and {len(ids) - names} more" if len(ids) > names else "")

    share = "n/a" if f.facilitator_share is None else f"{f.facilitator_share:.0%}"
    lines = [
        f"Members: {f.members} ({counted(f.facilitators, 'facilitator')}), "
        f"active: {f.active_members}; {counted(f.contributions, 'contribution')}, "
        f"{counted(f.interactions, 'interaction')}, {counted(f.threads, 'thread')}",
        f"Density: {f.density:.3f}, reciprocity: {f.reciprocity:.0%}, "
        f"facilitator share of interactions: {share}"
        + (" (facilitator-centric)" if f.facilitator_centric else ""),
        "Patterns: " + ", ".join(f"{label} {a.patterns[label]}" for label in LABELS),
        f"Isolated learners: {len(f.isolated)}" + (f" ({who(f.isolated)})" if f.isolated else ""),
        "Brokers: "
        + (", ".join(f"{a.name(m)} ({v:.2f})" for m, v in f.brokers) if f.brokers else "none"),
    ]
    median = (
        "no answered posts"
        if f.median_first_reply_minutes is None
        else _duration(f.median_first_reply_minutes)
    )
    lines.append(
        f"Median time to first reply: {median}; unanswered after "
        f"{a.settings.unanswered_hours}h: {f.unanswered} of {counted(f.posts, 'post')}"
    )
    return lines


def _duration(minutes: float) -> str:
    if minutes < 90:
        return f"{minutes:.0f} min"
    if minutes < 48 * 60:
        return f"{minutes / 60:.1f} h"
    return f"{minutes / 1440:.1f} days"
