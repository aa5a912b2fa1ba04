"""Tables of the Slack OAuth install flow: one installation per workspace, and OAuth states.

With ``[slack] oauth = true`` one Hearth app serves many workspaces; each install through Slack's
OAuth flow stores the workspace's bot token here (``bot.adapters.slack_install_store``), so every
process sharing the database can act in every workspace, and a restart keeps them all.

One row per (client id, enterprise, team): a reinstall replaces the token in place. Ids Slack
leaves out (no enterprise, or no team for an org-wide install) are stored as ``""`` rather than
NULL, so the unique key holds on PostgreSQL too (NULLs never collide there).

Tokens are secrets: never logged (the store registers them with ``bot.logsafe``), never shown
by ``mydata``. Only bot tokens are kept: Hearth asks for no user scopes.

``slack_oauth_state`` holds the ``state`` values handed to installers' browsers; the redirect
consumes one exactly once, whichever process the browser comes back to.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import AwareDateTime


def _ts(**kw) -> Column:
    return Column(AwareDateTime(), **kw)


class SlackInstallation(SQLModel, table=True):
    __tablename__ = "slack_installation"
    __table_args__ = (
        UniqueConstraint("client_id", "enterprise_id", "team_id", name="uq_slack_installation"),
        Index("ix_slack_installation_community", "community_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    #: The Hearth community: the team id (the enterprise id for an org-wide install).
    community_id: str = Field(max_length=200)
    client_id: str = Field(max_length=100)
    app_id: str = Field(default="", max_length=100)
    enterprise_id: str = Field(default="", max_length=100)
    enterprise_name: str = ""
    team_id: str = Field(default="", max_length=100)
    team_name: str = ""
    is_enterprise_install: bool = False
    bot_token: str = Field(max_length=500)
    bot_id: str = Field(default="", max_length=100)
    bot_user_id: str = Field(default="", max_length=100)
    bot_scopes: str = ""
    #: Token rotation (when enabled on the Slack app): the refresh token and expiry.
    bot_refresh_token: str | None = Field(default=None, max_length=500)
    bot_token_expires_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    #: The member who installed the app (cleared when they use ``forgetme``).
    installer_user_id: str | None = Field(default=None, max_length=100)
    installed_at: datetime = Field(sa_column=_ts(nullable=False))


class SlackOAuthState(SQLModel, table=True):
    __tablename__ = "slack_oauth_state"
    __table_args__ = (UniqueConstraint("state", name="uq_slack_oauth_state"),)
    id: int | None = Field(default=None, primary_key=True)
    state: str = Field(max_length=200)
    expires_at: datetime = Field(sa_column=_ts(nullable=False))


MEMBER_COLUMNS: list[tuple[str, str, str]] = [
    ("slack_installation", "installer_user_id", "null"),
]
