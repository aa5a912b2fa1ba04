"""Who is in a cohort and where its messages go: helpers shared by the reflections and
summaries cogs.

Facilitators are the members flagged in the member table plus the ids named in the config and
in ``/course setup`` (the same rule the engine applies to facilitator-only commands). Learners
are everyone else who is not a bot and has not left. Channel and date settings come from the
community's own settings (``/course setup``) over the config defaults.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.config import Settings
from bot.events import MemberRef, PlaceRef
from bot.policy import CourseCalendar
from storage.repos import Store


async def facilitator_ids(store: Store, settings: Settings, community_id: str) -> set[str]:
    overrides = await store.community_settings(community_id)
    return (
        await store.facilitator_ids(community_id)
        | set(settings.course.facilitator_ids)
        | set(overrides.get("facilitator_ids", []))
    )


async def roster(
    store: Store, settings: Settings, community_id: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(learners, facilitators): member rows without bots and members who left."""
    facilitators = await facilitator_ids(store, settings, community_id)
    learners: list[dict[str, Any]] = []
    staff: list[dict[str, Any]] = []
    for row in await store.members(community_id):
        if row["left_at"] is not None:
            continue
        (staff if row["member_id"] in facilitators else learners).append(row)
    return learners, staff


def member_ref(community: dict[str, Any], row: dict[str, Any]) -> MemberRef:
    return MemberRef(
        community["platform"],
        row["member_id"],
        row["display_name"] or row["member_id"],
        is_facilitator=bool(row.get("is_facilitator")),
    )


def display_name(row: dict[str, Any] | None, fallback: str = "someone") -> str:
    if not row:
        return fallback
    return row["display_name"] or row["member_id"]


async def channel_setting(store: Store, settings: Settings, community_id: str, key: str) -> str:
    """``reflection_channel`` or ``cohort_channel``: ``/course setup`` over the config."""
    overrides = await store.community_settings(community_id)
    return str(overrides.get(key) or getattr(settings.course, key) or "")


def place(community: dict[str, Any], channel: str, thread: str | None = None) -> PlaceRef:
    return PlaceRef(community["platform"], community["id"], channel, thread, channel_name=channel)


def local_when(moment: datetime, timezone: str) -> str:
    """A moment as people read it in the course: ``Mon 14 Sep, 09:00``."""
    local = moment.astimezone(ZoneInfo(timezone))
    return f"{local:%a} {local.day} {local:%b}, {local:%H:%M}"


def local_day(moment: datetime, timezone: str) -> str:
    local = moment.astimezone(ZoneInfo(timezone))
    return f"{local:%a} {local.day} {local:%b}"


def local_midnight(day: date, timezone: str) -> datetime:
    """The UTC instant a local calendar day starts (DST-safe)."""
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def week_of(cal: CourseCalendar, now: datetime) -> int | None:
    """Course week of ``now`` (0 = the week the course starts), or None without a start date."""
    if cal.start is None:
        return None
    return (cal.local_date(now) - cal.start).days // 7


def next_active(cal: CourseCalendar, now: datetime, *, days: int = 14) -> datetime | None:
    """The same local time on the next active course day (a prompt that fell on a holiday)."""
    tz = ZoneInfo(cal.timezone)
    local = now.astimezone(tz)
    for offset in range(1, days + 1):
        candidate = datetime.combine(
            local.date() + timedelta(days=offset), local.time(), tzinfo=tz
        ).astimezone(UTC)
        if cal.is_active_day(candidate):
            return candidate
    return None


async def cohort_start(
    store: Store, settings: Settings, community: dict[str, Any], cal: CourseCalendar
) -> datetime:
    """When the current cohort began: the archive that started it, else the course start date,
    else the community's first day in Hearth."""
    overrides = await store.community_settings(community["id"])
    started = overrides.get("cohort_started_at")
    if started:
        return datetime.fromisoformat(str(started)).astimezone(UTC)
    if cal.start is not None:
        return local_midnight(cal.start, cal.timezone)
    return community["created_at"]


def command(root: str, text: str) -> str:
    """A command as members type it: ``/course mirror off``."""
    return f"/{root} {text}"
