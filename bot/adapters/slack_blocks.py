"""Neutral rich content and text -> Slack Block Kit, within Slack's limits (pure, no I/O).

Slack rejects a whole message when one block breaks a limit, so everything is cut here before
it is sent: at most 50 blocks per message (100 on a Home tab), 3,000 characters per section
text, 10 fields of 2,000 characters per section, 150-character headers, 25 buttons per actions
block. A report longer than one message becomes several messages, each with its own header
("Weekly summary (2/3)"), and buttons always land in the last one. Text is cut at line breaks,
then at spaces, never inside an escape (``&amp;``) or a Slack reference (``<@U1>``).

:func:`check_blocks` is the same rule book as a validator, used by the tests and handy when a
new renderer is added.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from bot.actions import Button, RichContent

MAX_BLOCKS = 50
MAX_HOME_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER = 150
MAX_ACTIONS = 25
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_ACTION_ID = 255
MAX_CONTEXT_ELEMENTS = 10
MAX_CONTEXT_TEXT = 3000
#: The top-level ``text`` is the notification and screen-reader fallback; keep it short.
MAX_FALLBACK = 3000

Block = dict[str, Any]
# Slack references that must reach Slack unescaped: users, channels, special mentions, links.
_KEEP = re.compile(r"<(?:[@#!]|https?://|mailto:)[^<>]*>")
_BUTTON_STYLES = ("primary", "danger")


def escape(text: str) -> str:
    """Escape ``& < >`` as Slack mrkdwn requires, keeping ``<@U1>``, ``<#C1>`` and links."""
    out: list[str] = []
    last = 0
    for match in _KEEP.finditer(text):
        out.append(_escape_plain(text[last : match.start()]))
        out.append(match.group(0))
        last = match.end()
    out.append(_escape_plain(text[last:]))
    return "".join(out)


def _escape_plain(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _safe_cut(text: str, cut: int) -> int:
    """Move ``cut`` back so it does not split an ``&entity;`` or a ``<reference>``."""
    amp = text.rfind("&", max(0, cut - 6), cut)
    if amp != -1:
        semi = text.find(";", amp)
        if semi != -1 and semi >= cut and semi - amp <= 6:
            cut = amp
    lt = text.rfind("<", 0, cut)
    if lt > 0:
        gt = text.find(">", lt)
        if gt != -1 and gt >= cut and text.rfind(">", 0, cut) < lt:
            cut = lt
    return cut


def split_text(text: str, limit: int = MAX_SECTION_TEXT) -> list[str]:
    """Cut already-escaped mrkdwn into non-empty pieces of at most ``limit`` characters."""
    pieces: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit + 1)
        if cut < limit // 2:
            space = text.rfind(" ", 0, limit + 1)
            cut = space if space >= limit // 2 else limit
        cut = _safe_cut(text, cut) or limit
        piece = text[:cut].rstrip()
        if piece.strip():
            pieces.append(piece)
        text = text[cut:]
        if text[:1] in ("\n", " "):
            text = text[1:]
    if text.strip():
        pieces.append(text.rstrip())
    return pieces


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def header(text: str) -> Block:
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": _truncate(text.strip() or "Hearth", MAX_HEADER)},
    }


def context(text: str) -> Block:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": _truncate(text, MAX_CONTEXT_TEXT)}],
    }


def text_blocks(text: str) -> list[Block]:
    """Plain text (a command's answer) as section blocks, escaped and cut to the limit."""
    return [section(piece) for piece in split_text(escape(text))]


def button_blocks(buttons: Sequence[Button]) -> list[Block]:
    """Buttons as actions blocks (25 per block); Slack knows only primary and danger styles."""
    blocks = []
    for start in range(0, len(buttons), MAX_ACTIONS):
        elements = []
        for b in buttons[start : start + MAX_ACTIONS]:
            element: Block = {
                "type": "button",
                "text": {"type": "plain_text", "text": _truncate(b.label or "OK", MAX_BUTTON_TEXT)},
                "action_id": b.action_id[:MAX_ACTION_ID],
            }
            if b.value:
                element["value"] = b.value[:MAX_BUTTON_VALUE]
            if b.style in _BUTTON_STYLES:
                element["style"] = b.style
            elements.append(element)
        blocks.append({"type": "actions", "elements": elements})
    return blocks


def rich_body_blocks(rich: RichContent) -> list[Block]:
    """Everything of a RichContent but its title (which becomes each message's header)."""
    blocks: list[Block] = []
    for s in rich.sections:
        parts = []
        if s.heading:
            parts.append(f"*{escape(s.heading)}*")
        if s.body:
            parts.append(escape(s.body))
        blocks.extend(section(piece) for piece in split_text("\n".join(parts)))
        fields = [
            {
                "type": "mrkdwn",
                "text": _truncate(f"*{escape(f.name)}*\n{escape(f.value)}", MAX_FIELD_TEXT),
            }
            for f in s.fields
        ]
        for start in range(0, len(fields), MAX_FIELDS):
            blocks.append({"type": "section", "fields": fields[start : start + MAX_FIELDS]})
    footer = []
    if rich.url:
        footer.append(f"<{rich.url}|Open>")
    if rich.footer:
        footer.append(escape(rich.footer))
    if footer:
        blocks.append(context("  ·  ".join(footer)))
    return blocks


