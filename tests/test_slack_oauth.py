"""One Slack app, many workspaces: the OAuth install flow end to end, against the mock Web API.

A real HearthApp with ``[slack] oauth = true`` serves bolt's ``/slack/install`` and
``/slack/oauth_redirect``; the test plays the installer's browser (cookie and ``state``), the
mock answers ``oauth.v2.access`` with a new workspace's bot token, and the installation lands in
Hearth's own database. Then an event from the new workspace is handled, and actions are sent,
with that workspace's token, never another's; a second process on the same database serves the
workspace too; an uninstall deletes the token. No token appears in any log line.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import aiohttp
import pytest
from pydantic import ValidationError
from sqlalchemy import select

from bot.actions import DirectMessage, PostMessage
from bot.adapters.slack_adapter import (
    INSTALL_PATH,
    REDIRECT_PATH,
    SlackAdapter,
    build_slack_adapter,
)
from bot.app import HearthApp
from bot.config import ConfigError, SlackSettings
from bot.events import MemberRef, PlaceRef
from bot.logformat import make_handler
from bot.slack_cli import build_manifest
from storage.slack_install_models import SlackInstallation
from tests.conftest import make_settings
from tests.emulators.slack_server import (
    SlackWebAPI,
    event_envelope,
    message_event,
    post_signed,
    slash_command_form,
)

SIGNING = "oauth-signing-secret-5678"
CLIENT_ID = "1111.2222"
CLIENT_SECRET = "oauth-client-secret-abcdef123"
SI = SlackInstallation.__table__
# slack_sdk sends the client credentials of oauth.v2.access with aiohttp's BasicAuth.
pytestmark = pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")


@pytest.fixture(autouse=True)
def oauth_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_SLACK_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("HEARTH_SLACK_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("HEARTH_SLACK_SIGNING_SECRET", SIGNING)
    # No bot token at all: every workspace's token comes from the install flow.
    monkeypatch.delenv("HEARTH_SLACK_BOT_TOKEN", raising=False)


@pytest.fixture
async def api() -> AsyncIterator[SlackWebAPI]:
    async with SlackWebAPI() as server:
        server.oauth_client_id = CLIENT_ID
        server.oauth_client_secret = CLIENT_SECRET
        server.add_oauth_code(
            "code-t2",
            team_id="T2",
            team_name="Second Course",
            bot_user_id="UBOT2",
            bot_id="BBOT2",
            installer_user_id="U20",
        )
        server.add_user("U20", "zoe", real_name="Zoe Installer", team_id="T2")
        server.add_user("U21", "yan", real_name="Yan Learner", team_id="T2", tz="Asia/Tokyo")
        server.add_channel("C20", "general", members=["U20", "U21"])
        yield server


def oauth_settings(tmp_path, api: SlackWebAPI, **slack: Any):
    return make_settings(
        tmp_path / "hearth.db",
        slack={
            "enabled": True,
            "oauth": True,
            "api_base_url": api.base_url,
            "port": 0,
            "post_interval_seconds": 0,
            "catch_up_limit": 0,
            **slack,
        },
    )


@asynccontextmanager
async def running(settings, clock) -> AsyncIterator[tuple[HearthApp, SlackAdapter]]:
    app = await HearthApp.create(settings, clock=clock, migrate=True)
    adapter = build_slack_adapter(app)
    app.add_adapter(adapter)
    try:
        await adapter.start()
        yield app, adapter
    finally:
        await app.close()


def root_url(adapter: SlackAdapter) -> str:
    assert adapter.url is not None
    return adapter.url.rsplit("/slack/", 1)[0]


async def install(adapter: SlackAdapter, code: str) -> tuple[int, str, str]:
    """Play the installer's browser: open the install page, come back with code and state."""
    async with aiohttp.ClientSession() as browser:
        async with browser.get(root_url(adapter) + INSTALL_PATH) as page:
            assert page.status == 200
            html = await page.text()
            cookie = page.headers["Set-Cookie"]
        state = re.search(r"slack-app-oauth-state=([^;]+)", cookie).group(1)
        link = re.search(r'href="(https://slack\.com/oauth/v2/authorize\?[^"]+)"', html).group(1)
        query = parse_qs(urlparse(link.replace("&amp;", "&")).query)
        assert query["client_id"] == [CLIENT_ID] and query["state"] == [state]
        assert "chat:write" in query["scope"][0].split(",")
        redirect = f"{root_url(adapter)}{REDIRECT_PATH}?code={code}&state={state}"
        headers = {"Cookie": f"slack-app-oauth-state={state}"}
        async with browser.get(redirect, headers=headers) as back:
            return back.status, await back.text(), state


