"""Nudges that work: reach members who have gone quiet the way the evidence says works.

DESIGN section 2 in one paragraph: a nudge names a real thread, a peer's open question, the
reflection prompt or a peer who replied, and goes out only while the member is absent; any
contribution resets it; it is capped and respects quiet hours in the member's local time,
holidays and opt-out; after two unanswered nudges it hands the member to the facilitators
instead of nagging; and a seeded hold-out group gets nothing, so ``/course nudges report`` can
show whether nudges make a difference.

How a round works (job ``nudges.round``, ``[nudges] schedule`` in the course timezone, or
``/course nudge`` and its Confirm button):

1. Outcomes so far are filled in from the contribution table (a return is any contribution
   after the nudge).
2. Every learner whose quiet state (``bot.quiet``) is new, quiet, isolated or dropping goes
   through the ladder (:func:`bot.nudging.decide`), then the shared proactive-message policy
   (:func:`bot.policy.message_verdicts`), then hook choice (:func:`bot.nudging.choose_hook`).
3. Each step is recorded once per absence episode (a unique key), then sent as a
   :class:`~bot.actions.DirectMessage` whose dedupe key is written to the sent ledger: two
   processes on one database send each nudge once. A member in their quiet hours gets the
   nudge when the hours end (job ``nudges.followup``), unless they came back first.

Also here: the hourly check for posts nobody answered (``nudges.unanswered``), the weekly
note when most interaction goes through the facilitators (``nudges.facilitator_share``), the
learners' controls (``nudges off|on|snooze``, ``timezone``) and the effect report.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from bot.actions import Action, Button, DirectMessage, Reply
from bot.cohort import display_name, facilitator_ids, local_day, local_when, roster
from bot.commands import CommandSpec, Option
from bot.config import check_timezone
from bot.engine import Cog, CommandContext, Services
from bot.errors import UserError
from bot.events import ButtonPressed, Event, MemberRef, MessagePosted, ScheduledTick
from bot.jobs import JobSpec
from bot.nudge_templates import DEFAULT_NUDGE_TEMPLATES, NudgeTemplates, load_nudge_templates
from bot.nudging import (
    NUDGE_STATES,
    Decision,
    Exposure,
    Hook,
    NudgeRow,
    channel_text,
    choose_hook,
    decide,
    effect_report,
    episode_key,
    in_holdout,
    message_where,
    report_lines,
)
from bot.policy import (
    PREF_NUDGES,
    PREF_SNOOZE,
    PREF_TIMEZONE,
    calendar,
    chosen_timezone,
    in_quiet_hours,
    member_timezone,
    message_verdicts,
    next_allowed,
)
from bot.quiet import quiet_states
from bot.reflection_templates import resolve
from bot.wording import counted
from storage.nudges_queries import NudgeRepo, Post

log = logging.getLogger(__name__)

CONFIRM = "nudges:confirm"
#: Replies to a member count as a "peer" hook for this long.
PEER_HOOK_DAYS = 21
#: At most this many threads, questions and replies are weighed per member (the newest).
MAX_HOOKS = 60
#: Conversations are read this far back to know who has already joined them.
THREAD_LOOKBACK_DAYS = 14
#: A held-back nudge not delivered within this long is dropped (the course ended, a holiday).
HELD_EXPIRY = timedelta(days=1)
#: Unanswered posts are looked for this long after they pass the deadline, then never again
#: (so a first start, or an import, does not alert on old history).
UNANSWERED_SEARCH = timedelta(days=2)
#: An alert that could not be delivered (quiet hours, holidays) is dropped after this long.
ALERT_EXPIRY = timedelta(days=3)


@dataclass(slots=True)
class PlanEntry:
    """What the next round does for one learner, and why."""

    member: dict[str, Any]
    state: str
    since: datetime | None
    detail: str
    episode: str
    decision: Decision
    #: send (now), hold (quiet hours: sent when they end), holdout (recorded, nothing sent),
    #: handoff (step 3), wait, skip (policy or no hook) or none.
    action: str
    reason: str = ""
    step: int | None = None
    hook: Hook | None = None
    text: str | None = None
    due_at: datetime | None = None
    timezone: str = ""

    @property
    def member_id(self) -> str:
        return self.member["member_id"]

    @property
    def name(self) -> str:
        return display_name(self.member)

    def signature(self) -> str:
        hook = f"{self.hook.kind}:{self.hook.ref}" if self.hook else ""
        return f"{self.member_id}|{self.action}|{self.step}|{hook}"


@dataclass(slots=True)
class _HookData:
    """Facts for hooks, read once per round for the whole community."""

    platform: str
    community_id: str
    names: dict[str, str]
    staff: set[str]
    threads: list = field(default_factory=list)
    questions: list[Post] = field(default_factory=list)
    replies: dict[str, list] = field(default_factory=dict)
    channels: dict[str, set[str]] = field(default_factory=dict)
    prompt: dict[str, Any] | None = None
    answered_prompt: set[str] = field(default_factory=set)
    #: (hook, members it is not for): built once per round by ``_base_hooks``.
    shared: list[tuple[Hook, frozenset[str]]] = field(default_factory=list)


class NudgesCog(Cog):
    name = "nudges"

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        cfg = self.settings.nudges
        # Checked here, at start: a broken file stops Hearth with an error naming it.
        self.templates: NudgeTemplates = load_nudge_templates(
            resolve(cfg.templates, DEFAULT_NUDGE_TEMPLATES)
        )
        self.repo = NudgeRepo(self.store)
        # (community, member) with a nudge waiting for its outcome: the hot path only touches
        # the database for messages from these members.
        self._open: set[tuple[str, str]] = set()

    async def start(self) -> None:
        self._open = await self.repo.open_members()

    # -- declarations ---------------------------------------------------------------------------

    def jobs(self) -> list[JobSpec]:
        cfg = self.settings.nudges
        return [
            JobSpec("nudges.round", cfg.schedule, self.run_round, "daily nudge round", cfg.enabled),
            JobSpec(
                "nudges.followup",
                cfg.followup_schedule,
                self.run_followup,
                "send nudges held back by quiet hours",
                cfg.enabled,
            ),
            JobSpec(
                "nudges.unanswered",
                cfg.unanswered_schedule,
                self.run_unanswered,
                "tell facilitators about posts nobody answered",
                cfg.enabled,
            ),
            JobSpec(
                "nudges.facilitator_share",
                cfg.facilitator_share_schedule,
                self.run_facilitator_share,
                "weekly note when most interaction goes through facilitators",
                cfg.enabled,
            ),
        ]

    def commands(self) -> list[CommandSpec]:
        return [
            CommandSpec(
                name="quiet",
                description="Who is new, quiet, dropping or isolated, and what Hearth plans",
                handler=self.cmd_quiet,
                facilitator_only=True,
                slow=True,
            ),
            CommandSpec(
                name="nudge",
                description="Preview the next nudge round, then confirm to send it",
                handler=self.cmd_nudge,
                facilitator_only=True,
                slow=True,
            ),
            CommandSpec(
                name="nudges off",
                description="Stop nudges from Hearth (you can switch them on again)",
                handler=self.cmd_off,
            ),
            CommandSpec(
                name="nudges on",
                description="Allow nudges from Hearth again",
                handler=self.cmd_on,
            ),
            CommandSpec(
                name="nudges snooze",
                description="Pause nudges until a date",
                handler=self.cmd_snooze,
                options=(Option("until", "date", "Last day of the pause (YYYY-MM-DD)", True),),
                examples=("nudges snooze until:2027-01-10",),
            ),
            CommandSpec(
                name="nudges report",
                description="Do nudges work? Nudged vs hold-out return rates with 95% intervals",
                handler=self.cmd_report,
                facilitator_only=True,
                slow=True,
            ),
            CommandSpec(
                name="timezone",
                description="Your timezone, so messages never arrive at night",
                handler=self.cmd_timezone,
                options=(Option("tz", "string", "IANA name, e.g. Europe/Berlin"),),
                examples=("timezone Europe/Berlin",),
            ),
        ]

    def _root(self) -> str:
        return self.services.registry.root

    def _cmd(self, text: str) -> str:
        return f"/{self._root()} {text}"

    # -- events ---------------------------------------------------------------------------------

    async def on_event(self, event: Event) -> list[Action]:
        """A contribution from a member with an open nudge records their return (and cancels
        a nudge held back for them)."""
        if not isinstance(event, MessagePosted) or event.place.is_direct:
            return []
        key = (event.place.community_id, event.author.id)
        if key in self._open:
            if await self.repo.reconcile_returns(key[0], key[1]):
                self._open.discard(key)
        return []

    # -- planning -------------------------------------------------------------------------------

    async def plan(self, community_id: str, now: datetime) -> list[PlanEntry]:
        """What a round would do now for every learner who is not active. Reads only, apart
        from first bringing the recorded outcomes up to date."""
        cfg = self.settings.nudges
        community = await self.store.get_community(community_id)
        if community is None:
            return []
        await self.repo.reconcile_returns(community_id)
        staff = await facilitator_ids(self.store, self.settings, community_id)
        states = {
            m: s
            for m, s in (
                await quiet_states(self.store, community_id, now, self.settings.analytics)
            ).items()
            if s.state in NUDGE_STATES and m not in staff
        }
        if not states:
            return []
        members = {r["member_id"]: r for r in await self.store.members(community_id)}
        rows: dict[str, list[NudgeRow]] = {}
        for r in await self.repo.nudges(community_id):
            rows.setdefault(r["member_id"], []).append(
                NudgeRow(
                    r["step"], r["status"], r["episode"], r["due_at"], r["sent_at"], r["hook_ref"]
                )
            )
        handoffs = await self.repo.handoffs(community_id)
        last_posts = await self.repo.last_posts(community_id, states, now)
        hooks: _HookData | None = None
        entries: list[PlanEntry] = []
        # The policy for every learner in the round at once (two queries), though only those
        # a nudge is decided for read it.
        verdicts = await message_verdicts(
            self.store, self.settings, community_id, list(states), now, purpose="nudge"
        )
        zones = await self.store.prefs(community_id, PREF_TIMEZONE)  # learners' own settings
        for member_id, qs in sorted(states.items(), key=lambda i: i[1].display_name.lower()):
            member = members.get(member_id)
            if member is None:
                continue
            episode = episode_key(last_posts.get(member_id))
            decision = decide(
                state=qs.state,
                since=qs.since,
                episode=episode,
                rows=rows.get(member_id, []),
                handed_off=f"{member_id}@{episode}" in handoffs,
                holdout=in_holdout(cfg.holdout_seed, community_id, member_id, cfg.holdout_fraction),
                now=now,
                step2_after=timedelta(days=cfg.step2_after_days),
                min_between=timedelta(days=cfg.min_days_between),
                grace=timedelta(days=cfg.grace_days),
            )
            entry = PlanEntry(
                member,
                qs.state,
                qs.since,
                qs.detail,
                episode,
                decision,
                decision.action,
                decision.reason,
                decision.step,
            )
            entries.append(entry)
            if decision.action not in ("nudge", "holdout", "handoff"):
                continue
            verdict = verdicts[member_id]
            quiet_hours = not verdict.allowed and verdict.reason == "quiet hours"
            if not verdict.allowed and not quiet_hours:
                entry.action, entry.reason = "skip", verdict.reason
                continue
            if decision.action == "handoff":
                continue
            if hooks is None:
                hooks = await self._hook_data(community, now, set(states), staff, members)
            used = [r.hook_ref for r in rows.get(member_id, []) if r.episode == episode]
            hook = choose_hook(
                decision.step or 1, qs.state, self._hooks_for(member_id, hooks), filter(None, used)
            )
            if hook is None:
                entry.action, entry.reason = "skip", "nothing concrete to point to yet"
                continue
            entry.hook = hook
            entry.timezone = chosen_timezone(member, zones.get(member_id), community["timezone"])
            entry.due_at = (
                next_allowed(now, entry.timezone, cfg.quiet_hours) if quiet_hours else now
            )
            if decision.action == "holdout":
                continue
            entry.action = "hold" if quiet_hours else "send"
            entry.text = self._render(community, entry, now)
        return entries

    async def _hook_data(
        self,
        community: dict[str, Any],
        now: datetime,
        targets: set[str],
        staff: set[str],
        members: dict[str, dict[str, Any]],
    ) -> _HookData:
        cid = community["id"]
        data = _HookData(
            platform=community["platform"],
            community_id=cid,
            names={m: display_name(r) for m, r in members.items()},
            staff=staff,
        )
        data.threads = await self.repo.live_threads(
            cid,
            active_since=now - timedelta(hours=self.settings.nudges.live_thread_hours),
            lookback=now - timedelta(days=THREAD_LOOKBACK_DAYS),
            now=now,
        )
        data.questions = [
            q
            for q in await self.repo.open_questions(cid, since=now - timedelta(days=7), until=now)
            if q.member_id not in staff and q.member_id in members
        ]
        for reply in await self.repo.replies_to_members(
            cid, now - timedelta(days=PEER_HOOK_DAYS), targets
        ):
            if reply.source not in staff and reply.source in members:
                data.replies.setdefault(reply.target, []).append(reply)
        data.channels = await self.repo.member_channels(cid, targets)
        reflections = self._cog("reflections")
        current = getattr(reflections, "current_prompt", None)
        if current is not None:
            try:
                data.prompt = await current(cid)
            except Exception:  # noqa: BLE001 - another capability's hiccup must not stop nudges
                log.exception("nudges: could not read the current reflection prompt of %s", cid)
            if data.prompt is not None:
                data.answered_prompt = await self.repo.answered_prompt(cid, data.prompt["id"])
        self._base_hooks(data)
        return data

    def _base_hooks(self, d: _HookData) -> None:
        """Build every community-wide hook once per round; members only filter them."""
        for t in d.threads[:MAX_HOOKS]:
            opener = t.opener_id if t.opener_id in d.names else None
            hook = Hook(
                "thread",
                t.key,
                message_where(d.platform, d.community_id, t.channel_id, t.key, t.thread_id),
                channel_text(d.platform, t.channel_id),
                t.channel_id,
                opener,
                d.names.get(opener or "", "a classmate"),
                people=len(t.people),
                at=t.last_at,
            )
            d.shared.append((hook, frozenset(t.people)))
        for q in d.questions[:MAX_HOOKS]:
            hook = Hook(
                "question",
                q.message_id,
                message_where(d.platform, d.community_id, q.channel_id, q.message_id, q.thread_id),
                channel_text(d.platform, q.channel_id),
                q.channel_id,
                q.member_id,
                d.names.get(q.member_id, "a classmate"),
                at=q.created_at,
            )
            d.shared.append((hook, frozenset({q.member_id})))
        p = d.prompt
        if p is not None:
            if p.get("delivery") == "thread" and p.get("thread_id") and p.get("channel_id"):
                where = message_where(
                    d.platform, d.community_id, p["channel_id"], p["thread_id"], p["thread_id"]
                )
            else:
                where = "it is in your direct messages with me"
            hook = Hook(
                "reflection",
                str(p["id"]),
                where,
                title=p.get("title") or "this week's reflection",
                at=p.get("posted_at"),
            )
            d.shared.append((hook, frozenset(d.answered_prompt)))

    def _hooks_for(self, member_id: str, d: _HookData) -> list[Hook]:
        """The hooks open to one member: threads they have not joined, questions of others,
        the prompt if they have not answered it, and peers who replied to them."""
        familiar = d.channels.get(member_id, set())
        hooks = [
            replace(h, familiar=True) if h.channel_id and h.channel_id in familiar else h
            for h, excluded in d.shared
            if member_id not in excluded
        ]
        for r in d.replies.get(member_id, [])[:MAX_HOOKS]:
            hooks.append(
                Hook(
                    "peer",
                    r.message_id,
                    message_where(
                        d.platform, d.community_id, r.channel_id, r.message_id, r.thread_id
                    ),
                    channel_text(d.platform, r.channel_id),
                    r.channel_id,
                    r.source,
                    d.names.get(r.source, "a classmate"),
                    at=r.created_at,
                    familiar=True,
                )
            )
        return hooks

    def _render(self, community: dict[str, Any], entry: PlanEntry, now: datetime) -> str:
        hook = entry.hook
        assert hook is not None and entry.step is not None
        day = (entry.due_at or now).astimezone(_tz(community["timezone"])).date().isoformat()
        values = {
            "name": entry.name,
            "course": community["name"],
            "where": hook.where,
            "channel": hook.channel,
            "peer": hook.peer or "a classmate",
            "people": hook.people,
            "title": hook.title,
        }
        allowed = self._fields(f"step{entry.step}", hook.kind)
        text = self.templates.render(
            f"step{entry.step}",
            hook.kind,
            entry.member_id,
            str(entry.step),
            day,
            **{k: v for k, v in values.items() if k in allowed},
        )
        footer = self.templates.render(
            "footer",
            "text",
            off=f"`{self._cmd('nudges off')}`",
            snooze=f"`{self._cmd('nudges snooze until:YYYY-MM-DD')}`",
        )
        return f"{text}\n{footer}"

    @staticmethod
    def _fields(section: str, key: str) -> frozenset[str]:
        from bot.nudge_templates import NUDGE_TEMPLATE_FIELDS

        return NUDGE_TEMPLATE_FIELDS[section][key][0]

    # -- acting -----------------------------------------------------------------------------------

    async def execute(
        self, community_id: str, entries: list[PlanEntry], now: datetime
    ) -> tuple[list[Action], dict[str, int]]:
        """Record and send the plan's nudges, hold-outs and hand-offs. Each step is recorded
        once per episode (unique key), so a second process or a second press does nothing."""
        community = await self.store.get_community(community_id)
        assert community is not None
        actions: list[Action] = []
        counts = dict.fromkeys(("sent", "held", "holdout", "handoff"), 0)
        handed: list[tuple[PlanEntry, int]] = []
        for e in entries:
            if e.action in ("send", "hold", "holdout"):
                assert e.hook is not None and e.due_at is not None and e.step is not None
                status = {"send": "sent", "hold": "scheduled", "holdout": "holdout"}[e.action]
                nudge_id = await self.repo.insert_nudge(
                    community_id=community_id,
                    member_id=e.member_id,
                    step=e.step,
                    state=e.state,
                    episode=e.episode,
                    hook_kind=e.hook.kind,
                    hook_ref=e.hook.ref,
                    peer_id=e.hook.peer_id,
                    text=e.text,
                    status=status,
                    holdout=e.action == "holdout",
                    created_at=now,
                    due_at=e.due_at,
                    sent_at=now
                    if e.action == "send"
                    else (e.due_at if status == "holdout" else None),
                )
                if nudge_id is None:
                    continue  # recorded by another process or an earlier run
                self._open.add((community_id, e.member_id))
                if e.action == "send":
                    actions.append(self._dm(community, e.member, e.text or "", e.step, now))
                counts[{"send": "sent", "hold": "held", "holdout": "holdout"}[e.action]] += 1
            elif e.action == "handoff":
                alert_id = await self.repo.add_alert(
                    community_id,
                    "handoff",
                    f"{e.member_id}@{e.episode}",
                    now=now,
                    member_id=e.member_id,
                    detail=e.state,
                    notified=True,
                )
                if alert_id is not None:
                    handed.append((e, alert_id))
                    counts["handoff"] += 1
        if handed:
            actions += await self._handoff_messages(community, handed, now)
        return actions, counts

    def _dm(
        self,
        community: dict[str, Any],
        member: dict[str, Any],
        text: str,
        step: int,
        now: datetime,
    ) -> DirectMessage:
        day = now.astimezone(_tz(community["timezone"])).date().isoformat()
        return DirectMessage(
            member=MemberRef(community["platform"], member["member_id"], display_name(member)),
            text=text,
            dedupe_key=f"nudge:{community['id']}:{member['member_id']}:{step}:{day}",
        )

    async def _staff(self, community_id: str) -> list[dict[str, Any]]:
        _learners, staff = await roster(self.store, self.settings, community_id)
        return [r for r in staff if r["reachable"] and not r["is_bot"]]

    def _staff_dm(
        self, community: dict[str, Any], row: dict[str, Any], text: str, key: str
    ) -> DirectMessage:
        return DirectMessage(
            member=MemberRef(
                community["platform"], row["member_id"], display_name(row), is_facilitator=True
            ),
            text=text,
            dedupe_key=key,
        )

    async def _handoff_messages(
        self, community: dict[str, Any], handed: list[tuple[PlanEntry, int]], now: datetime
    ) -> list[Action]:
        cid, tz = community["id"], community["timezone"]
        keys = {f"{e.member_id}@{e.episode}" for e, _ in handed}
        sent_days: dict[str, list[str]] = {}
        step2: list[int] = []
        for r in await self.repo.nudges(cid):
            key = f"{r['member_id']}@{r['episode']}"
            if key not in keys or r["status"] != "sent" or r["sent_at"] is None:
                continue
            sent_days.setdefault(key, []).append(local_day(r["sent_at"], tz))
            if r["step"] == 2:
                step2.append(r["id"])
        await self.repo.set_outcome(step2, "handed_off")
        t = self.templates
        lines = [t.render("handoff", "title", count=_people(len(handed)))]
        for e, _ in handed:
            lines.append(
                "- "
                + t.render(
                    "handoff",
                    "line",
                    name=e.name,
                    state=e.state,
                    since=local_day(e.since, tz) if e.since else "a while",
                    nudged=" and ".join(sent_days.get(f"{e.member_id}@{e.episode}", [])) or "twice",
                )
            )
        lines.append(t.render("handoff", "outro"))
        text = "\n".join(lines)
        first = min(alert_id for _, alert_id in handed)
        return [
            self._staff_dm(community, row, text, f"nudges-handoff:{cid}:{row['member_id']}:{first}")
            for row in await self._staff(cid)
        ]

    # -- jobs -----------------------------------------------------------------------------------

    async def run_round(self, tick: ScheduledTick) -> list[Action]:
        """The daily round: plan and act, on active course days only."""
        cid, now = tick.community_id, tick.at
        cal = await calendar(self.store, self.settings, cid)
        if not cal.is_active_day(now):
            log.info("nudges: no round for %s today (outside course dates or a holiday)", cid)
            return []
        entries = await self.plan(cid, now)
        actions, counts = await self.execute(cid, entries, now)
        log.info("nudges: round for %s: %s", cid, counts)
        return actions

    async def run_followup(self, tick: ScheduledTick) -> list[Action]:
        """Send nudges held back by quiet hours once they are over, unless the member came
        back, opted out or snoozed in the meantime. Compare-and-set: each goes out once."""
        cid, now = tick.community_id, tick.at
        due = await self.repo.due(cid, now)
        if not due:
            return []
        await self.repo.reconcile_returns(cid)  # cancels nudges of members who came back
        community = await self.store.get_community(cid)
        assert community is not None
        actions: list[Action] = []
        due = await self.repo.due(cid, now)  # again: the reconciling may have cancelled some
        verdicts = await message_verdicts(
            self.store, self.settings, cid, [row["member_id"] for row in due], now
        )
        for row in due:
            if now - row["due_at"] > HELD_EXPIRY:
                await self.repo.cancel(row["id"], "expired")
                continue
            verdict = verdicts[row["member_id"]]
            if not verdict.allowed:
                if verdict.reason != "quiet hours":
                    await self.repo.cancel(row["id"], verdict.reason)
                continue
            member = await self.store.get_member(cid, row["member_id"])
            if member is None or not await self.repo.mark_sent(row["id"], now):
                continue
            actions.append(self._dm(community, member, row["text"] or "", row["step"], now))
        return actions

    async def run_unanswered(self, tick: ScheduledTick) -> list[Action]:
        """Record posts nobody answered within ``[analytics] unanswered_hours`` (once each),
        and tell the facilitators privately, outside the course's quiet hours."""
        cid, now = tick.community_id, tick.at
        hours = self.settings.analytics.unanswered_hours
        deadline = now - timedelta(hours=hours)
        staff_ids = await facilitator_ids(self.store, self.settings, cid)
        for post in await self.repo.unanswered_posts(
            cid,
            since=deadline - UNANSWERED_SEARCH,
            deadline=deadline,
            exclude_authors=sorted(staff_ids),
        ):
            await self.repo.add_alert(
                cid,
                "unanswered",
                post.message_id,
                now=now,
                member_id=post.member_id,
                detail="question" if post.is_question else "first post",
            )
        pending = []
        for alert in await self.repo.alerts(cid, kind="unanswered", pending=True):
            if now - alert["created_at"] > ALERT_EXPIRY:
                # Held back for days (holidays, nobody to tell): drop rather than send late.
                await self.repo.claim_alert(alert["id"], now)
            else:
                pending.append(alert)
        staff = await self._staff(cid)
        if not pending or not staff:
            return []
        community = await self.store.get_community(cid)
        assert community is not None
        cal = await calendar(self.store, self.settings, cid)
        if not cal.is_active_day(now) or in_quiet_hours(
            now, cal.timezone, self.settings.nudges.quiet_hours
        ):
            return []  # delivered by the first run outside the course's quiet hours
        claimed = [a for a in pending if await self.repo.claim_alert(a["id"], now)]
        posts: list[tuple[dict[str, Any], Post]] = []
        for alert in claimed:
            row = await self.store.contribution(cid, alert["ref"])
            if row is None:
                continue  # deleted since
            posts.append(
                (
                    alert,
                    Post(
                        row["message_id"],
                        row["member_id"],
                        row["channel_id"],
                        row["thread_id"],
                        row["created_at"],
                        alert["detail"] == "question",
                    ),
                )
            )
        answered = await self.repo.answered_ids(cid, [p for _, p in posts])
        posts = [(a, p) for a, p in posts if p.message_id not in answered]
        if not posts:
            return []
        t = self.templates
        platform, tz = community["platform"], community["timezone"]
        lines = [t.render("unanswered", "title", count=len(posts), hours=hours)]
        for alert, post in posts:
            author = await self.store.get_member(cid, post.member_id)
            lines.append(
                "- "
                + t.render(
                    "unanswered",
                    "line",
                    name=display_name(author),
                    what=alert["detail"] or "post",
                    channel=channel_text(platform, post.channel_id),
                    where=message_where(
                        platform, cid, post.channel_id, post.message_id, post.thread_id
                    ),
                    when=local_when(post.created_at, tz),
                )
            )
        lines.append(t.render("unanswered", "outro"))
        text = "\n".join(lines)
        first = min(a["id"] for a, _ in posts)
        return [
            self._staff_dm(community, row, text, f"nudges-alert:{cid}:{row['member_id']}:{first}")
            for row in staff
        ]

    async def run_facilitator_share(self, tick: ScheduledTick) -> list[Action]:
        """Weekly: if most of the week's interactions involve a facilitator, suggest stepping
        back and handing questions to peers (named: the learners who answered peers)."""
        cid, now = tick.community_id, tick.at
        cfg = self.settings.nudges
        cal = await calendar(self.store, self.settings, cid)
        if not cal.is_running(now):
            return []
        staff_ids = await facilitator_ids(self.store, self.settings, cid)
        since = now - timedelta(days=7)
        total, with_staff = await self.repo.interaction_counts(cid, since, now, staff_ids)
        if total < cfg.facilitator_share_min_interactions or not staff_ids:
            return []
        share = with_staff / total
        if share < cfg.facilitator_share_alert:
            return []
        year, week, _ = cal.local_date(now).isocalendar()
        ref = f"{year}-W{week:02d}"
        alert_id = await self.repo.add_alert(
            cid, "facilitator_share", ref, now=now, detail=f"{share:.3f}", notified=True
        )
        if alert_id is None:
            return []
        community = await self.store.get_community(cid)
        assert community is not None
        t = self.templates
        lines = [t.render("share", "text", share=f"{share:.0%}", interactions=total)]
        helpers = await self.repo.peer_helpers(cid, since, now, staff_ids)
        if helpers:
            names = []
            for member_id in helpers:
                names.append(display_name(await self.store.get_member(cid, member_id)))
            lines.append(t.render("share", "helpers", names=", ".join(names)))
        text = "\n".join(lines)
        return [
            self._staff_dm(community, row, text, f"nudges-share:{cid}:{row['member_id']}:{ref}")
            for row in await self._staff(cid)
        ]

    # -- facilitator commands -------------------------------------------------------------------

    def _hook_words(self, hook: Hook) -> str:
        if hook.kind == "thread":
            return f"a live thread ({hook.where})"
        if hook.kind == "question":
            return f"{hook.peer}'s open question ({hook.where})"
        if hook.kind == "peer":
            return f"{hook.peer}'s reply to them ({hook.where})"
        return f'the reflection "{hook.title}"'

    def _plan_words(self, e: PlanEntry, tz: str) -> str:
        if e.action == "send":
            assert e.hook is not None
            return f"step {e.step} at the next round, pointing to {self._hook_words(e.hook)}"
        if e.action == "hold":
            assert e.hook is not None and e.due_at is not None
            return (
                f"step {e.step}, held until {local_when(e.due_at, e.timezone or tz)} their time "
                f"(quiet hours), pointing to {self._hook_words(e.hook)}"
            )
        if e.action == "holdout":
            return "nothing: hold-out group (gets no nudges, for comparison)"
        if e.action == "handoff":
            return "hand-off: you get a private note (did not answer two nudges)"
        if e.action == "wait":
            when = f" from {local_day(e.decision.not_before, tz)}" if e.decision.not_before else ""
            step = "hand-off" if e.step == 3 else f"step {e.step}"
            return f"{step}{when} ({e.reason})"
        return f"nothing: {e.reason}"

    async def cmd_quiet(self, ctx: CommandContext) -> str:
        tz = ctx.community["timezone"]
        entries = await self.plan(ctx.community_id, ctx.now)
        learners, _staff = await roster(self.store, self.settings, ctx.community_id)
        header = (
            f"Quiet members, {local_when(ctx.now, tz)} ({tz}): {len(entries)} of "
            f"{counted(len(learners), 'learner')}"
        )
        if not entries:
            return header + "\nEveryone is active. Nothing planned."
        lines = [header]
        for e in entries:
            since = f" since {local_day(e.since, tz)}" if e.since else ""
            lines.append(
                f"- {e.name}: {e.state}{since} ({e.detail}). Plan: {self._plan_words(e, tz)}."
            )
        rounds = self.services.schedule_words(self.settings.nudges.schedule, tz, ctx.now)
        lines.append(
            f"Nudge rounds run {rounds} ({tz}); `{self._cmd('nudge')}` previews the "
            "next one and sends it when you confirm."
        )
        return "\n".join(lines)

    def _token(self, community_id: str, entries: list[PlanEntry]) -> str:
        acting = sorted(e.signature() for e in entries if e.action in _ACTING)
        digest = hashlib.sha256("\n".join([community_id, *acting]).encode()).hexdigest()
        return digest[:16]

    async def _preview(self, community_id: str, now: datetime, tz: str) -> Reply:
        entries = await self.plan(community_id, now)
        acting = [e for e in entries if e.action in _ACTING]
        messages = [e for e in acting if e.action in ("send", "hold")]
        if not acting:
            lines = ["Nobody to nudge right now."]
            skipped = [e for e in entries if e.action == "skip"]
            if skipped:
                lines.append(
                    "Not now: " + "; ".join(f"{e.name} ({e.reason})" for e in skipped) + "."
                )
            lines.append(f"`{self._cmd('quiet')}` shows every quiet member and what is planned.")
            return Reply(text="\n".join(lines))
        lines = ["Next nudge round (a preview; nothing has been sent):"]
        for n, e in enumerate(messages, start=1):
            when = (
                "now"
                if e.action == "send"
                else (
                    f"held until {local_when(e.due_at, e.timezone or tz)} their time (quiet hours)"
                    if e.due_at
                    else "later"
                )
            )
            lines.append(f"{n}. {e.name} ({e.state}), step {e.step}, {when}:")
            lines.extend("   > " + line for line in (e.text or "").splitlines())
        holdouts = [e.name for e in acting if e.action == "holdout"]
        if holdouts:
            lines.append(
                "Hold-out group, recorded but sent nothing (the comparison for "
                f"`{self._cmd('nudges report')}`): " + ", ".join(holdouts)
            )
        handoffs = [e.name for e in acting if e.action == "handoff"]
        if handoffs:
            lines.append(
                "Hand-off to you (did not answer two nudges; no more nudges until they post): "
                + ", ".join(handoffs)
            )
        label = f"Send {len(messages)} nudge{'s' if len(messages) != 1 else ''}"
        if not messages:
            label = "Confirm"
        return Reply(
            text="\n".join(lines),
            buttons=(Button(label, CONFIRM, self._token(community_id, entries)),),
        )

    async def cmd_nudge(self, ctx: CommandContext) -> Reply:
        return await self._preview(ctx.community_id, ctx.now, ctx.community["timezone"])

    async def on_button(self, event: ButtonPressed) -> list[Action]:
        """Confirm: send the previewed round, if it is still what the facilitator saw."""
        if event.action_id != CONFIRM:
            raise UserError("That button is no longer active.")
        engine = self.services.engine
        cid = event.place.community_id
        if engine is None or not await engine.is_facilitator(cid, event.member):
            raise UserError("Only facilitators can send a nudge round.")
        community = await self.store.get_community(cid)
        if community is None:
            raise UserError("That button is no longer active.")
        now = self.clock.now()
        entries = await self.plan(cid, now)
        if self._token(cid, entries) != event.value:
            preview = await self._preview(cid, now, community["timezone"])
            return [
                Reply(
                    text="The plan changed since that preview (someone came back, or these "
                    "nudges already went out), so nothing was sent. Here is the current one:\n"
                    + preview.text,
                    buttons=preview.buttons,
                )
            ]
        actions, counts = await self.execute(cid, entries, now)
        parts = [f"Sent {counts['sent']} nudge{'s' if counts['sent'] != 1 else ''}"]
        if counts["held"]:
            parts.append(f"{counts['held']} held until their quiet hours end")
        if counts["holdout"]:
            parts.append(f"{counts['holdout']} hold-out recorded")
        if counts["handoff"]:
            parts.append(f"{counts['handoff']} handed off to you")
        log.info("nudges: round confirmed by %s for %s: %s", event.member.id, cid, counts)
        return [Reply(text=", ".join(parts) + "."), *actions]

    async def cmd_report(self, ctx: CommandContext) -> str:
        cid = ctx.community_id
        await self.repo.reconcile_returns(cid)
        window = timedelta(days=self.settings.nudges.return_window_days)
        exposures = [Exposure(m, h, at, back) for m, h, at, back in await self.repo.exposures(cid)]
        report = effect_report(exposures, ctx.now, window)
        rows = await self.repo.nudges(cid)
        sent = [r for r in rows if r["status"] == "sent"]
        step1 = sum(1 for r in sent if r["step"] == 1)
        handoffs = len(await self.repo.alerts(cid, kind="handoff"))
        lines = [
            f"Nudge effect report, {local_when(ctx.now, ctx.community['timezone'])}",
            f"Nudges sent: {len(sent)} (step 1: {step1}, step 2: {len(sent) - step1}); "
            f"hand-offs to facilitators: {handoffs}; hold-out fraction: "
            f"{self.settings.nudges.holdout_fraction:.0%}.",
            *report_lines(report),
        ]
        return "\n".join(lines)

    # -- learner commands -----------------------------------------------------------------------

    async def cmd_off(self, ctx: CommandContext) -> str:
        await self.store.set_pref(ctx.community_id, ctx.member_id, PREF_NUDGES, "off")
        await self.repo.cancel_member(ctx.community_id, ctx.member_id, "opted out")
        return (
            "Nudges are off: Hearth will not message you about quiet spells. "
            f"`{self._cmd('nudges on')}` brings them back."
        )

    async def cmd_on(self, ctx: CommandContext) -> str:
        await self.store.set_pref(ctx.community_id, ctx.member_id, PREF_NUDGES, "on")
        await self.store.set_pref(ctx.community_id, ctx.member_id, PREF_SNOOZE, "")
        return (
            "Nudges are on. Hearth may now and then point you to a conversation or a question "
            "you might like, never at night in your timezone and never more than once every "
            f"{counted(self.settings.nudges.min_days_between, 'day')}."
        )

    async def cmd_snooze(self, ctx: CommandContext, until: date) -> str:
        cal = await calendar(self.store, self.settings, ctx.community_id)
        today = cal.local_date(ctx.now)
        if until <= today:
            raise UserError("until: pick a date after today, e.g. next Monday.")
        if (until - today).days > 366:
            raise UserError("until: at most a year ahead; `nudges off` stops nudges for good.")
        # The policy reads the pref as the day nudges may come again.
        await self.store.set_pref(ctx.community_id, ctx.member_id, PREF_SNOOZE, until.isoformat())
        await self.repo.cancel_member(ctx.community_id, ctx.member_id, "snoozed")
        return (
            f"Nudges paused until {until:%a} {until.day} {until:%b %Y}. "
            f"`{self._cmd('nudges on')}` resumes them sooner."
        )

    async def cmd_timezone(self, ctx: CommandContext, tz: str | None) -> str:
        if tz is None:
            current = await member_timezone(
                self.store, ctx.community_id, ctx.member, ctx.community["timezone"]
            )
            return (
                f"Your timezone: {current}. Hearth never messages you between "
                f"{self.settings.nudges.quiet_hours.start:%H:%M} and "
                f"{self.settings.nudges.quiet_hours.end:%H:%M} there. Change it with "
                f"`{self._cmd('timezone Europe/Berlin')}`."
            )
        try:
            check_timezone(tz)
        except ValueError as exc:
            raise UserError(f"tz: {exc}") from None
        await self.store.set_pref(ctx.community_id, ctx.member_id, PREF_TIMEZONE, tz)
        return (
            f"Timezone set to {tz}. Messages from Hearth will not reach you between "
            f"{self.settings.nudges.quiet_hours.start:%H:%M} and "
            f"{self.settings.nudges.quiet_hours.end:%H:%M} your time."
        )

    # -- member data ----------------------------------------------------------------------------

    async def describe_member(self, community_id: str, member_id: str) -> list[str]:
        prefs = await self.store.member_prefs(community_id, member_id)
        if prefs.get(PREF_NUDGES) == "off":
            status = "off"
        elif prefs.get(PREF_SNOOZE):
            status = f"snoozed until {prefs[PREF_SNOOZE]}"
        else:
            status = "on"
        rows = [
            r
            for r in await self.repo.nudges(community_id, member_id=member_id)
            if r["status"] == "sent"
        ]
        line = f"Nudges: {status}"
        if rows:
            back = sum(1 for r in rows if r["returned_at"] is not None)
            line += f"; {len(rows)} received, {back} followed by a post"
        return [line]

    async def member_data(self, community_id: str, member_id: str) -> dict[str, Any]:
        rows = await self.repo.nudges(community_id, member_id=member_id)
        alerts = [a for a in await self.repo.alerts(community_id) if a["member_id"] == member_id]
        if not rows and not alerts:
            return {}
        return {
            "nudges": [
                {
                    "step": r["step"],
                    "pointed_to": r["hook_kind"],
                    "status": r["status"],
                    "sent_at": r["sent_at"].isoformat() if r["sent_at"] else None,
                    "came_back_at": r["returned_at"].isoformat() if r["returned_at"] else None,
                }
                for r in rows
            ],
            "facilitator_alerts_about_you": [
                {"kind": a["kind"], "at": a["created_at"].isoformat()} for a in alerts
            ],
        }

    async def erase_member(self, community_id: str | None, member_id: str) -> None:
        # Nudge, kudos and alert rows go with the schema-wide erase (MEMBER_COLUMNS); texts
        # that name the member as a peer and the ledger of our DMs are cleared here.
        await self.repo.forget(community_id, member_id)
        self._open = {
            k
            for k in self._open
            if not (k[1] == member_id and (community_id is None or k[0] == community_id))
        }

    def _cog(self, name: str) -> Any:
        engine = self.services.engine
        return next((c for c in engine.cogs if c.name == name), None) if engine else None


_ACTING = ("send", "hold", "holdout", "handoff")


def _tz(name: str):
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def _people(n: int) -> str:
    return f"{n} learner" + ("" if n == 1 else "s")
