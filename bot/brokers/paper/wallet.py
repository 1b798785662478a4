"""The paper broker's simulated wallet and book: exact (``Decimal``) arithmetic, no I/O.

A ``Holding`` is the quantity and cost of one symbol held; an ``Entry`` is an order on
the book with the funds it reserves while open. The helpers here are pure: the fill
price of a market order after slippage, the quantity a sell may take, and the decimal
a float was written as. ``PaperBook`` (``bot.brokers.paper.book``) owns the instances and
the lock that guards them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from bot.errors import InsufficientFunds
from bot.model import DUST_USD, Balance, Order, OrderRequest, OrderStatus, Position

CASH = "USD"
# A sell may ask for a hair more than is held: a float read back from an exact Decimal
# balance can round up. Within this relative margin the whole holding is sold.
SELL_ALL_TOLERANCE = Decimal("1e-9")


def dec(value: float) -> Decimal:
    """The decimal a float was written as: ``0.1`` → ``Decimal("0.1")``, not its binary value."""
    return Decimal(repr(float(value)))


class FeeCurrency(StrEnum):
    """The currency a fill's fee is charged in."""

    QUOTE = "quote"  # the quote currency on both sides (Coinbase; Kraken's default)
    RECEIVED = "received"  # the currency the fill pays out: the coin bought on a buy (Binance, OKX)


@dataclass
class Holding:
    """One symbol held: its quantity and what it cost."""

    quantity: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)  # quantity x average entry price (fees excluded)

    def buy(self, qty: Decimal, notional: Decimal) -> None:
        """Add a bought ``qty`` that cost ``notional`` USD (fees excluded)."""
        self.quantity += qty
        self.cost += notional

    def sell(self, qty: Decimal) -> None:
        """Remove a sold ``qty``."""
        # Selling keeps the average entry price of what remains.
        self.cost -= self.cost * qty / self.quantity
        self.quantity -= qty
        if self.quantity == 0:
            self.cost = Decimal(0)


@dataclass
class Entry:
    """An order on the book, with the funds it holds while open."""

    order: Order
    limit: Decimal | None = None
    amount: Decimal = Decimal(0)
    reserved_cash: Decimal = Decimal(0)
    reserved_base: Decimal = Decimal(0)
    serial: int = 0  # the account's n-th order (from 0)


def open_order(request: OrderRequest, qty: Decimal, venue_order_id: str, now: float) -> Order:
    """A new order for ``request`` of ``qty`` base units, open until it fills."""
    return Order(
        client_order_id=request.client_order_id,
        venue_order_id=venue_order_id,
        symbol=request.symbol,
        side=request.side,
        type=request.type,
        status=OrderStatus.OPEN,
        amount=float(qty),
        extra={"paper": "true", "created_at": f"{now:.3f}"},
    )


def is_open(entry: Entry) -> bool:
    """True while the order is still open on the book."""
    return entry.order.status is OrderStatus.OPEN


def fill_price(last: Decimal, slippage: Decimal, *, buy: bool) -> Decimal:
    """A market order's fill price: ``last`` moved by ``slippage`` against us."""
    return last * (1 + slippage) if buy else last * (1 - slippage)


def fill_fee(
    symbol: str, buy: bool, qty: Decimal, notional: Decimal, rate: Decimal, currency: FeeCurrency
) -> tuple[Decimal, str, Decimal]:
    """``(fee, its currency, its worth in USD)`` of a fill of ``qty`` for ``notional`` USD."""
    fee_usd = notional * rate
    base, _, quote = symbol.partition("/")
    if buy and currency is FeeCurrency.RECEIVED:
        return qty * rate, base, fee_usd  # taken from the coin bought
    return fee_usd, quote or CASH, fee_usd


def floor_to_step(qty: Decimal, step: float | None) -> Decimal:
    """``qty`` rounded down to a whole number of lot steps (a venue sizes a quote-sized buy so)."""
    if not step:
        return qty
    size = dec(step)
    return (qty // size) * size


def sell_quantity(symbol: str, qty: Decimal, free: Decimal) -> Decimal:
    """The quantity that can be sold: ``qty``, or the whole free holding if within rounding."""
    if qty > free and qty - free <= free * SELL_ALL_TOLERANCE:
        return free
    if qty > free:
        raise InsufficientFunds(f"insufficient funds: sell {qty} {symbol}, {free} available")
    return qty


def wallet_balance(
    cash: Decimal,
    reserved_cash: Decimal,
    holdings: dict[str, Holding],
    reserved_base: dict[str, Decimal],
    prices: dict[str, Decimal],
) -> Balance:
    """Cash per currency (USD and each base held), what open orders leave free of it, and
    equity at ``prices`` (the last price of every symbol held)."""
    amounts = {CASH: cash}
    free = {CASH: cash - reserved_cash}
    equity = cash
    for symbol, holding in holdings.items():
        if holding.quantity > 0:
            base = symbol.split("/")[0]
            held_back = reserved_base.get(symbol, Decimal(0))
            amounts[base] = amounts.get(base, Decimal(0)) + holding.quantity
            free[base] = free.get(base, Decimal(0)) + holding.quantity - held_back
            equity += holding.quantity * prices[symbol]
    return Balance(
        cash={k: float(v) for k, v in amounts.items()},
        usd_cash=float(cash),
        usd_equity=float(equity),
        free={k: float(v) for k, v in free.items()},
    )


def wallet_positions(holdings: dict[str, Holding], prices: dict[str, Decimal]) -> list[Position]:
    """Holdings worth more than ``DUST_USD`` at ``prices``, with their average entry price."""
    out = []
    for symbol, holding in holdings.items():
        if holding.quantity <= 0:
            continue
        value = holding.quantity * prices[symbol]
        if value > DUST_USD:
            avg = holding.cost / holding.quantity
            out.append(Position(symbol, float(holding.quantity), float(avg), float(value)))
    return out
