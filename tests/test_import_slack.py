"""Slack workspace export import: synthetic exports in every variant, idempotency, overlap
with live data, and each kind of broken input (nothing written, a message naming the file)."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.classify import kinds_from_mask
from bot.cli import cli
from bot.clock import FakeClock
from bot.events import MemberRef, MessagePosted, PlaceRef
from bot.ids import slack_message_id
from bot.importers import ImportError_, import_slack_export, open_import_app
from bot.importers.slack_export import ts_to_datetime
from storage.repos import CH, C, E, M
from tests import import_helpers as helpers
from tests.conftest import START, make_settings
from tests.import_helpers import table_count

TEAM = "T0COURSE"
GENERAL, RANDOM, PRIVATE = "C0GENERAL", "C0RANDOM", "G0PRIVATE"
ALICE, BOB, CAROL, DAN, BOT = "U0ALICE", "U0BOB", "U0CAROL", "U0DAN", "U0BOT"

# 2026-03-02 10:00 UTC and a day later
DAY1 = 1772445600
DAY2 = DAY1 + 86_400


def ts(base: int, n: int) -> str:
    return f"{base + n}.{n:06d}"


def user(uid: str, name: str, **extra) -> dict:
    return {
        "id": uid,
        "team_id": TEAM,
        "name": name.lower(),
        "real_name": name,
        "tz": "Europe/London",
        "profile": {"display_name": name, "real_name": name},
        **extra,
    }


USERS = [
    user(ALICE, "Alice", is_admin=True),
    user(BOB, "Bob", tz="America/New_York"),
    user(CAROL, "Carol"),
    user(DAN, "Dan", deleted=True),
    user(BOT, "Helper", is_bot=True),
    {"id": "USLACKBOT", "name": "slackbot", "team_id": TEAM, "is_bot": False},
]

PARENT_TS = ts(DAY1, 1)


def new_schema_days() -> dict[str, dict[str, list]]:
    """A modern export: threads (a reply in the next day file), subtypes, reactions, files."""
    general_day1 = [
        {
            "type": "message",
            "subtype": "channel_join",
            "user": CAROL,
            "ts": ts(DAY1, 0),
            "text": "<@U0CAROL> has joined the channel",
        },
        {
            "type": "message",
            "user": ALICE,
            "ts": PARENT_TS,
            "thread_ts": PARENT_TS,
            "reply_count": 2,
            "text": "What did you think of the reading?",
            "reactions": [
                {"name": "+1", "users": [BOB, CAROL], "count": 2},
                {"name": "eyes", "count": 3},
            ],
        },
        {
            "type": "message",
            "user": BOB,
            "ts": ts(DAY1, 2),
            "thread_ts": PARENT_TS,
            "parent_user_id": ALICE,
            "text": "Loved it, thanks <@U0ALICE>!",
        },
        {
            "type": "message",
            "subtype": "channel_topic",
            "user": ALICE,
            "ts": ts(DAY1, 3),
            "text": "set the channel topic: week 1",
        },
        {
            "type": "message",
            "subtype": "bot_message",
            "bot_id": "B01",
            "ts": ts(DAY1, 4),
            "text": "Reminder: reflections due",
        },
        {"type": "message", "user": BOT, "bot_id": "B02", "ts": ts(DAY1, 5), "text": "beep"},
        {
            "type": "message",
            "subtype": "file_share",
            "user": CAROL,
            "ts": ts(DAY1, 6),
            "text": "my notes",
            "files": [
                {
                    "id": "F1",
                    "name": "notes.pdf",
                    "mimetype": "application/pdf",
                    "url_private": "https://files/notes.pdf",
                }
            ],
        },
    ]
    general_day2 = [
        # A reply a day later, in another day file, and broadcast to the channel.
        {
            "type": "message",
            "subtype": "thread_broadcast",
            "user": CAROL,
            "ts": ts(DAY2, 1),
            "thread_ts": PARENT_TS,
            "parent_user_id": ALICE,
            "text": "Building on Bob: see (Smith, 2020)",
        },
        {
            "type": "message",
            "subtype": "channel_leave",
            "user": BOB,
            "ts": ts(DAY2, 2),
            "text": "<@U0BOB> has left the channel",
        },
        {"type": "message", "user": DAN, "ts": ts(DAY2, 3), "text": "hi from a deleted user"},
    ]
    private_day1 = [
        {"type": "message", "user": BOB, "ts": ts(DAY1, 10), "text": "private channel idea"},
    ]
    return {
        "general": {"2026-03-02.json": general_day1, "2026-03-03.json": general_day2},
        "facilitators": {"2026-03-02.json": private_day1},
    }


def write_export(
    root: Path,
    days: dict[str, dict[str, list]],
    *,
    users: list | None = None,
    channels: list | None = None,
    groups: list | None = None,
    dms: dict[str, dict[str, object]] | None = None,
) -> Path:
    """Write an unpacked Slack export folder; ``dms`` maps DM folder -> day file -> content."""
    root.mkdir(parents=True, exist_ok=True)
    channels = (
        channels
        if channels is not None
        else [
            {"id": GENERAL, "name": "general", "is_general": True, "members": [ALICE, BOB, CAROL]},
            {"id": RANDOM, "name": "random", "members": [ALICE]},
        ]
    )
    groups = groups if groups is not None else [{"id": PRIVATE, "name": "facilitators"}]
    (root / "channels.json").write_text(json.dumps(channels))
    (root / "groups.json").write_text(json.dumps(groups))
    (root / "users.json").write_text(json.dumps(USERS if users is None else users))
    if dms:
        (root / "dms.json").write_text(
            json.dumps([{"id": d, "members": [ALICE, BOB]} for d in dms])
        )
        for folder, files in dms.items():
            (root / folder).mkdir()
            for name, content in files.items():
                text = content if isinstance(content, str) else json.dumps(content)
                (root / folder / name).write_text(text)
    for folder, files in days.items():
        (root / folder).mkdir(exist_ok=True)
        for name, messages in files.items():
            text = messages if isinstance(messages, str) else json.dumps(messages, indent=1)
            (root / folder / name).write_text(text)
    return root


def zip_folder(folder: Path, target: Path, *, top: str = "") -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, top + path.relative_to(folder).as_posix())
    return target


def contributions(app, community=TEAM):
    return helpers.contributions(app, community)


def edges(app, community=TEAM):
    return helpers.edges(app, community)


def mid(channel: str, stamp: str) -> str:
    return slack_message_id(channel, stamp)


# -- the happy paths ----------------------------------------------------------------------------


async def test_new_schema_export_is_recorded_like_live_traffic(tmp_path, import_app):
    folder = write_export(tmp_path / "export", new_schema_days())
    summary = await import_slack_export(import_app, folder)

    rows = await contributions(import_app)
    parent = rows[mid(GENERAL, PARENT_TS)]
    reply = rows[mid(GENERAL, ts(DAY1, 2))]
    broadcast = rows[mid(GENERAL, ts(DAY2, 1))]
    shared = rows[mid(GENERAL, ts(DAY1, 6))]
    assert set(kinds_from_mask(parent["kinds"])) == {"idea", "question"}
    assert parent["thread_id"] is None  # as the live adapter records a thread's parent
    assert parent["created_at"] == datetime.fromtimestamp(DAY1 + 1, UTC).replace(microsecond=1)
    assert reply["reply_to_id"] == mid(GENERAL, PARENT_TS)
    assert reply["reply_to_member_id"] == ALICE
    assert reply["thread_id"] == mid(GENERAL, PARENT_TS)
    assert {"builds_on", "support"} <= set(kinds_from_mask(reply["kinds"]))
    assert "idea" not in kinds_from_mask(reply["kinds"])
    # thread_broadcast counts, and its thread parent is a day file earlier.
    assert broadcast["reply_to_member_id"] == ALICE
    assert {"builds_on", "reference"} <= set(kinds_from_mask(broadcast["kinds"]))
    # file_share counts, and the file is an attachment.
    assert shared["attachments"] == 1
    assert "reference" in kinds_from_mask(shared["kinds"])
    # A deleted user's own message still counts; private channels are imported.
    assert mid(GENERAL, ts(DAY2, 3)) in rows
    assert rows[mid(PRIVATE, ts(DAY1, 10))]["channel_id"] == PRIVATE
    # Joins, leaves, topics and bot posts are not contributions.
    assert len(rows) == 6

    assert await edges(import_app) == {
        ("reply", BOB, ALICE, ""),
        ("reply", CAROL, ALICE, ""),
        ("reaction", BOB, ALICE, "+1"),
        ("reaction", CAROL, ALICE, "+1"),
        # Bob's mention of Alice is also his reply target: one edge, the reply.
    }

    s = summary.stats
    assert s.messages_read == 11
    assert summary.contributions_new == 6
    assert summary.kinds_new["idea"] == 4
    assert summary.kinds_new["builds_on"] == 2
    assert s.reactions == 2
    assert s.skipped["reactions without users"] == 3
    assert s.skipped["channel joins"] == 1
    assert s.skipped["channel leaves"] == 1
    assert s.skipped["topic, purpose and name changes"] == 1
    assert s.skipped["bot posts"] == 2
    assert len(s.threads) == 1
    assert s.channels == {GENERAL, RANDOM, PRIVATE}
    assert summary.community_id == TEAM
    text = _render(summary)
    assert "skipped: bot posts" in text and "messages read" in text


async def test_imported_rows_equal_what_the_live_translator_records(tmp_path, import_app):
    """The same messages through the live adapter's translator (as catch-up would deliver
    them) and through the importer give identical contribution rows."""
    from bot.adapters.slack_translate import translate_message

    days = new_schema_days()
    live_team = "TLIVE"
    for day in days["general"].values():
        for msg in day:
            event = translate_message(msg, team_id=live_team, channel=GENERAL)
            if event is not None:
                await import_app.engine.dispatch(event)
    await import_slack_export(import_app, write_export(tmp_path / "export", days))
    ignore = {"id", "community_id"}
    live = {
        k: {c: v for c, v in row.items() if c not in ignore}
        for k, row in (await contributions(import_app, live_team)).items()
    }
    imported = {
        k: {c: v for c, v in row.items() if c not in ignore}
        for k, row in (await contributions(import_app)).items()
        if row["channel_id"] == GENERAL
    }
    assert imported == live
    assert len(live) == 5


def test_timestamps_match_the_live_translator_exactly():
    import random

    from bot.adapters.slack_translate import ts_to_datetime as live_ts

    rng = random.Random(5)
    stamps = ["0", "1712345678", "1712345678.1", "1712345678.000100", "1712345678.999999"]
    stamps += [f"{rng.randint(10**9, 2 * 10**9)}.{rng.randint(0, 999999):06d}" for _ in range(500)]
    for stamp in stamps:
        assert ts_to_datetime(stamp) == live_ts(stamp), stamp


async def test_members_are_mapped_with_names_timezones_join_dates_and_roles(tmp_path, import_app):
    folder = write_export(tmp_path / "export", new_schema_days())
    await import_slack_export(import_app, folder)
    store = import_app.store
    members = {m["member_id"]: m for m in await store.members(TEAM, include_bots=True)}
    # Bots and Slackbot are never members; the deleted user is there because they posted.
    assert set(members) == {ALICE, BOB, CAROL, DAN}
    assert members[ALICE]["display_name"] == "Alice"
    assert members[ALICE]["is_facilitator"] is True  # workspace admin
    assert members[BOB]["is_facilitator"] is False
    assert members[BOB]["timezone"] == "America/New_York"
    assert members[CAROL]["joined_at"] == ts_to_datetime(ts(DAY1, 0))
    community = await store.get_community(TEAM)
    assert community["platform"] == "slack"
    assert {c["channel_id"]: c["name"] for c in await store.channels(TEAM)} == {
        GENERAL: "general",
        RANDOM: "random",
        PRIVATE: "facilitators",
    }


async def test_old_export_without_threads_or_parent_ids(tmp_path, import_app):
    """Pre-2017 exports: no threads, a single ``file`` object; later ones without
    parent_user_id: the parent's author is found in an earlier day file."""
    parent = ts(DAY1, 1)
    days = {
        "general": {
            "2016-03-02.json": [
                {
                    "type": "message",
                    "user": ALICE,
                    "ts": parent,
                    "thread_ts": parent,
                    "text": "Opening question?",
                },
                {
                    "type": "message",
                    "subtype": "file_share",
                    "user": BOB,
                    "ts": ts(DAY1, 2),
                    "text": "uploaded a file",
                    "file": {"id": "F1", "name": "essay.docx"},
                },
            ],
            "2016-03-03.json": [
                {
                    "type": "message",
                    "user": CAROL,
                    "ts": ts(DAY2, 1),
                    "thread_ts": parent,
                    "text": "An answer without parent_user_id",
                },
                {"type": "message", "user": BOB, "ts": ts(DAY2, 2), "text": "plain, old style"},
            ],
        }
    }
    await import_slack_export(import_app, write_export(tmp_path / "old", days))
    rows = await contributions(import_app)
    answer = rows[mid(GENERAL, ts(DAY2, 1))]
    assert answer["reply_to_member_id"] == ALICE
    assert rows[mid(GENERAL, ts(DAY1, 2))]["attachments"] == 1
    assert ("reply", CAROL, ALICE, "") in await edges(import_app)


