"""Technical indicators: pure functions over float arrays, oldest value first.

Every function returns a float array the length of its input, with NaN where the
indicator is not yet defined (the warm-up). A NaN in the input propagates to every
later value of a smoothed indicator, so callers can check the last value alone.

Conventions (the ones TA-Lib and most charting packages use, so values can be checked
against them):

* ``ema`` is seeded with the simple mean of the first ``period`` values, placed at index
  ``period - 1``; then ``ema[i] = ema[i-1] + alpha * (x[i] - ema[i-1])``, ``alpha = 2 / (period + 1)``.
* Wilder's smoothing (RSI, ATR, ADX) is the same recursion with ``alpha = 1 / period``,
  seeded with the simple mean of the first ``period`` defined inputs.
* Price changes and true ranges need the previous close, so they start at index 1:
  ``rsi`` and ``atr`` are first defined at index ``period``; ``adx`` (a smoothing of a
  smoothing) at index ``2 * period - 1``.
* RSI of a series that does not move at all (no gains, no losses) is 50: neither side
  dominates. A series that only rises has RSI 100, one that only falls RSI 0.
* DX is 0 when there was no directional movement at all, so a constant series has ADX 0.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _as_float(values: np.ndarray | list[float]) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError("indicators take one-dimensional arrays")
    return arr


def _check_period(period: int) -> None:
    if isinstance(period, bool) or not isinstance(period, int | np.integer) or period < 1:
        raise ValueError(f"period must be a positive integer, got {period!r}")


def _seeded_smooth(x: np.ndarray, period: int, alpha: float, start: int) -> np.ndarray:
    """Exponential smoothing of ``x[start:]``, seeded with the mean of its first ``period`` values.

    The result is NaN before index ``start + period - 1``. The recursion is inherently
    sequential; a plain loop over Python floats is fast enough for the few hundred
    candles a strategy looks at (a closed form with ``(1 - alpha) ** -n`` overflows).
    """
    out = np.full(len(x), np.nan)
    first = start + period - 1
    if first >= len(x):
        return out
    level = float(np.mean(x[start : first + 1]))
    out[first] = level
    keep = 1.0 - alpha
    tail = x[first + 1 :].tolist()
    smoothed = []
    for value in tail:
        level = keep * level + alpha * value
        smoothed.append(level)
    out[first + 1 :] = smoothed
    return out


def ema(values: np.ndarray, period: int) -> np.ndarray:
    """Exponential moving average, seeded with the simple mean of the first ``period`` values."""
    _check_period(period)
    x = _as_float(values)
    return _seeded_smooth(x, period, 2.0 / (period + 1), start=0)


def _wilder(x: np.ndarray, period: int, start: int) -> np.ndarray:
    """Wilder's moving average (alpha = 1/period) of ``x[start:]``."""
    return _seeded_smooth(x, period, 1.0 / period, start=start)


def rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Simple mean of the last ``window`` values (including the current one)."""
    _check_period(window)
    x = _as_float(values)
    out = np.full(len(x), np.nan)
    if len(x) >= window:
        out[window - 1 :] = sliding_window_view(x, window).mean(axis=1)
    return out


def rsi(close: np.ndarray, period: int = 14) -> np.ndarray:
    """Relative Strength Index with Wilder's smoothing, 0..100; first defined at index ``period``."""
    _check_period(period)
    c = _as_float(close)
    change = np.full(len(c), np.nan)
    change[1:] = np.diff(c)
    gain = np.where(change > 0, change, 0.0)
    loss = np.where(change < 0, -change, 0.0)
    # np.where reads a NaN change as "no gain"; put the NaNs back so they propagate.
    gain[np.isnan(change)] = loss[np.isnan(change)] = np.nan
    avg_gain = _wilder(gain, period, start=1)
    avg_loss = _wilder(loss, period, start=1)
    total = avg_gain + avg_loss
    with np.errstate(divide="ignore", invalid="ignore"):
        # 100 * gain / (gain + loss) equals 100 - 100 / (1 + RS) and has no RS = inf case.
        out = np.where(total > 0, 100.0 * avg_gain / total, 50.0)
    out[np.isnan(total)] = np.nan
    return np.clip(out, 0.0, 100.0)  # g / g can round to 100.00000000000001


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """Wilder's true range; NaN at index 0, which has no previous close."""
    h, lo, c = _same_length(high, low, close)
    tr = np.full(len(c), np.nan)
    if len(c) > 1:
        prev = c[:-1]
        tr[1:] = np.maximum.reduce([h[1:] - lo[1:], np.abs(h[1:] - prev), np.abs(lo[1:] - prev)])
    return tr


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14) -> np.ndarray:
    """Average True Range (Wilder's smoothing); first defined at index ``period``."""
    _check_period(period)
    return _wilder(true_range(high, low, close), period, start=1)


def adx(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14) -> np.ndarray:
    """Average Directional Index (Wilder's DMI), 0..100; first defined at index ``2 * period - 1``."""
    _check_period(period)
    h, lo, c = _same_length(high, low, close)
    n = len(c)
    up = np.full(n, np.nan)
    down = np.full(n, np.nan)
    up[1:] = h[1:] - h[:-1]
    down[1:] = lo[:-1] - lo[1:]
    # Only the larger of the two moves counts, and only when it is a move in its direction.
    plus_dm = np.where((up > down) & (up > 0), up, 0.0)
    minus_dm = np.where((down > up) & (down > 0), down, 0.0)
    undefined = np.isnan(up) | np.isnan(down)  # index 0, and NaN inputs: let them propagate
    plus_dm[undefined] = minus_dm[undefined] = np.nan

    tr_avg = _wilder(true_range(h, lo, c), period, start=1)
    plus_avg = _wilder(plus_dm, period, start=1)
    minus_avg = _wilder(minus_dm, period, start=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        plus_di = np.where(tr_avg > 0, 100.0 * plus_avg / tr_avg, 0.0)
        minus_di = np.where(tr_avg > 0, 100.0 * minus_avg / tr_avg, 0.0)
        di_sum = plus_di + minus_di
        dx = np.where(di_sum > 0, 100.0 * np.abs(plus_di - minus_di) / di_sum, 0.0)
        dx = np.clip(dx, 0.0, 100.0)  # rounding can overshoot 100 by an ulp
    dx[np.isnan(tr_avg) | np.isnan(plus_avg) | np.isnan(minus_avg)] = np.nan
    return _wilder(dx, period, start=period)


def _same_length(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    out = tuple(_as_float(a) for a in arrays)
    if len({len(a) for a in out}) > 1:
        raise ValueError("high, low and close must have the same length")
    return out
