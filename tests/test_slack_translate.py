"""Slack payloads -> neutral events, from recorded-style payloads (the shapes Slack sends).

Every message subtype Hearth meets is covered: counted (plain, thread_broadcast, file_share,
me_message), system (join, leave, topic, purpose), ignored (bots, hidden housekeeping),
edits and deletes; plus reactions, joins, slash commands, buttons, Block Kit rendering and
malformed payloads.
"""

from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.actions import Button, Field, RichContent, Section
from bot.adapters import slack_blocks
from bot.adapters.slack_translate import (
    COUNTED_SUBTYPES,
    SYSTEM_SUBTYPES,
    TranslationError,
    command_text,
    plain_text,
    split_message_id,
    translate_block_actions,
    translate_command,
    translate_event,
    translate_message,
)
from bot.events import (
    ButtonPressed,
    CommandInvoked,
    MemberJoined,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    ReactionAdded,
    ReactionRemoved,
)

TS = "1788771600.000100"  # 2026-09-07 09:00 UTC
PARENT = "1788771500.000200"
AT = datetime(2026, 9, 7, 9, 0, 0, 100, tzinfo=UTC)


def envelope(event: dict[str, Any], event_id: str = "Ev0PV52K25") -> dict[str, Any]:
    """An event_callback body as Slack posts it."""
    return {
        "token": "ZZZZZZWSxiZZZ2yIvs3peJ",
        "team_id": "T061EG9R6",
        "context_team_id": "T061EG9R6",
        "context_enterprise_id": None,
        "api_app_id": "A0MDYCDME",
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": 1788771600,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": "T061EG9R6",
                "user_id": "UBOT",
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-eyJldCI6Im1lc3NhZ2UiLCJ0aWQiOiJUMDYxRUc5UjYifQ",
    }


MESSAGE = {
    "client_msg_id": "6f1c4b2e-98a0-4c7e-a7d1-2f0c8e7d7a10",
    "type": "message",
    "text": "Has anyone read <https://doi.org/10.1000/182|Smith (2020)>? cc <@U0B2> &amp; <!here>",
    "user": "U0A1",
    "ts": TS,
    "blocks": [{"type": "rich_text", "block_id": "x1", "elements": []}],
    "team": "T061EG9R6",
    "channel": "C0LAN2Q65",
    "event_ts": TS,
    "channel_type": "channel",
}

THREAD_REPLY = {
    "client_msg_id": "0b6c2a4d-1111-4c7e-a7d1-2f0c8e7d7a10",
    "type": "message",
    "text": "Yes, thanks <@U0A1|ana>! It helped a lot.",
    "user": "U0B2",
    "ts": TS,
    "team": "T061EG9R6",
    "thread_ts": PARENT,
    "parent_user_id": "U0A1",
    "channel": "C0LAN2Q65",
    "event_ts": TS,
    "channel_type": "channel",
}


def test_channel_message_becomes_message_posted() -> None:
    event = translate_event(envelope(MESSAGE), bot_user_id="UBOT")
    assert isinstance(event, MessagePosted)
    assert event.at == AT and event.delivery_id == "Ev0PV52K25"
    assert event.message_id == f"C0LAN2Q65:{TS}"
    assert event.author.platform == "slack" and event.author.id == "U0A1"
    place = event.place
    assert (place.community_id, place.channel_id, place.thread_id) == (
        "T061EG9R6",
        "C0LAN2Q65",
        None,
    )
    assert not place.is_direct and not event.is_system
    assert event.mentions == ("U0B2",)
    assert event.reply_to_id is None
    # Links keep their URL (a reference), mentions and specials become readable, &amp; -> &.
    assert event.text == (
        "Has anyone read Smith (2020) (https://doi.org/10.1000/182)? cc @U0B2 & @here"
    )


def test_thread_reply_points_at_its_parent() -> None:
    event = translate_event(envelope(THREAD_REPLY))
    assert isinstance(event, MessagePosted)
    assert event.place.thread_id == f"C0LAN2Q65:{PARENT}"
    assert event.reply_to_id == f"C0LAN2Q65:{PARENT}"
    assert event.reply_to_author_id == "U0A1"
    assert event.mentions == ("U0A1",)


