"""One venue client per account, the request budgets, and each venue's shared market metadata.

The daemon builds one ``VenueClients`` (``wiring.default_factories``) and both the funded
check and the trading threads take their clients from it:

* ``client(spec)``: the account's one venue client. Built at its first funded check,
  kept across re-checks, and the same object becomes its trading thread's venue client
  (``create_trading_broker(..., venue=client)``).
* ``budgets(spec)``: what the account's requests spend: the venue's public budget (one
  per venue in the process, shared by all of its clients: ``public_budget``) and the
  account's own private budget (one per key). None when ``spec.rate_limit`` is False
  (tests against the emulator, ``NIJA_REQUEST_BUDGETS=false``).
* ``metadata_source(spec)``: a client without a key that loaded the venue's market
  metadata once; each account's client adopts it (``Broker.adopt_metadata``) instead of
  loading the markets itself.
* ``shared_prices``: in the daemon, each venue's shared market data; each account's client
  values its holdings at it (``Broker.value_holdings_with``): one public ticker per held
  symbol for the venue, not one per account. What an account waits on it is the venue's
  work (which may wait on the venue's public budget), counted in ``waited_seconds``.

The venue layer (``bot/venue/``) takes two of these over: VenueHub will own each venue's
public budget (``public_budget``) and VenueMarket its metadata client (``metadata_source``);
each is one small method to swap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import structlog

from bot.brokers import venues
from bot.brokers.base import Broker, ValuationPrices
from bot.brokers.budget import Budgets, RequestBudget, Wait
from bot.brokers.factory import create_venue_broker
from bot.clock import SYSTEM_CLOCK, Clock
from bot.errors import BrokerError, describe
from bot.model import AccountRef, BrokerSpec, Credentials

# After a failed metadata load, accounts load their own until this much time has passed.
METADATA_RETRY_SECONDS = 60.0

Build = Callable[..., Broker]  # (spec, *, clock, budgets) -> Broker, like create_venue_broker


@dataclass
class _Metadata:
    """One venue's shared metadata: the keyless client that loaded it, or when it failed."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    client: Broker | None = None
    loaded: bool = False
    failed_at: float | None = None


