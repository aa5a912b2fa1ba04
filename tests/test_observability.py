"""Watching Hearth run: Prometheus /metrics and /healthz on loopback, log lines that carry the
community and event ids (text and JSON), and no token in any log line.

The metrics scenarios drive a console session on a real app (its own CollectorRegistry), then
fetch both endpoints over HTTP on 127.0.0.1 and read the numbers back.
"""

from __future__ import annotations

import io
import json
import logging
import socket

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.actions import DirectMessage, PostMessage
from bot.adapters.console import ConsoleSession
from bot.app import HearthApp
from bot.cli import setup_logging
from bot.cogs.contributions import ContributionsCog
from bot.config import Settings
from bot.events import MemberRef, PlaceRef
from bot.logformat import log_context, make_handler
from bot.logsafe import register_secret
from bot.metrics import Metrics
from tests.conftest import MIGRATION_HEAD, make_settings

SLACK_TOKEN = "xoxb-2222222222-3333333333-AbCdEfGhIjKlMnOpQrStUvWx"
# Discord's documentation example token shape (not a live token).
DISCORD_TOKEN = "MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ.ZnCjm1XVW7vRze4b7Cq4se7kKWs"
REGISTERED = 'pa55-word!with"quote'


def metrics_settings(tmp_path, **storage) -> Settings:
    # A long flush interval keeps rows queued until the test flushes, so the queue depth is
    # observable; port 0 lets the OS pick a free port.
    return make_settings(
        tmp_path / "hearth.db",
        metrics={"enabled": True, "host": "127.0.0.1", "port": 0},
        storage={"flush_ms": 60_000, "batch_size": 10_000, **storage},
    )


@pytest.fixture
async def watched(tmp_path, clock):
    app = await HearthApp.create(metrics_settings(tmp_path), clock=clock, migrate=False)
    session = await ConsoleSession.open(app)
    await session.join("fran", facilitator=True)
    url = await app.start_metrics()
    try:
        yield app, session, url
    finally:
        await app.close()


async def fetch(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), await resp.text()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} from the Prometheus text format."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(parsed, name: str, **labels: str) -> float:
    return parsed.get((name, tuple(sorted(labels.items()))), 0.0)


class BrokenAdapter:
    """A platform whose every send fails (a closed DM, an outage)."""

    platform = "broken"

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, action, origin) -> None:
        raise RuntimeError("the platform refused the message")


# -- /metrics and /healthz -------------------------------------------------------------------


