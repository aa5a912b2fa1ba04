"""Pure builders of summary messages: data in, :class:`~bot.actions.RichContent` out.

The summaries cog gathers numbers with grouped queries and hands them here as plain
dataclasses; everything in this module is synchronous, deterministic and free of I/O, so the
wording and the arithmetic are tested on constructed weeks without a database.

Three audiences, three rules (DESIGN sections 2 and 3):

- **Cohort summary** (public, cohort channel): what the group did, against last week, with the
  busiest conversations, newcomers welcomed by name, reflections and open questions. It never
  names anyone for doing little, never ranks, never compares individuals: the only names are
  newcomers being welcomed.
- **Facilitator report** (private DM): the per-learner table, network figures, unanswered
  posts, reply queue and alerts, with the table as CSV.
- **Learner mirror** (private DM, opt-in): the learner's own kinds, pattern, goal, and a
  relative band (lower, middle or upper third) instead of a rank.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from bot.actions import Field, FileAttachment, RichContent, Section
from bot.reflection_templates import Templates
from bot.wording import counted

KINDS: tuple[str, ...] = ("idea", "builds_on", "reference", "question", "support")
KIND_LABELS = {
    "idea": "ideas",
    "builds_on": "building on others",
    "reference": "references",
    "question": "questions",
    "support": "support",
}
BANDS = ("lower", "middle", "upper")
#: A band needs at least this many learners, or it would point at individuals.
MIN_BAND_COHORT = 3
REPORT_ROWS_SHOWN = 30


# -- links --------------------------------------------------------------------------------------


def message_link(platform: str, community_id: str, channel_id: str, message_id: str) -> str:
    """Where a message is, as the platform links to it (plain text on the console)."""
    if platform == "discord":
        return f"https://discord.com/channels/{community_id}/{channel_id}/{message_id}"
    if platform == "slack" and ":" in message_id:
        channel, ts = message_id.split(":", 1)
        return f"https://slack.com/archives/{channel}/p{ts.replace('.', '')}"
    return f"#{channel_id}, message {message_id}"


# -- small helpers ----------------------------------------------------------------------------


def _day(d: date | datetime, timezone: str) -> str:
    if isinstance(d, datetime):
        d = d.astimezone(ZoneInfo(timezone)).date()
    return f"{d:%a} {d.day} {d:%b}"


def _delta(now: int, before: int) -> str:
    if now == before:
        return "same as"
    return f"{now - before:+d} on"


def names_list(names: Sequence[str], *, limit: int = 8) -> str:
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    shown = names[:limit]
    rest = len(names) - len(shown)
    if rest:
        return ", ".join(shown) + f" and {rest} more"
    return ", ".join(shown[:-1]) + " and " + shown[-1]


def band_of(value: float, cohort: Sequence[float]) -> str | None:
    """Which third of the cohort ``value`` falls in: ``lower``, ``middle`` or ``upper``.

    By mid-rank percentile ((members below + half of those equal) / n), so ties share a band
    and nobody's position is exact; None when the cohort is too small for a band to be
    anonymous (fewer than :data:`MIN_BAND_COHORT`).
    """
    n = len(cohort)
    if n < MIN_BAND_COHORT:
        return None
    below = sum(1 for v in cohort if v < value)
    equal = sum(1 for v in cohort if v == value)
    share = (below + 0.5 * equal) / n
    if share < 1 / 3:
        return "lower"
    if share < 2 / 3:
        return "middle"
    return "upper"


# -- the week ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ThreadInfo:
    link: str
    channel_id: str
    messages: int
    participants: int


@dataclass(slots=True)
class WeekData:
    """Everything the cohort summary says about one week, already counted."""

    course: str
    timezone: str
    since: datetime
    until: datetime
    by_kind: dict[str, int]
    contributions: int
    last_by_kind: dict[str, int]
    last_contributions: int
    learners: int
    active_learners: int
    threads: list[ThreadInfo] = field(default_factory=list)
    newcomers: list[str] = field(default_factory=list)
    prompt_title: str | None = None
    reflections_answered: int = 0
    reflections_in_week: int = 0
    open_questions: int = 0
    open_question_links: list[str] = field(default_factory=list)
    #: (day, {kind: count}, total) for the chart, oldest first.
    daily: list[tuple[date, dict[str, int], int]] = field(default_factory=list)
    #: ``daily`` drawn as PNG (:func:`weekly_chart`), when it was asked for.
    chart: bytes | None = None

    def is_empty(self) -> bool:
        """Nothing happened: no contribution, no reflection, nobody new. No summary then."""
        return self.contributions == 0 and self.reflections_in_week == 0 and not self.newcomers


def cohort_summary(
    data: WeekData,
    templates: Templates,
    *,
    root: str = "course",
    chart: bytes | None = None,
    final: dict[str, str] | None = None,
) -> RichContent:
    """The public weekly summary (or, with ``final``, the end-of-course summary)."""
    t = templates
    tz = data.timezone
    start, end = _day(data.since, tz), _day(data.until, tz)
    sections: list[Section] = []
    if final is not None:
        title = t.render("final", "title", course=data.course)
        sections.append(Section("", t.render("final", "intro", course=data.course, **final)))
    else:
        title = t.render("summary", "title", course=data.course, start=start, end=end)
        sections.append(
            Section(
                "",
                t.render(
                    "summary",
                    "intro",
                    course=data.course,
                    contributions=counted(data.contributions, "contribution"),
                    active=data.active_learners,
                    learners=data.learners,
                    all_learners=counted(data.learners, "learner"),
                ),
            )
        )
    kinds = tuple(
        Field(
            KIND_LABELS[k],
            f"{data.by_kind.get(k, 0)}"
            + ("" if final is not None else f" ({data.last_by_kind.get(k, 0)})"),
            inline=True,
        )
        for k in KINDS
    )
    heading = (
        "Contributions by kind"
        if final is not None
        else t.render("summary", "contributions_heading")
    )
    body = (
        ""
        if final is not None
        else f"{data.contributions} in all, {_delta(data.contributions, data.last_contributions)}"
        f" last week ({data.last_contributions})."
    )
    sections.append(Section(heading, body, kinds))
    if data.threads:
        lines = [
            f"- {th.link}: {th.messages} messages from {th.participants} people"
            for th in data.threads
        ]
        sections.append(Section(t.render("summary", "threads_heading"), "\n".join(lines)))
    if data.newcomers and final is None:
        sections.append(
            Section(
                t.render("summary", "newcomers_heading"),
                t.render(
                    "summary",
                    "newcomers",
                    names=names_list(data.newcomers, limit=20),
                    count=len(data.newcomers),
                ),
            )
        )
    if final is None:
        if data.prompt_title:
            reflections = t.render(
                "summary",
                "reflections",
                answered=data.reflections_answered,
                learners=data.learners,
                all_learners=counted(data.learners, "learner"),
                title=data.prompt_title,
            )
        else:
            reflections = t.render("summary", "no_prompt")
        sections.append(Section(t.render("summary", "reflections_heading"), reflections))
        if data.open_questions:
            body = t.render(
                "summary",
                "questions",
                questions=counted(data.open_questions, "question"),
                count=data.open_questions,
            )
            body += "".join(f"\n- {link}" for link in data.open_question_links)
        else:
            body = t.render("summary", "no_questions")
        sections.append(Section(t.render("summary", "questions_heading"), body))
    image = (
        FileAttachment("week.png", chart, "image/png", "Contributions per day this week, by kind")
        if chart
        else None
    )
    return RichContent(
        title=title,
        sections=tuple(sections),
        footer=t.render("summary", "footer", command=f"/{root} me"),
        image=image,
    )


def weekly_chart(daily: list[tuple[date, dict[str, int], int]]) -> bytes:
    """The week's contributions per day by kind (``WeekData.daily``), as PNG (``bot.charts``)."""
    from bot.charts import activity_chart

    days = [d for d, _k, _n in daily]
    return activity_chart(
        days,
        {kind: [k.get(kind, 0) for _d, k, _n in daily] for kind in KINDS},
        total=[n for _d, _k, n in daily],
        title="Our week, day by day",
    )


