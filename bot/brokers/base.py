"""The narrow broker interface every adapter implements, and credential checks.

SDK objects never leave an adapter: callers see only the types of ``bot.model``. Nor do SDK
exceptions: each adapter translates every SDK failure at its one choke point into the
``bot.errors`` types (``BrokerError`` and its kinds), chained ``from`` the SDK's exception,
so ``bot.isolation.failures.classify`` sorts them without knowing any SDK.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol

from bot.errors import BrokerConfigError
from bot.model import (
    AccountRef,
    AssetClass,
    Balance,
    BrokerSpec,
    Candles,
    MarketRules,
    Order,
    OrderRequest,
    Position,
    Ticker,
    VenueCondition,
    VenueStatus,
)

# Hosts that never leave the machine: the only ones a base URL may reach over plain http
# (API keys travel in request headers), and ones no proxy from the environment may route.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def credential_problem(value: str, *, multiline: bool = False) -> str | None:
    """Why a credential cannot go into an HTTP header or a signature, or None when it can.

    A stray line break or an invisible character pasted into a key makes the HTTP
    layer raise with the header value in its message; refusing it first keeps it out.
    PEM secrets (``multiline``) may hold spaces and line breaks.
    """
    allowed = " \r\n" if multiline else ""
    for ch in value:
        if ch not in allowed and not ("!" <= ch <= "~"):
            return "contains a space, line break or non-ASCII character (a copy-paste slip?)"
    return None


def validate_credentials(spec: BrokerSpec, *, multiline_secret: bool = False) -> None:
    """Raise BrokerConfigError (naming the field, never the value) for an unusable credential."""

    creds = spec.credentials
    for name, value, multiline in (
        ("API key", creds.api_key, False),
        ("API secret", creds.api_secret, multiline_secret),
        ("passphrase", creds.passphrase, False),
    ):
        problem = credential_problem(value, multiline=multiline) if value else None
        if problem:
            raise BrokerConfigError(f"{spec.account.key}: the {name} {problem}")


class ValuationPrices(Protocol):
    """Where an adapter prices what an account holds, to value its balance and positions.

    In the daemon it is the venue's shared market data (``bot.venue.market.VenueMarket``):
    one public ticker per symbol for the whole venue, however many accounts hold it.
    """

    def valuation_price(self, symbol: str) -> float:
        """The last price of ``symbol`` (it may be some seconds old: fine for a valuation).
        ``VenueDataError`` when it cannot be had now: the venue's failure, never the
        account's, and the holding's value is then unknown (never 0)."""
        ...


class Broker(ABC):
    """One broker account. Every method is one bounded call (or a few) to the venue.

    Methods raise on failure (``bot.errors`` types, or a builtin OSError from the socket
    layer); they never answer a failed query with an empty result.
    """

    name: str  # COINBASE, KRAKEN, OKX, BINANCE, ALPACA, PAPER
    asset_class: AssetClass
    account: AccountRef

    @abstractmethod
    def fetch_balance(self) -> Balance: ...

    @abstractmethod
    def fetch_candles(self, symbol: str, timeframe: str = "5m", limit: int = 200) -> Candles: ...

    @abstractmethod
    def fetch_ticker(self, symbol: str) -> Ticker: ...

    @abstractmethod
    def fetch_positions(self) -> list[Position]: ...

    @abstractmethod
    def place_order(self, request: OrderRequest) -> Order: ...

    @abstractmethod
    def fetch_order(self, client_order_id: str, symbol: str | None = None) -> Order | None:
        """The order with this client id, or None when the venue says it has no such order."""

    @abstractmethod
    def fetch_open_orders(self, symbol: str | None = None) -> list[Order]: ...

    @abstractmethod
    def cancel_order(self, client_order_id: str, symbol: str | None = None) -> Order | None:
        """Cancel by client id; the order afterwards, or None when the venue has no such order."""

    @abstractmethod
    def symbols(self) -> list[str]:
        """The configured symbols the venue actually lists, in configured order."""

    def market_rules(self, symbol: str) -> MarketRules:
        """The venue's lot step, minimum amount and minimum notional for ``symbol``, from its
        market metadata (loaded once per client, then cached).

        Being implemented venue by venue; it becomes abstract once every adapter has it.
        """
        raise NotImplementedError(f"{self.name}: market rules are not implemented yet")

    def adopt_metadata(self, source: Broker) -> bool:
        """Take the market metadata that ``source``, a client of the same venue (usually
        one without a key), has loaded, instead of loading it again; True when this client
        now holds it. Adapters whose metadata is not shared keep loading their own (False).
        """
        return False

    def fetch_status(self) -> VenueStatus:
        """The venue's own public status check (unauthenticated, one request), translated.

        Venues without one (Coinbase Advanced Trade and Alpaca publish none in their trading
        APIs) keep this default, which says so without any request: ``has_status_check``
        tells the two apart.
        """
        return VenueStatus(VenueCondition.UNKNOWN, f"{self.name} has no public status check")

    @property
    def has_status_check(self) -> bool:
        """True when ``fetch_status`` asks the venue (the adapter implements it)."""
        return type(self).fetch_status is not Broker.fetch_status

    def value_holdings_with(self, prices: ValuationPrices) -> None:  # noqa: B027 - optional
        """Value this account's holdings (its balance's equity, its positions' worth) at
        ``prices``, the venue's shared ones, instead of asking public tickers of its own.
        Adapters whose venue reports the holdings' worth in the account's own private answer
        (Alpaca), or that price from the venue's data already (paper), keep this default."""

    def refresh_markets(self) -> None:  # noqa: B027 - optional hook: no cached markets
        """Forget the market metadata loaded so far: the next call that needs it loads it
        again (the venue layer reloads its metadata on a slow timer). No network."""

    def close(self) -> None:  # noqa: B027 - optional hook, most adapters hold nothing to release
        """Release sessions and sockets."""
