"""The venue's shared tickers: one cache for every account of the venue, each caller taking
its own age (valuing holdings: 30 s; a paper fill: 2 s).

A ticker older than the caller's age is fetched anew, once for every caller (the others wait
for it, at most their own wait); a failed fetch is not sent again for
``failure_retry_seconds``, and meanwhile raises at once: a venue in trouble gets one request
per interval, not one per account. A failed refresh leaves a ticker still young enough for
a caller in use.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from bot.errors import VenueDataError
from bot.model import Ticker
from bot.venue.flight import SingleFlight
from bot.venue.public import PublicClient
from bot.venue.waits import fly, raise_if_backing_off

__all__ = ["TickerCache"]

_NEVER = float("-inf")


@dataclass
class _TickerEntry:
    ticker: Ticker | None = None
    fetched_at: float = _NEVER  # monotonic
    error: VenueDataError | None = None  # the last fetch failed...
    retry_at: float = _NEVER  # ...and is not sent again before this (monotonic)


class TickerCache:
    """One venue's tickers, fetched through its ``PublicClient``. Thread-safe."""

    def __init__(self, public: PublicClient, *, failure_retry_seconds: float) -> None:
        self._public = public
        self.failure_retry_seconds = failure_retry_seconds
        self._lock = threading.Lock()  # guards the entries
        self._flight: SingleFlight[Any] = SingleFlight()
        self._entries: dict[str, _TickerEntry] = {}

    def ticker(self, symbol: str, max_age: float, wait: float) -> Ticker:
        """The shared ticker fetched at most ``max_age`` ago, else fetched now (once for
        every caller, each waiting at most ``wait``); ``VenueDataError`` if not to be had."""
        cached = self._cached(symbol, max_age)
        if cached is not None:
            return cached
        return fly(
            self._flight,
            symbol,
            lambda: self._fetch(symbol, max_age),
            venue=self._public.name,
            operation="ticker",
            wait=wait,
        )

    def _cached(self, symbol: str, max_age: float) -> Ticker | None:
        """The cached ticker when young enough, else None; raises while a failed fetch of
        it is not due again."""
        now = self._public.clock.monotonic()
        with self._lock:
            entry = self._entries.get(symbol)
            if entry is None:
                return None
            if entry.ticker is not None and now - entry.fetched_at < max_age:
                return entry.ticker
            raise_if_backing_off(entry.error, entry.retry_at, now)
        return None

    def _fetch(self, symbol: str, max_age: float) -> Ticker:
        cached = self._cached(symbol, max_age)  # fetched while this caller was on its way
        if cached is not None:
            return cached
        public = self._public
        try:
            ticker = public.request("ticker", public.source.fetch_ticker, symbol)
        except VenueDataError as exc:
            with self._lock:
                entry = self._entries.setdefault(symbol, _TickerEntry())
                entry.error = exc
                entry.retry_at = public.clock.monotonic() + self.failure_retry_seconds
            raise
        with self._lock:
            self._entries[symbol] = _TickerEntry(ticker, public.clock.monotonic())
        return ticker
