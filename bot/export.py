"""The gradebook export: one CSV row per learner for a date range.

Columns (:data:`EXPORT_COLUMNS`), all counted over the learner's messages in the range:

- ``posts``: every contribution (message) they posted;
- ``replies``: contributions that build on someone else (a reply to, quote of or mention of
  another member: the ``builds_on`` kind);
- ``references``, ``questions``, ``support``: contributions of those kinds (a message can be
  several kinds at once, so these do not add up to ``posts``);
- ``reflections``: reflection prompts they answered (a prompt counts once however many
  messages they posted in its thread);
- ``words``: words across their contributions;
- ``active_days``: distinct days, in the course timezone, with at least one contribution;
- ``kudos_received``: peer kudos they received.

The range is whole local days, ``from`` to ``to`` inclusive, in the course timezone. Learners
are every non-bot member who is not a facilitator, including people who left (a gradebook
still needs their row) and people with no activity (a row of zeros). Display names that a
spreadsheet would run as a formula are defused (``'=cmd``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import astuple, dataclass
from datetime import date, datetime, timedelta

from bot.cohort import local_midnight
from bot.summary_content import safe_cell
from storage import summary_queries as sq
from storage.reflections_queries import ReflectionRepo
from storage.repos import Store

EXPORT_COLUMNS: tuple[str, ...] = (
    "member_id",
    "display_name",
    "posts",
    "replies",
    "references",
    "questions",
    "support",
    "reflections",
    "words",
    "active_days",
    "kudos_received",
)


@dataclass(frozen=True, slots=True)
class ExportRow:
    member_id: str
    display_name: str
    posts: int = 0
    replies: int = 0
    references: int = 0
    questions: int = 0
    support: int = 0
    reflections: int = 0
    words: int = 0
    active_days: int = 0
    kudos_received: int = 0


def day_starts(first: date, last: date, timezone: str) -> list[datetime]:
    """UTC instants at which each local day from ``first`` to ``last`` begins."""
    return [
        local_midnight(first + timedelta(days=i), timezone) for i in range((last - first).days + 1)
    ]


async def export_rows(
    store: Store,
    community_id: str,
    *,
    first: date,
    last: date,
    timezone: str,
    facilitators: set[str],
) -> list[ExportRow]:
    """One row per learner over the local days ``first`` to ``last`` (inclusive), by name."""
    if last < first:
        raise ValueError("the range ends before it starts")
    starts = day_starts(first, last, timezone)
    since = starts[0]
    until = local_midnight(last + timedelta(days=1), timezone)
    counts = await sq.member_counts(store, community_id, since, until)
    days = await sq.active_days(store, community_id, starts, until)
    kudos = await sq.kudos_received(store, community_id, since, until)
    reflections = await ReflectionRepo(store).per_member(community_id, since=since, until=until)
    rows: list[ExportRow] = []
    for member in await store.members(community_id):
        member_id = member["member_id"]
        if member_id in facilitators or member["is_facilitator"]:
            continue
        c = counts.get(member_id)
        by_kind = c.by_kind if c else {}
        rows.append(
            ExportRow(
                member_id=member_id,
                display_name=member["display_name"] or member_id,
                posts=c.contributions if c else 0,
                replies=by_kind.get("builds_on", 0),
                references=by_kind.get("reference", 0),
                questions=by_kind.get("question", 0),
                support=by_kind.get("support", 0),
                reflections=reflections.get(member_id, 0),
                words=c.words if c else 0,
                active_days=days.get(member_id, 0),
                kudos_received=kudos.get(member_id, 0),
            )
        )
    rows.sort(key=lambda r: (r.display_name.lower(), r.member_id))
    return rows


def export_csv(rows: list[ExportRow]) -> str:
    """The rows as CSV text with a header line (UTF-8, ``\\n`` line ends)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        values = list(astuple(row))
        values[0], values[1] = safe_cell(values[0]), safe_cell(values[1])
        writer.writerow(values)
    return buffer.getvalue()