async def test_parents_are_resolved_from_the_export_without_database_lookups(
    tmp_path, import_app, monkeypatch
):
    """A long history pushes thread parents out of the contributions cog's recent-message
    cache; the importer still knows every parent's author from its first pass, so replies
    never fall back to a database lookup (a flush and a query per reply)."""
    from bot.cogs.contributions import RecentAuthors

    cog = next(c for c in import_app.engine.cogs if c.name == "contributions")
    cog.recent = RecentAuthors(capacity=1)
    lookups = []
    original = import_app.store.message_origin

    async def counting(community_id, message_id):
        lookups.append(message_id)
        return await original(community_id, message_id)

    monkeypatch.setattr(import_app.store, "message_origin", counting)
    parent = ts(DAY1, 1)
    days = {
        "general": {
            "2016-03-02.json": [
                {"type": "message", "user": ALICE, "ts": parent, "thread_ts": parent, "text": "Q"},
                {"type": "message", "user": BOB, "ts": ts(DAY1, 2), "text": "unrelated"},
            ],
            "2016-03-03.json": [
                {
                    "type": "message",
                    "user": CAROL,
                    "ts": ts(DAY2, 1),
                    "thread_ts": parent,
                    "text": "An answer without parent_user_id",
                },
            ],
        }
    }
    await import_slack_export(import_app, write_export(tmp_path / "old", days))
    assert lookups == []
    assert (await contributions(import_app))[mid(GENERAL, ts(DAY2, 1))][
        "reply_to_member_id"
    ] == ALICE


