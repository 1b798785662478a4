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
order is then a second order, as on Kraken and Binance).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Protocol, TypeVar, runtime_checkable

from bot.brokers.base import Broker
from bot.brokers.paper import rules
from bot.brokers.paper.faults import FaultInjector
from bot.brokers.paper.wallet import (  # CASH is re-exported: bot.brokers.paper.broker.CASH
    Entry,
    FeeCurrency,
    Holding,
    dec,
    fill_fee,
    fill_price,
    floor_to_step,
    is_open,
    open_order,
    sell_quantity,
    wallet_balance,
    wallet_positions,
)
from bot.brokers.venues import DuplicateClientIds
from bot.clock import SYSTEM_CLOCK, Clock
from bot.errors import InsufficientFunds, OrderRejected
from bot.model import (
    USD_LIKE,
    AssetClass,
    Balance,
    BrokerSpec,
    Candles,
    MarketRules,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Side,
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
        self._clock = clock
        self._fee_rate = dec(fee_rate)
        self._fee_currency = FeeCurrency(fee_currency)
        self._duplicates = DuplicateClientIds(duplicate_client_ids)
        self._slippage = dec(slippage_bps) / 10_000
        self._call_lock = threading.Lock()
        self._lock = threading.RLock()  # guards the wallet and the book
        self._cash = dec(starting_usd)
        self._reserved_cash = Decimal(0)
        self._holdings: dict[str, Holding] = {}
        self._reserved_base: dict[str, Decimal] = {}
        self._orders: dict[str, Entry] = {}  # the newest order of each client id
        self._reused: list[Entry] = []  # older orders whose client id was used again
        self._rules: dict[str, MarketRules] = {}
        self._ids = itertools.count(1)
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
        with self._lock:
            self._cash = dec(cash_usd)
            self._holdings = {
                symbol: Holding(dec(qty), dec(qty) * dec(price))
                for symbol, qty, price in holdings
                if qty > 0
            }

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
        with self._lock:
            entries = sorted((*self._reused, *self._orders.values()), key=lambda e: e.serial)
            return [e.order for e in entries]

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
        prices = self._prices_for_book()
        with self._lock:
            self._match_limits(prices)
            return wallet_balance(
                self._cash, self._reserved_cash, self._holdings, self._reserved_base, prices
            )

    def _positions(self) -> list[Position]:
        prices = self._prices_for_book()
        with self._lock:
            self._match_limits(prices)
            return wallet_positions(self._holdings, prices)

    def _prices_for_book(self, *, holdings: bool = True) -> dict[str, Decimal]:
        """Last prices of the symbols with open orders (and held ones), outside the lock."""
        with self._lock:
            symbols = {e.order.symbol for e in self._orders.values() if is_open(e)}
            if holdings:
                symbols |= {s for s, h in self._holdings.items() if h.quantity > 0}
        return {s: self._last(s) for s in sorted(symbols)}

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
            return self._fill_market(request, last, self._market_rules(symbol).amount_step)
        entry = self._book_limit(request)
        self._match_limits({symbol: last})
        with self._lock:
            return entry.order  # the entry stays in the book; matching may have filled it

    def _fill_market(self, request: OrderRequest, last: Decimal, step: float | None) -> Order:
        buy = request.side is Side.BUY
        price = fill_price(last, self._slippage, buy=buy)
        if request.amount is not None:
            qty = dec(request.amount)
        else:
            assert request.quote_amount is not None  # OrderRequest: amount or quote_amount
            # At most the notional asked for, in whole lot steps (as a venue sizes it).
            qty = floor_to_step(dec(request.quote_amount) / price, step)
        notional = qty * price
        with self._lock:
            self._check_new_id(request.client_order_id)
            if buy:
                fee_in_cash = self._fee_currency is FeeCurrency.QUOTE
                self._check_cash(notional * (1 + self._fee_rate) if fee_in_cash else notional)
            else:
                sellable = self._check_base(request.symbol, qty)
                if sellable != qty:
                    qty, notional = sellable, sellable * price
            entry = self._book(request, Entry(order=self._new_order(request, qty), amount=qty))
            self._settle(entry, qty, notional)
            return entry.order

    def _book_limit(self, request: OrderRequest) -> Entry:
        assert request.limit_price is not None and request.amount is not None  # a limit order
        limit = dec(request.limit_price)
        qty = dec(request.amount)
        cash = base = Decimal(0)
        with self._lock:
            # An open order holds what it may spend, so two orders cannot spend it twice.
            self._check_new_id(request.client_order_id)
            if request.side is Side.BUY:
                cash = qty * limit * (1 + self._fee_rate)
                self._check_cash(cash)
                self._reserved_cash += cash
            else:
                qty = base = self._check_base(request.symbol, qty)
                held = self._reserved_base.get(request.symbol, Decimal(0))
                self._reserved_base[request.symbol] = held + qty
            order = self._new_order(request, qty)
            entry = Entry(order, limit=limit, amount=qty, reserved_cash=cash, reserved_base=base)
            return self._book(request, entry)

    def _check_new_id(self, client_order_id: str) -> None:
        """Refuse a client id already used (lock held), as the venue's rule says; under
        OPEN_ONLY a closed order's id is taken again by the new order."""
        earlier = self._orders.get(client_order_id)
        if earlier is None:
            return
        if self._duplicates is DuplicateClientIds.OPEN_ONLY and not is_open(earlier):
            self._reused.append(earlier)
            return
        raise OrderRejected(f"duplicate client order id {client_order_id}")

    def _check_cash(self, needed: Decimal) -> None:
        free = self._cash - self._reserved_cash
        if needed > free:
            raise InsufficientFunds(
                f"insufficient funds: needs {needed:.2f} USD, {free:.2f} available"
            )

    def _check_base(self, symbol: str, qty: Decimal) -> Decimal:
        """The quantity that can be sold: ``qty``, or the whole free holding if within rounding."""
        holding = self._holdings.get(symbol, Holding())
        free = holding.quantity - self._reserved_base.get(symbol, Decimal(0))
        return sell_quantity(symbol, qty, free)

    def _new_order(self, request: OrderRequest, qty: Decimal) -> Order:
        return open_order(request, qty, f"paper-{next(self._ids)}", self._clock.wall())

    def _book(self, request: OrderRequest, entry: Entry) -> Entry:
        """Keep ``entry`` as the newest order of its client id (lock held)."""
        entry.serial = len(self._orders) + len(self._reused)
        self._orders[request.client_order_id] = entry
        return entry

    def _settle(self, entry: Entry, qty: Decimal, notional: Decimal) -> None:
        """Move the money of a fill of ``qty`` for ``notional`` USD (lock held); mark it filled."""
        order = entry.order
        buy = order.side is Side.BUY
        fee, currency, fee_usd = fill_fee(
            order.symbol, buy, qty, notional, self._fee_rate, self._fee_currency
        )
        in_base = currency == order.symbol.partition("/")[0]
        holding = self._holdings.setdefault(order.symbol, Holding())
        if buy:
            self._cash -= notional if in_base else notional + fee
            holding.buy(qty - fee if in_base else qty, notional)
        else:
            self._cash += notional - fee
            holding.sell(qty)
        entry.order = replace(
            order,
            status=OrderStatus.FILLED,
            filled=float(qty),
            average_price=float(notional / qty),
            fee_usd=float(fee_usd),
            fee=float(fee),
            fee_currency=currency,
        )

    def _release(self, entry: Entry) -> None:
        """Give back the funds an open order held (lock held)."""
        self._reserved_cash -= entry.reserved_cash
        symbol = entry.order.symbol
        if entry.reserved_base:
            self._reserved_base[symbol] -= entry.reserved_base
        entry.reserved_cash = entry.reserved_base = Decimal(0)

    def _match_limits(self, prices: dict[str, Decimal]) -> None:
        """Fill, at their limit price, the open limit orders the last price has crossed."""
        with self._lock:
            for entry in self._orders.values():
                last = prices.get(entry.order.symbol)
                if not is_open(entry) or last is None or entry.limit is None:
                    continue
                buy = entry.order.side is Side.BUY
                if (buy and last <= entry.limit) or (not buy and last >= entry.limit):
                    self._release(entry)
                    self._settle(entry, entry.amount, entry.amount * entry.limit)

    def _fetch_order(self, client_order_id: str, *, match: bool = True) -> Order | None:
        if match:
            self._match_limits(self._prices_for_book(holdings=False))
        with self._lock:
            entry = self._orders.get(client_order_id)
            return entry.order if entry else None

    def _open_orders(self, symbol: str | None) -> list[Order]:
        self._match_limits(self._prices_for_book(holdings=False))
        with self._lock:
            return [
                e.order
                for e in self._orders.values()
                if is_open(e) and (symbol is None or e.order.symbol == symbol)
            ]

    def _cancel(self, client_order_id: str) -> Order | None:
        self._match_limits(self._prices_for_book(holdings=False))
        with self._lock:
            entry = self._orders.get(client_order_id)
            if entry is None:
                return None
            if is_open(entry):
                self._release(entry)
                entry.order = replace(entry.order, status=OrderStatus.CANCELED, reason="canceled")
            return entry.order
