"""ccxt's unified order structures as NIJA's plain ``Order`` (no SDK object leaves the adapter)."""

from __future__ import annotations

from bot.errors import BadResponse
from bot.model import USD_LIKE, Order, OrderStatus, OrderType, Side

_STATUS = {
    "open": OrderStatus.OPEN,
    "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "expired": OrderStatus.CANCELED,
    "rejected": OrderStatus.REJECTED,
}


def to_order(venue: str, raw: dict, client_order_id: str | None = None) -> Order:
    """A ccxt order structure as an ``Order``; ``client_order_id`` fills in when the venue omits it."""
    venue_id, side, symbol = raw.get("id"), raw.get("side"), raw.get("symbol")
    if not venue_id or side not in ("buy", "sell") or not symbol:
        raise BadResponse(f"{venue} order answer lacks id, side or symbol")
    raw_status = raw.get("status")
    status = _STATUS.get(raw_status) if raw_status is not None else OrderStatus.OPEN
    if status is None:
        raise BadResponse(f"{venue} order has an unknown status {raw_status!r}")
    raw_type = raw.get("type")
    extra = {"venue_type": str(raw_type)} if raw_type not in ("market", "limit") else {}
    if raw_type in ("market", "limit"):
        otype = OrderType(raw_type)
    else:
        otype = OrderType.LIMIT if raw.get("price") else OrderType.MARKET
    average = raw.get("average")
    return Order(
        client_order_id=raw.get("clientOrderId") or client_order_id or "",
        venue_order_id=str(venue_id),
        symbol=symbol,
        side=Side(side),
        type=otype,
        status=status,
        amount=float(raw["amount"]) if raw.get("amount") is not None else None,
        filled=float(raw.get("filled") or 0.0),
        average_price=float(average) if average else None,
        fee_usd=_fee_usd(raw, symbol, average),
        reason=_reason(raw),
        extra=extra,
    )


def _fee_usd(raw: dict, symbol: str, average: float | None) -> float:
    fee = raw.get("fee") or {}
    cost, currency = fee.get("cost"), fee.get("currency")
    if not cost:
        return 0.0
    base, _, quote = symbol.partition("/")
    if currency in USD_LIKE or (currency is None and quote in USD_LIKE):
        return float(cost)
    if currency == base and quote in USD_LIKE and average:
        return float(cost) * float(average)
    return 0.0  # a fee in a third currency is not valued here


def _reason(raw: dict) -> str | None:
    info = raw.get("info")
    if not isinstance(info, dict):
        return None
    for key in ("reason", "sMsg", "msg"):
        value = info.get(key)
        if isinstance(value, str) and value:
            return value
    return None