async def test_exports_past_the_memory_budget_are_read_again_with_the_same_result(
    tmp_path, monkeypatch
):
    """Events are kept between the passes only up to KEEP_EVENTS; past it, day files are
    read a second time. Both ways record the same rows."""
    from bot.importers import slack_export

    folder = write_export(tmp_path / "export", new_schema_days())
    results = []
    for budget in (10**6, 2, 0):
        monkeypatch.setattr(slack_export, "KEEP_EVENTS", budget)
        app = await open_import_app(
            make_settings(tmp_path / f"b{budget}.db"), clock=FakeClock(START), migrate=False
        )
        try:
            summary = await import_slack_export(app, folder)
            rows = {
                k: {c: v for c, v in r.items() if c != "id"}
                for k, r in (await contributions(app)).items()
            }
            results.append((rows, await edges(app), dict(summary.stats.skipped)))
        finally:
            await app.close()
    assert results[0] == results[1] == results[2]
    assert len(results[0][0]) == 6


async def test_zip_and_folder_give_the_same_result(tmp_path):
    folder = write_export(tmp_path / "export", new_schema_days())
    archive = zip_folder(
        folder,
        tmp_path / "Learning Circle Slack export Mar 2 2026 - Mar 3 2026.zip",
        top="Learning Circle Slack export Mar 2 2026 - Mar 3 2026/",
    )
    results = []
    for name, source in (("a", folder), ("b", archive)):
        app = await open_import_app(
            make_settings(tmp_path / f"{name}.db"), clock=FakeClock(START), migrate=False
        )
        try:
            await import_slack_export(app, source)
            results.append(
                (
                    {
                        k: (v["kinds"], v["reply_to_member_id"])
                        for k, v in (await contributions(app)).items()
                    },
                    await edges(app),
                )
            )
            community = await app.store.get_community(TEAM)
        finally:
            await app.close()
    assert results[0] == results[1]
    assert len(results[0][0]) == 6
    # A new community is named after the workspace when Slack's file name says it.
    assert community["name"] == "Learning Circle"


