"""Indicators against hand computations, textbook loop implementations and published values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.strategy import indicators as ind

# --- textbook reference implementations: plain loops, written from the definitions ---


def ema_ref(x: list[float], n: int) -> list[float]:
    out = [math.nan] * len(x)
    if len(x) < n:
        return out
    out[n - 1] = sum(x[:n]) / n
    k = 2 / (n + 1)
    for i in range(n, len(x)):
        out[i] = x[i] * k + out[i - 1] * (1 - k)
    return out


def rsi_ref(c: list[float], n: int) -> list[float]:
    """Wilder: average gain/loss seeded with simple averages, then (prev*(n-1) + x) / n."""
    out = [math.nan] * len(c)
    if len(c) <= n:
        return out
    gains = [max(c[i] - c[i - 1], 0.0) for i in range(1, len(c))]
    losses = [max(c[i - 1] - c[i], 0.0) for i in range(1, len(c))]
    ag, al = sum(gains[:n]) / n, sum(losses[:n]) / n
    for i in range(n, len(c)):
        if i > n:
            ag = (ag * (n - 1) + gains[i - 1]) / n
            al = (al * (n - 1) + losses[i - 1]) / n
        if al == 0:
            out[i] = 50.0 if ag == 0 else 100.0
        else:
            out[i] = 100 - 100 / (1 + ag / al)
    return out


def tr_ref(h: list[float], lo: list[float], c: list[float]) -> list[float]:
    return [math.nan] + [
        max(h[i] - lo[i], abs(h[i] - c[i - 1]), abs(lo[i] - c[i - 1])) for i in range(1, len(c))
    ]


def atr_ref(h: list[float], lo: list[float], c: list[float], n: int) -> list[float]:
    tr = tr_ref(h, lo, c)
    out = [math.nan] * len(c)
    if len(c) <= n:
        return out
    out[n] = sum(tr[1 : n + 1]) / n
    for i in range(n + 1, len(c)):
        out[i] = (out[i - 1] * (n - 1) + tr[i]) / n
    return out


def adx_ref(h: list[float], lo: list[float], c: list[float], n: int) -> list[float]:
    """Wilder's DMI in his own form: running sums TRn, +DMn, -DMn (S - S/n + x), then ADX."""
    size = len(c)
    out = [math.nan] * size
    if size < 2 * n:
        return out
    tr = tr_ref(h, lo, c)
    pdm, mdm = [math.nan], [math.nan]
    for i in range(1, size):
        up, down = h[i] - h[i - 1], lo[i - 1] - lo[i]
        pdm.append(up if up > down and up > 0 else 0.0)
        mdm.append(down if down > up and down > 0 else 0.0)
    trs, ps, ms = sum(tr[1 : n + 1]), sum(pdm[1 : n + 1]), sum(mdm[1 : n + 1])
    dx = [math.nan] * size
    for i in range(n, size):
        if i > n:
            trs = trs - trs / n + tr[i]
            ps = ps - ps / n + pdm[i]
            ms = ms - ms / n + mdm[i]
        pdi = 100 * ps / trs if trs else 0.0
        mdi = 100 * ms / trs if trs else 0.0
        dx[i] = 100 * abs(pdi - mdi) / (pdi + mdi) if pdi + mdi else 0.0
    out[2 * n - 1] = sum(dx[n : 2 * n]) / n
    for i in range(2 * n, size):
        out[i] = (out[i - 1] * (n - 1) + dx[i]) / n
    return out


def close_enough(actual: np.ndarray, expected: list[float]) -> None:
    np.testing.assert_allclose(actual, np.array(expected), rtol=1e-9, atol=1e-9, equal_nan=True)


# Published worked example (StockCharts ChartSchool, "RSI"): 33 closes, RSI(14) from index 14.
STOCKCHARTS_CLOSES = [
    44.3389, 44.0902, 44.1497, 43.6124, 44.3278, 44.8264, 45.0955, 45.4245, 45.8433,
    46.0826, 45.8931, 46.0328, 45.6140, 46.2820, 46.2820, 46.0028, 46.0328, 46.4116,
    46.2222, 45.6439, 46.2122, 46.2521, 45.7137, 46.4515, 45.7835, 45.3548, 44.0288,
    44.1783, 44.2181, 44.5672, 43.4205, 42.6628, 43.1314,
]  # fmt: skip
STOCKCHARTS_RSI = [
    70.53, 66.32, 66.55, 69.41, 66.36, 57.97, 62.93, 63.26, 56.06, 62.38,
    54.71, 50.42, 39.99, 41.46, 41.87, 45.46, 37.30, 33.08, 37.77,
]  # fmt: skip


