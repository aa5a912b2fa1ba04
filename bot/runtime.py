"""The runtime: engine in the middle, adapters around it, the sent ledger in between.

Adapters hand events to :meth:`Runtime.handle`; actions come back and are delivered through
the adapter of their platform. An action with a ``dedupe_key`` is written to the sent ledger
before it is sent, so a retried job, a restarted process or a second process never sends it
twice (at most once: a send that fails after the claim is marked failed, not repeated).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot.actions import Action, DirectMessage, PostMessage, React, Reply
from bot.adapters.base import Adapter
from bot.clock import Clock
from bot.engine import Engine
from bot.events import Event
from storage.repos import Store

log = logging.getLogger(__name__)


class Runtime:
    def __init__(self, engine: Engine, store: Store, clock: Clock) -> None:
        self.engine = engine
        self.store = store
        self.clock = clock
        self.adapters: dict[str, Adapter] = {}
        self.events_received = 0
        self.sent = 0
        self.failed = 0

    def register(self, adapter: Adapter) -> None:
        self.adapters[adapter.platform] = adapter

    async def handle(self, event: Event, origin: Adapter | None = None) -> list[Action]:
        self.events_received += 1
        actions = await self.engine.dispatch(event)
        await self.deliver(actions, origin=origin, event=event)
        return actions

    def _adapter_for(self, action: Action, origin: Adapter | None) -> Adapter | None:
        if isinstance(action, Reply):
            return origin
        platform = None
        if isinstance(action, DirectMessage):
            platform = action.member.platform
        elif isinstance(action, PostMessage | React):
            platform = action.place.platform
        else:
            place = getattr(action, "place", None)
            platform = place.platform if place is not None else None
        return self.adapters.get(platform) if platform else origin

    async def _report_posted(self, adapter: Adapter, action: PostMessage) -> None:
        """Hand the platform id of a tagged post to the cogs (a reflection prompt's thread).

        Adapters that can tell put it in their ``tagged`` dict under the action's tag while
        sending; cogs that care define ``async def on_posted(action, message_id)``. Adapters
        that cannot tell simply leave it out, and nothing is reported.
        """
        tagged = getattr(adapter, "tagged", None)
        message_id = tagged.pop(action.tag, None) if isinstance(tagged, dict) else None
        if message_id is None:
            return
        for cog in self.engine.cogs:
            hook = getattr(cog, "on_posted", None)
            if hook is None:
                continue
            try:
                await hook(action, str(message_id))
            except Exception:
                # The message did go out: a cog's bookkeeping failure must not mark it failed.
                log.exception("cog %s failed to record posted message %s", cog.name, action.tag)

    async def deliver(
        self,
        actions: Sequence[Action],
        *,
        origin: Adapter | None = None,
        event: Event | None = None,
    ) -> None:
        for action in actions:
            adapter = self._adapter_for(action, origin)
            if adapter is None:
                log.warning("no adapter can deliver %s", type(action).__name__)
                continue
            if action.dedupe_key:
                member_id = action.member.id if isinstance(action, DirectMessage) else None
                community = (
                    getattr(getattr(action, "place", None), "community_id", "")
                    or getattr(action, "community_id", "")
                    or _community_of_event(event)
                    or _community_of_key(action.dedupe_key)
                )
                claimed = await self.store.claim_send(
                    action.dedupe_key,
                    community_id=community,
                    member_id=member_id,
                    now=self.clock.now(),
                )
                if not claimed:
                    log.info("skipping %s: already sent", action.dedupe_key)
                    continue
            kind = type(action).__name__
            try:
                await adapter.send(action, event)
                self.sent += 1
                self.engine.services.observer.action_sent(kind, adapter.platform)
                if isinstance(action, PostMessage) and action.tag:
                    await self._report_posted(adapter, action)
            except Exception:
                self.failed += 1
                self.engine.services.observer.action_failed(kind, adapter.platform)
                log.exception(
                    "sending %s through %s failed", type(action).__name__, adapter.platform
                )
                if action.dedupe_key:
                    await self.store.mark_sent(action.dedupe_key, "failed")


def _community_of_event(event: Event | None) -> str:
    if event is None:
        return ""
    community = getattr(event, "community_id", None)
    if community:
        return community
    place = getattr(event, "place", None)
    return getattr(place, "community_id", "") or ""


def _community_of_key(key: str) -> str:
    """Dedupe keys are written ``kind:community:...`` by every cog; fall back on that."""
    parts = key.split(":")
    return parts[1] if len(parts) > 2 else ""