async def test_direct_messages_are_never_read(tmp_path, import_app):
    # The DM day file is not even valid JSON: it is not opened at all.
    folder = write_export(
        tmp_path / "export",
        new_schema_days(),
        dms={"D0ALICEBOB": {"2026-03-02.json": "[{not json"}},
    )
    summary = await import_slack_export(import_app, folder)
    assert all(not k.startswith("D0") for k in await contributions(import_app))
    assert summary.stats.skipped["direct and group messages (not read: private)"] == 1
    assert any("private" in note for note in summary.stats.notes)


async def test_community_option_and_missing_team_id(tmp_path, import_app):
    bare_users = [{k: v for k, v in u.items() if k != "team_id"} for u in USERS]
    folder = write_export(tmp_path / "export", new_schema_days(), users=bare_users)
    with pytest.raises(ImportError_, match="--community"):
        await import_slack_export(import_app, folder)
    summary = await import_slack_export(import_app, folder, community_id="course-2026")
    assert summary.community_id == "course-2026"
    assert len(await contributions(import_app, "course-2026")) == 6


async def test_export_without_users_json(tmp_path, import_app):
    """users.json is optional: the team comes from the messages, names from user_profile."""
    days = {
        "general": {
            "2026-03-02.json": [
                {
                    "type": "message",
                    "user": ALICE,
                    "team": TEAM,
                    "ts": ts(DAY1, 1),
                    "text": "hello",
                    "user_profile": {"display_name": "Ali", "real_name": "Alice A."},
                }
            ]
        },
        "old-stuff": {"2026-03-02.json": [{"ts": ts(DAY1, 2), "user": BOB, "text": "x"}]},
    }
    folder = write_export(tmp_path / "export", days)
    (folder / "users.json").unlink()
    summary = await import_slack_export(import_app, folder)
    assert summary.community_id == TEAM
    assert (await import_app.store.get_member(TEAM, ALICE))["display_name"] == "Ali"
    assert list(await contributions(import_app)) == [mid(GENERAL, ts(DAY1, 1))]
    assert any("old-stuff" in note for note in summary.stats.notes)


