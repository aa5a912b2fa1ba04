"""What the core reports about its own work, for monitoring.

The engine, the runtime, the scheduler and the batched writer call an :class:`Observer` at the
moments worth counting (an event in, an event recorded or refused, a job run, an action sent or
failed, a batch written). The base class does nothing, so the core pays a method call and no
more when monitoring is off; :class:`bot.metrics.Metrics` turns the calls into Prometheus
series. Kept free of any monitoring library so the engine may import it.
"""

from __future__ import annotations


class Observer:
    """No-op hooks; subclasses count. Every method must be cheap and must never raise."""

    def event_received(self, kind: str) -> None:
        """An event reached the engine (``kind`` is the event class name)."""

    def event_recorded(self, kind: str) -> None:
        """Every capability accepted the event: its rows are queued for the writer."""

    def event_not_recorded(self, kind: str, reason: str) -> None:
        """The event was refused (``buffer_full``) or failed (``error``); it was logged."""

    def error(self, where: str) -> None:
        """An unexpected exception was caught at the engine boundary (``where``: engine or cog)."""

    def job_ran(self, job: str, seconds: float) -> None:
        """A claimed scheduled run finished."""

    def action_sent(self, kind: str, platform: str) -> None:
        """An adapter delivered an action (``kind``: Reply, PostMessage, DirectMessage...)."""

    def action_failed(self, kind: str, platform: str) -> None:
        """An adapter failed to deliver an action (it was logged and, if keyed, marked failed)."""

    def batch_written(self, rows: int, seconds: float) -> None:
        """The writer committed one batch (the ``on_flush`` callback of the BatchWriter)."""

    def rows_rejected(self, table: str, rows: int) -> None:
        """The database refused rows for their content even after repair; they were logged."""
