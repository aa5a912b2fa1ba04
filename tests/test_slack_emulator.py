"""The Slack emulators drive the real slack_sdk and slack-bolt clients on loopback."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.oauth.installation_store import FileInstallationStore
from slack_sdk.oauth.state_store import FileOAuthStateStore
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from tests.emulators.slack_server import (
    BOT_ID,
    BOT_USER_ID,
    TEAM_ID,
    SlackWebAPI,
    SocketModeServer,
    event_envelope,
    message_event,
    post_signed,
    reaction_event,
    serve_bolt_app,
    sign_request,
    slash_command_form,
    slash_command_payload,
)

SECRET = "s"


def _json_bytes(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


@pytest.fixture
async def api() -> AsyncIterator[SlackWebAPI]:
    async with SlackWebAPI() as server:
        yield server


def make_client(api: SlackWebAPI, **kwargs: Any) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=api.base_url, **kwargs)


def make_app(api: SlackWebAPI, **kwargs: Any) -> AsyncApp:
    # The token goes on the client: bolt ignores AsyncApp(token=...) when a client is given.
    return AsyncApp(client=make_client(api), signing_secret=SECRET, **kwargs)


# --------------------------------------------------------------------------- Web API


async def test_web_client_calls_are_answered_and_recorded(api: SlackWebAPI) -> None:
    api.add_user("U1", "ada", real_name="Ada Lovelace", is_admin=True, tz="Europe/London")
    client = make_client(api)

    auth = await client.auth_test()
    assert (auth["user_id"], auth["bot_id"], auth["team_id"]) == (BOT_USER_ID, BOT_ID, TEAM_ID)

    dm = await client.conversations_open(users="U1")
    dm_id = dm["channel"]["id"]
    assert dm_id.startswith("D")
    again = await client.conversations_open(users="U1")
    assert again["channel"]["id"] == dm_id and again["already_open"] is True

    first = await client.chat_postMessage(channel=dm_id, text="hi", blocks=[{"type": "divider"}])
    second = await client.chat_postMessage(channel="C1", text="second", thread_ts=first["ts"])
    assert float(second["ts"]) > float(first["ts"])
    assert first["message"]["user"] == BOT_USER_ID and first["channel"] == dm_id

    home = {
        "type": "home",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}],
    }
    published = await client.views_publish(user_id="U1", view=home)
    assert published["view"]["type"] == "home" and api.views["U1"]["blocks"] == home["blocks"]

    user = (await client.users_info(user="U1"))["user"]
    assert user["is_admin"] and user["tz"] == "Europe/London" and user["profile"]["real_name"]
    with pytest.raises(SlackApiError) as missing:
        await client.users_info(user="U404")
    assert missing.value.response["error"] == "user_not_found"

    methods = [c.method for c in api.calls]
    assert methods == [
        "auth.test",
        "conversations.open",
        "conversations.open",
        "chat.postMessage",
        "chat.postMessage",
        "views.publish",
        "users.info",
        "users.info",
    ]
    post = api.calls[3]
    assert post.token == "xoxb-test"
    assert post.params["channel"] == dm_id and post.params["blocks"] == [{"type": "divider"}]
    assert [m["text"] for m in api.messages(dm_id)] == ["hi"]


async def test_missing_token_and_injected_errors(api: SlackWebAPI) -> None:
    with pytest.raises(SlackApiError) as no_token:
        await AsyncWebClient(base_url=api.base_url).chat_postMessage(channel="C1", text="x")
    assert no_token.value.response["error"] == "not_authed"

    client = make_client(api)
    api.error_next("chat.postMessage", "channel_not_found")
    with pytest.raises(SlackApiError) as failed:
        await client.chat_postMessage(channel="C1", text="x")
    assert failed.value.response["error"] == "channel_not_found"
    assert (await client.chat_postMessage(channel="C1", text="x"))["ok"]


async def test_rate_limited_call_is_retried_by_the_retry_handler(api: SlackWebAPI) -> None:
    # slack_sdk sleeps Retry-After + random() seconds: "0" keeps the retry under a second.
    api.fail_next("chat.postMessage", status=429, headers={"Retry-After": "0"})
    client = make_client(api, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)])

    started = time.monotonic()
    response = await client.chat_postMessage(channel="C1", text="after the limit")
    assert response["ok"] and time.monotonic() - started < 1.5
    assert len(api.calls_to("chat.postMessage")) == 2
    assert [m["text"] for m in api.messages("C1")] == ["after the limit"]

    # Without a retry handler the 429 surfaces with its Retry-After header.
    api.fail_next("chat.postMessage", status=429, headers={"Retry-After": "7"})
    with pytest.raises(SlackApiError) as limited:
        await make_client(api).chat_postMessage(channel="C1", text="x")
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "7"
    assert limited.value.response["error"] == "ratelimited"


async def test_history_and_replies_paginate(api: SlackWebAPI) -> None:
    for i in range(25):
        api.add_message("C1", {"user": "U1", "text": f"m{i}", "ts": f"{1_000 + i}.000100"})
    api.add_message(
        "C1", {"user": "U2", "text": "reply", "ts": "1030.000100", "thread_ts": "1000.000100"}
    )
    client = make_client(api)

    pages, cursor = [], None
    while True:
        page = await client.conversations_history(channel="C1", limit=10, cursor=cursor)
        pages.append([m["text"] for m in page["messages"]])
        cursor = page["response_metadata"]["next_cursor"]
        assert page["has_more"] == bool(cursor)
        if not cursor:
            break
    assert [len(p) for p in pages] == [10, 10, 5]
    flat = [t for p in pages for t in p]
    assert flat == [f"m{i}" for i in reversed(range(25))]  # newest first, replies left out

    # slack_sdk's async iterator follows next_cursor on its own.
    iterated = [
        m["text"]
        async for page in await client.conversations_history(channel="C1", limit=7)
        for m in page["messages"]
    ]
    assert iterated == flat

    window = await client.conversations_history(channel="C1", oldest="1010.000100", latest="1013")
    assert [m["text"] for m in window["messages"]] == ["m12", "m11"]

    thread = await client.conversations_replies(channel="C1", ts="1000.000100")
    assert [m["text"] for m in thread["messages"]] == ["m0", "reply"]
    assert thread["messages"][0]["reply_count"] == 1

    with pytest.raises(SlackApiError) as unknown:
        await client.conversations_history(channel="C404")
    assert unknown.value.response["error"] == "channel_not_found"


# slack_sdk itself still passes aiohttp's deprecated BasicAuth for oauth.v2.access.
@pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")
async def test_oauth_v2_access_installs_a_workspace(api: SlackWebAPI, tmp_path: Path) -> None:
    api.oauth_client_id, api.oauth_client_secret = "cid", "csecret"
    api.add_oauth_code("code-1", team_id="T2", team_name="Second", bot_user_id="UB2", bot_id="BB2")
    client = AsyncWebClient(base_url=api.base_url)
    settings = AsyncOAuthSettings(
        client_id="cid",
        client_secret="csecret",
        scopes=["chat:write"],
        installation_store=FileInstallationStore(base_dir=str(tmp_path / "inst")),
        state_store=FileOAuthStateStore(expiration_seconds=60, base_dir=str(tmp_path / "st")),
    )
    flow = AsyncOAuthFlow(client=client, settings=settings)

    installation = await flow.run_installation("code-1")
    assert installation is not None
    assert (installation.team_id, installation.bot_user_id, installation.bot_id) == (
        "T2",
        "UB2",
        "BB2",
    )
    assert installation.bot_token and installation.bot_token.startswith("xoxb-")
    assert await flow.run_installation("code-1") is None  # codes are single-use

    with pytest.raises(SlackApiError) as bad:
        await client.oauth_v2_access(client_id="cid", client_secret="nope", code="code-2")
    assert bad.value.response["error"] == "bad_client_secret"


# --------------------------------------------------------------------------- bolt over HTTP


def test_sign_request_matches_slack_sdk_verifier() -> None:
    body = b'{"type":"event_callback"}'
    headers = sign_request(SECRET, body)
    assert SignatureVerifier(SECRET).is_valid_request(body, headers)
    assert headers["Content-Type"] == "application/json"
    assert sign_request(SECRET, b"a=b")["Content-Type"] == "application/x-www-form-urlencoded"


async def test_bolt_app_over_http(api: SlackWebAPI) -> None:
    app = make_app(api)
    heard: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def on_message(event: dict[str, Any], say: Any) -> None:
        await say(text=f"echo {event['text']}", thread_ts=event["ts"])
        await heard.put(event)

    async def on_reaction(event: dict[str, Any]) -> None:
        await heard.put(event)

    app.event("message")(on_message)
    app.event("reaction_added")(on_reaction)

    async with serve_bolt_app(app) as url:
        envelope = event_envelope(message_event("C1", "U1", "hello", "1700000000.000100"))
        body = _json_bytes(envelope)
        result = await post_signed(url, body, SECRET)
        assert result.status == 200
        event = await asyncio.wait_for(heard.get(), 5)
        assert event["text"] == "hello" and event["channel_type"] == "channel"

        reply = await api.wait_for_call("chat.postMessage")
        assert reply.params["text"] == "echo hello"
        assert reply.params["thread_ts"] == "1700000000.000100"
        assert reply.token == "xoxb-test"
        assert api.calls_to("auth.test"), "bolt authorised against the mock, not slack.com"

        reaction = event_envelope(reaction_event("U1", "tada", "C1", "1700000000.000100"))
        assert (await post_signed(url, _json_bytes(reaction), SECRET)).status == 200
        assert (await asyncio.wait_for(heard.get(), 5))["reaction"] == "tada"

        forged = await post_signed(url, body, "wrong-secret")
        assert forged.status == 401
        stale = await post_signed(url, body, SECRET, timestamp=int(time.time()) - 600)
        assert stale.status == 401

        challenge = b'{"type":"url_verification","challenge":"c-123","token":"t"}'
        verified = await post_signed(url, challenge, SECRET)
        assert verified.status == 200 and verified.json() == {"challenge": "c-123"}
    assert heard.empty()


async def test_bolt_slash_command_acks_within_the_request(api: SlackWebAPI) -> None:
    app = make_app(api)
    release = asyncio.Event()
    uploaded: list[dict[str, Any]] = []

    async def report(ack: Any, command: dict[str, Any], respond: Any, client: Any) -> None:
        await ack(f"Building the {command['text']} report...")
        await release.wait()  # the HTTP response must not wait for this
        done = await client.files_upload_v2(
            channel=command["channel_id"],
            content="name,score\nada,3\n",
            filename="report.csv",
            title="Weekly report",
            initial_comment="Here it is",
        )
        uploaded.append(done["file"])
        await respond(text="Report posted", response_type="ephemeral")

    app.command("/hearth")(report)

    async with serve_bolt_app(app) as url:
        body = slash_command_form(
            "/hearth", "weekly", "U1", "C1", TEAM_ID, api.response_url("cmd"), "13345.trigger"
        )
        result = await asyncio.wait_for(post_signed(url, body, SECRET), 3)
        assert result.status == 200
        assert result.text == "Building the weekly report..."

        release.set()
        assert await api.wait_for_response("cmd") == {
            "text": "Report posted",
            "response_type": "ephemeral",
        }

    assert [c.method for c in api.calls if c.method.startswith("files.")] == [
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]
    (file_obj,) = uploaded
    assert file_obj["title"] == "Weekly report" and file_obj["name"] == "report.csv"
    assert api.uploads[file_obj["id"]]["content"] == b"name,score\nada,3\n"
    (shared,) = api.messages("C1")
    assert shared["text"] == "Here it is" and shared["files"][0]["id"] == file_obj["id"]


# --------------------------------------------------------------------------- Socket Mode


async def test_socket_mode_handler_receives_envelopes_and_acks(api: SlackWebAPI) -> None:
    app = make_app(api)
    heard: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def on_message(event: dict[str, Any], say: Any) -> None:
        await heard.put(event)
        await say("seen")

    async def on_command(ack: Any, command: dict[str, Any]) -> None:
        await ack(f"pong {command['text']}")

    app.event("message")(on_message)
    app.command("/ping")(on_command)

    async with SocketModeServer(api) as socket_server:
        handler = AsyncSocketModeHandler(app, app_token="xapp-test")
        try:
            await handler.connect_async()
            await socket_server.wait_connected()
            (opened,) = [c for c in api.calls if c.method == "apps.connections.open"]
            assert opened.token == "xapp-test"

            event = message_event("C1", "U1", "over the socket", "1700000000.000200")
            envelope_id = await socket_server.send_envelope(
                type="events_api", payload=event_envelope(event), envelope_id="env-1"
            )
            assert await socket_server.wait_ack(envelope_id) == {"envelope_id": "env-1"}
            assert (await asyncio.wait_for(heard.get(), 5))["text"] == "over the socket"
            assert (await api.wait_for_call("chat.postMessage")).params["text"] == "seen"

            command_id = await socket_server.send_envelope(
                type="slash_commands", payload=slash_command_payload("/ping", "42")
            )
            ack = await socket_server.wait_ack(command_id)
            assert ack["payload"] == {"text": "pong 42"}

            # Slack recycles connections with a "disconnect" message; the client reconnects.
            await socket_server.send_disconnect()
            await socket_server.wait_connected(count=2)
            assert len(api.calls_to("apps.connections.open")) == 2
            again = await socket_server.send_envelope(
                payload=event_envelope(message_event("C1", "U1", "after", "1700000000.000300"))
            )
            await socket_server.wait_ack(again)
            assert (await asyncio.wait_for(heard.get(), 5))["text"] == "after"
        finally:
            await handler.close_async()
