"""The crash-restart market: crafted candle series on the real clock's candle grid.

Since the venue layer an account reads a symbol's candles once per candle close (the
venue's shared snapshot, kept until the next close) and never trades on candles whose
newest closed one is older than one timeframe. So every series served here ends with the
candle that closed last by the wall clock, and changes only when a candle closes:

* active: at each close every symbol takes its turn, in a round of three closes: entry,
  entry, exit, staggered so that at every close one symbol exits and the others enter
  (an account always has something to do). The entry series gives the default strategy's
  signal at its newest candle (a new candle time each close, so each entry is a new
  intent: an account that missed the first, killed say, takes the second); the exit
  series is the entry series one close on, with a candle at the target (any position
  opened on these series exits).
* quiet: a candle after the signal that neither enters nor exits: while the stores are
  compared the daemon has nothing to send. Quiet data is fresh as well, so a held
  position is judged on candles (no ticker calls of its own).

A daemon started while the market is active sees its signals at once; one that read
quiet data keeps that snapshot until the next close.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from bot.model import Candles
from bot.strategy.trend_pullback import get_strategy
from nija_testkit import candles as cs
from nija_testkit.emulator.core import Market

ENTRY = cs.uptrend_with_pullback()  # the default strategy enters at its last candle
FEED_SECONDS = 0.05  # how often the driver looks for a candle close
ROUND = 3  # closes in a symbol's round: it enters at the first two, exits at the last


class CandleDriver:
    """Feeds the emulator's candles on the grid of ``timeframe_seconds`` (see the module)."""

    def __init__(
        self,
        market: Market,
        tickers: tuple[str, ...],
        timeframe_seconds: int,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.market = market
        self.tickers = tickers
        self.step_ms = timeframe_seconds * 1000
        self.wall = wall  # the daemon's clock too: candles close on the same grid
        target = get_strategy().decide("X", ENTRY, None, 0.0).target
        assert target is not None  # an entry always carries its target
        self.entry = self._series(ENTRY.close)
        self.exit = self._series(np.append(ENTRY.close, target + 3.0))  # "target hit"
        self.quiet_series = self._series(np.append(ENTRY.close, ENTRY.close[-1] + 0.5))
        self.active = threading.Event()
        self._fed: tuple[bool, int] | None = None  # (active, forming candle) last fed
        self._lock = threading.Lock()  # a switch never interleaves with a feed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="candle-driver", daemon=True)
        self.quiet()

    def _series(self, closes: np.ndarray) -> Candles:
        return cs.from_closes(closes, first_open=100.0, step_ms=self.step_ms)

    def start(self) -> None:
        """Follow the clock: a new series at every candle close."""
        self._thread.start()

    def activate(self) -> None:
        """Signals from now on: at once for a daemon that reads candles now, at the next
        close for one that holds a quiet snapshot."""
        with self._lock:
            self.active.set()
            self._feed(self.wall())

    def quiet(self) -> None:
        """No new signals: the daemon has nothing to send while the stores are compared."""
        with self._lock:
            self.active.clear()
            self._feed(self.wall())

    def seconds_to_close(self) -> float:
        """Seconds until the candle forming now closes."""
        now_ms = self.wall() * 1000
        return (self.step_ms - now_ms % self.step_ms) / 1000

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        # Bounded by the caller: stop() ends it; it never outlives the run.
        while not self._stop.wait(FEED_SECONDS):
            self.tick()

    def tick(self) -> None:
        """Serve the series of the candle period the clock is in (once per period and mode)."""
        with self._lock:
            self._feed(self.wall())

    def _feed(self, now: float) -> None:
        forming = int(now * 1000) // self.step_ms
        active = self.active.is_set()
        if self._fed == (active, forming):
            return  # this candle period is served already
        for i, ticker in enumerate(self.tickers):
            if not active:
                series = self.quiet_series
            else:  # staggered: at every close some symbol enters and some exits
                series = self.exit if (forming + i) % ROUND == 0 else self.entry
            rows = cs.rows(cs.closing_by(series, now, step_ms=self.step_ms))
            self.market.set_candles(f"{ticker}/USD", rows)
        self._fed = (active, forming)
