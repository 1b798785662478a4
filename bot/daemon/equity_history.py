"""One account's recent equity, in memory, for the dashboard's sparkline.

A bounded ring of ``(wall time, equity in USD)``, one point per cycle that read the
account's balance. It is not kept across restarts and not written to status.json (which
stays small): the HTTP API's accounts document carries it as ``equity_history``.
"""

from __future__ import annotations

import math
import threading
from collections import deque

__all__ = ["EQUITY_POINTS", "EquityHistory"]

# 120 cycles: ten minutes of the demo, five hours at the default 150 s cycle.
EQUITY_POINTS = 120


class EquityHistory:
    """The last ``maxlen`` equity readings; written by the account's thread, read by any."""

    def __init__(self, maxlen: int = EQUITY_POINTS) -> None:
        if maxlen < 1:
            raise ValueError("an equity history holds at least one point")
        self._points: deque[tuple[float, float]] = deque(maxlen=maxlen)
        self._lock = threading.Lock()  # a reader copies while the account's thread appends

    def add(self, wall: float, usd: float) -> None:
        """Record ``usd`` at ``wall``; a reading that is not a finite number is not a point."""
        if not (math.isfinite(wall) and math.isfinite(usd)):
            return
        with self._lock:
            self._points.append((wall, usd))

    def points(self) -> list[tuple[float, float]]:
        """The readings, oldest first."""
        with self._lock:
            return list(self._points)
