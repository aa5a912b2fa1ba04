"""Weekly reflection prompts that close the loop with the facilitator.

The life of a prompt (rows in ``reflection_prompt``):

1. **Post** (job ``reflections.post``, ``[reflections] schedule`` in the course timezone): on
   an active course day the week's prompt from the sequence (``prompts/reflections.toml``; week
   0 is the week the course starts) is posted in the reflection channel as a thread, or sent to
   every learner by DM (``delivery = "dm"``, or when no reflection channel is set). On a
   holiday it is held back to the same local time on the next active day. Facilitators can
   also post one now, schedule their own, or cancel one (``/course prompt ...``).
2. **Answers**: every learner message in the prompt's thread (or, for DM prompts, to the bot)
   is a reflection. The thread is recognised by the platform id of the posted prompt: the post
   carries ``tag="reflection:<id>"``, the adapter reports the id it got, and the runtime passes
   it to :meth:`ReflectionsCog.on_posted`. A reply to a reflection, or a mention of its author
   in the thread, by someone else marks it *responded*.
3. **Follow-up** (job ``reflections.followup``, every 15 minutes by default): posts scheduled
   prompts that fell due, delivers DM prompts held back by a learner's quiet hours, sends one
   reminder per prompt at ``reminder_at`` (80%) of the window to learners who have not
   answered (through the shared proactive-message policy: opt-out, quiet hours, holidays), and
   closes prompts at the end of their window: each facilitator privately gets who answered and
   the reply queue (answers nobody has responded to yet).

Exactly once: each job run is claimed per (job, community, period) by the scheduler; state
changes are compare-and-set (a prompt moves from scheduled to posted once), and every message
has a dedupe key (``reflection:<community>:<prompt>:...``), so a run repeated after a crash or
by a second process re-sends nothing that went out and sends what did not.
"""

from __future__ import annotations

import logging
import time as _time
import uuid
from collections import OrderedDict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.actions import Action, DirectMessage, Field, PostMessage, Reply, RichContent, Section
from bot.cohort import (
    channel_setting,
    command,
    display_name,
    local_when,
    member_ref,
    next_active,
    place,
    roster,
    week_of,
)
from bot.commands import CommandSpec, Option
from bot.engine import Cog, CommandContext, Services
from bot.errors import UserError
from bot.events import Event, MessagePosted, ScheduledTick
from bot.jobs import JobSpec
from bot.policy import PREF_TIMEZONE, Verdict, calendar, in_quiet_hours, message_verdicts
from bot.reflection_templates import (
    DEFAULT_PROMPTS,
    DEFAULT_TEMPLATES,
    PromptSequence,
    Templates,
    load_prompts,
    load_templates,
    resolve,
)
from bot.wording import counted
from storage.reflections_queries import ReflectionRepo

log = logging.getLogger(__name__)

TAG_PREFIX = "reflection:"
#: How long "this thread is not a prompt" is remembered (a prompt posted by another process
#: is picked up after at most this long, in the rare case a reply beats its bookkeeping).
NEGATIVE_TTL_SECONDS = 300
CACHE_SIZE = 10_000
REPLY_QUEUE_SHOWN = 15
#: How far ahead a facilitator may schedule a prompt (as ``nudges snooze``): a cohort's span.
MAX_SCHEDULE_AHEAD = timedelta(days=366)


