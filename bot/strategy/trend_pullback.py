"""Strategies: pure decisions from closed candles and the open position, if any.

A strategy never places orders, reads the clock or keeps state between calls: the
caller passes the candles, the position as it knows it and ``now``; the strategy
answers with at most one ``Intent``. The same inputs always give the same intent,
including its ``intent_id``, so a decision repeated after a crash is recognisable.

Every candle row passed in is treated as closed: the caller drops the still-forming
candle before calling ``decide``. "Latest" below means the last row given.

The default strategy (``TrendPullbackStrategy``) is long-only and trades with the
trend after a pullback:

* trend: EMA9 > EMA21 > EMA50 and ADX(14) >= 20;
* entry: RSI(14) rises back through 40 (previous < 40, latest >= 40), the close is
  above EMA21 and the volume is at least half its 20-candle mean (latest included);
* stop: close - 1.5 ATR(14); target: close + 2 R, R = close - stop;
* exits, first match wins: stop hit, target hit, RSI > 75, close below EMA50, held 48 h;
* otherwise: stop to break-even once the close reaches entry + 1 R, then trail it at
  the highest close - 2 ATR; the stop never moves down.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType

import numpy as np

from bot.model import Candles
from bot.strategy import indicators
from bot.strategy.base import Intent, Memo, NoEntry, PositionView, Strategy
from bot.strategy.params import (
    StrategyParams,  # re-exported: bot.strategy.trend_pullback.StrategyParams
)

# The memo key of this strategy's indicator values (with its parameters).
_MEMO_KEY = "trend_pullback.snapshot"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The indicator values a decision reads, at the latest candle (and RSI one before)."""

    timestamp_ms: int
    close: float
    volume: float
    ema_fast: float
    ema_mid: float
    ema_slow: float
    adx: float
    rsi: float
    rsi_prev: float
    atr: float
    volume_mean: float


@dataclass(frozen=True, slots=True)
class EntryChecks:
    """Each entry filter's answer, so callers and tests can see why there is no entry."""

    trend: bool  # EMA fast > mid > slow
    adx_ok: bool  # ADX >= adx_min
    rsi_cross: bool  # previous RSI < rsi_entry <= latest RSI
    above_ema_mid: bool  # close > EMA mid
    volume_ok: bool  # volume >= volume_min_ratio x mean

    @property
    def passed(self) -> bool:
        return all((self.trend, self.adx_ok, self.rsi_cross, self.above_ema_mid, self.volume_ok))

    @property
    def failing(self) -> int:
        """How many of the checks failed."""
        return sum(not getattr(self, f.name) for f in fields(self))


def _finite_candles(candles: Candles) -> bool:
    arrays = (
        candles.timestamp_ms,
        candles.open,
        candles.high,
        candles.low,
        candles.close,
        candles.volume,
    )
    n = len(candles.close)
    as_float = [np.asarray(a, dtype=float) for a in arrays]
    return all(a.ndim == 1 and len(a) == n and np.isfinite(a).all() for a in as_float)


def snapshot(candles: Candles, params: StrategyParams) -> Snapshot | None:
    """Indicator values at the latest candle; None when too short, ragged or not finite."""
    if len(candles.close) < params.min_candles or not _finite_candles(candles):
        return None
    high, low, close = candles.high, candles.low, candles.close
    rsi = indicators.rsi(close, params.rsi_period)
    snap = Snapshot(
        timestamp_ms=int(candles.timestamp_ms[-1]),
        close=float(close[-1]),
        volume=float(candles.volume[-1]),
        ema_fast=float(indicators.ema(close, params.ema_fast)[-1]),
        ema_mid=float(indicators.ema(close, params.ema_mid)[-1]),
        ema_slow=float(indicators.ema(close, params.ema_slow)[-1]),
        adx=float(indicators.adx(high, low, close, params.adx_period)[-1]),
        rsi=float(rsi[-1]),
        rsi_prev=float(rsi[-2]),
        atr=float(indicators.atr(high, low, close, params.atr_period)[-1]),
        volume_mean=float(indicators.rolling_mean(candles.volume, params.volume_window)[-1]),
    )
    values = (getattr(snap, f.name) for f in fields(snap))
    return snap if all(math.isfinite(v) for v in values) else None


