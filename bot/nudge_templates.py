"""The texts of nudges, kudos and facilitator alerts (``prompts/nudges.toml``).

Loaded and checked once, when the nudges cog is built at start: a missing step or hook, an
unknown key or a placeholder a text may not use stops Hearth with an error naming the file and
the key, instead of surfacing as a broken message to a learner weeks later. A course points
``[nudges] templates`` at its own copy to change the wording.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.config import read_toml
from bot.errors import ConfigError
from bot.nudging import HOOK_KINDS, variant_index
from bot.reflection_templates import PROMPTS_DIR, check_template

DEFAULT_NUDGE_TEMPLATES = PROMPTS_DIR / "nudges.toml"

_HOOK_FIELDS: dict[str, frozenset[str]] = {
    "thread": frozenset({"name", "course", "where", "channel", "peer", "people"}),
    "question": frozenset({"name", "course", "where", "channel", "peer"}),
    "reflection": frozenset({"name", "course", "where", "title"}),
    "peer": frozenset({"name", "course", "where", "channel", "peer"}),
}

#: section -> key -> (placeholders allowed, variants allowed). Every key must be present.
NUDGE_TEMPLATE_FIELDS: dict[str, dict[str, tuple[frozenset[str], bool]]] = {
    "step1": {kind: (_HOOK_FIELDS[kind], True) for kind in HOOK_KINDS},
    "step2": {kind: (_HOOK_FIELDS[kind], True) for kind in HOOK_KINDS},
    "footer": {"text": (frozenset({"off", "snooze"}), False)},
    "handoff": {
        "title": (frozenset({"count"}), False),
        "line": (frozenset({"name", "state", "since", "nudged"}), False),
        "outro": (frozenset(), False),
    },
    "unanswered": {
        "title": (frozenset({"count", "hours"}), False),
        "line": (frozenset({"name", "what", "channel", "where", "when"}), False),
        "outro": (frozenset(), False),
    },
    "share": {
        "text": (frozenset({"share", "interactions"}), False),
        "helpers": (frozenset({"names"}), False),
    },
    "kudos": {"received": (frozenset({"giver", "reason", "course"}), True)},
}


@dataclass(frozen=True, slots=True)
class NudgeTemplates:
    path: Path
    texts: dict[str, dict[str, tuple[str, ...]]]

    def variants(self, section: str, key: str) -> tuple[str, ...]:
        return self.texts[section][key]

    def render(self, section: str, key: str, *pick: str, **values: Any) -> str:
        """Fill one text; with variants, ``pick`` (e.g. member, step, day) chooses one stably.
        Values are inserted as they are (never re-parsed)."""
        options = self.texts[section][key]
        return options[variant_index(len(options), section, key, *pick)].format(**values)


def load_nudge_templates(path: Path) -> NudgeTemplates:
    """Load and check the nudge texts; :class:`ConfigError` names the file, key, placeholder."""
    raw = read_toml(path)
    for section in raw:
        if section not in NUDGE_TEMPLATE_FIELDS:
            raise ConfigError(f"{path}: unknown section [{section}]")
    texts: dict[str, dict[str, tuple[str, ...]]] = {}
    for section, fields in NUDGE_TEMPLATE_FIELDS.items():
        table = raw.get(section)
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: missing section [{section}]")
        for key in table:
            if key not in fields:
                raise ConfigError(f"{path}: [{section}] unknown key {key!r}")
        texts[section] = {}
        for key, (allowed, many) in fields.items():
            where = f"{path}: {section}.{key}"
            value = table.get(key)
            if value is None:
                raise ConfigError(f"{where}: missing")
            options = value if isinstance(value, list) else [value]
            if not options:
                raise ConfigError(f"{where}: needs at least one text")
            if len(options) > 1 and not many:
                raise ConfigError(f"{where}: must be one text, not a list")
            for number, text in enumerate(options, start=1):
                label = f"{where}[{number}]" if len(options) > 1 else where
                check_template(label, text, allowed)
            texts[section][key] = tuple(options)
    return NudgeTemplates(path, texts)
