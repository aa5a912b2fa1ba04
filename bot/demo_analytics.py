"""The analytics chapter of ``hearth demo``: network figures, patterns, and the HTML report.

At the end of the scripted course it prints the network figures and how many learners show
each interaction pattern, and writes the full report as one self-contained HTML file next to
the demo database (``hearth-report.html``), naming it so the reader can open it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from rich.table import Table

from bot.analytics import LABELS, PATTERN_MEANING
from bot.report import build_report, overview_rows, render_html

if TYPE_CHECKING:
    from bot.demo import Demo

log = logging.getLogger(__name__)

REPORT_NAME = "hearth-report.html"


class AnalyticsChapter:
    title = "Interaction analytics"

    async def during(self, demo: Demo, day: int) -> None:
        """Nothing to do while the course runs: analytics read what was recorded."""
        return None

    async def report(self, demo: Demo) -> None:
        app = demo.app
        now = app.clock.now()
        report = await build_report(
            app.store,
            demo.session.community_id,
            since=demo.start,
            until=now,
            settings=app.settings,
            generated_at=now,
        )
        data = report.data
        figures = Table(title="Network figures (whole course)")
        figures.add_column("figure")
        figures.add_column("value", justify="right")
        for name, value in overview_rows(data):
            figures.add_row(name, value)
        brokers = ", ".join(b["display_name"] for b in data["network"]["brokers"]) or "none"
        figures.add_row("Brokers", brokers)
        demo.console.print(figures)
        patterns = Table(title="Interaction patterns")
        patterns.add_column("pattern")
        patterns.add_column("learners", justify="right")
        patterns.add_column("threads", justify="right")
        patterns.add_column("meaning")
        for label in LABELS:
            patterns.add_row(
                label,
                str(data["patterns"][label]),
                str(data["thread_patterns"].get(label, "")),
                PATTERN_MEANING[label],
            )
        demo.console.print(patterns)
        states: dict[str, list[str]] = {}
        for learner in data["learners"]:
            if learner["quiet_state"] not in (None, "active"):
                states.setdefault(learner["quiet_state"], []).append(learner["display_name"])
        if states:
            demo.console.print(
                "Quiet states: "
                + "; ".join(
                    f"{state}: {', '.join(names)}" for state, names in sorted(states.items())
                )
            )
        path = demo.out_dir / REPORT_NAME
        # Drawing the charts is CPU work; keep it off the event loop like the bot does.
        text = await asyncio.to_thread(render_html, report)
        path.write_text(text, encoding="utf-8")
        demo.console.print(f"HTML report written to [bold]{path}[/bold] (open it in a browser).")
        demo.notes.append(f"Analytics report: {path}")