def entry_checks(snap: Snapshot, params: StrategyParams) -> EntryChecks:
    """Evaluate each entry filter of the trend-pullback strategy on a snapshot."""
    return EntryChecks(
        trend=snap.ema_fast > snap.ema_mid > snap.ema_slow,
        adx_ok=snap.adx >= params.adx_min,
        rsi_cross=snap.rsi_prev < params.rsi_entry <= snap.rsi,
        above_ema_mid=snap.close > snap.ema_mid,
        volume_ok=snap.volume >= params.volume_min_ratio * snap.volume_mean,
    )


def no_entry_reason(snap: Snapshot, checks: EntryChecks, params: StrategyParams) -> str | None:
    """The first failing entry check in a few words, in the order the docstring lists them."""
    if not checks.trend:
        return "ema not stacked"
    if not checks.adx_ok:
        return f"adx {int(snap.adx)}<{params.adx_min:g}"  # truncated: 19.7 is not 20
    if not checks.rsi_cross:
        return f"rsi {snap.rsi:.0f} no cross"
    if not checks.above_ema_mid:
        return f"close below ema{params.ema_mid}"
    if not checks.volume_ok:
        return "volume low"
    return None


def _finite_position(pos: PositionView | None) -> bool:
    if pos is None:
        return True
    numbers = [pos.quantity, pos.entry_price, pos.stop, pos.initial_risk, pos.highest_close]
    numbers += [pos.opened_at] + ([pos.target] if pos.target is not None else [])
    return all(math.isfinite(x) for x in numbers)


def _seconds_id(seconds: float) -> str:
    """Epoch seconds as id text: ``1700000000`` or ``1700000000.25`` (stable, no exponent)."""
    return format(seconds, ".3f").rstrip("0").rstrip(".")


@dataclass(frozen=True, slots=True)
class TrendPullbackStrategy:
    """The default strategy: long with the trend after a pullback (see the module docstring)."""

    params: StrategyParams = StrategyParams()  # noqa: RUF009 -- frozen: safe to share
    name: str = "default"

    @property
    def timeframe(self) -> str:
        return self.params.timeframe

    @property
    def history(self) -> int:
        return self.params.history

    def decide(
        self,
        symbol: str,
        candles: Candles,
        position: PositionView | None,
        now: float,
        memo: Memo | None = None,
    ) -> Intent | None:
        """Enter, exit, adjust the stop, or None. Never raises on short or bad candles."""
        if not (math.isfinite(now) and _finite_position(position)):
            return None
        snap = self._snapshot(candles, memo)
        if snap is None:
            return None
        if position is None:
            return self._entry(symbol, snap)
        return self._manage(symbol, snap, position, now)

    def protective_levels(self, candles: Candles, entry: float) -> tuple[float, float]:
        """``(stop, target)`` for a long entered at ``entry``: the same rule as an entry's.

        Used for holdings adopted at reconciliation too; when the candles cannot give an
        ATR, the stop falls back to ``fallback_stop_fraction`` below the entry.
        """
        p = self.params
        atr_now = float("nan")
        if len(candles) > p.atr_period:
            atr_now = float(
                indicators.atr(candles.high, candles.low, candles.close, p.atr_period)[-1]
            )
        found = _levels(entry, atr_now, p)
        if found is not None:
            return found
        stop = entry * (1.0 - p.fallback_stop_fraction)
        return stop, entry + p.target_r * (entry - stop)

    def no_entry(self, candles: Candles, memo: Memo | None = None) -> NoEntry | None:
        """Why ``decide`` would not enter on ``candles`` with no position; None when it would."""
        p = self.params
        snap = self._snapshot(candles, memo)
        if snap is None:
            short = len(candles.close) < p.min_candles
            return NoEntry("too few candles" if short else "bad candles", len(fields(EntryChecks)))
        checks = entry_checks(snap, p)
        reason = no_entry_reason(snap, checks, p)
        if reason is not None:
            return NoEntry(reason, checks.failing)
        if _levels(snap.close, snap.atr, p) is None:
            return NoEntry("no range for a stop", 0)
        return None

    def _snapshot(self, candles: Candles, memo: Memo | None) -> Snapshot | None:
        """The indicator values at the latest candle, from ``memo`` when another account
        already computed them with the same parameters."""
        if memo is None:
            return snapshot(candles, self.params)
        return memo.memo((_MEMO_KEY, self.params), lambda: snapshot(candles, self.params))

    def _entry(self, symbol: str, snap: Snapshot) -> Intent | None:
        p = self.params
        if not entry_checks(snap, p).passed:
            return None
        levels = _levels(snap.close, snap.atr, p)
        if levels is None:  # no range, or a stop below zero: no defined risk
            return None
        stop, target = levels
        return Intent(
            kind="enter",
            symbol=symbol,
            reason="trend pullback entry",
            intent_id=f"{symbol}:enter:{snap.timestamp_ms}",
            price=snap.close,
            stop=stop,
            target=target,
            atr=snap.atr,
        )

    def _manage(self, symbol: str, snap: Snapshot, pos: PositionView, now: float) -> Intent | None:
        p = self.params
        close = snap.close
        reason = _exit_reason(snap, pos, now, p)
        if reason is not None:
            return Intent(
                kind="exit",
                symbol=symbol,
                reason=reason,
                intent_id=f"{symbol}:exit:{_seconds_id(pos.opened_at)}",
                price=close,
                stop=pos.stop,
                target=pos.target,
                highest_close=max(pos.highest_close, close),
                atr=snap.atr,
            )

        highest = max(pos.highest_close, close)
        stop = pos.stop
        breakeven = pos.breakeven_done
        reason = "trail"
        if not breakeven and close >= pos.entry_price + p.breakeven_r * pos.initial_risk:
            stop = max(stop, pos.entry_price)
            breakeven = True
            reason = "breakeven"
        if breakeven:
            # Trailing starts once the trade is risk-free; the stop only ever moves up.
            stop = max(stop, highest - p.trail_atr * snap.atr)
        if stop == pos.stop and highest == pos.highest_close and breakeven == pos.breakeven_done:
            return None
        return Intent(
            kind="adjust",
            symbol=symbol,
            reason=reason,
            intent_id=f"{symbol}:adjust:{_seconds_id(pos.opened_at)}:{snap.timestamp_ms}",
            price=close,
            stop=stop,
            target=pos.target,
            highest_close=highest,
            atr=snap.atr,
            breakeven_done=breakeven,
        )


