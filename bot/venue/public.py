"""How one venue's public-data client is called: one request at a time, counted, observed.

``PublicClient`` wraps the client ``VenueMarket`` (``bot.venue.market``) fetches through.
Every request waits its turn (the SDK clients are not thread-safe), at most the call
timeout; it is counted (in total, per operation, and in a one-minute rate); its outcome
is told to the ``observer`` (the venue's health); and its failure leaves as
``VenueDataError``: the venue's, never recorded against an account.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import structlog

from bot.brokers.paper.broker import MarketData
from bot.clock import Clock
from bot.errors import VenueDataError, describe

__all__ = ["RATE_WINDOW_SECONDS", "PublicClient", "PublicObserver"]

T = TypeVar("T")
RATE_WINDOW_SECONDS = 60.0

log = structlog.get_logger()


class PublicObserver(Protocol):
    """Told the outcome of every public fetch (the venue's health implements it)."""

    def public_failed(self, error: BaseException, operation: str) -> None: ...

    def public_ok(self, operation: str) -> None: ...


class PublicClient:
    """One venue's public-data client (``source``), called through ``request``. Thread-safe."""

    def __init__(
        self,
        name: str,
        source: MarketData,
        *,
        clock: Clock,
        timeout_seconds: float,
        observer: PublicObserver | None = None,
    ) -> None:
        self.name = name
        self.source = source
        self.clock = clock
        self.timeout_seconds = timeout_seconds
        self.observer = observer
        self._lock = threading.Lock()  # guards the counters below
        self._source_lock = threading.Lock()  # one call to the client at a time
        self.public_requests = 0
        self.requests_by_operation: Counter[str] = Counter()
        self._recent: deque[float] = deque(maxlen=10_000)  # monotonic times of requests

    def rate(self) -> float:
        """Requests per second to the client over the last minute."""
        since = self.clock.monotonic() - RATE_WINDOW_SECONDS
        with self._lock:
            return sum(1 for t in self._recent if t >= since) / RATE_WINDOW_SECONDS

    def request(
        self,
        operation: str,
        fn: Callable[..., T],
        *args: Any,
        count: bool = True,
        passthrough: type[Exception] | None = None,
    ) -> T:
        """One call to the client, counted and told to the observer; its failure leaves as
        ``VenueDataError`` (``passthrough``: that type is the venue's answer, raised as is)."""
        if not self._source_lock.acquire(timeout=self.timeout_seconds):
            raise VenueDataError(
                f"{self.name} {operation}: the venue's client stayed busy "
                f"{self.timeout_seconds:g}s",
                operation=operation,
            )
        try:
            if count:
                with self._lock:
                    self.public_requests += 1
                    self.requests_by_operation[operation] += 1
                    self._recent.append(self.clock.monotonic())
            value = fn(*args)
        except Exception as exc:
            if passthrough is not None and isinstance(exc, passthrough):
                self._tell(operation, None)
                raise
            self._tell(operation, exc)
            raise VenueDataError(
                f"{self.name} {operation} failed: {describe(exc)}", operation=operation
            ) from exc
        finally:
            self._source_lock.release()
        self._tell(operation, None)
        return value

    def _tell(self, operation: str, error: BaseException | None) -> None:
        """The observer hears the outcome; its own failure never reaches the caller."""
        observer = self.observer
        if observer is None:
            return
        try:
            if error is None:
                observer.public_ok(operation)
            else:
                observer.public_failed(error, operation)
        except Exception as exc:  # the observer's bug is not the market data's failure
            log.error("venue_observer_failed", venue=self.name, error=describe(exc))

    def close(self) -> None:
        """Release the client's sessions."""
        close = getattr(self.source, "close", None)
        if close is not None:
            close()
