"""``hearth run``: build the app from the config, attach the enabled adapters, run until
SIGINT/SIGTERM, and exit non-zero with a clear message if the database cannot be reached."""

from __future__ import annotations

import logging

from bot.app import DatabaseUnavailable, HearthApp
from bot.config import ConfigError, Settings, check_secrets

log = logging.getLogger(__name__)


async def serve(settings: Settings) -> int:
    try:
        # A missing token is a configuration error: said before the database is touched.
        check_secrets(settings)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    try:
        app = await HearthApp.create(
            settings,
            live_scheduler=True,
            connect_attempts=settings.storage.connect_attempts,
            connect_backoff=settings.storage.connect_backoff_seconds,
        )
    except DatabaseUnavailable as exc:
        log.error("%s; giving up (exit code 3)", exc)
        return 3
    except ConfigError as exc:  # a prompt or template file failed its check at start
        log.error("%s", exc)
        return 2
    try:
        for build in _adapter_builders(settings):
            app.add_adapter(build(app))
    except ConfigError as exc:
        log.error("%s", exc)
        await app.close()
        return 2
    if not app.adapters:
        if not settings.console.enabled:
            log.error("no adapter is enabled: set [discord], [slack] or [console] enabled = true")
            await app.close()
            return 2
        # Console only: a live terminal on the real clock and the live scheduler. Reading stops
        # at end of input, but the bot keeps running (jobs fire) until SIGINT/SIGTERM.
        from bot.console_repl import attach_stdin_console

        await attach_stdin_console(app)
    try:
        await app.run_forever()
    except ConfigError as exc:  # an adapter refused its credentials at start
        log.error("%s", exc)
        return 2
    return 0


def _adapter_builders(settings: Settings):
    """Adapters are imported only when enabled, so a Slack-only bot never loads discord.py."""
    builders = []
    if settings.discord.enabled:
        from bot.adapters.discord_adapter import build_discord_adapter

        builders.append(build_discord_adapter)
    if settings.slack.enabled:
        from bot.adapters.slack_adapter import build_slack_adapter

        builders.append(build_slack_adapter)
    return builders
