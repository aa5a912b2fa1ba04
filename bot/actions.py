"""Neutral outbound actions.

Cogs return these; each adapter has one send handler per action type and renders rich content
natively (Discord embeds, Slack Block Kit, plain text on the console).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.events import MemberRef, PlaceRef


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    value: str
    inline: bool = False


@dataclass(frozen=True, slots=True)
class Section:
    heading: str
    body: str = ""
    fields: tuple[Field, ...] = ()


@dataclass(frozen=True, slots=True)
class FileAttachment:
    """A file to attach (a chart PNG, a CSV). Bytes in memory: reports are small."""

    filename: str
    data: bytes
    content_type: str = "application/octet-stream"
    description: str = ""


@dataclass(frozen=True, slots=True)
class RichContent:
    """A platform-neutral rich message: title, sections, an optional image."""

    title: str
    sections: tuple[Section, ...] = ()
    footer: str = ""
    image: FileAttachment | None = None
    url: str = ""

    def as_text(self) -> str:
        """Plain-text rendering, used by the console and as a fallback everywhere."""
        lines = [self.title, "=" * min(len(self.title), 60)]
        for section in self.sections:
            lines.append("")
            if section.heading:
                lines.append(f"## {section.heading}")
            if section.body:
                lines.append(section.body)
            for f in section.fields:
                lines.append(f"- {f.name}: {f.value}")
        if self.image is not None:
            lines.append(f"[image: {self.image.filename}]")
        if self.footer:
            lines.append("")
            lines.append(self.footer)
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    action_id: str
    value: str = ""
    style: str = "primary"


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    """Base of every outbound action."""

    # Stable key for "send once" bookkeeping (e.g. "nudge:community:member:2026-11-29").
    dedupe_key: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply(Action):
    """Answer to the command or message that caused it."""

    text: str = ""
    ephemeral: bool = True
    rich: RichContent | None = None
    files: tuple[FileAttachment, ...] = ()
    buttons: tuple[Button, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PostMessage(Action):
    place: PlaceRef
    text: str = ""
    rich: RichContent | None = None
    files: tuple[FileAttachment, ...] = ()
    # When set, the adapter reports the new message id back via this tag (reflection threads).
    tag: str | None = None
    as_thread_title: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DirectMessage(Action):
    member: MemberRef
    text: str = ""
    #: The community the message is about (for the sent ledger and erasure); optional.
    community_id: str = ""
    rich: RichContent | None = None
    files: tuple[FileAttachment, ...] = ()
    buttons: tuple[Button, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class React(Action):
    place: PlaceRef
    message_id: str
    emoji: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Attach(Action):
    place: PlaceRef
    file: FileAttachment
    text: str = ""


OutboundAction = Reply | PostMessage | DirectMessage | React | Attach

__all__ = [
    "Action",
    "Attach",
    "Button",
    "DirectMessage",
    "Field",
    "FileAttachment",
    "OutboundAction",
    "PostMessage",
    "React",
    "Reply",
    "RichContent",
    "Section",
]
