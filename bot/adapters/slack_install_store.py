"""Slack OAuth installations and states kept in Hearth's own database.

slack_bolt's OAuth flow (``[slack] oauth = true``) needs an installation store, to save the bot
token a workspace grants at install time and to find it again for every request, and a state
store for the anti-forgery ``state`` of the install link. Both live here over the tables of
:mod:`storage.slack_install_models`, so every ``hearth run`` process sharing the database (SQLite
or PostgreSQL) serves every installed workspace, and a restart forgets none.

Bot tokens only (``installation_store_bot_only``): Hearth asks for no user scopes, so no user
token is ever stored. Tokens are registered with :mod:`bot.logsafe` as they are read or saved,
and no log line here names one.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from sqlalchemy import delete, select

from bot.clock import Clock
from bot.logsafe import register_secret
from storage.repos import M, Store
from storage.slack_install_models import SlackInstallation, SlackOAuthState

log = logging.getLogger(__name__)

SI = SlackInstallation.__table__
ST = SlackOAuthState.__table__


def _key(enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None):
    """(enterprise, team) as stored: "" for absent; an org-wide install has no team."""
    if is_enterprise_install:
        team_id = None
    return enterprise_id or "", team_id or ""


def _expires_at(epoch: int | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch else None


class HearthInstallationStore(AsyncInstallationStore):
    """Bot installations per workspace in ``slack_installation``.

    ``on_change(community_id)`` is called after a save or delete, so the adapter drops a cached
    client whose token just changed.
    """

    def __init__(
        self,
        store: Store,
        client_id: str,
        clock: Clock,
        *,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.client_id = client_id
        self.clock = clock
        self.on_change = on_change
        self._logger = logging.getLogger(__name__)

    @property
    def logger(self) -> logging.Logger:
        return self._logger

    # -- saving ---------------------------------------------------------------------------------

    async def async_save(self, installation: Installation) -> None:
        """Keep the workspace's bot token (the installer's user token, if any, is not kept)."""
        if not installation.bot_token:
            log.warning("Slack install without a bot token ignored (user scopes only?)")
            return
        await self._upsert(
            installation.to_bot(), installer=installation.user_id or None, overwrite_installer=True
        )

    async def async_save_bot(self, bot: Bot) -> None:
        await self._upsert(bot, installer=None, overwrite_installer=False)

    async def _upsert(self, bot: Bot, *, installer: str | None, overwrite_installer: bool) -> None:
        enterprise_id, team_id = _key(bot.enterprise_id, bot.team_id, bot.is_enterprise_install)
        community_id = team_id or enterprise_id
        if not community_id:
            raise ValueError("a Slack installation needs a team or an enterprise id")
        register_secret(bot.bot_token)
        if bot.bot_refresh_token:
            register_secret(bot.bot_refresh_token)
        row: dict[str, Any] = {
            "community_id": community_id,
            "client_id": self.client_id,
            "app_id": bot.app_id or "",
            "enterprise_id": enterprise_id,
            "enterprise_name": bot.enterprise_name or "",
            "team_id": team_id,
            "team_name": bot.team_name or "",
            "is_enterprise_install": bool(bot.is_enterprise_install),
            "bot_token": bot.bot_token,
            "bot_id": bot.bot_id or "",
            "bot_user_id": bot.bot_user_id or "",
            "bot_scopes": ",".join(bot.bot_scopes or []),
            "bot_refresh_token": bot.bot_refresh_token,
            "bot_token_expires_at": _expires_at(bot.bot_token_expires_at),
            "installer_user_id": installer,
            "installed_at": self.clock.now(),
        }
        overwrite = [k for k in row if k not in ("client_id", "enterprise_id", "team_id")]
        if not overwrite_installer:
            overwrite.remove("installer_user_id")  # a token refresh keeps who installed it
        stmt = self.store.dialect_insert(SI).values(**row)
        stmt = stmt.on_conflict_do_update(
            index_elements=["client_id", "enterprise_id", "team_id"],
            set_={k: stmt.excluded[k] for k in overwrite},
        )
        async with self.store.engine.begin() as conn:
            await conn.execute(stmt)
        log.info("Slack: stored the installation for %s (%s)", community_id, bot.team_name or "-")
        if self.on_change is not None:
            self.on_change(community_id)

    # -- finding --------------------------------------------------------------------------------

    async def _row(
        self, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None
    ) -> dict[str, Any] | None:
        enterprise, team = _key(enterprise_id, team_id, is_enterprise_install)
        query = select(SI).where(
            SI.c.client_id == self.client_id,
            SI.c.enterprise_id == enterprise,
            SI.c.team_id == team,
        )
        async with self.store.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        if row is None:
            return None
        register_secret(row["bot_token"])
        return dict(row)

    @staticmethod
    def _bot(row: dict[str, Any]) -> Bot:
        expires = row["bot_token_expires_at"]
        return Bot(
            app_id=row["app_id"] or None,
            enterprise_id=row["enterprise_id"] or None,
            enterprise_name=row["enterprise_name"] or None,
            team_id=row["team_id"] or None,
            team_name=row["team_name"] or None,
            bot_token=row["bot_token"],
            bot_id=row["bot_id"],
            bot_user_id=row["bot_user_id"],
            bot_scopes=row["bot_scopes"],
            bot_refresh_token=row["bot_refresh_token"],
            bot_token_expires_at=int(expires.timestamp()) if expires else None,
            is_enterprise_install=row["is_enterprise_install"],
            installed_at=row["installed_at"].timestamp(),
        )

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        row = await self._row(enterprise_id, team_id, is_enterprise_install)
        return self._bot(row) if row is not None else None

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        """The workspace's installation; a request for one user's own install finds none,
        because Hearth keeps no user tokens."""
        row = await self._row(enterprise_id, team_id, is_enterprise_install)
        if row is None or (user_id is not None and user_id != row["installer_user_id"]):
            return None
        bot = self._bot(row)
        return Installation(
            app_id=bot.app_id,
            enterprise_id=bot.enterprise_id,
            enterprise_name=bot.enterprise_name,
            team_id=bot.team_id,
            team_name=bot.team_name,
            bot_token=bot.bot_token,
            bot_id=bot.bot_id,
            bot_user_id=bot.bot_user_id,
            bot_scopes=bot.bot_scopes,
            bot_refresh_token=bot.bot_refresh_token,
            bot_token_expires_at=bot.bot_token_expires_at,
            user_id=row["installer_user_id"] or "",
            is_enterprise_install=bot.is_enterprise_install,
            token_type="bot",
            installed_at=bot.installed_at,
        )

    async def installed(self) -> list[dict[str, Any]]:
        """Every installed workspace: community id, team id and name, bot user id (no tokens)."""
        query = select(SI.c.community_id, SI.c.team_id, SI.c.team_name, SI.c.bot_user_id).where(
            SI.c.client_id == self.client_id
        )
        async with self.store.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(query.order_by(SI.c.id))).mappings()]

    async def token_for(self, community_id: str) -> tuple[str, str] | None:
        """(bot token, bot user id) of the workspace that is this community, if installed."""
        query = select(SI.c.bot_token, SI.c.bot_user_id).where(
            SI.c.client_id == self.client_id, SI.c.community_id == community_id
        )
        async with self.store.engine.connect() as conn:
            row = (await conn.execute(query.order_by(SI.c.id.desc()))).first()
        if row is None:
            return None
        register_secret(row[0])
        return row[0], row[1]

    async def community_of_member(self, user_id: str) -> str | None:
        """The installed workspace a Slack user belongs to (for a DM with no other context)."""
        query = (
            select(M.c.community_id)
            .join(SI, SI.c.community_id == M.c.community_id)
            .where(M.c.member_id == user_id, SI.c.client_id == self.client_id)
            .limit(1)
        )
        await self.store.flush()
        async with self.store.engine.connect() as conn:
            return (await conn.execute(query)).scalar()

    # -- deleting -------------------------------------------------------------------------------

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self._delete(enterprise_id, team_id)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        if user_id is not None:
            return  # a user's own tokens are revoked: Hearth never stored any
        await self._delete(enterprise_id, team_id)

    async def _delete(self, enterprise_id: str | None, team_id: str | None) -> None:
        enterprise, team = enterprise_id or "", team_id or ""
        async with self.store.engine.begin() as conn:
            await conn.execute(
                delete(SI).where(
                    SI.c.client_id == self.client_id,
                    SI.c.enterprise_id == enterprise,
                    SI.c.team_id == team,
                )
            )
        community_id = team or enterprise
        log.info("Slack: removed the installation for %s (uninstalled or revoked)", community_id)
        if self.on_change is not None:
            self.on_change(community_id)


class HearthOAuthStateStore(AsyncOAuthStateStore):
    """One-time ``state`` values of the install link, valid for ``expiration_seconds``.

    Stored in the database so the browser may come back to any process; consuming deletes the
    row, so a state works once.
    """

    def __init__(self, store: Store, clock: Clock, expiration_seconds: int = 600) -> None:
        self.store = store
        self.clock = clock
        self.expiration = timedelta(seconds=expiration_seconds)
        self._logger = logging.getLogger(__name__)

    @property
    def logger(self) -> logging.Logger:
        return self._logger

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        state = secrets.token_urlsafe(32)
        now = self.clock.now()
        async with self.store.engine.begin() as conn:
            # Expired states are swept here, so the table stays as small as the install rate.
            await conn.execute(delete(ST).where(ST.c.expires_at < now))
            await conn.execute(ST.insert().values(state=state, expires_at=now + self.expiration))
        return state

    async def async_consume(self, state: str) -> bool:
        if not isinstance(state, str) or not state or len(state) > 200:
            return False
        async with self.store.engine.begin() as conn:
            result = await conn.execute(
                delete(ST).where(ST.c.state == state, ST.c.expires_at >= self.clock.now())
            )
        return (result.rowcount or 0) == 1
