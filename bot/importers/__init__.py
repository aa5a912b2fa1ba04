"""History importers: load a Slack workspace export or DiscordChatExporter files.

Both translate an export into the neutral events the live adapters produce and feed them
through the engine (:class:`~bot.importers.common.Recorder`), so imported and live data are
the same thing. The CLI front end is ``bot.import_cli`` (``hearth import ...``).
"""

from bot.importers.common import (
    ImportError_,
    ImportProgress,
    ImportStats,
    ImportSummary,
    Recorder,
    open_import_app,
)
from bot.importers.discord_export import import_discord_exports
from bot.importers.slack_export import import_slack_export

__all__ = [
    "ImportError_",
    "ImportProgress",
    "ImportStats",
    "ImportSummary",
    "Recorder",
    "import_discord_exports",
    "import_slack_export",
    "open_import_app",
]
