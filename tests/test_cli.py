"""The command line: demo, console REPL lines, db upgrade, and `hearth run` stopping cleanly
on SIGTERM with its queued writes flushed."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import cli
from bot.console_repl import Repl
from tests.conftest import MIGRATION_HEAD, _pg_reachable, postgres_url

ROOT = Path(__file__).resolve().parents[1]


def test_db_upgrade_creates_and_is_idempotent(tmp_path):
    db = tmp_path / "fresh.db"
    runner = CliRunner()
    first = runner.invoke(cli, ["db", "upgrade", "--db", str(db)])
    assert first.exit_code == 0, first.output
    assert f"created the schema (revision {MIGRATION_HEAD})" in first.output
    second = runner.invoke(cli, ["db", "upgrade", "--db", str(db)])
    assert second.exit_code == 0
    assert f"already up to date (revision {MIGRATION_HEAD})" in second.output
    tables = {r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master")}
    assert {"contribution", "edge", "member", "job_claim", "alembic_version"} <= tables


def test_db_upgrade_unreachable_postgres_exits_2(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[storage]\ndatabase_url = "postgresql+asyncpg://nobody:pw@127.0.0.1:1/x"\n')
    result = CliRunner().invoke(cli, ["db", "upgrade", "--config", str(config)])
    assert result.exit_code == 2
    assert "cannot reach the database" in result.output
    assert "pw" not in result.output  # the password is never printed


# Each command that opens the database, given a file that is not one and a folder that does not
# exist: one line naming it and exit 2, never a traceback, and nothing created.
DATABASE_COMMANDS = [
    ["console"],
    ["db", "upgrade"],
    ["import", "slack-export", "."],
    ["report"],
]


@pytest.mark.parametrize("command", DATABASE_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_file_that_is_not_a_database_is_named(tmp_path, command):
    broken = tmp_path / "notes.db"
    broken.write_text("this is not SQLite\n")
    result = CliRunner().invoke(cli, [*command, "--db", str(broken)], input="")
    assert result.exit_code == 2, result.output
    assert f"{broken}: file is not a database" in result.stderr
    assert "Traceback" not in result.output
    assert broken.read_text() == "this is not SQLite\n"


# (hearth report creates nothing: a missing file is "no such database file", tested below.)
@pytest.mark.parametrize("command", DATABASE_COMMANDS[:3], ids=lambda c: " ".join(c[:2]))
def test_a_database_in_a_missing_folder_is_named(tmp_path, command):
    where = tmp_path / "no" / "such" / "hearth.db"
    result = CliRunner().invoke(cli, [*command, "--db", str(where)], input="")
    assert result.exit_code == 2, result.output
    assert f"error: {where}: no folder {where.parent} for it" in result.stderr
    assert not (tmp_path / "no").exists()


def test_run_with_a_broken_database_file_exits_2(tmp_path):
    broken = tmp_path / "notes.db"
    broken.write_text("this is not SQLite\n")
    config = tmp_path / "c.toml"
    config.write_text(f'[storage]\npath = "{broken}"\nconnect_attempts = 5\n')
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["run", "--config", str(config)], input="")
    assert result.exit_code == 2
    assert "file is not a database" in result.stderr
    assert time.monotonic() - started < 5  # no retries with backoff: a retry cannot fix it


@pytest.mark.parametrize("command", [["run"], ["db", "upgrade"], ["console"]])
def test_postgres_with_no_such_database_or_role_is_named(tmp_path, command):
    """A server that answers but refuses the name: one line, exit 2, the password hidden."""
    url = postgres_url()
    if not asyncio.run(_pg_reachable(url)):
        pytest.skip(f"PostgreSQL not reachable at {url} (run .ci/run to start it)")
    server = url.split("@", 1)[1].rsplit("/", 1)[0]
    for wrong, refusal in (
        (f"postgresql+asyncpg://postgres@{server}/no_such_db", 'database "no_such_db" does not'),
        (f"postgresql+asyncpg://nobody:hunter2@{server}/test", 'role "nobody" does not exist'),
    ):
        config = tmp_path / "c.toml"
        config.write_text(f'[storage]\ndatabase_url = "{wrong}"\n')
        result = CliRunner().invoke(cli, [*command, "--config", str(config)], input="")
        assert result.exit_code == 2, result.output
        assert refusal in result.stderr and "hunter2" not in result.stderr
        assert "Traceback" not in result.output


async def test_repl_lines_drive_the_session(session, app):
    repl = Repl(session)
    started = app.clock.now()
    assert "now speaking as alice" in await repl.handle(":as alice")
    assert "message 1" in await repl.handle("Has anyone read Smith (2020)?")
    assert await repl.handle(":as bob")
    assert await repl.handle(":channel random") == "posting in #random"
    # A reply lands where its parent is, and says so.
    assert await repl.handle(":reply 1 Yes, thanks!") == "(bob #general message 2)"
    assert await repl.handle(":react 1 🎉") == "reacted"
    assert "now " in await repl.handle(":advance 1d")
    assert "error" in await repl.handle(":advance soon")
    # Every run in between is played: a step is bounded, and a huge number is an error.
    assert "at most 120d at a time" in await repl.handle(":advance 121d")
    assert "too long" in await repl.handle(":advance 99999999999999999999d")
    assert "no job called" in await repl.handle(":tick nope")
    assert "unknown or incomplete" in await repl.handle(":reply 1")
    assert await repl.handle(":quit") is None
    await repl.handle("/course me")
    assert "builds on: 1" in session.outbox[-1].text
    row = await app.store.contribution("console", "2")
    assert row["reply_to_member_id"] == "alice"
    assert app.clock.now() - started == timedelta(days=1)


def _hearth(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "bot", *args],
        cwd=kw.pop("cwd", ROOT),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kw,
    )


def _signal_after(proc: subprocess.Popen, lines: str, expect: str, sig: int) -> str:
    """Feed ``lines``, wait (bounded) for ``expect`` on stdout, then send ``sig`` with stdin
    still open, as under a supervisor or in a terminal: the signal alone must stop it.
    Returns stderr."""
    proc.stdin.write(lines)
    proc.stdin.flush()
    deadline = time.monotonic() + 30
    seen = ""
    while expect not in seen and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen += line
    assert expect in seen, seen
    proc.send_signal(sig)
    try:
        proc.wait(timeout=20)
    finally:
        _out, err = proc.communicate(timeout=30)
    return err


def test_run_stops_cleanly_on_sigterm_and_flushes(tmp_path):
    db = tmp_path / "run.db"
    config = tmp_path / "config.toml"
    # A long flush interval: the rows are still queued in memory when SIGTERM arrives.
    config.write_text(f'[storage]\npath = "{db}"\nflush_ms = 60000\nbatch_size = 10000\n')
    proc = _hearth("run", "--config", str(config))
    lines = "first idea https://example.org\n:as bob\n:reply 1 thanks!\n"
    err = _signal_after(proc, lines, "message 2", signal.SIGTERM)
    assert proc.returncode == 0, err
    assert "flushing writes" in err
    rows = sqlite3.connect(db).execute("SELECT message_id FROM contribution ORDER BY id").fetchall()
    assert rows == [("1",), ("2",)]


def test_console_stops_on_ctrl_c_while_waiting_for_a_line(tmp_path):
    db = tmp_path / "console.db"
    # SIGINT as a terminal's Ctrl-C sends it (a shell may have started us ignoring it).
    proc = _hearth(
        "console",
        "--db",
        str(db),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    err = _signal_after(proc, ":as alice\nspaced practice works\n", "message 1", signal.SIGINT)
    assert proc.returncode == 130, err  # interrupted, as a shell reports Ctrl-C
    assert "Traceback" not in err and "Fatal" not in err, err
    rows = sqlite3.connect(db).execute("SELECT message_id FROM contribution").fetchall()
    assert rows == [("1",)]


def test_python_m_bot_help():
    out = subprocess.run(
        [sys.executable, "-m", "bot", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0
    for command in ("demo", "console", "run", "db"):
        assert command in out.stdout


def test_demo_runs_and_leaves_its_database(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--quiet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "120"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Contributions by kind" in result.stdout
    assert "Per-learner participation" in result.stdout
    db = tmp_path / "hearth-demo.db"
    assert db.exists()
    count = sqlite3.connect(db).execute("SELECT count(*) FROM contribution").fetchone()[0]
    assert 200 <= count <= 600


def test_bench_refuses_an_output_it_cannot_write_before_running(tmp_path):
    """The benchmarks take minutes: a results path that cannot be written is said at once
    (the runs would otherwise end in a traceback and their figures be lost)."""
    for where in (tmp_path, tmp_path / "no-such-folder" / "RESULTS.md"):
        started = time.perf_counter()
        result = CliRunner().invoke(cli, ["bench", "--output", str(where)])
        assert result.exit_code == 2, result.output
        assert f"error: {where}: not a file the results can be written to" in result.output
        assert time.perf_counter() - started < 10  # nothing was run (a loose floor)


def test_invite_url_wants_the_numeric_application_id():
    runner = CliRunner()
    bad = runner.invoke(cli, ["discord", "invite-url", "--client-id", "my-bot"])
    assert bad.exit_code == 2 and "expected the application's numeric id" in bad.output
    assert "https://" not in bad.output
    template = runner.invoke(cli, ["discord", "invite-url"])
    assert template.exit_code == 0 and "client_id=YOUR_APPLICATION_ID" in template.output