def ohlc(closes: list[float], wicks: list[float]) -> tuple[list[float], list[float], list[float]]:
    opens = closes[:1] + closes[:-1]
    high = [max(o, c) + w for o, c, w in zip(opens, closes, wicks, strict=True)]
    low = [min(o, c) - w / 2 for o, c, w in zip(opens, closes, wicks, strict=True)]
    return high, low, closes


# --- literal, hand-computed values ---


def test_ema_by_hand():
    # seed = mean(1, 2, 3) = 2; alpha = 2 / (3 + 1) = 0.5: 0.5*4 + 0.5*2 = 3, then 0.5*5 + 0.5*3 = 4
    close_enough(ind.ema(np.array([1.0, 2, 3, 4, 5]), 3), [math.nan, math.nan, 2.0, 3.0, 4.0])


def test_rsi_by_hand():
    # changes +1, +1, -1; period 2: seed gain (1+1)/2 = 1, loss 0 → 100;
    # then gain (1*1 + 0)/2 = 0.5, loss (0*1 + 1)/2 = 0.5 → 50
    close_enough(ind.rsi(np.array([1.0, 2, 3, 2]), 2), [math.nan, math.nan, 100.0, 50.0])


def test_rsi_matches_published_worked_example():
    got = ind.rsi(np.array(STOCKCHARTS_CLOSES), 14)
    assert np.isnan(got[:14]).all()
    np.testing.assert_allclose(got[14:], STOCKCHARTS_RSI, atol=0.005)


def test_atr_by_hand():
    high, low, close = [10.0, 12, 11, 15], [8.0, 9, 9, 12], [9.0, 11, 10, 14]
    # TR: -, max(3, |12-9|, |9-9|) = 3, max(2, |11-11|, |9-11|) = 2, max(3, |15-10|, |12-10|) = 5
    # ATR(2): (3 + 2)/2 = 2.5 at index 2, then (2.5*1 + 5)/2 = 3.75
    close_enough(ind.atr(high, low, close, 2), [math.nan, math.nan, 2.5, 3.75])
    close_enough(ind.true_range(high, low, close), [math.nan, 3.0, 2.0, 5.0])


def test_adx_by_hand():
    high, low, close = [10.0, 11, 12, 11], [9.0, 10, 11, 9], [9.5, 10.5, 11.5, 9.5]
    # +DM: 1, 1, 0 ; -DM: 0, 0, 2 ; TR: 1.5, 1.5, 2.5 (period 2)
    # i=2: TR avg 1.5, +DM avg 1, -DM avg 0 → +DI 66.7, -DI 0 → DX 100
    # i=3: TR (1.5+2.5)/2 = 2, +DM (1+0)/2 = .5, -DM (0+2)/2 = 1 → +DI 25, -DI 50 → DX 100*25/75
    # ADX(2) at index 3 = mean(100, 33.33) = 66.67
    close_enough(ind.adx(high, low, close, 2), [math.nan, math.nan, math.nan, 200 / 3])


def test_rolling_mean_by_hand():
    close_enough(ind.rolling_mean(np.array([1.0, 2, 3, 4]), 2), [math.nan, 1.5, 2.5, 3.5])
    close_enough(ind.rolling_mean(np.array([1.0, 2, 3, 4]), 1), [1.0, 2, 3, 4])


# --- against the textbook loops ---


def test_against_references_on_a_fixed_series():
    rng = np.random.default_rng(7)
    closes = list(100 + np.cumsum(rng.normal(0, 1, 120)))
    high, low, close = ohlc(closes, list(rng.uniform(0, 1.5, 120)))
    for n in (2, 5, 14):
        close_enough(ind.ema(np.array(closes), n), ema_ref(closes, n))
        close_enough(ind.rsi(np.array(closes), n), rsi_ref(closes, n))
        close_enough(ind.atr(high, low, close, n), atr_ref(high, low, close, n))
        close_enough(ind.adx(high, low, close, n), adx_ref(high, low, close, n))


prices = st.lists(st.floats(1.0, 1000.0), min_size=0, max_size=60)


