"""Neutral replies and rich content rendered as Discord messages. Pure: builds objects only.

:func:`render` turns text, a :class:`~bot.actions.RichContent`, files and buttons into a list
of :class:`OutMessage`, each within Discord's limits, so a long report becomes several
messages instead of a 400 from the API:

- message content at most 2,000 characters (long text is split at line breaks, then words);
- at most 10 embeds and 6,000 embed characters per message (title, description, field names
  and values, footer and author all count);
- per embed: title 256, description 4,096, at most 25 fields, field name 256, value 1,024,
  footer 2,048;
- at most 10 files per message; the report's image is attached and shown in its first embed
  (``attachment://<filename>``); CSVs and other files ride on the last message;
- buttons go on the last message, five to a row, as a ``discord.ui.View`` whose buttons carry
  ``custom_id = action_id:value`` (the adapter turns a press into ``ButtonPressed``).

Sections become text under a bold heading in the embed description; their fields become embed
fields. What does not fit in one embed continues in the next, titled "(continued)".
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import discord

from bot.actions import Button, FileAttachment, RichContent
from bot.adapters.discord_translate import button_custom_id

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000
MAX_TITLE = 256
MAX_DESCRIPTION = 4096
MAX_FIELDS = 25
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_FOOTER = 2048
MAX_FILES = 10
MAX_BUTTONS = 25
MAX_LABEL = 80
MAX_CUSTOM_ID = 100
#: A zero-width space: Discord rejects empty field names.
BLANK = "\u200b"
COLOUR = discord.Colour(0x7A3B12)

_STYLES = {
    "primary": discord.ButtonStyle.primary,
    "secondary": discord.ButtonStyle.secondary,
    "success": discord.ButtonStyle.success,
    "danger": discord.ButtonStyle.danger,
}


@dataclass(slots=True)
class OutMessage:
    """One Discord message to send. ``files`` stay neutral: a ``discord.File`` is consumed
    by the upload, so the adapter makes fresh ones with :func:`discord_files` per send."""

    content: str | None = None
    embeds: list[discord.Embed] = field(default_factory=list)
    files: list[FileAttachment] = field(default_factory=list)
    buttons: tuple[Button, ...] = ()

    def embed_size(self) -> int:
        return sum(len(e) for e in self.embeds)


def split_text(text: str, limit: int = MAX_CONTENT) -> list[str]:
    """Split text into chunks of at most ``limit`` characters, at line breaks when possible,
    then at spaces, and only inside a word when a word is longer than a chunk."""
    chunks: list[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            chunks.append(current)
            current = ""
        while len(line) > limit:
            cut = line.rfind(" ", 0, limit + 1)
            if cut <= 0:
                cut = limit
            chunks.append(line[:cut].rstrip())
            line = line[cut:].lstrip()
        current = line
    if current or not chunks:
        chunks.append(current)
    return [c for c in chunks if c.strip()] or ([text[:limit]] if text else [])


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _EmbedBuilder:
    """Fills embeds one after another, starting a new one when a limit would be passed."""

    def __init__(self, rich: RichContent) -> None:
        self.rich = rich
        self.embeds: list[discord.Embed] = []
        self._new(first=True)

    def _new(self, *, first: bool = False) -> None:
        suffix = "" if first else " (continued)"
        title = _clip(self.rich.title, MAX_TITLE - len(suffix)) + suffix if self.rich.title else ""
        embed = discord.Embed(title=title or None, colour=COLOUR)
        if first and self.rich.url:
            embed.url = self.rich.url
        embed.description = ""
        self.embeds.append(embed)

    @property
    def current(self) -> discord.Embed:
        return self.embeds[-1]

    def _room(self) -> int:
        """Characters the current embed may still take (its own total stays under the
        per-message total, so any one embed can be sent on its own)."""
        return MAX_EMBED_TOTAL - len(self.current) - 100  # keep room for footer/continuation

    def add_text(self, text: str) -> None:
        for paragraph in split_text(text, MAX_DESCRIPTION):
            description = self.current.description or ""
            joined = f"{description}\n\n{paragraph}" if description else paragraph
            if len(joined) > MAX_DESCRIPTION or len(paragraph) + 2 > self._room():
                self._new()
                joined = paragraph
            self.current.description = joined

    def add_field(self, name: str, value: str, inline: bool) -> None:
        name = _clip(name.strip() or BLANK, MAX_FIELD_NAME)
        pieces = split_text(value, MAX_FIELD_VALUE) if value.strip() else [BLANK]
        for index, piece in enumerate(pieces):
            label = name if index == 0 else BLANK
            if len(self.current.fields) >= MAX_FIELDS or len(label) + len(piece) > self._room():
                self._new()
            self.current.add_field(name=label, value=piece, inline=inline)

    def finish(self) -> list[discord.Embed]:
        for embed in self.embeds:
            if not embed.description:
                # Discord refuses an embed with nothing in it.
                embed.description = None if (embed.title or embed.fields) else BLANK
        if self.rich.footer:
            footer = _clip(self.rich.footer, MAX_FOOTER)
            last = self.embeds[-1]
            if len(last) + len(footer) > MAX_EMBED_TOTAL:
                self._new()
                self.embeds[-1].description = None
                last = self.embeds[-1]
            last.set_footer(text=footer)
        if self.rich.image is not None:
            self.embeds[0].set_image(url=f"attachment://{self.rich.image.filename}")
        return self.embeds


def rich_embeds(rich: RichContent) -> list[discord.Embed]:
    """A rich content as embeds, each within Discord's per-embed limits."""
    builder = _EmbedBuilder(rich)
    for section in rich.sections:
        body = section.body.strip()
        if section.heading and (body or not section.fields):
            builder.add_text(f"**{section.heading}**" + (f"\n{body}" if body else ""))
        elif body:
            builder.add_text(body)
        for index, fld in enumerate(section.fields):
            name = fld.name
            if index == 0 and section.heading and not body:
                name = f"{section.heading}: {fld.name}"
            builder.add_field(name, fld.value, fld.inline)
    return builder.finish()


