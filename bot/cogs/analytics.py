"""Interaction analytics in chat: ``/course network`` for facilitators, and the member's
interaction pattern (with last week's) in ``/course stats member:`` and ``/course me``.

The analytics read the core tables only, so this cog stores nothing of its own; erasing a
member is the store's schema-wide erase.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from bot.actions import FileAttachment, Reply
from bot.analytics import INACTIVE, compute_analytics, figure_lines, member_pattern
from bot.commands import CommandSpec, Option
from bot.engine import Cog, CommandContext
from bot.wording import counted

log = logging.getLogger(__name__)


class AnalyticsCog(Cog):
    name = "analytics"

    def commands(self) -> list[CommandSpec]:
        return [
            CommandSpec(
                name="network",
                description="Picture and figures of who interacts with whom (only you see it)",
                handler=self.cmd_network,
                options=(
                    Option(
                        "days",
                        "integer",
                        "How many days back (default: the analytics window, 7)",
                        min_value=1,
                        max_value=365,
                    ),
                ),
                facilitator_only=True,
                private=True,
                slow=True,
            )
        ]

    async def cmd_network(self, ctx: CommandContext, days: int | None) -> Reply:
        from bot.report import network_picture

        days = days or self.settings.analytics.window_days
        analytics = await compute_analytics(
            self.store,
            ctx.community_id,
            since=ctx.now - timedelta(days=days),
            until=ctx.now,
            settings=self.settings.analytics,
            facilitator_ids=self.settings.course.facilitator_ids,
            previous=False,
            quiet=False,
            trend=False,
        )
        # Drawing takes a moment of CPU; a worker thread keeps the bot answering meanwhile.
        png = await asyncio.to_thread(
            network_picture,
            analytics,
            title=f"{ctx.community['name']}, last {counted(days, 'day')}",
        )
        text = "\n".join(
            [f"Interaction network, last {counted(days, 'day')}:", *figure_lines(analytics)]
        )
        return Reply(
            text=text,
            ephemeral=True,
            files=(
                FileAttachment(
                    filename=f"network-{days}d.png",
                    data=png,
                    content_type="image/png",
                    description="Members sized by contributions, coloured by pattern",
                ),
            ),
        )

    async def describe_member(self, community_id: str, member_id: str) -> list[str]:
        """The member's interaction pattern this window and the one before it."""
        window = timedelta(days=self.settings.analytics.window_days)
        now = self.clock.now()
        settings = self.settings.analytics
        current = await member_pattern(
            self.store, community_id, member_id, since=now - window, until=now, settings=settings
        )
        before = await member_pattern(
            self.store,
            community_id,
            member_id,
            since=now - 2 * window,
            until=now - window,
            settings=settings,
        )
        return [f"Pattern: {_pattern_words(current.pattern, before.pattern)}"]

    async def erase_member(self, community_id: str | None, member_id: str) -> None:
        # Nothing cached or stored here: analytics are computed from the core tables, which
        # the store's schema-wide erase clears.
        return None


def _pattern_words(current: str, before: str) -> str:
    now = "no interactions yet" if current == INACTIVE else current
    if before == current:
        return f"{now} (same as last week)"
    was = "no interactions" if before == INACTIVE else before
    return f"{now} (last week: {was})"
