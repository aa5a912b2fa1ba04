"""The analytics report: the JSON's documented structure (a golden check), the CSV, the text,
the self-contained HTML with embedded images, ``hearth report`` on a database made here, and
the demo chapter that writes the HTML report."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.analytics import LABELS, PATTERNS
from bot.classify import KINDS
from bot.report import (
    CSV_COLUMNS,
    SCHEMA,
    build_report,
    render_csv,
    render_html,
    render_json,
    render_text,
)
from tests.analytics_scenarios import EXPECTED_PATTERNS, course_with_known_patterns
from tests.conftest import BACKENDS, START

PNG = b"\x89PNG\r\n\x1a\n"

#: The documented top-level keys of the JSON report (README, "The JSON report").
TOP_KEYS = {
    "schema",
    "community",
    "generated_at",
    "since",
    "until",
    "contributions",
    "words",
    "by_kind",
    "by_edge_kind",
    "members",
    "facilitators",
    "active_members",
    "interactions",
    "threads",
    "thread_patterns",
    "patterns",
    "network",
    "replies",
    "unanswered_posts",
    "daily",
    "weekly",
    "edges",
    "thresholds",
    "learners",
}
LEARNER_KEYS = {
    "member_id",
    "display_name",
    "facilitator",
    "contributions",
    "words",
    "by_kind",
    "interactions_given",
    "interactions_received",
    "partners",
    "reciprocal_partners",
    "pattern",
    "previous_pattern",
    "quiet_state",
    "quiet_detail",
    "betweenness",
}
NETWORK_KEYS = {
    "density",
    "reciprocity",
    "facilitator_share",
    "facilitator_centric",
    "isolated",
    "brokers",
    "betweenness_sampled",
}
REPLY_KEYS = {
    "posts",
    "answered",
    "median_first_reply_minutes",
    "unanswered",
    "unanswered_after_hours",
}


async def known_report(session, days: int = 7):
    await course_with_known_patterns(session)
    app = session.app
    now = app.clock.now()
    return await build_report(
        app.store,
        session.community_id,
        since=now - timedelta(days=days),
        until=now,
        settings=app.settings,
        generated_at=now,
    )


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_json_report_has_the_documented_structure(session):
    report = await known_report(session)
    data = json.loads(render_json(report))
    assert set(data) == TOP_KEYS
    assert data["schema"] == SCHEMA
    assert data["community"] == {"id": "console", "name": "My course", "timezone": "UTC"}
    assert isinstance(data["contributions"], int) and data["contributions"] == sum(
        x["contributions"] for x in data["learners"]
    )
    assert list(data["by_kind"]) == list(KINDS)
    assert list(data["by_edge_kind"]) == ["reply", "mention", "reaction", "kudos"]
    assert list(data["patterns"]) == list(LABELS)
    assert list(data["thread_patterns"]) == list(PATTERNS)
    assert data["patterns"] == {
        "one-alone": 1,
        "one-to-one": 5,
        "one-to-many": 1,
        "many-to-many": 4,
        "inactive": 1,
    }
    assert (data["members"], data["facilitators"], data["active_members"]) == (13, 1, 11)
    assert data["threads"] == 7
    assert set(data["network"]) == NETWORK_KEYS
    assert data["network"]["isolated"] == ["lou"]
    assert data["network"]["brokers"][0]["display_name"] == "bob"
    assert set(data["replies"]) == REPLY_KEYS
    assert (
        data["replies"]["unanswered"] == 2 and data["replies"]["median_first_reply_minutes"] == 20.0
    )
    assert {p["display_name"] for p in data["unanswered_posts"]} == {"lou"}
    assert len(data["daily"]) == 8  # every UTC day the window touches, empty ones too
    assert sum(d["contributions"] for d in data["daily"]) == data["contributions"]
    assert len(data["weekly"]) == 6 and data["weekly"][-1]["contributions"] == data["contributions"]
    assert data["edges"] == sorted(data["edges"], key=lambda e: (e["source"], e["target"]))
    assert {(e["source"], e["target"]) for e in data["edges"]} >= {("al", "bob"), ("pat", "quinn")}
    assert data["thresholds"]["one_to_one_share"] == 0.6

    learners = {x["member_id"]: x for x in data["learners"]}
    assert all(set(x) == LEARNER_KEYS for x in data["learners"])
    assert {m: x["pattern"] for m, x in learners.items() if m != "fran"} == EXPECTED_PATTERNS
    assert learners["fran"]["facilitator"] and learners["fran"]["quiet_state"] is None
    assert learners["lou"]["quiet_state"] == "isolated"
    assert learners["ned"]["quiet_state"] == "new"
    assert learners["bob"]["interactions_received"] == 3 and learners["bob"]["by_kind"]["idea"] == 3
    assert learners["xa"]["previous_pattern"] == "inactive"
    # Stable: the same report renders to the same JSON.
    assert render_json(report) == render_json(report)


async def test_csv_and_text_renderings(session):
    report = await known_report(session)
    rows = list(csv.reader(io.StringIO(render_csv(report))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 1 + 13
    by_id = {r[0]: dict(zip(CSV_COLUMNS, r, strict=True)) for r in rows[1:]}
    assert by_id["bob"]["pattern"] == "one-to-many" and by_id["bob"]["idea"] == "3"
    assert by_id["fran"]["facilitator"] == "yes" and by_id["fran"]["quiet_state"] == ""

    text = render_text(report)
    assert text.startswith("Hearth report: My course")
    assert "Isolated: lou" in text
    assert "Learners by pattern: one-alone 1, one-to-one 5, one-to-many 1, many-to-many 4" in text
    assert "Unanswered posts (2):" in text
    assert "fran (facilitator)" in text


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.external: list[str] = []
        self.headings: list[str] = []
        self._in_heading = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        for key in ("src", "href"):
            value = attrs.get(key) or ""
            if value.startswith(("http:", "https:", "//")):
                self.external.append(value)
        self._in_heading = tag in ("h1", "h2")

    def handle_data(self, data):
        if self._in_heading and data.strip():
            self.headings.append(data.strip())

    def handle_endtag(self, tag):
        self._in_heading = False


async def test_html_report_is_self_contained_with_embedded_charts(session):
    report = await known_report(session)
    page = render_html(report)
    parser = _Images()
    parser.feed(page)
    parser.close()
    assert parser.external == []
    assert len(parser.images) == 4
    for src in parser.images:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        assert base64.b64decode(src[len(prefix) :]).startswith(PNG)
    assert parser.headings[:2] == ["My course", "Course overview"]
    for section in ("Activity over time", "Interaction network", "Interaction patterns"):
        assert section in parser.headings
    assert "Learners" in parser.headings and "Unanswered posts" in parser.headings
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")


async def test_html_escapes_names(session):
    await session.join("eve")
    await session.say("<b>eve</b>", "Hello <script>alert(1)</script>")
    app = session.app
    now = app.clock.now()
    report = await build_report(
        app.store, "console", since=now - timedelta(days=1), until=now, settings=app.settings
    )
    page = render_html(report, charts=False)
    assert "<b>eve</b>" not in page and "&lt;b&gt;eve&lt;/b&gt;" in page


# -- hearth report -------------------------------------------------------------------------------


def _make_database(path: Path) -> None:
    """A database with the known community, written by a real app and closed again."""
    from bot.adapters.console import ConsoleSession
    from bot.app import HearthApp
    from bot.clock import FakeClock
    from tests.conftest import make_settings

    async def go() -> None:
        app = await HearthApp.create(make_settings(path), clock=FakeClock(START), migrate=False)
        try:
            session = await ConsoleSession.open(app)
            await session.join("fran", facilitator=True)
            await course_with_known_patterns(session)
        finally:
            await app.close()

    asyncio.run(go())


@pytest.fixture
def database(tmp_path) -> Path:
    path = tmp_path / "course.db"
    _make_database(path)
    return path


def test_hearth_report_cli(database, tmp_path):
    from bot.cli import cli

    runner = CliRunner()
    days = ["--since", "2026-09-07", "--until", "2026-09-08"]
    result = runner.invoke(cli, ["report", "--db", str(database), *days, "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["since"] == "2026-09-07T00:00:00Z" and data["until"] == "2026-09-09T00:00:00Z"
    assert data["patterns"]["many-to-many"] == 4 and data["contributions"] == 28
    assert "note:" not in result.stderr
    # A window after the course: empty, and the terminal is told where the activity is,
    # on stderr, so the JSON on stdout stays whole.
    later = ["--since", "2026-10-01", "--until", "2026-10-07", "--format", "json"]
    result = runner.invoke(cli, ["report", "--db", str(database), *later])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["contributions"] == 0
    assert result.stderr.strip() == (
        "note: no contributions from 2026-10-01 00:00 to 2026-10-08 00:00 UTC; the latest "
        "before them is from 2026-09-07: --since and --until choose the days"
    )
    # Only the first day: everything but lou's unanswered verdict, which needs 24 hours.
    first_day = ["--since", "2026-09-07", "--until", "2026-09-07"]
    result = runner.invoke(cli, ["report", "--db", str(database), *first_day, "-f", "csv"])
    assert result.exit_code == 0 and result.stdout.startswith("member_id,display_name")

    out = tmp_path / "report.html"
    result = runner.invoke(
        cli,
        ["report", "--db", str(database), *days, "--format", "html", "--output", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert out.read_text().count("data:image/png;base64,") == 4

    text = runner.invoke(cli, ["report", "--db", str(database), *days])
    assert text.exit_code == 0 and "Hearth report" in text.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--format", "pdf"], "--format must be one of"),
        (["--community", "nope"], "no community 'nope'"),
        (["--since", "2026-09-10", "--until", "2026-09-08"], "--since must not be after"),
        (["--since", "7 Sept"], "expected a date like"),
        (["--since", "0001-01-01"], "--since: expected a date between 1970-01-01 and 2999-12-31"),
    ],
)
def test_hearth_report_cli_errors(database, args, message):
    from bot.cli import cli

    result = CliRunner().invoke(cli, ["report", "--db", str(database), *args])
    assert result.exit_code == 2
    assert message in result.stderr


def test_hearth_report_needs_an_existing_database(tmp_path):
    from bot.cli import cli

    missing = tmp_path / "missing.db"
    result = CliRunner().invoke(cli, ["report", "--db", str(missing), "--format", "json"])
    assert result.exit_code == 2 and "no such database file" in result.stderr
    assert not missing.exists()


# -- the demo chapter -----------------------------------------------------------------------------


async def test_demo_chapter_prints_figures_and_writes_the_html_report(session, tmp_path):
    import random

    from rich.console import Console

    from bot.demo import Demo, chapters
    from bot.demo_analytics import REPORT_NAME, AnalyticsChapter

    assert any(isinstance(c, AnalyticsChapter) for c in chapters())
    await course_with_known_patterns(session)
    out = io.StringIO()
    demo = Demo(
        session.app,
        session,
        Console(file=out, width=120),
        random.Random(1),
        tmp_path,
        START,
    )
    chapter = AnalyticsChapter()
    await chapter.during(demo, 0)
    await chapter.report(demo)
    printed = out.getvalue()
    assert "Reciprocity" in printed and "many-to-many" in printed
    assert "Isolated learners" in printed
    path = tmp_path / REPORT_NAME
    assert path.exists() and str(path) in printed.replace("\n", "")
    assert path.read_text().count("data:image/png;base64,") == 4