# -- the learner mirror -----------------------------------------------------------------------


@dataclass(slots=True)
class MirrorData:
    course: str
    timezone: str
    since: datetime
    until: datetime
    by_kind: dict[str, int]
    contributions: int
    words: int
    last_contributions: int
    pattern: str
    pattern_meaning: str
    reflections: int
    goal: str | None
    band: str | None


def mirror_content(data: MirrorData, templates: Templates, *, root: str = "course") -> RichContent:
    """A learner's private weekly mirror. Relative, never a rank."""
    t = templates
    tz = data.timezone
    kinds = tuple(Field(KIND_LABELS[k], str(data.by_kind.get(k, 0)), inline=True) for k in KINDS)
    sections = [
        Section(
            "Your contributions",
            t.render(
                "mirror",
                "intro",
                contributions=counted(data.contributions, "contribution"),
                words=counted(data.words, "word"),
            )
            + f" Last week: {data.last_contributions}.",
            kinds,
        ),
        Section("How you interact", f"{data.pattern}: {data.pattern_meaning}."),
        Section(
            "Reflections",
            f"You shared {data.reflections} reflection{'s' if data.reflections != 1 else ''}"
            " this week.",
        ),
        Section(
            "Compared with the cohort",
            t.render("mirror", "band", band=data.band)
            if data.band
            else t.render("mirror", "band_unavailable"),
        ),
        Section(
            "Your goal",
            t.render("mirror", "goal", goal=data.goal)
            if data.goal
            else t.render("mirror", "no_goal", command=f"/{root} goal <your goal>"),
        ),
    ]
    return RichContent(
        title=t.render(
            "mirror",
            "title",
            course=data.course,
            start=_day(data.since, tz),
            end=_day(data.until, tz),
        ),
        sections=tuple(sections),
        footer=t.render("mirror", "footer", command=f"/{root} mirror off"),
    )


