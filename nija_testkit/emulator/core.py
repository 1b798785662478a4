"""Venue-neutral state of the loopback exchange emulator: market prices, candles, accounts.

Symbols here are canonical ``BASE/QUOTE`` (``BTC/USD``, ``SPY/USD``); each venue module
translates its own spelling. Everything is guarded by one lock per object and is
deterministic for a given seed, so tests can predict prices.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

DEFAULT_PRICES = {
    "BTC/USD": 60000.0,
    "ETH/USD": 3000.0,
    "SOL/USD": 150.0,
    "BTC/USDT": 60000.0,
    "ETH/USDT": 3000.0,
    "SOL/USDT": 150.0,
    "SPY/USD": 500.0,
    "AAPL/USD": 200.0,
    "MSFT/USD": 400.0,
}


class ClientIdScope(StrEnum):
    """Which earlier orders a new order's client id must differ from."""

    ALL = "all"  # every order the account ever placed (the emulator's old rule)
    OPEN = "open"  # open orders only: Kraken, Binance, OKX (a filled id may be sent again)


def off_step(value: float, step: float | str | None) -> bool:
    """True when ``value`` is not a whole multiple of ``step`` (a lot or tick size).

    Decimal arithmetic on the printed values: 0.3 is a multiple of 0.1 here, as on a venue.
    """
    if not step or float(step) <= 0:
        return False
    return Decimal(repr(float(value))) % Decimal(str(step)) != 0