async def post_event(adapter: SlackAdapter, event: dict[str, Any], team: str, bot_user: str):
    body = json.dumps(event_envelope(event, team_id=team, bot_user_id=bot_user)).encode()
    return await post_signed(adapter.url, body, SIGNING)


def ts(clock, seconds: float = 0) -> str:
    return f"{clock.now().timestamp() + seconds:.6f}"


async def installations(app: HearthApp) -> list[dict[str, Any]]:
    async with app.store.engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(select(SI))).mappings()]


async def test_install_then_serve_the_new_workspace_with_its_own_token(
    tmp_path, api, clock, caplog
):
    caplog.set_level(logging.DEBUG)
    lines = io.StringIO()
    handler = make_handler(lines, "json")  # the handler `hearth run` installs
    logging.getLogger().addHandler(handler)
    try:
        async with running(oauth_settings(tmp_path, api), clock) as (app, adapter):
            await _scenario(tmp_path, api, clock, app, adapter)
    finally:
        logging.getLogger().removeHandler(handler)
    token = next(t for t in api.tokens if t.startswith("xoxb-T2"))
    assert token not in lines.getvalue() and CLIENT_SECRET not in lines.getvalue()
    ours = [r for r in caplog.records if r.name.startswith("bot.")]
    assert ours and all(token not in r.getMessage() for r in ours)
    assert any("stored the installation for T2" in r.getMessage() for r in ours)


async def _scenario(tmp_path, api, clock, app, adapter) -> None:
    assert adapter.installations is not None and adapter.team_id is None
    assert not api.calls_to("auth.test")  # no single bot token to check at start

    status, page, state = await install(adapter, "code-t2")
    assert status == 200, page
    (row,) = await installations(app)
    assert (row["community_id"], row["team_id"], row["team_name"]) == ("T2", "T2", "Second Course")
    assert (row["bot_user_id"], row["bot_id"], row["installer_user_id"]) == (
        "UBOT2",
        "BBOT2",
        "U20",
    )
    token = row["bot_token"]
    assert token.startswith("xoxb-T2") and token in api.tokens
    assert "chat:write" in row["bot_scopes"].split(",")

    # A state works once: replaying the redirect is refused and installs nothing new.
    async with aiohttp.ClientSession() as browser:
        replay = f"{root_url(adapter)}{REDIRECT_PATH}?code=code-t2&state={state}"
        async with browser.get(replay, headers={"Cookie": f"slack-app-oauth-state={state}"}) as r:
            assert r.status in (400, 401)
    assert len(await installations(app)) == 1

    # An event from the new workspace is authorised and handled with T2's token.
    t1 = ts(clock)
    result = await post_event(
        adapter,
        message_event("C20", "U21", "Hello from the second course? (Lee, 2019)", t1, team="T2"),
        "T2",
        "UBOT2",
    )
    assert result.status == 200
    await adapter.drain()
    contribution = await app.store.contribution("T2", f"C20:{t1}")
    assert contribution is not None and contribution["member_id"] == "U21"
    member = await app.store.get_member("T2", "U21")
    assert member["display_name"] == "yan" and member["timezone"] == "Asia/Tokyo"
    lookups = [c for c in api.calls if c.method == "users.info"]
    assert lookups and {c.token for c in lookups} == {token}

    # Actions for T2 go out with T2's token: a post, and a DM with no event behind it.
    before = len(api.calls)
    await app.runtime.deliver(
        [
            PostMessage(place=PlaceRef("slack", "T2", "C20"), text="Weekly summary"),
            DirectMessage(member=MemberRef("slack", "U21"), text="A thread you may like"),
        ]
    )
    sent = [c for c in api.calls[before:] if c.method in ("chat.postMessage", "conversations.open")]
    assert [c.method for c in sent] == [
        "chat.postMessage",
        "conversations.open",
        "chat.postMessage",
    ]
    assert {c.token for c in sent} == {token}
    assert app.runtime.failed == 0

    # A slash command from T2 is answered (through its response_url).
    form = slash_command_form(
        "/course", "me", "U21", "C20", "T2", api.response_url("t2"), "trig-t2"
    )
    assert (await post_signed(adapter.url, form, SIGNING)).status == 200
    answer = await api.wait_for_response("t2")
    await adapter.drain()
    assert "1 contribution," in answer["text"]

    # A workspace that never installed the app gets nothing recorded and no token used.
    await post_event(
        adapter, message_event("C30", "U31", "stranger", ts(clock, 5), team="T3"), "T3", "UBOT3"
    )
    await adapter.drain()
    assert await app.store.contribution("T3", f"C30:{ts(clock, 5)}") is None
    assert adapter.health() == {"mode": "http", "oauth": True, "workspaces": 1, "queued_events": 0}

    # A second process (or a restart) on the same database serves T2 straight away, and
    # catches up on what T2 said while no process listened, with T2's token.
    missed = ts(clock, 30)
    api.add_message("C20", {"user": "U20", "text": "Said while Hearth was down", "ts": missed})
    async with running(oauth_settings(tmp_path, api, catch_up_limit=100), clock) as (app2, other):
        assert other.catch_up_task is not None and await other.catch_up_task == 1
        await other.drain()
        assert await app2.store.contribution("T2", f"C20:{missed}") is not None
        history = [c for c in api.calls if c.method == "conversations.history"]
        assert history and {c.token for c in history} == {token}
        before = len(api.calls)
        await other.hearth.runtime.deliver(
            [PostMessage(place=PlaceRef("slack", "T2", "C20"), text="from process two")]
        )
        posted = [c for c in api.calls[before:] if c.method == "chat.postMessage"]
        assert len(posted) == 1 and posted[0].token == token

    # Uninstalling deletes the token; later sends to T2 fail loudly instead of using another.
    uninstalled = {"type": "app_uninstalled", "event_ts": ts(clock, 9)}
    assert (await post_event(adapter, uninstalled, "T2", "UBOT2")).status == 200
    assert await installations(app) == []
    assert "T2" not in adapter.workspaces
    await app.runtime.deliver([PostMessage(place=PlaceRef("slack", "T2", "C20"), text="x")])
    assert app.runtime.failed == 1


