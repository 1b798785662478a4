"""The paper broker: a simulated wallet with simulated fills over any market-data source.

The market data comes from outside: the built-in ``SyntheticMarket`` (the demo, no keys)
or a real adapter's public data (paper trading on a real account, e.g. account
``platform/platform/KRAKEN`` with the Kraken adapter as data source; ``name`` is then
``KRAKEN``). Failures of the data source (already ``bot.errors`` types: the adapter translated
them) propagate unchanged, like the real venue's.

Fills: market orders at the last price moved by ``slippage_bps`` against us; limit orders
at their limit price once the last price has crossed it, checked whenever orders, balance
or positions are asked for. The fee is ``fee_rate`` of the notional, in the quote currency,
or with ``fee_currency=FeeCurrency.RECEIVED`` in the currency the fill pays out (a buy of
0.1 LTC leaves 0.0999 LTC, as on Binance and OKX). Wallet arithmetic is exact
(``Decimal``). Cash is one USD pool: symbols quoted in any USD-like currency settle in it.

Like a venue, it refuses an order its market rules refuse (``bot.brokers.paper.rules``),
and a repeated client order id: for ever (the default) or, with
``DuplicateClientIds.OPEN_ONLY``, only while the earlier order is open (a re-sent filled
order is then a second order, as on Kraken and Binance). The wallet and the order book are
``PaperBook`` (``bot.brokers.paper.book``); this module adds the market data, the rules, the
injected faults and the broker interface.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Protocol, TypeVar, runtime_checkable

from bot.brokers.base import Broker
from bot.brokers.paper import rules
from bot.brokers.paper.book import PaperBook
from bot.brokers.paper.faults import FaultInjector
from bot.brokers.paper.wallet import FeeCurrency, dec
from bot.brokers.venues import DuplicateClientIds
from bot.clock import SYSTEM_CLOCK, Clock
from bot.errors import OrderRejected
from bot.model import (
    USD_LIKE,
    AssetClass,
    Balance,
    BrokerSpec,
    Candles,
    MarketRules,
    Order,
    OrderRequest,
    OrderType,
    Position,
    Ticker,
    VenueStatus,
)

T = TypeVar("T")


@runtime_checkable
class MarketData(Protocol):
    """Public market data: ``SyntheticMarket`` or any real ``Broker`` adapter."""

    def fetch_candles(self, symbol: str, timeframe: str = "5m", limit: int = 200) -> Candles: ...

    def fetch_ticker(self, symbol: str) -> Ticker: ...

    def symbols(self) -> list[str]: ...


class PaperBroker(Broker):
    """A simulated account; one per account, used by its own thread (reads are lock-safe)."""

    def __init__(
        self,
        spec: BrokerSpec,
        market: MarketData,
        *,
        starting_usd: float = 10_000.0,
        fee_rate: float = 0.001,
        slippage_bps: float = 5.0,
        asset_class: AssetClass = AssetClass.CRYPTO,
        clock: Clock = SYSTEM_CLOCK,
        sleep: Callable[[float], None] = time.sleep,
        fault_seed: int = 0,
        fee_currency: FeeCurrency = FeeCurrency.QUOTE,
        duplicate_client_ids: DuplicateClientIds = DuplicateClientIds.REFUSED_FOREVER,
    ) -> None:
        if starting_usd < 0 or fee_rate < 0 or slippage_bps < 0:
            raise ValueError("starting_usd, fee_rate and slippage_bps must not be negative")
        self.spec = spec
        self.account = spec.account
        self.name = spec.account.broker
        self.asset_class = asset_class
        self.faults = FaultInjector(
            clock=clock, sleep=sleep, timeout_seconds=spec.timeout_seconds, seed=fault_seed
        )
        self._market = market
        self._book = PaperBook(
            starting_usd=starting_usd,
            fee_rate=fee_rate,
            slippage_bps=slippage_bps,
            fee_currency=fee_currency,
            duplicate_client_ids=duplicate_client_ids,
            clock=clock,
        )
        self._call_lock = threading.Lock()
        self._rules: dict[str, MarketRules] = {}
        self._listed: list[str] | None = None

    def __repr__(self) -> str:
        return f"PaperBroker({self.account.key}, market={type(self._market).__name__})"

    # --- market data ---------------------------------------------------------------

    def symbols(self) -> list[str]:
        """Configured symbols the data source lists (all it lists when none are configured)."""
        return self._call("symbols", self._symbols)

    def fetch_candles(self, symbol: str, timeframe: str = "5m", limit: int = 200) -> Candles:
        """Candles from the data source."""
        return self._call("fetch_candles", self._market.fetch_candles, symbol, timeframe, limit)

    def fetch_ticker(self, symbol: str) -> Ticker:
        """Ticker from the data source."""
        return self._call("fetch_ticker", self._market.fetch_ticker, symbol)

    def market_rules(self, symbol: str) -> MarketRules:
        """The data source's venue rules for ``symbol`` (its adapter's), or the paper defaults
        (``bot.brokers.paper.rules``); asked of the source once per symbol."""
        return self._call("market_rules", self._market_rules, symbol)

    def fetch_status(self) -> VenueStatus:
        """The status check of the venue the market data comes from (none for a synthetic one)."""
        if isinstance(self._market, Broker):
            return self._market.fetch_status()
        return super().fetch_status()

    @property
    def has_status_check(self) -> bool:
        """True when the market data's venue has a status check."""
        return isinstance(self._market, Broker) and self._market.has_status_check

    def refresh_markets(self) -> None:
        """The next call that needs the listed symbols or rules asks the source again."""
        with self._call_lock:
            self._listed = None
            self._rules = {}
        refresh = getattr(self._market, "refresh_markets", None)
        if refresh is not None:
            refresh()

    # --- wallet --------------------------------------------------------------------

    def fetch_balance(self) -> Balance:
        """Cash per currency (USD and base holdings) and equity at last prices."""
        return self._call("fetch_balance", self._balance)

    def fetch_positions(self) -> list[Position]:
        """Holdings worth more than ``DUST_USD`` at the last price, with average entry."""
        return self._call("fetch_positions", self._positions)

    def restore(self, cash_usd: float, holdings: list[tuple[str, float, float]]) -> None:
        """Start from a saved wallet: cash, and ``(symbol, quantity, avg_price)`` holdings.

        Paper positions live in the state store; restoring them here lets paper trading
        carry on across a restart instead of reconciling every position away.
        """
        self._book.restore(cash_usd, holdings)

    # --- orders --------------------------------------------------------------------

    def place_order(self, request: OrderRequest) -> Order:
        """Fill a market order now; book a limit order (filled now if already crossed).

        The order's last look runs after the injected faults' delay, as a transport's would."""
        return self._call("place_order", self._place_after_last_look, request)

    def _place_after_last_look(self, request: OrderRequest) -> Order:
        if request.last_look is not None:
            request.last_look()
        return self._place(request)

    def fetch_order(self, client_order_id: str, symbol: str | None = None) -> Order | None:
        """The newest order with this client id, open or closed, or None."""
        return self._call("fetch_order", self._fetch_order, client_order_id)

    def fetch_open_orders(self, symbol: str | None = None) -> list[Order]:
        """Orders still open (after filling the limits that crossed), oldest first."""
        return self._call("fetch_open_orders", self._open_orders, symbol)

    def cancel_order(self, client_order_id: str, symbol: str | None = None) -> Order | None:
        """Cancel an open order and release its funds; a finished order is returned as is."""
        return self._call("cancel_order", self._cancel, client_order_id)

    def all_orders(self) -> list[Order]:
        """Every order placed, oldest first (a reused client id's earlier orders too)."""
        return self._book.all_orders()

    # --- internals -----------------------------------------------------------------

    def _call(self, operation: str, fn: Callable[..., T], *args: object) -> T:
        """One broker call: injected faults before, the work, injected faults after."""
        self.faults.before(operation)
        # One operation at a time: prices fetched for the book stay valid for the whole call.
        with self._call_lock:
            result = fn(*args)
        self.faults.after(operation)
        return result

    def _symbols(self) -> list[str]:
        listed = self._listed_symbols()
        wanted = self.spec.symbols or tuple(listed)
        return [s for s in wanted if s in listed]

    def _listed_symbols(self) -> list[str]:
        # A real adapter may load its markets over the network: ask once, keep the answer.
        if self._listed is None:
            self._listed = list(self._market.symbols())
        return self._listed

    def _last(self, symbol: str) -> Decimal:
        return dec(self._market.fetch_ticker(symbol).last)

    def _market_rules(self, symbol: str) -> MarketRules:
        if symbol not in self._rules:
            self._rules[symbol] = rules.rules_of(self._market, symbol)
        return self._rules[symbol]

    def _balance(self) -> Balance:
        return self._book.balance(self._prices_for_book())

    def _positions(self) -> list[Position]:
        return self._book.positions(self._prices_for_book())

    def _prices_for_book(self, *, holdings: bool = True) -> dict[str, Decimal]:
        """Last prices of the symbols with open orders (and held ones), outside the book's lock."""
        return {s: self._last(s) for s in self._book.symbols_to_price(holdings=holdings)}

    def _place(self, request: OrderRequest) -> Order:
        symbol = request.symbol
        if symbol not in self._listed_symbols():
            raise OrderRejected(f"unknown symbol {symbol}")
        if symbol.split("/")[-1] not in USD_LIKE:
            raise OrderRejected(f"paper trading settles in USD only, not {symbol}")
        last = self._last(symbol)
        refused = rules.refusal(self._market_rules(symbol), request, float(last))
        if refused:
            raise OrderRejected(f"{symbol}: {refused}")
        if request.type is OrderType.MARKET:
            return self._book.fill_market(request, last, self._market_rules(symbol).amount_step)
        return self._book.place_limit(request, last)

    def _fetch_order(self, client_order_id: str) -> Order | None:
        return self._book.order(client_order_id, self._prices_for_book(holdings=False))

    def _open_orders(self, symbol: str | None) -> list[Order]:
        return self._book.open_orders(symbol, self._prices_for_book(holdings=False))

    def _cancel(self, client_order_id: str) -> Order | None:
        return self._book.cancel(client_order_id, self._prices_for_book(holdings=False))