def render(
    text: str = "",
    rich: RichContent | None = None,
    files: Sequence[FileAttachment] = (),
    buttons: Sequence[Button] = (),
) -> list[OutMessage]:
    """Everything one action wants to say, as messages within Discord's limits."""
    messages: list[OutMessage] = [OutMessage(content=chunk) for chunk in split_text(text or "")]
    all_files = list(files)
    if rich is not None:
        embeds = rich_embeds(rich)
        if rich.image is not None:
            all_files.insert(0, rich.image)
        # The first embeds may ride with the last text chunk.
        target = messages[-1] if messages else None
        for embed in embeds:
            size = len(embed)
            if (
                target is None
                or len(target.embeds) >= MAX_EMBEDS
                or target.embed_size() + size > MAX_EMBED_TOTAL
            ):
                target = OutMessage()
                messages.append(target)
            target.embeds.append(embed)
        if rich.image is not None:
            # The image must travel with the embed that shows it.
            first_with_embed = next(m for m in messages if m.embeds)
            first_with_embed.files.append(all_files.pop(0))
    if not messages and (all_files or buttons):
        messages.append(OutMessage())
    while all_files:
        last = messages[-1]
        room = MAX_FILES - len(last.files)
        if room <= 0:
            last = OutMessage()
            messages.append(last)
            room = MAX_FILES
        last.files.extend(all_files[:room])
        del all_files[:room]
    if buttons and messages:
        messages[-1].buttons = tuple(buttons[:MAX_BUTTONS])
    return messages


def discord_files(files: Sequence[FileAttachment]) -> list[discord.File]:
    """Fresh ``discord.File`` objects for one send (an upload consumes them)."""
    return [
        discord.File(io.BytesIO(f.data), filename=f.filename, description=f.description or None)
        for f in files
    ]


def button_view(buttons: Sequence[Button]) -> discord.ui.View | None:
    """Buttons as a view. Presses are handled from the raw interaction (they work after a
    restart too), so the view only describes the components; it expires after 15 minutes
    so discord.py does not keep it in memory for ever."""
    if not buttons:
        return None
    view = discord.ui.View(timeout=900)
    for index, button in enumerate(buttons[:MAX_BUTTONS]):
        view.add_item(
            discord.ui.Button(
                label=_clip(button.label, MAX_LABEL),
                custom_id=button_custom_id(button.action_id, button.value)[:MAX_CUSTOM_ID],
                style=_STYLES.get(button.style, discord.ButtonStyle.primary),
                row=index // 5,
            )
        )
    return view


def within_limits(message: OutMessage) -> list[str]:
    """Problems with a rendered message (empty when it is within Discord's limits)."""
    problems = []
    if message.content is not None and len(message.content) > MAX_CONTENT:
        problems.append(f"content {len(message.content)} > {MAX_CONTENT}")
    if len(message.embeds) > MAX_EMBEDS:
        problems.append(f"{len(message.embeds)} embeds > {MAX_EMBEDS}")
    if message.embed_size() > MAX_EMBED_TOTAL:
        problems.append(f"embeds total {message.embed_size()} > {MAX_EMBED_TOTAL}")
    for i, embed in enumerate(message.embeds):
        if embed.title and len(embed.title) > MAX_TITLE:
            problems.append(f"embed {i} title too long")
        if embed.description and len(embed.description) > MAX_DESCRIPTION:
            problems.append(f"embed {i} description too long")
        if len(embed.fields) > MAX_FIELDS:
            problems.append(f"embed {i} has {len(embed.fields)} fields")
        for fld in embed.fields:
            if not fld.name or len(fld.name) > MAX_FIELD_NAME:
                problems.append(f"embed {i} field name length {len(fld.name or '')}")
            if not fld.value or len(fld.value) > MAX_FIELD_VALUE:
                problems.append(f"embed {i} field value length {len(fld.value or '')}")
    if len(message.files) > MAX_FILES:
        problems.append(f"{len(message.files)} files > {MAX_FILES}")
    return problems


__all__ = [
    "MAX_CONTENT",
    "MAX_EMBED_TOTAL",
    "OutMessage",
    "button_view",
    "discord_files",
    "render",
    "rich_embeds",
    "split_text",
    "within_limits",
]
