"""Errors with a meaning for users.

A :class:`UserError` carries a message meant for the person who ran a command (a usage line,
"only facilitators can do that"). Anything else escaping a handler is a bug: the engine logs it
with context and answers with a generic line, never the exception text.
"""


class UserError(Exception):
    """Something the user can fix; ``str(error)`` is shown to them as is."""


class UsageError(UserError):
    """A command was called with bad arguments; the message includes the usage line."""


class ConfigError(Exception):
    """The configuration file is invalid; the message names the file and the key."""
