"""Several real `hearth run` processes on one PostgreSQL database.

Three processes (console adapter on stdin, live scheduler) get the same events and fire the same
jobs, by hand and on the real clock (a job every minute, fired by all three live schedulers):
each message is recorded once, each job runs once and each DM goes out once. Then one
process is killed (SIGKILL) in the middle of a job: its claim expires after the lease and
another process completes the run, once.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import _pg_reachable, _pg_schema, postgres_url

ROOT = Path(__file__).resolve().parents[1]


class Proc:
    """A `hearth run` process whose stdout is collected by a thread."""

    def __init__(self, config: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.p = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--config", str(config)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self.err: list[str] = []
        threading.Thread(target=self._pump, args=(self.p.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.p.stderr, self.err), daemon=True).start()

    @staticmethod
    def _pump(stream, sink) -> None:
        for line in stream:
            sink.append(line)

    def send(self, *lines: str) -> None:
        self.p.stdin.write("".join(line + "\n" for line in lines))
        self.p.stdin.flush()

    def wait_for(self, text: str, timeout: float = 60, *, stream: str = "out") -> None:
        deadline = time.monotonic() + timeout
        sink = self.lines if stream == "out" else self.err
        while time.monotonic() < deadline:
            if any(text in line for line in sink):
                return
            if self.p.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not seen; stdout={self.lines[-20:]} err={self.err[-20:]}")

    def dms(self) -> list[str]:
        return [line for line in self.lines if line.startswith("[hearth -> dm ")]

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited 30 s later; its exit code (None when
        it had to be killed)."""
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                return None
        return self.p.returncode


@pytest.fixture
def pg_schema():
    url = postgres_url()
    if not asyncio.run(_pg_reachable(url)):
        pytest.skip(f"PostgreSQL not reachable at {url} (run .ci/run to start it)")
    schema = "mp_" + uuid.uuid4().hex[:12]
    asyncio.run(_pg_schema(url, schema, drop=False))
    yield url, schema
    asyncio.run(_pg_schema(url, schema, drop=True))


def write_config(
    tmp_path: Path, name: str, url: str, schema: str, *, head: str = "", tail: str = "", **scheduler
) -> Path:
    """A config on the shared database; ``head`` goes before the first table (top-level
    keys), ``tail`` after the last."""
    extra = "".join(f"{k} = {v}\n" for k, v in scheduler.items())
    path = tmp_path / f"{name}.toml"
    path.write_text(
        head + f'[storage]\ndatabase_url = "{url}"\npg_schema = "{schema}"\nflush_ms = 50\n'
        "[scheduler]\nclaim_lease_seconds = 5\n"
        + extra
        +
        # Quiet hours off: the processes run on the real clock, at any hour.
        "[nudges.quiet_hours]\nstart = 00:00:00\nend = 00:00:00\n"
        + tail
    )
    return path


#: The job the three processes' live schedulers fire together, every minute.
EVERY_MINUTE = "nudges.unanswered"


def query(url: str, schema: str, sql: str):
    async def _go():
        import asyncpg

        conn = await asyncpg.connect(
            url.replace("postgresql+asyncpg://", "postgresql://"),
            server_settings={"search_path": schema},
        )
        try:
            return await conn.fetch(sql)
        finally:
            await conn.close()

    return asyncio.run(_go())