class VenueClients:
    """The venue clients and request budgets of one process (see the module doc)."""

    def __init__(
        self,
        *,
        clock: Clock = SYSTEM_CLOCK,
        wait: Wait | None = None,
        build: Build = create_venue_broker,
        log=None,
    ) -> None:
        self._clock = clock
        self._wait = wait  # the budgets' wait (None: a real sleep)
        self._build = build
        self.log = log or structlog.get_logger()
        self._lock = threading.Lock()
        self._clients: dict[str, tuple[Credentials, Broker]] = {}  # with the keys it holds
        self._budgets: dict[str, Budgets] = {}
        self._public: dict[str, RequestBudget | None] = {}
        self._metadata: dict[str, _Metadata] = {}
        # What each account waited on its venue's shared work (its metadata load, its prices).
        self._shared: dict[str, _Waits] = {}
        # The daemon's venue layer, once built: venue name -> the client holding the venue's
        # metadata (``VenueMarket.metadata_client``), so it is loaded once per venue in all.
        self.shared_metadata: Callable[[str], Broker | None] | None = None
        # ...and venue name -> the prices its accounts' holdings are valued at (its market).
        self.shared_prices: Callable[[str], ValuationPrices | None] | None = None

    # -- clients ------------------------------------------------------------------------
    def client(self, spec: BrokerSpec) -> Broker:
        """The account's one venue client: built on first use (no network), the same object
        afterwards while its credentials stay the same (an operator's reload brings new ones:
        then a new client). It adopts the venue's shared market metadata while it has none."""
        key = spec.account.key
        with self._lock:
            built = self._clients.get(key)
        client = built[1] if built is not None and built[0] == spec.credentials else None
        if client is None:
            budgets = self.budgets(spec)
            with self._lock:  # building touches no network: cheap under the lock
                built = self._clients.get(key)
                if built is not None and built[0] == spec.credentials:
                    client = built[1]
                else:
                    client = self._build(spec, clock=self._clock, budgets=budgets)
                    self._share_prices(spec, client)
                    self._clients[key] = (spec.credentials, client)
        if venues.venue(spec.account.broker).public_metadata:
            with self._waits(key).timing():  # the venue's work, bounded on its own
                source = self.metadata_source(spec)
            if source is not None:
                client.adopt_metadata(source)
        return client

    def _share_prices(self, spec: BrokerSpec, client: Broker) -> None:
        """(lock held) The new client values its holdings at its venue's shared prices, where
        there are; the account's waits on them are timed."""
        prices = self.shared_prices(spec.account.broker) if self.shared_prices else None
        if prices is not None:
            waits = self._shared.setdefault(spec.account.key, _Waits(self._clock))
            client.value_holdings_with(_TimedPrices(prices, waits))

    def _waits(self, key: str) -> _Waits:
        with self._lock:
            return self._shared.setdefault(key, _Waits(self._clock))

    def close(self) -> None:
        """Close every client (a one-shot command's end; the daemon keeps them to its end)."""
        with self._lock:
            clients = [client for _, client in self._clients.values()]
            clients += [m.client for m in self._metadata.values() if m.client is not None]
            self._clients.clear()
            self._metadata.clear()
        for client in clients:
            client.close()

    # -- budgets ------------------------------------------------------------------------
    def budgets(self, spec: BrokerSpec) -> Budgets | None:
        """The account's budgets (its private one per key, the venue's public one shared);
        None when ``spec.rate_limit`` is off."""
        if not spec.rate_limit:
            return None
        key = spec.account.key
        entry = venues.venue(spec.account.broker)
        with self._lock:
            found = self._budgets.get(key)
            if found is None:
                limit = entry.private_limit
                private = limit.budget(clock=self._clock, wait=self._wait) if limit else None
                found = Budgets(public=self._public_budget(entry), private=private)
                self._budgets[key] = found
            return found

    def public_budget(self, name: str) -> RequestBudget | None:
        """Venue ``name``'s one public (per-IP) budget in this process; VenueHub owns it later."""
        with self._lock:
            return self._public_budget(venues.venue(name))

    def _public_budget(self, entry: venues.Venue) -> RequestBudget | None:
        if entry.name not in self._public:
            limit = entry.public_limit
            self._public[entry.name] = (
                limit.budget(clock=self._clock, wait=self._wait) if limit else None
            )
        return self._public[entry.name]

    def waited_seconds(self, spec: BrokerSpec) -> float:
        """Seconds the account has waited on what it shares with its venue, in total: its
        requests on their budgets, and it on the venue's one metadata load and on the venue's
        prices of its holdings (a wait in progress included, so the deadline moves while it
        lasts). The funded check moves its deadline by what this grows (each is bounded on
        its own)."""
        with self._lock:
            own = self._budgets.get(spec.account.key)
            shared = self._shared.get(spec.account.key)
        return (shared.seconds() if shared else 0.0) + (own.waited_seconds if own else 0.0)

    # -- shared metadata ------------------------------------------------------------------
    def metadata_source(self, spec: BrokerSpec) -> Broker | None:
        """A keyless client of ``spec``'s venue holding its market metadata, loaded once per
        venue; None when the load failed (then each account loads its own, as before, and
        the next try is ``METADATA_RETRY_SECONDS`` later); in the daemon, the venue layer's
        (``shared_metadata``).

        A failed load is the venue's, not an account's: it is logged, never charged to a
        breaker. Only one load per venue runs at a time; the other accounts wait for it.
        """
        name = spec.account.broker
        if self.shared_metadata is not None:
            return self.shared_metadata(name)
        with self._lock:
            state = self._metadata.setdefault(name, _Metadata())
        with state.lock:
            if state.loaded:
                return state.client
            now = self._clock.monotonic()
            if state.failed_at is not None and now - state.failed_at < METADATA_RETRY_SECONDS:
                return None
            if state.client is None:
                budgets = Budgets(public=self.public_budget(name)) if spec.rate_limit else None
                state.client = self._build(_keyless(spec), clock=self._clock, budgets=budgets)
            try:
                state.client.symbols()  # loads the venue's market metadata
            except (BrokerError, OSError) as exc:
                state.failed_at = now
                self.log.warning("venue_metadata_failed", venue=name, error=describe(exc))
                return None
            state.loaded = True
            return state.client


class _Waits:
    """How long one account has waited on its venue's shared work, a wait in progress
    included (overlapping waits count once)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._done = 0.0
        self._active = 0
        self._since = 0.0  # monotonic start of the waits in progress (while _active)

    @contextmanager
    def timing(self) -> Iterator[None]:
        """The block is a wait on the venue."""
        with self._lock:
            if self._active == 0:
                self._since = self._clock.monotonic()
            self._active += 1
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1
                if self._active == 0:
                    self._done += self._clock.monotonic() - self._since

    def seconds(self) -> float:
        """Seconds waited so far."""
        with self._lock:
            running = self._clock.monotonic() - self._since if self._active else 0.0
            return self._done + running


class _TimedPrices:
    """One account's view of its venue's prices (``ValuationPrices``): its waits are timed."""

    def __init__(self, prices: ValuationPrices, waits: _Waits) -> None:
        self._prices = prices
        self._waits = waits

    def valuation_price(self, symbol: str) -> float:
        """The venue's price of ``symbol``; the wait for it is the venue's work."""
        with self._waits.timing():
            return self._prices.valuation_price(symbol)


def _keyless(spec: BrokerSpec) -> BrokerSpec:
    """``spec``'s venue, symbols and endpoints without its key: public requests only."""
    return BrokerSpec(
        AccountRef("venue", "metadata", spec.account.broker),
        Credentials(),
        symbols=spec.symbols,
        base_url=spec.base_url,
        data_url=spec.data_url,
        paper_endpoint=spec.paper_endpoint,
        timeout_seconds=spec.timeout_seconds,
        rate_limit=spec.rate_limit,
    )


__all__ = ["METADATA_RETRY_SECONDS", "VenueClients"]
