"""The nudge ladder, hook choice, hold-out assignment and the effect report, as pure functions.

Everything here follows DESIGN section 2 (what the evidence says about nudges):

- A nudge always points at something concrete, a :class:`Hook`: a live thread the member has
  not joined, a peer's open question, the current reflection prompt, or a peer who replied to
  them. With no hook there is no nudge: generic "please participate" messages do not work.
- The ladder (:func:`decide`): step 1 is a light invitation; step 2, if the member is still
  absent ``step2_after`` later, is a personal message naming a thread or a peer; step 3 hands
  the member to the facilitators (a human closes the loop) and Hearth stops nudging them until
  they return. Any contribution starts a new *episode* (:func:`episode_key`) and so resets the
  ladder. Two nudges are always at least ``min_between`` apart.
- A stable, seeded hold-out group (:func:`in_holdout`) gets no nudges at all, so that
  :func:`effect_report` can compare return rates of nudged and not-nudged members, with 95%
  Wilson intervals per group and a Newcombe (hybrid score) interval for the difference.

The cog (``bot/cogs/nudges.py``) gathers the facts from the database and applies the policy
(``bot/policy.py``); this module decides.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import NormalDist

#: Quiet states that may get a nudge (``bot.quiet``); ``active`` never does.
NUDGE_STATES = ("new", "quiet", "isolated", "dropping")
HOOK_KINDS = ("thread", "question", "reflection", "peer")

#: Which hook to prefer, per step and quiet state. Step 1 invites into something live; step 2
#: is personal, so a named peer comes first. New members have no peer who replied to them yet,
#: and answering someone's question is the gentlest first post; isolated members are pointed at
#: other people's posts (answering builds on others) before anything else.
HOOK_ORDER: dict[int, dict[str, tuple[str, ...]]] = {
    1: {
        "new": ("question", "thread", "reflection"),
        "quiet": ("thread", "question", "reflection", "peer"),
        "isolated": ("question", "thread", "peer", "reflection"),
        "dropping": ("thread", "question", "peer", "reflection"),
    },
    2: {
        "new": ("question", "thread", "reflection"),
        "quiet": ("peer", "question", "thread", "reflection"),
        "isolated": ("question", "peer", "thread", "reflection"),
        "dropping": ("peer", "thread", "question", "reflection"),
    },
}


# -- identities -------------------------------------------------------------------------------


def _unit(*parts: str) -> float:
    """A number in [0, 1) from a SHA-256 of the parts: stable across runs and processes."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_holdout(seed: str, community_id: str, member_id: str, fraction: float) -> bool:
    """Whether a member is in the hold-out group: stable per (seed, community, member)."""
    if fraction <= 0:
        return False
    return _unit("holdout", seed, community_id, member_id) < fraction


def variant_index(count: int, *parts: str) -> int:
    """Which of ``count`` template variants to use: stable, so two processes agree."""
    return int(_unit("variant", *parts) * count) if count > 1 else 0


def episode_key(last_post: datetime | None) -> str:
    """The absence episode a nudge belongs to: the member's last contribution before it."""
    return "none" if last_post is None else last_post.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- where things are ---------------------------------------------------------------------------


def channel_text(platform: str, channel_id: str) -> str:
    """A channel as a member reads it: ``#general`` on the console, a mention on platforms."""
    if platform in ("discord", "slack"):
        return f"<#{channel_id}>"
    return f"#{channel_id}"


def message_where(
    platform: str,
    community_id: str,
    channel_id: str,
    message_id: str,
    thread_id: str | None = None,
) -> str:
    """A reference to one message that the platform renders as something to click.

    Discord: a jump link (a thread is its own channel). Slack: the channel mention (permalinks
    need the workspace's domain, which events do not carry). Console: ``message #12 in
    #general``, which ``:reply 12`` answers.
    """
    if platform == "discord":
        if thread_id and thread_id == message_id:
            return f"https://discord.com/channels/{community_id}/{thread_id}"
        return f"https://discord.com/channels/{community_id}/{thread_id or channel_id}/{message_id}"
    if platform == "slack":
        return f"a message in <#{channel_id}>"
    return f"message #{message_id} in #{channel_id}"


# -- hooks ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hook:
    """Something concrete to point a member at."""

    kind: str  # thread, question, reflection, peer
    ref: str  # message id, or prompt id for a reflection
    where: str  # rendered reference (see message_where)
    channel: str = ""  # rendered channel
    channel_id: str = ""
    peer_id: str | None = None
    peer: str = ""  # the peer's display name
    people: int = 0  # people in the thread so far
    title: str = ""  # the reflection prompt's title
    at: datetime | None = None  # last activity, for "most recent first"
    #: True when the member has posted in this channel before (their topic, their people).
    familiar: bool = False