async def test_metrics_count_events_writes_jobs_and_messages(watched):
    app, session, url = watched
    assert url is not None and url.startswith("http://127.0.0.1:")
    await session.command("alice", "/course me")  # reads flush the writer: run it first
    first = await session.say("alice", "A first idea about feedback loops")
    await session.reply("bob", first, "Thanks @alice, that helps")
    await session.react("carol", first, "🎉")
    app.add_adapter(BrokenAdapter())
    await app.runtime.deliver(
        [
            DirectMessage(member=session.member("alice"), text="hello"),
            DirectMessage(member=MemberRef("broken", "x1"), text="will fail"),
            PostMessage(place=PlaceRef("broken", "c", "general"), text="will fail too"),
        ]
    )
    assert await session.tick("privacy.retention") == []

    status, content_type, body = await fetch(url + "/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    before = samples(body)
    received = "hearth_events_received_total"
    assert value(before, received, type="MessagePosted") == 2
    assert value(before, received, type="ReactionAdded") == 1
    assert value(before, received, type="CommandInvoked") == 1
    assert value(before, received, type="MemberJoined") == 1
    assert value(before, received, type="ScheduledTick") == 1
    assert value(before, "hearth_events_recorded_total", type="MessagePosted") == 2
    assert value(before, "hearth_jobs_run_total", job="privacy.retention") == 1
    assert value(before, "hearth_dms_sent_total") == 1
    assert value(before, "hearth_dms_failed_total") == 1
    assert value(before, "hearth_actions_sent_total", action="Reply", platform="console") == 1
    assert (
        value(before, "hearth_actions_failed_total", action="PostMessage", platform="broken") == 1
    )
    # The rows are still queued (flush_ms is a minute): the gauge reads the writer's queue.
    assert value(before, "hearth_writer_queue_depth") == app.store.writer.pending > 0
    assert value(before, "hearth_errors_total", where="engine") == 0

    queued = app.store.writer.pending
    await app.store.flush()
    after = samples((await fetch(url + "/metrics"))[2])
    assert value(after, "hearth_writer_queue_depth") == 0
    assert value(after, "hearth_write_batch_seconds_count") >= 1
    assert value(after, "hearth_rows_written_total") >= queued
    assert value(after, "hearth_write_batch_seconds_sum") > 0


async def test_healthz_reports_database_writer_and_adapters(watched, monkeypatch):
    app, session, url = watched
    await session.say("alice", "hello there")
    status, content_type, body = await fetch(url + "/healthz")
    assert status == 200 and content_type.startswith("application/json")
    health = json.loads(body)
    assert health["status"] == "ok"
    assert health["database"]["reachable"] is True
    assert health["writer"]["pending"] == app.store.writer.pending > 0
    assert health["adapters"] == [{"platform": "console"}]

    class Unreachable:
        def connect(self):
            raise ConnectionRefusedError("Connect call failed ('127.0.0.1', 5432)")

    monkeypatch.setattr(app.store, "engine", Unreachable())
    status, _type, body = await fetch(url + "/healthz")
    monkeypatch.undo()
    assert status == 503
    health = json.loads(body)
    assert health["status"] == "unavailable"
    assert health["database"] == {"reachable": False, "error": "ConnectionRefusedError"}


async def test_a_failing_capability_is_counted_as_an_error(watched, monkeypatch):
    app, session, url = watched

    async def broken(self, event):
        raise RuntimeError("bug in a cog")

    monkeypatch.setattr(ContributionsCog, "record", broken)
    await session.say("alice", "this one breaks the contributions cog")
    parsed = samples((await fetch(url + "/metrics"))[2])
    assert value(parsed, "hearth_errors_total", where="cog") == 1
    assert (
        value(parsed, "hearth_events_not_recorded_total", type="MessagePosted", reason="error") == 1
    )
    assert value(parsed, "hearth_events_recorded_total", type="MessagePosted") == 0


async def test_two_apps_keep_separate_registries(tmp_path, clock):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = await HearthApp.create(metrics_settings(tmp_path / "a"), clock=clock, migrate=False)
    two = await HearthApp.create(metrics_settings(tmp_path / "b"), clock=clock, migrate=False)
    try:
        assert isinstance(one.metrics, Metrics) and one.metrics.registry is not two.metrics.registry
        session = await ConsoleSession.open(one)
        await session.say("alice", "only in the first app")
        assert one.metrics.value("hearth_events_received_total", type="MessagePosted") == 1
        assert two.metrics.value("hearth_events_received_total", type="MessagePosted") == 0
    finally:
        await one.close()
        await two.close()


def test_run_with_a_taken_metrics_port_exits_2_naming_it(tmp_path):
    from typer.testing import CliRunner

    from bot.cli import cli

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "c.toml"
        config.write_text(
            f'[storage]\npath = "{tmp_path / "h.db"}"\n[metrics]\nenabled = true\nport = {port}\n'
        )
        result = CliRunner().invoke(cli, ["run", "--config", str(config)], input="")
    assert result.exit_code == 2, result.output
    assert f"cannot listen on 127.0.0.1:{port} ([metrics] port): the port is in use" in (
        result.stderr
    )
    assert "Traceback" not in result.output


async def test_metrics_are_off_unless_enabled(app):
    assert app.metrics is None
    assert await app.start_metrics() is None


# -- structured logs ---------------------------------------------------------------------------


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    libraries = [logging.getLogger(name) for name in ("apscheduler", "alembic")]
    handlers, level = root.handlers[:], root.level
    library_levels = [lib.level for lib in libraries]
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for lib, lib_level in zip(libraries, library_levels, strict=True):
        lib.setLevel(lib_level)


async def test_json_lines_carry_community_and_event_ids(session, monkeypatch, restore_logging):
    stream = io.StringIO()
    root = logging.getLogger()
    root.addHandler(make_handler(stream, "json"))

    async def broken(self, event):
        logging.getLogger("bot.cogs.contributions").warning("about to fail")
        raise RuntimeError("bug in a cog")

    monkeypatch.setattr(ContributionsCog, "record", broken)
    message_id = await session.say("alice", "this breaks")
    logging.getLogger("bot.test").warning("outside any event")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    by_message = {line["message"].split(" ")[0]: line for line in lines}
    warning = by_message["about"]
    assert warning["level"] == "WARNING" and warning["logger"] == "bot.cogs.contributions"
    assert warning["community"] == "console" and warning["event"] == message_id
    failure = next(line for line in lines if line["logger"] == "bot.engine")
    assert failure["level"] == "ERROR" and failure["event"] == message_id
    assert "RuntimeError: bug in a cog" in failure["exc"]
    outside = by_message["outside"]
    assert "community" not in outside and "event" not in outside
    assert set(outside) == {"time", "level", "logger", "message"}
    assert outside["time"].endswith("+00:00")


async def test_text_lines_end_with_the_ids(restore_logging):
    stream = io.StringIO()
    logger = logging.getLogger("bot.test")
    logger.addHandler(handler := make_handler(stream, "text"))
    try:
        with log_context("T1", "Ev123"):
            logger.warning("inside")
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)
    inside, outside = stream.getvalue().splitlines()
    assert inside.endswith("bot.test: inside [community=T1 event=Ev123]")
    assert outside.endswith("bot.test: outside")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_tokens_never_reach_the_log(fmt, capsys, restore_logging):
    register_secret(REGISTERED)
    setup_logging("DEBUG", fmt)  # the handler `hearth run` installs
    log = logging.getLogger("bot.test")
    log.info("slack token %s and discord token %s", SLACK_TOKEN, DISCORD_TOKEN)
    log.info("config: %s", {"bot_token": SLACK_TOKEN, "signing": REGISTERED})
    log.warning("Authorization: Bearer " + SLACK_TOKEN)
    log.info("response_url https://hooks.slack.com/commands/T1/123/AbCdEfSeCrEt")
    try:
        raise RuntimeError(f"Slack refused {SLACK_TOKEN} / {REGISTERED} / {DISCORD_TOKEN}")
    except RuntimeError:
        log.exception("sending failed")
    with log_context("T1", "Ev1"):
        logging.getLogger("slack_sdk.web").debug("secret %s in a library line", REGISTERED)
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len([line for line in lines if "[redacted]" in line]) >= 5
    for secret in (SLACK_TOKEN, DISCORD_TOKEN, REGISTERED, "AbCdEfSeCrEt", "2222222222-3333"):
        assert secret not in err
    if fmt == "json":
        entries = [json.loads(line) for line in lines]
        assert {e["logger"] for e in entries} == {"bot.test", "slack_sdk.web"}
        assert entries[-1]["community"] == "T1" and entries[-1]["event"] == "Ev1"
        assert "[redacted]" in next(e["exc"] for e in entries if "exc" in e)
    else:
        assert lines[-1].endswith("[community=T1 event=Ev1]")