@settings(max_examples=60, deadline=None)
@given(closes=prices, period=st.integers(1, 15), data=st.data())
def test_against_references_on_random_series(closes, period, data):
    wicks = data.draw(st.lists(st.floats(0.0, 5.0), min_size=len(closes), max_size=len(closes)))
    high, low, close = ohlc(closes, wicks)
    close_enough(ind.ema(np.array(closes), period), ema_ref(closes, period))
    close_enough(ind.rsi(np.array(closes), period), rsi_ref(closes, period))
    close_enough(ind.atr(high, low, close, period), atr_ref(high, low, close, period))
    close_enough(ind.adx(high, low, close, period), adx_ref(high, low, close, period))
    got_rsi, got_adx = ind.rsi(np.array(closes), period), ind.adx(high, low, close, period)
    assert ((got_rsi >= 0) & (got_rsi <= 100) | np.isnan(got_rsi)).all()
    assert ((got_adx >= 0) & (got_adx <= 100) | np.isnan(got_adx)).all()


# --- edge cases ---


def test_shorter_than_the_period_is_all_nan_and_keeps_the_length():
    short = np.array([1.0, 2.0, 3.0])
    for out in (
        ind.ema(short, 4),
        ind.rsi(short, 3),  # needs period + 1 closes
        ind.atr(short, short, short, 3),
        ind.adx(short + 1, short - 1, short, 2),  # needs 2 * period closes
        ind.rolling_mean(short, 4),
    ):
        assert len(out) == 3 and np.isnan(out).all()
    for out in (ind.ema(np.array([]), 3), ind.rsi(np.array([]), 3), ind.rolling_mean([], 2)):
        assert len(out) == 0


def test_first_defined_index_of_each_indicator():
    x = np.linspace(1.0, 2.0, 40)
    assert np.isnan(ind.ema(x, 9)[7]) and not np.isnan(ind.ema(x, 9)[8])
    assert np.isnan(ind.rsi(x, 14)[13]) and not np.isnan(ind.rsi(x, 14)[14])
    assert np.isnan(ind.atr(x + 1, x, x, 14)[13]) and not np.isnan(ind.atr(x + 1, x, x, 14)[14])
    adx = ind.adx(x + 1, x, x, 14)
    assert np.isnan(adx[26]) and not np.isnan(adx[27])


def test_constant_series():
    x = np.full(60, 42.0)
    assert (ind.rsi(x, 14)[14:] == 50.0).all()  # no gains, no losses: neutral, by choice
    assert (ind.atr(x, x, x, 14)[14:] == 0.0).all()
    assert (ind.adx(x, x, x, 14)[27:] == 0.0).all()
    assert (ind.ema(x, 9)[8:] == 42.0).all()


def test_one_way_series_hit_the_extremes():
    rising = np.arange(1.0, 61.0)
    assert ind.rsi(rising, 14)[-1] == 100.0
    assert ind.rsi(rising[::-1], 14)[-1] == 0.0
    # Every candle moves the same way by the same amount: +DI only, DX 100, so ADX 100.
    assert ind.adx(rising + 0.5, rising - 0.5, rising, 14)[-1] == pytest.approx(100.0)
    assert ind.atr(rising + 0.5, rising - 0.5, rising, 14)[-1] == pytest.approx(1.5)


def test_nan_input_propagates_forward():
    x = np.linspace(1.0, 50.0, 50)
    x[30] = np.nan
    for out in (ind.ema(x, 5), ind.rsi(x, 5), ind.atr(x + 1, x - 1, x, 5)):
        assert not np.isnan(out[29]) and np.isnan(out[30:]).all()
    assert np.isnan(ind.adx(x + 1, x - 1, x, 5)[30:]).all()


def test_inputs_are_not_modified():
    x = np.array([3.0, 1, 4, 1, 5, 9, 2, 6])
    before = x.copy()
    ind.ema(x, 3), ind.rsi(x, 3), ind.atr(x + 1, x - 1, x, 3), ind.adx(x + 1, x - 1, x, 2)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("period", [0, -3, 2.5, True, None])
def test_bad_periods_are_rejected(period):
    with pytest.raises(ValueError, match="period"):
        ind.ema(np.ones(5), period)
    with pytest.raises(ValueError, match="period"):
        ind.rsi(np.ones(5), period)


def test_mismatched_lengths_are_rejected():
    with pytest.raises(ValueError, match="same length"):
        ind.atr(np.ones(5), np.ones(4), np.ones(5), 2)
