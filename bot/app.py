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

from bot.adapters.base import Adapter
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.engine import Cog, Engine, Services
from bot.runtime import Runtime
from bot.scheduler import SchedulerService
from storage.db import create_all, make_engine, redact, upgrade
from storage.repos import Store
from storage.writer import BatchWriter

log = logging.getLogger(__name__)


def build_cogs(services: Services) -> list[Cog]:
    """Every capability, listed explicitly and in the order they see events."""
    from bot.cogs.analytics import AnalyticsCog
    from bot.cogs.contributions import ContributionsCog
    from bot.cogs.course import CourseCog
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
    ) -> HearthApp:
        clock = clock or SystemClock()
        url = settings.storage.url()
        db = make_engine(url, schema=settings.storage.pg_schema)
        await _prepare_database(db, url, migrate=migrate, attempts=connect_attempts)
        writer = BatchWriter(
            db,
            batch_size=settings.storage.batch_size,
            flush_ms=settings.storage.flush_ms,
            max_buffer=settings.storage.max_buffer,
        )
        store = Store(db, writer)
        services = Services(store=store, settings=settings, clock=clock)
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
        return cls(settings, clock, store, engine, runtime, scheduler)

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
        await self.store.writer.close()
        await self.store.engine.dispose()

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
            for adapter in self.adapters:
                await adapter.start()
            await self.scheduler.start()
            log.info("Hearth is running with %s", ", ".join(a.platform for a in self.adapters))
            await stop.wait()
            log.info("stopping: flushing writes and finishing jobs")
        finally:
            await self.close()


async def _prepare_database(db, url: str, *, migrate: bool, attempts: int) -> None:
    delay = 1.0
    for attempt in range(1, attempts + 1):
        try:
            if migrate:
                await upgrade(db)
            else:
                await create_all(db)
            return
        except (OSError, ConnectionError) as exc:
            if attempt == attempts:
                raise DatabaseUnavailable(
                    f"cannot reach the database at {redact(url)} after {attempts} attempts: {exc}"
                ) from exc
            log.warning("database %s unreachable (%s); retrying in %.0fs", redact(url), exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30)


class DatabaseUnavailable(RuntimeError):
    pass
