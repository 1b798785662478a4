"""One registry of the five emulated venues, for tests that run the same check on every adapter.

``start_venue("KRAKEN")`` starts that venue's emulator on 127.0.0.1 with one funded
account and returns a ``VenueHandle`` that builds the matching adapter against it.
Credentials are recognisable fakes (``FAKE-<BROKER>-...``) except Coinbase's private
key, which must be a real EC P-256 PEM: it is generated once per process.
"""

from __future__ import annotations

import dataclasses
import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.brokers.alpaca_stocks.broker import AlpacaBroker
from bot.brokers.base import Broker
from bot.brokers.ccxt.broker import CcxtBroker
from bot.brokers.coinbase_advanced.broker import CoinbaseBroker
from bot.model import AccountRef, BrokerSpec, Credentials, OrderRequest, OrderType, Side
from nija_testkit.secrets import new_pem

from .alpaca import AlpacaVenue
from .binance import BinanceVenue
from .coinbase import CoinbaseVenue
from .core import Ledger, Market
from .kraken import KrakenVenue
from .okx import OkxVenue
from .server import EmulatorServer, Venue

BROKERS = ("KRAKEN", "OKX", "BINANCE", "COINBASE", "ALPACA")


@functools.cache
def coinbase_pem() -> str:
    """The emulated Coinbase account's key: made once per process (key generation is slow-ish)."""
    return new_pem()


@dataclass(frozen=True)
class VenueKind:
    """What differs between venues: emulator class, adapter class, fake credentials, symbols."""

    broker: str
    venue_class: Callable[[Market], Venue]
    adapter: Callable[[BrokerSpec], Broker]
    credentials: Callable[[], Credentials]
    symbols: tuple[str, ...]
    balances: dict[str, float]

    def new_venue(self, credentials: Credentials, balances: dict[str, float]) -> Venue:
        """A fresh emulated venue (new market, no orders) holding one funded account."""
        venue = self.venue_class(Market())
        extra = {"passphrase": credentials.passphrase} if credentials.passphrase else {}
        venue.add_account(credentials.api_key, credentials.api_secret, dict(balances), **extra)
        return venue


KINDS = {
    k.broker: k
    for k in (
        VenueKind(
            "KRAKEN",
            KrakenVenue,
            CcxtBroker,
            # Kraken secrets are base64: this one decodes and is still recognisable.
            lambda: Credentials("FAKE-KRAKEN-KEY-0123456789", "FAKEKRAKENSECRETFAKEKRAKENSECRET"),
            ("BTC/USD", "ETH/USD"),
            {"USD": 10000.0},
        ),
        VenueKind(
            "OKX",
            OkxVenue,
            CcxtBroker,
            lambda: Credentials(
                "FAKE-OKX-KEY-0123456789",
                "FAKE-OKX-SECRET-abcdef0123456789",
                "FAKE-OKX-PASSPHRASE-42",
            ),
            ("BTC/USDT", "ETH/USDT"),
            {"USDT": 10000.0},
        ),
        VenueKind(
            "BINANCE",
            BinanceVenue,
            CcxtBroker,
            lambda: Credentials("FAKE-BINANCE-KEY-7f3a9c", "FAKE-BINANCE-SECRET-91b2e4d0"),
            ("BTC/USDT", "ETH/USDT"),
            {"USDT": 10000.0},
        ),
        VenueKind(
            "COINBASE",
            CoinbaseVenue,
            CoinbaseBroker,
            lambda: Credentials(
                "organizations/FAKE-COINBASE-ORG/apiKeys/FAKE-COINBASE-KEY-0001", coinbase_pem()
            ),
            ("BTC/USD", "ETH/USD"),
            {"USD": 10000.0},
        ),
        VenueKind(
            "ALPACA",
            AlpacaVenue,
            AlpacaBroker,
            lambda: Credentials("FAKE-ALPACA-KEY-ID-0001", "FAKE-ALPACA-SECRET-9f8e7d6c5b4a"),
            ("SPY", "AAPL"),
            {"USD": 10000.0},
        ),
    )
}