class Rejected(Exception):
    """The emulated venue refuses an order; ``code`` is venue-neutral (insufficient_funds, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Market:
    """Last prices and synthetic, deterministic candles per canonical symbol."""

    def __init__(self, prices: dict[str, float] | None = None, spread_bps: float = 2.0) -> None:
        self._lock = threading.Lock()
        self._prices = dict(prices or DEFAULT_PRICES)
        self._candles: dict[str, list[list[float]]] = {}
        self.spread_bps = spread_bps

    def symbols(self) -> list[str]:
        with self._lock:
            return list(self._prices)

    def price(self, symbol: str) -> float:
        with self._lock:
            return self._prices[symbol]

    def has(self, symbol: str) -> bool:
        with self._lock:
            return symbol in self._prices

    def set_price(self, symbol: str, price: float) -> None:
        with self._lock:
            self._prices[symbol] = float(price)

    def bid_ask(self, symbol: str) -> tuple[float, float]:
        last = self.price(symbol)
        half = last * self.spread_bps / 20000.0
        return last - half, last + half

    def set_candles(self, symbol: str, rows: list[list[float]]) -> None:
        """Serve exactly these ``[ts_ms, o, h, l, c, v]`` rows (oldest first); last close becomes the price."""
        with self._lock:
            self._candles[symbol] = [list(map(float, r)) for r in rows]
            if rows:
                self._prices[symbol] = float(rows[-1][4])

    def candles(
        self, symbol: str, tf_seconds: int, limit: int, end_ms: int | None = None
    ) -> list[list[float]]:
        """Up to ``limit`` candles, oldest first, ending with the bucket that holds ``end_ms``."""
        with self._lock:
            fixed = self._candles.get(symbol)
            last = self._prices[symbol]
        if fixed is not None:
            return [list(r) for r in fixed[-limit:]]
        step = tf_seconds * 1000
        end = int(end_ms if end_ms is not None else time.time() * 1000) // step * step
        rows = []
        seed = sum(map(ord, symbol))
        for i in range(limit - 1, -1, -1):
            ts = end - i * step
            k = ts // step
            # A smooth wave plus a deterministic wiggle, anchored so the newest close is ``last``.
            drift = 0.01 * math.sin((k + seed) / 7.0) + 0.004 * math.sin((k * 31 + seed) % 97)
            close = last * (1.0 + drift - (0.01 * math.sin((end // step + seed) / 7.0)))
            open_ = close * (1.0 - 0.001 * math.cos(k + seed))
            high = max(open_, close) * 1.0015
            low = min(open_, close) * 0.9985
            rows.append([float(ts), open_, high, low, close, 10.0 + (k * 7 + seed) % 13])
        rows[-1][4] = last
        rows[-1][2] = max(rows[-1][2], last)
        rows[-1][3] = min(rows[-1][3], last)
        return rows


@dataclass
class EmuOrder:
    """One order on an emulated account, in canonical terms."""

    order_id: str
    client_order_id: str
    symbol: str
    side: str  # buy | sell
    type: str  # market | limit
    amount: float  # base units requested (for quote-sized market orders: filled amount)
    limit_price: float | None
    status: str = "open"  # open | filled | canceled | rejected
    filled: float = 0.0
    average_price: float | None = None
    fee: float = 0.0  # in ``fee_currency``
    fee_currency: str = ""  # set on fill (the quote currency until then)
    created_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    quote_amount: float | None = None

    @property
    def base(self) -> str:
        return self.symbol.split("/")[0]

    @property
    def quote(self) -> str:
        return self.symbol.split("/")[1]


# How a venue charges a fill's fee: (ledger, order, fill price, fee valued in quote) →
# (currency charged, amount in that currency). Called with the ledger's lock held, so a
# policy reads ``ledger.balances`` directly.
FeePolicy = Callable[["Ledger", EmuOrder, float, float], tuple[str, float]]


def fee_in_quote(
    ledger: Ledger, order: EmuOrder, price: float, fee_quote: float
) -> tuple[str, float]:
    """The fee in the quote currency on both sides (Kraken's default, ``fciq``)."""
    return order.quote, fee_quote


def fee_in_base(
    ledger: Ledger, order: EmuOrder, price: float, fee_quote: float
) -> tuple[str, float]:
    """The fee in the base currency on both sides (Kraken's ``fcib`` flag)."""
    return order.base, fee_quote / price


def fee_in_received(
    ledger: Ledger, order: EmuOrder, price: float, fee_quote: float
) -> tuple[str, float]:
    """The fee in the currency the fill pays out: base on a buy, quote on a sell (Binance, OKX)."""
    if order.side == "buy":
        return order.base, fee_quote / price
    return order.quote, fee_quote


class Ledger:
    """One emulated account: balances per currency and its orders. Fills move the balances."""

    _ids = itertools.count(1)

    def __init__(self, market: Market, balances: dict[str, float], fee_rate: float = 0.001) -> None:
        self._lock = threading.Lock()
        self.market = market
        self.balances: dict[str, float] = {k: float(v) for k, v in balances.items()}
        self.orders: dict[str, EmuOrder] = {}  # by venue order id
        self.fee_rate = fee_rate
        # Venue modules set these to the venue's documented rules.
        self.fee_policy: FeePolicy = fee_in_quote
        self.client_id_scope = ClientIdScope.ALL
        self._policies: dict[str, FeePolicy] = {}  # per order, when placed with its own

    def balance(self, currency: str) -> float:
        with self._lock:
            return self.balances.get(currency, 0.0)

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return dict(self.balances)

    def find(self, *, order_id: str | None = None, client_order_id: str | None = None):
        """The order with this venue id, or the newest one with this client id, or None."""
        with self._lock:
            if order_id is not None:
                return self.orders.get(order_id)
            for o in reversed(self.orders.values()):
                if o.client_order_id == client_order_id:
                    return o
            return None

    def open_orders(self, symbol: str | None = None) -> list[EmuOrder]:
        self.match_limits()
        with self._lock:
            return [
                o
                for o in self.orders.values()
                if o.status == "open" and (symbol is None or o.symbol == symbol)
            ]

    def all_orders(self) -> list[EmuOrder]:
        with self._lock:
            return list(self.orders.values())

    def place(
        self,
        symbol: str,
        side: str,
        type_: str,
        *,
        amount: float | None = None,
        quote_amount: float | None = None,
        limit_price: float | None = None,
        client_order_id: str | None = None,
        fee_policy: FeePolicy | None = None,
    ) -> EmuOrder:
        """Accept (and for market orders fill) an order, or raise ``Rejected``.

        ``fee_policy`` overrides the ledger's for this order (Kraken's ``fcib`` flag).
        """
        if not self.market.has(symbol):
            raise Rejected("unknown_symbol", f"unknown symbol {symbol}")
        client_order_id = client_order_id or uuid.uuid4().hex
        bid, ask = self.market.bid_ask(symbol)
        policy = fee_policy or self.fee_policy
        with self._lock:
            if any(
                o.client_order_id == client_order_id
                and (self.client_id_scope is ClientIdScope.ALL or o.status == "open")
                for o in self.orders.values()
            ):
                raise Rejected(
                    "duplicate_client_id", f"duplicate client order id {client_order_id}"
                )
            px = ask if side == "buy" else bid
            if amount is None:
                if quote_amount is None or quote_amount <= 0:
                    raise Rejected("invalid_amount", "order size missing")
                amount = quote_amount / px
            if amount <= 0:
                raise Rejected("invalid_amount", "order size must be positive")
            order = EmuOrder(
                order_id=str(next(self._ids)),
                client_order_id=client_order_id,
                symbol=symbol,
                side=side,
                type=type_,
                amount=float(amount),
                limit_price=limit_price,
                quote_amount=quote_amount,
            )
            base, quote = order.base, order.quote
            need_px = limit_price if type_ == "limit" else px
            cost = amount * need_px
            fee_ccy, fee = policy(self, order, need_px, cost * self.fee_rate)
            spend = base if side == "sell" else quote
            need = amount if side == "sell" else cost
            if fee_ccy == spend:
                need += fee
            if self.balances.get(spend, 0.0) + 1e-9 < need:
                raise Rejected("insufficient_funds", f"insufficient {spend} balance")
            order.fee_currency = quote
            self._policies[order.order_id] = policy
            self.orders[order.order_id] = order
            if type_ == "market" or (
                type_ == "limit"
                and (
                    (side == "buy" and ask <= limit_price)
                    or (side == "sell" and bid >= limit_price)
                )
            ):
                self._fill(order, px if type_ == "market" else limit_price)
            return order

    def cancel(self, order: EmuOrder) -> EmuOrder:
        with self._lock:
            if order.status == "open":
                order.status = "canceled"
            return order

    def match_limits(self) -> None:
        """Fill open limit orders whose price the market has crossed."""
        with self._lock:
            for o in self.orders.values():
                if o.status != "open" or o.type != "limit":
                    continue
                bid, ask = self.market.bid_ask(o.symbol)
                if (o.side == "buy" and ask <= o.limit_price) or (
                    o.side == "sell" and bid >= o.limit_price
                ):
                    self._fill(o, o.limit_price)

    def _fill(self, order: EmuOrder, price: float) -> None:
        cost = order.amount * price
        policy = self._policies.get(order.order_id, self.fee_policy)
        fee_ccy, fee = policy(self, order, price, cost * self.fee_rate)
        base, quote = order.base, order.quote
        moves = (
            {quote: -cost, base: order.amount}
            if order.side == "buy"
            else {base: -order.amount, quote: cost}
        )
        moves[fee_ccy] = moves.get(fee_ccy, 0.0) - fee
        for ccy, delta in moves.items():
            self.balances[ccy] = self.balances.get(ccy, 0.0) + delta
        order.filled = order.amount
        order.average_price = price
        order.fee = fee
        order.fee_currency = fee_ccy
        order.status = "filled"
