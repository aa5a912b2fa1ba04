"""Prometheus metrics and the ``/healthz`` and ``/metrics`` endpoints.

:class:`Metrics` is the :class:`bot.observe.Observer` the composition root installs when
``[metrics] enabled = true``. Its series live in a :class:`CollectorRegistry` of its own (never
``prometheus_client``'s global one), so two apps in one process, as in the tests, never share or
clash over a series.

Series (all prefixed ``hearth_``):

- ``events_received_total{type}``, ``events_recorded_total{type}``,
  ``events_not_recorded_total{type,reason}`` (``reason``: ``buffer_full`` or ``error``);
- ``writer_queue_depth`` (rows waiting for the batched writer), ``write_batch_seconds``
  (histogram of one batch's commit time), ``rows_written_total``, ``rows_rejected_total{table}``;
- ``jobs_run_total{job}``, ``job_seconds`` (histogram);
- ``actions_sent_total{action,platform}``, ``actions_failed_total{action,platform}`` and, for
  direct messages alone, ``dms_sent_total`` and ``dms_failed_total``;
- ``errors_total{where}`` (unexpected exceptions caught at the engine boundary).

:class:`MetricsServer` serves them with aiohttp on ``[metrics] host:port`` next to
``/healthz``: 200 and a JSON body when a cheap ``SELECT 1`` reaches the database, 503 with the
same body when it does not, so a load balancer or an orchestrator can act on it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bot.observe import Observer

if TYPE_CHECKING:
    from aiohttp import web

    from bot.app import HearthApp
    from storage.writer import BatchWriter

log = logging.getLogger(__name__)

#: Commit times of one write batch: 1 ms (SQLite, a few rows) up to 10 s (a stalled server).
BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
JOB_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0)
#: How long /healthz waits for ``SELECT 1`` before calling the database unreachable.
HEALTH_TIMEOUT = 2.0


class Metrics(Observer):
    """The observer that counts, over one dedicated registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.events_received = Counter(
            "hearth_events_received", "Events that reached the engine", ["type"], registry=r
        )
        self.events_recorded = Counter(
            "hearth_events_recorded",
            "Events every capability accepted (their rows are queued for the writer)",
            ["type"],
            registry=r,
        )
        self.events_not_recorded = Counter(
            "hearth_events_not_recorded",
            "Events refused (buffer_full) or failed (error); each was logged with its id",
            ["type", "reason"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "hearth_writer_queue_depth", "Rows waiting for the batched writer", registry=r
        )
        self.batch_seconds = Histogram(
            "hearth_write_batch_seconds",
            "Time to write and commit one batch",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.rows_written = Counter(
            "hearth_rows_written", "Rows committed by the batched writer", registry=r
        )
        self.rejected_rows = Counter(
            "hearth_rows_rejected",
            "Rows the database refused for their content even after repair (logged, dropped)",
            ["table"],
            registry=r,
        )
        self.jobs_run = Counter(
            "hearth_jobs_run",
            "Scheduled runs this process claimed and finished",
            ["job"],
            registry=r,
        )
        self.job_seconds = Histogram(
            "hearth_job_seconds", "Duration of one scheduled run", buckets=JOB_BUCKETS, registry=r
        )
        self.actions_sent = Counter(
            "hearth_actions_sent", "Actions delivered", ["action", "platform"], registry=r
        )
        self.actions_failed = Counter(
            "hearth_actions_failed",
            "Actions that failed to deliver",
            ["action", "platform"],
            registry=r,
        )
        self.dms_sent = Counter("hearth_dms_sent", "Direct messages delivered", registry=r)
        self.dms_failed = Counter(
            "hearth_dms_failed", "Direct messages that failed to deliver", registry=r
        )
        self.errors = Counter(
            "hearth_errors",
            "Unexpected exceptions caught at the engine boundary",
            ["where"],
            registry=r,
        )
        # Labelled children cached by label values: ``labels()`` takes a lock and builds a
        # key on every call, and the event counters are on the hot path.
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def watch_writer(self, writer: BatchWriter) -> None:
        """Read the queue depth from the writer at every scrape."""
        self.queue_depth.set_function(lambda: writer.pending)

    # -- Observer -------------------------------------------------------------------------------

    def event_received(self, kind: str) -> None:
        self._child(self.events_received, kind).inc()

    def event_recorded(self, kind: str) -> None:
        self._child(self.events_recorded, kind).inc()

    def event_not_recorded(self, kind: str, reason: str) -> None:
        self._child(self.events_not_recorded, kind, reason).inc()

    def error(self, where: str) -> None:
        self._child(self.errors, where).inc()

    def job_ran(self, job: str, seconds: float) -> None:
        self._child(self.jobs_run, job).inc()
        self.job_seconds.observe(seconds)

    def action_sent(self, kind: str, platform: str) -> None:
        self._child(self.actions_sent, kind, platform).inc()
        if kind == "DirectMessage":
            self.dms_sent.inc()

    def action_failed(self, kind: str, platform: str) -> None:
        self._child(self.actions_failed, kind, platform).inc()
        if kind == "DirectMessage":
            self.dms_failed.inc()

    def batch_written(self, rows: int, seconds: float) -> None:
        self.rows_written.inc(rows)
        self.batch_seconds.observe(seconds)

    def rows_rejected(self, table: str, rows: int) -> None:
        self._child(self.rejected_rows, table).inc(rows)

    # -- reading ----------------------------------------------------------------------------------

    def value(self, name: str, **labels: str) -> float:
        """One sample's current value (0 when absent); for tests and the demo."""
        found = self.registry.get_sample_value(name, labels)
        return float(found) if found is not None else 0.0

    def exposition(self) -> bytes:
        """The Prometheus text format of every series."""
        return generate_latest(self.registry)


async def database_health(app: HearthApp) -> dict[str, Any]:
    """``{"reachable": bool, "latency_ms": float}`` (plus ``error``) from a ``SELECT 1``."""
    from sqlalchemy import text

    started = time.perf_counter()
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT):
            async with app.store.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return {"reachable": False, "error": type(exc).__name__}
    return {"reachable": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


async def health(app: HearthApp) -> dict[str, Any]:
    """What ``/healthz`` answers: database, writer queue and adapters."""
    database = await database_health(app)
    writer = app.store.writer
    adapters = []
    for adapter in app.adapters:
        entry: dict[str, Any] = {"platform": adapter.platform}
        describe = getattr(adapter, "health", None)
        if callable(describe):
            try:
                entry.update(describe())
            except Exception:  # noqa: BLE001 - a health probe must answer regardless
                log.exception("health of the %s adapter failed", adapter.platform)
        adapters.append(entry)
    return {
        "status": "ok" if database["reachable"] else "unavailable",
        "database": database,
        "writer": {
            "pending": writer.pending,
            "max_buffer": writer.max_buffer,
            "failures": writer.stats.failures,
            "rejected": writer.stats.rejected,
        },
        "adapters": adapters,
    }


class MetricsServer:
    """aiohttp on ``[metrics] host:port``: ``/healthz`` and ``/metrics``."""

    def __init__(self, app: HearthApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._runner: web.AppRunner | None = None
        #: ``http://host:port`` once started (the port the OS picked when configured as 0).
        self.url: str | None = None

    async def start(self) -> None:
        from aiohttp import web

        from bot.http_listen import start_site

        settings = self.app.settings.metrics
        web_app = web.Application()
        web_app.router.add_get("/healthz", self._healthz)
        web_app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(web_app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await start_site(self._runner, settings.host, settings.port, "[metrics] port")
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        log.info("metrics on %s/metrics, health on %s/healthz", self.url, self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        from aiohttp import web

        body = await health(self.app)
        return web.json_response(body, status=200 if body["status"] == "ok" else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        from aiohttp import web

        return web.Response(
            body=self.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )
