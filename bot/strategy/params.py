"""The default strategy's settings: ``StrategyParams``, validated when built.

The defaults are the documented trend-pullback strategy (see ``bot.strategy.trend_pullback``);
``min_candles`` says how many candles its indicators need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from bot.model import timeframe_seconds


@dataclass(frozen=True, slots=True)
class StrategyParams:
    """Every setting of the default strategy; the defaults are the documented strategy."""

    timeframe: str = "5m"
    history: int = 200  # candles asked of the broker
    ema_fast: int = 9
    ema_mid: int = 21
    ema_slow: int = 50
    adx_period: int = 14
    adx_min: float = 20.0
    rsi_period: int = 14
    rsi_entry: float = 40.0  # RSI must rise back through this level
    volume_window: int = 20
    volume_min_ratio: float = 0.5  # latest volume >= this x its rolling mean
    atr_period: int = 14
    stop_atr: float = 1.5  # initial stop distance, in ATRs
    target_r: float = 2.0  # target distance, in R (initial risk)
    rsi_exit: float = 75.0
    breakeven_r: float = 1.0  # move the stop to entry once the close is this many R up
    trail_atr: float = 2.0  # trailing stop distance below the highest close, in ATRs
    max_hold_hours: float = 48.0
    fallback_stop_fraction: float = 0.05  # adopted holdings when no ATR can be computed

    def __post_init__(self) -> None:
        # NIJA_TIMEFRAME's rule too: a candle of a whole number of minutes, hours or days.
        if not isinstance(self.timeframe, str) or timeframe_seconds(self.timeframe) <= 0:
            raise ValueError(
                f"timeframe must be a timeframe like 1m, 5m, 1h, 1d, got {self.timeframe!r}"
            )
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "timeframe":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{f.name} must be a number, got {value!r}")
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{f.name} must be positive and finite, got {value!r}")
            if f.type in ("int", int) and not isinstance(value, int):
                raise ValueError(f"{f.name} must be an int, got {value!r}")
        if not self.ema_fast < self.ema_mid < self.ema_slow:
            raise ValueError("need ema_fast < ema_mid < ema_slow")
        for name in ("adx_min", "rsi_entry", "rsi_exit"):
            if getattr(self, name) >= 100:
                raise ValueError(f"{name} must be below 100")
        if self.history < self.min_candles:
            raise ValueError(f"history must be at least {self.min_candles} candles")

    @property
    def min_candles(self) -> int:
        """The fewest candles with every indicator defined at the latest and previous candle."""
        return max(
            self.ema_slow,
            2 * self.adx_period,
            self.rsi_period + 2,  # RSI at the previous candle too
            self.atr_period + 1,
            self.volume_window,
        )
