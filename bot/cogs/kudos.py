"""Peer kudos: ``/course kudos member:@x reason:...`` thanks a classmate privately.

The recipient gets a direct message; the kudos counts as an interaction (an ``edge`` of kind
``kudos``, detail ``support``, weight ``[analytics] kudos_weight``) so it shows up in the
network, patterns and summaries as help given. It is never announced publicly and there is
no leaderboard (public rankings lower motivation, DESIGN section 2).

Rules, so that kudos mean something:
- a daily allowance per giver (``[nudges] kudos_per_day``, counted per course-local day);
- no kudos to yourself or to a bot;
- no credit for a ring of back-and-forth thanks: if B gave A kudos within
  ``[nudges] kudos_ring_days`` days, A's kudos to B is recorded and delivered, but writes no
  interaction edge (one reciprocal "thanks back" would otherwise double every pair's weight);
- a member who paused tracking neither gives nor gets interaction credit (the kudos is still
  delivered).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from bot.actions import Action, DirectMessage, Reply
from bot.cohort import display_name, local_midnight
from bot.commands import CommandSpec, Option
from bot.engine import Cog, CommandContext, Services
from bot.errors import UserError
from bot.events import MemberRef
from bot.nudge_templates import DEFAULT_NUDGE_TEMPLATES, load_nudge_templates
from bot.policy import calendar
from bot.reflection_templates import resolve
from storage.nudges_queries import NudgeRepo
from storage.repos import E

log = logging.getLogger(__name__)

MAX_REASON = 300


class KudosCog(Cog):
    name = "kudos"

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self.templates = load_nudge_templates(
            resolve(self.settings.nudges.templates, DEFAULT_NUDGE_TEMPLATES)
        )
        self.repo = NudgeRepo(self.store)

    def commands(self) -> list[CommandSpec]:
        return [
            CommandSpec(
                name="kudos",
                description="Thank a classmate privately; it counts as help given",
                handler=self.cmd_kudos,
                options=(
                    Option("member", "member", "Who to thank", required=True),
                    Option("reason", "text", "What for (they will see it)"),
                ),
                examples=("kudos member:@amara reason:your summary of week 2 saved me",),
            )
        ]

    async def cmd_kudos(self, ctx: CommandContext, member: str, reason: str | None) -> list[Action]:
        cid, giver = ctx.community_id, ctx.member_id
        per_day = self.settings.nudges.kudos_per_day
        if per_day <= 0:
            raise UserError("Kudos are switched off in this course.")
        row = await self.store.find_member(cid, member)
        if row is None or row["left_at"] is not None:
            raise UserError(f"I don't know a member called {member[:40]}.")
        receiver = row["member_id"]
        if receiver == giver:
            raise UserError("Kudos are for thanking someone else. Nice try, though!")
        if row["is_bot"]:
            raise UserError("Bots don't need kudos, but thank you.")
        now = ctx.now
        cal = await calendar(self.store, self.settings, cid)
        today = local_midnight(cal.local_date(now), cal.timezone)
        if await self.repo.kudos_given_since(cid, giver, today) >= per_day:
            raise UserError(
                f"You have given {per_day} kudos today, the daily allowance. More tomorrow!"
            )
        credited, why = await self._credit(cid, giver, receiver, now)
        reason = (reason or "").strip()[:MAX_REASON] or None
        kudos_id = await self.repo.add_kudos(
            community_id=cid,
            giver_id=giver,
            receiver_id=receiver,
            # Free text is kept only where the community keeps message text.
            reason=reason if self.settings.storage.retain_text_days > 0 else None,
            credited=credited,
            created_at=now,
        )
        if credited:
            self.store.writer.insert_ignore(
                E,
                {
                    "community_id": cid,
                    "kind": "kudos",
                    "source_id": giver,
                    "target_id": receiver,
                    "message_id": f"kudos:{kudos_id}",
                    "detail": "support",
                    "weight": self.settings.analytics.kudos_weight,
                    "created_at": now,
                },
            )
        name = display_name(row)
        actions: list[Action] = []
        answer = f"Thanks sent: {name} will get your kudos privately."
        if row["reachable"]:
            text = self.templates.render(
                "kudos",
                "received",
                receiver,
                str(kudos_id),
                giver=display_name(ctx.member),
                reason=f': "{reason}"' if reason else "",
                course=ctx.community["name"],
            )
            actions.append(
                DirectMessage(
                    member=MemberRef(ctx.community["platform"], receiver, name),
                    text=text,
                    dedupe_key=f"kudos:{cid}:{kudos_id}",
                )
            )
        else:
            answer = f"Kudos recorded, but {name} cannot get direct messages from me."
        if why:
            answer += f" ({why})"
        log.info("kudos %s -> %s in %s (credited=%s)", giver, receiver, cid, credited)
        return [Reply(text=answer), *actions]

    async def _credit(self, cid: str, giver: str, receiver: str, now: datetime) -> tuple[bool, str]:
        """Whether this kudos earns an interaction edge, and why not."""
        if await self.store.get_pref(cid, giver, "tracking") == "off":
            return False, "Tracking is paused, so it does not count in the interaction figures."
        if await self.store.get_pref(cid, receiver, "tracking") == "off":
            # Not said: whether a peer paused tracking is theirs to know (test_access_privacy).
            return False, ""
        days = self.settings.nudges.kudos_ring_days
        if days > 0 and await self.repo.gave_kudos_since(
            cid, receiver, giver, now - timedelta(days=days)
        ):
            return False, (
                "You two thanked each other recently, so this one does not add to the "
                "interaction figures; it is still delivered."
            )
        return True, ""

    async def describe_member(self, community_id: str, member_id: str) -> list[str]:
        counts = await self.repo.kudos_of(community_id, member_id)
        if not any(counts.values()):
            return []
        return [f"Kudos: {counts['received']} received, {counts['given']} given"]

    async def member_data(self, community_id: str, member_id: str) -> dict[str, Any]:
        counts = await self.repo.kudos_of(community_id, member_id)
        return counts if any(counts.values()) else {}

    async def erase_member(self, community_id: str | None, member_id: str) -> None:
        # Kudos rows and their edges go with the schema-wide erase (MEMBER_COLUMNS of
        # storage.nudges_models and storage.models); the nudges cog clears the sent ledger.
        return None
