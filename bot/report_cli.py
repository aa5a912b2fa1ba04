"""``hearth report``: the analytics report offline, from a database file.

    hearth report --db hearth.db [--config FILE] [--since DATE] [--until DATE]
                  [--community ID] --format text|json|csv|html [--output PATH]

Dates are calendar days in UTC and both days are included: ``--since 2026-09-07 --until
2026-09-13`` covers Monday 00:00 to Sunday 24:00 (the window is ``since < time <= until``).
Without ``--until`` the report ends now; without ``--since`` it covers ``[analytics]
window_days`` days before the end. Errors (no such file, unknown community, bad dates) print
one line and exit with code 2.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import typer

from bot.config import Settings
from bot.date_range import parse_date

log = logging.getLogger(__name__)


class ReportError(Exception):
    """A problem with the arguments or the database, reported as one line (exit 2)."""


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return parse_date(value)
    except ValueError as exc:
        raise ReportError(f"{option}: {exc}") from None


def report_window(
    since: date | None, until: date | None, *, now: datetime, window_days: int
) -> tuple[datetime, datetime]:
    """The (since, until] window for inclusive calendar days in UTC."""
    if since is not None and until is not None and since > until:
        raise ReportError("--since must not be after --until")
    end = datetime.combine(until + timedelta(days=1), time(), UTC) if until else now
    start = datetime.combine(since, time(), UTC) if since else end - timedelta(days=window_days)
    if start >= end:
        raise ReportError("--since must be before the end of the report (today or --until)")
    return start, end


async def produce_report(
    settings: Settings,
    *,
    fmt: str,
    since: date | None,
    until: date | None,
    community: str | None,
    now: datetime | None = None,
) -> tuple[str, str | None]:
    """Open the database read-only in spirit (no migrations, no writes) and render the report;
    returns it with a note for the terminal when its window holds no contribution but earlier
    days do (a course that has ended, the demo's database a few days on)."""
    from bot.app import first_line
    from bot.report import build_report, render
    from storage.db import make_engine, redact
    from storage.repos import Store
    from storage.writer import BatchWriter

    now = now or datetime.now(UTC)
    start, end = report_window(since, until, now=now, window_days=settings.analytics.window_days)
    engine = make_engine(
        settings.storage.url(),
        schema=settings.storage.pg_schema,
        work_mem=settings.storage.pg_work_mem,
    )
    # The writer is never started and nothing is queued: flushes before reads are no-ops.
    store = Store(engine, BatchWriter(engine))
    try:
        try:
            communities = [c["id"] for c in await store.communities()]
        except Exception as exc:  # noqa: BLE001 - any driver error means "not a Hearth database"
            raise ReportError(
                f"cannot read a Hearth database at {redact(settings.storage.url())}: "
                f"{first_line(exc)}"
            ) from None
        community_id = community or _default_community(communities, settings)
        if community_id not in communities:
            known = ", ".join(communities) or "none"
            raise ReportError(f"no community {community_id!r} in this database (known: {known})")
        report = await build_report(
            store, community_id, since=start, until=end, settings=settings, generated_at=now
        )
        note = None
        if not report.data["contributions"]:
            latest = await store.last_contribution_at(community_id, until=start)
            if latest is not None:
                note = (
                    f"no contributions from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC; "
                    f"the latest before them is from {latest:%Y-%m-%d}: --since and --until "
                    "choose the days"
                )
        # Rendering (charts above all) is CPU work; the engine is idle meanwhile anyway.
        return render(report, fmt), note
    finally:
        await engine.dispose()


def _default_community(communities: list[str], settings: Settings) -> str:
    if len(communities) == 1:
        return communities[0]
    if settings.console.community in communities:
        return settings.console.community
    if not communities:
        raise ReportError("the database holds no community yet")
    raise ReportError(
        "the database holds several communities; choose one with --community "
        f"({', '.join(communities)})"
    )


def report_command(
    db: Path | None = typer.Option(
        None, "--db", help="SQLite database file (overrides the config)."
    ),
    config: Path | None = typer.Option(None, "--config", "-c", help="TOML configuration file."),
    since: str | None = typer.Option(None, "--since", help="First day (YYYY-MM-DD, UTC)."),
    until: str | None = typer.Option(None, "--until", help="Last day (YYYY-MM-DD, UTC), included."),
    community: str | None = typer.Option(None, "--community", help="Community id."),
    fmt: str = typer.Option("text", "--format", "-f", help="text, json, csv or html."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write here, not stdout."),
) -> None:
    """Interaction analytics of a course: patterns, network, activity, learners."""
    from bot.cli import settings_from, setup_logging
    from bot.report import FORMATS

    fmt = fmt.lower()
    if fmt not in FORMATS:
        typer.echo(f"error: --format must be one of {', '.join(FORMATS)}", err=True)
        raise typer.Exit(2)
    if db is not None and not db.exists():
        typer.echo(f"error: {db}: no such database file", err=True)
        raise typer.Exit(2)
    settings = settings_from(config, db)
    if not settings.storage.database_url and not Path(settings.storage.path).exists():
        # SQLite would quietly create an empty file; say what is missing instead.
        typer.echo(f"error: {settings.storage.path}: no such database file", err=True)
        raise typer.Exit(2)
    setup_logging("WARNING")
    try:
        text, note = asyncio.run(
            produce_report(
                settings,
                fmt=fmt,
                since=_day(since, "--since"),
                until=_day(until, "--until"),
                community=community,
            )
        )
    except ReportError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)
    if note:
        # On stderr: the JSON and CSV on stdout stay clean for whatever reads them.
        typer.echo(f"note: {note}", err=True)