def _levels(entry: float, atr: float, p: StrategyParams) -> tuple[float, float] | None:
    """Stop ``stop_atr`` ATRs below the entry and target ``target_r`` R above, or None."""
    stop = entry - p.stop_atr * atr
    if not (math.isfinite(stop) and 0 < stop < entry):
        return None
    return stop, entry + p.target_r * (entry - stop)


def _exit_reason(snap: Snapshot, pos: PositionView, now: float, p: StrategyParams) -> str | None:
    """The first exit rule that fires, in the documented order, or None."""
    if snap.close <= pos.stop:
        return "stop hit"
    if pos.target is not None and snap.close >= pos.target:
        return "target hit"
    if snap.rsi > p.rsi_exit:
        return "rsi overbought"
    if snap.close < snap.ema_slow:
        return f"close below ema{p.ema_slow}"
    if now - pos.opened_at >= p.max_hold_hours * 3600:
        return f"max hold {p.max_hold_hours:g}h"
    return None


# Strategy names (``NIJA_STRATEGY``) → factories. Read-only: nothing registers at runtime.
STRATEGIES: Mapping[str, Callable[[StrategyParams], Strategy]] = MappingProxyType(
    {
        "default": lambda params: TrendPullbackStrategy(params, name="default"),
        "trend_pullback": lambda params: TrendPullbackStrategy(params, name="trend_pullback"),
    }
)


def get_strategy(name: str = "default", params: StrategyParams | None = None) -> Strategy:
    """A new strategy instance by name (case-insensitive; empty means ``default``).

    Raises ValueError listing the known names when ``name`` is unknown.
    """
    key = (name or "default").strip().lower() or "default"
    factory = STRATEGIES.get(key)
    if factory is None:
        known = ", ".join(sorted(STRATEGIES))
        raise ValueError(f"unknown strategy {name!r} (known: {known})")
    return factory(params if params is not None else StrategyParams())