def test_private_channel_and_dm_types() -> None:
    group = {**MESSAGE, "channel": "G0PRIV", "channel_type": "group"}
    im = {**MESSAGE, "channel": "D0DM", "channel_type": "im"}
    mpim = {**MESSAGE, "channel": "G0MPIM", "channel_type": "mpim"}
    g = translate_event(envelope(group))
    assert isinstance(g, MessagePosted) and not g.place.is_direct
    assert g.message_id == f"G0PRIV:{TS}"
    for direct in (im, mpim):
        d = translate_event(envelope(direct))
        assert isinstance(d, MessagePosted) and d.place.is_direct


def test_counted_subtypes() -> None:
    assert {"thread_broadcast", "file_share", "me_message"} <= COUNTED_SUBTYPES
    broadcast = {
        "type": "message",
        "subtype": "thread_broadcast",
        "text": "Summary for everyone",
        "user": "U0B2",
        "ts": TS,
        "thread_ts": PARENT,
        "root": {"type": "message", "text": "Q?", "user": "U0A1", "ts": PARENT},
        "channel": "C0LAN2Q65",
        "event_ts": TS,
        "channel_type": "channel",
    }
    event = translate_event(envelope(broadcast))
    assert isinstance(event, MessagePosted)
    assert event.reply_to_id == f"C0LAN2Q65:{PARENT}" and event.reply_to_author_id == "U0A1"

    file_share = {
        "type": "message",
        "subtype": "file_share",
        "text": "My mind map",
        "files": [
            {
                "id": "F0S43PZDF",
                "name": "map.png",
                "title": "map.png",
                "mimetype": "image/png",
                "url_private": "https://files.slack.com/files-pri/T061EG9R6-F0S43PZDF/map.png",
            }
        ],
        "upload": False,
        "user": "U0A1",
        "display_as_bot": False,
        "ts": TS,
        "channel": "C0LAN2Q65",
        "event_ts": TS,
        "channel_type": "channel",
    }
    shared = translate_event(envelope(file_share))
    assert isinstance(shared, MessagePosted)
    (attachment,) = shared.attachments
    assert attachment.filename == "map.png" and attachment.content_type == "image/png"
    assert attachment.url.startswith("https://files.slack.com/")

    legacy = {**file_share, "files": None, "file": {"id": "F1", "name": "old.pdf"}}
    old = translate_event(envelope(legacy))
    assert isinstance(old, MessagePosted) and old.attachments[0].filename == "old.pdf"

    for broken in (True, "map.png", 3, {"name": "map.png"}):  # hypothesis found ``True``
        odd = translate_event(envelope({**file_share, "files": broken}))
        assert isinstance(odd, MessagePosted) and odd.attachments == ()

    me = translate_event(envelope({**MESSAGE, "subtype": "me_message", "text": "waves"}))
    assert isinstance(me, MessagePosted) and not me.is_system


@pytest.mark.parametrize(
    "subtype", ["channel_join", "channel_leave", "channel_topic", "channel_purpose", "group_join"]
)
def test_system_subtypes_are_not_contributions(subtype: str) -> None:
    assert subtype in SYSTEM_SUBTYPES
    payload = {
        "type": "message",
        "subtype": subtype,
        "ts": TS,
        "user": "U0C3",
        "text": "<@U0C3> has joined the channel",
        "inviter": "U0A1",
        "channel": "C0LAN2Q65",
        "event_ts": TS,
        "channel_type": "channel",
    }
    event = translate_event(envelope(payload))
    assert isinstance(event, MessagePosted) and event.is_system


def test_bot_and_housekeeping_messages_are_ignored(caplog: pytest.LogCaptureFixture) -> None:
    bot_message = {
        "type": "message",
        "subtype": "bot_message",
        "text": "Deploy finished",
        "ts": TS,
        "username": "Zapier",
        "bot_id": "B0ZAP",
        "channel": "C0LAN2Q65",
        "event_ts": TS,
        "channel_type": "channel",
    }
    app_bot = {**MESSAGE, "bot_id": "B0APP", "app_id": "A0APP"}
    ourselves = {**MESSAGE, "user": "UBOT"}
    slackbot = {**MESSAGE, "user": "USLACKBOT"}
    replied = {**MESSAGE, "subtype": "message_replied", "hidden": True}
    ekm = {**MESSAGE, "subtype": "ekm_access_denied"}
    with caplog.at_level(logging.DEBUG, logger="bot.adapters.slack_translate"):
        for payload in (bot_message, app_bot, ourselves, slackbot, replied, ekm):
            assert translate_event(envelope(payload), bot_user_id="UBOT") is None
    assert "ignoring Slack payload" in caplog.text and "message_replied" in caplog.text