def test_scheduler_library_logs_only_its_warnings_unless_debugging(capsys, restore_logging):
    executor = logging.getLogger("apscheduler.executors.default")
    setup_logging("INFO")
    executor.info('Running job "SchedulerService._spawn" (scheduled at ...)')
    executor.error('Job "SchedulerService._spawn" raised an exception')
    logging.getLogger("bot.scheduler").info("job test.daily ran for T1 (period ...)")
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" ", 3)[-1] for line in lines] == [
        'apscheduler.executors.default: Job "SchedulerService._spawn" raised an exception',
        "bot.scheduler: job test.daily ran for T1 (period ...)",
    ]
    setup_logging("DEBUG")
    executor.info("Running job ...")
    assert "Running job" in capsys.readouterr().err


async def test_start_says_when_it_built_the_schema_without_alembics_chatter(
    tmp_path, capsys, restore_logging
):
    setup_logging("INFO")
    settings = Settings.model_validate({"storage": {"path": str(tmp_path / "new.db")}})
    for _start in range(2):
        app = await HearthApp.create(settings)
        await app.close()
    err = capsys.readouterr().err
    # Once, at the first start; Alembic's own nine lines (plugins, "Context impl", ...) never.
    assert err.count(f"created the schema (revision {MIGRATION_HEAD})") == 1, err
    assert "alembic" not in err and "migrated" not in err


def test_log_format_is_validated():
    assert Settings.model_validate({"log_format": "json"}).log_format == "json"
    with pytest.raises(ValueError, match="log_format"):
        Settings.model_validate({"log_format": "xml"})
    with pytest.raises(ValueError, match="log format"):
        make_handler(io.StringIO(), "xml")
