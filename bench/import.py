"""Benchmark the history importers against a raw ``json`` + ``sqlite3`` baseline, in one run.

Generates, in a temporary folder, a Slack workspace export (zip) and one DiscordChatExporter
file of N messages each (200,000 by default: threads, replies, mentions, reactions, files,
joins and bot posts mixed in), imports each into a fresh SQLite database through the real
importer, twice: with the whole app (every cog sees every event, as in production) and with
the recording path alone (engine, contributions cog, batched writer). The floor it compares
with parses the same files with ``json`` and inserts the same contribution and edge rows into
Hearth's own tables with ``sqlite3.executemany`` in one transaction. It also prints how long
each cog spent on the events, which is what limits the import.

    .venv/bin/python bench/import.py            # 200,000 messages each
    .venv/bin/python bench/import.py -n 20000   # quicker
    .venv/bin/python bench/import.py --profile  # cProfile the Slack import, top functions

Prints messages/s for each importer and its ratio to the baseline (goal: >= 20,000/s).
Figures are wall time: on a machine shared with other work they move from run to run, so
compare the ratios, measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import random
import sqlite3
import sys
import tempfile
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine  # noqa: E402

from bot.config import Settings  # noqa: E402
from bot.ids import slack_message_id  # noqa: E402
from bot.importers import (  # noqa: E402
    import_discord_exports,
    import_slack_export,
    open_import_app,
)
from storage.schema import metadata  # noqa: E402

GOAL = 20_000
TEXTS = [
    "I think spaced repetition matters more than the textbook admits.",
    "How do you all plan your study time around work?",
    "Interesting paper on retrieval practice: doi:10.1177/1529100612453266",
    "Thanks, this really helped me!",
    "Building on that, Dweck (2006) argues mindset shapes effort.",
    "Have you looked at https://example.org/guide? It explains it well.",
    "Same here. What worked for me was short daily sessions.",
    "Great summary, thank you for sharing.",
    "Why does the reading say motivation is social?",
    "My notes for week two are in the doc, happy to help if anything is unclear.",
]
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


# -- generators -----------------------------------------------------------------------------------


def make_slack(root: Path, n: int, rng: random.Random) -> Path:
    """A zipped Slack export with ``n`` messages over 20 channels and 60 users."""
    users = [f"U{i:06d}" for i in range(60)]
    channels = [(f"C{i:06d}", f"channel-{i}") for i in range(20)]
    per_channel = n // len(channels)
    archive = root / "slack-export.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr(
            "channels.json",
            json.dumps([{"id": cid, "name": name, "members": users} for cid, name in channels]),
        )
        zf.writestr(
            "users.json",
            json.dumps(
                [
                    {
                        "id": u,
                        "team_id": "TBENCH",
                        "name": u.lower(),
                        "real_name": f"Learner {u}",
                        "tz": "Europe/Berlin",
                        "profile": {"display_name": f"learner{u[-3:]}"},
                    }
                    for u in users
                ]
                + [{"id": "UBOT", "team_id": "TBENCH", "name": "bot", "is_bot": True}]
            ),
        )
        written = 0
        for c, (_cid, name) in enumerate(channels):
            count = per_channel if c < len(channels) - 1 else n - written
            day_messages: dict[str, list] = {}
            parents: list[tuple[str, str]] = []
            joined: set[str] = set()
            moment = START
            for _ in range(count):
                moment += timedelta(seconds=rng.randint(60, 900))
                stamp = f"{int(moment.timestamp())}.{rng.randint(0, 999999):06d}"
                who = rng.choice(users)
                msg: dict = {"type": "message", "user": who, "ts": stamp, "text": rng.choice(TEXTS)}
                roll = rng.random()
                if who not in joined:
                    joined.add(who)  # each member joins each channel once
                    msg["subtype"] = "channel_join"
                    msg["text"] = f"<@{who}> has joined the channel"
                elif roll < 0.03:
                    msg = {
                        "type": "message",
                        "subtype": "bot_message",
                        "bot_id": "B1",
                        "ts": stamp,
                        "text": "reminder",
                    }
                elif roll < 0.35 and parents:
                    parent_ts, parent_user = rng.choice(parents[-30:])
                    msg["thread_ts"] = parent_ts
                    msg["parent_user_id"] = parent_user
                elif roll < 0.55:
                    msg["thread_ts"] = stamp
                    parents.append((stamp, who))
                if rng.random() < 0.1:
                    msg["text"] += f" <@{rng.choice(users)}>"
                if rng.random() < 0.15:
                    msg["reactions"] = [{"name": "+1", "count": 2, "users": rng.sample(users, 2)}]
                if rng.random() < 0.05:
                    msg["files"] = [
                        {"id": "F1", "name": "notes.pdf", "url_private": "https://files/notes.pdf"}
                    ]
                day = moment.strftime("%Y-%m-%d")
                day_messages.setdefault(day, []).append(msg)
            for day, messages in day_messages.items():
                zf.writestr(f"{name}/{day}.json", json.dumps(messages, indent=4))
            written += count
    return archive


def make_discord(root: Path, n: int, rng: random.Random) -> Path:
    """One DiscordChatExporter file with ``n`` messages from 60 members."""
    authors = [
        {
            "id": str(10**17 + i),
            "name": f"learner{i}",
            "discriminator": "0000",
            "nickname": f"Learner {i}",
            "color": None,
            "isBot": False,
            "roles": [{"id": "1", "name": "Learner", "color": None, "position": 1}],
            "avatarUrl": "https://cdn.discordapp.com/embed/avatars/0.png",
        }
        for i in range(60)
    ]
    bot = dict(authors[0], id="999", name="bot", isBot=True)
    path = root / "discord-export.json"
    moment = START
    ids: list[tuple[str, dict]] = []
    joined: set[str] = set()
    with path.open("w", encoding="utf-8") as fh:
        fh.write(
            json.dumps(
                {
                    "guild": {"id": "800000000000000000", "name": "Bench Course", "iconUrl": ""},
                    "channel": {
                        "id": "800000000000000001",
                        "type": "GuildTextChat",
                        "categoryId": "800000000000000002",
                        "category": "Course",
                        "name": "general",
                        "topic": None,
                    },
                    "dateRange": {"after": None, "before": None},
                    "exportedAt": "2026-06-01T00:00:00+00:00",
                },
                indent=2,
            )[:-2]
        )
        fh.write(',\n  "messages": [\n')
        for i in range(n):
            moment += timedelta(seconds=rng.randint(5, 120))
            mid = str(900000000000000000 + i)
            who = rng.choice(authors)
            msg = {
                "id": mid,
                "type": "Default",
                "timestamp": moment.astimezone(UTC).isoformat(timespec="milliseconds"),
                "timestampEdited": None,
                "callEndedTimestamp": None,
                "isPinned": False,
                "content": rng.choice(TEXTS),
                "author": who,
                "attachments": [],
                "embeds": [],
                "stickers": [],
                "reactions": [],
                "mentions": [],
            }
            roll = rng.random()
            if who["id"] not in joined:
                joined.add(who["id"])  # each member joins once, before their first post
                msg["type"] = "GuildMemberJoin"
            elif roll < 0.02:
                msg["author"] = bot
            elif roll < 0.35 and ids:
                target_id, target = rng.choice(ids[-50:])
                msg["type"] = "Reply"
                msg["reference"] = {
                    "messageId": target_id,
                    "channelId": "800000000000000001",
                    "guildId": "800000000000000000",
                }
            if rng.random() < 0.1:
                msg["mentions"] = [rng.choice(authors)]
            if rng.random() < 0.15:
                msg["reactions"] = [
                    {
                        "emoji": {
                            "id": "",
                            "name": "👍",
                            "code": "thumbsup",
                            "isAnimated": False,
                            "imageUrl": "",
                        },
                        "count": 2,
                        "users": rng.sample(authors, 2),
                    }
                ]
            if rng.random() < 0.05:
                msg["attachments"] = [
                    {
                        "id": "1",
                        "url": "https://cdn/notes.pdf",
                        "fileName": "notes.pdf",
                        "fileSizeBytes": 1234,
                    }
                ]
            ids.append((mid, who))
            text = json.dumps(msg, indent=2, ensure_ascii=False)
            fh.write(("    " + text.replace("\n", "\n    ")) + (",\n" if i < n - 1 else "\n"))
        fh.write(f'  ],\n  "messageCount": {n}\n}}\n')
    return path


# -- baseline --------------------------------------------------------------------------------


def baseline_slack(archive: Path, db: Path) -> tuple[int, float]:
    """json-parse the export and insert the same contribution and edge rows with sqlite3."""
    started = time.perf_counter()
    contributions, edges = [], []
    with zipfile.ZipFile(archive) as zf:
        channels = {c["name"]: c["id"] for c in json.loads(zf.read("channels.json"))}
        for name in sorted(zf.namelist()):
            folder, _, day = name.partition("/")
            if not day:
                continue
            cid = channels[folder]
            for m in json.loads(zf.read(name)):
                ts, user = m["ts"], m.get("user")
                mid = slack_message_id(cid, ts)
                at = str(datetime.fromtimestamp(float(ts), UTC).replace(tzinfo=None))
                thread = m.get("thread_ts")
                reply_to = slack_message_id(cid, thread) if thread and thread != ts else None
                target = m.get("parent_user_id")
                contributions.append(
                    (
                        "TBENCH",
                        mid,
                        user,
                        cid,
                        reply_to,
                        reply_to,
                        target,
                        at,
                        1,
                        len(m.get("text", "").split()),
                        0,
                    )
                )
                if target and target != user:
                    edges.append(("TBENCH", "reply", user, target, mid, "", 1.0, at))
                for r in m.get("reactions", ()):
                    for u in r.get("users", ()):
                        edges.append(("TBENCH", "reaction", u, user, mid, r["name"], 0.25, at))
    _insert(db, contributions, edges)
    return len(contributions), time.perf_counter() - started


def baseline_discord(path: Path, db: Path) -> tuple[int, float]:
    """json-parse the file and insert the same contribution and edge rows with sqlite3."""
    started = time.perf_counter()
    data = json.loads(path.read_text(encoding="utf-8"))
    cid = data["channel"]["id"]
    guild = data["guild"]["id"]
    authors: dict[str, str] = {}
    contributions, edges = [], []
    for m in data["messages"]:
        mid, user = m["id"], m["author"]["id"]
        authors[mid] = user
        at = str(datetime.fromisoformat(m["timestamp"]).astimezone(UTC).replace(tzinfo=None))
        reply_to = (m.get("reference") or {}).get("messageId")
        target = authors.get(reply_to) if reply_to else None
        contributions.append(
            (
                guild,
                mid,
                user,
                cid,
                None,
                reply_to,
                target,
                at,
                1,
                len(m["content"].split()),
                len(m["attachments"]),
            )
        )
        if target and target != user:
            edges.append((guild, "reply", user, target, mid, "", 1.0, at))
        for mention in m.get("mentions", ()):
            edges.append((guild, "mention", user, mention["id"], mid, "", 0.5, at))
        for r in m.get("reactions", ()):
            for u in r.get("users", ()):
                edges.append((guild, "reaction", u["id"], user, mid, r["emoji"]["name"], 0.25, at))
    _insert(db, contributions, edges)
    return len(contributions), time.perf_counter() - started


def _insert(db: Path, contributions: list[tuple], edges: list[tuple]) -> None:
    """One transaction into Hearth's own schema (same tables, same indexes)."""
    engine = create_engine(f"sqlite:///{db}")
    metadata().create_all(engine)
    engine.dispose()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    with conn:
        conn.executemany(
            "INSERT OR IGNORE INTO contribution (community_id, message_id, member_id, "
            "channel_id, thread_id, reply_to_id, reply_to_member_id, created_at, kinds, "
            "word_count, attachments) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            contributions,
        )
        conn.executemany(
            "INSERT OR IGNORE INTO edge (community_id, kind, source_id, target_id, message_id, "
            "detail, weight, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            edges,
        )
    conn.close()


