"""Configuration: one TOML file, validated at load.

Every section is a pydantic model that forbids unknown keys, so a typo is reported with the key's
dotted path instead of being silently ignored. Secrets never live in the file: the file names the
environment variables that hold them (``token_env``), and :func:`secret` reads them at start.
Nothing here is built at import time; ``bot.app`` loads the file and passes sections in.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import date, time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.date_range import check_date
from bot.errors import ConfigError

_CRON_FIELD = re.compile(r"^[\w*/,\-?#LW]+$")


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown timezone {name!r} (use an IANA name like Europe/London)"
        ) from exc
    return name


def check_cron(expr: str) -> str:
    """Validate a five-field crontab expression (minute hour day month weekday)."""
    fields = expr.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        raise ValueError(f"bad cron {expr!r}: need five fields, e.g. '0 9 * * mon'")
    if any(c.isdigit() for c in fields[4]):
        # APScheduler 3.x reads 0 as Monday, classic cron as Sunday: "0 9 * * 0" would run
        # a day later than its author meant, silently.
        raise ValueError(
            f"bad cron {expr!r}: write weekdays as names (mon, tue, ... sun; mon-fri), "
            "not numbers, which cron and the scheduler read differently"
        )
    # Imported lazily: the cog and engine modules import this file and must stay free of
    # scheduler imports (see tests/test_architecture.py).
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(expr, timezone=ZoneInfo("UTC"))
    except ValueError as exc:
        raise ValueError(f"bad cron {expr!r}: {exc}") from exc
    return expr


#: Upper bounds for durations: generous (ten years), and far inside what date arithmetic can
#: hold, so that a slip of the keyboard (an extra zero or three) is an error naming the key,
#: not an OverflowError in a job at night (``quiet_days = 1000000`` reached year -700).
MAX_DAYS = 3650
MAX_HOURS = MAX_DAYS * 24
MAX_SECONDS = MAX_HOURS * 3600


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class StorageSettings(_Section):
    #: SQLite file used when ``database_url`` is empty.
    path: str = Field(default="hearth.db", min_length=1)
    #: Any SQLAlchemy async URL, e.g. ``postgresql+asyncpg://user@127.0.0.1/hearth``.
    database_url: str = ""
    #: PostgreSQL schema to use (``search_path``); empty uses the server default.
    pg_schema: str = Field(default="", pattern=r"^[a-z_][a-z0-9_]{0,62}$|^$")
    #: PostgreSQL ``work_mem`` for Hearth's sessions ("16MB", "64MB"; empty keeps the
    #: server's): the memory a sort or hash may use before it spills to disk. At the server's
    #: default (4MB) the busiest-threads ranking over a week of 100,000 messages sorted on
    #: disk: 90 ms, against 77 ms hashed in memory with 16MB.
    pg_work_mem: str = Field(default="16MB", pattern=r"^$|^[1-9][0-9]{0,6}(kB|MB|GB)$")
    #: Keep message text for this many days (0 = never store text, only metadata).
    retain_text_days: int = Field(default=0, ge=0, le=MAX_DAYS)
    #: Hot-path writes are buffered and flushed in batches of this size ...
    batch_size: int = Field(default=500, ge=1, le=100_000)
    #: ... or after this many milliseconds, whichever comes first.
    flush_ms: int = Field(default=200, ge=1, le=60_000)
    #: Most events kept in memory while the database is unreachable.
    max_buffer: int = Field(default=100_000, ge=1000)
    #: ``hearth run`` tries to reach the database this many times at start, waiting
    #: ``connect_backoff_seconds`` (doubled after each try, at most 30 s) in between, then
    #: exits with an error.
    connect_attempts: int = Field(default=5, ge=1, le=100)
    connect_backoff_seconds: float = Field(default=1.0, gt=0, le=60)

    def url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.path}"


class CourseSettings(_Section):
    """Defaults for every community; ``/course setup`` overrides them per community."""

    name: str = "My course"
    timezone: str = "UTC"
    start_date: date | None = None
    end_date: date | None = None
    holidays: list[date] = []
    #: Channel ids or names that count; empty means every channel the bot can see.
    tracked_channels: list[str] = []
    #: Platform user ids of facilitators (in addition to the platform role).
    facilitator_ids: list[str] = []
    reflection_channel: str = ""
    cohort_channel: str = ""

    _tz = field_validator("timezone")(check_timezone)

    @field_validator("start_date", "end_date")
    @classmethod
    def _in_range(cls, value: date | None) -> date | None:
        return None if value is None else check_date(value)

    @field_validator("holidays")
    @classmethod
    def _holidays_in_range(cls, value: list[date]) -> list[date]:
        return [check_date(day) for day in value]


class SchedulerSettings(_Section):
    #: A run missed while the bot was down still happens once if it is at most this late.
    grace_seconds: int = Field(default=6 * 3600, ge=1, le=MAX_SECONDS)
    #: A claimed run that has not finished after this long may be taken over by another process.
    claim_lease_seconds: int = Field(default=600, ge=5, le=MAX_SECONDS)
    #: Fault injection for tests: pause this long inside every run, after claiming it.
    debug_job_delay_seconds: float = Field(default=0.0, ge=0, le=3600)


class AnalyticsSettings(_Section):
    #: Edge weights: how much one reply, mention, reaction or kudos counts (0 ignores it; a
    #: negative weight would make shortest paths, and so the brokers, meaningless).
    reply_weight: float = Field(default=1.0, ge=0, le=1000)
    mention_weight: float = Field(default=0.5, ge=0, le=1000)
    reaction_weight: float = Field(default=0.25, ge=0, le=1000)
    kudos_weight: float = Field(default=1.0, ge=0, le=1000)
    #: Window in days for pattern labels.
    window_days: int = Field(default=7, ge=1, le=MAX_DAYS)
    #: one-to-one: share of a learner's interaction weight with their top partner.
    one_to_one_share: float = Field(default=0.6, gt=0, le=1)
    #: many-to-many: at least this many reciprocated partners.
    many_to_many_partners: int = Field(default=2, ge=1)
    #: quiet: no contribution for this many days.
    quiet_days: int = Field(default=7, ge=1, le=MAX_DAYS)
    #: dropping: this week's activity below this fraction of the member's previous level.
    dropping_ratio: float = Field(default=0.35, gt=0, lt=1)
    #: unanswered: a post with no reply after this many hours.
    unanswered_hours: int = Field(default=24, ge=1, le=MAX_HOURS)
    #: facilitator-centric: flag the course when at least this share of interactions
    #: involves a facilitator.
    facilitator_centric_share: float = Field(default=0.5, gt=0, le=1)
    #: Weeks shown in the weekly trend of reports.
    trend_weeks: int = Field(default=6, ge=1, le=104)
    #: Brokers: above this many connected members, betweenness is estimated from
    #: ``broker_samples`` sampled sources (fixed ``seed``) instead of computed exactly.
    broker_sample_above: int = Field(default=500, ge=10)
    broker_samples: int = Field(default=64, ge=10)
    #: The network picture shows at most this many members (the most active; facilitators
    #: always), so it stays readable.
    chart_max_nodes: int = Field(default=300, ge=10, le=5000)
    #: Seed of the network layout and of betweenness sampling: same data, same picture.
    seed: int = 7


class QuietHours(_Section):
    start: time = time(21, 0)
    end: time = time(8, 0)


class NudgeSettings(_Section):
    enabled: bool = True
    schedule: str = "0 10 * * *"
    step2_after_days: int = Field(default=4, ge=1, le=MAX_DAYS)
    min_days_between: int = Field(default=3, ge=1, le=MAX_DAYS)
    holdout_fraction: float = Field(default=0.2, ge=0, lt=1)
    holdout_seed: str = "hearth"
    quiet_hours: QuietHours = Field(default_factory=QuietHours)
    templates: str = ""
    kudos_per_day: int = Field(default=3, ge=0)
    facilitator_share_alert: float = Field(default=0.5, gt=0, le=1)
    #: New members (since joining) and isolated ones (since their first unanswered post of the
    #: week) get a first nudge only after this many days in that state.
    grace_days: int = Field(default=2, ge=0, le=MAX_DAYS)
    #: A "live" thread (a nudge hook) had a message within this many hours.
    live_thread_hours: int = Field(default=48, ge=1, le=MAX_HOURS)
    #: The effect report counts a member as back if they contributed within this many days.
    return_window_days: int = Field(default=7, ge=1, le=MAX_DAYS)
    #: Kudos A->B earns no interaction credit if B gave A kudos within this many days.
    kudos_ring_days: int = Field(default=7, ge=0, le=MAX_DAYS)
    #: The facilitator-share alert needs at least this many interactions in the week.
    facilitator_share_min_interactions: int = Field(default=10, ge=1)
    #: Sends nudges held back by a learner's quiet hours once they are over.
    followup_schedule: str = "20 * * * *"
    #: Looks for posts without a reply after ``[analytics] unanswered_hours``.
    unanswered_schedule: str = "40 * * * *"
    #: Weekly check of how much interaction goes through the facilitators.
    facilitator_share_schedule: str = "0 16 * * fri"

    _cron = field_validator(
        "schedule", "followup_schedule", "unanswered_schedule", "facilitator_share_schedule"
    )(check_cron)


class ReflectionSettings(_Section):
    enabled: bool = True
    schedule: str = "0 9 * * mon"
    delivery: Literal["thread", "dm"] = "thread"
    window_days: int = Field(default=7, ge=1, le=MAX_DAYS)
    reminder_at: float = Field(default=0.8, gt=0, lt=1)
    prompts_file: str = ""
    #: How often due work is checked: scheduled prompts, DM deliveries held back by quiet
    #: hours, reminders at ``reminder_at`` of the window, and closing with the reply queue.
    followup_schedule: str = "*/15 * * * *"

    _cron = field_validator("schedule", "followup_schedule")(check_cron)


class SummarySettings(_Section):
    enabled: bool = True
    schedule: str = "0 17 * * fri"
    mirror_schedule: str = "0 18 * * fri"
    templates: str = ""
    #: Daily check for the end of the course (the final summary goes out once, on the end
    #: date or within a week after it).
    final_schedule: str = "0 17 * * *"

    _cron = field_validator("schedule", "mirror_schedule", "final_schedule")(check_cron)


class ConsoleSettings(_Section):
    enabled: bool = True
    community: str = "console"


class DiscordSettings(_Section):
    enabled: bool = False
    token_env: str = "HEARTH_DISCORD_TOKEN"
    guild_ids: list[str] = []
    facilitator_role: str = "Facilitator"
    command_root: str = Field(default="course", pattern=r"^[-_a-z0-9]{1,32}$")
    #: Empty: every command under ``/<command_root>``. Set (e.g. "course-admin"): the
    #: facilitator-only commands move to this second root, hidden from members without
    #: Manage Server until an admin allows the facilitator role (Discord applies default
    #: permissions to top-level commands only).
    facilitator_root: str = Field(default="", pattern=r"^[-_a-z0-9]{1,32}$|^$")
    dm_per_minute: int = Field(default=30, ge=1)
    #: Shards to run (AutoShardedClient); unset: one connection, or Discord's
    #: recommendation when it asks for more (bots in thousands of servers).
    shard_count: int | None = Field(default=None, ge=1)
    api_base_url: str = "https://discord.com/api/v10"
    gateway_url: str = "wss://gateway.discord.gg/"
    catch_up_limit: int = Field(default=500, ge=0)

    def secret_envs(self) -> dict[str, str]:
        """The environment variables the adapter reads its secrets from, by role."""
        return {"token": self.token_env}


class SlackSettings(_Section):
    enabled: bool = False
    mode: Literal["http", "socket"] = "http"
    bot_token_env: str = "HEARTH_SLACK_BOT_TOKEN"
    signing_secret_env: str = "HEARTH_SLACK_SIGNING_SECRET"
    app_token_env: str = "HEARTH_SLACK_APP_TOKEN"
    client_id_env: str = "HEARTH_SLACK_CLIENT_ID"
    client_secret_env: str = "HEARTH_SLACK_CLIENT_SECRET"
    oauth: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=3000, ge=0, le=65535)
    command: str = "/course"
    facilitator_user_ids: list[str] = []
    admins_are_facilitators: bool = True
    api_base_url: str = "https://slack.com/api/"
    catch_up_limit: int = Field(default=500, ge=0)
    #: HTTP mode: the public https URL Slack reaches this host at (used by the manifest).
    public_url: str = ""
    #: Seconds between two posts to one channel or DM (Slack allows about one per second).
    post_interval_seconds: float = Field(default=1.0, ge=0, le=60)
    #: How long user profiles (names, time zones, the admin flag) are cached.
    user_cache_seconds: int = Field(default=300, ge=0, le=MAX_SECONDS)
    #: Retries after a 429 (waiting Retry-After), a 5xx or a dropped connection.
    max_retries: int = Field(default=3, ge=0, le=10)

    @field_validator("command")
    @classmethod
    def _slash(cls, value: str) -> str:
        if not re.fullmatch(r"/[a-z0-9_-]{1,31}", value):
            raise ValueError("must look like /course")
        return value

    @model_validator(mode="after")
    def _oauth_over_http(self) -> SlackSettings:
        if self.oauth and self.mode != "http":
            raise ValueError(
                'oauth = true needs mode = "http": the install flow and every workspace\'s '
                "events come over HTTP"
            )
        return self

    def secret_envs(self) -> dict[str, str]:
        """The environment variables the adapter reads its secrets from, by role. With
        OAuth there is no bot token: the client id and secret start the install flow, and
        each workspace's token comes from the installation store. HTTP mode checks request
        signatures; socket mode connects with the app-level token."""
        if self.oauth:
            envs = {"client_id": self.client_id_env, "client_secret": self.client_secret_env}
        else:
            envs = {"bot_token": self.bot_token_env}
        if self.mode == "http":
            envs["signing_secret"] = self.signing_secret_env
        else:
            envs["app_token"] = self.app_token_env
        return envs


class MetricsSettings(_Section):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535)


class Settings(_Section):
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: "text" (one readable line) or "json" (one JSON object per line, for log shippers).
    log_format: Literal["text", "json"] = "text"
    storage: StorageSettings = Field(default_factory=StorageSettings)
    course: CourseSettings = Field(default_factory=CourseSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)
    nudges: NudgeSettings = Field(default_factory=NudgeSettings)
    reflections: ReflectionSettings = Field(default_factory=ReflectionSettings)
    summaries: SummarySettings = Field(default_factory=SummarySettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    discord: DiscordSettings = Field(default_factory=DiscordSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid configuration"]
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file's contents; anything wrong with it (missing, a folder, unreadable, not
    UTF-8, not TOML) is a ConfigError that names the file."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: a folder, not a file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None


def load_settings(path: str | Path | None) -> Settings:
    """Load and validate a TOML file; ``None`` gives the embedded defaults."""
    if path is None:
        return Settings()
    path = Path(path)
    raw = read_toml(path)
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, str(path))) from None


def secret(env_name: str) -> str:
    """Read a secret from the environment variable the config names."""
    value = os.environ.get(env_name, "")
    if not value:
        raise ConfigError(f"environment variable {env_name} is not set (it should hold a secret)")
    return value


def check_secrets(settings: Settings) -> None:
    """Every secret an enabled adapter needs is set (ConfigError naming the first that is
    not): ``hearth run`` checks before it touches the database."""
    for section in (settings.discord, settings.slack):
        if section.enabled:
            for env_name in section.secret_envs().values():
                secret(env_name)
