"""What every adapter offers the runtime: start, stop, and send one action."""

from __future__ import annotations

from typing import Protocol

from bot.actions import Action
from bot.events import Event


class Adapter(Protocol):
    #: "console", "discord" or "slack": actions for members and places of this platform go here.
    platform: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, action: Action, origin: Event | None) -> None:
        """Carry out one action. ``origin`` is the event being answered (for replies).

        A :class:`~bot.actions.PostMessage` with a ``tag`` asks for the new message's id: an
        adapter that knows it stores it as ``self.tagged[action.tag] = message_id`` (a plain
        dict attribute); the runtime takes it from there and tells the cogs (reflection
        prompts use it to recognise replies in their thread).
        """
        ...