def choose_hook(
    step: int, state: str, hooks: Iterable[Hook], used_refs: Iterable[str] = ()
) -> Hook | None:
    """The best hook for this step and state, or None when there is nothing concrete.

    Kinds are tried in :data:`HOOK_ORDER`; within a kind, channels the member posted in come
    first, then the most recent. A hook already named by an earlier nudge of the same episode
    is used only when nothing else is left.
    """
    order = HOOK_ORDER.get(step, HOOK_ORDER[2]).get(state, HOOK_KINDS)
    used = set(used_refs)
    candidates = [h for h in hooks if h.kind in order]
    if not candidates:
        return None

    def rank(h: Hook) -> tuple:
        recent = -(h.at.timestamp() if h.at is not None else 0.0)
        return (h.ref in used, order.index(h.kind), not h.familiar, recent, h.ref)

    return min(candidates, key=rank)


# -- the ladder ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NudgeRow:
    """What the ladder needs to know about one stored nudge of the member."""

    step: int
    status: str  # scheduled, sent, holdout, cancelled
    episode: str
    due_at: datetime
    sent_at: datetime | None = None
    hook_ref: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do for one member now.

    ``action``: ``nudge`` (send ``step``), ``holdout`` (record that step 1 would go out now;
    send nothing), ``handoff`` (step 3: tell the facilitators), ``wait`` (not yet; see
    ``not_before``) or ``none`` (nothing until something changes).
    """

    action: str
    step: int | None = None
    reason: str = ""
    not_before: datetime | None = None


#: Rounds run at a fixed local time but a confirmed round may go out later that day, so "N days
#: after the last nudge" is read with this much slack: the next step falls on the Nth day's
#: round, not on the day after it.
SLACK = timedelta(hours=6)


def decide(
    *,
    state: str,
    since: datetime | None,
    episode: str,
    rows: Sequence[NudgeRow],
    handed_off: bool,
    holdout: bool,
    now: datetime,
    step2_after: timedelta,
    min_between: timedelta,
    grace: timedelta = timedelta(0),
) -> Decision:
    """The next rung of the ladder for one member (policy checks come after, in the cog)."""
    if state not in NUDGE_STATES:
        return Decision("none", reason="active")
    if handed_off:
        return Decision("none", reason="handed off to the facilitators; no nudges until they post")
    current = [r for r in rows if r.episode == episode and r.status != "cancelled"]
    held = [r for r in current if r.status == "scheduled"]
    if held:
        r = held[0]
        return Decision("wait", r.step, "held back by quiet hours", r.due_at)
    if any(r.status == "holdout" for r in current):
        return Decision("none", reason="hold-out group (gets no nudges, for comparison)")
    # A member who joined an hour ago, or whose first post is an hour old, is not a concern yet.
    if state in ("new", "isolated") and since is not None and now - since < grace:
        why = "joined recently" if state == "new" else "posted recently; replies may still come"
        return Decision("wait", 1, why, since + grace)
    sent = {r.step: r for r in current if r.status == "sent" and r.sent_at is not None}
    if 2 in sent:
        due = sent[2].sent_at + step2_after - SLACK  # type: ignore[operator]
        if now >= due:
            return Decision("handoff", 3, "did not answer two nudges")
        return Decision("wait", 3, "step 2 sent; hand-off to the facilitators if still away", due)
    step = 1
    if 1 in sent:
        due = sent[1].sent_at + step2_after - SLACK  # type: ignore[operator]
        if now < due:
            return Decision("wait", 2, "step 1 sent; step 2 if still away", due)
        step = 2
    last = max(
        (r.sent_at for r in rows if r.status == "sent" and r.sent_at is not None), default=None
    )
    if last is not None and now < last + min_between - SLACK:
        return Decision("wait", step, "nudged recently", last + min_between - SLACK)
    if step == 1 and holdout:
        return Decision("holdout", 1, "hold-out group (gets no nudges, for comparison)")
    return Decision("nudge", step)


# -- the effect report ---------------------------------------------------------------------------

Z95 = NormalDist().inv_cdf(0.975)


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for k successes out of n (None when n is 0)."""
    if n <= 0:
        return None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # Exact ends at 0 and n (the formula leaves rounding dust there).
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high


