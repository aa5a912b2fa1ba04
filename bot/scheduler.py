"""The scheduler service: APScheduler 3.x triggers over cog-declared jobs, exactly once.

Each (job, community) gets a ``CronTrigger`` in the community's own ``ZoneInfo``, so "Monday
09:00 Europe/London" stays 09:00 across DST changes. Before a run acts it claims a row keyed by
(job, community, period) with a unique constraint (``storage.repos.Store.claim``): a double fire,
a restart or a second process never runs it twice. A run missed while the bot was down is run
once at start if it is within ``grace_seconds``.

Two modes share :meth:`SchedulerService.fire`:
- live: an ``AsyncIOScheduler`` calls us at fire times. Its job function only *starts* our own
  task, because APScheduler's asyncio executor cancels running jobs at shutdown; we keep the
  tasks and let them finish (or release their claim) on stop.
- simulated (console, demo, tests): :meth:`advance_to` walks every fire time between the last
  check and the fake clock's now, in order, with no sleeps.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.clock import Clock
from bot.engine import Engine
from bot.events import ScheduledTick
from bot.jobs import JobSpec
from bot.memory import BIG_JOB_SECONDS, release_freed_memory

log = logging.getLogger(__name__)

Deliver = Callable[[Sequence[Any]], Awaitable[None]]


def period_of(fire_time: datetime) -> str:
    """The claim key of one run: its fire time in UTC, to the minute (unique across DST)."""
    return fire_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def trigger_for(job: JobSpec, timezone: str) -> CronTrigger:
    return CronTrigger.from_crontab(job.cron, timezone=ZoneInfo(timezone))


def fire_times(
    trigger: CronTrigger, after: datetime, until: datetime, *, limit: int | None = None
) -> list[datetime]:
    """Fire times t with after < t <= until (the first ``limit`` of them, with one).

    Always asks for the next time after a cursor, without a previous fire time: APScheduler
    3.x can loop or repeat an instant around a DST fold when given one.
    """
    # Arithmetic in UTC: adding a minute to a ZoneInfo datetime is wall-clock arithmetic and
    # lands on the same instant again inside a DST fold.
    times: list[datetime] = []
    cursor = after.astimezone(UTC) + timedelta(microseconds=1)
    while True:
        current = trigger.get_next_fire_time(None, cursor)
        if current is None or current > until or len(times) == limit:
            return times
        if current < cursor or (times and current <= times[-1]):
            cursor = cursor + timedelta(minutes=1)
            continue
        times.append(current)
        cursor = current.astimezone(UTC) + timedelta(microseconds=1)


def last_fire_time(trigger: CronTrigger, after: datetime, until: datetime) -> datetime | None:
    """The latest fire time t with after < t <= until, or None: the last of
    :func:`fire_times`, found without walking all of them.

    It looks back a short way first: a live fire comes at its time, and walking every fire
    time of a job that runs each minute over the six-hour grace period took 14 ms of the
    event loop per fire. Near a clock change it walks the whole window: when the clocks go
    back, wall times repeat and the walk from ``after`` skips the repeats, which a walk
    begun inside the repeated hour could not know."""
    zone = trigger.timezone
    for back in (timedelta(minutes=2), timedelta(hours=2)):
        start = until - back
        if start <= after:
            break
        # Clock changes are months apart: the same offset three hours before the window
        # and at its end means none falls in or just before it.
        if (start - timedelta(hours=3)).astimezone(zone).utcoffset() != until.astimezone(
            zone
        ).utcoffset():
            break
        times = fire_times(trigger, start, until)
        if times:
            return times[-1]
    times = fire_times(trigger, after, until)
    return times[-1] if times else None


@dataclass(slots=True)
class Planned:
    job: JobSpec
    community_id: str
    timezone: str
    trigger: CronTrigger


class SchedulerService:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        deliver: Deliver,
        *,
        grace: timedelta,
        lease: timedelta,
        live: bool,
        debug_delay: float = 0.0,
    ) -> None:
        self.engine = engine
        self.store = engine.store
        self.clock = clock
        self.deliver = deliver
        self.grace = grace
        self.lease = lease
        self.live = live
        self.debug_delay = debug_delay
        self.planned: dict[tuple[str, str], Planned] = {}
        self._aps: AsyncIOScheduler | None = None
        self._running: set[asyncio.Task] = set()
        self._last_check: datetime | None = None
        #: When each community appeared (its row's created_at), read at each refresh.
        self._appeared: dict[str, datetime] = {}
        self.runs: list[tuple[str, str, str]] = []  # (job, community, period) run here

    async def refresh(self) -> None:
        """(Re)build triggers for every community and job (new communities, new timezones).

        Live, after start, a job planned for a community that came since also runs, once, its
        latest fire time after the community appeared (within the grace period): APScheduler
        plans only fire times still to come and the refresh comes every 5 minutes, so a run
        due in between was lost (a weekly summary, for a week). Start's catch-up covers what
        start plans. A job re-planned for a community's new timezone catches up the same way:
        its time in the new zone may have passed while its time in the old one had not come.
        If the old zone's time has come, that run happened, and :meth:`fire` does not repeat
        it under the new zone's time.
        """
        wanted: dict[tuple[str, str], Planned] = {}
        moved: set[tuple[str, str]] = set()  # planned before, in another timezone
        appeared: dict[str, datetime] = {}
        for community in await self.store.communities():
            appeared[community["id"]] = community["created_at"]
            for name, (_cog, job) in self.engine.jobs.items():
                if not job.enabled:
                    continue
                tz = community["timezone"] or "UTC"
                key = (name, community["id"])
                current = self.planned.get(key)
                if current is not None and current.timezone == tz:
                    wanted[key] = current
                    continue
                if current is not None:
                    moved.add(key)
                wanted[key] = Planned(job, community["id"], tz, trigger_for(job, tz))
        if self._aps is not None:
            for key in set(self.planned) - set(wanted):
                self._remove_aps(key)
            for key, planned in wanted.items():
                if self.planned.get(key) is not planned:
                    self._remove_aps(key)
                    self._aps.add_job(
                        self._spawn,
                        planned.trigger,
                        args=(planned.job.name, planned.community_id),
                        id=f"{key[0]}|{key[1]}",
                        misfire_grace_time=int(self.grace.total_seconds()),
                        coalesce=True,
                        max_instances=1,
                        replace_existing=True,
                    )
        new = [p for key, p in wanted.items() if key not in self.planned or key in moved]
        self.planned = wanted
        self._appeared = appeared
        if self.live and self._last_check is not None:
            now = self.clock.now()
            for planned in new:
                missed = self._missed(planned, now)
                if missed is not None:
                    what = f"job {planned.job.name} for {planned.community_id}"
                    self._keep(self.fire(planned.job.name, planned.community_id, missed), what)

    def _remove_aps(self, key: tuple[str, str]) -> None:
        assert self._aps is not None
        job = self._aps.get_job(f"{key[0]}|{key[1]}")
        if job is not None:
            job.remove()

    async def start(self) -> None:
        if self.live:
            self._aps = AsyncIOScheduler(timezone=UTC)
            self._aps.start()
            self._aps.add_job(self._spawn_refresh, "interval", minutes=5, id="hearth-refresh")
        await self.refresh()
        await self.catch_up()
        self._last_check = self.clock.now()

    async def catch_up(self) -> int:
        """Run, once, the latest missed run of each job if it is within the grace period (and
        after its community appeared)."""
        now = self.clock.now()
        ran = 0
        for planned in list(self.planned.values()):
            missed = self._missed(planned, now)
            if missed is not None:
                if await self.fire(planned.job.name, planned.community_id, missed):
                    ran += 1
        return ran

    def _missed(self, planned: Planned, now: datetime) -> datetime | None:
        """The latest fire time of ``planned`` within the grace period before ``now`` and
        after its community appeared: a course created at 17:30 has no 17:00 weekly summary
        to catch up."""
        since = now - self.grace
        appeared = self._appeared.get(planned.community_id)
        return last_fire_time(planned.trigger, max(since, appeared) if appeared else since, now)

    async def advance_to(self, now: datetime) -> int:
        """Simulated mode: run every fire time up to ``now``, oldest first."""
        await self.refresh()
        start = self._last_check or now
        due: list[tuple[datetime, Planned]] = []
        for planned in self.planned.values():
            for when in fire_times(planned.trigger, start, now):
                due.append((when, planned))
        due.sort(key=lambda item: (item[0], item[1].job.name, item[1].community_id))
        ran = 0
        for when, planned in due:
            if await self.fire(planned.job.name, planned.community_id, when):
                ran += 1
        self._last_check = now
        return ran

    # APScheduler's job functions. Coroutine functions, because its asyncio executor runs a
    # plain function in a worker thread, where there is no event loop to start a task on
    # (every live fire failed with "no running event loop" when these were plain functions).
    # Each only starts our own task and returns: the executor cancels its jobs at shutdown,
    # and that must never reach a run (``stop`` lets runs finish or release their claim).

    async def _spawn(self, job: str, community_id: str) -> None:
        due = self._due(job, community_id)
        if due is None:
            # APScheduler and our walk of the trigger disagree (the job was re-planned
            # meanwhile, or a clock change): without a scheduled time there is no period
            # that every process would claim alike, so no run rather than a doubled one.
            log.warning(
                "job %s for %s fired with no scheduled time behind it; skipped", job, community_id
            )
            return
        self._keep(self.fire(job, community_id, due), f"job {job} for {community_id}")

    async def _spawn_refresh(self) -> None:
        self._keep(self.refresh(), "the schedule's refresh")

    def _keep(self, coro: Awaitable[Any], what: str) -> None:
        task = asyncio.ensure_future(coro)
        self._running.add(task)

        def done(task: asyncio.Task) -> None:
            self._running.discard(task)
            # Nobody awaits these tasks: an error (the database gone mid-claim) is logged
            # here, when it happens, not as "exception never retrieved" whenever the task
            # is collected. The claim, if taken, expires; the next fire or start retries.
            if not task.cancelled() and task.exception() is not None:
                log.error("%s failed", what, exc_info=task.exception())

        task.add_done_callback(done)

    def _due(self, job: str, community_id: str) -> datetime | None:
        """The fire time a live fire is for: the trigger's latest at or before now (within
        the grace period). Every process that fires it then claims the same period, even one
        that fires late or whose clock crossed into the next minute meanwhile."""
        planned = self.planned.get((job, community_id))
        if planned is None:
            return None
        now = self.clock.now()
        return last_fire_time(planned.trigger, now - self.grace, now)

    async def fire(
        self,
        job: str,
        community_id: str,
        fire_time: datetime | None,
        *,
        period: str | None = None,
    ) -> bool:
        """Claim and run one (job, community, period). True if it ran here."""
        now = self.clock.now()
        when = fire_time or now
        if period is None and await self._ran_near(job, community_id, when, now):
            return False
        period = period or period_of(when)
        if not await self.store.claim(job, community_id, period, now=now, lease=self.lease):
            log.debug("job %s for %s period %s already claimed", job, community_id, period)
            return False
        tick = ScheduledTick(at=when, job=job, community_id=community_id, period=period)
        started = time.perf_counter()
        try:
            if self.debug_delay:
                await asyncio.sleep(self.debug_delay)
            actions = await self.engine.dispatch(tick)
            await self.deliver(actions)
        except asyncio.CancelledError:
            # Shutdown mid-run: give the run back so the next start does it (sends already
            # made are in the sent ledger and will not be repeated).
            await asyncio.shield(self.store.release_claim(job, community_id, period))
            raise
        await self.store.finish_claim(job, community_id, period, self.clock.now())
        self.runs.append((job, community_id, period))
        elapsed = time.perf_counter() - started
        self.engine.services.observer.job_ran(job, elapsed)
        log.info("job %s ran for %s (period %s)", job, community_id, period)
        # A big report frees tens of megabytes when it finishes; without this glibc keeps
        # the pages, and the process its peak size, until the next week's run.
        await asyncio.to_thread(release_freed_memory, collect=elapsed >= BIG_JOB_SECONDS)
        return True

    async def _ran_near(self, job: str, community_id: str, when: datetime, now: datetime) -> bool:
        """Whether the run due at ``when`` already happened at another time: a run of the job
        for the community, other than ``when``'s own, less than half the gap to its previous
        fire time away. Claims are per fire time, and a timezone change moves the fire time:
        without this, a weekly summary that went out at 17:00 UTC went out again at 17:00 in
        New York when the course moved there that afternoon."""
        planned = self.planned.get((job, community_id))
        if planned is None:
            return False
        # The previous fire time, within a month (jobs run daily or weekly); further back
        # than that, any other run is far enough.
        previous = last_fire_time(
            planned.trigger, when - timedelta(days=32), when - timedelta(microseconds=1)
        )
        gap = (when - previous) if previous is not None else timedelta(days=32)
        half = gap / 2
        own = period_of(when)
        nearby = await self.store.runs_between(
            job,
            community_id,
            period_of(when - half + timedelta(minutes=1)),
            period_of(when + half - timedelta(minutes=1)),
            now=now,
        )
        others = [p for p in nearby if p != own]
        if others:
            log.info(
                "job %s for %s due at %s skipped: it ran for %s (a change of timezone or "
                "schedule moved its time)",
                job,
                community_id,
                own,
                ", ".join(others),
            )
        return bool(others)

    async def fire_now(self, job: str, community_id: str, period: str | None = None) -> bool:
        """Run a job by hand (``:tick NAME [PERIOD]``); the period defaults to this minute."""
        if job not in self.engine.jobs:
            raise KeyError(job)
        now = self.clock.now()
        manual = "manual:" + (period or period_of(now))
        return await self.fire(job, community_id, now, period=manual)

    async def stop(self, timeout: float = 30.0) -> None:
        """Stop firing; let running jobs finish, cancel (and release) the ones that do not."""
        if self._aps is not None:
            self._aps.shutdown(wait=False)
            self._aps = None
        if self._running:
            done, pending = await asyncio.wait(set(self._running), timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