# -- idempotency and overlap -----------------------------------------------------------------------


async def test_importing_twice_changes_nothing(tmp_path, import_app):
    folder = write_export(tmp_path / "export", new_schema_days())
    await import_slack_export(import_app, folder)
    before = (
        await contributions(import_app),
        await edges(import_app),
        await table_count(import_app, M),
        await table_count(import_app, CH),
    )
    again = await import_slack_export(import_app, folder)
    after = (
        await contributions(import_app),
        await edges(import_app),
        await table_count(import_app, M),
        await table_count(import_app, CH),
    )
    assert after == before
    assert again.contributions_new == 0
    assert sum(again.edges_new.values()) == 0
    assert again.members_new == 0
    assert "already recorded" in _render(again)


async def test_overlap_with_live_data_is_not_double_counted(tmp_path, import_app):
    """The live Slack adapter records Bob's reply first (same id convention): the import
    adds everything else and leaves it alone."""
    live = MessagePosted(
        at=ts_to_datetime(ts(DAY1, 2)),
        author=MemberRef("slack", BOB, "Bob"),
        place=PlaceRef(
            "slack", TEAM, GENERAL, thread_id=mid(GENERAL, PARENT_TS), channel_name="general"
        ),
        message_id=mid(GENERAL, ts(DAY1, 2)),
        text="Loved it, thanks <@U0ALICE>!",
        reply_to_id=mid(GENERAL, PARENT_TS),
        reply_to_author_id=ALICE,
        mentions=(ALICE,),
    )
    await import_app.engine.dispatch(live)
    await import_app.store.flush()
    summary = await import_slack_export(import_app, write_export(tmp_path / "e", new_schema_days()))
    rows = await contributions(import_app)
    assert len(rows) == 6
    assert summary.contributions_new == 5
    replies = [e for e in await edges(import_app) if e[0] == "reply" and e[1] == BOB]
    assert replies == [("reply", BOB, ALICE, "")]


# -- broken input: named file, nothing written ----------------------------------------------


async def _nothing_written(app) -> None:
    await app.store.flush()
    assert await table_count(app, C) == 0
    assert await table_count(app, E) == 0


async def test_corrupt_zip(tmp_path, import_app):
    bad = tmp_path / "export.zip"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip archive" * 10)
    with pytest.raises(ImportError_) as info:
        await import_slack_export(import_app, bad)
    assert str(bad) in str(info.value)
    assert "zip" in str(info.value) and "expected a Slack workspace export" in str(info.value)
    await _nothing_written(import_app)


