"""Durations counted into fixed buckets: the raw material of a Prometheus histogram.

The isolation core counts each account's broker-call durations here and the daemon each
account's cycle durations. Each account's counter also adds every duration to its venue's
running ``total`` as it is observed, so that ``bot.api.metrics`` reads one counter per venue
at scrape time instead of adding up every account's (a tenth of a scrape's CPU at 100
accounts, measured). Observing is a bisect and two additions under the account's lock, then
two more under the venue's (leaf locks, held for a fraction of a microsecond, never one
inside the other), so the hot path pays almost nothing and no Prometheus code runs in it.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from dataclasses import dataclass
from itertools import accumulate

__all__ = ["CALL_BUCKETS", "CYCLE_BUCKETS", "Latency", "LatencySnapshot", "VenueLatencies"]

# Upper bounds in seconds (le), +Inf implied. A broker call: tens of ms to the call timeout.
CALL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A cycle: a paper account's few ms to a slow venue's many calls.
CYCLE_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_INF = float("inf")


@dataclass(frozen=True, slots=True)
class LatencySnapshot:
    """Cumulative counts per upper bound (the last bound is +Inf), their sum and count."""

    buckets: tuple[tuple[float, int], ...]
    sum_seconds: float
    count: int


class Latency:
    """Counts of observed durations per bucket; thread-safe. With a ``total`` (its venue's),
    every duration is counted there too."""

    __slots__ = ("_bounds", "_counts", "_lock", "_sum", "_total")

    def __init__(self, bounds: tuple[float, ...], total: Latency | None = None) -> None:
        if list(bounds) != sorted(set(bounds)) or not bounds:
            raise ValueError(f"bucket bounds must be distinct and ascending, got {bounds!r}")
        if total is not None and total._bounds != bounds:
            raise ValueError(f"a total of bounds {total._bounds!r} cannot count {bounds!r}")
        self._bounds: tuple[float, ...] = bounds
        self._counts = [0] * (len(bounds) + 1)  # the last one: above every bound (+Inf)
        self._sum = 0.0
        self._lock = threading.Lock()
        self._total: Latency | None = total

    def observe(self, seconds: float) -> None:
        """Count one duration (in seconds), in this counter and in its total."""
        index = bisect_left(self._bounds, seconds)  # le: a value equal to a bound is in it
        with self._lock:
            self._counts[index] += 1
            self._sum += seconds
        total = self._total
        if total is not None:  # after the account's lock, not inside it: never two held
            with total._lock:
                total._counts[index] += 1
                total._sum += seconds

    def snapshot(self) -> LatencySnapshot:
        """The counts so far, cumulative, as a histogram shows them."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        return _snapshot(self._bounds, counts, total)


class VenueLatencies:
    """One running total per venue, and a counter for each of its accounts that feeds it."""

    __slots__ = ("_bounds", "_lock", "_totals")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self._totals: dict[str, Latency] = {}
        self._lock = threading.Lock()  # guards insertion only

    def account(self, venue: str) -> Latency:
        """A new counter for one account of ``venue``, counting into the venue's total too."""
        with self._lock:
            total = self._totals.get(venue)
            if total is None:
                total = self._totals[venue] = Latency(self._bounds)
        return Latency(self._bounds, total)

    def totals(self) -> dict[str, Latency]:
        """Each venue's total so far (venue name -> its accounts' durations, live)."""
        with self._lock:
            return dict(self._totals)


def _snapshot(bounds: tuple[float, ...], counts: list[int], total: float) -> LatencySnapshot:
    cumulative = tuple(zip((*bounds, _INF), accumulate(counts), strict=True))
    return LatencySnapshot(cumulative, total, cumulative[-1][1])