def render_messages(
    text: str = "",
    rich: RichContent | None = None,
    buttons: Sequence[Button] = (),
    *,
    max_blocks: int = MAX_BLOCKS,
) -> list[dict[str, Any]]:
    """One or more ``{"text": fallback, "blocks": [...]}`` messages, each within the limits."""
    title = rich.title if rich is not None else ""
    body = rich_body_blocks(rich) if rich is not None else []
    if text and rich is not None:
        body = text_blocks(text) + body
    elif rich is None:
        body = text_blocks(text)
    tail = button_blocks(buttons)
    blocks = body + tail
    if not blocks and not title:
        return []
    per_page = max_blocks - (1 if title else 0)
    pages = [blocks[i : i + per_page] for i in range(0, len(blocks), per_page)] or [[]]
    fallback_source = title or text or (rich.as_text() if rich is not None else "")
    messages = []
    for number, page in enumerate(pages, 1):
        suffix = f" ({number}/{len(pages)})" if title and len(pages) > 1 else ""
        label = _truncate(title, MAX_HEADER - len(suffix)) + suffix if title else ""
        page_blocks = ([header(label)] if title else []) + page
        fallback = label or _first_text(page) or fallback_source
        messages.append({"text": _truncate(fallback, MAX_FALLBACK), "blocks": page_blocks})
    return messages


def _first_text(blocks: Sequence[Block]) -> str:
    for block in blocks:
        text = block.get("text")
        if isinstance(text, dict) and text.get("text"):
            return str(text["text"])
    return ""


def home_view(title: str, text: str, footer: str = "") -> dict[str, Any]:
    """An App Home tab view: a header, the text as sections, a context footer (100 blocks)."""
    blocks = [header(title), *text_blocks(text)]
    room = MAX_HOME_BLOCKS - (1 if footer else 0)
    if len(blocks) > room:
        blocks = blocks[: room - 1] + [section("… (shortened; run the command for the rest)")]
    if footer:
        blocks.append(context(escape(footer)))
    return {"type": "home", "blocks": blocks}


def check_blocks(blocks: Sequence[Block], *, max_blocks: int = MAX_BLOCKS) -> list[str]:
    """Problems Slack would reject a message for (empty list: valid)."""
    problems: list[str] = []
    if len(blocks) > max_blocks:
        problems.append(f"{len(blocks)} blocks (at most {max_blocks})")
    action_ids: set[str] = set()
    for i, block in enumerate(blocks):
        kind = block.get("type")
        where = f"block {i} ({kind})"
        if kind == "section":
            text = block.get("text")
            fields = block.get("fields")
            if text is None and not fields:
                problems.append(f"{where}: neither text nor fields")
            if text is not None:
                body = text.get("text", "")
                if not body.strip() or len(body) > MAX_SECTION_TEXT:
                    problems.append(f"{where}: text of {len(body)} characters")
            if fields is not None:
                if len(fields) > MAX_FIELDS:
                    problems.append(f"{where}: {len(fields)} fields")
                for f in fields:
                    if not f.get("text") or len(f["text"]) > MAX_FIELD_TEXT:
                        problems.append(f"{where}: field of {len(f.get('text', ''))} characters")
        elif kind == "header":
            body = block.get("text", {}).get("text", "")
            if block.get("text", {}).get("type") != "plain_text" or not body:
                problems.append(f"{where}: header needs plain_text")
            if len(body) > MAX_HEADER:
                problems.append(f"{where}: header of {len(body)} characters")
        elif kind == "context":
            elements = block.get("elements") or []
            if not elements or len(elements) > MAX_CONTEXT_ELEMENTS:
                problems.append(f"{where}: {len(elements)} elements")
            for e in elements:
                if len(e.get("text", "")) > MAX_CONTEXT_TEXT:
                    problems.append(f"{where}: element text too long")
        elif kind == "actions":
            elements = block.get("elements") or []
            if not elements or len(elements) > MAX_ACTIONS:
                problems.append(f"{where}: {len(elements)} elements")
            for e in elements:
                label = e.get("text", {}).get("text", "")
                action_id = e.get("action_id", "")
                if not label or len(label) > MAX_BUTTON_TEXT:
                    problems.append(f"{where}: button label of {len(label)} characters")
                if not action_id or len(action_id) > MAX_ACTION_ID:
                    problems.append(f"{where}: bad action_id")
                if action_id in action_ids:
                    problems.append(f"{where}: duplicate action_id {action_id}")
                action_ids.add(action_id)
                if len(e.get("value", "")) > MAX_BUTTON_VALUE:
                    problems.append(f"{where}: button value too long")
                if "style" in e and e["style"] not in _BUTTON_STYLES:
                    problems.append(f"{where}: style {e['style']}")
        elif kind not in ("divider", "image", "rich_text", "file", "input", "video"):
            problems.append(f"{where}: unknown block type")
    return problems


__all__ = [
    "MAX_BLOCKS",
    "MAX_SECTION_TEXT",
    "button_blocks",
    "check_blocks",
    "escape",
    "home_view",
    "render_messages",
    "rich_body_blocks",
    "split_text",
    "text_blocks",
]
