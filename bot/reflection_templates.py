"""The texts of reflections and summaries: the prompt sequence and the message templates.

Both live in TOML files under ``prompts/`` (a course can point ``[reflections] prompts_file``
and ``[summaries] templates`` at its own copies). They are loaded and checked once, when the
cogs are built at start, so a typo stops Hearth with an error naming the file and the key
instead of surfacing as a broken message weeks later.

- :class:`PromptSequence`: ``[[prompts]]`` entries with ``week``, ``id``, ``theme``, ``title``,
  ``text``; each week at most once.
- :class:`Templates`: sections of named texts with ``{placeholders}``; every key of
  :data:`TEMPLATE_FIELDS` must be present, no other key may be, and each text may only use the
  placeholders listed for it.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.config import read_toml
from bot.errors import ConfigError

#: ``prompts/`` next to the ``bot`` package (a source checkout or an editable install).
PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"
DEFAULT_PROMPTS = PROMPTS_DIR / "reflections.toml"
DEFAULT_TEMPLATES = PROMPTS_DIR / "summaries.toml"

_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
MAX_TITLE = 100
MAX_TEXT = 1500

#: Every template: section -> key -> the placeholders it may use.
TEMPLATE_FIELDS: dict[str, dict[str, frozenset[str]]] = {
    "summary": {
        "title": frozenset({"course", "start", "end"}),
        "intro": frozenset({"course", "contributions", "active", "learners", "all_learners"}),
        "contributions_heading": frozenset(),
        "threads_heading": frozenset(),
        "newcomers_heading": frozenset(),
        "newcomers": frozenset({"names", "count"}),
        "reflections_heading": frozenset(),
        "reflections": frozenset({"answered", "learners", "all_learners", "title"}),
        "no_prompt": frozenset(),
        "questions_heading": frozenset(),
        "questions": frozenset({"questions", "count"}),
        "no_questions": frozenset(),
        "footer": frozenset({"command"}),
    },
    "final": {
        "title": frozenset({"course"}),
        "intro": frozenset({"course", "weeks", "contributions", "learners", "reflections"}),
    },
    "report": {
        "title": frozenset({"course", "start", "end"}),
        "footer": frozenset({"command"}),
    },
    "prompt": {
        "thread": frozenset({"course", "title", "text", "closes"}),
        "dm": frozenset({"name", "course", "title", "text", "closes"}),
    },
    "reminder": {
        "text": frozenset({"name", "course", "title", "closes", "where", "command"}),
    },
    "close": {
        "title": frozenset({"title"}),
        "intro": frozenset({"answered", "learners", "all_learners", "title"}),
        "queue": frozenset({"answers", "count"}),
        "queue_empty": frozenset(),
    },
    "mirror": {
        "title": frozenset({"course", "start", "end"}),
        "intro": frozenset({"contributions", "words"}),
        "band": frozenset({"band"}),
        "band_unavailable": frozenset(),
        "goal": frozenset({"goal"}),
        "no_goal": frozenset({"command"}),
        "footer": frozenset({"command"}),
    },
}


def resolve(path: str, default: Path) -> Path:
    """The configured file, or the packaged default when the setting is empty."""
    return Path(path).expanduser() if path else default


# -- the prompt sequence ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    week: int
    id: str
    theme: str
    title: str
    text: str


@dataclass(frozen=True, slots=True)
class PromptSequence:
    path: Path
    prompts: tuple[PromptTemplate, ...]

    def for_week(self, week: int) -> PromptTemplate | None:
        return next((p for p in self.prompts if p.week == week), None)

    @property
    def weeks(self) -> list[int]:
        return [p.week for p in self.prompts]


def load_prompts(path: Path) -> PromptSequence:
    """Load and check a prompt sequence; :class:`ConfigError` names the file and the prompt."""
    raw = read_toml(path)
    unknown = set(raw) - {"prompts"}
    if unknown:
        raise ConfigError(f"{path}: unknown key {sorted(unknown)[0]!r} (expected [[prompts]])")
    entries = raw.get("prompts")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: no prompts (add [[prompts]] entries)")
    prompts: list[PromptTemplate] = []
    seen_weeks: dict[int, str] = {}
    seen_ids: set[str] = set()
    for number, entry in enumerate(entries, start=1):
        where = f"{path}: prompt {number}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a table")
        extra = set(entry) - {"week", "id", "theme", "title", "text"}
        if extra:
            raise ConfigError(f"{where}: unknown key {sorted(extra)[0]!r}")
        for key in ("week", "id", "theme", "title", "text"):
            if key not in entry:
                raise ConfigError(f"{where}: missing {key}")
        week, pid = entry["week"], entry["id"]
        if isinstance(week, bool) or not isinstance(week, int) or not 0 <= week <= 104:
            raise ConfigError(f"{where}: week must be a whole number from 0 to 104")
        if not isinstance(pid, str) or not _ID.match(pid):
            raise ConfigError(f"{where}: id must be lower case letters, digits and dashes")
        where = f"{path}: prompt {pid!r}"
        for key, limit in (("theme", 50), ("title", MAX_TITLE), ("text", MAX_TEXT)):
            value = entry[key]
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{where}: {key} must be non-empty text")
            if len(value) > limit:
                raise ConfigError(f"{where}: {key} is longer than {limit} characters")
        if week in seen_weeks:
            raise ConfigError(f"{where}: week {week} already has prompt {seen_weeks[week]!r}")
        if pid in seen_ids:
            raise ConfigError(f"{where}: id used twice")
        seen_weeks[week] = pid
        seen_ids.add(pid)
        prompts.append(
            PromptTemplate(week, pid, entry["theme"].strip(), entry["title"].strip(), entry["text"])
        )
    return PromptSequence(path, tuple(sorted(prompts, key=lambda p: p.week)))


# -- message templates ----------------------------------------------------------------------


def placeholders(template: str) -> set[str]:
    """The ``{names}`` a template uses (``ValueError`` for a malformed one)."""
    names: set[str] = set()
    for _literal, field, _spec, _conversion in string.Formatter().parse(template):
        if field is None:
            continue
        if not field or not field.isidentifier():
            raise ValueError(f"bad placeholder {{{field}}} (use plain names like {{name}})")
        names.add(field)
    return names


def check_template(label: str, text: object, allowed: set[str] | frozenset[str]) -> str:
    """Validate one template text: non-empty, parseable, only ``allowed`` placeholders.

    ``label`` names the file and key in the error, so a facilitator's own template file
    fails with a message that says where.
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{label}: must be non-empty text")
    try:
        used = placeholders(text)
    except ValueError as exc:
        raise ConfigError(f"{label}: {exc}") from None
    bad = sorted(used - set(allowed))
    if bad:
        listed = ", ".join(sorted(allowed)) or "none"
        raise ConfigError(
            f"{label}: unknown placeholder {{{bad[0]}}} (this text may use: {listed})"
        )
    return text


@dataclass(frozen=True, slots=True)
class Templates:
    path: Path
    texts: dict[str, dict[str, str]]

    def render(self, section: str, key: str, **values: Any) -> str:
        """Fill one template. Values are inserted as they are (never re-parsed)."""
        return self.texts[section][key].format(**values)


def load_templates(path: Path) -> Templates:
    """Load and check the message templates; :class:`ConfigError` names file, key, placeholder."""
    raw = read_toml(path)
    texts: dict[str, dict[str, str]] = {}
    for section in raw:
        if section not in TEMPLATE_FIELDS:
            raise ConfigError(f"{path}: unknown section [{section}]")
    for section, fields in TEMPLATE_FIELDS.items():
        table = raw.get(section)
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: missing section [{section}]")
        for key in table:
            if key not in fields:
                raise ConfigError(f"{path}: [{section}] unknown key {key!r}")
        texts[section] = {}
        for key, allowed in fields.items():
            where = f"{path}: {section}.{key}"
            value = table.get(key)
            if value is None:
                raise ConfigError(f"{where}: missing")
            texts[section][key] = check_template(where, value, allowed)
    return Templates(path, texts)
