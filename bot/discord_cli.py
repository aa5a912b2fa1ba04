"""``hearth discord ...``: register the slash commands on purpose, and print the invite URL.

Discord keeps a bot's application commands on its side; they change only when the bot syncs
them. Hearth never syncs on start (that would hit Discord's rate limits on every restart and
lose admins' per-command permission overrides for nothing): run ``hearth discord
sync-commands`` once after installing and after upgrading Hearth. With ``[discord] guild_ids``
the commands are synced to those servers (visible at once); without, globally (Discord may
take up to an hour to show them everywhere).

Nothing here imports discord.py until a command runs, so ``hearth --help`` stays fast and a
Slack-only installation never loads it.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

import typer

from bot.commands import Registry
from bot.config import ConfigError, Settings

discord_cli = typer.Typer(help="Discord app setup.", no_args_is_help=True)

ConfigOpt = typer.Option(None, "--config", "-c", help="TOML configuration file.")


async def registry_for(settings: Settings) -> Registry:
    """The command registry of a real app, built on a throwaway database."""
    from bot.app import HearthApp

    with tempfile.TemporaryDirectory() as tmp:
        scratch = settings.model_copy(deep=True)
        scratch.storage.path = str(Path(tmp) / "commands.db")
        scratch.storage.database_url = ""
        app = await HearthApp.create(scratch, migrate=False, start_writer=False)
        try:
            return app.engine.registry
        finally:
            await app.close()


def command_json(settings: Settings, registry: Registry) -> list[dict[str, Any]]:
    """The application command JSON Hearth registers (what a sync sends), without a token."""
    import discord
    from discord import app_commands

    from bot.adapters.discord_translate import build_command_groups, command_payload

    async def _unused(*_args: Any) -> None:  # the callbacks never run here
        return None

    client = discord.Client(intents=discord.Intents.none())
    tree = app_commands.CommandTree(client)
    groups = build_command_groups(
        registry,
        _unused,
        root=settings.discord.command_root,
        facilitator_root=settings.discord.facilitator_root,
    )
    return command_payload(groups, tree)


async def sync_commands(settings: Settings, token: str | None = None) -> dict[str, list[str]]:
    """Sync the commands to ``guild_ids`` (or globally); returns what each target now has.

    Uses the adapter's own client and tree, so what is synced is exactly what the running
    bot answers. Only REST calls: no gateway connection is opened.
    """
    import discord

    from bot.adapters.discord_adapter import DiscordAdapter
    from bot.app import HearthApp
    from bot.config import secret
    from bot.logsafe import register_secret

    token = token or secret(settings.discord.token_env)
    register_secret(token)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = settings.model_copy(deep=True)
        scratch.storage.path = str(Path(tmp) / "commands.db")
        scratch.storage.database_url = ""
        app = await HearthApp.create(scratch, migrate=False, start_writer=False)
        adapter = DiscordAdapter(app, token=token)
        adapter._point_at_config()
        try:
            await adapter._login()
            tree = adapter.tree
            assert tree is not None
            synced: dict[str, list[str]] = {}
            if settings.discord.guild_ids:
                for gid in settings.discord.guild_ids:
                    guild = discord.Object(int(gid))
                    tree.copy_global_to(guild=guild)
                    done = await tree.sync(guild=guild)
                    synced[f"guild {gid}"] = [c.name for c in done]
            else:
                done = await tree.sync()
                synced["global"] = [c.name for c in done]
            return synced
        finally:
            await adapter.stop()  # closes the client, restores discord.py's URLs
            await app.close()


@discord_cli.command("sync-commands")
def sync_commands_command(
    config: Path | None = ConfigOpt,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the command JSON instead of sending it."
    ),
) -> None:
    """Register Hearth's slash commands with Discord (once after install or upgrade)."""
    from bot.cli import settings_from, setup_logging

    settings = settings_from(config)
    setup_logging("WARNING")
    if dry_run:
        registry = asyncio.run(registry_for(settings))
        typer.echo(json.dumps(command_json(settings, registry), indent=2))
        return
    import aiohttp
    import discord

    try:
        synced = asyncio.run(sync_commands(settings))
    except (ConfigError, ValueError) as exc:
        error = str(exc)
    except discord.HTTPException as exc:
        error = f"Discord refused the sync ({exc.status}: {exc.text})"
        if exc.status == 403:
            error += (
                "; is the bot in every server of [discord] guild_ids, invited with the "
                "applications.commands scope (hearth discord invite-url)?"
            )
    except (aiohttp.ClientError, OSError) as exc:
        error = f"cannot reach Discord at {settings.discord.api_base_url}: {exc}"
    else:
        error = None
    if error is not None:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2)
    for target, names in synced.items():
        typer.echo(f"synced to {target}: /" + ", /".join(names))
    if "global" in synced:
        typer.echo("Global commands can take up to an hour to appear in every server.")


#: What ``invite-url`` prints for the application id when none is given.
INVITE_PLACEHOLDER = "YOUR_APPLICATION_ID"


@discord_cli.command("invite-url")
def invite_url_command(
    client_id: str = typer.Option(
        INVITE_PLACEHOLDER,
        "--client-id",
        help="The application id (Developer Portal > General Information).",
    ),
) -> None:
    """Print the URL that adds Hearth to a server, with the permissions it needs."""
    from bot.adapters.discord_adapter import bot_permissions, invite_url

    if client_id != INVITE_PLACEHOLDER and not (client_id.isascii() and client_id.isdigit()):
        # A name or a pasted token would give a URL that Discord answers with "unknown
        # application": say so here instead.
        typer.echo(
            f"error: --client-id: expected the application's numeric id (Developer Portal > "
            f"General Information > Application ID), got {client_id[:40]!r}",
            err=True,
        )
        raise typer.Exit(2)
    url = invite_url(int(client_id) if client_id.isdigit() else 0)
    if not client_id.isdigit():  # the placeholder: a URL to fill in
        url = url.replace("client_id=0", f"client_id={client_id}")
    typer.echo(url)
    typer.echo(f"permissions integer: {bot_permissions().value}")


__all__ = ["command_json", "discord_cli", "registry_for", "sync_commands"]
