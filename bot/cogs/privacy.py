"""Learners' own data: see it (``mydata``), pause tracking, erase it (``forgetme``)."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from bot.actions import FileAttachment, Reply
from bot.commands import CommandSpec, Option
from bot.engine import Cog, CommandContext
from bot.events import ScheduledTick
from bot.jobs import JobSpec
from bot.wording import counted

log = logging.getLogger(__name__)


class PrivacyCog(Cog):
    name = "privacy"

    def commands(self) -> list[CommandSpec]:
        return [
            CommandSpec(
                name="mydata",
                description="Everything Hearth stores about you (only you see it)",
                handler=self.cmd_mydata,
            ),
            CommandSpec(
                name="forgetme",
                description="Erase everything Hearth stores about you",
                handler=self.cmd_forgetme,
                options=(Option("confirm", "choice", "Type yes to erase", choices=("yes",)),),
            ),
            CommandSpec(
                name="tracking",
                description="Pause (off) or resume (on) recording of your participation",
                handler=self.cmd_tracking,
                options=(
                    Option("state", "choice", "on or off", required=True, choices=("on", "off")),
                ),
            ),
        ]

    def jobs(self) -> list[JobSpec]:
        return [
            JobSpec(
                name="privacy.retention",
                cron="30 3 * * *",
                handler=self.run_retention,
                description="clear stored message text older than retain_text_days",
                enabled=self.settings.storage.retain_text_days > 0,
            )
        ]

    async def run_retention(self, tick: ScheduledTick) -> list:
        """Text retention is global, so one community's run clears text for all of them."""
        days = self.settings.storage.retain_text_days
        if days <= 0:
            return []
        cleared = await self.store.delete_text_before(tick.at - timedelta(days=days))
        log.info("retention: cleared text of %s messages older than %s days", cleared, days)
        return []

    async def cmd_mydata(self, ctx: CommandContext) -> Reply:
        member = {
            k: (v.isoformat() if hasattr(v, "isoformat") else v)
            for k, v in ctx.member.items()
            if k != "id"
        }
        data: dict[str, Any] = {
            "member": member,
            "preferences": await self.store.member_prefs(ctx.community_id, ctx.member_id),
        }
        engine = self.services.engine
        if engine is not None:
            data.update(await engine.member_data(ctx.community_id, ctx.member_id))
        body = json.dumps(data, indent=2, sort_keys=True, default=str)
        summary = "Here is everything Hearth stores about you in this course. " + (
            "Message text is stored for a limited time."
            if self.settings.storage.retain_text_days
            else "Message text is not stored, only what kind of contribution each message was."
        )
        return Reply(
            text=f"{summary}\n```\n{body[:1500]}\n```",
            files=(FileAttachment("hearth-mydata.json", body.encode(), "application/json"),),
        )

    async def cmd_forgetme(self, ctx: CommandContext, confirm: str | None) -> str:
        if confirm != "yes":
            return (
                "This erases your contributions, interactions, preferences and any nudges "
                "or kudos about you from Hearth. It cannot be undone. Run "
                f"`/{self.services.registry.root} forgetme confirm:yes` to go ahead."
            )
        engine = self.services.engine
        assert engine is not None
        removed = await engine.erase_member(ctx.community_id, ctx.member_id)
        rows = sum(removed.values())
        return (
            f"Done: erased {counted(rows, 'record')} about you. If you keep posting, new "
            "messages are recorded again; `tracking off` stops that."
        )

    async def cmd_tracking(self, ctx: CommandContext, state: str) -> str:
        await self.store.set_pref(ctx.community_id, ctx.member_id, "tracking", state)
        engine = self.services.engine
        contributions = next((c for c in engine.cogs if c.name == "contributions"), None)
        key = (ctx.community_id, ctx.member_id)
        if contributions is not None:
            if state == "off":
                contributions.untracked.add(key)
            else:
                contributions.untracked.discard(key)
        if state == "off":
            return "Tracking paused: your messages are no longer recorded. `tracking on` resumes."
        return "Tracking resumed."

    async def erase_member(self, community_id: str | None, member_id: str) -> None:
        # Preferences are rows in member_pref, removed by the store's schema-wide erase.
        return None