def test_three_processes_record_run_and_send_once(pg_schema, tmp_path):
    url, schema = pg_schema
    # One job fires every minute on the real clock, in all three live schedulers; DEBUG shows
    # the fires that found the run claimed. The mirror's own schedule is moved out of the way
    # (its DMs are counted below, from a fire by hand).
    config = write_config(
        tmp_path,
        "p",
        url,
        schema,
        head='log_level = "DEBUG"\n',
        tail='[nudges]\nunanswered_schedule = "* * * * *"\n'
        '[summaries]\nmirror_schedule = "0 0 1 1 *"\n',
    )
    # Migrate once up front, as `hearth db upgrade` would, so the processes start together.
    subprocess.run(
        [sys.executable, "-m", "bot", "db", "upgrade", "--config", str(config)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    # The community exists before the processes start, as a course that is already running
    # does, so each one plans its jobs at start.
    query(
        url,
        schema,
        "INSERT INTO community (id, platform, name, timezone, cohort, settings_json, created_at)"
        " VALUES ('console', 'console', 'Course', 'UTC', 1, '{}', now())",
    )
    procs = [Proc(config) for _ in range(3)]
    try:
        # All three are up (console numbering read from the shared database) before the first
        # event, so the same line gets the same message id everywhere, as on a real platform.
        for proc in procs:
            proc.wait_for("Hearth is running", stream="err")
        # The first minute to strike once all three were up: each one's live scheduler fires it.
        up = datetime.now(UTC)
        minute = (up + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%MZ")
        script = [
            ":as alice",
            "/course mirror on",
            "I think spaced practice works (Cepeda, 2006)",
            ":as bob",
            "/course mirror on",
            ":reply 1 Thanks alice, great point!",
            ":as carol",
            ":react 1 🎉",
        ]
        for proc in procs:
            proc.send(*script)
        for proc in procs:
            proc.wait_for("reacted")
        for proc in procs:
            proc.send(":tick summaries.mirror week-1")
        for proc in procs:
            proc.wait_for("ran summaries.mirror")
        time.sleep(0.5)
        contributions = query(url, schema, "SELECT message_id FROM contribution ORDER BY 1")
        assert [r["message_id"] for r in contributions] == ["1", "2"]
        edges = query(url, schema, "SELECT kind FROM edge ORDER BY 1")
        assert [r["kind"] for r in edges] == ["reaction", "reply"]
        claims = query(url, schema, "SELECT status FROM job_claim WHERE job = 'summaries.mirror'")
        assert [r["status"] for r in claims] == ["done"]
        dms = [line for proc in procs for line in proc.dms()]
        recipients = sorted(line.split("]")[0].split()[-1] for line in dms)
        assert recipients == ["alice", "bob"], dms
        sent = query(url, schema, "SELECT member_id FROM sent_message ORDER BY 1")
        assert [r["member_id"] for r in sent] == ["alice", "bob"]
        # The live fire of that minute: run by exactly one process, found claimed by the others.
        ran = f"job {EVERY_MINUTE} ran for console (period {minute})"
        taken = f"job {EVERY_MINUTE} for console period {minute} already claimed"
        for proc in procs:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and not any(
                ran in line or taken in line for line in proc.err
            ):
                time.sleep(0.1)
        outcomes = [
            ("ran" if any(ran in line for line in proc.err) else "")
            + ("taken" if any(taken in line for line in proc.err) else "")
            for proc in procs
        ]
        assert sorted(outcomes) == ["ran", "taken", "taken"], outcomes
        # SIGTERM stops each one cleanly, its stdin still open.
        assert [proc.stop() for proc in procs] == [0, 0, 0]
    finally:
        for proc in procs:
            proc.stop()


def test_killed_process_claim_expires_and_another_completes(pg_schema, tmp_path):
    url, schema = pg_schema
    slow = write_config(tmp_path, "slow", url, schema, debug_job_delay_seconds=30)
    fast = write_config(tmp_path, "fast", url, schema)
    subprocess.run(
        [sys.executable, "-m", "bot", "db", "upgrade", "--config", str(fast)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    victim = Proc(slow)
    survivor = Proc(fast)
    try:
        for proc in (victim, survivor):
            proc.wait_for("Hearth is running", stream="err")
        for proc in (victim, survivor):
            proc.send(":as alice", "/course mirror on", "hello everyone")
            proc.wait_for("message 1")
        victim.send(":tick summaries.mirror week-2")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            rows = query(url, schema, "SELECT status FROM job_claim")
            if rows:
                break
            time.sleep(0.1)
        assert [r["status"] for r in rows] == ["running"]  # claimed, inside its slow run
        victim.p.kill()  # SIGKILL: no chance to release the claim
        victim.p.wait(timeout=10)
        survivor.send(":tick summaries.mirror week-2")
        survivor.wait_for("ran summaries.mirror")
        assert survivor.dms() == []  # the claim is still held by the dead process
        time.sleep(5.5)  # the lease (5 s) runs out
        survivor.send(":tick summaries.mirror week-2")
        deadline = time.monotonic() + 30
        while not survivor.dms() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(survivor.dms()) == 1 and "alice" in survivor.dms()[0]
        survivor.send(":tick summaries.mirror week-2")
        time.sleep(1)
        assert len(survivor.dms()) == 1  # done: never again
        rows = query(url, schema, "SELECT status FROM job_claim")
        assert [r["status"] for r in rows] == ["done"]
    finally:
        victim.stop()
        survivor.stop()
