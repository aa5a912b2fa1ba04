"""The analytics report: built once, rendered as text, JSON, CSV or one self-contained HTML file.

:func:`build_report` computes the analytics of a community and window and turns them into one
plain, JSON-ready dictionary (:attr:`Report.data`); every renderer reads that dictionary, so the
formats never disagree. The JSON rendering *is* that dictionary; its keys are a stable,
documented interface (README, "The JSON report") and ``schema`` names its version:

- ``schema``, ``community`` {id, name, timezone}, ``generated_at``, ``since``, ``until``
- ``contributions`` (total), ``words``, ``by_kind`` {kind: count}, ``by_edge_kind``
  {reply|mention|reaction|kudos: interactions}
- ``members``, ``facilitators``, ``active_members``, ``interactions``
- ``threads``, ``thread_patterns`` {pattern: threads}
- ``patterns`` {pattern or "inactive": learners}
- ``network`` {density, reciprocity, facilitator_share, facilitator_centric, isolated[],
  brokers[], betweenness_sampled}
- ``replies`` {posts, answered, median_first_reply_minutes, unanswered, unanswered_after_hours}
- ``unanswered_posts`` [], ``daily`` [], ``weekly`` [], ``edges`` [], ``thresholds`` {}
- ``learners`` [one per member: counts, pattern, previous_pattern, quiet_state ...]

Keys are only ever added within one ``schema`` version, never renamed or removed.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bot.analytics import LABELS, PATTERN_MEANING, PATTERNS, Analytics, compute_analytics
from bot.config import Settings
from bot.wording import counted
from storage.analytics_queries import KIND_BITS
from storage.repos import Store

log = logging.getLogger(__name__)

SCHEMA = "hearth-report/1"
FORMATS = ("text", "json", "csv", "html")
#: Columns of the CSV rendering (one row per member), in order.
CSV_COLUMNS = (
    "member_id",
    "display_name",
    "facilitator",
    "contributions",
    "words",
    *KIND_BITS,
    "interactions_given",
    "interactions_received",
    "partners",
    "reciprocal_partners",
    "pattern",
    "previous_pattern",
    "quiet_state",
    "betweenness",
)


@dataclass(slots=True)
class Report:
    data: dict[str, Any]
    analytics: Analytics
    charts: dict[str, bytes] = field(default_factory=dict)


def _iso(value: datetime | date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value.isoformat()


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


async def build_report(
    store: Store,
    community_id: str,
    *,
    since: datetime,
    until: datetime,
    settings: Settings,
    generated_at: datetime | None = None,
) -> Report:
    """Compute the analytics of ``(since, until]`` and shape them into the report dictionary."""
    community = await store.get_community(community_id)
    if community is None:
        raise LookupError(f"no community {community_id!r} in this database")
    a = await compute_analytics(
        store,
        community_id,
        since=since,
        until=until,
        settings=settings.analytics,
        facilitator_ids=settings.course.facilitator_ids,
    )
    return Report(report_data(a, community, generated_at or datetime.now(UTC)), a)


def report_data(a: Analytics, community: dict[str, Any], generated_at: datetime) -> dict[str, Any]:
    """The JSON-ready report dictionary (see the module docstring for its keys)."""
    f = a.figures
    s = a.settings
    days = _days(a)
    return {
        "schema": SCHEMA,
        "community": {
            "id": community["id"],
            "name": community.get("name") or community["id"],
            "timezone": community.get("timezone") or "UTC",
        },
        "generated_at": _iso(generated_at),
        "since": _iso(a.since),
        "until": _iso(a.until),
        "contributions": f.contributions,
        "words": f.words,
        "by_kind": dict(a.by_kind),
        "by_edge_kind": dict(a.by_edge_kind),
        "members": f.members,
        "facilitators": f.facilitators,
        "active_members": f.active_members,
        "interactions": f.interactions,
        "threads": f.threads,
        "thread_patterns": dict(a.thread_patterns),
        "patterns": dict(a.patterns),
        "network": {
            "density": _r(f.density, 6),
            "reciprocity": _r(f.reciprocity),
            "facilitator_share": _r(f.facilitator_share),
            "facilitator_centric": f.facilitator_centric,
            "isolated": list(f.isolated),
            "brokers": [
                {"member_id": m, "display_name": a.name(m), "betweenness": _r(v)}
                for m, v in f.brokers
            ],
            "betweenness_sampled": f.betweenness_sampled,
        },
        "replies": {
            "posts": f.posts,
            "answered": f.answered,
            "median_first_reply_minutes": _r(f.median_first_reply_minutes, 1),
            "unanswered": f.unanswered,
            "unanswered_after_hours": s.unanswered_hours,
        },
        "unanswered_posts": [
            {
                "message_id": p.message_id,
                "member_id": p.member_id,
                "display_name": a.name(p.member_id),
                "channel_id": p.channel_id,
                "created_at": _iso(p.created_at),
            }
            for p in a.unanswered_posts
        ],
        "daily": days,
        "weekly": [
            {
                "start": _iso(w.start),
                "end": _iso(w.start + timedelta(days=7)),
                "contributions": w.contributions,
                "active_members": w.active_members,
                "interactions": w.interactions,
                "facilitator_share": _r(w.facilitator_interactions / w.interactions)
                if w.interactions
                else None,
            }
            for w in a.weekly
        ],
        "edges": [
            {
                "source": p.source,
                "target": p.target,
                "interactions": p.count,
                "weight": _r(p.weight),
            }
            for p in sorted(a.pairs)
        ],
        "thresholds": {
            "window_days": (a.until - a.since).total_seconds() / 86400,
            "weights": {
                "reply": s.reply_weight,
                "mention": s.mention_weight,
                "reaction": s.reaction_weight,
                "kudos": s.kudos_weight,
            },
            "one_to_one_share": s.one_to_one_share,
            "many_to_many_partners": s.many_to_many_partners,
            "facilitator_centric_share": s.facilitator_centric_share,
            "unanswered_hours": s.unanswered_hours,
            "quiet_days": s.quiet_days,
            "dropping_ratio": s.dropping_ratio,
        },
        "learners": [
            {
                "member_id": x.member_id,
                "display_name": x.display_name,
                "facilitator": x.is_facilitator,
                "contributions": x.contributions,
                "words": x.words,
                "by_kind": dict(x.by_kind),
                "interactions_given": x.interactions_given,
                "interactions_received": x.interactions_received,
                "partners": x.partners,
                "reciprocal_partners": x.reciprocal_partners,
                "pattern": x.pattern,
                "previous_pattern": x.previous_pattern,
                "quiet_state": x.quiet_state,
                "quiet_detail": x.quiet_detail,
                "betweenness": _r(x.betweenness),
            }
            for x in sorted(a.learners.values(), key=lambda x: (x.display_name, x.member_id))
        ],
    }


def _days(a: Analytics) -> list[dict[str, Any]]:
    """One entry per UTC day of the window, days without contributions included."""
    by_day = {d.day: d for d in a.daily}
    first = (a.since + timedelta(microseconds=1)).date()
    last = a.until.date()
    out = []
    day = first
    while day <= last:
        d = by_day.get(day)
        out.append(
            {
                "date": day.isoformat(),
                "contributions": d.contributions if d else 0,
                "by_kind": dict(d.by_kind) if d else dict.fromkeys(KIND_BITS, 0),
            }
        )
        day += timedelta(days=1)
    return out


# -- charts ---------------------------------------------------------------------------------------


def network_picture(a: Analytics, *, title: str | None = None) -> bytes:
    """The interaction network of the analytics as PNG bytes (members who did something)."""
    from bot.charts import NetworkNode, network_chart

    degree = {m for p in a.pairs for m in (p.source, p.target)}
    nodes = [
        NetworkNode(
            x.member_id, x.display_name, float(x.contributions), x.pattern, x.is_facilitator
        )
        for x in a.learners.values()
        if x.contributions > 0 or x.member_id in degree or x.is_facilitator
    ]
    left_out = len(a.learners) - len(nodes)
    heading = title or f"Interactions {a.since:%d %b} to {a.until:%d %b %Y}"
    if left_out:
        heading += f"; {left_out} without activity not drawn"
    return network_chart(
        nodes,
        [(p.source, p.target, p.count) for p in a.pairs],
        title=heading,
        seed=a.settings.seed,
        max_nodes=a.settings.chart_max_nodes,
    )


def report_charts(report: Report) -> dict[str, bytes]:
    """Every chart of the HTML report, rendered once and kept on the report."""
    from bot.charts import activity_chart, pattern_chart

    if report.charts:
        return report.charts
    d = report.data
    days = [date.fromisoformat(x["date"]) for x in d["daily"]]
    report.charts["activity"] = activity_chart(
        days,
        {kind: [x["by_kind"][kind] for x in d["daily"]] for kind in KIND_BITS},
        total=[x["contributions"] for x in d["daily"]],
        title="Contributions per day, by kind",
    )
    report.charts["network"] = network_picture(report.analytics)
    report.charts["patterns"] = pattern_chart(
        d["patterns"], title="Learners by interaction pattern"
    )
    # Weeks before the course had any activity would only flatten the picture.
    weekly = list(d["weekly"])
    while len(weekly) > 1 and not (weekly[0]["contributions"] or weekly[0]["interactions"]):
        weekly.pop(0)
    weeks = [datetime.fromisoformat(w["start"]).date() for w in weekly]
    report.charts["weekly"] = activity_chart(
        [f"week of {w:%d %b}" for w in weeks],
        {
            "active members": [w["active_members"] for w in weekly],
            "interactions": [w["interactions"] for w in weekly],
        },
        total=[w["contributions"] for w in weekly],
        title="Week by week",
        ylabel="count",
        colors={"active members": "#0072B2", "interactions": "#009E73"},
    )
    return report.charts


# -- renderers ----------------------------------------------------------------------------------


def render_json(report: Report) -> str:
    return json.dumps(report.data, indent=2, ensure_ascii=False) + "\n"


def render_csv(report: Report) -> str:
    """One row per member with the columns of :data:`CSV_COLUMNS` (for a spreadsheet)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for x in report.data["learners"]:
        row = {**x, **x["by_kind"], "facilitator": "yes" if x["facilitator"] else "no"}
        writer.writerow(["" if row.get(c) is None else row[c] for c in CSV_COLUMNS])
    return buffer.getvalue()


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _minutes(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value < 90:
        return f"{value:.0f} min"
    if value < 48 * 60:
        return f"{value / 60:.1f} h"
    return f"{value / 1440:.1f} days"


def overview_rows(d: dict[str, Any]) -> list[tuple[str, str]]:
    n = d["network"]
    r = d["replies"]
    return [
        (
            "Members",
            f"{d['members']} ({d['facilitators']} facilitator"
            f"{'' if d['facilitators'] == 1 else 's'})",
        ),
        ("Active members", str(d["active_members"])),
        ("Contributions", f"{d['contributions']} ({counted(d['words'], 'word')})"),
        ("Interactions", str(d["interactions"])),
        ("Threads", str(d["threads"])),
        ("Density", f"{n['density']:.4f}"),
        ("Reciprocity", _share(n["reciprocity"])),
        (
            "Facilitator share of interactions",
            _share(n["facilitator_share"])
            + (" (facilitator-centric)" if n["facilitator_centric"] else ""),
        ),
        ("Isolated learners", str(len(n["isolated"]))),
        ("Median time to first reply", _minutes(r["median_first_reply_minutes"])),
        (
            f"Unanswered after {r['unanswered_after_hours']} h",
            f"{r['unanswered']} of {r['posts']} top-level posts",
        ),
    ]


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    for row in rows:
        out.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return out


def _learner_rows(d: dict[str, Any]) -> list[list[str]]:
    rows = []
    for x in d["learners"]:
        rows.append(
            [
                x["display_name"] + (" (facilitator)" if x["facilitator"] else ""),
                str(x["contributions"]),
                *(str(x["by_kind"][k]) for k in KIND_BITS),
                str(x["interactions_given"]),
                str(x["interactions_received"]),
                x["pattern"],
                x["previous_pattern"] or "",
                x["quiet_state"] or "",
            ]
        )
    return rows


LEARNER_HEADERS = [
    "member",
    "total",
    *(k.replace("_", " ") for k in KIND_BITS),
    "given",
    "received",
    "pattern",
    "before",
    "state",
]


def render_text(report: Report) -> str:
    """A plain-text report for a terminal or an email."""
    d = report.data
    lines = [
        f"Hearth report: {d['community']['name']}",
        f"{d['since'][:16].replace('T', ' ')} to {d['until'][:16].replace('T', ' ')} UTC",
        "",
    ]
    rows = overview_rows(d)
    width = max(len(k) for k, _v in rows)
    lines += [f"{k.ljust(width)}  {v}" for k, v in rows]
    lines += [
        "",
        "Contributions by kind: "
        + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in d["by_kind"].items()),
    ]
    lines += [
        "Learners by pattern: " + ", ".join(f"{k} {d['patterns'][k]}" for k in LABELS),
        "Threads by pattern: " + ", ".join(f"{k} {d['thread_patterns'][k]}" for k in PATTERNS),
        "Brokers: "
        + (
            ", ".join(
                f"{b['display_name']} ({b['betweenness']:.2f})" for b in d["network"]["brokers"]
            )
            or "none"
        ),
    ]
    names = {x["member_id"]: x["display_name"] for x in d["learners"]}
    if d["network"]["isolated"]:
        lines.append("Isolated: " + ", ".join(names.get(m, m) for m in d["network"]["isolated"]))
    lines += ["", "Week by week:"]
    lines += _table(
        ["week of", "contributions", "active", "interactions", "facilitator share"],
        [
            [
                w["start"][:10],
                str(w["contributions"]),
                str(w["active_members"]),
                str(w["interactions"]),
                _share(w["facilitator_share"]),
            ]
            for w in d["weekly"]
        ],
    )
    lines += ["", "Learners:"]
    lines += _table(LEARNER_HEADERS, _learner_rows(d))
    if d["unanswered_posts"]:
        lines += ["", f"Unanswered posts ({d['replies']['unanswered']}):"]
        for p in d["unanswered_posts"][:20]:
            lines.append(
                f"  {p['created_at'][:16].replace('T', ' ')}  #{p['channel_id']}  "
                f"{p['display_name']} (message {p['message_id']})"
            )
        if d["replies"]["unanswered"] > 20:
            lines.append(f"  ... and {d['replies']['unanswered'] - 20} more")
    return "\n".join(lines) + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;
