"""The engine: one neutral event in, a list of neutral actions out.

It keeps the community and member tables current, routes commands to their handlers (checking
the facilitator role on every call), routes other events to every cog in the order the
composition root lists them, and routes scheduled ticks to the cog that declared the job.

The user-error boundary lives here: a :class:`UserError` becomes a private reply with its
message; any other exception is logged with context and answered with a generic line, so no
exception text ever reaches a chat.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.actions import Action, Reply
from bot.clock import Clock
from bot.commands import (
    CommandSpec,
    Registry,
    bind_options,
    command_help,
    command_named,
    parse_command,
)
from bot.config import Settings
from bot.errors import UserError
from bot.events import (
    ButtonPressed,
    CommandInvoked,
    Event,
    MemberJoined,
    MemberLeft,
    MemberRef,
    MessagePosted,
    PlaceRef,
    ScheduledTick,
)
from bot.jobs import JobSpec
from bot.logformat import bind, unbind
from bot.observe import Observer
from storage.repos import Store
from storage.writer import BufferFull

log = logging.getLogger(__name__)

GENERIC_ERROR = (
    "Sorry, something went wrong on my side. The facilitators can find details in the logs."
)
NOT_RECORDED = (
    "Sorry, I cannot record anything right now (my database is unreachable). "
    "Please try again in a few minutes."
)


@dataclass(slots=True)
class Services:
    """What the composition root hands every cog."""

    store: Store
    settings: Settings
    clock: Clock
    registry: Registry = field(default_factory=Registry)
    #: Set by the engine so cogs can ask it about facilitators and communities.
    engine: Engine | None = None
    #: Monitoring hooks (``bot.metrics.Metrics`` when [metrics] is on; no-op otherwise).
    observer: Observer = field(default_factory=Observer)
    #: A job's cron schedule as people read it, (cron, timezone, now) -> "every Friday at
    #: 18:00": ``bot.schedule_words``, set by the composition root (it reads the scheduler's
    #: own triggers, which cogs may not import). Without it, the expression as it is.
    schedule_words: Callable[[str, str, datetime], str] = lambda cron, _tz, _now: (
        f"on the schedule `{cron}`"
    )


@dataclass(slots=True)
class CommandContext:
    event: CommandInvoked
    community: dict[str, Any]
    member: dict[str, Any]
    is_facilitator: bool
    now: datetime
    spec: CommandSpec

    @property
    def community_id(self) -> str:
        return self.community["id"]

    @property
    def member_id(self) -> str:
        return self.member["member_id"]


class Cog(ABC):
    """One capability. Subclasses declare commands and jobs, react to events, and erase."""

    name: str = "cog"

    def __init__(self, services: Services) -> None:
        self.services = services
        self.store = services.store
        self.settings = services.settings
        self.clock = services.clock

    def commands(self) -> list[CommandSpec]:
        return []

    def jobs(self) -> list[JobSpec]:
        return []

    async def start(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Load caches after the database is ready."""

    async def on_event(self, event: Event) -> list[Action]:
        """Every non-command event, in cog order. Return actions to send."""
        return []

    async def on_button(self, event: ButtonPressed) -> list[Action]:
        return []

    @abstractmethod
    async def erase_member(self, community_id: str | None, member_id: str) -> None:
        """Forget everything this cog holds about a member (``forgetme``)."""

    async def member_data(self, community_id: str, member_id: str) -> dict[str, Any]:
        """What this cog stores about the member, for ``mydata``."""
        return {}


_INTERACTIVE = (CommandInvoked, ButtonPressed)


def _community_of(event: Event) -> str | None:
    if isinstance(event, (MemberJoined, MemberLeft, ScheduledTick)):
        return event.community_id
    place: PlaceRef | None = getattr(event, "place", None)
    return place.community_id if place is not None else None