# -- the facilitator report ------------------------------------------------------------------


REPORT_COLUMNS: tuple[str, ...] = (
    "member_id",
    "display_name",
    "contributions",
    "words",
    *KINDS,
    "reflections",
    "pattern",
    "quiet_state",
    "nudges_sent",
    "nudges_came_back",
    "kudos_received",
    "kudos_given",
)


@dataclass(slots=True)
class LearnerLine:
    member_id: str
    name: str
    contributions: int
    words: int
    by_kind: dict[str, int]
    reflections: int
    pattern: str
    quiet_state: str
    nudges_sent: int | None
    nudges_came_back: int | None
    kudos_received: int
    kudos_given: int


@dataclass(slots=True)
class ReportData:
    course: str
    timezone: str
    since: datetime
    until: datetime
    figures: list[str]
    learners: list[LearnerLine]
    unanswered: list[str]
    unanswered_count: int
    reply_queue: list[str]
    alerts: list[str]
    nudges_available: bool


def _cell(value: int | None) -> str:
    return "-" if value is None else str(value)


def learner_table(lines: Sequence[LearnerLine], *, nudges: bool) -> str:
    """A fixed-width table that fits a phone-width code block (about 75 characters), with a
    legend for the short headings."""
    header = ["learner", "all", "idea", "build", "ref", "q", "sup", "refl", "pattern", "state"]
    if nudges:
        header.append("nudged")
    header.append("kudos")
    rows = [header]
    for x in lines:
        row = [
            x.name[:14],
            str(x.contributions),
            *(str(x.by_kind.get(k, 0)) for k in KINDS),
            str(x.reflections),
            x.pattern,
            x.quiet_state,
        ]
        if nudges:
            row.append(f"{_cell(x.nudges_sent)}/{_cell(x.nudges_came_back)}")
        row.append(str(x.kudos_received))
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    text = [
        " ".join(
            cell.ljust(w) if i in (0, 8, 9) else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in rows
    ]
    legend = (
        "all: contributions; build: building on others; ref: references; q: questions; "
        "sup: support; refl: reflections"
        + ("; nudged: sent/came back" if nudges else "")
        + "; kudos: received"
    )
    return "```\n" + "\n".join(text) + "\n```\n" + legend


def report_csv(lines: Sequence[LearnerLine]) -> str:
    """The per-learner table of the facilitator report, for a spreadsheet."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    for x in lines:
        writer.writerow(
            [
                x.member_id,
                safe_cell(x.name),
                x.contributions,
                x.words,
                *(x.by_kind.get(k, 0) for k in KINDS),
                x.reflections,
                x.pattern,
                x.quiet_state,
                "" if x.nudges_sent is None else x.nudges_sent,
                "" if x.nudges_came_back is None else x.nudges_came_back,
                x.kudos_received,
                x.kudos_given,
            ]
        )
    return buffer.getvalue()


def safe_cell(text: str) -> str:
    """A display name made safe for spreadsheets: a leading =, +, - or @ would be run as a
    formula (CSV injection), so it gets a leading apostrophe."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def facilitator_report(
    data: ReportData,
    templates: Templates,
    *,
    root: str = "course",
    network_png: bytes | None = None,
) -> tuple[RichContent, tuple[FileAttachment, ...]]:
    """The private facilitator report and its attachments (CSV; the network picture is the
    rich content's image)."""
    t = templates
    tz = data.timezone
    shown = data.learners[:REPORT_ROWS_SHOWN]
    table = learner_table(shown, nudges=data.nudges_available)
    if len(data.learners) > len(shown):
        table += f"\n{len(data.learners) - len(shown)} more learners in the CSV."
    sections = [
        Section("Alerts", "\n".join(f"- {a}" for a in data.alerts) or "Nothing needs you now."),
        Section("Learners", table),
        Section("Network", "\n".join(data.figures)),
    ]
    if data.unanswered_count:
        body = f"{counted(data.unanswered_count, 'post')} with no reply yet:\n" + "\n".join(
            f"- {line}" for line in data.unanswered
        )
        sections.append(Section("Unanswered posts", body))
    if data.reply_queue:
        sections.append(
            Section(
                "Reflection reply queue",
                "\n".join(f"- {line}" for line in data.reply_queue),
            )
        )
    image = (
        FileAttachment(
            "network.png", network_png, "image/png", "Who interacted with whom this week"
        )
        if network_png
        else None
    )
    start, end = _day(data.since, tz), _day(data.until, tz)
    rich = RichContent(
        title=t.render("report", "title", course=data.course, start=start, end=end),
        sections=tuple(sections),
        footer=t.render("report", "footer", command=f"/{root} export"),
        image=image,
    )
    stamp = data.until.astimezone(ZoneInfo(tz)).date().isoformat()
    files = (
        FileAttachment(
            f"hearth-report-{stamp}.csv",
            report_csv(data.learners).encode("utf-8"),
            "text/csv",
            "One row per learner",
        ),
    )
    return rich, files


