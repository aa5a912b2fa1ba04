"""The ``hearth`` command line (typer).

Each capability keeps its command logic in its own module; this file only wires commands and
turns configuration and database errors into a clear message and exit code 2.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

import typer

from bot.config import ConfigError, Settings, load_settings
from bot.discord_cli import discord_cli
from bot.import_cli import import_cli
from bot.report_cli import report_command
from bot.slack_cli import slack_cli

cli = typer.Typer(
    name="hearth",
    help="Hearth keeps online course communities alive in Discord and Slack.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_cli = typer.Typer(help="Database schema management.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(import_cli, name="import")
cli.add_typer(slack_cli, name="slack")
cli.add_typer(discord_cli, name="discord")
cli.command("report")(report_command)


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Log to stderr in ``fmt`` ("text" or "json"), with community and event ids and with
    secrets redacted (see ``bot.logformat``)."""
    from bot.logformat import make_handler

    handler = make_handler(sys.stderr, fmt)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # APScheduler logs two lines per fire and one per job it plans (each job of each
    # community at every start); the scheduler logs each run once, with its community and
    # period. Its warnings and errors (a job that raised, a missed run) still come through.
    # Alembic logs its plugins and its connection at every start (nine lines); Hearth says
    # itself when it created or migrated the schema.
    for name in ("apscheduler", "alembic"):
        logging.getLogger(name).setLevel(
            logging.NOTSET if root.level <= logging.DEBUG else logging.WARNING
        )


def settings_from(config: Path | None, db: Path | None = None) -> Settings:
    """Load the config (or defaults) and apply ``--db``; exit 2 with a clear error if invalid."""
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if db is not None:
        settings.storage.path = str(db)
        settings.storage.database_url = ""
    if not settings.storage.database_url:
        # SQLite creates the file, not its folder: said now, not as "unable to open database
        # file" after five connection attempts (or a traceback).
        folder = Path(settings.storage.path).parent
        if not folder.is_dir():
            typer.echo(f"error: {settings.storage.path}: no folder {folder} for it", err=True)
            raise typer.Exit(2)
    return settings


ConfigOpt = typer.Option(None, "--config", "-c", help="TOML configuration file.")
DbOpt = typer.Option(None, "--db", help="SQLite database file (overrides the config).")


@cli.command()
def demo(
    db: Path = typer.Option(Path("hearth-demo.db"), "--db", help="Where to leave the database."),
    seed: int = typer.Option(7, help="Random seed of the scripted course."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only print the final tables."),
) -> None:
    """Play a scripted two-week course through the whole bot and print what it recorded."""
    from bot.demo import run_demo

    setup_logging("WARNING")
    asyncio.run(run_demo(db, seed=seed, verbose=not quiet))


@cli.command()
def console(
    config: Path | None = ConfigOpt,
    db: Path | None = DbOpt,
    community: str = typer.Option("", help="Community id (default from the config)."),
) -> None:
    """A REPL on the engine: type as members, run /course commands, move the clock."""
    from bot.console_repl import run_repl

    settings = settings_from(config, db)
    setup_logging("WARNING")
    from bot.app import DatabaseUnavailable

    try:
        asyncio.run(run_repl(settings, community or None))
    except (ConfigError, DatabaseUnavailable) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@cli.command()
def run(config: Path | None = ConfigOpt) -> None:
    """Run the bot: the adapters the config enables, plus the scheduler."""
    from bot.serve import serve

    settings = settings_from(config)
    setup_logging(settings.log_level, settings.log_format)
    code = asyncio.run(serve(settings))
    raise typer.Exit(code)


@cli.command()
def bench(
    output: Path | None = typer.Option(None, help="Where to write the results (bench/RESULTS.md)."),
) -> None:
    """Run the production benchmarks and write bench/RESULTS.md (a checkout is needed)."""
    import runpy

    script = Path(__file__).resolve().parents[1] / "bench" / "run_all.py"
    if not script.exists():
        typer.echo("error: bench/ not found; run `hearth bench` from a source checkout", err=True)
        raise typer.Exit(2)
    if output is not None and not _writable_file(output):
        # Said now, not after the few minutes the benchmarks take.
        typer.echo(f"error: {output}: not a file the results can be written to", err=True)
        raise typer.Exit(2)
    module = runpy.run_path(str(script))
    raise typer.Exit(module["main"](output))


def _writable_file(path: Path) -> bool:
    return not path.is_dir() and path.parent.is_dir() and os.access(path.parent, os.W_OK)


@db_cli.command("upgrade")
def db_upgrade(config: Path | None = ConfigOpt, db: Path | None = DbOpt) -> None:
    """Create or migrate the schema to the newest version."""
    from sqlalchemy.exc import DBAPIError

    from bot.app import first_line
    from storage.db import make_engine, redact, schema_change, upgrade

    settings = settings_from(config, db)
    url = settings.storage.url()

    async def _go() -> tuple[set[str], set[str]]:
        engine = make_engine(
            url, schema=settings.storage.pg_schema, work_mem=settings.storage.pg_work_mem
        )
        try:
            return await upgrade(engine)
        finally:
            await engine.dispose()

    try:
        before, after = asyncio.run(_go())
    except (OSError, ConnectionError) as exc:
        typer.echo(f"error: cannot reach the database at {redact(url)}: {exc}", err=True)
        raise typer.Exit(2) from None
    except DBAPIError as exc:  # reached, but not usable: not SQLite, no such role or database
        typer.echo(f"error: cannot use the database at {redact(url)}: {first_line(exc)}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"database at {redact(url)}: {schema_change(before, after)}")


def main() -> None:
    cli()
