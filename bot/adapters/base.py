"""What every adapter offers the runtime: start, stop, and send one action."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, Protocol

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


log = logging.getLogger(__name__)


class TaskSet(set):
    """Background tasks an adapter starts (command runs, home tabs): kept referenced until
    they finish, so the loop cannot drop them, and their failures are logged, not lost."""

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a %s task failed", self.label, exc_info=task.exception())