max-width:1100px;padding:0 1rem;color:#222;line-height:1.45}
h1{margin-bottom:.2rem}.sub{color:#666;margin-top:0}
table{border-collapse:collapse;margin:.5rem 0 1.5rem;font-size:.92rem}
th,td{border-bottom:1px solid #e3e3e3;padding:.3rem .6rem;text-align:left}
th{background:#f6f6f6}td.n{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;height:auto;border:1px solid #eee;margin:.5rem 0}
.cards{display:flex;flex-wrap:wrap;gap:.8rem}.card{border:1px solid #e3e3e3;border-radius:6px;
padding:.6rem .9rem;min-width:150px}.card b{display:block;font-size:1.3rem}
.pill{display:inline-block;border-radius:9px;padding:0 .5rem;color:#fff;font-size:.82rem}
dl dt{font-weight:600}dl dd{margin:0 0 .5rem 1rem}
"""


def _img(data: bytes, alt: str) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img src="data:image/png;base64,{encoded}" alt="{html.escape(alt)}">'


def render_html(report: Report, *, charts: bool = True) -> str:
    """One self-contained HTML file: styles inline, charts embedded as ``data:`` PNGs."""
    from bot.charts import PATTERN_COLORS

    d = report.data
    e = html.escape
    pictures = report_charts(report) if charts else {}
    name = e(d["community"]["name"])
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Hearth report: {name}</title><style>{_CSS}</style></head><body>",
        f"<h1>{name}</h1>",
        f'<p class="sub">Hearth participation report, {e(d["since"][:10])} to '
        f"{e(d['until'][:16].replace('T', ' '))} UTC, generated "
        f"{e(d['generated_at'][:16].replace('T', ' '))} UTC</p>",
        "<h2>Course overview</h2>",
        '<div class="cards">',
    ]
    for label, value in overview_rows(d):
        out.append(f'<div class="card">{e(label)}<b>{e(value)}</b></div>')
    out.append("</div>")
    out.append("<h3>Contributions by kind</h3><table><tr>")
    out += [f"<th>{e(k.replace('_', ' '))}</th>" for k in d["by_kind"]]
    out.append("</tr><tr>")
    out += [f'<td class="n">{v}</td>' for v in d["by_kind"].values()]
    out.append("</tr></table>")
    out.append("<h2>Activity over time</h2>")
    if "activity" in pictures:
        out.append(_img(pictures["activity"], "Contributions per day, by kind"))
    if "weekly" in pictures:
        out.append(_img(pictures["weekly"], "Week by week"))
    out.append("<table><tr><th>week of</th><th>contributions</th><th>active members</th>")
    out.append("<th>interactions</th><th>facilitator share</th></tr>")
    for w in d["weekly"]:
        out.append(
            f"<tr><td>{e(w['start'][:10])}</td><td class='n'>{w['contributions']}</td>"
            f"<td class='n'>{w['active_members']}</td><td class='n'>{w['interactions']}</td>"
            f"<td class='n'>{e(_share(w['facilitator_share']))}</td></tr>"
        )
    out.append("</table>")
    out.append("<h2>Interaction network</h2>")
    if "network" in pictures:
        out.append(_img(pictures["network"], "Interaction network"))
    brokers = ", ".join(
        f"{e(b['display_name'])} ({b['betweenness']:.2f})" for b in d["network"]["brokers"]
    )
    out.append(f"<p><b>Brokers</b> (connect otherwise separate members): {brokers or 'none'}</p>")
    out.append("<h2>Interaction patterns</h2>")
    if "patterns" in pictures:
        out.append(_img(pictures["patterns"], "Learners by interaction pattern"))
    out.append("<table><tr><th>pattern</th><th>learners</th><th>threads</th><th>meaning</th></tr>")
    for label in LABELS:
        colour = PATTERN_COLORS.get(label, "#888")
        threads = d["thread_patterns"].get(label, "")
        out.append(
            f'<tr><td><span class="pill" style="background:{colour}">{e(label)}</span></td>'
            f"<td class='n'>{d['patterns'][label]}</td><td class='n'>{threads}</td>"
            f"<td>{e(PATTERN_MEANING[label])}</td></tr>"
        )
    out.append("</table>")
    out.append("<h2>Learners</h2><table><tr>")
    out += [f"<th>{e(h)}</th>" for h in LEARNER_HEADERS]
    out.append("</tr>")
    for row in _learner_rows(d):
        cells = []
        for i, cell in enumerate(row):
            numeric = 1 <= i <= 2 + len(KIND_BITS) + 1
            cells.append(f"<td class='n'>{e(cell)}</td>" if numeric else f"<td>{e(cell)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    r = d["replies"]
    out.append(
        f"<h2>Unanswered posts</h2><p>{r['unanswered']} of {r['posts']} top-level learner posts "
        f"had no reply from anyone after {r['unanswered_after_hours']} hours.</p>"
    )
    if d["unanswered_posts"]:
        out.append("<table><tr><th>posted</th><th>by</th><th>channel</th><th>message</th></tr>")
        for p in d["unanswered_posts"]:
            out.append(
                f"<tr><td>{e(p['created_at'][:16].replace('T', ' '))}</td>"
                f"<td>{e(p['display_name'])}</td><td>#{e(p['channel_id'])}</td>"
                f"<td>{e(p['message_id'])}</td></tr>"
            )
        out.append("</table>")
    t = d["thresholds"]
    out.append("<h2>How to read this</h2><dl>")
    out.append(
        f"<dt>Patterns</dt><dd>Labelled per learner over the report window. many-to-many: "
        f"interaction both ways with at least {t['many_to_many_partners']} members; one-to-one: "
        f"at least {t['one_to_one_share']:.0%} of the interaction is with one partner; "
        "one-to-many: several partners, little back-and-forth; one-alone: posts, but no "
        "interaction either way.</dd>"
    )
    weights = ", ".join(f"{k} {v:g}" for k, v in t["weights"].items())
    out.append(f"<dt>Interaction weights</dt><dd>{e(weights)}</dd>")
    out.append(
        "<dt>Quiet states</dt><dd>new (never posted), quiet (no contribution for "
        f"{t['quiet_days']} days), isolated (posts, no replies either way), dropping (this "
        f"week below {t['dropping_ratio']:.0%} of the learner's own weekly level).</dd></dl>"
    )
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def render(report: Report, fmt: str) -> str:
    if fmt == "text":
        return render_text(report)
    if fmt == "json":
        return render_json(report)
    if fmt == "csv":
        return render_csv(report)
    if fmt == "html":
        return render_html(report)
    raise ValueError(f"unknown format {fmt!r} (use one of {', '.join(FORMATS)})")