def test_message_changed_and_deleted() -> None:
    changed = {
        "type": "message",
        "subtype": "message_changed",
        "message": {
            "client_msg_id": "6f1c4b2e",
            "type": "message",
            "text": "Edited: see <https://example.org> <@U0C3>",
            "user": "U0A1",
            "team": "T061EG9R6",
            "edited": {"user": "U0A1", "ts": "1788771700.000000"},
            "ts": TS,
        },
        "previous_message": {"type": "message", "text": "Original", "user": "U0A1", "ts": TS},
        "channel": "C0LAN2Q65",
        "hidden": True,
        "ts": "1788771700.000200",
        "event_ts": "1788771700.000200",
        "channel_type": "channel",
    }
    edited = translate_event(envelope(changed))
    assert isinstance(edited, MessageEdited)
    assert edited.message_id == f"C0LAN2Q65:{TS}"
    assert edited.text == "Edited: see https://example.org @U0C3"
    assert edited.mentions == ("U0C3",) and edited.author and edited.author.id == "U0A1"
    assert edited.attachments is None  # files untouched by this edit
    assert edited.at > AT

    unfurl = copy.deepcopy(changed)
    unfurl["previous_message"]["text"] = unfurl["message"]["text"]
    assert translate_event(envelope(unfurl)) is None

    tombstone = copy.deepcopy(changed)
    tombstone["message"]["subtype"] = "tombstone"
    gone = translate_event(envelope(tombstone))
    assert isinstance(gone, MessageDeleted) and gone.message_id == f"C0LAN2Q65:{TS}"

    deleted = {
        "type": "message",
        "subtype": "message_deleted",
        "previous_message": {"type": "message", "text": "Original", "user": "U0A1", "ts": TS},
        "channel": "C0LAN2Q65",
        "hidden": True,
        "deleted_ts": TS,
        "event_ts": "1788771800.000300",
        "ts": "1788771800.000300",
        "channel_type": "channel",
    }
    removed = translate_event(envelope(deleted))
    assert isinstance(removed, MessageDeleted)
    assert removed.message_id == f"C0LAN2Q65:{TS}" and removed.place.channel_id == "C0LAN2Q65"


def test_reactions() -> None:
    added = {
        "type": "reaction_added",
        "user": "U0C3",
        "reaction": "+1::skin-tone-2",
        "item": {"type": "message", "channel": "C0LAN2Q65", "ts": TS},
        "item_user": "U0B2",
        "event_ts": "1788771900.000400",
    }
    event = translate_event(envelope(added))
    assert isinstance(event, ReactionAdded)
    assert event.member.id == "U0C3" and event.message_author_id == "U0B2"
    assert event.emoji == "+1::skin-tone-2" and event.message_id == f"C0LAN2Q65:{TS}"

    removed = translate_event(envelope({**added, "type": "reaction_removed"}))
    assert isinstance(removed, ReactionRemoved) and removed.emoji == "+1::skin-tone-2"

    on_file = {**added, "item": {"type": "file", "file": "F0S43PZDF"}}
    assert translate_event(envelope(on_file)) is None
    assert translate_event(envelope({**added, "user": "UBOT"}), bot_user_id="UBOT") is None


