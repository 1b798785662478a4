"""Crafted candle series for strategy tests, engine tests and replays.

Prices move in a "sawtooth": an up candle then a smaller down candle, so a trend has
both gains and losses (RSI about 67 instead of a flat 100). Each candle opens at the
previous close; its high and low stick out of the body by a wick. Timestamps are
5-minute candles from ``START_MS``. Everything is deterministic.

``uptrend_with_pullback()`` gives exactly one entry signal of the default strategy, at
its last candle; each of its keyword arguments can switch off one entry filter:

* ``dip=2.0``: the pullback is too shallow for RSI to drop below 40;
* ``bounce=4.0``: RSI crosses back over 40 but the close stays under EMA21;
* ``last_volume=4.0``: the signal candle trades under half the 20-candle mean volume;
* ``choppy_wicks=3.0``: alternating long upper / lower wicks make ADX fall under 20;

and ``downtrend_with_bounce()`` has every filter but the trend (EMA9 > EMA21 > EMA50).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bot.model import Candles

START_MS = 1_700_000_000_000  # 2023-11-14T22:13:20Z
STEP_MS = 300_000  # 5 minutes


def from_closes(
    closes: np.ndarray | list[float],
    *,
    first_open: float | None = None,
    upper_wick: float | np.ndarray = 0.2,
    lower_wick: float | np.ndarray = 0.2,
    volume: float | np.ndarray = 10.0,
    start_ms: int = START_MS,
    step_ms: int = STEP_MS,
) -> Candles:
    """Candles whose opens are the previous closes, with wicks added beyond each body."""
    close = np.asarray(closes, dtype=float)
    n = len(close)
    open_ = np.empty(n)
    if n:
        open_[0] = close[0] if first_open is None else first_open
        open_[1:] = close[:-1]
    return Candles(
        timestamp_ms=start_ms + step_ms * np.arange(n, dtype=np.int64),
        open=open_,
        high=np.maximum(open_, close) + np.broadcast_to(upper_wick, (n,)),
        low=np.minimum(open_, close) - np.broadcast_to(lower_wick, (n,)),
        close=close,
        volume=np.broadcast_to(np.asarray(volume, dtype=float), (n,)).copy(),
    )


def from_steps(steps: np.ndarray | list[float], start: float = 100.0, **kwargs) -> Candles:
    """Candles whose closes move by ``steps`` from ``start`` (the first candle opens there)."""
    closes = start + np.cumsum(np.asarray(steps, dtype=float))
    return from_closes(closes, first_open=start, **kwargs)


def sawtooth(n: int, first: float, second: float) -> np.ndarray:
    """``n`` close-to-close steps alternating ``first``, ``second``, ``first``, ..."""
    return np.where(np.arange(n) % 2 == 0, first, second).astype(float)


def uptrend(n: int = 200, up: float = 1.0, down: float = 0.5, start: float = 100.0) -> Candles:
    """A steady sawtooth uptrend: trend and ADX filters pass, RSI stays near 67 (up=0: 100)."""
    return from_steps(sawtooth(n, up, -down), start)


def downtrend(n: int = 200, down: float = 1.0, up: float = 0.5, start: float = 300.0) -> Candles:
    """A steady sawtooth downtrend, the mirror of ``uptrend``."""
    return from_steps(sawtooth(n, -down, up), start)


def flat(n: int = 200, price: float = 100.0, volume: float = 10.0) -> Candles:
    """Candles that never move: open = high = low = close (ATR 0, ADX 0, RSI 50)."""
    return from_closes(np.full(n, price), upper_wick=0.0, lower_wick=0.0, volume=volume)


def uptrend_with_pullback(
    n: int = 200,
    *,
    dip: float = 4.0,
    dip_candles: int = 2,
    bounce: float = 7.0,
    last_volume: float = 10.0,
    choppy_wicks: float = 0.0,
) -> Candles:
    """Sawtooth uptrend, ``dip_candles`` falling by ``dip``, then one candle rising by ``bounce``.

    With the defaults the default strategy's entry fires at the last candle and at no
    earlier one (RSI 37.1 → 56.5, close 2.2 above EMA21, ADX 83).
    """
    steps = np.concatenate(
        [sawtooth(n - dip_candles - 1, 1.0, -0.5), np.full(dip_candles, -dip), [bounce]]
    )
    volume = np.full(n, 10.0)
    volume[-1] = last_volume
    upper = lower = 0.2
    if choppy_wicks:
        # Long upper wicks on odd candles, long lower wicks on even ones: highs and lows
        # swing both ways every candle, so +DM and -DM balance out and ADX stays low.
        odd = np.arange(n) % 2 == 1
        upper = np.where(odd, choppy_wicks, 0.0)
        lower = np.where(odd, 0.0, choppy_wicks)
    return from_steps(steps, 100.0, upper_wick=upper, lower_wick=lower, volume=volume)


def downtrend_with_bounce(n: int = 200, bounce: float = 8.0) -> Candles:
    """A sawtooth downtrend ending in one big up candle: every entry filter but the trend passes."""
    return from_steps(np.concatenate([sawtooth(n - 1, -1.0, 0.5), [bounce]]), 300.0)


def head(candles: Candles, n: int) -> Candles:
    """The first ``n`` candles, as if the series had stopped there (for walking forward)."""
    return Candles(
        timestamp_ms=candles.timestamp_ms[:n],
        open=candles.open[:n],
        high=candles.high[:n],
        low=candles.low[:n],
        close=candles.close[:n],
        volume=candles.volume[:n],
    )


def later(candles: Candles, seconds: float) -> Candles:
    """The same candles ``seconds`` later: a series that stays as fresh as a moving clock."""
    return dataclasses.replace(candles, timestamp_ms=candles.timestamp_ms + round(seconds * 1000))


def closing_by(candles: Candles, now: float, *, step_ms: int = STEP_MS) -> Candles:
    """The same candles moved so that the last one is the newest to have closed at ``now``
    (epoch seconds, on the grid of ``step_ms``, 5 minutes by default; the candles' own
    spacing should be the same): fresh data for a daemon on the real clock, which never
    trades on data older than one candle."""
    last_open = int(now * 1000) // step_ms * step_ms - step_ms
    return later(candles, (last_open - int(candles.timestamp_ms[-1])) / 1000)


def with_value(candles: Candles, field: str, index: int, value: float) -> Candles:
    """A copy with one value replaced, e.g. a NaN close, to test bad input."""
    arrays = {
        name: np.array(getattr(candles, name), dtype=float if name != "timestamp_ms" else None)
        for name in ("timestamp_ms", "open", "high", "low", "close", "volume")
    }
    arrays[field][index] = value
    return Candles(**arrays)


def rows(candles: Candles) -> list[list[float]]:
    """One ``[time ms, open, high, low, close, volume]`` per candle (``Market.set_candles``)."""
    c = candles
    columns = (c.timestamp_ms, c.open, c.high, c.low, c.close, c.volume)
    return [list(map(float, row)) for row in zip(*columns, strict=True)]
