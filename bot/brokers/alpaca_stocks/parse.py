"""Alpaca answers (alpaca-py response objects) → NIJA's dataclasses.

Used only by ``bot.brokers.alpaca_stocks.broker``: SDK objects never leave these two modules. A
missing or garbled number becomes ``BadResponse``, never a guessed default.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from bot.errors import BadResponse
from bot.model import Order, OrderStatus, OrderType, Side

_STATUS = {
    "filled": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "expired": OrderStatus.CANCELED,
    "replaced": OrderStatus.CANCELED,  # superseded by another order
    "rejected": OrderStatus.REJECTED,
}  # every other Alpaca status (new, accepted, pending_*, held, ...) is still live: OPEN


def to_float(value: Any, what: str) -> float:
    """A number from a response field; a missing or garbled one is a ``BadResponse``."""
    if value is None or value == "":
        raise BadResponse(f"Alpaca response lacks {what}")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise BadResponse(f"Alpaca response has an unreadable {what}") from exc
    if not math.isfinite(number):
        raise BadResponse(f"Alpaca response has a non-finite {what}")
    return number


def to_ms(moment: datetime) -> int:
    """A response timestamp as epoch milliseconds (a naive one is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def order(o: Any) -> Order:
    """An alpaca-py ``Order`` as NIJA's plain ``Order``."""
    status_name = getattr(o.status, "value", str(o.status))
    kind = getattr(o.type or o.order_type, "value", "market")
    extra = {"alpaca_status": status_name, "alpaca_type": kind}
    if o.notional is not None:
        extra["notional"] = str(o.notional)
    status = _STATUS.get(status_name, OrderStatus.OPEN)
    filled = float(o.filled_qty) if o.filled_qty not in (None, "") else 0.0
    price = o.filled_avg_price
    return Order(
        client_order_id=o.client_order_id,
        venue_order_id=str(o.id),
        symbol=o.symbol or "",
        side=Side.SELL if getattr(o.side, "value", o.side) == "sell" else Side.BUY,
        type=OrderType.LIMIT if kind in ("limit", "stop_limit") else OrderType.MARKET,
        status=status,
        amount=float(o.qty) if o.qty not in (None, "") else None,
        filled=filled,
        average_price=float(price) if price not in (None, "") and filled > 0 else None,
        # Stock trades are commission-free: the order reports no fee. Regulatory fees on
        # sells (SEC, FINRA TAF, CAT) are booked once a day as account activities.
        fee_usd=0.0,
        fee=0.0,
        fee_currency="USD",
        reason=status_name if status in (OrderStatus.CANCELED, OrderStatus.REJECTED) else None,
        extra=extra,
    )