def test_member_joined_channel_and_team_join() -> None:
    joined = {
        "type": "member_joined_channel",
        "user": "U0D4",
        "channel": "C0LAN2Q65",
        "channel_type": "C",
        "team": "T061EG9R6",
        "inviter": "U0A1",
        "event_ts": TS,
    }
    event = translate_event(envelope(joined))
    assert isinstance(event, MemberJoined)
    assert event.member.id == "U0D4" and event.community_id == "T061EG9R6" and event.at == AT
    assert translate_event(envelope({**joined, "user": "UBOT"}), bot_user_id="UBOT") is None

    team_join = {
        "type": "team_join",
        "user": {
            "id": "U0E5",
            "team_id": "T061EG9R6",
            "name": "ana.lima",
            "deleted": False,
            "real_name": "Ana Lima",
            "tz": "America/Sao_Paulo",
            "profile": {"display_name": "ana", "real_name": "Ana Lima"},
            "is_admin": False,
            "is_owner": False,
            "is_bot": False,
        },
        "cache_ts": 1788771600,
    }
    new = translate_event(envelope(team_join))  # no event_ts: the envelope's event_time
    assert isinstance(new, MemberJoined) and new.at == AT.replace(microsecond=0)
    assert new.member.display_name == "ana" and new.member.timezone == "America/Sao_Paulo"
    bot_join = copy.deepcopy(team_join)
    bot_join["user"]["is_bot"] = True
    assert translate_event(envelope(bot_join)) is None


def test_slash_command_form() -> None:
    form = {
        "token": "gIkuvaNzQIHg97ATvDxqgjtO",
        "team_id": "T061EG9R6",
        "team_domain": "course",
        "channel_id": "C0LAN2Q65",
        "channel_name": "general",
        "user_id": "U0A1",
        "user_name": "ana",
        "command": "/course",
        "text": "setup channels:<#C0LAN2Q65|general> facilitator:<@U0F6|fran> x&amp;y",
        "api_app_id": "A0MDYCDME",
        "is_enterprise_install": "false",
        "response_url": "https://hooks.slack.com/commands/1234/5678",
        "trigger_id": "13345224609.738474920.8088930838d88f008e0",
    }
    event = translate_command(form, at=AT)
    assert isinstance(event, CommandInvoked)
    assert event.name == "" and event.options is None
    assert event.text == "setup channels:#C0LAN2Q65 facilitator:<@U0F6|fran> x&y"
    assert event.interaction_id == form["trigger_id"]
    assert event.place.channel_name == "general" and not event.place.is_direct
    assert event.member.id == "U0A1" and event.member.display_name == "ana"
    dm = translate_command({**form, "channel_id": "D0DM", "channel_name": "directmessage"}, at=AT)
    assert dm.place.is_direct and dm.place.channel_name == ""
    with pytest.raises(TranslationError):
        translate_command({**form, "user_id": ""}, at=AT)


def test_block_actions() -> None:
    payload = {
        "type": "block_actions",
        "user": {"id": "U0A1", "username": "ana", "team_id": "T061EG9R6"},
        "api_app_id": "A0MDYCDME",
        "token": "x",
        "container": {"type": "message", "message_ts": TS, "channel_id": "D0DM"},
        "trigger_id": "1.2.3",
        "team": {"id": "T061EG9R6", "domain": "course"},
        "channel": {"id": "D0DM", "name": "directmessage"},
        "response_url": "https://hooks.slack.com/actions/T/1/x",
        "actions": [
            {
                "type": "button",
                "action_id": "nudges:snooze",
                "block_id": "b1",
                "text": {"type": "plain_text", "text": "Snooze"},
                "value": "7",
                "action_ts": TS,
            }
        ],
    }
    (pressed,) = translate_block_actions(payload, at=AT)
    assert isinstance(pressed, ButtonPressed)
    assert (pressed.action_id, pressed.value, pressed.member.id) == ("nudges:snooze", "7", "U0A1")
    assert pressed.place.is_direct and pressed.delivery_id == "1.2.3"
    with pytest.raises(TranslationError):
        translate_block_actions({**payload, "type": "view_submission"}, at=AT)


@pytest.mark.parametrize(
    "body",
    [
        {"type": "event_callback"},  # no event
        envelope({**MESSAGE, "channel": None}),
        envelope({**MESSAGE, "ts": "yesterday"}),
        envelope({**MESSAGE, "user": None}),
        envelope({**THREAD_REPLY, "thread_ts": 12}),
        envelope({"type": "reaction_added", "user": "U1", "reaction": "x"}),
        envelope({"type": "message", "subtype": "message_changed", "channel": "C1"}),
        envelope({"type": "message", "subtype": "message_deleted", "channel": "C1"}),
        envelope({"type": "team_join", "user": "U1"}),
        {
            **envelope(MESSAGE),
            "team_id": None,
            "context_team_id": None,
            "event": {**MESSAGE, "team": None},
        },
    ],
)
def test_malformed_payloads_raise_translation_error(body: dict[str, Any]) -> None:
    with pytest.raises(TranslationError):
        translate_event(body)


