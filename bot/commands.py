"""Commands declared once, as data plus a handler.

A :class:`CommandSpec` names a command (``"stats"`` or a two-word ``"prompt post"``), its typed
options, who may run it and whether the answer is private. From the same specs:

- the console and Slack parse ``/course <text>`` with :func:`parse_command`;
- Discord builds application commands (``/course stats``) with typed options;
- :func:`help_text` and :func:`usage` generate help and usage lines.

Option values may be given positionally (``stats @alice 7``) or by name (``stats days:7``),
as Discord shows them. A bad argument raises :class:`UsageError` carrying the usage line.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.date_range import parse_date
from bot.errors import UsageError

OPTION_TYPES = ("string", "text", "integer", "member", "channel", "date", "choice", "boolean")


@dataclass(frozen=True, slots=True)
class Option:
    """One typed option. ``text`` takes the rest of the line (a reason, a prompt)."""

    name: str
    type: str
    description: str
    required: bool = False
    choices: tuple[str, ...] = ()
    default: Any = None
    min_value: int | None = None
    max_value: int | None = None

    def __post_init__(self) -> None:
        if self.type not in OPTION_TYPES:
            raise ValueError(f"option {self.name}: unknown type {self.type}")
        if self.type == "choice" and not self.choices:
            raise ValueError(f"option {self.name}: a choice needs choices")

    def placeholder(self) -> str:
        label = "|".join(self.choices) if self.type == "choice" else self.name
        return f"<{label}>" if self.required else f"[{label}]"


Handler = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str
    description: str
    handler: Handler
    options: tuple[Option, ...] = ()
    facilitator_only: bool = False
    private: bool = True
    #: Handlers that may take more than a second or two; Discord defers before running them.
    slow: bool = False
    examples: tuple[str, ...] = ()

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(self.name.split())


@dataclass(slots=True)
class Registry:
    """All commands of all cogs, under one root (``course``)."""

    root: str = "course"
    specs: dict[str, CommandSpec] = field(default_factory=dict)

    def add(self, spec: CommandSpec) -> None:
        if spec.name in self.specs:
            raise ValueError(f"command {spec.name!r} declared twice")
        if len(spec.words) > 2:
            raise ValueError(f"command {spec.name!r}: at most two words (group and command)")
        self.specs[spec.name] = spec

    def extend(self, specs: Iterable[CommandSpec]) -> None:
        for spec in specs:
            self.add(spec)

    def __iter__(self):
        return iter(sorted(self.specs.values(), key=lambda s: s.name))

    def match(self, words: list[str]) -> tuple[CommandSpec | None, int]:
        """Longest command name that prefixes ``words``."""
        if len(words) >= 2 and f"{words[0]} {words[1]}".lower() in self.specs:
            return self.specs[f"{words[0]} {words[1]}".lower()], 2
        if words and words[0].lower() in self.specs:
            return self.specs[words[0].lower()], 1
        return None, 0

    def group_names(self, group: str) -> list[str]:
        return sorted(s.name for s in self.specs.values() if s.words[0] == group)


def usage(spec: CommandSpec, root: str = "course") -> str:
    parts = [f"/{root} {spec.name}"] + [o.placeholder() for o in spec.options]
    return "usage: " + " ".join(parts)


def help_text(registry: Registry, *, facilitator: bool) -> str:
    """Generated help: one line per command the caller may run."""
    lines = [f"Hearth commands (/{registry.root} <command>):"]
    for spec in registry:
        if spec.facilitator_only and not facilitator:
            continue
        args = " ".join(o.placeholder() for o in spec.options)
        marker = " (facilitators)" if spec.facilitator_only else ""
        lines.append(f"  {spec.name} {args}".rstrip() + f" - {spec.description}{marker}")
    return "\n".join(lines)


_NAMED = re.compile(r"^([a-z_]+):(.*)$", re.S)
_MEMBER = re.compile(r"^(<@!?[\w.-]+(\|[^>]*)?>|@[\w.\- ]+|[\w.\-]+)$")
_CHANNEL = re.compile(r"^(<#[\w.-]+(\|[^>]*)?>|#[\w.\-]+|[\w.\-]+)$")


def _tokens(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        # An unbalanced quote: fall back to whitespace so the user gets a usage line,
        # not a parser error about quotes.
        return text.split()


def convert(option: Option, raw: str, spec: CommandSpec, root: str) -> Any:
    """Convert one raw string to the option's type, or raise a usage error."""

    def bad(why: str) -> UsageError:
        return UsageError(f"{option.name}: {why}\n{usage(spec, root)}")

    raw = raw.strip()
    if option.type in ("string", "text"):
        if not raw:
            raise bad("must not be empty")
        if len(raw) > 2000:
            raise bad("too long (2,000 characters at most)")
        return raw
    if option.type == "integer":
        try:
            value = int(raw)
        except ValueError:
            raise bad(f"expected a whole number, got {raw[:40]!r}") from None
        if option.min_value is not None and value < option.min_value:
            raise bad(f"must be at least {option.min_value}")
        if option.max_value is not None and value > option.max_value:
            raise bad(f"must be at most {option.max_value}")
        return value
    if option.type == "boolean":
        lowered = raw.lower()
        if lowered in ("on", "yes", "true", "1"):
            return True
        if lowered in ("off", "no", "false", "0"):
            return False
        raise bad("expected on or off")
    if option.type == "choice":
        lowered = raw.lower()
        if lowered not in option.choices:
            raise bad(f"expected one of {', '.join(option.choices)}")
        return lowered
    if option.type == "date":
        try:
            return parse_date(raw)
        except ValueError as exc:
            raise bad(str(exc)) from None
    if option.type == "member":
        if not _MEMBER.match(raw) or len(raw) > 120:
            raise bad("expected a member like @alice")
        return raw
    if option.type == "channel":
        if not _CHANNEL.match(raw) or len(raw) > 120:
            raise bad("expected a channel like #general")
        return raw.lstrip("#")
    raise bad("unsupported option type")  # pragma: no cover - guarded in Option


