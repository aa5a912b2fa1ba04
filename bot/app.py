"""The composition root: the one place that builds everything and wires it together.

No other module builds settings, engines or adapters at import time; tests and the CLI call
:meth:`HearthApp.create` with what they need (a database URL, a fake clock, which adapters).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from bot.adapters.base import Adapter
from bot.clock import Clock, SystemClock
from bot.config import ConfigError, Settings
from bot.engine import Cog, Engine, Services
from bot.gil import shorten_switch_interval
from bot.memory import limit_malloc_arenas, tune_garbage_collector
from bot.runtime import Runtime
from bot.schedule_words import schedule_words
from bot.scheduler import SchedulerService
from storage.db import create_all, make_engine, redact, schema_change, upgrade
from storage.repos import Store
from storage.writer import BatchWriter

log = logging.getLogger(__name__)


def build_cogs(services: Services) -> list[Cog]:
    """Every capability, listed explicitly and in the order they see events."""
    from bot.cogs.analytics import AnalyticsCog
    from bot.cogs.contributions import ContributionsCog
    from bot.cogs.course import CourseCog
    from bot.cogs.kudos import KudosCog
    from bot.cogs.nudges import NudgesCog
    from bot.cogs.privacy import PrivacyCog
    from bot.cogs.reflections import ReflectionsCog
    from bot.cogs.summaries import SummariesCog

    return [
        ContributionsCog(services),
        CourseCog(services),
        PrivacyCog(services),
        AnalyticsCog(services),
        ReflectionsCog(services),
        SummariesCog(services),
        NudgesCog(services),
        KudosCog(services),
    ]


@dataclass(slots=True)
class HearthApp:
    settings: Settings
    clock: Clock
    store: Store
    engine: Engine
    runtime: Runtime
    scheduler: SchedulerService
    adapters: list[Adapter] = field(default_factory=list)
    #: Prometheus series and the /healthz + /metrics server, when [metrics] is enabled.
    metrics: Any = None
    metrics_server: Any = None

    @classmethod
    async def create(
        cls,
        settings: Settings,
        *,
        clock: Clock | None = None,
        live_scheduler: bool = False,
        migrate: bool = True,
        start_writer: bool = True,
        connect_attempts: int = 1,
        connect_backoff: float | None = None,
    ) -> HearthApp:
        clock = clock or SystemClock()
        # Process-wide, for a long-running bot (bot.memory, bot.gil); the arena cap must come
        # before the database threads start allocating.
        limit_malloc_arenas()
        tune_garbage_collector()
        shorten_switch_interval()
        url = settings.storage.url()
        db = make_engine(
            url, schema=settings.storage.pg_schema, work_mem=settings.storage.pg_work_mem
        )
        backoff = connect_backoff or settings.storage.connect_backoff_seconds
        try:
            await _prepare_database(
                db, url, migrate=migrate, attempts=connect_attempts, backoff=backoff
            )
        except BaseException:
            await db.dispose()  # no pool or driver thread outlives a failed start
            raise
        metrics = None
        if settings.metrics.enabled:
            from bot.metrics import Metrics

            metrics = Metrics()  # its own CollectorRegistry, never the global one
        writer = BatchWriter(
            db,
            batch_size=settings.storage.batch_size,
            flush_ms=settings.storage.flush_ms,
            max_buffer=settings.storage.max_buffer,
            on_flush=metrics.batch_written if metrics else None,
            on_reject=metrics.rows_rejected if metrics else None,
        )
        store = Store(db, writer)
        services = Services(
            store=store, settings=settings, clock=clock, schedule_words=schedule_words
        )
        if metrics is not None:
            services.observer = metrics
            metrics.watch_writer(writer)
        services.registry.root = settings.discord.command_root
        engine = Engine(services, build_cogs(services))
        await engine.start()
        runtime = Runtime(engine, store, clock)
        scheduler = SchedulerService(
            engine,
            clock,
            runtime.deliver,
            grace=timedelta(seconds=settings.scheduler.grace_seconds),
            lease=timedelta(seconds=settings.scheduler.claim_lease_seconds),
            live=live_scheduler,
            debug_delay=settings.scheduler.debug_job_delay_seconds,
        )
        if start_writer:
            writer.start()
        return cls(settings, clock, store, engine, runtime, scheduler, metrics=metrics)

    def add_adapter(self, adapter: Adapter) -> None:
        self.adapters.append(adapter)
        self.runtime.register(adapter)

    async def close(self) -> None:
        """Stop adapters, let jobs finish or release them, flush writes, close the pool."""
        for adapter in reversed(self.adapters):
            try:
                await adapter.stop()
            except Exception:  # noqa: BLE001 - keep shutting down the rest
                log.exception("stopping %s failed", adapter.platform)
        await self.scheduler.stop()
        if self.metrics_server is not None:
            await self.metrics_server.stop()
            self.metrics_server = None
        await self.store.writer.close()
        await self.store.engine.dispose()

    async def start_metrics(self) -> str | None:
        """Serve /healthz and /metrics when [metrics] is enabled; returns the base URL."""
        if self.metrics is None:
            return None
        if self.metrics_server is None:
            from bot.metrics import MetricsServer

            self.metrics_server = MetricsServer(self, self.metrics)
            await self.metrics_server.start()
        return self.metrics_server.url

    async def run_forever(self) -> None:
        """Start adapters and the scheduler; stop cleanly on SIGINT or SIGTERM."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix
                pass
        try:
            await self.start_metrics()
            for adapter in self.adapters:
                await adapter.start()
            await self.scheduler.start()
            log.info("Hearth is running with %s", ", ".join(a.platform for a in self.adapters))
            await stop.wait()
            log.info("stopping: flushing writes and finishing jobs")
        finally:
            await self.close()


async def _prepare_database(
    db, url: str, *, migrate: bool, attempts: int, backoff: float = 1.0
) -> None:
    """Create or migrate the schema, retrying an unreachable database with doubling waits."""
    delay = backoff
    for attempt in range(1, attempts + 1):
        try:
            if migrate:
                before, after = await upgrade(db)
                if before != after:
                    log.info("database at %s: %s", redact(url), schema_change(before, after))
            else:
                await create_all(db)
            return
        except (OSError, ConnectionError, OperationalError, InterfaceError) as exc:
            if attempt == attempts:
                raise DatabaseUnavailable(
                    f"cannot reach the database at {redact(url)} after {attempts} attempts: "
                    f"{first_line(exc)}"
                ) from exc
            log.warning(
                "database %s unreachable (attempt %s of %s: %s); retrying in %.1fs",
                redact(url),
                attempt,
                attempts,
                first_line(exc),
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30)
        except DBAPIError as exc:
            # Reached but not usable (a file that is not SQLite, no such role or database, a
            # schema this user may not create tables in): no retry will change that, so it is
            # said once, with the cause.
            raise ConfigError(
                f"cannot use the database at {redact(url)}: {first_line(exc)}"
            ) from exc


def first_line(exc: BaseException) -> str:
    """The error without SQLAlchemy's SQL and background link (a clear one-line message)."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class DatabaseUnavailable(RuntimeError):
    pass
