"""``hearth import``: load history from a Slack workspace export or DiscordChatExporter files.

Only wiring lives here: option parsing, the progress bar and the summary on the terminal, and
turning an unusable export into a one-line error with exit code 2. The importers themselves
are in ``bot.importers``. Heavy modules are imported inside the commands so ``hearth --help``
stays fast and ``bot.cli`` can import this module without a cycle.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from bot.app import HearthApp
    from bot.importers.common import ImportProgress, ImportSummary

import_cli = typer.Typer(
    help="Load course history from a Slack export or DiscordChatExporter files.",
    no_args_is_help=True,
)

_CONFIG = typer.Option(None, "--config", "-c", help="TOML configuration file.")
_DB = typer.Option(None, "--db", help="SQLite database file (overrides the config).")
_COMMUNITY = typer.Option(
    "",
    "--community",
    help="Target community id (created if needed). Default: the export's workspace or server.",
)
_QUIET = typer.Option(False, "--quiet", "-q", help="No progress bar; only the summary.")


def _run(
    config: Path | None,
    db: Path | None,
    quiet: bool,
    body: Callable[[HearthApp, ImportProgress], Awaitable[ImportSummary]],
) -> None:
    from rich.console import Console

    from bot.app import DatabaseUnavailable
    from bot.cli import settings_from, setup_logging
    from bot.config import ConfigError
    from bot.errors import UserError
    from bot.importers.common import ImportProgress, open_import_app
    from bot.wording import counted

    settings = settings_from(config, db)
    setup_logging("WARNING")
    out = Console()
    progress = ImportProgress(Console(stderr=True), enabled=not quiet)

    async def _go() -> ImportSummary:
        app = await open_import_app(settings)
        try:
            return await body(app, progress)
        finally:
            await app.close()

    try:
        summary = asyncio.run(_go())
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except (DatabaseUnavailable, ConfigError, OSError, ConnectionError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    summary.render(out)
    where = f" --db {db}" if db is not None else f" --config {config}" if config else ""
    out.print(
        f"{counted(summary.stats.messages_read, 'message', thousands=True)} "
        f"in {summary.seconds:.1f}s "
        f"({summary.rate:,.0f} messages/s). See the course with: "
        f"hearth report{where} --community {summary.community_id}",
        soft_wrap=True,
        highlight=False,
    )


@import_cli.command("slack-export")
def slack_export(
    path: Path = typer.Argument(..., help="The export .zip or the folder it unpacks to."),
    config: Path | None = _CONFIG,
    db: Path | None = _DB,
    community: str = _COMMUNITY,
    quiet: bool = _QUIET,
) -> None:
    """Import a Slack workspace export (channels, threads, reactions; DMs are never read)."""
    from bot.importers.slack_export import import_slack_export

    _run(
        config,
        db,
        quiet,
        lambda app, progress: import_slack_export(
            app, path, community_id=community or None, progress=progress
        ),
    )


@import_cli.command("discord-export")
def discord_export(
    paths: list[Path] = typer.Argument(..., help="DiscordChatExporter JSON files or folders."),
    config: Path | None = _CONFIG,
    db: Path | None = _DB,
    community: str = _COMMUNITY,
    quiet: bool = _QUIET,
) -> None:
    """Import DiscordChatExporter JSON files: channels, threads, replies, reactions, joins."""
    from bot.importers.discord_export import import_discord_exports

    _run(
        config,
        db,
        quiet,
        lambda app, progress: import_discord_exports(
            app, list(paths), community_id=community or None, progress=progress
        ),
    )
