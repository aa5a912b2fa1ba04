"""Weekly summaries, the facilitator report, the learner mirror, the gradebook export and the
course life cycle (final summary, archive).

Jobs (crontabs in the course timezone, ``[summaries]``):

- ``summaries.weekly`` (``schedule``): the cohort summary in the cohort channel (skipped when
  nothing happened) and the full report to every facilitator by DM, over the seven days before
  the run.
- ``summaries.mirror`` (``mirror_schedule``): a private mirror to each learner who opted in
  with ``/course mirror on``, through the shared proactive-message policy.
- ``summaries.final`` (``final_schedule``, daily): once the course's end date is reached, the
  whole-course summary and report, once per cohort.

Every message carries a dedupe key naming the community, the run's period (or the cohort) and
the recipient, so a run repeated after a crash, a restart or by a second process sends each
message once.

Archive (``/course archive confirm:yes``): the cohort's activity moves to an archived community
``<community id>/cohort-<n>`` (``archived_at`` set, so schedulers skip it; it stays in the
database under that id, and ``/course export cohort:1`` reads it), and the live
community starts cohort n+1 with the same settings: channels, facilitators, timezone,
holidays, and the same course length from the new start date. Facilitators and everyone's
preferences (opt-outs, timezones, goals) stay; learners reappear in the new cohort when they
next post or join, so the new cohort's numbers, quiet states and nudges start from zero. A
member who asks to be forgotten is erased from the archived cohorts too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from datetime import date, datetime, timedelta
from typing import Any

from bot.actions import Action, DirectMessage, FileAttachment, PostMessage, Reply
from bot.analytics import PATTERN_MEANING, compute_analytics, figure_lines, member_pattern
from bot.cohort import (
    channel_setting,
    cohort_start,
    command,
    display_name,
    facilitator_ids,
    local_midnight,
    local_when,
    member_ref,
    place,
    roster,
)
from bot.commands import CommandSpec, Option
from bot.engine import Cog, CommandContext, Services
from bot.errors import UserError
from bot.events import ScheduledTick
from bot.export import export_csv, export_rows
from bot.jobs import JobSpec
from bot.policy import calendar, message_verdicts
from bot.reflection_templates import DEFAULT_TEMPLATES, load_templates, resolve
from bot.summary_content import (
    KINDS,
    LearnerLine,
    MirrorData,
    ReportData,
    ThreadInfo,
    WeekData,
    alerts,
    band_of,
    cohort_summary,
    facilitator_report,
    message_link,
    mirror_content,
    weekly_chart,
)
from bot.wording import counted
from storage import summary_queries as sq
from storage.reflections_queries import ReflectionRepo
from storage.schema import metadata

log = logging.getLogger(__name__)

PREF_MIRROR = "mirror"  # "on" | "off"
PREF_GOAL = "goal"
MAX_GOAL = 300
WEEK = timedelta(days=7)
UNANSWERED_SHOWN = 10


class SummariesCog(Cog):
    name = "summaries"

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self.templates = load_templates(
            resolve(self.settings.summaries.templates, DEFAULT_TEMPLATES)
        )
        self.repo = ReflectionRepo(self.store)
        #: Charts cost a little CPU; tests of wording switch them off.
        self.charts = True

    # -- declarations ---------------------------------------------------------------------------

    def jobs(self) -> list[JobSpec]:
        cfg = self.settings.summaries
        return [
            JobSpec(
                "summaries.weekly",
                cfg.schedule,
                self.run_weekly,
                "cohort summary and facilitator report",
                enabled=cfg.enabled,
            ),
            JobSpec(
                "summaries.mirror",
                cfg.mirror_schedule,
                self.run_mirror,
                "private mirror for learners who opted in",
                enabled=cfg.enabled,
            ),
            JobSpec(
                "summaries.final",
                cfg.final_schedule,
                self.run_final,
                "final summary once the course has ended",
                enabled=cfg.enabled,
            ),
        ]

    def commands(self) -> list[CommandSpec]:
        return [
            CommandSpec(
                name="summary now",
                description="The weekly summary now: posted to the cohort, report to you",
                handler=self.cmd_summary_now,
                options=(Option("preview", "boolean", "on: only show it to you", default=False),),
                facilitator_only=True,
                slow=True,
            ),
            CommandSpec(
                name="mirror",
                description="Your private weekly participation mirror, on or off",
                handler=self.cmd_mirror,
                options=(Option("state", "choice", "on or off", True, choices=("on", "off")),),
            ),
            CommandSpec(
                name="goal",
                description="Set a personal goal for your weekly mirror (clear to remove)",
                handler=self.cmd_goal,
                options=(Option("text", "text", "Your goal, e.g. answer two questions a week"),),
            ),
            CommandSpec(
                name="export",
                description="CSV for a gradebook: one row per learner",
                handler=self.cmd_export,
                options=(
                    Option("from", "date", "First day (default: the cohort's start)"),
                    Option("to", "date", "Last day (default: today)"),
                    Option("cohort", "integer", "An archived cohort's number", min_value=1),
                ),
                facilitator_only=True,
                slow=True,
            ),
            CommandSpec(
                name="archive",
                description="Close this cohort and start a new one with the same settings",
                handler=self.cmd_archive,
                options=(
                    Option("confirm", "choice", "Type yes to archive", choices=("yes",)),
                    Option("start", "date", "The new cohort's start date (default: today)"),
                    Option("end", "date", "Its end date (default: same course length)"),
                ),
                facilitator_only=True,
            ),
        ]

    def _root(self) -> str:
        return self.services.registry.root

    # -- gathering --------------------------------------------------------------------------------

    async def week_data(
        self, community_id: str, since: datetime, until: datetime, *, chart: bool = False
    ) -> WeekData:
        """The numbers of ``[since, until)`` and of the seven days before it; with ``chart``,
        also the day-by-day chart (``WeekData.chart``).

        The aggregates are independent of each other, so they run concurrently, each on its
        own pooled connection (as in ``bot.analytics.compute_analytics``): on SQLite each runs
        in its own thread outside the GIL, on PostgreSQL in its own backend. The chart needs
        only the daily counts: it is drawn as soon as they are in, while the slower
        aggregates still run.
        """
        store = self.store
        community = await store.get_community(community_id)
        assert community is not None
        tz = community["timezone"]
        staff_ids = await facilitator_ids(store, self.settings, community_id)
        starts = _day_starts(since, until, tz)

        # The chart waits for the week's days, and drawing it is the longest step after them:
        # so the days are asked for alone (not with the week before), and three of the other
        # scans start once they are in, leaving the days a core to themselves. On a million
        # contributions, 2 cores, on SQLite: 220 ms without the wait, 211 ms with it (the
        # medians of three runs each).
        days_in = asyncio.Event()

        async def days_and_chart():
            try:
                periods = await sq.daily_counts(store, community_id, starts, until)
            finally:
                days_in.set()
            daily = []
            for i, start in enumerate(starts):
                c = periods.get(i)
                day = start.astimezone(_zone(tz)).date()
                daily.append((day, dict(c.by_kind) if c else {}, c.contributions if c else 0))
            return periods, daily, await self._chart(daily) if chart else None

        (
            (periods, daily, png),
            week_before,
            (n_learners, active_learners),
            busiest,
            joined,
            prompt,
            in_week,
            (n_open, questions),
        ) = await asyncio.gather(
            days_and_chart(),
            _after(days_in, sq.daily_counts, store, community_id, [since - WEEK], since),
            _after(days_in, sq.learner_counts, store, community_id, since, until, staff_ids),
            sq.busiest_threads(store, community_id, since, until),
            sq.newcomers(store, community_id, since, until, staff_ids),
            self._week_prompt(community_id, since, until),
            self.repo.per_member(community_id, since=since, until=until),
            _after(
                days_in,
                sq.open_questions,
                store,
                community_id,
                since,
                until,
                exclude_authors=staff_ids,
                limit=5,
            ),
        )
        now_total = sq.total(periods.values())
        last_total = sq.total(week_before.values())
        platform = community["platform"]
        threads = [
            ThreadInfo(
                message_link(platform, community_id, t.channel_id, t.key),
                t.channel_id,
                t.messages,
                t.participants,
            )
            for t in busiest
        ]
        newcomers = [display_name(r) for r in joined]
        answered = 0
        if prompt is not None:
            learners = await sq.learner_ids(store, community_id, staff_ids)
            answered = len(await self.repo.answered(community_id, prompt["id"]) & learners)
        return WeekData(
            course=community["name"],
            timezone=tz,
            since=since,
            until=until,
            by_kind=now_total.by_kind,
            contributions=now_total.contributions,
            last_by_kind=last_total.by_kind,
            last_contributions=last_total.contributions,
            learners=n_learners,
            active_learners=active_learners,
            threads=threads,
            newcomers=newcomers,
            prompt_title=prompt["title"] if prompt else None,
            reflections_answered=answered,
            reflections_in_week=sum(in_week.values()),
            open_questions=n_open,
            open_question_links=[
                message_link(platform, community_id, q.channel_id, q.message_id) for q in questions
            ],
            daily=daily,
            chart=png,
        )

    async def _week_prompt(
        self, community_id: str, since: datetime, until: datetime
    ) -> dict[str, Any] | None:
        """The newest prompt that was open during the week."""
        prompts = [
            p
            for p in await self.repo.prompts(community_id, statuses=("posted", "closed"))
            if p["posted_at"] is not None
            and p["posted_at"] < until
            and (p["closes_at"] is None or p["closes_at"] > since)
        ]
        return prompts[-1] if prompts else None

    async def report_data(
        self, community_id: str, since: datetime, until: datetime, week: WeekData
    ) -> tuple[ReportData, Any]:
        """The facilitator report's numbers, and the analytics (for the network picture)."""
        store = self.store
        community = await store.get_community(community_id)
        assert community is not None
        tz = community["timezone"]
        platform = community["platform"]
        staff_ids = await facilitator_ids(store, self.settings, community_id)
        a = await compute_analytics(
            store,
            community_id,
            since=since,
            until=until,
            settings=self.settings.analytics,
            facilitator_ids=staff_ids,
            previous=False,
        )
        reflections = await self.repo.per_member(community_id, since=since, until=until)
        kudos_in = await sq.kudos_counts(store, community_id, since, until)
        kudos_out = await sq.kudos_counts(store, community_id, since, until, given=True)
        nudges = await sq.nudge_counts(store, metadata(), community_id, since, until)
        lines: list[LearnerLine] = []
        states: dict[str, list[str]] = {}
        for x in sorted(a.learners.values(), key=lambda s: (s.display_name.lower(), s.member_id)):
            if x.is_facilitator:
                continue
            sent, back = (nudges or {}).get(x.member_id, (0, 0))
            lines.append(
                LearnerLine(
                    member_id=x.member_id,
                    name=x.display_name,
                    contributions=x.contributions,
                    words=x.words,
                    by_kind={k: x.by_kind.get(k, 0) for k in KINDS},
                    reflections=reflections.get(x.member_id, 0),
                    pattern=x.pattern,
                    quiet_state=x.quiet_state or "",
                    nudges_sent=sent if nudges is not None else None,
                    nudges_came_back=back if nudges is not None else None,
                    kudos_received=kudos_in.get(x.member_id, 0),
                    kudos_given=kudos_out.get(x.member_id, 0),
                )
            )
            if x.quiet_state and x.quiet_state != "active":
                states.setdefault(x.quiet_state, []).append(x.display_name)
        unanswered = [
            f"{a.name(p.member_id)}, {local_when(p.created_at, tz)}: "
            f"{message_link(platform, community_id, p.channel_id, p.message_id)}"
            for p in a.unanswered_posts[:UNANSWERED_SHOWN]
        ]
        queue = await self._reply_queue_lines(community_id, since, until, tz, platform)
        prompt = await self._week_prompt(community_id, since, until)
        data = ReportData(
            course=community["name"],
            timezone=tz,
            since=since,
            until=until,
            figures=figure_lines(a),
            learners=lines,
            unanswered=unanswered,
            unanswered_count=a.figures.unanswered,
            reply_queue=queue,
            alerts=alerts(
                isolated=[a.name(m) for m in a.figures.isolated],
                states=states,
                facilitator_share=a.figures.facilitator_share,
                facilitator_centric=a.figures.facilitator_centric,
                unanswered=a.figures.unanswered,
                open_questions=week.open_questions,
                reply_queue=len(queue),
                reflections_answered=week.reflections_answered if prompt else None,
                learners=week.learners,
            ),
            nudges_available=nudges is not None,
        )
        return data, a

    async def _reply_queue_lines(
        self, community_id: str, since: datetime, until: datetime, tz: str, platform: str
    ) -> list[str]:
        names = {r["member_id"]: display_name(r) for r in await self.store.members(community_id)}
        lines: list[str] = []
        for prompt in await self.repo.prompts(community_id, statuses=("posted", "closed")):
            if prompt["posted_at"] is None or prompt["posted_at"] >= until:
                continue
            if prompt["closes_at"] is not None and prompt["closes_at"] <= since:
                continue
            for r in await self.repo.reflections(community_id, prompt["id"]):
                if r["responded"]:
                    continue
                where = (
                    message_link(platform, community_id, prompt["channel_id"], r["message_id"])
                    if prompt["delivery"] == "thread"
                    else "by DM"
                )
                lines.append(
                    f'{names.get(r["member_id"], r["member_id"])} on "{prompt["title"]}", '
                    f"{local_when(r['created_at'], tz)}: {where}"
                )
        return lines

    async def _chart(self, daily: list) -> bytes | None:
        if not self.charts or not daily:
            return None
        # Drawing is CPU work; a worker thread keeps the bot answering meanwhile.
        return await asyncio.to_thread(weekly_chart, daily)

    async def _network(self, analytics: Any, title: str) -> bytes | None:
        if not self.charts:
            return None
        from bot.report import network_picture

        return await asyncio.to_thread(network_picture, analytics, title=title)

    async def build_report(
        self, community_id: str, since: datetime, until: datetime, week: WeekData
    ) -> tuple[Any, tuple[FileAttachment, ...]]:
        data, analytics = await self.report_data(community_id, since, until, week)
        png = await self._network(analytics, f"{week.course}: who interacted with whom")
        return facilitator_report(data, self.templates, root=self._root(), network_png=png)

    # -- jobs -------------------------------------------------------------------------------------

    async def run_weekly(self, tick: ScheduledTick) -> list[Action]:
        cid, now = tick.community_id, tick.at
        cal = await calendar(self.store, self.settings, cid)
        if not cal.is_running(now):
            return []
        community = await self.store.get_community(cid)
        assert community is not None
        since = now - WEEK
        key = f"summary:{cid}:{tick.period}"
        sent = await self.repo.sent_keys(key)
        channel = await channel_setting(self.store, self.settings, cid, "cohort_channel")
        posting = bool(channel) and f"{key}:cohort" not in sent
        data = await self.week_data(cid, since, now, chart=posting)
        actions: list[Action] = []
        if data.is_empty():
            # Nothing to celebrate: no public summary. Facilitators still get their report,
            # where a week of silence is exactly what the alerts are for.
            log.info("summaries: nothing happened in %s this week; no cohort summary", cid)
        elif posting:
            rich = cohort_summary(data, self.templates, root=self._root(), chart=data.chart)
            actions.append(
                PostMessage(place=place(community, channel), rich=rich, dedupe_key=f"{key}:cohort")
            )
        elif not channel:
            log.warning("summaries: no cohort_channel for %s; summary not posted", cid)
        actions += await self._reports(community, since, now, data, f"{key}:report:", sent)
        return actions

    async def _reports(
        self,
        community: dict[str, Any],
        since: datetime,
        until: datetime,
        data: WeekData,
        prefix: str,
        sent: set[str],
    ) -> list[Action]:
        _learners, staff = await roster(self.store, self.settings, community["id"])
        todo = [r for r in staff if prefix + r["member_id"] not in sent and r["reachable"]]
        if not todo:
            return []
        rich, files = await self.build_report(community["id"], since, until, data)
        return [
            DirectMessage(
                member=member_ref(community, r),
                rich=rich,
                files=files,
                dedupe_key=prefix + r["member_id"],
            )
            for r in todo
        ]

    async def mirror_week(
        self, community_id: str, since: datetime, until: datetime
    ) -> dict[str, Any]:
        """Everything every mirror of one week shares, in a few grouped queries (a mirror run
        for thousands of learners must not repeat whole-cohort queries per learner)."""
        learners, _staff = await roster(self.store, self.settings, community_id)
        counts = await sq.member_counts(self.store, community_id, since, until)
        # Everyone's pattern in one pass over the week's edges (per learner, each lookup
        # would re-read the member list).
        analytics = await compute_analytics(
            self.store,
            community_id,
            since=since,
            until=until,
            settings=self.settings.analytics,
            previous=False,
            quiet=False,
        )
        return {
            "patterns": {m: x.pattern for m, x in analytics.learners.items()},
            "counts": counts,
            "before": await sq.member_counts(self.store, community_id, since - WEEK, since),
            "reflections": await self.repo.per_member(community_id, since=since, until=until),
            "goals": await self.store.prefs(community_id, PREF_GOAL),
            # The band compares learners only: contributions this week, zeros included.
            "cohort": [
                counts[r["member_id"]].contributions if r["member_id"] in counts else 0
                for r in learners
            ],
        }

    async def mirror_for(
        self,
        community: dict[str, Any],
        member_id: str,
        since: datetime,
        until: datetime,
        *,
        week: dict[str, Any] | None = None,
    ) -> MirrorData:
        """One learner's mirror data (``week``: from :meth:`mirror_week`, computed when not
        given)."""
        cid = community["id"]
        week = week or await self.mirror_week(cid, since, until)
        mine = week["counts"].get(member_id)
        before = week["before"].get(member_id)
        pattern = week["patterns"].get(member_id)
        if pattern is None:  # joined since the week's numbers were gathered
            pattern = (
                await member_pattern(
                    self.store,
                    cid,
                    member_id,
                    since=since,
                    until=until,
                    settings=self.settings.analytics,
                )
            ).pattern
        value = mine.contributions if mine else 0
        return MirrorData(
            course=community["name"],
            timezone=community["timezone"],
            since=since,
            until=until,
            by_kind=dict(mine.by_kind) if mine else {},
            contributions=value,
            words=mine.words if mine else 0,
            last_contributions=before.contributions if before else 0,
            pattern=pattern,
            pattern_meaning=PATTERN_MEANING.get(pattern, ""),
            reflections=week["reflections"].get(member_id, 0),
            goal=week["goals"].get(member_id) or None,
            band=band_of(value, week["cohort"]),
        )

    async def run_mirror(self, tick: ScheduledTick) -> list[Action]:
        cid, now = tick.community_id, tick.at
        opted = {m for m, v in (await self.store.prefs(cid, PREF_MIRROR)).items() if v == "on"}
        if not opted:
            return []
        community = await self.store.get_community(cid)
        assert community is not None
        since = now - WEEK
        prefix = f"mirror:{cid}:{tick.period}:"
        sent = await self.repo.sent_keys(prefix)
        paused = {m for m, v in (await self.store.prefs(cid, "tracking")).items() if v == "off"}
        learners, staff = await roster(self.store, self.settings, cid)
        todo = [
            row
            for row in [*learners, *staff]
            if row["member_id"] in opted
            and prefix + row["member_id"] not in sent
            and row["member_id"] not in paused
        ]
        if not todo:
            return []
        week = await self.mirror_week(cid, since, now)
        actions: list[Action] = []
        verdicts = await message_verdicts(
            self.store,
            self.settings,
            cid,
            [row["member_id"] for row in todo],
            now,
            purpose="mirror",
            respect_opt_out=False,
        )
        for row in todo:
            member_id = row["member_id"]
            verdict = verdicts[member_id]
            if not verdict.allowed:
                log.info("summaries: no mirror for %s this week: %s", member_id, verdict.reason)
                continue
            data = await self.mirror_for(community, member_id, since, now, week=week)
            actions.append(
                DirectMessage(
                    member=member_ref(community, row),
                    rich=mirror_content(data, self.templates, root=self._root()),
                    dedupe_key=prefix + member_id,
                )
            )
        return actions

    async def run_final(self, tick: ScheduledTick) -> list[Action]:
        """The whole-course summary, once per cohort, on the end date (or within a week after
        it, if the bot was down)."""
        cid, now = tick.community_id, tick.at
        cal = await calendar(self.store, self.settings, cid)
        if cal.end is None:
            return []
        today = cal.local_date(now)
        if not cal.end <= today <= cal.end + timedelta(days=7):
            return []
        community = await self.store.get_community(cid)
        assert community is not None
        key = f"summary-final:{cid}:c{community['cohort']}"
        sent = await self.repo.sent_keys(key)
        _learners, staff = await roster(self.store, self.settings, cid)
        channel = await channel_setting(self.store, self.settings, cid, "cohort_channel")
        wanted = {f"{key}:report:{r['member_id']}" for r in staff}
        if channel:
            wanted.add(f"{key}:cohort")
        if wanted <= sent:
            return []
        since = await cohort_start(self.store, self.settings, community, cal)
        data = await self.week_data(cid, since, now)
        if data.is_empty():
            return []
        reflections = sum((await self.repo.per_member(cid, since=since, until=now)).values())
        final = {
            "weeks": counted(max(1, math.ceil((now - since) / WEEK)), "week"),
            "contributions": counted(data.contributions, "contribution"),
            "learners": counted(data.learners, "learner"),
            "reflections": counted(reflections, "reflection"),
        }
        actions: list[Action] = []
        if channel and f"{key}:cohort" not in sent:
            rich = cohort_summary(data, self.templates, root=self._root(), final=final)
            actions.append(
                PostMessage(place=place(community, channel), rich=rich, dedupe_key=f"{key}:cohort")
            )
        actions += await self._reports(community, since, now, data, f"{key}:report:", sent)
        return actions

    # -- commands ---------------------------------------------------------------------------------

    async def cmd_summary_now(self, ctx: CommandContext, preview: bool) -> list[Action]:
        cid = ctx.community_id
        # Windows end before their last instant; a message sent this very second counts.
        now = ctx.now + timedelta(seconds=1)
        since = now - WEEK
        data = await self.week_data(cid, since, now, chart=True)
        if data.is_empty():
            return [
                Reply(
                    text="Nothing happened in the last 7 days, so there is no summary "
                    "(the weekly one is skipped in such weeks too)."
                )
            ]
        rich = cohort_summary(data, self.templates, root=self._root(), chart=data.chart)
        report, files = await self.build_report(cid, since, now, data)
        channel = await channel_setting(self.store, self.settings, cid, "cohort_channel")
        actions: list[Action] = []
        if preview or not channel:
            why = "Preview" if preview else "No cohort channel is set (/course setup), so here"
            actions.append(Reply(text=f"{why}: the cohort summary, then your report."))
            actions.append(Reply(rich=rich))
        else:
            actions.append(Reply(text=f"Posted the summary in #{channel}; your report follows."))
            actions.append(PostMessage(place=place(ctx.community, channel), rich=rich))
        actions.append(Reply(rich=report, files=files))
        return actions

    async def cmd_mirror(self, ctx: CommandContext, state: str) -> str:
        await self.store.set_pref(ctx.community_id, ctx.member_id, PREF_MIRROR, state)
        if state == "off":
            return "Your weekly mirror is off. `mirror on` brings it back."
        tz = ctx.community["timezone"]
        when = self.services.schedule_words(self.settings.summaries.mirror_schedule, tz, ctx.now)
        return (
            "Your weekly mirror is on: once a week I will send you, privately, your "
            "contributions by kind, how you interact, your goal and which third of the cohort "
            f"you are in (never a rank). It comes {when} ({tz}). "
            f"Set a goal with {command(self._root(), 'goal <text>')}."
        )

    async def cmd_goal(self, ctx: CommandContext, text: str | None) -> str:
        if text is None:
            goal = await self.store.get_pref(ctx.community_id, ctx.member_id, PREF_GOAL)
            return f"Your goal: {goal}" if goal else "You have not set a goal yet."
        if text.strip().lower() == "clear":
            await self.store.set_pref(ctx.community_id, ctx.member_id, PREF_GOAL, "")
            return "Goal cleared."
        if len(text) > MAX_GOAL:
            raise UserError(f"Please keep your goal under {MAX_GOAL} characters.")
        await self.store.set_pref(ctx.community_id, ctx.member_id, PREF_GOAL, text.strip())
        mirror = await self.store.get_pref(ctx.community_id, ctx.member_id, PREF_MIRROR)
        hint = "" if mirror == "on" else " Turn on your weekly mirror with `mirror on` to see it."
        return f"Goal set: {text.strip()}.{hint}"

    async def cmd_export(
        self, ctx: CommandContext, cohort: int | None, **dates: date | None
    ) -> Reply:
        first, last = dates.get("from"), dates.get("to")
        cid = ctx.community_id
        community = ctx.community
        if cohort is not None and cohort != int(community["cohort"]):
            archived = await self.store.get_community(f"{cid}/cohort-{cohort}")
            if archived is None:
                raise UserError(f"There is no archived cohort {cohort} of this course.")
            target = archived
        else:
            target = community
        tz = target["timezone"]
        cal = await calendar(self.store, self.settings, cid)
        if first is None:
            if target is community:
                first = cal.local_date(
                    await cohort_start(self.store, self.settings, community, cal)
                )
            else:
                first = target["created_at"].astimezone(_zone(tz)).date()
        if last is None:
            end = target["archived_at"] or ctx.now
            last = end.astimezone(_zone(tz)).date()
        if last < first:
            raise UserError(f"The range ends ({last}) before it starts ({first}).")
        if (last - first).days > 3660:
            raise UserError("Please export at most ten years at a time.")
        staff = await facilitator_ids(self.store, self.settings, cid)
        rows = await export_rows(
            self.store, target["id"], first=first, last=last, timezone=tz, facilitators=staff
        )
        data = export_csv(rows).encode("utf-8")
        label = f"cohort {target['cohort']}"
        name = f"hearth-export-{label.replace(' ', '')}-{first}-{last}.csv"
        return Reply(
            text=(
                f"Gradebook export, {label}, {first} to {last} ({tz}): "
                f"{counted(len(rows), 'learner')}. "
                "Columns: " + ", ".join(_columns())
            ),
            files=(FileAttachment(name, data, "text/csv", "One row per learner"),),
        )

    async def cmd_archive(
        self, ctx: CommandContext, confirm: str | None, start: date | None, end: date | None
    ) -> str:
        cid = ctx.community_id
        community = ctx.community
        cohort = int(community["cohort"])
        if confirm != "yes":
            return (
                f"This closes cohort {cohort}: its contributions, interactions, prompts and "
                f"reflections move to the archive `{cid}/cohort-{cohort}` (still readable with "
                f"`export cohort:{cohort}`), and cohort "
                f"{cohort + 1} starts with the same settings and empty numbers. Run "
                f"{command(self._root(), 'archive confirm:yes [start:DATE] [end:DATE]')} "
                "to go ahead."
            )
        cal = await calendar(self.store, self.settings, cid)
        new_start = start or cal.local_date(ctx.now)
        new_end = end
        if new_end is None and cal.start is not None and cal.end is not None:
            new_end = new_start + (cal.end - cal.start)
        if new_end is not None and new_end < new_start:
            raise UserError("The new cohort cannot end before it starts.")
        settings = await self.store.community_settings(cid)
        settings["start_date"] = new_start.isoformat()
        if new_end is not None:
            settings["end_date"] = new_end.isoformat()
        else:
            settings.pop("end_date", None)
        started = max(ctx.now, local_midnight(new_start, cal.timezone))
        settings["cohort_started_at"] = started.isoformat()
        keep = await facilitator_ids(self.store, self.settings, cid)
        before = {r["member_id"] for r in await self.store.members(cid, include_bots=True)}
        archive_id = f"{cid}/cohort-{cohort}"
        if await self.store.get_community(archive_id) is not None:
            raise UserError(f"{archive_id} already exists.")
        moved = await sq.archive_cohort(
            self.store,
            metadata(),
            cid,
            archive_id,
            now=ctx.now,
            cohort=cohort,
            keep_members=keep,
            new_settings_json=json.dumps(settings, sort_keys=True, default=str),
        )
        engine = self.services.engine
        if engine is not None:
            for member_id in before - keep:
                engine.forget_cached_member(cid, member_id)
            for cog in engine.cogs:
                forget = getattr(cog, "forget_community", None)
                if forget is not None:
                    forget(cid)
        log.info("archived cohort %s of %s as %s: %s", cohort, cid, archive_id, moved)
        return (
            f"Cohort {cohort} is archived as `{archive_id}` "
            f"({counted(moved.get('contribution', 0), 'contribution')}, "
            f"{counted(moved.get('reflection', 0), 'reflection')}, "
            f"{counted(moved.get('member (copied)', 0), 'member')}). Cohort {cohort + 1} starts "
            f"{new_start}" + (f" and ends {new_end}" if new_end else "") + "; facilitators, "
            "channels and settings carry over, and the numbers start from zero. Export the "
            f"old cohort with {command(self._root(), f'export cohort:{cohort}')}."
        )

    # -- members ----------------------------------------------------------------------------------

    async def describe_member(self, community_id: str, member_id: str) -> list[str]:
        # These lines also appear in a facilitator's /course stats member:, so the goal's
        # wording stays private (the learner sees it with /course goal).
        prefs = await self.store.member_prefs(community_id, member_id)
        line = f"Weekly mirror: {prefs.get(PREF_MIRROR, 'off')}"
        if prefs.get(PREF_GOAL):
            line += " (a personal goal is set)"
        return [line]

    async def erase_member(self, community_id: str | None, member_id: str) -> None:
        """Mirror and goal are preferences (erased with the schema); archived cohorts are other
        community ids, so the member is erased from each of them here."""
        if community_id is None:
            return  # the store's erase covers every community, archives included
        for archived in await sq.archives_of(self.store, community_id):
            await self.store.erase_member(archived["id"], member_id)

    async def member_data(self, community_id: str, member_id: str) -> dict[str, Any]:
        cohorts = []
        for archived in await sq.archives_of(self.store, community_id):
            total, _masks, words = await self.store.kind_counts(archived["id"], member_id=member_id)
            if total:
                cohorts.append(
                    {"cohort": archived["cohort"], "contributions": total, "words": words}
                )
        return {"archived_cohorts": cohorts} if cohorts else {}


def _zone(tz: str):
    from zoneinfo import ZoneInfo

    return ZoneInfo(tz)


async def _after(event: asyncio.Event, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, called once ``event`` is set."""
    await event.wait()
    return await fn(*args, **kwargs)


def _day_starts(since: datetime, until: datetime, tz: str) -> list[datetime]:
    """UTC starts of the local days that overlap ``[since, until)``; the first is ``since``."""
    zone = _zone(tz)
    first = since.astimezone(zone).date()
    last = (until - timedelta(microseconds=1)).astimezone(zone).date()
    starts = [since]
    day = first + timedelta(days=1)
    while day <= last:
        starts.append(local_midnight(day, tz))
        day += timedelta(days=1)
    return starts


def _columns() -> list[str]:
    from bot.export import EXPORT_COLUMNS

    return list(EXPORT_COLUMNS)