def newcombe_difference(
    k1: int, n1: int, k2: int, n2: int, z: float = Z95
) -> tuple[float, float, float] | None:
    """p1 - p2 with Newcombe's hybrid score interval (method 10, built from two Wilson
    intervals; well behaved for small groups and rates near 0 or 1). None if a group is empty."""
    a, b = wilson(k1, n1, z), wilson(k2, n2, z)
    if a is None or b is None:
        return None
    p1, p2 = k1 / n1, k2 / n2
    d = p1 - p2
    low = d - math.sqrt((p1 - a[0]) ** 2 + (b[1] - p2) ** 2)
    high = d + math.sqrt((a[1] - p1) ** 2 + (p2 - b[0]) ** 2)
    return d, low, high


@dataclass(frozen=True, slots=True)
class Exposure:
    """One member's step 1: sent (nudged) or recorded only (hold-out), and when they came back."""

    member_id: str
    holdout: bool
    at: datetime
    returned_at: datetime | None


@dataclass(frozen=True, slots=True)
class GroupResult:
    label: str
    members: int  # members with a step 1 (sent or would-have-been) so far
    complete: int  # ... whose return window has ended: the denominator
    returned: int  # ... of whom came back within the window: the numerator
    pending: int  # still inside their window
    pending_returned: int  # ... already back
    interval: tuple[float, float] | None

    @property
    def rate(self) -> float | None:
        return self.returned / self.complete if self.complete else None


@dataclass(frozen=True, slots=True)
class EffectReport:
    window: timedelta
    nudged: GroupResult
    holdout: GroupResult
    #: (difference, low, high) of the return rates, nudged minus hold-out.
    difference: tuple[float, float, float] | None


def effect_report(
    exposures: Iterable[Exposure], now: datetime, window: timedelta = timedelta(days=7)
) -> EffectReport:
    """Nudged vs hold-out: of each group, how many came back within ``window``.

    The unit is the member, at their first step 1 (a member who went quiet twice is counted
    once, so the groups hold independent people). Only members whose window has ended count
    in the rates, so a member nudged yesterday who has not posted yet is not a failure; they
    are shown as pending.
    """
    first: dict[str, Exposure] = {}
    for e in exposures:
        if e.at > now:
            continue  # a held-back step 1 that has not happened yet
        if e.member_id not in first or e.at < first[e.member_id].at:
            first[e.member_id] = e

    def group(label: str, items: list[Exposure]) -> GroupResult:
        done = [e for e in items if e.at + window <= now]
        back = [e for e in done if _back_within(e, window)]
        pending = [e for e in items if e.at + window > now]
        return GroupResult(
            label=label,
            members=len(items),
            complete=len(done),
            returned=len(back),
            pending=len(pending),
            pending_returned=sum(1 for e in pending if e.returned_at is not None),
            interval=wilson(len(back), len(done)),
        )

    nudged = group("nudged", [e for e in first.values() if not e.holdout])
    held = group("hold-out", [e for e in first.values() if e.holdout])
    diff = newcombe_difference(nudged.returned, nudged.complete, held.returned, held.complete)
    return EffectReport(window, nudged, held, diff)


def _back_within(e: Exposure, window: timedelta) -> bool:
    return e.returned_at is not None and e.at <= e.returned_at <= e.at + window


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.0f}%"


def report_lines(report: EffectReport) -> list[str]:
    """The effect report as plain lines (chat and console)."""
    days = report.window.days
    lines = [
        f"Did nudged members come back (contribute) within {days} days of their first nudge? "
        "The hold-out group got no nudges; for them the clock starts on the day they would "
        "have had one.",
    ]
    for g in (report.nudged, report.holdout):
        if g.complete:
            low, high = g.interval or (0.0, 0.0)
            rate = (
                f"{g.returned} of {g.complete} came back ({percent(g.rate)}, "
                f"95% CI {percent(low)} to {percent(high)})"
            )
        else:
            rate = f"no one has completed the {days} days yet"
        line = f"- {g.label}: {g.members} member{'' if g.members == 1 else 's'}; {rate}"
        if g.pending:
            line += f"; {g.pending} still within {days} days ({g.pending_returned} back so far)"
        lines.append(line)
    if report.difference is not None:
        d, low, high = report.difference
        lines.append(
            f"Difference, nudged minus hold-out: {d * 100:+.0f} points "
            f"(95% CI {low * 100:+.0f} to {high * 100:+.0f})."
        )
        if low > 0:
            lines.append("The interval is above zero: nudged members came back more often.")
        elif high < 0:
            lines.append("The interval is below zero: nudged members came back less often.")
        else:
            lines.append(
                "The interval includes zero: no clear effect yet (small groups give wide "
                "intervals)."
            )
    else:
        lines.append("Not enough completed members in both groups to compare yet.")
    return lines
