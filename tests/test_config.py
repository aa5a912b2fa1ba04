"""Configuration is validated at load; errors name the file and the key (exit code 2)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from bot.cli import cli
from bot.config import ConfigError, load_settings, secret


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
        ("[storage\npath = 'x'\n", "not valid TOML"),
    ],
)
def test_invalid_config_names_the_key(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


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