# -- the importers --------------------------------------------------------------------------------


def _timed(cog, spent: dict[str, float]):
    """Wrap a cog's on_event to add its wall time to ``spent`` (what limits the import)."""
    inner = cog.on_event

    async def on_event(event):
        started = time.perf_counter()
        try:
            return await inner(event)
        finally:
            spent[cog.name] = spent.get(cog.name, 0.0) + time.perf_counter() - started

    cog.on_event = on_event


async def run_importer(kind: str, source: Path, db: Path, *, cogs: set[str] | None = None):
    """Import into a fresh database; ``cogs`` keeps only those cogs (None: the whole app)."""
    settings = Settings.model_validate({"storage": {"path": str(db)}})
    app = await open_import_app(settings)
    if cogs is not None:
        app.engine.cogs = [c for c in app.engine.cogs if c.name in cogs]
    spent: dict[str, float] = {}
    for cog in app.engine.cogs:
        _timed(cog, spent)
    try:
        started = time.perf_counter()
        cpu = time.process_time()
        if kind == "slack":
            summary = await import_slack_export(app, source)
        else:
            summary = await import_discord_exports(app, [source])
        return summary, time.perf_counter() - started, time.process_time() - cpu, spent
    finally:
        await app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200_000, help="messages per export")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="cProfile the imports")
    parser.add_argument("--only", choices=("slack", "discord"), help="run one importer")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="hearth-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        slack = make_slack(root, args.n, rng)
        discord = make_discord(root, args.n, rng)
        print(
            f"generated {args.n:,} Slack and {args.n:,} Discord messages in "
            f"{time.perf_counter() - t0:.1f}s (zip {slack.stat().st_size / 1e6:.1f} MB, "
            f"json {discord.stat().st_size / 1e6:.1f} MB)"
        )
        rows = []
        for kind, source, baseline in (
            ("slack", slack, baseline_slack),
            ("discord", discord, baseline_discord),
        ):
            if args.only and kind != args.only:
                continue
            base_n, base_s = baseline(source, root / f"{kind}-baseline.db")
            base_rate = base_n / base_s
            for label, cogs in (("all cogs", None), ("recording path", {"contributions"})):
                profiler = cProfile.Profile() if args.profile else None
                if profiler:
                    profiler.enable()
                db = root / f"{kind}-{len(rows)}.db"
                summary, seconds, cpu, spent = asyncio.run(
                    run_importer(kind, source, db, cogs=cogs)
                )
                if profiler:
                    profiler.disable()
                    out = io.StringIO()
                    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
                    print(out.getvalue())
                rate = summary.stats.messages_read / seconds
                rows.append((kind, label, summary, seconds, cpu, rate, base_rate, spent))
        print()
        print(
            f"{'importer':<8} {'engine':<15} {'messages':>9} {'contrib.':>9} {'edges':>9} "
            f"{'seconds':>8} {'cpu s':>6} {'msg/s':>8} {'baseline':>9} {'ratio':>6}  "
            f"goal {GOAL:,}/s"
        )
        for kind, label, summary, seconds, cpu, rate, base_rate, _spent in rows:
            edges = sum(summary.edges_new.values())
            print(
                f"{kind:<8} {label:<15} {summary.stats.messages_read:>9,} "
                f"{summary.contributions_new:>9,} {edges:>9,} {seconds:>8.2f} {cpu:>6.1f} "
                f"{rate:>8,.0f} {base_rate:>9,.0f} {rate / base_rate:>6.2f}  "
                f"{'ok' if rate >= GOAL else 'below goal'}"
            )
        print()
        print("baseline: json parse + sqlite3 executemany of the same contribution and edge rows")
        print("into Hearth's own tables, one transaction. Wall seconds inside each cog's")
        print("on_event (its own queries included); the rest is reading, converting, the")
        print("engine and the writer:")
        for kind, label, _summary, seconds, _cpu, _rate, _base, spent in rows:
            ranked = sorted(spent.items(), key=lambda kv: -kv[1])
            parts = ", ".join(f"{k} {v:.2f}" for k, v in ranked if v >= 0.005)
            print(f"  {kind:<8} {label:<15} {parts}; rest {seconds - sum(spent.values()):.2f}")


if __name__ == "__main__":
    main()
