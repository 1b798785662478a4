"""The paper broker's simulated wallet and book: exact (``Decimal``) arithmetic, no I/O.

A ``Holding`` is the quantity and cost of one symbol held; an ``Entry`` is an order on
the book with the funds it reserves while open. The helpers here are pure: the fill
price of a market order after slippage, the quantity a sell may take, and the decimal
a float was written as. ``PaperBroker`` (``bot.brokers.paper.broker``) owns the instances and
the lock that guards them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from bot.errors import InsufficientFunds
from bot.model import Order, OrderStatus

CASH = "USD"
# A sell may ask for a hair more than is held: a float read back from an exact Decimal
# balance can round up. Within this relative margin the whole holding is sold.
SELL_ALL_TOLERANCE = Decimal("1e-9")


def dec(value: float) -> Decimal:
    """The decimal a float was written as: ``0.1`` → ``Decimal("0.1")``, not its binary value."""
    return Decimal(repr(float(value)))


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


def is_open(entry: Entry) -> bool:
    """True while the order is still open on the book."""
    return entry.order.status is OrderStatus.OPEN


def fill_price(last: Decimal, slippage: Decimal, *, buy: bool) -> Decimal:
    """A market order's fill price: ``last`` moved by ``slippage`` against us."""
    return last * (1 + slippage) if buy else last * (1 - slippage)


def sell_quantity(symbol: str, qty: Decimal, free: Decimal) -> Decimal:
    """The quantity that can be sold: ``qty``, or the whole free holding if within rounding."""
    if qty > free and qty - free <= free * SELL_ALL_TOLERANCE:
        return free
    if qty > free:
        raise InsufficientFunds(f"insufficient funds: sell {qty} {symbol}, {free} available")
    return qty