def bind_options(spec: CommandSpec, values: dict[str, Any], root: str = "course") -> dict[str, Any]:
    """Check already-typed options (Discord) against the spec: required, known, converted."""
    known = {o.name: o for o in spec.options}
    unknown = set(values) - set(known)
    if unknown:
        raise UsageError(f"unknown option {sorted(unknown)[0]}\n{usage(spec, root)}")
    out: dict[str, Any] = {}
    for option in spec.options:
        if option.name in values and values[option.name] is not None:
            value = values[option.name]
            out[option.name] = (
                convert(option, str(value), spec, root) if isinstance(value, str) else value
            )
        elif option.required:
            raise UsageError(f"missing {option.name}\n{usage(spec, root)}")
        else:
            out[option.name] = option.default
    return out


def parse_command(registry: Registry, text: str) -> tuple[CommandSpec, dict[str, Any]]:
    """Parse the text after ``/course`` into a spec and typed options."""
    text = text.strip()
    if not text:
        raise UsageError(help_text(registry, facilitator=True))
    # Text options swallow the rest of the line, so split lazily.
    words = _tokens(text)
    spec, used = registry.match(words)
    if spec is None:
        group = words[0].lower() if words else ""
        subcommands = registry.group_names(group)
        if subcommands:
            raise UsageError(
                f"{group} needs a subcommand: " + ", ".join(s.split()[1] for s in subcommands)
            )
        raise UsageError(
            f"unknown command {words[0][:40]!r}; try /{registry.root} help"
            if words
            else help_text(registry, facilitator=True)
        )
    rest = words[used:]
    root = registry.root
    by_name = {o.name: o for o in spec.options}
    values: dict[str, Any] = {}
    positional = [o for o in spec.options]
    index = 0
    i = 0
    while i < len(rest):
        token = rest[i]
        named = _NAMED.match(token)
        if named and named.group(1) in by_name:
            option = by_name[named.group(1)]
            raw = named.group(2)
            if option.type == "text":
                raw = " ".join([raw, *rest[i + 1 :]]).strip()
                i = len(rest)
            if option.name in values:
                raise UsageError(f"{option.name} given twice\n{usage(spec, root)}")
            values[option.name] = convert(option, raw, spec, root)
            i += 1
            continue
        while index < len(positional) and positional[index].name in values:
            index += 1
        if index >= len(positional):
            raise UsageError(f"unexpected argument {token[:40]!r}\n{usage(spec, root)}")
        option = positional[index]
        if option.type == "text":
            values[option.name] = convert(option, " ".join(rest[i:]), spec, root)
            break
        values[option.name] = convert(option, token, spec, root)
        index += 1
        i += 1
    for option in spec.options:
        if option.name not in values:
            if option.required:
                raise UsageError(f"missing {option.name}\n{usage(spec, root)}")
            values[option.name] = option.default
    return spec, values
