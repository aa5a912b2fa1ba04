"""The nudges chapter of ``hearth demo``: quiet members, the nudges sent, a return, the effect.

While the scripted course runs, the scheduler runs the daily nudge round (10:00 in the course's
timezone), the hourly follow-up and unanswered-post checks, and the weekly facilitator-share
check, exactly as in production. This chapter only adds what a script must: a day after one
of the quiet learners (``QUIET`` in ``bot/demo.py``) is nudged, they come back and answer the
thing the nudge pointed at (and on the third day one learner thanks another with kudos). At
the end it prints who is quiet and what Hearth plans, every nudge with its text, the member
who came back, the facilitator alerts and the effect report.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from rich.table import Table

from bot.cohort import local_when
from bot.nudging import Exposure, effect_report, report_lines

if TYPE_CHECKING:
    from bot.cogs.nudges import NudgesCog
    from bot.demo import Demo

log = logging.getLogger(__name__)

COMEBACK = "Sorry, I've been away for a bit! Here's my take: I tried this last week and it helped."


@dataclass(slots=True)
class NudgesChapter:
    title: str = "Nudges"
    #: (member, the nudge row, the message they came back with)
    came_back: tuple[str, dict[str, Any], str] | None = None
    kudos_given: list[str] = field(default_factory=list)

    @staticmethod
    def _cog(demo: Demo) -> NudgesCog:
        return next(c for c in demo.app.engine.cogs if c.name == "nudges")  # type: ignore[return-value]

    async def during(self, demo: Demo, day: int) -> None:
        """A day after one quiet learner was nudged, they answer what the nudge named."""
        from bot.demo import QUIET

        s = demo.session
        if day == 2 and not self.kudos_given:
            out = await s.command(
                "amara", "/course kudos member:@ben reason:your reading notes helped me a lot"
            )
            self.kudos_given.append(out)
        if self.came_back is not None:
            return
        for row in await self._cog(demo).repo.nudges(s.community_id):
            if (
                row["member_id"] not in QUIET
                or row["status"] != "sent"
                or row["returned_at"] is not None
                or (row["sent_at"] - demo.start).days != day - 1
            ):
                continue
            name, ref = row["member_id"], row["hook_ref"]
            if row["hook_kind"] in ("thread", "question", "peer") and ref in s.channel_of:
                mid = await s.reply(name, ref, COMEBACK)
            else:
                mid = await s.say(name, COMEBACK)
            self.came_back = (name, row, mid)
            return

    async def report(self, demo: Demo) -> None:
        app, console = demo.app, demo.console
        cog = self._cog(demo)
        cid = demo.session.community_id
        community = await app.store.get_community(cid)
        assert community is not None
        tz = community["timezone"]
        now = app.clock.now()

        entries = await cog.plan(cid, now)
        quiet = Table(title=f"Quiet members now ({local_when(now, tz)}) and what Hearth plans")
        for column in ("member", "state", "since", "detail", "plan"):
            quiet.add_column(column)
        for e in entries:
            since = local_when(e.since, tz) if e.since else ""
            quiet.add_row(e.name, e.state, since, e.detail, cog._plan_words(e, tz))
        console.print(quiet if entries else "Nobody is quiet right now.")

        rows = await cog.repo.nudges(cid)
        table = Table(title="Nudges (the hold-out group is recorded, but gets nothing)")
        for column in ("#", "member", "step", "state", "pointed to", "when", "came back"):
            table.add_column(column)
        for n, r in enumerate(rows, start=1):
            what = "hold-out" if r["holdout"] else r["status"]
            table.add_row(
                str(n),
                r["member_id"],
                str(r["step"]),
                r["state"],
                f"{r['hook_kind']} ({what})",
                local_when(r["sent_at"] or r["due_at"], tz),
                local_when(r["returned_at"], tz) if r["returned_at"] else "",
            )
        console.print(table if rows else "No nudges were sent.")
        for n, r in enumerate(rows, start=1):
            if r["text"]:
                console.print(f"[bold]#{n} to {r['member_id']}:[/bold]")
                for line in r["text"].splitlines():
                    console.print(f"  > {line}", highlight=False)

        if self.came_back is not None:
            name, row, mid = self.came_back
            console.print(
                f"[bold]{name} came back[/bold]: nudged {local_when(row['sent_at'], tz)} "
                f"(step {row['step']}, pointing to a {row['hook_kind']}), and a day later "
                f"answered it (message #{mid})."
            )
        alerts = await cog.repo.alerts(cid)
        kinds = {
            k: sum(1 for a in alerts if a["kind"] == k)
            for k in ("unanswered", "handoff", "facilitator_share")
        }
        console.print(
            f"Private notes to the facilitator: {kinds['unanswered']} posts nobody had answered "
            f"after {app.settings.analytics.unanswered_hours} hours, {kinds['handoff']} "
            f"hand-offs, {kinds['facilitator_share']} facilitator-centric weeks."
        )
        kudos = await cog.repo.kudos_rows(cid)
        if kudos:
            console.print(
                f"Kudos: {len(kudos)} given privately (amara thanked ben); they count as "
                "support in the interaction figures."
            )

        await cog.repo.reconcile_returns(cid)
        exposures = [Exposure(m, h, at, b) for m, h, at, b in await cog.repo.exposures(cid)]
        window = timedelta(days=app.settings.nudges.return_window_days)
        report = effect_report(exposures, now, window)
        console.print("[bold]Effect report[/bold] (what `/course nudges report` shows):")
        for line in report_lines(report):
            console.print("  " + line, highlight=False)
        console.print(
            "  (A two-week demo is far too small to show an effect; in a real course the "
            "intervals narrow as more members complete their 7 days.)"
        )