def _title_of(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else "Reflection"
    return first if len(first) <= 80 else first[:77].rstrip() + "..."


def parse_when(raw: str, timezone: str) -> datetime:
    """``2026-09-14 09:00``, ``2026-09-14T09:00`` or ``2026-09-14`` (09:00), in the course's
    timezone unless an offset is given; returned in UTC."""
    text = raw.strip().replace(" ", "T", 1)
    try:
        if len(text) == 10:
            local = datetime.combine(date.fromisoformat(text), time(9, 0))
        else:
            local = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(
            f"when: expected a date and time like 2026-09-14T09:00, got {raw[:40]!r}"
        ) from None
    if local.tzinfo is None:
        local = local.replace(tzinfo=ZoneInfo(timezone))
    return local.astimezone(UTC)


class ReflectionsCog(Cog):
    name = "reflections"

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        cfg = self.settings.reflections
        # Checked here, at start: a broken file stops Hearth with an error naming it.
        self.sequence: PromptSequence = load_prompts(resolve(cfg.prompts_file, DEFAULT_PROMPTS))
        self.templates: Templates = load_templates(
            resolve(self.settings.summaries.templates, DEFAULT_TEMPLATES)
        )
        self.repo = ReflectionRepo(self.store)
        # (community, thread id) -> prompt row, or None with the monotonic time it was checked.
        self._threads: OrderedDict[tuple[str, str], tuple[dict[str, Any] | None, float]] = (
            OrderedDict()
        )
        # community -> (thread ids of its prompts, monotonic time loaded)
        self._thread_ids: dict[str, tuple[set[str], float]] = {}

    # -- declarations ---------------------------------------------------------------------------

    def jobs(self) -> list[JobSpec]:
        cfg = self.settings.reflections
        return [
            JobSpec(
                "reflections.post",
                cfg.schedule,
                self.run_weekly,
                "post the week's reflection prompt",
                enabled=cfg.enabled,
            ),
            JobSpec(
                "reflections.followup",
                cfg.followup_schedule,
                self.run_followup,
                "scheduled prompts, held-back DMs, reminders, closing with the reply queue",
                enabled=cfg.enabled,
            ),
        ]

    def commands(self) -> list[CommandSpec]:
        return [
            CommandSpec(
                name="prompt list",
                description="Reflection prompts of this cohort: posted, scheduled, answered",
                handler=self.cmd_list,
                facilitator_only=True,
            ),
            CommandSpec(
                name="prompt post",
                description="Post a reflection prompt now (this week's, or your own text)",
                handler=self.cmd_post,
                options=(Option("text", "text", "Your own prompt (default: this week's)"),),
                facilitator_only=True,
            ),
            CommandSpec(
                name="prompt schedule",
                description="Schedule your own reflection prompt",
                handler=self.cmd_schedule,
                options=(
                    Option(
                        "when",
                        "string",
                        "Date and time in the course timezone, e.g. 2026-09-14T09:00",
                        required=True,
                    ),
                    Option("text", "text", "The prompt", required=True),
                ),
                facilitator_only=True,
                examples=("prompt schedule when:2026-09-14T09:00 text:What surprised you?",),
            ),
            CommandSpec(
                name="prompt cancel",
                description="Cancel a scheduled or open reflection prompt",
                handler=self.cmd_cancel,
                options=(
                    Option("id", "integer", "Prompt number (see prompt list)", True, min_value=1),
                ),
                facilitator_only=True,
            ),
        ]

    # -- shared lookups -------------------------------------------------------------------------

    async def current_prompt(self, community_id: str) -> dict[str, Any] | None:
        """The newest open prompt (posted, window not over), for other cogs: the nudges cog
        points quiet learners at it. Keys: id, title, text, delivery, channel_id, thread_id,
        posted_at, closes_at, week."""
        now = self.clock.now()
        open_ = [
            p
            for p in await self.repo.prompts(community_id, statuses=("posted",))
            if p["closes_at"] is not None and p["closes_at"] > now
        ]
        if not open_:
            return None
        p = open_[-1]
        keys = ("id", "title", "text", "delivery", "channel_id", "thread_id", "posted_at")
        return {k: p[k] for k in (*keys, "closes_at", "week")}

    async def _community(self, community_id: str) -> dict[str, Any]:
        community = await self.store.get_community(community_id)
        if community is None:
            raise LookupError(community_id)
        return community

    def _root(self) -> str:
        return self.services.registry.root

    # -- posting --------------------------------------------------------------------------------

    async def run_weekly(self, tick: ScheduledTick) -> list[Action]:
        """The week's prompt from the sequence, on an active course day (held back past
        holidays). Re-running the same week reuses its row, so it is posted once."""
        cid, now = tick.community_id, tick.at
        cal = await calendar(self.store, self.settings, cid)
        if not cal.is_running(now):
            log.info("reflections: %s is outside its course dates; no prompt", cid)
            return []
        community = await self._community(cid)
        cohort = int(community["cohort"])
        week = week_of(cal, now)
        slot = f"c{cohort}:w{week}"
        if week is None:
            # No start date: the sequence simply advances one prompt per run. The slot names
            # the run, so a repeated run finds its prompt instead of taking the next one.
            slot = f"c{cohort}:run:{tick.period}"
            existing = await self.repo.prompt_by_slot(cid, slot)
            if existing is not None:
                held = existing["status"] == "scheduled" and existing["scheduled_for"] > now
                return [] if held else await self.deliver(existing, now, community)
            week = await self.repo.weekly_count(cid, cohort)
        template = self.sequence.for_week(week)
        if template is None:
            log.info("reflections: no prompt for week %s in %s", week, self.sequence.path)
            return []
        when = now if cal.is_active_day(now) else next_active(cal, now)
        if when is None:
            log.info("reflections: no active day soon for %s; week %s skipped", cid, week)
            return []
        prompt = await self._schedule_template(cid, cohort, slot, week, template, when, now)
        if when > now:
            log.info("reflections: %s week %s held back to %s (holiday)", cid, week, when)
            return []
        return await self.deliver(prompt, now, community)

    async def deliver(
        self, prompt: dict[str, Any], now: datetime, community: dict[str, Any]
    ) -> list[Action]:
        """Mark the prompt posted (once) and build its messages (dedupe keys make a repeat
        harmless)."""
        if prompt["status"] == "scheduled":
            cfg = self.settings.reflections
            window = timedelta(days=cfg.window_days)
            channel = await channel_setting(
                self.store, self.settings, community["id"], "reflection_channel"
            )
            delivery = prompt["delivery"]
            if delivery == "thread" and not channel:
                log.warning(
                    "reflections: no reflection_channel for %s; sending the prompt by DM",
                    community["id"],
                )
                delivery = "dm"
            # Windows run on the course's wall clock: a prompt posted Monday 09:00 closes the
            # next Monday at 09:00 local time, even across a DST change.
            local = now.astimezone(ZoneInfo(community["timezone"]))
            await self.repo.update_prompt(
                prompt["id"],
                only_status=("scheduled",),
                status="posted",
                posted_at=now,
                remind_at=(local + window * cfg.reminder_at).astimezone(UTC),
                closes_at=(local + window).astimezone(UTC),
                channel_id=channel or None,
                delivery=delivery,
            )
            prompt = await self.repo.prompt(prompt["id"]) or prompt
        if prompt["status"] != "posted":
            return []
        if prompt["delivery"] == "thread":
            return [self._thread_post(prompt, community)]
        return await self._dm_prompts(prompt, now, community)

    def _post_key(self, prompt: dict[str, Any]) -> str:
        return f"reflection:{prompt['community_id']}:{prompt['id']}:post"

    def _thread_post(self, prompt: dict[str, Any], community: dict[str, Any]) -> PostMessage:
        tz = community["timezone"]
        text = self.templates.render(
            "prompt",
            "thread",
            course=community["name"],
            title=prompt["title"],
            text=prompt["text"],
            closes=local_when(prompt["closes_at"], tz),
        )
        title = prompt["title"]
        if prompt["week"] is not None:
            title = f"Week {prompt['week']}: {title}"
        return PostMessage(
            place=place(community, prompt["channel_id"]),
            text=text,
            as_thread_title=title[:100],
            tag=f"{TAG_PREFIX}{prompt['id']}",
            dedupe_key=self._post_key(prompt),
        )

    async def _candidates(
        self, prompt: dict[str, Any], now: datetime, kind: str, *, check_day: bool
    ) -> tuple[str, list[dict[str, Any]]]:
        """(dedupe key prefix, learners who still need this message and may plausibly get it
        now). A cheap first pass before the full policy check of each one: it skips everyone
        already sent or answered, and everyone on a holiday or in their quiet hours, with a
        few grouped queries instead of a policy round trip per learner on every run."""
        cid = prompt["community_id"]
        prefix = f"reflection:{cid}:{prompt['id']}:{kind}:"
        sent = await self.repo.sent_keys(prefix)
        answered = await self.repo.answered(cid, prompt["id"])
        learners, _staff = await roster(self.store, self.settings, cid)
        pending = [
            r
            for r in learners
            if r["member_id"] not in answered and prefix + r["member_id"] not in sent
        ]
        if not pending:
            return prefix, []
        cal = await calendar(self.store, self.settings, cid)
        if check_day and not cal.is_active_day(now):
            return prefix, []
        zones = await self.store.prefs(cid, PREF_TIMEZONE)
        quiet = self.settings.nudges.quiet_hours
        return prefix, [
            r
            for r in pending
            if not in_quiet_hours(
                now, zones.get(r["member_id"]) or r["timezone"] or cal.timezone, quiet
            )
        ]

    async def _verdicts(
        self, cid: str, candidates: list[dict[str, Any]], now: datetime, **policy: Any
    ) -> dict[str, Verdict]:
        """The proactive-message policy for every candidate row at once."""
        ids = [row["member_id"] for row in candidates]
        return await message_verdicts(self.store, self.settings, cid, ids, now, **policy)

    async def _dm_prompts(
        self, prompt: dict[str, Any], now: datetime, community: dict[str, Any]
    ) -> list[Action]:
        """The prompt by DM to every learner who may get a message now and has not yet
        (members in their quiet hours get it at a later follow-up run)."""
        cid = community["id"]
        prefix, candidates = await self._candidates(prompt, now, "dm", check_day=False)
        actions: list[Action] = []
        verdicts = await self._verdicts(
            cid, candidates, now, purpose="prompt", respect_opt_out=False
        )
        for row in candidates:
            if not verdicts[row["member_id"]].allowed:
                continue
            text = self.templates.render(
                "prompt",
                "dm",
                name=display_name(row),
                course=community["name"],
                title=prompt["title"],
                text=prompt["text"],
                closes=local_when(prompt["closes_at"], community["timezone"]),
            )
            actions.append(
                DirectMessage(
                    member=member_ref(community, row),
                    text=text,
                    dedupe_key=prefix + row["member_id"],
                )
            )
        return actions

    async def on_posted(self, action: PostMessage, message_id: str) -> None:
        """The adapter reported the platform id of a posted prompt: its thread key."""
        tag = action.tag or ""
        if not tag.startswith(TAG_PREFIX):
            return
        try:
            prompt_id = int(tag[len(TAG_PREFIX) :])
        except ValueError:
            return
        await self.repo.update_prompt(prompt_id, thread_id=message_id)
        prompt = await self.repo.prompt(prompt_id)
        if prompt is not None:
            self._remember(prompt["community_id"], message_id, prompt)

    # -- follow-up: scheduled, DMs, reminders, close ----------------------------------------------

    async def run_followup(self, tick: ScheduledTick) -> list[Action]:
        cid, now = tick.community_id, tick.at
        grace = timedelta(seconds=self.settings.scheduler.grace_seconds)
        prompts = await self.repo.followup_prompts(cid, now - grace)
        if not prompts:
            return []  # the common case between prompts: one query and done
        community = await self._community(cid)
        window = timedelta(days=self.settings.reflections.window_days)
        actions: list[Action] = []
        active: bool | None = None
        delivered = False
        for prompt in prompts:
            if prompt["status"] != "scheduled":
                continue
            due = prompt["scheduled_for"]
            if due is None or due > now:
                continue
            if now - due > window:
                # Held back so long (a long holiday, a stopped bot) that its week is over.
                await self.repo.update_prompt(
                    prompt["id"], only_status=("scheduled",), status="cancelled"
                )
                log.info("reflections: prompt %s in %s missed its week", prompt["id"], cid)
                continue
            if active is None:
                active = (await calendar(self.store, self.settings, cid)).is_active_day(now)
            # A facilitator's own prompt goes out when they said; the sequence waits for an
            # active course day.
            if active or prompt["created_by"] is not None:
                actions += await self.deliver(prompt, now, community)
                delivered = True
        if delivered:
            prompts = await self.repo.followup_prompts(cid, now - grace)
        for prompt in prompts:
            if prompt["status"] == "posted" and prompt["closes_at"] <= now:
                await self.repo.update_prompt(
                    prompt["id"], only_status=("posted",), status="closed", closed_at=now
                )
                prompt = {**prompt, "status": "closed", "closed_at": now}
            if prompt["status"] == "closed":
                # Re-built for a while after closing, so a run interrupted mid-delivery
                # finishes at the next run; the ledger skips what already went out.
                actions += await self._close_report(prompt, community)
                continue
            if prompt["status"] != "posted":
                continue
            if prompt["delivery"] == "dm":
                actions += await self._dm_prompts(prompt, now, community)
            elif prompt["thread_id"] is None:
                # Posted but never delivered (a crash between the two, past the grace period):
                # the dedupe key makes this a no-op if it did go out.
                key = self._post_key(prompt)
                if key not in await self.repo.sent_keys(key):
                    actions.append(self._thread_post(prompt, community))
            if prompt["remind_at"] is not None and prompt["remind_at"] <= now:
                actions += await self._reminders(prompt, now, community)
        return actions

    async def _reminders(
        self, prompt: dict[str, Any], now: datetime, community: dict[str, Any]
    ) -> list[Action]:
        """One reminder per prompt to learners who have not answered, if the policy allows
        (not in quiet hours, not opted out, not a holiday); others are tried next run."""
        cid = community["id"]
        prefix, candidates = await self._candidates(prompt, now, "remind", check_day=True)
        if prompt["delivery"] == "thread":
            where = f"answer in the thread in #{prompt['channel_id']}"
        else:
            where = "just answer my earlier message here"
        actions: list[Action] = []
        verdicts = await self._verdicts(cid, candidates, now, purpose="reminder")
        for row in candidates:
            verdict = verdicts[row["member_id"]]
            if not verdict.allowed:
                log.debug("no reminder to %s: %s", row["member_id"], verdict.reason)
                continue
            text = self.templates.render(
                "reminder",
                "text",
                name=display_name(row),
                course=community["name"],
                title=prompt["title"],
                closes=local_when(prompt["closes_at"], community["timezone"]),
                where=where,
                command=command(self._root(), "nudges off"),
            )
            actions.append(
                DirectMessage(
                    member=member_ref(community, row),
                    text=text,
                    dedupe_key=prefix + row["member_id"],
                )
            )
        return actions

    async def reply_queue(self, community_id: str, prompt_id: int) -> list[dict[str, Any]]:
        """Reflections on the prompt that nobody else has responded to, oldest first."""
        return [
            r for r in await self.repo.reflections(community_id, prompt_id) if not r["responded"]
        ]

    async def close_content(self, prompt: dict[str, Any], community: dict[str, Any]) -> RichContent:
        """Who answered, who did not, and the reply queue: for facilitators only."""
        cid = community["id"]
        learners, _staff = await roster(self.store, self.settings, cid)
        names = {r["member_id"]: display_name(r) for r in await self.store.members(cid)}
        answered = await self.repo.answered(cid, prompt["id"])
        queue = await self.reply_queue(cid, prompt["id"])
        learner_ids = {r["member_id"] for r in learners}
        who = sorted(names.get(m, m) for m in answered)
        missing = sorted(display_name(r) for r in learners if r["member_id"] not in answered)
        tz = community["timezone"]
        t = self.templates
        sections = [
            Section(
                "Answers",
                t.render(
                    "close",
                    "intro",
                    answered=len(answered & learner_ids),
                    learners=len(learners),
                    all_learners=counted(len(learners), "learner"),
                    title=prompt["title"],
                ),
                fields=(
                    Field("Answered", ", ".join(who) or "nobody yet"),
                    Field("Not yet", ", ".join(missing) or "everyone answered"),
                ),
            )
        ]
        if queue:
            lines = []
            for r in queue[:REPLY_QUEUE_SHOWN]:
                where = (
                    f"in #{prompt['channel_id']}, message {r['message_id']}"
                    if prompt["delivery"] == "thread"
                    else "by DM"
                )
                lines.append(
                    f"- {names.get(r['member_id'], r['member_id'])}, "
                    f"{local_when(r['created_at'], tz)} "
                    f"({counted(r['word_count'], 'word')}) {where}"
                )
            if len(queue) > REPLY_QUEUE_SHOWN:
                lines.append(f"... and {len(queue) - REPLY_QUEUE_SHOWN} more")
            queued = t.render(
                "close", "queue", answers=counted(len(queue), "answer"), count=len(queue)
            )
            body = queued + "\n" + "\n".join(lines)
        else:
            body = t.render("close", "queue_empty")
        sections.append(Section("Reply queue", body))
        return RichContent(
            title=t.render("close", "title", title=prompt["title"]),
            sections=tuple(sections),
            footer=f"Prompt #{prompt['id']}, posted {local_when(prompt['posted_at'], tz)}",
        )

    async def _close_report(
        self, prompt: dict[str, Any], community: dict[str, Any]
    ) -> list[Action]:
        cid = community["id"]
        prefix = f"reflection:{cid}:{prompt['id']}:closed:"
        _learners, staff = await roster(self.store, self.settings, cid)
        sent = await self.repo.sent_keys(prefix)
        todo = [r for r in staff if prefix + r["member_id"] not in sent and r["reachable"]]
        if not todo:
            return []
        rich = await self.close_content(prompt, community)
        return [
            DirectMessage(
                member=member_ref(community, r), rich=rich, dedupe_key=prefix + r["member_id"]
            )
            for r in todo
        ]

    # -- answers ----------------------------------------------------------------------------------

    def _remember(self, community_id: str, thread_id: str, prompt: dict[str, Any] | None) -> None:
        if prompt is not None and community_id in self._thread_ids:
            self._thread_ids[community_id][0].add(str(thread_id))
        self._threads[(community_id, thread_id)] = (prompt, _time.monotonic())
        self._threads.move_to_end((community_id, thread_id))
        while len(self._threads) > CACHE_SIZE:
            self._threads.popitem(last=False)

    async def _prompt_thread_ids(self, community_id: str) -> set[str]:
        """Thread ids of this community's prompts, kept in memory.

        Every message in any thread is checked against this set; asking the database per
        message would cost a query on the hot path (and did: 75% of import time). The set is
        reloaded every few minutes so a prompt posted by another process is picked up.
        """
        cached = self._thread_ids.get(community_id)
        now = _time.monotonic()
        if cached is None or now - cached[1] > NEGATIVE_TTL_SECONDS:
            ids = {
                str(p["thread_id"])
                for p in await self.repo.prompts(community_id)
                if p["thread_id"] is not None
            }
            cached = (ids, now)
            self._thread_ids[community_id] = cached
        return cached[0]

    async def _prompt_for_thread(self, community_id: str, thread_id: str) -> dict[str, Any] | None:
        if thread_id not in await self._prompt_thread_ids(community_id):
            return None
        cached = self._threads.get((community_id, thread_id))
        if cached is not None:
            prompt, checked = cached
            if prompt is not None or _time.monotonic() - checked < NEGATIVE_TTL_SECONDS:
                return prompt
        prompt = await self.repo.prompt_for_thread(community_id, thread_id)
        self._remember(community_id, thread_id, prompt)
        return prompt

    async def _open_dm_prompt(self, community_id: str, now: datetime) -> dict[str, Any] | None:
        prompts = [
            p
            for p in await self.repo.prompts(community_id, statuses=("posted",))
            if p["delivery"] == "dm" and p["closes_at"] is not None and p["closes_at"] > now
        ]
        return prompts[-1] if prompts else None

    async def on_event(self, event: Event) -> list[Action]:
        if not isinstance(event, MessagePosted) or event.author.is_bot or event.is_system:
            return []
        place_ = event.place
        cid = place_.community_id
        if place_.is_direct:
            prompt = await self._open_dm_prompt(cid, event.at)
        else:
            key = place_.thread_id or event.reply_to_id
            if key is None:
                return []
            prompt = await self._prompt_for_thread(cid, key)
        if prompt is None or prompt["status"] == "cancelled":
            return []
        await self._record(event, prompt)
        return []

    async def _untracked(self, community_id: str, member_id: str) -> bool:
        engine = self.services.engine
        contributions = next((c for c in engine.cogs if c.name == "contributions"), None)
        if contributions is not None and hasattr(contributions, "untracked"):
            return (community_id, member_id) in contributions.untracked
        return await self.store.get_pref(community_id, member_id, "tracking") == "off"

    async def _record(self, event: MessagePosted, prompt: dict[str, Any]) -> None:
        cid = event.place.community_id
        author = event.author.id
        engine = self.services.engine
        facilitator = engine is not None and await engine.is_facilitator(cid, event.author)
        if not facilitator and not await self._untracked(cid, author):
            self.repo.add_reflection(
                {
                    "community_id": cid,
                    "prompt_id": prompt["id"],
                    "member_id": author,
                    "message_id": event.message_id,
                    "created_at": event.at,
                    "word_count": len((event.text or "").split()),
                    "responded": False,
                    "responded_at": None,
                }
            )
        # Closing the loop: a reply to someone's reflection, or naming them in the thread.
        if event.reply_to_id is not None:
            answered = await self.repo.reflection(cid, event.reply_to_id)
            if answered is not None and answered["member_id"] != author:
                self.repo.mark_responded(cid, at=event.at, message_id=event.reply_to_id)
        for mentioned in dict.fromkeys(event.mentions):
            if mentioned != author:
                self.repo.mark_responded(
                    cid, at=event.at, prompt_id=prompt["id"], member_id=mentioned
                )

    # -- commands ---------------------------------------------------------------------------------

    async def cmd_list(self, ctx: CommandContext) -> str:
        cid = ctx.community_id
        tz = ctx.community["timezone"]
        prompts = await self.repo.prompts(cid, cohort=int(ctx.community["cohort"]))
        counts = await self.repo.answered_counts(cid, [p["id"] for p in prompts])
        learners, _staff = await roster(self.store, self.settings, cid)
        lines = [f"Reflection prompts, cohort {ctx.community['cohort']}:"]
        for p in prompts:
            label = f"week {p['week']}" if p["week"] is not None else "own"
            if p["status"] == "scheduled":
                when = f"scheduled for {local_when(p['scheduled_for'], tz)}"
            elif p["status"] == "cancelled":
                when = "cancelled"
            else:
                state = "open until" if p["status"] == "posted" else "closed"
                when = (
                    f"posted {local_when(p['posted_at'], tz)}, {state} "
                    f"{local_when(p['closes_at'], tz)}; answered by {counts.get(p['id'], 0)} "
                    f"of {len(learners)}"
                )
            lines.append(f"  #{p['id']} ({label}) {p['title']}: {when}")
        if not prompts:
            lines.append("  none yet")
        cal = await calendar(self.store, self.settings, cid)
        week = week_of(cal, ctx.now)
        upcoming = [w for w in self.sequence.weeks if week is None or w > week][:3]
        if upcoming:
            posted = self.services.schedule_words(self.settings.reflections.schedule, tz, ctx.now)
            lines.append(
                "Next from the sequence: "
                + "; ".join(f"week {w}: {self.sequence.for_week(w).title}" for w in upcoming)
                + f" (posted {posted}, {tz})"
            )
        return "\n".join(lines)

    async def cmd_post(self, ctx: CommandContext, text: str | None) -> list[Action]:
        cid = ctx.community_id
        community = ctx.community
        cohort = int(community["cohort"])
        now = ctx.now
        if text is None:
            cal = await calendar(self.store, self.settings, cid)
            week = week_of(cal, now)
            if week is None:
                week = await self.repo.weekly_count(cid, cohort)
            template = self.sequence.for_week(week)
            if template is None:
                raise UserError(
                    f"The prompt sequence has nothing for week {week}; give your own with text:..."
                )
            slot = f"c{cohort}:w{week}"
            existing = await self.repo.prompt_by_slot(cid, slot)
            if existing is not None and existing["status"] != "scheduled":
                raise UserError(
                    f"This week's prompt is already {existing['status']} (#{existing['id']}); "
                    "post your own with text:..."
                )
            prompt = existing or await self._schedule_template(
                cid, cohort, slot, week, template, now, now, created_by=ctx.member_id
            )
        else:
            prompt = await self._create_own(ctx, text, now)
        actions = await self.deliver(prompt, now, community)
        prompt = await self.repo.prompt(prompt["id"]) or prompt
        return [Reply(text=self._posted_line(prompt, community), ephemeral=True), *actions]

    async def _schedule_template(
        self, cid, cohort, slot, week, template, when, now, *, created_by=None
    ) -> dict:
        """A prompt row from the week's template, scheduled for ``when``."""
        extra = {"created_by": created_by} if created_by is not None else {}
        return await self.repo.create_prompt(
            community_id=cid,
            cohort=cohort,
            slot=slot,
            week=week,
            prompt_key=template.id,
            title=template.title,
            text=template.text,
            delivery=self.settings.reflections.delivery,
            status="scheduled",
            scheduled_for=when,
            created_at=now,
            **extra,
        )

    async def _create_own(self, ctx: CommandContext, text: str, when: datetime) -> dict[str, Any]:
        cohort = int(ctx.community["cohort"])
        # Facilitators' own prompts each get a fresh slot (two may share a minute).
        slot = f"manual:{ctx.now:%Y%m%dT%H%M}:{uuid.uuid4().hex}"
        return await self.repo.create_prompt(
            community_id=ctx.community_id,
            cohort=cohort,
            slot=slot,
            week=None,
            prompt_key="",
            title=_title_of(text),
            text=text,
            delivery=self.settings.reflections.delivery,
            status="scheduled",
            scheduled_for=when,
            created_by=ctx.member_id,
            created_at=ctx.now,
        )

    def _posted_line(self, prompt: dict[str, Any], community: dict[str, Any]) -> str:
        tz = community["timezone"]
        if prompt["status"] != "posted":
            return f"Prompt #{prompt['id']} is {prompt['status']}."
        where = f"in #{prompt['channel_id']}" if prompt["delivery"] == "thread" else "by DM"
        return (
            f"Posted prompt #{prompt['id']} {where}: {prompt['title']}. It closes "
            f"{local_when(prompt['closes_at'], tz)} ({tz}); learners who have not answered get "
            "one reminder before that."
        )

    async def cmd_schedule(self, ctx: CommandContext, when: str, text: str) -> str:
        tz = ctx.community["timezone"]
        moment = parse_when(when, tz)
        if moment <= ctx.now:
            raise UserError(f"when: {local_when(moment, tz)} is in the past.")
        if moment - ctx.now > MAX_SCHEDULE_AHEAD:
            # Messages show a day without its year: a typo (2062 for 2026) would look right.
            raise UserError(f"when: {moment.date().isoformat()} is more than a year ahead.")
        prompt = await self._create_own(ctx, text, moment)
        cancel = command(self._root(), f"prompt cancel id:{prompt['id']}")
        return (
            f"Scheduled prompt #{prompt['id']} for {local_when(moment, tz)} ({tz}): "
            f"{prompt['title']}. Cancel it with {cancel}."
        )

    async def cmd_cancel(self, ctx: CommandContext, id: int) -> str:  # noqa: A002 - option name
        prompt = await self.repo.prompt(id)
        if prompt is None or prompt["community_id"] != ctx.community_id:
            raise UserError(f"There is no prompt #{id} in this course.")
        if not await self.repo.update_prompt(
            id, only_status=("scheduled", "posted"), status="cancelled"
        ):
            raise UserError(f"Prompt #{id} is already {prompt['status']}.")
        if prompt["thread_id"]:
            self._remember(ctx.community_id, prompt["thread_id"], {**prompt, "status": "cancelled"})
        was = "open" if prompt["status"] == "posted" else "scheduled"
        return f"Cancelled prompt #{id} ({was}): no reminders or close report will go out."

    def forget_community(self, community_id: str) -> None:
        """A cohort was archived: its prompts moved away, so forget their threads."""
        self._thread_ids.pop(community_id, None)
        for key in [k for k in self._threads if k[0] == community_id]:
            del self._threads[key]

    # -- members ----------------------------------------------------------------------------------

    async def describe_member(self, community_id: str, member_id: str) -> list[str]:
        community = await self.store.get_community(community_id)
        if community is None:
            return []
        prompts = [
            p
            for p in await self.repo.prompts(community_id, cohort=int(community["cohort"]))
            if p["status"] in ("posted", "closed")
        ]
        if not prompts:
            return []
        mine = await self.repo.member_reflections(community_id, member_id)
        ids = {p["id"] for p in prompts}
        answered = len({r["prompt_id"] for r in mine if r["prompt_id"] in ids})
        return [
            f"Reflections: answered {answered} of {counted(len(prompts), 'prompt')} this cohort"
        ]

    async def erase_member(self, community_id: str | None, member_id: str) -> None:
        # Reflection rows go with the store's schema-wide erase (MEMBER_COLUMNS); archived
        # cohorts are erased by the summaries cog. Nothing about members is cached here.
        return None

    async def member_data(self, community_id: str, member_id: str) -> dict[str, Any]:
        rows = await self.repo.member_reflections(community_id, member_id)
        if not rows:
            return {}
        return {
            "reflections": [
                {
                    "prompt": r["prompt_id"],
                    "at": r["created_at"].isoformat(),
                    "words": r["word_count"],
                    "responded": r["responded"],
                }
                for r in rows
            ],
            "text_stored": False,
        }
