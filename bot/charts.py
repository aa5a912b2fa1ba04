"""Charts as PNG bytes: the interaction network, activity over time, a distribution.

Every function takes plain data (names, numbers, dates), not analytics objects, so weekly
summaries, reports and commands can all reuse them, and returns the PNG file's bytes ready for
a :class:`bot.actions.FileAttachment` or a ``data:`` URI.

matplotlib is used through its object API with the Agg canvas: no display, no pyplot global
state, safe to call from a worker thread (``asyncio.to_thread``) while the bot keeps running.
The same data and seed always give the same picture: nodes and edges are sorted before layout,
the layout is seeded, and the PNG carries no timestamp.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

#: Pattern colours, shared by the network picture and the pattern chart (colour-blind safe).
PATTERN_COLORS: dict[str, str] = {
    "many-to-many": "#009E73",
    "one-to-many": "#E69F00",
    "one-to-one": "#0072B2",
    "one-alone": "#D55E00",
    "inactive": "#BBBBBB",
}
KIND_COLORS: dict[str, str] = {
    "idea": "#0072B2",
    "builds_on": "#009E73",
    "reference": "#CC79A7",
    "question": "#E69F00",
    "support": "#D55E00",
}
_FALLBACK = ("#56B4E9", "#F0E442", "#999999", "#882255", "#44AA99", "#332288")


@dataclass(frozen=True, slots=True)
class NetworkNode:
    """One member in the network picture.

    ``size`` is drawn as area (contributions); ``group`` picks the colour (the pattern);
    ``marked`` members (facilitators) are drawn as outlined squares and always kept and named.
    """

    id: str
    label: str = ""
    size: float = 0.0
    group: str = ""
    marked: bool = False


def _figure(width: float, height: float, dpi: int):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    # No "Software"/date metadata: identical input gives identical bytes. zlib's fastest
    # level: the weekly chart took 5 ms less to encode and came out 36 KB against 32 KB.
    fig.savefig(buffer, format="png", metadata={"Software": None}, pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


def _color(group: str, colors: Mapping[str, str], index: int) -> str:
    return colors.get(group) or _FALLBACK[index % len(_FALLBACK)]


def _keep(
    nodes: list[NetworkNode], degree: Mapping[str, float], max_nodes: int
) -> list[NetworkNode]:
    """The nodes worth drawing when there are too many: marked ones, then the most active."""
    if len(nodes) <= max_nodes:
        return nodes
    marked = [n for n in nodes if n.marked]
    rest = sorted(
        (n for n in nodes if not n.marked),
        key=lambda n: (-(n.size + degree.get(n.id, 0.0)), n.id),
    )
    return sorted(marked + rest[: max(0, max_nodes - len(marked))], key=lambda n: n.id)


def _component_layout(graph, nodes: list[str], seed: int) -> dict:
    """Seeded spring layout of one connected component, centred in the unit disc."""
    import networkx as nx

    n = len(nodes)
    if n == 1:
        return {nodes[0]: (0.0, 0.0)}
    if n == 2:
        return {nodes[0]: (-0.6, 0.0), nodes[1]: (0.6, 0.0)}
    raw = nx.spring_layout(
        graph.subgraph(nodes),
        seed=seed,
        weight="weight",
        k=2.0 / math.sqrt(n),
        iterations=60 if n > 150 else 100,
    )
    cx = sum(p[0] for p in raw.values()) / n
    cy = sum(p[1] for p in raw.values()) / n
    # Scale by the 90th percentile distance, not the farthest one: a few dangling members
    # would otherwise squeeze the core of the conversation into a dot. Those beyond are
    # pulled in to the rim of the disc, keeping their direction.
    distances = sorted(math.hypot(p[0] - cx, p[1] - cy) for p in raw.values())
    radius = distances[int(0.9 * (n - 1))] or distances[-1] or 1.0
    out = {}
    for key, (px, py) in raw.items():
        dx, dy = (px - cx) / radius, (py - cy) / radius
        d = math.hypot(dx, dy)
        out[key] = (dx / d, dy / d) if d > 1.0 else (dx, dy)
    return out


def _layout(graph, seed: int, aspect: float) -> dict:
    """Each connected component laid out on its own and packed in rows, biggest first.

    A single spring layout flings separate groups (a pair who only talk to each other, a
    learner nobody answered) to random corners and squeezes the rest; packing keeps every
    group readable. A component's disc has an area proportional to its size.
    """
    import networkx as nx

    components = sorted(
        (sorted(c) for c in nx.connected_components(graph)), key=lambda c: (-len(c), c[0])
    )
    # A lone member needs less room than sqrt(1) of a group would give it.
    radii = [math.sqrt(len(c)) if len(c) > 1 else 0.6 for c in components]
    total = sum((2 * r) ** 2 for r in radii)
    row_width = max(2 * max(radii), math.sqrt(total * aspect))
    pos: dict = {}
    x = y = row_height = 0.0
    for nodes, r in zip(components, radii, strict=True):
        if x > 0 and x + 2 * r > row_width:
            x, y, row_height = 0.0, y - row_height, 0.0
        cx, cy = x + r, y - r
        for node, (px, py) in _component_layout(graph, nodes, seed).items():
            # 0.8: a margin between neighbouring components.
            pos[node] = (cx + 0.8 * r * px, cy + 0.8 * r * py)
        x += 2 * r
        row_height = max(row_height, 2 * r)
    return pos


def network_chart(
    nodes: Iterable[NetworkNode],
    edges: Iterable[tuple[str, str, float]],
    *,
    title: str = "",
    seed: int = 7,
    colors: Mapping[str, str] | None = None,
    max_nodes: int = 300,
    max_labels: int | None = None,
    marked_label: str = "facilitator",
    width: float = 11.0,
    height: float = 9.0,
    dpi: int = 100,
) -> bytes:
    """The interaction network as PNG bytes.

    ``edges`` are (source, target, count); both directions of a pair are drawn as one line
    whose width grows with the total count. Members are laid out with a seeded spring layout;
    beyond ``max_nodes`` only the most active (and every marked member) are drawn and the
    title says so. Names are written for every node up to 40 nodes, else for the marked and
    the ``max_labels`` (default 25) biggest.
    """
    import networkx as nx

    colors = dict(PATTERN_COLORS if colors is None else colors)
    all_nodes = sorted({n.id: n for n in nodes}.values(), key=lambda n: n.id)
    weights: dict[tuple[str, str], float] = {}
    for source, target, count in edges:
        if source == target:
            continue
        key = (source, target) if source < target else (target, source)
        weights[key] = weights.get(key, 0.0) + float(count)
    degree: dict[str, float] = {}
    for (a, b), w in weights.items():
        degree[a] = degree.get(a, 0.0) + w
        degree[b] = degree.get(b, 0.0) + w
    shown = _keep(all_nodes, degree, max_nodes)
    ids = {n.id for n in shown}
    shown_edges = sorted((k, w) for k, w in weights.items() if k[0] in ids and k[1] in ids)

    graph = nx.Graph()
    graph.add_nodes_from(n.id for n in shown)
    # log weights: a pair with 40 messages should pull harder than one with 2, not 20 times.
    graph.add_weighted_edges_from((a, b, 1.0 + math.log1p(w)) for (a, b), w in shown_edges)
    fig = _figure(width, height, dpi)
    # The legend gets its own strip on the right so it never hides members.
    ax = fig.add_axes((0.01, 0.03, 0.82, 0.9))
    ax.set_axis_off()
    ax.set_aspect("equal")
    heading = title or "Interaction network"
    if len(shown) < len(all_nodes):
        heading += f" (the {len(shown)} most active of {len(all_nodes)} members)"
    fig.suptitle(heading, fontsize=13)
    if not shown:
        ax.text(0.5, 0.5, "no members yet", ha="center", va="center", fontsize=14)
        return _png(fig)

    n = len(shown)
    pos = _layout(graph, seed, aspect=(width * 0.82) / (height * 0.9))
    if shown_edges:
        top = max(w for _k, w in shown_edges)
        from matplotlib.collections import LineCollection

        segments = [(pos[a], pos[b]) for (a, b), _w in shown_edges]
        widths = [0.4 + 4.0 * math.sqrt(w / top) for _k, w in shown_edges]
        ax.add_collection(
            LineCollection(segments, linewidths=widths, colors="#555555", alpha=0.35, zorder=1)
        )
    biggest = max((nd.size for nd in shown), default=0.0) or 1.0
    scale = 900.0 if n <= 60 else 400.0 if n <= 150 else 150.0

    def area(node: NetworkNode) -> float:
        # Facilitators get a floor so the marker is visible even when they post little.
        floor = 120.0 if node.marked else 12.0
        return floor + scale * math.sqrt(max(node.size, 0.0) / biggest)

    groups = sorted({nd.group for nd in shown}, key=lambda g: (g not in colors, g))
    order = [g for g in colors if g in groups] + [g for g in groups if g not in colors]
    for index, group in enumerate(order):
        members = [nd for nd in shown if nd.group == group]
        color = _color(group, colors, index)
        for marked, marker, edge, lw in ((False, "o", "white", 0.6), (True, "s", "black", 2.5)):
            part = [nd for nd in members if nd.marked is marked]
            if not part:
                continue
            ax.scatter(
                [pos[nd.id][0] for nd in part],
                [pos[nd.id][1] for nd in part],
                s=[area(nd) for nd in part],
                c=color,
                marker=marker,
                edgecolors=edge,
                linewidths=lw,
                zorder=3 if marked else 2,
                label=(group or "members") if not marked else None,
            )
    if any(nd.marked for nd in shown):
        ax.scatter(
            [],
            [],
            s=120,
            c="white",
            marker="s",
            edgecolors="black",
            linewidths=2.2,
            label=marked_label,
        )
    limit = max_labels if max_labels is not None else (n if n <= 40 else 25)
    named = [nd for nd in shown if nd.marked]
    named += sorted(
        (nd for nd in shown if not nd.marked),
        key=lambda nd: (-(nd.size + degree.get(nd.id, 0)), nd.id),
    )[:limit]
    font = 9 if n <= 60 else 7
    for nd in named:
        x, y = pos[nd.id]
        ax.annotate(
            nd.label or nd.id,
            (x, y),
            # Just above the marker: a scatter size is an area in points squared.
            xytext=(0, math.sqrt(area(nd)) / 2 + 2),
            textcoords="offset points",
            ha="center",
            fontsize=font,
            fontweight="bold" if nd.marked else "normal",
            zorder=4,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.7},
        )
    ax.legend(
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        fontsize=9,
        frameon=False,
        markerscale=0.6,
        title="pattern",
    )
    ax.margins(0.06)
    ax.autoscale_view()
    fig.text(
        0.99,
        0.005,
        "size: contributions, line width: interactions",
        ha="right",
        fontsize=8,
        color="#555555",
    )
    return _png(fig)


def _tick_labels(labels: Sequence[date | datetime | str]) -> list[str]:
    out = []
    for label in labels:
        if isinstance(label, datetime):
            out.append(label.strftime("%d %b"))
        elif isinstance(label, date):
            out.append(label.strftime("%a %d %b") if len(labels) <= 14 else label.strftime("%d %b"))
        else:
            out.append(str(label))
    return out


def activity_chart(
    labels: Sequence[date | datetime | str],
    series: Mapping[str, Sequence[float]],
    *,
    total: Sequence[float] | None = None,
    title: str = "Activity",
    ylabel: str = "contributions",
    total_label: str = "all contributions",
    colors: Mapping[str, str] | None = None,
    width: float = 10.0,
    height: float = 4.5,
    dpi: int = 100,
) -> bytes:
    """Activity over time as PNG bytes: grey bars for ``total`` (optional) and one line per
    series (e.g. per contribution kind; a message can have several kinds, so lines, not a
    stack). ``labels`` are the x positions: days, week starts or any text.

    A chart of the same shape as an earlier one (as many positions, the same series, titles,
    colours and size, as every weekly summary's) is drawn on that chart's figure with the
    new numbers, and comes out byte for byte as on a new figure. Building the figure and
    laying it out the first time took 20-30 ms of the weekly chart's 70-80.
    """
    shape = _ActivityShape(
        len(labels),
        tuple(series),
        total is not None,
        title,
        ylabel,
        total_label,
        tuple(sorted((KIND_COLORS if colors is None else colors).items())),
        width,
        height,
        dpi,
    )
    with _reuse_lock:
        chart = _reused.pop(shape, None) or _ActivityFigure(shape)
        _reused[shape] = chart  # the most recently used last
        while len(_reused) > _REUSED_MAX:
            del _reused[next(iter(_reused))]
        chart.update(labels, series, total)
        return _png(chart.fig)


@dataclass(frozen=True, slots=True)
class _ActivityShape:
    """What an activity chart's figure is built from: all but its numbers and labels."""

    positions: int
    series: tuple[str, ...]
    total: bool
    title: str
    ylabel: str
    total_label: str
    colors: tuple[tuple[str, str], ...]
    width: float
    height: float
    dpi: int


class _ActivityFigure:
    """An activity chart's figure, and the artists that carry its numbers."""

    def __init__(self, shape: _ActivityShape) -> None:
        from matplotlib.ticker import MaxNLocator

        colors = dict(shape.colors)
        width, height = shape.width, shape.height
        self.fig = fig = _figure(width, height, shape.dpi)
        self.ax = ax = fig.add_subplot(1, 1, 1)
        xs = list(range(shape.positions))
        zeros = [0] * shape.positions
        self.bars = None
        if shape.total:
            self.bars = ax.bar(xs, zeros, color="#DDDDDD", label=shape.total_label, zorder=1)
        self.lines = [
            ax.plot(
                xs,
                zeros,
                marker="o" if len(xs) <= 31 else None,
                markersize=3,
                linewidth=1.6,
                color=_color(name, colors, index),
                label=name.replace("_", " "),
                zorder=2,
            )[0]
            for index, name in enumerate(shape.series)
        ]
        # A fixed title position: left to matplotlib, it measures the axes' whole layout at
        # each draw to place it (about 4 ms of the weekly chart's 75).
        ax.set_title(shape.title, y=1.0, pad=8)
        ax.set_ylabel(shape.ylabel)
        ax.grid(axis="y", alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
        self.ticks = xs[:: max(1, math.ceil(len(xs) / 14))]
        if xs:
            ncols = min(3, len(shape.series) + shape.total)
            ax.legend(fontsize=8, ncols=ncols, loc="upper left")
        else:
            ax.text(0.5, 0.5, "no activity", ha="center", va="center", transform=ax.transAxes)
        # Five steps at most on the count axis: each tick is a handful of artists to make and
        # draw (the default, up to ten, cost the weekly chart about 7 ms of its 70).
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        # Fixed margins (in inches: rotated day or "week of" labels, counts up to six
        # digits), not tight_layout, which measured every text to find them (a quarter of the
        # chart's time).
        fig.subplots_adjust(
            left=0.95 / width, right=1 - 0.15 / width, top=1 - 0.4 / height, bottom=0.75 / height
        )

    def update(
        self,
        labels: Sequence[date | datetime | str],
        series: Mapping[str, Sequence[float]],
        total: Sequence[float] | None,
    ) -> None:
        """Put these numbers and labels on the figure."""
        for bar, value in zip(self.bars or (), total or (), strict=True):
            bar.set_height(value)
        for line, values in zip(self.lines, series.values(), strict=True):
            line.set_ydata(list(values))
        if self.ticks:
            text = _tick_labels(labels)
            self.ax.set_xticks(
                self.ticks, [text[i] for i in self.ticks], rotation=30, ha="right", fontsize=8
            )
        # Headroom above the highest bar or point so the legend never covers data.
        highest = max(
            [*(total or []), *(v for values in series.values() for v in values), 1], default=1
        )
        self.ax.set_ylim(0, highest * 1.35)


#: Activity figures kept for reuse (:func:`activity_chart`), by shape, the least recently used
#: first. One chart at a time draws on them: drawing holds the interpreter lock anyway. Each
#: kept figure holds about 2.4 MB (its canvas among them), so only two are kept: every weekly
#: summary's shape, and one more.
_reused: dict[_ActivityShape, _ActivityFigure] = {}
_reuse_lock = threading.Lock()
_REUSED_MAX = 2


def distribution_chart(
    counts: Mapping[str, float],
    *,
    title: str = "",
    xlabel: str = "learners",
    colors: Mapping[str, str] | None = None,
    width: float = 7.0,
    height: float = 3.2,
    dpi: int = 100,
) -> bytes:
    """A horizontal bar per label (in the given order) with its count written at the end."""
    colors = dict(PATTERN_COLORS if colors is None else colors)
    fig = _figure(width, height, dpi)
    ax = fig.add_subplot(1, 1, 1)
    names = list(counts)
    values = [float(counts[n]) for n in names]
    ys = list(range(len(names)))[::-1]
    ax.barh(ys, values, color=[_color(n, colors, i) for i, n in enumerate(names)])
    ax.set_yticks(ys, names)
    top = max(values, default=0.0) or 1.0
    for y, v in zip(ys, values, strict=True):
        ax.text(v + top * 0.01, y, f"{v:g}", va="center", fontsize=9)
    ax.set_xlim(0, top * 1.12)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return _png(fig)


def pattern_chart(counts: Mapping[str, float], *, title: str = "Interaction patterns") -> bytes:
    """How many learners show each interaction pattern (colours as in the network)."""
    return distribution_chart(counts, title=title, xlabel="learners", colors=PATTERN_COLORS)
