"""A clock tests advance by hand, so nothing in the suite waits for real time to pass."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

# 2026-01-01T00:00:00Z: a fixed, recognisable wall time for tests.
DEFAULT_WALL = 1_767_225_600.0


class FakeClock:
    """A ``bot.clock.Clock`` that moves only when told; wall and monotonic move together."""

    def __init__(self, start: float = 1000.0, wall_start: float = DEFAULT_WALL) -> None:
        self._mono = start
        self._wall = wall_start
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def wall(self) -> float:
        with self._lock:
            return self._wall

    def utc_now(self) -> datetime:
        return datetime.fromtimestamp(self.wall(), UTC)

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds``."""
        if seconds < 0:
            raise ValueError("a clock does not go back")
        with self._lock:
            self._mono += seconds
            self._wall += seconds

    def set_wall(self, wall: float) -> None:
        """Jump the wall clock (as NTP may); the monotonic clock is not moved."""
        with self._lock:
            self._wall = wall
