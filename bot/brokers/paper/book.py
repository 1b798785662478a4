"""The paper account's wallet and order book: cash, holdings, orders and what they hold.

``PaperBook`` keeps one simulated account's money and orders and moves them on a fill:
market orders at the price given moved by the slippage against us, limit orders at their
limit price once a last price given has crossed them. It fetches nothing: ``PaperBroker``
(``bot.brokers.paper.broker``) asks its market data for the prices and passes them in.
Wallet arithmetic is exact (``Decimal``, ``bot.brokers.paper.wallet``); one lock guards it all.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import replace
from decimal import Decimal

from bot.brokers.paper.wallet import (
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
from bot.clock import Clock
from bot.errors import InsufficientFunds, OrderRejected
from bot.model import Balance, Order, OrderRequest, OrderStatus, Position, Side

__all__ = ["PaperBook"]


class PaperBook:
    """One paper account's cash, holdings and orders; every method is lock-safe.

    A client order id already used is refused for ever, or with
    ``DuplicateClientIds.OPEN_ONLY`` only while the earlier order is open.
    """

    def __init__(
        self,
        *,
        starting_usd: float,
        fee_rate: float,
        slippage_bps: float,
        fee_currency: FeeCurrency,
        duplicate_client_ids: DuplicateClientIds,
        clock: Clock,
    ) -> None:
        self._clock = clock
        self._fee_rate = dec(fee_rate)
        self._fee_currency = FeeCurrency(fee_currency)
        self._duplicates = DuplicateClientIds(duplicate_client_ids)
        self._slippage = dec(slippage_bps) / 10_000
        self._lock = threading.RLock()  # guards the wallet and the book
        self._cash = dec(starting_usd)
        self._reserved_cash = Decimal(0)
        self._holdings: dict[str, Holding] = {}
        self._reserved_base: dict[str, Decimal] = {}
        self._orders: dict[str, Entry] = {}  # the newest order of each client id
        self._reused: list[Entry] = []  # older orders whose client id was used again
        self._ids = itertools.count(1)

    def restore(self, cash_usd: float, holdings: list[tuple[str, float, float]]) -> None:
        """Start from a saved wallet: cash, and ``(symbol, quantity, avg_price)`` holdings."""
        with self._lock:
            self._cash = dec(cash_usd)
            self._holdings = {
                symbol: Holding(dec(qty), dec(qty) * dec(price))
                for symbol, qty, price in holdings
                if qty > 0
            }

    def all_orders(self) -> list[Order]:
        """Every order placed, oldest first (a reused client id's earlier orders too)."""
        with self._lock:
            entries = sorted((*self._reused, *self._orders.values()), key=lambda e: e.serial)
            return [e.order for e in entries]

    def symbols_to_price(self, *, holdings: bool = True) -> list[str]:
        """The symbols with open orders (and, with ``holdings``, the ones held), sorted."""
        with self._lock:
            symbols = {e.order.symbol for e in self._orders.values() if is_open(e)}
            if holdings:
                symbols |= {s for s, h in self._holdings.items() if h.quantity > 0}
        return sorted(symbols)

    def balance(self, prices: dict[str, Decimal]) -> Balance:
        """Cash per currency and equity at ``prices``, after filling the crossed limits."""
        with self._lock:
            self.match_limits(prices)
            return wallet_balance(
                self._cash, self._reserved_cash, self._holdings, self._reserved_base, prices
            )

    def positions(self, prices: dict[str, Decimal]) -> list[Position]:
        """Holdings above dust at ``prices``, after filling the crossed limits."""
        with self._lock:
            self.match_limits(prices)
            return wallet_positions(self._holdings, prices)

    def fill_market(self, request: OrderRequest, last: Decimal, step: float | None) -> Order:
        """Fill a market order now at ``last`` moved by the slippage; ``step`` sizes a
        quote-sized one in whole lots."""
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

    def place_limit(self, request: OrderRequest, last: Decimal) -> Order:
        """Book a limit order, filled now if ``last`` has already crossed it."""
        entry = self._book_limit(request)
        self.match_limits({request.symbol: last})
        with self._lock:
            return entry.order  # the entry stays in the book; matching may have filled it

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

    def match_limits(self, prices: dict[str, Decimal]) -> None:
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

    def order(self, client_order_id: str, prices: dict[str, Decimal]) -> Order | None:
        """The newest order with this client id, after filling the crossed limits, or None."""
        self.match_limits(prices)
        with self._lock:
            entry = self._orders.get(client_order_id)
            return entry.order if entry else None

    def open_orders(self, symbol: str | None, prices: dict[str, Decimal]) -> list[Order]:
        """The orders still open after filling the crossed limits (of ``symbol`` if given)."""
        self.match_limits(prices)
        with self._lock:
            return [
                e.order
                for e in self._orders.values()
                if is_open(e) and (symbol is None or e.order.symbol == symbol)
            ]

    def cancel(self, client_order_id: str, prices: dict[str, Decimal]) -> Order | None:
        """Cancel an open order and release its funds; a finished order is returned as is."""
        self.match_limits(prices)
        with self._lock:
            entry = self._orders.get(client_order_id)
            if entry is None:
                return None
            if is_open(entry):
                self._release(entry)
                entry.order = replace(entry.order, status=OrderStatus.CANCELED, reason="canceled")
            return entry.order