def test_unknown_event_types_are_ignored() -> None:
    assert translate_event(envelope({"type": "emoji_changed", "subtype": "add"})) is None


def test_history_message_needs_the_channel_from_the_caller() -> None:
    history = {"type": "message", "user": "U0A1", "text": "from history", "ts": TS}
    event = translate_message(history, team_id="T1", channel="C9", channel_type="channel")
    assert isinstance(event, MessagePosted) and event.message_id == f"C9:{TS}"
    with pytest.raises(TranslationError):
        translate_message(history, team_id="T1")


def test_text_helpers() -> None:
    assert plain_text(None) is None
    assert plain_text("a &lt;b&gt; <#C1|general> <mailto:x@y.org|x@y.org>") == (
        "a <b> #general x@y.org (mailto:x@y.org)"
    )
    assert plain_text("<!subteam^S1|@tutors> <!channel>") == "@tutors @channel"
    assert command_text("stats <https://x.org/a?b=1|link>") == "stats https://x.org/a?b=1"
    assert split_message_id("C1:1.2") == ("C1", "1.2")
    with pytest.raises(TranslationError):
        split_message_id("nope")


# -- Block Kit ---------------------------------------------------------------------------------


def test_long_rich_report_splits_into_valid_messages() -> None:
    body = "\n".join(f"Line {i}: a & b <c> " + "word " * 40 for i in range(60))  # ~14k chars
    rich = RichContent(
        title="Weekly summary " + "x" * 200,
        sections=tuple(
            Section(
                f"Section {i}",
                body if i == 0 else f"Body {i}",
                tuple(Field(f"f{j}", "v" * 2500) for j in range(12 if i == 1 else 0)),
            )
            for i in range(70)
        ),
        footer="Generated by Hearth",
    )
    buttons = tuple(Button(f"B{i}", f"summaries:b{i}", "v") for i in range(30))
    messages = slack_blocks.render_messages(rich=rich, buttons=buttons)
    assert len(messages) >= 2
    for message in messages:
        assert slack_blocks.check_blocks(message["blocks"]) == []
        assert message["blocks"][0]["type"] == "header"
        assert 0 < len(message["text"]) <= 3000
    assert messages[0]["blocks"][0]["text"]["text"].endswith(f"(1/{len(messages)})")
    assert messages[-1]["blocks"][-1]["type"] == "actions"  # buttons land last
    sections = [b["text"]["text"] for m in messages for b in m["blocks"] if "text" in b]
    joined = "\n".join(sections)
    # Nothing lost: every line of the long body survives (escaped) across the pieces.
    for i in range(60):
        assert f"Line {i}: a &amp; b &lt;c&gt;" in joined
    assert all(len(s) <= 3000 for s in sections)


def test_split_text_never_cuts_escapes_or_references() -> None:
    text = slack_blocks.escape(("<@U1> & " * 800) + "end")
    pieces = slack_blocks.split_text(text, 100)
    assert "".join(p.replace(" ", "") for p in pieces) == text.replace(" ", "")
    for piece in pieces:
        assert len(piece) <= 100
        assert piece.count("<") == piece.count(">")
        assert not piece.rstrip().endswith(("&", "&am", "&amp"))


def test_check_blocks_catches_what_slack_rejects() -> None:
    too_long = [slack_blocks.section("x" * 3001)]
    assert slack_blocks.check_blocks(too_long)
    assert slack_blocks.check_blocks([slack_blocks.section("x")] * 51)
    bad_button = {"type": "actions", "elements": [{"type": "button", "text": {}, "action_id": ""}]}
    assert slack_blocks.check_blocks([bad_button])
    assert slack_blocks.check_blocks([{"type": "mystery"}])
    view = slack_blocks.home_view("Home", "line\n" * 5000, "footer")
    assert slack_blocks.check_blocks(view["blocks"], max_blocks=100) == []
