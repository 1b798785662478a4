"""The venue's public market data: fetched once per venue, shared read-only by its accounts.

One ``VenueMarket`` per venue per process, over one public-data client (an adapter built
without credentials where the venue serves market data without a key; the synthetic
market in the demo). What it serves:

* ``candles(symbol, timeframe, limit)``: an immutable ``CandleSnapshot``, fetched at most
  once per candle close per key: cached until the next candle closes (plus
  ``settle_seconds``, so late trades are in). When the venue has not published the candle
  that just closed, the snapshot is refreshed up to ``refresh_attempts`` times,
  ``refresh_spacing_seconds`` apart (callers meanwhile get the snapshot as it is).
  Concurrent requests for one key make one request; the others wait for it, at most the
  call timeout.
* ``rules(symbol)`` and ``listed(symbols)``: from the market metadata, loaded once and
  reloaded every ``metadata_refresh_seconds`` (the last good metadata serves until a
  reload works). Never per account.
* ``valuation_price(symbol)`` (``bot.brokers.base.ValuationPrices``): what values the
  accounts' holdings, the venue's shared ticker up to ``valuation_age_seconds`` old: one
  request per held symbol per that age, however many accounts hold it (the cache:
  ``bot.venue.tickers``).
* ``fetch_ticker``, ``fetch_candles``, ``symbols``, ``market_rules``: the paper broker's
  ``MarketData`` protocol, so paper fills price from the same data (tickers are shared
  for ``ticker_ttl_seconds``). These are the account's own calls: an adapter's failure
  reaches them unchanged, as it would from the account's own adapter.

A failed public fetch is the venue's: it is told to the ``observer`` (the venue's health)
once, raised to the callers as ``VenueDataError`` and never recorded against an account.
After a failure the same request waits ``failure_retry_seconds`` before it is sent
again: a venue in trouble gets one request per interval, not one per account.
Calls to the client are made one at a time (the SDK clients are not thread-safe), counted
and observed by ``PublicClient`` (``bot.venue.public``).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bot.brokers.base import Broker
from bot.brokers.paper.broker import MarketData
from bot.brokers.paper.rules import rules_of
from bot.clock import SYSTEM_CLOCK, Clock
from bot.errors import VenueDataError, VenueRefused
from bot.model import Candles, MarketRules, Ticker
from bot.venue.flight import FlightTimeout, SingleFlight
from bot.venue.public import PublicClient, PublicObserver
from bot.venue.snapshot import CandleSnapshot
from bot.venue.tickers import TickerCache
from bot.venue.waits import fly, raise_if_backing_off

T = TypeVar("T")
# How long an account's client waits for the venue's one metadata load before loading its own.
METADATA_WAIT_SECONDS = 60.0
# How long a valuation waits for the venue's one ticker request, which may wait on the venue's
# public budget (no call timeout counts that; the funded check's deadline moves by the wait).
VALUATION_WAIT_SECONDS = 60.0

DEFAULT_SETTLE_SECONDS = 2.0
DEFAULT_REFRESH_ATTEMPTS = 3
DEFAULT_REFRESH_SPACING_SECONDS = 5.0
DEFAULT_FAILURE_RETRY_SECONDS = 10.0
DEFAULT_METADATA_REFRESH_SECONDS = 3600.0
DEFAULT_TICKER_TTL_SECONDS = 2.0
# How old a ticker may be to value holdings: Kraken's public budget (0.5 requests/s) then
# carries every held symbol's price for every account with 1/15 of it per symbol.
DEFAULT_VALUATION_AGE_SECONDS = 30.0
_NEVER = float("-inf")


@dataclass
class _CandleEntry:
    snapshot: CandleSnapshot | None = None
    expires_at: float = _NEVER  # wall: fetch anew from here on
    refresh_at: float | None = None  # wall: an incomplete snapshot is fetched again from here
    refreshes_left: int = 0
    error: VenueDataError | None = None  # the last fetch failed...
    retry_at: float = _NEVER  # ...and is not sent again before this (monotonic)

    def fresh(self, now: float) -> bool:
        due = self.refresh_at is not None and now >= self.refresh_at
        return self.snapshot is not None and now < self.expires_at and not due


@dataclass
class _Metadata:
    listed: tuple[str, ...]  # the configured symbols the venue lists
    rules: dict[str, MarketRules] = field(default_factory=dict)


class VenueMarket:
    """One venue's shared market data (see the module docstring). Thread-safe."""

    def __init__(
        self,
        name: str,
        source: MarketData,
        *,
        clock: Clock = SYSTEM_CLOCK,
        timeout_seconds: float = 15.0,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        refresh_attempts: int = DEFAULT_REFRESH_ATTEMPTS,
        refresh_spacing_seconds: float = DEFAULT_REFRESH_SPACING_SECONDS,
        failure_retry_seconds: float = DEFAULT_FAILURE_RETRY_SECONDS,
        metadata_refresh_seconds: float = DEFAULT_METADATA_REFRESH_SECONDS,
        ticker_ttl_seconds: float = DEFAULT_TICKER_TTL_SECONDS,
        valuation_age_seconds: float = DEFAULT_VALUATION_AGE_SECONDS,
        observer: PublicObserver | None = None,
    ) -> None:
        self.settle_seconds = settle_seconds
        self.refresh_attempts = refresh_attempts
        self.refresh_spacing_seconds = refresh_spacing_seconds
        self.failure_retry_seconds = failure_retry_seconds
        self.metadata_refresh_seconds = metadata_refresh_seconds
        self.ticker_ttl_seconds = ticker_ttl_seconds
        self.valuation_age_seconds = valuation_age_seconds
        self._public = PublicClient(
            name, source, clock=clock, timeout_seconds=timeout_seconds, observer=observer
        )
        self._lock = threading.Lock()  # guards the caches below
        self._flight: SingleFlight[Any] = SingleFlight()
        self._candles: dict[tuple[str, str, int], _CandleEntry] = {}
        self._tickers = TickerCache(self._public, failure_retry_seconds=failure_retry_seconds)
        self._meta: _Metadata | None = None
        self._meta_due = _NEVER  # monotonic: reload from here on
        self._meta_error: VenueDataError | None = None

    def __repr__(self) -> str:
        return f"VenueMarket({self.name}, source={type(self.source).__name__})"

    # The venue's name, public-data client, clock and call timeout: its PublicClient's.
    @property
    def name(self) -> str:
        """The venue's name (``KRAKEN``)."""
        return self._public.name

    @property
    def source(self) -> MarketData:
        """The venue's public-data client (see ``client``)."""
        return self._public.source

    @property
    def clock(self) -> Clock:
        """The clock the caches age by."""
        return self._public.clock

    @property
    def timeout_seconds(self) -> float:
        """How long a caller waits for a request in flight (the call timeout)."""
        return self._public.timeout_seconds

    @property
    def observer(self) -> PublicObserver | None:
        """Told the outcome of every public request (the venue's health); may be set later."""
        return self._public.observer

    @observer.setter
    def observer(self, observer: PublicObserver | None) -> None:
        self._public.observer = observer

    @property
    def public_requests(self) -> int:
        """Requests made to the venue's public client."""
        return self._public.public_requests

    @property
    def requests_by_operation(self) -> Counter[str]:
        """Requests made to the venue's public client, per operation."""
        return self._public.requests_by_operation

    @property
    def client(self) -> MarketData:
        """The venue's public-data client (an adapter without credentials, where the venue
        allows it). Not thread-safe: call it through ``call``."""
        return self.source

    def call(self, operation: str, fn: Callable[[MarketData], T]) -> T:
        """``fn(client)`` as one of the venue's public requests (the venue's status probe,
        the funded check's metadata): one at a time with the others, counted, told to the
        observer; its failure raises ``VenueDataError`` (the venue's)."""
        return self._public.request(operation, fn, self.source)

    # -- candles ----------------------------------------------------------------------
    def candles(self, symbol: str, timeframe: str, limit: int) -> CandleSnapshot:
        """The shared snapshot of ``symbol``'s last ``limit`` candles (the forming one
        dropped); ``VenueDataError`` when it cannot be had now."""
        key = (symbol, timeframe, limit)
        with self._lock:
            entry = self._candles.get(key)
            if entry is not None:
                if entry.fresh(self.clock.wall()):
                    return entry.snapshot  # type: ignore[return-value]  # fresh: not None
                self._raise_if_backing_off(entry.error, entry.retry_at)
        return self._fly(("candles", key), lambda: self._fetch_candles(key), "candles")

    def _fetch_candles(self, key: tuple[str, str, int]) -> CandleSnapshot:
        symbol, timeframe, limit = key
        with self._lock:
            entry = self._candles.setdefault(key, _CandleEntry())
            if entry.fresh(self.clock.wall()):  # fetched while this caller was on its way
                return entry.snapshot  # type: ignore[return-value]
            self._raise_if_backing_off(entry.error, entry.retry_at)
        fetched_at = self.clock.wall()
        try:
            raw = self._public.request(
                "candles", self.source.fetch_candles, symbol, timeframe, limit
            )
        except VenueDataError as exc:
            with self._lock:
                if entry.snapshot is not None and fetched_at < entry.expires_at:
                    # A failed refresh: the snapshot still holds for this candle.
                    entry.refresh_at = None
                    return entry.snapshot
                entry.error, entry.retry_at = (
                    exc,
                    self.clock.monotonic() + self.failure_retry_seconds,
                )
            raise
        snap = CandleSnapshot.of(raw, symbol, timeframe, fetched_at)
        with self._lock:
            refreshing = entry.snapshot is not None and entry.snapshot.next_close == snap.next_close
            left = entry.refreshes_left - 1 if refreshing else self.refresh_attempts
            entry.snapshot, entry.error = snap, None
            entry.expires_at = snap.next_close + self.settle_seconds
            entry.refreshes_left = max(left, 0)
            entry.refresh_at = None
            if not snap.complete and snap.one_behind and entry.refreshes_left > 0:
                at = fetched_at + self.refresh_spacing_seconds
                entry.refresh_at = at if at < entry.expires_at else None
        return snap

    # -- market metadata -----------------------------------------------------------------
    def listed(self, symbols: Sequence[str] | None = None) -> list[str]:
        """Those of ``symbols`` the venue lists, in their order (None: every configured
        symbol the venue lists); ``VenueDataError`` before the metadata was ever loaded."""
        meta = self._metadata()
        if symbols is None:
            return list(meta.listed)
        return [s for s in dict.fromkeys(symbols) if s in meta.listed]

    def rules(self, symbol: str) -> MarketRules:
        """The venue's rules for ``symbol`` (its lot step and minimums); a symbol outside the
        configured ones is looked up once. ``VenueRefused`` (e.g. ``NotFound``) when the
        venue refuses it; ``VenueDataError`` when it cannot be had now."""
        meta = self._metadata()
        found = meta.rules.get(symbol)
        if found is not None:
            return found
        rules = self._fly(("rules", symbol), lambda: self._fetch_rules(symbol), "markets")
        with self._lock:
            meta.rules[symbol] = rules
        return rules

    def cached_rules(self, symbol: str) -> MarketRules | None:
        """The rules of ``symbol`` if already loaded (no venue call), else None."""
        with self._lock:
            return self._meta.rules.get(symbol) if self._meta is not None else None

    def _fetch_rules(self, symbol: str) -> MarketRules:
        return self._public.request(
            "markets", rules_of, self.source, symbol, passthrough=VenueRefused
        )

    def _metadata(self) -> _Metadata:
        with self._lock:
            meta = self._meta
            if meta is not None and self.clock.monotonic() < self._meta_due:
                return meta
        try:
            return self._fly(("metadata",), self._load_metadata, "markets")
        except VenueDataError:
            if meta is None:
                raise
            return meta  # the last good metadata serves until a reload works

    def _load_metadata(self) -> _Metadata:
        with self._lock:
            old, now = self._meta, self.clock.monotonic()
            if old is not None and now < self._meta_due:
                return old
            if old is None:
                self._raise_if_backing_off(self._meta_error, self._meta_due)
        if old is not None:
            refresh = getattr(self.source, "refresh_markets", None)
            if refresh is not None:
                refresh()  # the adapter forgets its cached markets: the next call reloads
        try:
            listed = tuple(self._public.request("markets", self.source.symbols))
            # Served from what the call above loaded (no further request for most venues).
            rules = {
                s: self._public.request("markets", rules_of, self.source, s, count=False)
                for s in listed
            }
        except VenueDataError as exc:
            with self._lock:
                self._meta_error = exc
                self._meta_due = self.clock.monotonic() + self.failure_retry_seconds
            raise
        meta = _Metadata(listed, rules)
        with self._lock:
            self._meta, self._meta_error = meta, None
            self._meta_due = self.clock.monotonic() + self.metadata_refresh_seconds
        return meta

    def metadata_client(self) -> Broker | None:
        """The client holding the venue's market metadata, loaded once for the venue, for the
        accounts' own clients to adopt (``Broker.adopt_metadata``) instead of loading it
        again; None when the load failed or the source is no adapter (the demo's market)."""
        try:
            with self._lock:
                loaded = self._meta is not None
            if not loaded:
                # The load's requests wait on the venue's public budget, which no call timeout
                # counts: wait for it longer than a call (the funded check's deadline moves by
                # this wait), so no account loads the metadata again beside it.
                self._flight.do(("metadata",), self._load_metadata, METADATA_WAIT_SECONDS)
            self._metadata()
        except (VenueDataError, FlightTimeout):
            return None
        return self.source if isinstance(self.source, Broker) else None

    # -- tickers: one cache (bot.venue.tickers), each caller taking its own age ------------
    def valuation_price(self, symbol: str) -> float:
        """The last price that values a holding of ``symbol`` (``ValuationPrices``): the
        shared ticker, at most ``valuation_age_seconds`` old; ``VenueDataError`` when it
        cannot be had now (a failed refresh leaves a ticker still young enough in use)."""
        ticker = self._tickers.ticker(symbol, self.valuation_age_seconds, VALUATION_WAIT_SECONDS)
        return ticker.last

    # -- the paper broker's MarketData ---------------------------------------------------------
    def fetch_ticker(self, symbol: str) -> Ticker:
        """Best bid, ask and last, shared for ``ticker_ttl_seconds``; an adapter's failure is
        raised as the adapter raised it."""
        try:
            return self._tickers.ticker(symbol, self.ticker_ttl_seconds, self.timeout_seconds)
        except VenueDataError as exc:
            raise _unwrapped(exc) from None

    def fetch_candles(self, symbol: str, timeframe: str = "5m", limit: int = 200) -> Candles:
        """The shared snapshot's closed candles."""
        try:
            return self.candles(symbol, timeframe, limit).candles
        except VenueDataError as exc:
            raise _unwrapped(exc) from None

    def symbols(self) -> list[str]:
        """Every configured symbol the venue lists."""
        try:
            return self.listed()
        except VenueDataError as exc:
            raise _unwrapped(exc) from None

    def market_rules(self, symbol: str) -> MarketRules:
        """The venue's rules for ``symbol``."""
        try:
            return self.rules(symbol)
        except VenueDataError as exc:
            raise _unwrapped(exc) from None

    # -- requests, failures, counts -------------------------------------------------------------
    def public_request_rate(self) -> float:
        """Requests per second to the venue's public client over the last minute."""
        return self._public.rate()

    def _fly(self, key: tuple, fn: Callable[[], T], operation: str) -> T:
        return fly(self._flight, key, fn, venue=self.name, operation=operation,
                   wait=self.timeout_seconds)  # fmt: skip

    def _raise_if_backing_off(self, error: VenueDataError | None, until: float) -> None:
        """Raise (lock held) when the last attempt failed and its retry is not due yet."""
        raise_if_backing_off(error, until, self.clock.monotonic())

    def close(self) -> None:
        """Release the client's sessions."""
        self._public.close()


def _unwrapped(error: VenueDataError) -> BaseException:
    """The adapter's own error behind ``error`` (or ``error`` when there is none)."""
    cause = error.__cause__
    return cause if isinstance(cause, Exception) else error
