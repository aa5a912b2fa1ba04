"""Platform identifier conventions shared by the live adapters and the history importers.

A message recorded live and the same message loaded from an export must get the same id, or
an import that overlaps what the bot already saw would count it twice (contributions are
unique on ``(community, message id)``). So the conventions live here, in one small neutral
module that both sides import, instead of being re-derived in each adapter.

- Slack: a message's ``ts`` is only unique within its channel, so the message id is
  ``"<channel id>:<ts>"`` (:func:`slack_message_id`). A Slack thread is identified by its
  parent message, so ``PlaceRef.thread_id`` for a thread is the parent's message id, built
  the same way from the reply's ``thread_ts``.
- Discord: the message id is the snowflake as a string; a thread is its own channel, so
  ``PlaceRef.channel_id`` is the parent channel and ``PlaceRef.thread_id`` the thread id.
- Reactions are keyed by emoji text (the edge's ``detail``): Slack's reaction name as the
  Events API sends it (``"thumbsup"``, ``"+1::skin-tone-2"``), and for Discord what
  ``str(emoji)`` gives in discord.py (:func:`discord_emoji`).
"""

from __future__ import annotations

__all__ = ["discord_emoji", "slack_message_id"]


def slack_message_id(channel_id: str, ts: str) -> str:
    """THE Slack message id: ``ts`` qualified by its channel (``"C0123:1712345678.000100"``)."""
    return f"{channel_id}:{ts}"


def discord_emoji(name: str, emoji_id: str | None = None, animated: bool = False) -> str:
    """A Discord reaction as text, the way discord.py's ``str(emoji)`` renders it.

    Unicode emoji are themselves (``"👍"``); custom emoji are ``<:name:id>`` (``<a:name:id>``
    when animated).
    """
    if not emoji_id:
        return name
    return f"<{'a' if animated else ''}:{name}:{emoji_id}>"
