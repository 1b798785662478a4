"""An account's equity history: bounded, oldest first, readings only."""

from __future__ import annotations

import pytest

from bot.daemon.equity_history import EQUITY_POINTS, EquityHistory


def test_it_keeps_the_last_points_oldest_first():
    history = EquityHistory()
    for i in range(EQUITY_POINTS + 5):
        history.add(1_000.0 + i, 10_000.0 + i)
    points = history.points()
    assert len(points) == EQUITY_POINTS
    assert points[0] == (1_005.0, 10_005.0)
    assert points[-1] == (1_000.0 + EQUITY_POINTS + 4, 10_000.0 + EQUITY_POINTS + 4)


@pytest.mark.parametrize(
    "wall, usd", [(1.0, float("nan")), (1.0, float("inf")), (float("nan"), 5.0)]
)
def test_a_value_that_is_no_number_is_no_point(wall, usd):
    history = EquityHistory(maxlen=3)
    history.add(0.0, 100.0)
    history.add(wall, usd)
    assert history.points() == [(0.0, 100.0)]


def test_an_empty_history_is_refused():
    with pytest.raises(ValueError, match="at least one point"):
        EquityHistory(maxlen=0)
