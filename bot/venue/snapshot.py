"""One fetch of a symbol's candles, shared read-only by every account that trades it.

A ``CandleSnapshot`` holds the candles that had closed when they were fetched (the one
still forming then is dropped, however late the snapshot is read), the time of the
fetch, the last price (the newest candle's close, the forming one included: status.json's
``marks``) and when the next candle closes. It never changes once built, except its memo:
values derived from its candles (a strategy's indicators) computed once, by the first
account to ask, and handed to every other account that asks with the same key.

Times are wall seconds of the market's clock; candle timestamps are open times in UTC ms.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bot.model import Candles, timeframe_seconds

T = TypeVar("T")
_MS = 1e-3  # times are whole milliseconds: closer than this is the same moment


@dataclass(frozen=True, eq=False)
class CandleSnapshot:
    """The closed candles of (``symbol``, ``timeframe``) as fetched at ``fetched_at``."""

    symbol: str
    timeframe: str
    candles: Candles  # closed at ``fetched_at``, oldest first
    fetched_at: float
    last_price: float | None  # newest close, the forming candle included; None: no candles
    next_close: float  # when the candle forming at ``fetched_at`` closes
    _memo: dict[Hashable, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def of(cls, raw: Candles, symbol: str, timeframe: str, fetched_at: float) -> CandleSnapshot:
        """The snapshot of ``raw`` (as the venue answered, the forming candle included)."""
        step_ms = timeframe_seconds(timeframe) * 1000
        # Candle closes fall on the data's own grid (a venue's, or a shifted synthetic one):
        # the first grid point after the fetch is when the next candle closes.
        newest_open = int(raw.timestamp_ms[-1]) if len(raw) else 0
        periods = math.floor((fetched_at * 1000 - newest_open) / step_ms) + 1
        return cls(
            symbol,
            timeframe,
            raw.closed_by(fetched_at, timeframe),
            fetched_at,
            float(raw.close[-1]) if len(raw) else None,
            (newest_open + periods * step_ms) / 1000,
        )

    @property
    def seconds(self) -> int:
        """The timeframe in seconds."""
        return timeframe_seconds(self.timeframe)

    @property
    def newest_close(self) -> float | None:
        """When the newest closed candle closed (None: no candle had closed)."""
        if not len(self.candles):
            return None
        return float(self.candles.timestamp_ms[-1]) / 1000 + self.seconds

    @property
    def complete(self) -> bool:
        """True when it holds the candle that closed last before the fetch."""
        newest = self.newest_close
        return newest is not None and newest >= self.next_close - self.seconds - _MS

    @property
    def one_behind(self) -> bool:
        """True when only the candle that closed last before the fetch is missing: the venue
        has not published it yet (a refresh will find it). A longer gap is a closed market."""
        newest = self.newest_close
        return newest is not None and abs(newest - (self.next_close - 2 * self.seconds)) < _MS

    def age(self, now: float) -> float:
        """Seconds since the newest closed candle closed (infinite without one)."""
        newest = self.newest_close
        return math.inf if newest is None else now - newest

    def stale(self, now: float) -> bool:
        """True when the newest closed candle is older than one timeframe at ``now``:
        never traded on (entries wait; exits look at the account's own ticker)."""
        return self.age(now) > self.seconds

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``, done once per snapshot and ``key``; later callers share the value.

        Computed under the snapshot's lock: accounts asking at the same moment wait for the
        first one instead of computing the same values in parallel.
        """
        with self._lock:
            if key not in self._memo:
                self._memo[key] = compute()
            return self._memo[key]