@dataclass
class VenueHandle:
    """A running emulator for one broker, its funded account, and a factory of adapters."""

    kind: VenueKind
    server: EmulatorServer
    credentials: Credentials
    balances: dict[str, float]
    timeout_seconds: float
    built: list[Broker] = field(default_factory=list)

    @property
    def broker(self) -> str:
        return self.kind.broker

    @property
    def venue(self) -> Venue:
        return self.server.venue

    @property
    def ledger(self) -> Ledger:
        """The funded account's ledger on the current venue."""
        return self.venue.accounts[self.credentials.api_key]

    def reset(self, balances: dict[str, float] | None = None) -> Ledger:
        """Fresh venue state (market, account, orders), no faults, no records; close brokers.

        The server looks its venue up on every request, so swapping the venue is a fresh
        exchange behind the same port (stopping a server costs ~0.5 s).
        """
        self.close_brokers()
        self.server.clear_faults()
        self.server.venue = self.kind.new_venue(
            self.credentials, self.balances if balances is None else balances
        )
        self.server.requests.clear()
        self.server.echoed.clear()
        return self.ledger

    def spec(self, **overrides) -> BrokerSpec:
        """The adapter spec for the funded account; any ``BrokerSpec`` field may be overridden."""
        spec = BrokerSpec(
            account=AccountRef("platform", "platform", self.broker),
            credentials=self.credentials,
            symbols=self.kind.symbols,
            base_url=self.server.url,
            timeout_seconds=self.timeout_seconds,
            rate_limit=False,
        )
        return dataclasses.replace(spec, **overrides)

    def make_broker(self, **overrides) -> Broker:
        """A new adapter for the funded account (closed by ``reset``/``stop``)."""
        broker = self.kind.adapter(self.spec(**overrides))
        self.built.append(broker)
        return broker

    def order_request(self, client_order_id: str | None = None) -> OrderRequest:
        """A small market buy of the first symbol, sized in quote currency.

        The default client id is 32 hex characters: a shape every venue accepts
        (OKX takes only alphanumerics, Kraken free text of at most 18 characters).
        """
        return OrderRequest(
            self.kind.symbols[0],
            Side.BUY,
            OrderType.MARKET,
            client_order_id or uuid.uuid4().hex,
            quote_amount=100.0,
        )

    def close_brokers(self) -> None:
        for broker in self.built:
            broker.close()
        self.built.clear()

    def stop(self) -> None:
        self.close_brokers()
        self.server.stop()


def start_venue(
    broker: str,
    *,
    balances: dict[str, float] | None = None,
    timeout_seconds: float = 3.0,
) -> VenueHandle:
    """Start ``broker``'s emulator on 127.0.0.1 with one funded account (stop it when done)."""
    kind = KINDS[broker.upper()]
    credentials = kind.credentials()
    funded = dict(balances if balances is not None else kind.balances)
    server = EmulatorServer(kind.new_venue(credentials, funded)).start()
    return VenueHandle(kind, server, credentials, funded, timeout_seconds)


class VenuePool:
    """One emulator per broker, started on first use and kept until ``stop``.

    A test suite shares them across modules (stopping a server costs ~0.5 s); every taker
    gets the venue fresh, so no state, fault or record passes from one test to the next.
    """

    def __init__(self) -> None:
        self._handles: dict[str, VenueHandle] = {}

    def _handle(self, broker: str) -> VenueHandle:
        name = broker.upper()
        if name not in self._handles:
            self._handles[name] = start_venue(name)
        return self._handles[name]

    def handle(self, broker: str) -> VenueHandle:
        """``broker``'s emulator reset to its one funded account, no faults, no records."""
        handle = self._handle(broker)
        handle.reset()
        return handle

    def server(self, broker: str, market: Market | None = None) -> EmulatorServer:
        """``broker``'s emulator serving a new venue on ``market`` with no account yet."""
        handle = self._handle(broker)
        handle.close_brokers()
        handle.server.clear_faults()
        handle.server.venue = handle.kind.venue_class(market if market is not None else Market())
        handle.server.requests.clear()
        return handle.server

    def stop(self) -> None:
        """Stop every emulator this pool started."""
        for handle in self._handles.values():
            handle.stop()
        self._handles.clear()
