"""Course setup: which channels count, who facilitates, timezone and course dates."""

from __future__ import annotations

from datetime import date
from typing import Any

from bot.cohort import display_name, facilitator_ids
from bot.commands import CommandSpec, Option
from bot.config import check_timezone
from bot.engine import Cog, CommandContext
from bot.errors import UserError
from bot.wording import counted


class CourseCog(Cog):
    name = "course"

    def commands(self) -> list[CommandSpec]:
        return [
            CommandSpec(
                name="setup",
                description="Show or change course settings (channels, facilitator, dates)",
                handler=self.cmd_setup,
                options=(
                    Option("channels", "string", "Comma-separated channels that count"),
                    Option("facilitator", "member", "Add a facilitator"),
                    Option("timezone", "string", "Course timezone, e.g. Europe/London"),
                    Option("start", "date", "Course start date (YYYY-MM-DD)"),
                    Option("end", "date", "Course end date (YYYY-MM-DD)"),
                    Option("name", "string", "Course name"),
                    Option("reflection_channel", "channel", "Where reflection prompts go"),
                    Option("cohort_channel", "channel", "Where weekly summaries go"),
                ),
                facilitator_only=True,
            ),
            CommandSpec(
                name="settings",
                description="What Hearth is set to do here: course settings, schedules, privacy",
                handler=self.cmd_settings,
                facilitator_only=True,
            ),
        ]

    async def course_dates(self, community_id: str) -> tuple[date | None, date | None]:
        settings = await self.store.community_settings(community_id)
        start = settings.get("start_date") or self.settings.course.start_date
        end = settings.get("end_date") or self.settings.course.end_date
        return (
            date.fromisoformat(str(start)) if start else None,
            date.fromisoformat(str(end)) if end else None,
        )

    async def cmd_setup(
        self,
        ctx: CommandContext,
        channels: str | None,
        facilitator: str | None,
        timezone: str | None,
        start: date | None,
        end: date | None,
        name: str | None,
        reflection_channel: str | None,
        cohort_channel: str | None,
    ) -> str:
        settings = await self.store.community_settings(ctx.community_id)
        changed: list[str] = []
        named: list[str] = []  # channels named in this command, checked against those seen
        if channels is not None:
            names = [c.strip().lstrip("#") for c in channels.split(",") if c.strip()]
            settings["tracked_channels"] = names
            named += names
            changed.append("channels")
        if facilitator is not None:
            row = await self.store.find_member(ctx.community_id, facilitator)
            if row is None:
                raise UserError(f"I don't know a member called {facilitator}.")
            await self.store.set_member_fields(
                ctx.community_id, row["member_id"], is_facilitator=True
            )
            ids = set(settings.get("facilitator_ids", []))
            ids.add(row["member_id"])
            settings["facilitator_ids"] = sorted(ids)
            changed.append("facilitator")
        if timezone is not None:
            try:
                check_timezone(timezone)
            except ValueError as exc:
                raise UserError(str(exc)) from None
            await self.store.update_community(ctx.community_id, timezone=timezone)
            changed.append("timezone")
        if start is not None:
            settings["start_date"] = start.isoformat()
            changed.append("start")
        if end is not None:
            settings["end_date"] = end.isoformat()
            changed.append("end")
        s, e = settings.get("start_date"), settings.get("end_date")
        if s and e and s > e:
            raise UserError("The course cannot end before it starts.")
        if name is not None:
            await self.store.update_community(ctx.community_id, name=name)
            changed.append("name")
        for key, value in (
            ("reflection_channel", reflection_channel),
            ("cohort_channel", cohort_channel),
        ):
            if value is not None:
                settings[key] = value
                changed.append(key)
                named.append(value)
        if changed:
            await self.store.save_community_settings(ctx.community_id, settings)
            contributions = self._cog("contributions")
            if contributions is not None:
                contributions.invalidate(ctx.community_id)
        community = await self.store.get_community(ctx.community_id)
        described = self._describe(
            community, settings, changed, await self._facilitator_names(ctx.community_id)
        )
        unseen = await self._unseen_channels(ctx.community_id, named)
        if unseen:
            described += (
                "\nNot seen yet: "
                + ", ".join(f"#{c}" for c in unseen)
                + ". Hearth knows no channel by that name or id here; check the spelling"
                " (the setting stays, and applies once such a channel has messages)."
            )
        return described

    async def _unseen_channels(self, community_id: str, named: list[str]) -> list[str]:
        """The channels in ``named`` that match no channel the platform adapter has recorded,
        by id or by name, exactly as tracking matches them. Nothing is unseen where no
        channel is recorded at all (an adapter that records none), so a typo is pointed out
        only where it can be told from a channel with no messages yet."""
        if not named:
            return []
        rows = await self.store.channels(community_id)
        known = {r["channel_id"] for r in rows} | {r["name"] for r in rows if r["name"]}
        return [c for c in dict.fromkeys(named) if rows and c not in known]

    async def cmd_settings(self, ctx: CommandContext) -> str:
        """The course as ``setup`` shows it, then what runs when (in the course's words and
        timezone) and what is kept: one answer to "what is Hearth doing in my course?"."""
        settings = await self.store.community_settings(ctx.community_id)
        community = ctx.community
        tz = community["timezone"]
        lines = [
            self._describe(
                community, settings, [], await self._facilitator_names(ctx.community_id)
            ),
            f"Schedules ({tz}):",
        ]
        engine = self.services.engine
        jobs = sorted(engine.jobs.values(), key=lambda entry: entry[1].name) if engine else []
        for _cog, job in jobs:
            if job.enabled:
                when = self.services.schedule_words(job.cron, tz, ctx.now)
                lines.append(f"  {job.description}: {when}")
        cfg = self.settings
        days = cfg.storage.retain_text_days
        lines.append(
            f"Message text: kept {counted(days, 'day')}, then cleared"
            if days
            else "Message text: not stored (only what kind each message was, its length, "
            "who it answered)"
        )
        nudges = cfg.nudges
        if nudges.enabled:
            quiet = nudges.quiet_hours
            lines.append(
                f"Nudges: at most one every {counted(nudges.min_days_between, 'day')} per "
                f"learner, never {quiet.start:%H:%M}-{quiet.end:%H:%M} in their timezone; "
                f"{nudges.holdout_fraction:.0%} of learners are held out to measure the effect"
            )
        else:
            lines.append("Nudges: off")
        lines.append(
            "Change the course with /course setup; schedules and privacy are in the "
            "config file, which the operator manages."
        )
        return "\n".join(lines)

    async def _facilitator_names(self, community_id: str) -> list[str]:
        """Everyone Hearth treats as a facilitator (platform role, config, /course setup), by
        name where the member has been seen: platform ids mean nothing to a reader."""
        ids = sorted(await facilitator_ids(self.store, self.settings, community_id))
        # A handful of lookups, not the whole member table: facilitators are few.
        rows = [await self.store.get_member(community_id, i) for i in ids]
        return sorted(display_name(row, fallback=i) for i, row in zip(ids, rows, strict=True))

    def _cog(self, name: str) -> Any:
        engine = self.services.engine
        return next((c for c in engine.cogs if c.name == name), None) if engine else None

    def _describe(
        self, community: dict, settings: dict, changed: list[str], facilitators: list[str]
    ) -> str:
        course = self.settings.course
        tracked = settings.get("tracked_channels") or course.tracked_channels
        start = settings.get("start_date") or course.start_date
        end = settings.get("end_date") or course.end_date
        if start and end:
            dates = f"{start} to {end}"
        elif start or end:
            dates = f"from {start}, no end date" if start else f"until {end}, no start date"
        else:
            dates = "not set"
        lines = ["Updated: " + ", ".join(changed)] if changed else []
        lines += [
            f"Course: {community['name']} (cohort {community['cohort']})",
            f"Timezone: {community['timezone']}",
            "Channels that count: " + (", ".join(tracked) if tracked else "all"),
            "Facilitators: " + (", ".join(facilitators) or "none yet"),
            f"Dates: {dates}",
            f"Reflection channel: {settings.get('reflection_channel') or course.reflection_channel or 'not set'}",  # noqa: E501
            f"Cohort channel: {settings.get('cohort_channel') or course.cohort_channel or 'not set'}",  # noqa: E501
        ]
        return "\n".join(lines)

    async def erase_member(self, community_id: str | None, member_id: str) -> None:
        # The facilitator list in community settings is the only member reference here.
        for community in await self.store.communities():
            if community_id is not None and community["id"] != community_id:
                continue
            settings = await self.store.community_settings(community["id"])
            ids = settings.get("facilitator_ids", [])
            if member_id in ids:
                settings["facilitator_ids"] = [i for i in ids if i != member_id]
                await self.store.save_community_settings(community["id"], settings)