async def test_forgetme_clears_the_installer_but_keeps_the_workspace(tmp_path, api, clock):
    async with running(oauth_settings(tmp_path, api), clock) as (app, adapter):
        assert (await install(adapter, "code-t2"))[0] == 200
        t1 = ts(clock)
        await post_event(
            adapter, message_event("C20", "U20", "I installed it", t1, team="T2"), "T2", "UBOT2"
        )
        await adapter.drain()
        assert ("slack_installation", "installer_user_id") in await app.store.rows_mentioning("U20")
        await app.engine.erase_member("T2", "U20")
        assert await app.store.rows_mentioning("U20") == []
        (row,) = await installations(app)
        assert row["installer_user_id"] is None and row["bot_token"].startswith("xoxb-T2")


async def test_oauth_configuration_errors_are_clear(tmp_path, api, clock, monkeypatch):
    app = await HearthApp.create(oauth_settings(tmp_path, api), clock=clock, migrate=False)
    try:
        monkeypatch.delenv("HEARTH_SLACK_CLIENT_SECRET")
        with pytest.raises(ConfigError, match="HEARTH_SLACK_CLIENT_SECRET"):
            build_slack_adapter(app)
        # OAuth over socket mode is refused when the config is read, naming the key.
        with pytest.raises(ValidationError, match='needs mode = "http"'):
            SlackSettings.model_validate({"oauth": True, "mode": "socket"})
    finally:
        await app.close()


async def test_the_manifest_of_an_oauth_app(tmp_path, api, clock):
    settings = oauth_settings(tmp_path, api, public_url="https://hearth.example.org")
    app = await HearthApp.create(settings, clock=clock, migrate=False)
    try:
        manifest = build_manifest(settings, app.engine.registry)
    finally:
        await app.close()
    assert manifest["oauth_config"]["redirect_urls"] == [
        "https://hearth.example.org/slack/oauth_redirect"
    ]
    assert {"app_uninstalled", "tokens_revoked"} <= set(
        manifest["settings"]["event_subscriptions"]["bot_events"]
    )


async def test_an_install_state_expires_and_works_once(tmp_path, api, clock):
    async with running(oauth_settings(tmp_path, api), clock) as (_app, adapter):
        store = adapter.bolt.oauth_flow.settings.state_store
        stale = await store.async_issue()
        clock.advance(timedelta(minutes=11))  # states live ten minutes
        assert await store.async_consume(stale) is False
        fresh = await store.async_issue()
        assert await store.async_consume(fresh) is True
        assert await store.async_consume(fresh) is False
        assert await store.async_consume("") is False