def _event_id(event: Event) -> str | None:
    """The id a log line names an event by: delivery, message or interaction id, or job run."""
    if isinstance(event, ScheduledTick):
        return f"{event.job}@{event.period}"
    for attr in ("delivery_id", "message_id", "interaction_id"):
        value = getattr(event, attr, None)
        if value:
            return str(value)
    return None


@dataclass(slots=True)
class _Outcome:
    """What went wrong inside one dispatch without stopping it (one cog failing)."""

    failed: bool = False
    buffer_full: bool = False


def _actor_of(event: Event) -> MemberRef | None:
    for attr in ("author", "member"):
        value = getattr(event, attr, None)
        if isinstance(value, MemberRef):
            return value
    return None


class Engine:
    """Routes neutral events to cogs and commands; owns the user-error boundary."""

    def __init__(self, services: Services, cogs: Iterable[Cog]) -> None:
        self.services = services
        services.engine = self
        self.store = services.store
        self.settings = services.settings
        self.clock = services.clock
        self.cogs: list[Cog] = []
        self.registry = services.registry
        self.jobs: dict[str, tuple[Cog, JobSpec]] = {}
        # Cogs that look at events at all: most only answer commands and jobs, and an empty
        # coroutine per cog per message adds up at thousands of messages a second.
        self._listeners: list[Cog] = []
        for cog in cogs:
            self.add_cog(cog)
        self._known_communities: set[str] = set()
        # (community, member) -> (display name, facilitator flag) already stored; saves a
        # database round trip on every message.
        self._known_members: dict[tuple[str, str], tuple[str, bool]] = {}

    def add_cog(self, cog: Cog) -> None:
        """Register a cog's commands, jobs and event handler (in the order added)."""
        self.registry.extend(cog.commands())
        for job in cog.jobs():
            if job.name in self.jobs:
                raise ValueError(f"job {job.name!r} declared twice")
            self.jobs[job.name] = (cog, job)
        self.cogs.append(cog)
        if type(cog).on_event is not Cog.on_event:
            self._listeners.append(cog)

    async def start(self) -> None:
        for cog in self.cogs:
            await cog.start()

    # -- communities and members -----------------------------------------------------------

    async def ensure_community(self, community_id: str, platform: str) -> None:
        if community_id in self._known_communities:
            return
        course = self.settings.course
        await self.store.ensure_community(
            community_id, platform, name=course.name, timezone=course.timezone, now=self.clock.now()
        )
        self._known_communities.add(community_id)

    async def ensure_member(self, community_id: str, member: MemberRef, **extra: Any) -> None:
        """Keep the member table current without a round trip per message.

        A member seen for the first time (or whose name or role changed) is queued on the
        batched writer as an upsert; only events with extra facts (a join date) write directly.
        """
        if not extra and self._member_known(community_id, member):
            return
        key = (community_id, member.id)
        is_fac = member.is_facilitator or member.id in self.settings.course.facilitator_ids
        wanted = (member.display_name, is_fac)
        now = self.clock.now()
        if extra:
            values: dict[str, Any] = {"now": now, "is_bot": member.is_bot}
            if member.display_name:
                values["display_name"] = member.display_name
            if is_fac:
                values["is_facilitator"] = True
            if member.timezone:
                values["timezone"] = member.timezone
            values.update(extra)
            await self.store.flush()
            await self.store.upsert_member(community_id, member.id, **values)
        else:
            row = {
                "community_id": community_id,
                "member_id": member.id,
                "display_name": member.display_name or member.id,
                "is_bot": member.is_bot,
                "is_facilitator": is_fac,
                "joined_at": None,
                "left_at": None,
                "first_seen": now,
                "timezone": member.timezone,
                "tracked": True,
                "reachable": True,
            }
            # A facilitator flag set by /course setup must survive a later plain sighting, so
            # only the platform-given facts are overwritten.
            # Events without a name (a Discord reaction removal) must not blank a stored one.
            overwrite: tuple[str, ...] = ("display_name",) if member.display_name else ()
            if is_fac:
                overwrite += ("is_facilitator",)
            if member.timezone:
                overwrite += ("timezone",)
            if overwrite:
                self.store.writer.upsert(
                    self.store.tables.member,
                    row,
                    keys=("community_id", "member_id"),
                    overwrite=overwrite,
                )
            else:
                self.store.writer.insert_ignore(self.store.tables.member, row)
        self._known_members[key] = wanted

    def _member_known(self, community_id: str, member: MemberRef) -> bool:
        """The member is stored with this name and facilitator flag already."""
        is_fac = member.is_facilitator or member.id in self.settings.course.facilitator_ids
        return self._known_members.get((community_id, member.id)) == (
            member.display_name,
            is_fac,
        )

    def forget_cached_member(self, community_id: str | None, member_id: str) -> None:
        for key in [k for k in self._known_members if k[1] == member_id]:
            if community_id is None or key[0] == community_id:
                del self._known_members[key]

    async def is_facilitator(self, community_id: str, member: MemberRef) -> bool:
        """Checked on every facilitator-only call, whatever the platform's permissions say."""
        if member.is_facilitator or member.id in self.settings.course.facilitator_ids:
            return True
        settings = await self.store.community_settings(community_id)
        if member.id in settings.get("facilitator_ids", []):
            return True
        row = await self.store.get_member(community_id, member.id)
        return bool(row and row["is_facilitator"])

    # -- dispatch ---------------------------------------------------------------------------

    async def dispatch(self, event: Event) -> list[Action]:
        """Turn one event into actions. Never raises for a bad event; logs instead.

        While it runs, every log line carries the event's community and id (bot.logformat).
        An event whose rows do not fit the writer's buffer (the database has been unreachable
        for long) is logged as an error with its id and counted as not recorded; nothing is
        dropped silently.
        """
        kind = type(event).__name__
        observer = self.services.observer
        observer.event_received(kind)
        community_id = _community_of(event)
        event_id = _event_id(event)
        token = bind(community_id, event_id)
        # One coroutine for the boundary and the logging context (not one each): at
        # thousands of messages a second every coroutine frame shows.
        try:
            outcome = _Outcome()
            try:
                actions = await self._dispatch(event, outcome, community_id)
            except UserError as exc:
                observer.event_recorded(kind)
                return [Reply(text=str(exc), ephemeral=True)]
            except BufferFull:
                outcome.buffer_full = True
                interactive = isinstance(event, _INTERACTIVE)
                actions = [Reply(text=NOT_RECORDED, ephemeral=True)] if interactive else []
            except Exception:
                log.exception(
                    "failed to handle %s (community=%s, event=%s)", kind, community_id, event_id
                )
                observer.error("engine")
                observer.event_not_recorded(kind, "error")
                interactive = isinstance(event, _INTERACTIVE)
                return [Reply(text=GENERIC_ERROR, ephemeral=True)] if interactive else []
            self._report(outcome, kind, community_id, event_id)
            return actions
        finally:
            unbind(token)

    def _report(
        self, outcome: _Outcome, kind: str, community_id: str | None, event_id: str | None
    ) -> None:
        observer = self.services.observer
        if outcome.buffer_full:
            log.error(
                "%s %s in community %s was NOT recorded: the write buffer is full because the "
                "database has not accepted writes for a while",
                kind,
                event_id,
                community_id,
            )
            observer.event_not_recorded(kind, "buffer_full")
        elif outcome.failed:
            observer.event_not_recorded(kind, "error")
        else:
            observer.event_recorded(kind)

    async def _dispatch(
        self, event: Event, outcome: _Outcome, community_id: str | None
    ) -> list[Action]:
        if isinstance(event, ScheduledTick):
            return await self._tick(event)
        actor = _actor_of(event)
        if actor is not None and actor.is_bot:
            return []  # bots, Hearth included, never count and never command it
        if community_id is not None:
            # The awaits are skipped when nothing is new: most events come from known members
            # of known communities, and a coroutine per check adds up at thousands a second.
            if community_id not in self._known_communities:
                await self.ensure_community(community_id, actor.platform if actor else "console")
            if actor is not None:
                if isinstance(event, MemberJoined):
                    await self.ensure_member(community_id, actor, joined_at=event.at)
                elif not self._member_known(community_id, actor):
                    await self.ensure_member(community_id, actor)
        if isinstance(event, _INTERACTIVE):
            # One flush for all the reads of a command, not one per read (storage.writer).
            with self.store.writer.read_scope():
                if isinstance(event, CommandInvoked):
                    return await self._command(event)
                return await self._button(event)
        if isinstance(event, MessagePosted) and event.is_system:
            return []
        actions: list[Action] = []
        for cog in self._listeners:
            try:
                actions.extend(await cog.on_event(event))
            except BufferFull:
                # Logged once, with the event id, by dispatch; the other cogs still see it.
                outcome.buffer_full = True
            except Exception:
                # One broken capability must not stop the others from seeing the event.
                outcome.failed = True
                self.services.observer.error("cog")
                log.exception(
                    "cog %s failed on %s (community=%s)",
                    cog.name,
                    type(event).__name__,
                    community_id,
                )
        await self.store.writer.backpressure()
        return actions

    async def _tick(self, tick: ScheduledTick) -> list[Action]:
        entry = self.jobs.get(tick.job)
        if entry is None:
            log.warning("no cog declares job %s", tick.job)
            return []
        _cog, job = entry
        return list(await job.handler(tick))

    async def _button(self, event: ButtonPressed) -> list[Action]:
        prefix = event.action_id.split(":", 1)[0]
        for cog in self.cogs:
            if cog.name == prefix:
                return await cog.on_button(event)
        raise UserError("That button is no longer active.")

    async def _command(self, event: CommandInvoked) -> list[Action]:
        community_id = event.place.community_id
        facilitator = await self.is_facilitator(community_id, event.member)
        # The role is checked before the arguments: a learner who reaches for a facilitator
        # command hears that it is not theirs, not how to spell its options.
        if event.options is not None:
            spec = self.registry.specs.get(event.name.strip().lower())
            if spec is None:
                raise UserError(f"unknown command {event.name[:40]!r}")
            self._check_role(spec, facilitator)
            options = bind_options(spec, event.options, self.registry.root)
        else:
            text = f"{event.name} {event.text}".strip() if event.name else event.text
            words = text.split()
            if not words or words[0].lower() == "help":
                return [Reply(text=command_help(self.registry, words[1:], facilitator=facilitator))]
            named = command_named(self.registry, text)
            if named is not None:
                self._check_role(named, facilitator)
            spec, options = parse_command(self.registry, text)
        community = await self.store.get_community(community_id)
        member = await self.store.get_member(community_id, event.member.id)
        assert community is not None and member is not None
        ctx = CommandContext(
            event=event,
            community=community,
            member=member,
            is_facilitator=facilitator,
            now=self.clock.now(),
            spec=spec,
        )
        result = await spec.handler(ctx, **options)
        return _as_actions(result, spec.private)

    def _check_role(self, spec: CommandSpec, facilitator: bool) -> None:
        if spec.facilitator_only and not facilitator:
            raise UserError(f"/{self.registry.root} {spec.name} is for facilitators only.")

    # -- helpers for cogs -------------------------------------------------------------------

    async def erase_member(self, community_id: str | None, member_id: str) -> dict[str, int]:
        for cog in self.cogs:
            await cog.erase_member(community_id, member_id)
        removed = await self.store.erase_member(community_id, member_id)
        self.forget_cached_member(community_id, member_id)
        return removed

    async def member_data(self, community_id: str, member_id: str) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for cog in self.cogs:
            part = await cog.member_data(community_id, member_id)
            if part:
                data[cog.name] = part
        return data


def _as_actions(result: Any, private: bool) -> list[Action]:
    if result is None:
        return []
    if isinstance(result, str):
        return [Reply(text=result, ephemeral=private)]
    if isinstance(result, Action):
        return [result]
    return list(result)
