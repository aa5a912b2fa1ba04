"""``hearth slack manifest``: the Slack app manifest, generated from the command specs.

Paste the output into Slack's "Create an app > From a manifest". Everything in it comes from
the code: the slash command and its usage hint from the command registry, the bot events from
the adapter's subscription table, and the scopes from the Web API methods the adapter calls
(``bot.adapters.slack_adapter.METHOD_SCOPES``), so the app never asks for more than it uses
and a new capability cannot forget a scope.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

import typer

from bot.commands import Registry
from bot.config import Settings

slack_cli = typer.Typer(help="Slack app setup.", no_args_is_help=True)

APP_DESCRIPTION = "Keeps your course community alive: participation mirrors, nudges, summaries."
LONG_DESCRIPTION = (
    "Hearth watches how learners take part in the course channels (their own ideas, replies "
    "that build on others, references, questions, help given), nudges members who have gone "
    "quiet toward a concrete conversation, posts reflection prompts and weekly summaries, and "
    "lets every learner see, pause and erase their own data. It stores metadata, not message "
    "text, unless the course turns text retention on. Facilitators steer it with the slash "
    "command; learners see their own participation mirror on the Home tab."
)


def usage_hint(registry: Registry) -> str:
    """Every subcommand, with its first options when they fit (Slack allows 1,000 chars)."""
    with_options = " | ".join(
        f"{spec.name} {' '.join(o.placeholder() for o in spec.options[:2])}".strip()
        for spec in registry
    )
    if len(with_options) <= 1000:
        return with_options
    names = " | ".join(spec.name for spec in registry)
    return names if len(names) <= 1000 else names[:997] + "..."


def build_manifest(
    settings: Settings, registry: Registry, *, public_url: str | None = None
) -> dict[str, Any]:
    """The app manifest for this configuration (HTTP or Socket Mode) as a dict."""
    from bot.adapters.slack_adapter import (
        EVENTS_PATH,
        OAUTH_EVENTS,
        REDIRECT_PATH,
        SUBSCRIBED_EVENTS,
        bot_scopes,
    )

    slack = settings.slack
    socket = slack.mode == "socket"
    base = (public_url or slack.public_url or "https://YOUR-HOST.example.org").rstrip("/")
    request_url = base + EVENTS_PATH
    command: dict[str, Any] = {
        "command": slack.command,
        "description": "Hearth: your participation, course stats and settings (try help)",
        "usage_hint": usage_hint(registry),
        # Escaped references (<@U1|ana>, <#C1|general>) carry stable ids to the parser.
        "should_escape": True,
    }
    interactivity: dict[str, Any] = {"is_enabled": True}
    bot_events = {e for names, _ in SUBSCRIBED_EVENTS.values() for e in names}
    oauth_config: dict[str, Any] = {"scopes": {"bot": bot_scopes()}}
    if slack.oauth:
        # One app, many workspaces: Slack sends installers back here, and tells us when a
        # workspace uninstalls so its token is deleted.
        bot_events.update(OAUTH_EVENTS)
        oauth_config["redirect_urls"] = [base + REDIRECT_PATH]
    events: dict[str, Any] = {"bot_events": sorted(bot_events)}
    if not socket:
        command["url"] = request_url
        interactivity["request_url"] = request_url
        events["request_url"] = request_url
    return {
        "display_information": {
            # Slack allows 35 characters here.
            "name": (settings.course.name if settings.course.name != "My course" else "Hearth")[
                :35
            ],
            "description": APP_DESCRIPTION,
            "long_description": LONG_DESCRIPTION,
            "background_color": "#7a3b12",
        },
        "features": {
            "app_home": {
                "home_tab_enabled": True,
                "messages_tab_enabled": True,
                # Learners read nudges and summaries there; Hearth does not read DMs.
                "messages_tab_read_only_enabled": True,
            },
            "bot_user": {"display_name": "Hearth", "always_online": True},
            "slash_commands": [command],
        },
        "oauth_config": oauth_config,
        "settings": {
            "event_subscriptions": events,
            "interactivity": interactivity,
            "org_deploy_enabled": False,
            "socket_mode_enabled": socket,
            "token_rotation_enabled": False,
        },
    }


async def registry_for(settings: Settings) -> Registry:
    """The command registry of a real app, built on a throwaway database."""
    from bot.app import HearthApp

    with tempfile.TemporaryDirectory() as tmp:
        scratch = settings.model_copy(deep=True)
        scratch.storage.path = str(Path(tmp) / "manifest.db")
        scratch.storage.database_url = ""
        app = await HearthApp.create(scratch, migrate=False, start_writer=False)
        try:
            return app.engine.registry
        finally:
            await app.close()


@slack_cli.command()
def manifest(
    config: Path | None = typer.Option(None, "--config", "-c", help="TOML configuration file."),
    url: str | None = typer.Option(
        None, "--url", help="Public https URL of this host (HTTP mode; overrides public_url)."
    ),
    mode: str | None = typer.Option(None, "--mode", help="http or socket (overrides [slack])."),
) -> None:
    """Print the Slack app manifest (JSON) to paste into "Create an app > From a manifest"."""
    from bot.cli import settings_from

    settings = settings_from(config)
    if mode is not None:
        if mode not in ("http", "socket"):
            typer.echo("error: --mode must be http or socket", err=True)
            raise typer.Exit(2)
        settings.slack.mode = mode  # type: ignore[assignment]
    registry = asyncio.run(registry_for(settings))
    typer.echo(json.dumps(build_manifest(settings, registry, public_url=url), indent=2))
