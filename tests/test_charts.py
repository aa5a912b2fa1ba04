"""Activity charts drawn on a reused figure are the charts a new figure draws, byte for byte,
whatever was drawn on it before and from however many threads at once."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import pytest

from bot import charts
from bot.charts import activity_chart


@pytest.fixture(autouse=True)
def no_kept_figures():
    charts._reused.clear()
    yield
    charts._reused.clear()


def _week(seed: int, days: int = 8) -> tuple[list[date], dict[str, list[int]], list[int]]:
    rng = random.Random(seed)
    labels = [date(2026, 11, 9) + timedelta(days=seed + i) for i in range(days)]
    series = {
        kind: [rng.randint(0, 10 ** rng.randint(1, 5)) for _ in labels]
        for kind in charts.KIND_COLORS
    }
    return labels, series, [sum(v[i] for v in series.values()) for i in range(days)]


def _fresh(labels, series, total, **kw) -> bytes:
    charts._reused.clear()
    return activity_chart(labels, series, total=total, **kw)


def test_a_reused_figure_draws_what_a_new_one_draws():
    weeks = [_week(seed) for seed in range(4)]
    expected = [_fresh(*week) for week in weeks]
    assert len(set(expected)) == 4
    charts._reused.clear()
    # Big numbers, then small ones, then big again: every axis, tick and bar follows.
    for i in (0, 1, 2, 3, 2, 0, 3, 1):
        assert activity_chart(*weeks[i][:2], total=weeks[i][2]) == expected[i]
    assert len(charts._reused) == 1  # one shape, one figure


def test_charts_of_other_shapes_get_figures_of_their_own_up_to_a_bound():
    weeks = [_week(days, days=days) for days in range(charts._REUSED_MAX + 3)]  # 0 days too
    expected = [_fresh(*week) for week in weeks]
    charts._reused.clear()
    for _ in range(2):
        for week, png in zip(weeks, expected, strict=True):
            assert activity_chart(*week[:2], total=week[2]) == png
    assert len(charts._reused) == charts._REUSED_MAX


def test_charts_drawn_from_several_threads_at_once_are_each_right():
    weeks = [_week(seed) for seed in range(6)]
    expected = [_fresh(*week) for week in weeks]
    charts._reused.clear()
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(
            pool.map(lambda i: activity_chart(*weeks[i % 6][:2], total=weeks[i % 6][2]), range(24))
        )
    assert got == [expected[i % 6] for i in range(24)]


def test_every_number_and_label_shows():
    labels, series, total = _week(1)
    bigger_total = [*total[:3], total[3] + 999, *total[4:]]
    bigger_idea = {
        **series,
        "idea": [*series["idea"][:2], series["idea"][2] + 999, *series["idea"][3:]],
    }
    later = [d + timedelta(days=1) for d in labels]
    drawn = {
        activity_chart(*args, total=t)
        for args, t in (
            ((labels, series), total),
            ((labels, series), bigger_total),
            ((labels, bigger_idea), total),
            ((later, series), total),
        )
    }
    assert len(drawn) == 4
