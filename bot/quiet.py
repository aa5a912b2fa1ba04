"""Quiet states per learner (DESIGN section 1), used by nudges, summaries and reports.

- ``new``: joined but never posted.
- ``quiet``: posted before, but nothing for ``quiet_days`` days.
- ``isolated``: posts in the window, but nobody replied to, mentioned or reacted to them and
  they replied to or mentioned nobody.
- ``dropping``: still posting, but this window's count is below ``dropping_ratio`` times their
  own weekly average over the three weeks before (and that average was at least 2 a week).
- ``active``: none of the above.

Checked in this order; the first that applies wins. Facilitators are not labelled.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import NamedTuple

from bot.config import AnalyticsSettings
from bot.wording import counted
from storage.queries import MemberActivity, member_activity
from storage.repos import Store

STATES = ("new", "quiet", "isolated", "dropping", "active")


class QuietState(NamedTuple):
    """A learner's quiet state. A named tuple, not a frozen dataclass: a scan makes one per
    learner, and the dataclass's ``__init__`` was a third of the labelling's time."""

    member_id: str
    display_name: str
    state: str
    since: datetime | None
    detail: str


def labeller(now: datetime, settings: AnalyticsSettings) -> Callable[[MemberActivity], QuietState]:
    """The function that labels one learner's activity at ``now`` (the rules are in the
    module's docstring), with the thresholds worked out once for a scan of every learner."""
    quiet_from = now - timedelta(days=settings.quiet_days)
    ratio = settings.dropping_ratio

    def label_one(a: MemberActivity) -> QuietState:
        last = a.last_post
        if last is None:
            since = a.joined_at or a.first_seen
            return QuietState(
                a.member_id, a.display_name, "new", since, "joined, has not posted yet"
            )
        if last <= quiet_from:
            days = (now - last).days
            return QuietState(
                a.member_id,
                a.display_name,
                "quiet",
                last,
                f"no contribution for {counted(days, 'day')}",
            )
        n_window = a.posts_in_window
        if n_window > 0 and a.edges_given == 0 and a.edges_received == 0:
            return QuietState(
                a.member_id,
                a.display_name,
                "isolated",
                a.first_post_in_window,
                f"{counted(n_window, 'post')}, no replies either way",
            )
        baseline_weekly = a.posts_before_window / 3
        if baseline_weekly >= 2 and n_window < ratio * baseline_weekly:
            return QuietState(
                a.member_id,
                a.display_name,
                "dropping",
                None,
                f"{counted(n_window, 'post')} this week vs {baseline_weekly:.1f} a week before",
            )
        return QuietState(a.member_id, a.display_name, "active", None, "")

    return label_one


async def quiet_states(
    store: Store, community_id: str, now: datetime, settings: AnalyticsSettings
) -> dict[str, QuietState]:
    """Quiet state of every learner (facilitators left out), keyed by member id."""
    window_start = now - timedelta(days=7)
    activity = await member_activity(
        store,
        community_id,
        window_start=window_start,
        now=now,
        baseline_start=window_start - timedelta(days=21),
    )
    label_one = labeller(now, settings)
    return {member_id: label_one(a) for member_id, a in activity.items() if not a.is_facilitator}
