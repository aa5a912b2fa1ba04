"""Opening a local HTTP port (metrics, Slack's events over HTTP).

A port that is taken (another Hearth process, a second copy of the same config) or not ours to
bind is a configuration error: one line naming the setting that chose it, exit code 2, rather
than aiohttp's traceback.
"""

from __future__ import annotations

import errno

from aiohttp import web

from bot.config import ConfigError


async def start_site(runner: web.AppRunner, host: str, port: int, setting: str) -> None:
    """Listen on ``host:port`` with ``runner`` (set up already); ``setting`` names the config
    key behind the port, for the error."""
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            why = "the port is in use (another process, or another Hearth with the same config?)"
        else:
            why = exc.strerror or str(exc)
        raise ConfigError(f"cannot listen on {host}:{port} ({setting}): {why}") from None
