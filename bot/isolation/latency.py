"""Durations counted into fixed buckets: the raw material of a Prometheus histogram.

The isolation core counts each account's broker-call durations here and the daemon each
account's cycle durations; ``bot.api.metrics`` reads them at scrape time, each venue's
accounts ``summed`` into one histogram. Observing is a
bisect and two additions under a lock of its own (a leaf lock, held for microseconds),
so the hot path pays almost nothing and no Prometheus code runs in it.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import accumulate

__all__ = ["CALL_BUCKETS", "CYCLE_BUCKETS", "Latency", "LatencySnapshot", "summed"]

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
    """Counts of observed durations per bucket; thread-safe."""

    __slots__ = ("_bounds", "_counts", "_lock", "_sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        if list(bounds) != sorted(set(bounds)) or not bounds:
            raise ValueError(f"bucket bounds must be distinct and ascending, got {bounds!r}")
        self._bounds = bounds
        self._counts = [0] * (len(bounds) + 1)  # the last one: above every bound (+Inf)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        """Count one duration (in seconds)."""
        index = bisect_left(self._bounds, seconds)  # le: a value equal to a bound is in it
        with self._lock:
            self._counts[index] += 1
            self._sum += seconds

    def snapshot(self) -> LatencySnapshot:
        """The counts so far, cumulative, as a histogram shows them."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        return _snapshot(self._bounds, counts, total)


def summed(latencies: Iterable[Latency]) -> LatencySnapshot | None:
    """The sum of counters with the same bounds (e.g. every account of one venue), each read
    under its own lock, as one snapshot; None when there are none."""
    bounds: tuple[float, ...] | None = None
    rows: list[list[int]] = []
    sums: list[float] = []
    for latency in latencies:
        if bounds is None:
            bounds = latency._bounds
        elif latency._bounds is not bounds and latency._bounds != bounds:
            raise ValueError(f"cannot add bounds {latency._bounds!r} to {bounds!r}")
        with latency._lock:
            rows.append(latency._counts[:])
            sums.append(latency._sum)
    if bounds is None:
        return None
    return _snapshot(bounds, list(map(sum, zip(*rows, strict=True))), sum(sums))


def _snapshot(bounds: tuple[float, ...], counts: list[int], total: float) -> LatencySnapshot:
    cumulative = tuple(zip((*bounds, _INF), accumulate(counts), strict=True))
    return LatencySnapshot(cumulative, total, cumulative[-1][1])
