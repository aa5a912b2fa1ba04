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

#: The widest an integer option may be, whatever its own bounds: the 32-bit INTEGER columns
#: both databases have (prompt ids). A bigger number would reach the database and fail there
#: (SQLite cannot bind past 64 bits, PostgreSQL refuses past 32) instead of getting a usage line.
INTEGER_LIMIT = 2**31 - 1


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

    def bounds(self) -> tuple[int, int]:
        """The smallest and largest value an integer option accepts."""
        low = -INTEGER_LIMIT if self.min_value is None else max(self.min_value, -INTEGER_LIMIT)
        high = INTEGER_LIMIT if self.max_value is None else min(self.max_value, INTEGER_LIMIT)
        return low, high

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


def command_help(registry: Registry, words: list[str], *, facilitator: bool) -> str:
    """``help [command]``: the commands the caller may run, or, with a command or a group
    named, each of them in full (usage, what each option means, examples)."""
    if not words:
        return help_text(registry, facilitator=facilitator)
    name = " ".join(words).lower()
    specs = [
        s
        for s in registry
        if (s.name == name or s.words[0] == name) and (facilitator or not s.facilitator_only)
    ]
    if not specs:
        return f"No command {name[:40]!r} that you may run.\n" + help_text(
            registry, facilitator=facilitator
        )
    lines: list[str] = []
    for spec in specs:
        marker = " (facilitators)" if spec.facilitator_only else ""
        lines += [usage(spec, registry.root), f"  {spec.description}{marker}"]
        for option in spec.options:
            required = ", required" if option.required else ""
            lines.append(f"  {option.name}: {option.description}{_accepts(option)}{required}")
        lines += [f"  example: /{registry.root} {example}" for example in spec.examples]
    return "\n".join(lines)


def _accepts(option: Option) -> str:
    low, high = option.min_value, option.max_value
    if option.type == "integer" and low is not None:
        return f" ({low} to {high})" if high is not None else f" (at least {low})"
    if option.type == "integer" and high is not None:
        return f" (at most {high})"
    if option.type == "choice":
        return f" ({', '.join(option.choices)})"
    return ""


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
        low, high = option.bounds()
        if value < low:
            raise bad(f"must be at least {low}")
        if value > high:
            raise bad(f"must be at most {high}")
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
            if isinstance(value, str):
                value = convert(option, value, spec, root)
            elif option.type == "integer" and not isinstance(value, bool):
                # Typed by the platform, which checked only the bounds it was told: the
                # payload is checked again, as text would be.
                value = convert(option, str(value), spec, root)
            out[option.name] = value
        elif option.required:
            raise UsageError(f"missing {option.name}\n{usage(spec, root)}")
        else:
            out[option.name] = option.default
    return out


def command_named(registry: Registry, text: str) -> CommandSpec | None:
    """The command a line names, read as :func:`parse_command` reads it, its options not yet
    looked at (so the caller can check who may run it first)."""
    spec, _used = registry.match(_tokens(text.strip()))
    return spec


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