def alerts(
    *,
    isolated: Sequence[str],
    states: Mapping[str, Sequence[str]],
    facilitator_share: float | None,
    facilitator_centric: bool,
    unanswered: int,
    open_questions: int,
    reply_queue: int,
    reflections_answered: int | None,
    learners: int,
) -> list[str]:
    """What a facilitator may want to act on this week, most pressing first."""
    out: list[str] = []
    if isolated:
        out.append(f"Isolated (posting, but nobody answers either way): {names_list(isolated)}")
    for state, label in (
        ("dropping", "Dropping off"),
        ("quiet", "Quiet for a week or more"),
        ("new", "Joined but not posted yet"),
    ):
        if states.get(state):
            out.append(f"{label}: {names_list(states[state])}")
    if facilitator_centric and facilitator_share is not None:
        out.append(
            f"{facilitator_share:.0%} of interactions go through facilitators: "
            "try handing questions back to the group."
        )
    if unanswered:
        out.append(f"{counted(unanswered, 'post')} still without a reply.")
    if open_questions:
        out.append(f"{counted(open_questions, 'question')} from this week without an answer.")
    if reply_queue:
        out.append(f"{counted(reply_queue, 'reflection')} waiting for a response.")
    if reflections_answered is not None and learners and reflections_answered * 2 < learners:
        out.append(
            f"Only {reflections_answered} of {counted(learners, 'learner')} answered the "
            "reflection prompt."
        )
    return out
