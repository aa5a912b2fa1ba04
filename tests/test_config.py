"""Configuration is validated at load; errors name the file and the key (exit code 2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel, ValidationError
from typer.testing import CliRunner

from bot.cli import cli
from bot.config import ConfigError, Settings, SlackSettings, load_settings, secret


def write(tmp_path, text):
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_is_valid():
    settings = load_settings("config.example.toml")
    assert settings.storage.path == "hearth.db"
    assert settings.nudges.quiet_hours.start.hour == 21


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[course]\ntimezon = 'UTC'\n", "course.timezon: unknown key"),
        ("[course]\ntimezone = 'Mars/Olympus'\n", "course.timezone"),
        ("[nudges]\nschedule = '0 25 * * *'\n", "nudges.schedule"),
        ("[reflections]\nschedule = 'every monday'\n", "bad cron"),
        ("[summaries]\nschedule = '0 17 * * 5'\n", "write weekdays as names"),
        ("[nudges]\nschedule = '0 10 * * 1-5'\n", "write weekdays as names"),
        ("[storage]\nbatch_size = 'lots'\n", "storage.batch_size"),
        ("[storage]\npg_work_mem = '16 megs'\n", "storage.pg_work_mem"),
        ("[slack]\nmode = 'carrier-pigeon'\n", "slack.mode"),
        ("[slack]\ncommand = 'course'\n", "slack.command"),
        ("[slack]\noauth = true\nmode = 'socket'\n", 'oauth = true needs mode = "http"'),
        ("[storage\npath = 'x'\n", "not valid TOML"),
        ("[course]\nstart_date = 0001-01-01\n", "expected a date between 1970-01-01"),
        ("[course]\nholidays = [2026-12-24, 9999-12-31]\n", "course.holidays"),
        ("[storage]\npath = ''\n", "storage.path"),  # would be a database in memory
        ("[analytics]\nreply_weight = -1\n", "analytics.reply_weight"),
    ],
)
def test_invalid_config_names_the_key(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def _durations(model=Settings, prefix=""):
    """(dotted key, field) of every number of days, hours or seconds in the settings."""
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _durations(annotation, f"{prefix}{name}.")
        elif {"days", "hours", "seconds"} & set(name.split("_")):
            yield f"{prefix}{name}", field


DURATIONS = list(_durations())


@pytest.mark.parametrize(("key", "field"), DURATIONS, ids=[key for key, _f in DURATIONS])
def test_every_duration_has_a_ceiling_that_dates_can_hold(key, field):
    """An extra zero or three in a number of days is an error naming the key at load, not an
    OverflowError in a job at night (``quiet_days = 1000000`` reached year -700); and a
    duration at its ceiling still fits in date arithmetic either way from today."""
    section, name = key.split(".")
    with pytest.raises(ValidationError, match=key.replace(".", r"\.")):
        Settings.model_validate({section: {name: 10**9}})
    ceiling = next(m.le for m in field.metadata if getattr(m, "le", None) is not None)
    units = {"days": 86400, "hours": 3600, "seconds": 1}
    unit = next(units[part] for part in name.split("_") if part in units)
    now = datetime.now(UTC)
    assert now - timedelta(seconds=ceiling * unit) < now + timedelta(seconds=ceiling * unit)


def test_a_folder_where_a_file_belongs_is_named(tmp_path):
    from bot.nudge_templates import load_nudge_templates
    from bot.reflection_templates import load_prompts, load_templates

    # The config, the prompt sequence and both template files are read the same way.
    for load in (load_settings, load_prompts, load_templates, load_nudge_templates):
        with pytest.raises(ConfigError, match=f"{tmp_path}: a folder, not a file"):
            load(tmp_path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.toml: file not found"):
        load_settings(tmp_path / "nope.toml")


def test_cli_exits_2_on_bad_config(tmp_path):
    path = write(tmp_path, "[course]\nbogus = 1\n")
    result = CliRunner().invoke(cli, ["db", "upgrade", "--config", str(path)])
    assert result.exit_code == 2
    assert "course.bogus: unknown key" in result.output


def test_secrets_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("HEARTH_TEST_TOKEN", "s3cret-value")
    assert secret("HEARTH_TEST_TOKEN") == "s3cret-value"
    monkeypatch.delenv("HEARTH_TEST_TOKEN")
    with pytest.raises(ConfigError, match="HEARTH_TEST_TOKEN is not set"):
        secret("HEARTH_TEST_TOKEN")


@pytest.mark.parametrize(
    ("slack", "needed"),
    [
        ({}, ["HEARTH_SLACK_BOT_TOKEN", "HEARTH_SLACK_SIGNING_SECRET"]),
        ({"mode": "socket"}, ["HEARTH_SLACK_BOT_TOKEN", "HEARTH_SLACK_APP_TOKEN"]),
        (
            {"oauth": True},
            ["HEARTH_SLACK_CLIENT_ID", "HEARTH_SLACK_CLIENT_SECRET", "HEARTH_SLACK_SIGNING_SECRET"],
        ),
    ],
)
def test_each_slack_mode_names_the_secrets_it_needs(slack, needed):
    assert list(SlackSettings.model_validate(slack).secret_envs().values()) == needed


async def test_run_names_a_missing_secret_before_touching_the_database(
    tmp_path, monkeypatch, caplog
):
    from bot.serve import serve

    for name in ("HEARTH_DISCORD_TOKEN", "HEARTH_SLACK_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HEARTH_SLACK_CLIENT_ID", "123.456")
    monkeypatch.setenv("HEARTH_SLACK_SIGNING_SECRET", "s3cret")
    db = tmp_path / "hearth.db"
    for platforms, missing in (
        ({"discord": {"enabled": True}}, "HEARTH_DISCORD_TOKEN"),
        ({"slack": {"enabled": True, "oauth": True}}, "HEARTH_SLACK_CLIENT_SECRET"),
    ):
        settings = Settings.model_validate({"storage": {"path": str(db)}, **platforms})
        assert await serve(settings) == 2
        assert f"environment variable {missing} is not set" in caplog.text
        assert not db.exists()  # said before the schema was created
