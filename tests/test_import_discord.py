"""DiscordChatExporter import: old and new schemas, threads in their own files, system
messages, bots, reactions with and without users, streaming over chunk boundaries,
idempotency, overlap with live data, and each kind of broken input."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.classify import kinds_from_mask
from bot.cli import cli
from bot.clock import FakeClock
from bot.events import MemberRef, MessagePosted, PlaceRef
from bot.importers import ImportError_, discord_export, import_discord_exports, open_import_app
from bot.importers.discord_export import ExportFile, read_export
from storage.repos import C, E, M
from tests import import_helpers as helpers
from tests.conftest import START, make_settings
from tests.import_helpers import table_count

GUILD = "900000000000000001"
GENERAL = "900000000000000010"
THREAD = "900000000000000101"  # started from message 101
CATEGORY = "900000000000000002"
ALICE, BOB, CAROL, DAN, BOT = "100", "200", "300", "400", "999"


def author(uid: str, name: str, *, new: bool = True, bot: bool = False, roles=()) -> dict:
    data = {
        "id": uid,
        "name": name.lower(),
        "discriminator": "0000",
        "isBot": bot,
        "avatarUrl": "https://cdn/avatar.png",
    }
    if new:
        data["nickname"] = name
        data["roles"] = [{"id": "1", "name": r, "color": None, "position": 1} for r in roles]
    return data


def message(mid: str, who: dict, content: str, at: str, *, kind: str = "Default", **extra):
    return {
        "id": mid,
        "type": kind,
        "timestamp": at,
        "timestampEdited": None,
        "callEndedTimestamp": None,
        "isPinned": False,
        "content": content,
        "author": who,
        "attachments": [],
        "embeds": [],
        "stickers": [],
        "reactions": [],
        **extra,
    }


def export(channel: dict, messages: list[dict], *, guild_id: str = GUILD, count=None) -> dict:
    return {
        "guild": {"id": guild_id, "name": "Learning Design 101", "iconUrl": ""},
        "channel": channel,
        "dateRange": {"after": None, "before": None},
        "exportedAt": "2026-03-10T12:00:00+00:00",
        "messages": messages,
        "messageCount": len(messages) if count is None else count,
    }


def general_channel() -> dict:
    return {
        "id": GENERAL,
        "type": "GuildTextChat",
        "categoryId": CATEGORY,
        "category": "Course",
        "name": "general",
        "topic": None,
    }


def thread_channel() -> dict:
    return {
        "id": THREAD,
        "type": "GuildPublicThread",
        "categoryId": GENERAL,
        "category": "general",
        "name": "Week 1 reading",
        "topic": None,
    }


def new_schema_general() -> dict:
    alice = author(ALICE, "Alice", roles=("Facilitator",))
    bob = author(BOB, "Bob", roles=("Learner",))
    carol = author(CAROL, "Carol")
    bot = author(BOT, "Hearth", bot=True)
    return export(
        general_channel(),
        [
            message(
                "100",
                carol,
                "Joined the server.",
                "2026-03-02T08:00:00+00:00",
                kind="GuildMemberJoin",
            ),
            message(
                THREAD,
                alice,
                "What did you think of the reading?",
                "2026-03-02T10:00:00.1234567+01:00",
                reactions=[
                    {
                        "emoji": {
                            "id": "",
                            "name": "👍",
                            "code": "thumbsup",
                            "isAnimated": False,
                            "imageUrl": "",
                        },
                        "count": 2,
                        "users": [author(BOB, "Bob"), author(CAROL, "Carol")],
                    },
                    {
                        "emoji": {
                            "id": "555",
                            "name": "party",
                            "code": "party",
                            "isAnimated": True,
                            "imageUrl": "",
                        },
                        "count": 1,
                        "users": [author(BOT, "Hearth", bot=True)],
                    },
                ],
            ),
            message(
                "102",
                alice,
                "Started a thread.",
                "2026-03-02T09:00:01+00:00",
                kind="ThreadCreated",
                reference={"messageId": None, "channelId": THREAD, "guildId": GUILD},
            ),
            message(
                "103",
                bob,
                "Agree with Alice, thanks! Notes attached.",
                "2026-03-02T04:05:00-05:00",
                kind="Reply",
                reference={"messageId": THREAD, "channelId": GENERAL, "guildId": GUILD},
                mentions=[author(ALICE, "Alice")],
                attachments=[
                    {
                        "id": "1",
                        "url": "https://cdn/notes.pdf",
                        "fileName": "notes.pdf",
                        "fileSizeBytes": 10,
                    }
                ],
            ),
            message("104", bot, "Weekly summary posted", "2026-03-02T09:30:00+00:00"),
            message(
                "105",
                alice,
                "Pinned a message.",
                "2026-03-02T09:31:00+00:00",
                kind="ChannelPinnedMessage",
            ),
            message(
                "106",
                carol,
                "hey @Bob how do I cite (Smith, 2020)?",
                "2026-03-02T09:32:00+00:00",
                mentions=[author(BOB, "Bob")],
            ),
        ],
    )


def thread_file() -> dict:
    bob = author(BOB, "Bob")
    carol = author(CAROL, "Carol")
    return export(
        thread_channel(),
        [
            message(
                "201",
                bob,
                "",
                "2026-03-02T09:00:00+00:00",
                kind="21",
                reference={"messageId": THREAD, "channelId": GENERAL, "guildId": GUILD},
            ),
            message("202", carol, "I found chapter 2 hard going", "2026-03-02T11:00:00+00:00"),
            message(
                "203",
                bob,
                "Same, chapter 2 twice",
                "2026-03-02T11:05:00+00:00",
                kind="Reply",
                reference={"messageId": "202", "channelId": THREAD, "guildId": GUILD},
            ),
        ],
    )


def old_schema_file() -> dict:
    """An older export: no mentions, reference, reaction users, nickname or roles."""
    alice = author(ALICE, "Alice", new=False)
    dan = author(DAN, "Dan", new=False)
    data = export(
        general_channel(),
        [
            message(
                "300",
                alice,
                "Old style post",
                "2026-02-01T10:00:00+00:00",
                reactions=[{"emoji": {"id": None, "name": "👍"}, "count": 4}],
            ),
            message("301", dan, "hi <@!100> and <@300>", "2026-02-01T10:05:00+00:00"),
        ],
    )
    for m in data["messages"]:
        m.pop("reactions") if not m["reactions"] else None
    return data


def write(path: Path, data: dict | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        data if isinstance(data, str) else json.dumps(data, indent=2, ensure_ascii=False)
    )
    return path


def contributions(app, community=GUILD):
    return helpers.contributions(app, community)


def edges(app, community=GUILD):
    return helpers.edges(app, community)


# -- the happy paths ----------------------------------------------------------------------------


async def test_new_schema_channel_and_thread(tmp_path, import_app):
    # The thread file is named first: channels are still imported before threads.
    thread = write(tmp_path / "thread.json", thread_file())
    general = write(tmp_path / "general.json", new_schema_general())
    summary = await import_discord_exports(import_app, [thread, general])

    rows = await contributions(import_app)
    assert set(rows) == {THREAD, "103", "106", "202", "203"}
    opening = rows[THREAD]
    assert set(kinds_from_mask(opening["kinds"])) == {"idea", "question"}
    assert opening["created_at"] == datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC)
    reply = rows["103"]
    assert reply["created_at"] == datetime(2026, 3, 2, 9, 5, tzinfo=UTC)
    assert reply["reply_to_id"] == THREAD and reply["reply_to_member_id"] == ALICE
    assert reply["attachments"] == 1
    assert {"builds_on", "reference", "support"} <= set(kinds_from_mask(reply["kinds"]))
    # Thread messages sit in the parent channel, in the thread.
    follow_up = rows["202"]
    assert (follow_up["channel_id"], follow_up["thread_id"]) == (GENERAL, THREAD)
    assert follow_up["reply_to_member_id"] == ALICE  # answers the thread's opening post
    assert "idea" not in kinds_from_mask(follow_up["kinds"])
    assert rows["203"]["reply_to_member_id"] == CAROL

    assert await edges(import_app) == {
        ("reply", BOB, ALICE, ""),
        ("reaction", BOB, ALICE, "👍"),
        ("reaction", CAROL, ALICE, "👍"),
        ("mention", CAROL, BOB, ""),
        ("reply", CAROL, ALICE, ""),
        ("reply", BOB, CAROL, ""),
    }
    members = {m["member_id"]: m for m in await import_app.store.members(GUILD)}
    assert set(members) == {ALICE, BOB, CAROL}
    assert members[ALICE]["is_facilitator"] is True  # has the Facilitator role
    assert members[BOB]["is_facilitator"] is False
    assert members[CAROL]["joined_at"] == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    assert members[ALICE]["display_name"] == "Alice"
    community = await import_app.store.get_community(GUILD)
    assert community["platform"] == "discord"
    assert community["name"] == "Learning Design 101"
    assert {c["channel_id"] for c in await import_app.store.channels(GUILD)} == {GENERAL}

    s = summary.stats
    assert s.messages_read == 10
    assert summary.contributions_new == 5
    assert s.joins == 1
    assert s.reactions == 2
    assert s.skipped["bot posts"] == 1
    assert s.skipped["reactions by bots"] == 1
    assert s.skipped["system messages (ThreadCreated)"] == 1
    assert s.skipped["system messages (ChannelPinnedMessage)"] == 1
    assert s.skipped["system messages (ThreadStarterMessage)"] == 1
    assert s.threads == {(GENERAL, THREAD)}
    assert summary.edges_new["reply"] == 3


async def test_reply_targets_come_from_the_export_not_database_lookups(
    tmp_path, import_app, monkeypatch
):
    """Thread files may come before their parent channel and the opening post may be far
    back (out of the cog's recent-message cache): the first pass knows every author, so no
    reply falls back to a database lookup."""
    from bot.cogs.contributions import RecentAuthors

    cog = next(c for c in import_app.engine.cogs if c.name == "contributions")
    cog.recent = RecentAuthors(capacity=1)
    lookups = []
    original = import_app.store.message_origin

    async def counting(community_id, message_id):
        lookups.append(message_id)
        return await original(community_id, message_id)

    monkeypatch.setattr(import_app.store, "message_origin", counting)
    files = [
        write(tmp_path / "t.json", thread_file()),
        write(tmp_path / "g.json", new_schema_general()),
    ]
    await import_discord_exports(import_app, files)
    assert lookups == []
    rows = await contributions(import_app)
    assert rows["202"]["reply_to_member_id"] == ALICE
    assert rows["103"]["reply_to_member_id"] == ALICE


async def test_files_past_the_memory_budget_are_streamed_again_with_the_same_result(
    tmp_path, monkeypatch
):
    files = [
        write(tmp_path / "t.json", thread_file()),
        write(tmp_path / "g.json", new_schema_general()),
    ]
    results = []
    for budget in (10**6, 3, 0):
        monkeypatch.setattr(discord_export, "KEEP_EVENTS", budget)
        app = await open_import_app(
            make_settings(tmp_path / f"b{budget}.db"), clock=FakeClock(START), migrate=False
        )
        try:
            summary = await import_discord_exports(app, files)
            rows = {
                k: {c: v for c, v in r.items() if c != "id"}
                for k, r in (await contributions(app)).items()
            }
            results.append(
                (rows, await edges(app), dict(summary.stats.skipped), summary.stats.messages_read)
            )
        finally:
            await app.close()
    assert results[0] == results[1] == results[2]
    assert len(results[0][0]) == 5


async def test_old_schema_file(tmp_path, import_app):
    summary = await import_discord_exports(
        import_app, [write(tmp_path / "old.json", old_schema_file())]
    )
    rows = await contributions(import_app)
    assert set(rows) == {"300", "301"}
    assert ("mention", DAN, ALICE, "") in await edges(import_app)  # raw <@!100> in content
    assert summary.stats.skipped["reactions without users"] == 4
    members = {m["member_id"]: m for m in await import_app.store.members(GUILD)}
    assert members[DAN]["display_name"] == "dan"  # no nickname in old exports


async def test_a_folder_of_exports_and_direct_messages(tmp_path, import_app):
    folder = tmp_path / "exports"
    write(folder / "general.json", new_schema_general())
    write(folder / "threads" / "week1.json", thread_file())
    dm = export(
        {
            "id": "77",
            "type": "DirectTextChat",
            "categoryId": None,
            "category": None,
            "name": "bob",
            "topic": None,
        },
        [message("700", author(BOB, "Bob"), "private", "2026-03-02T10:00:00+00:00")],
        guild_id="0",
    )
    write(folder / "dm.json", dm)
    summary = await import_discord_exports(import_app, [folder])
    rows = await contributions(import_app)
    assert "700" not in rows and len(rows) == 5
    assert summary.stats.skipped["direct messages (not read: private)"] == 1
    assert any("direct-message" in note for note in summary.stats.notes)


async def test_progress_shows_counts(tmp_path, import_app):
    import io

    from rich.console import Console

    from bot.importers import ImportProgress

    out = io.StringIO()
    progress = ImportProgress(Console(file=out, width=120, force_terminal=True))
    await import_discord_exports(
        import_app, [write(tmp_path / "g.json", new_schema_general())], progress=progress
    )
    text = out.getvalue()
    assert "checking" in text and "importing" in text
    assert "7 messages" in text and "100%" in text


async def test_several_servers_need_a_community(tmp_path, import_app):
    a = write(tmp_path / "a.json", new_schema_general())
    other = new_schema_general()
    other["guild"]["id"] = "555"
    b = write(tmp_path / "b.json", other)
    with pytest.raises(ImportError_, match="2 servers"):
        await import_discord_exports(import_app, [a, b])
    await import_discord_exports(import_app, [a], community_id="merged")
    assert len(await contributions(import_app, "merged")) == 3


# -- streaming ------------------------------------------------------------------------------------


def test_streaming_matches_a_full_parse_across_chunk_boundaries(tmp_path, monkeypatch):
    data = new_schema_general()
    data["messages"].append(
        message(
            "107",
            author(BOB, "Bob"),
            "ünïcödé ✨ " * 30 + '"quoted" \\ end',
            "2026-03-02T09:33:00+00:00",
            extra_number=1234567890123,
        )
    )
    data["messageCount"] = len(data["messages"])
    path = write(tmp_path / "big.json", data)
    for chunk in (1, 7, 64, 1 << 20):
        monkeypatch.setattr(discord_export, "CHUNK", chunk)
        items = list(read_export(path))
        assert isinstance(items[0], ExportFile)
        assert items[0].channel_name == "general" and items[0].guild_id == GUILD
        assert [m for m, _pos in items[1:]] == data["messages"]


# -- idempotency and overlap ----------------------------------------------------------------


async def test_importing_twice_changes_nothing(tmp_path, import_app):
    files = [
        write(tmp_path / "g.json", new_schema_general()),
        write(tmp_path / "t.json", thread_file()),
    ]
    await import_discord_exports(import_app, files)
    before = (
        await contributions(import_app),
        await edges(import_app),
        await table_count(import_app, M),
    )
    again = await import_discord_exports(import_app, files)
    after = (
        await contributions(import_app),
        await edges(import_app),
        await table_count(import_app, M),
    )
    assert after == before
    assert again.contributions_new == 0 and sum(again.edges_new.values()) == 0


async def test_overlap_with_live_data_is_not_double_counted(tmp_path, import_app):
    live = MessagePosted(
        at=datetime(2026, 3, 2, 9, 5, tzinfo=UTC),
        author=MemberRef("discord", BOB, "Bob"),
        place=PlaceRef("discord", GUILD, GENERAL, channel_name="general"),
        message_id="103",
        text="Agree with Alice, thanks! Notes attached.",
        reply_to_id=THREAD,
        reply_to_author_id=ALICE,
        mentions=(ALICE,),
    )
    await import_app.engine.dispatch(live)
    await import_app.store.flush()
    summary = await import_discord_exports(
        import_app, [write(tmp_path / "g.json", new_schema_general())]
    )
    assert len(await contributions(import_app)) == 3
    assert summary.contributions_new == 2
    assert [e for e in await edges(import_app) if e[0] == "reply"] == [("reply", BOB, ALICE, "")]


# -- broken input --------------------------------------------------------------------------------


async def _nothing_written(app) -> None:
    await app.store.flush()
    assert await table_count(app, C) == 0
    assert await table_count(app, E) == 0


async def test_truncated_file_stops_before_anything_is_written(tmp_path, import_app):
    good = write(tmp_path / "good.json", new_schema_general())
    text = json.dumps(thread_file(), indent=2)
    cut = write(tmp_path / "cut.json", text[: int(len(text) * 0.6)])
    with pytest.raises(ImportError_) as exc:
        await import_discord_exports(import_app, [good, cut])
    assert str(cut) in str(exc.value)
    assert "truncated JSON" in str(exc.value)
    assert "expected a DiscordChatExporter JSON export" in str(exc.value)
    await _nothing_written(import_app)  # not even the sound file named before it


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("<!DOCTYPE html><html></html>", "found HTML"),
        ('[{"ts": "1.0", "text": "slack"}]', "found a JSON array"),
        ("", "empty"),
        ("id,author\n1,bob\n", "not JSON"),
        ('{"guild": {"id": "1"}, "messages": []}', "no guild and channel"),
        (
            '{"guild": {"id": "1"}, "channel": {"id": "2"}, "messages": [{"id": "1"}]}',
            "message 0 has no id or author",
        ),
        (
            '{"guild": {"id": "1"}, "channel": {"id": "2"}, "messages": [{"id": "1", '
            '"author": {"id": "2"}, "timestamp": "yesterday"}]}',
            "no valid timestamp",
        ),
        (
            '{"guild": {"id": "1"}, "channel": {"id": "2"}, "messages": [], "messageCount": 3}',
            "messageCount says 3",
        ),
        (
            '{"guild": {"id": "1"}, "channel": {"id": "2"}, "messages": [{"id": "1",,}]}',
            "invalid JSON",
        ),
        ('{"guild": {"id": "1"}, "channel": {"id": "2"}}', "no messages array"),
    ],
)
async def test_files_in_another_format(tmp_path, import_app, content, needle):
    path = write(tmp_path / "weird.json", content)
    with pytest.raises(ImportError_, match=needle) as exc:
        await import_discord_exports(import_app, [path])
    assert str(path) in str(exc.value)
    await _nothing_written(import_app)


def test_cli_imports_and_exits_2_on_broken_files(tmp_path):
    good = write(tmp_path / "g.json", new_schema_general())
    db = tmp_path / "cli.db"
    runner = CliRunner()
    result = runner.invoke(cli, ["import", "discord-export", str(good), "--db", str(db), "-q"])
    assert result.exit_code == 0, result.output
    assert "messages read" in result.output and "skipped: bot posts" in result.output
    bad = write(tmp_path / "bad.json", '{"guild": {"id": "1"}, "channel": {"id": "2"}, "mess')
    result = runner.invoke(cli, ["import", "discord-export", str(bad), "--db", str(db)])
    assert result.exit_code == 2
    assert str(bad) in result.output and "truncated JSON" in result.output