async def test_damaged_member_inside_a_zip(tmp_path, import_app):
    folder = write_export(tmp_path / "export", new_schema_days())
    archive = zip_folder(folder, tmp_path / "export.zip")
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo("general/2026-03-03.json")
    # Flip bytes inside that member's compressed data: its CRC check fails on read.
    start = info.header_offset + 30 + len(info.filename) + 5
    for i in range(start, start + 8):
        data[i] ^= 0xFF
    archive.write_bytes(bytes(data))
    with pytest.raises(ImportError_) as exc:
        await import_slack_export(import_app, archive)
    assert "general/2026-03-03.json" in str(exc.value)
    await _nothing_written(import_app)


async def test_truncated_day_file_stops_before_anything_is_written(tmp_path, import_app):
    days = new_schema_days()
    good = json.dumps(days["general"]["2026-03-03.json"], indent=1)
    days["general"]["2026-03-03.json"] = good[: len(good) // 2]
    folder = write_export(tmp_path / "export", days)
    with pytest.raises(ImportError_) as exc:
        await import_slack_export(import_app, folder)
    message = str(exc.value)
    assert str(folder / "general" / "2026-03-03.json") in message
    assert "truncated JSON" in message and "expected a JSON array of Slack messages" in message
    # Not even the sound files before it.
    await _nothing_written(import_app)
    assert await import_app.store.get_community(TEAM) is None


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ({"messages": []}, "found a JSON object"),
        ([{"text": "no ts"}], "message 0 has no valid ts"),
        (["just a string"], "item 0 is a JSON str"),
        ([{"ts": "1.0", "user": ALICE, "text": "x", "reactions": "lots"}], "reactions"),
    ],
)
async def test_day_file_in_another_format(tmp_path, import_app, content, needle):
    days = new_schema_days()
    days["general"]["2026-03-03.json"] = content
    folder = write_export(tmp_path / "export", days)
    with pytest.raises(ImportError_, match=needle) as exc:
        await import_slack_export(import_app, folder)
    assert "2026-03-03.json" in str(exc.value)
    await _nothing_written(import_app)


async def test_not_a_slack_export_at_all(tmp_path, import_app):
    empty = tmp_path / "photos"
    empty.mkdir()
    (empty / "a.json").write_text("{}")
    with pytest.raises(ImportError_, match="no channels.json"):
        await import_slack_export(import_app, empty)
    with pytest.raises(ImportError_, match="no such file"):
        await import_slack_export(import_app, tmp_path / "missing.zip")
    broken_channels = write_export(tmp_path / "e2", {}, channels=[])
    (broken_channels / "channels.json").write_text('{"channels": ')
    with pytest.raises(ImportError_, match="channels.json: truncated JSON"):
        await import_slack_export(import_app, broken_channels)


# -- the command line ------------------------------------------------------------------------------


def test_cli_imports_and_reports(tmp_path):
    folder = write_export(tmp_path / "export", new_schema_days())
    db = tmp_path / "cli.db"
    runner = CliRunner()
    result = runner.invoke(cli, ["import", "slack-export", str(folder), "--db", str(db), "-q"])
    assert result.exit_code == 0, result.output
    assert "messages read" in result.output
    assert "contributions recorded (new)" in result.output
    assert "skipped: channel joins" in result.output
    assert f"hearth report --db {db} --community {TEAM}" in result.output
    again = runner.invoke(cli, ["import", "slack-export", str(folder), "--db", str(db), "-q"])
    assert again.exit_code == 0
    assert "already recorded or not tracked" in again.output
    # Then `hearth report` shows the imported course.
    report = runner.invoke(
        cli, ["report", "--db", str(db), "--community", TEAM, "--since", "2026-03-01"]
    )
    assert report.exit_code == 0, report.output
    assert "Alice" in report.output and "Carol" in report.output


def test_cli_broken_export_exits_2_naming_the_file(tmp_path):
    bad = tmp_path / "export.zip"
    bad.write_bytes(b"garbage")
    result = CliRunner().invoke(
        cli, ["import", "slack-export", str(bad), "--db", str(tmp_path / "x.db"), "-q"]
    )
    assert result.exit_code == 2
    assert str(bad) in result.output
    assert "Traceback" not in result.output


def _render(summary) -> str:
    from rich.console import Console

    console = Console(record=True, width=120)
    summary.render(console)
    return console.export_text()
