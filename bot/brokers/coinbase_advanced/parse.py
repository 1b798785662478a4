"""Coinbase Advanced Trade answers (plain dicts: the SDK's ``to_dict()``, or the venue's JSON
as sent for the order endpoints) → NIJA's dataclasses.

Every missing or malformed field becomes ``BadResponse``: an answer we cannot
read is never guessed into a default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

from bot.errors import BadResponse, InsufficientFunds, OrderRejected
from bot.model import (
    USD_LIKE,
    MarketRules,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    Ticker,
)

# Coinbase's candle granularities by NIJA timeframe.
GRANULARITY = {
    "1m": "ONE_MINUTE",
    "5m": "FIVE_MINUTE",
    "15m": "FIFTEEN_MINUTE",
    "30m": "THIRTY_MINUTE",
    "1h": "ONE_HOUR",
    "2h": "TWO_HOUR",
    "4h": "FOUR_HOUR",
    "6h": "SIX_HOUR",
    "1d": "ONE_DAY",
}

_STATUS = {
    "PENDING": OrderStatus.OPEN,
    "OPEN": OrderStatus.OPEN,
    "QUEUED": OrderStatus.OPEN,
    "CANCEL_QUEUED": OrderStatus.OPEN,
    "EDIT_QUEUED": OrderStatus.OPEN,
    "FILLED": OrderStatus.FILLED,
    "CANCELLED": OrderStatus.CANCELED,
    "EXPIRED": OrderStatus.CANCELED,
    "FAILED": OrderStatus.REJECTED,
}

# Both spellings occur in Coinbase's failure-reason enums.
_INSUFFICIENT = frozenset(
    {
        "INSUFFICIENT_FUND",
        "INSUFFICIENT_FUNDS",
        "PREVIEW_INSUFFICIENT_FUND",
        "PREVIEW_INSUFFICIENT_FUNDS",
    }
)


def product_id(symbol: str) -> str:
    """``BTC/USD`` → ``BTC-USD``."""
    base, sep, quote = symbol.partition("/")
    if not (base and sep and quote):
        raise ValueError(f"symbol {symbol!r} is not BASE/QUOTE")
    return f"{base.upper()}-{quote.upper()}"


def symbol_of(product: str) -> str:
    """``BTC-USD`` → ``BTC/USD``."""
    base, sep, quote = product.partition("-")
    if not (base and sep and quote):
        raise BadResponse(f"Coinbase product id {product!r} is not BASE-QUOTE")
    return f"{base}/{quote}"


def required(data: Any, key: str, what: str) -> Any:
    """``data[key]``, or BadResponse naming what was being read."""
    if not isinstance(data, dict) or key not in data or data[key] is None:
        raise BadResponse(f"Coinbase {what}: field {key!r} missing")
    return data[key]


def number(data: Any, key: str, what: str, default: float | None = None) -> float:
    """A numeric field (Coinbase sends numbers as strings); ``default`` when absent or empty."""
    if default is not None and (not isinstance(data, dict) or data.get(key) in (None, "")):
        return default
    raw = required(data, key, what)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise BadResponse(f"Coinbase {what}: field {key!r} is not a number") from None
    if not math.isfinite(value):
        raise BadResponse(f"Coinbase {what}: field {key!r} is not finite")
    return value


def listing(data: Any, key: str, what: str) -> list[dict[str, Any]]:
    """A list of objects under ``key``."""
    items = required(data, key, what)
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise BadResponse(f"Coinbase {what}: field {key!r} is not a list of objects")
    return items


def next_cursor(data: dict[str, Any], what: str) -> str | None:
    """The cursor of the next page, or None on the last page."""
    if not data.get("has_next"):
        return None
    cursor = data.get("cursor")
    if not cursor:
        raise BadResponse(f"Coinbase {what}: has_next without a cursor")
    return str(cursor)


def account_rows(data: Any) -> list[tuple[str, float, float]]:
    """``(currency, available, hold)`` per Coinbase account on one page of List Accounts."""
    rows = []
    for acc in listing(data, "accounts", "accounts"):
        available = required(acc, "available_balance", "accounts")
        currency = str(required(available, "currency", "accounts")).upper()
        hold = acc.get("hold") or {}
        rows.append(
            (
                currency,
                number(available, "value", "accounts"),
                number(hold, "value", "accounts", default=0.0),
            )
        )
    return rows


def candle_rows(data: Any) -> list[list[float]]:
    """``[ts_ms, o, h, l, c, v]`` rows (any order; ``Candles.from_rows`` sorts them)."""
    rows = []
    for c in listing(data, "candles", "candles"):
        start = number(c, "start", "candles")
        rows.append(
            [
                start * 1000.0,
                number(c, "open", "candles"),
                number(c, "high", "candles"),
                number(c, "low", "candles"),
                number(c, "close", "candles"),
                number(c, "volume", "candles"),
            ]
        )
    return rows


def ticker(symbol: str, data: Any) -> Ticker:
    """Market Trades (``products/{id}/ticker``) → Ticker; last = newest trade, else mid."""
    bid = number(data, "best_bid", "ticker")
    ask = number(data, "best_ask", "ticker")
    if not (bid > 0 and ask > 0):
        raise BadResponse(f"Coinbase ticker {symbol}: no bid/ask")
    trades = data.get("trades") or []
    last = number(trades[0], "price", "ticker") if trades else (bid + ask) / 2.0
    return Ticker(symbol=symbol, bid=bid, ask=ask, last=last)


@dataclass(frozen=True, slots=True)
class Product:
    """A product's steps and minimums from List Products; Coinbase refuses orders that
    do not respect them (``None``: the product publishes no such value)."""

    base_step: Decimal | None = None  # base_increment
    quote_step: Decimal | None = None  # quote_increment
    price_step: Decimal | None = None  # price_increment, else quote_increment
    base_min: Decimal | None = None  # base_min_size
    quote_min: Decimal | None = None  # quote_min_size (or min_market_funds, the larger)

    def rules(self, symbol: str) -> MarketRules:
        """These rules in the project's terms; the notional minimum is in the quote currency."""
        base, quote = symbol.split("/")
        return MarketRules(
            symbol=symbol,
            base=base,
            quote=quote,
            amount_step=_float(self.base_step),
            min_amount=_float(self.base_min),
            min_notional=_float(self.quote_min),
            price_step=_float(self.price_step),
        )


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _positive(raw: Any) -> Decimal | None:
    """A positive decimal field (Coinbase sends decimals as strings), else None."""
    try:
        value = Decimal(str(raw))
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() and value > 0 else None


def products(data: Any) -> dict[str, Product]:
    """Tradable products of List Products, by product id."""
    found = {}
    for p in listing(data, "products", "products"):
        if p.get("is_disabled") or p.get("trading_disabled"):
            continue
        quote_step = _positive(p.get("quote_increment"))
        # Legacy Exchange products publish min_market_funds; Advanced Trade, quote_min_size.
        minimums = [
            m for m in map(_positive, (p.get("quote_min_size"), p.get("min_market_funds"))) if m
        ]
        found[str(required(p, "product_id", "products"))] = Product(
            base_step=_positive(p.get("base_increment")),
            quote_step=quote_step,
            price_step=_positive(p.get("price_increment")) or quote_step,
            base_min=_positive(p.get("base_min_size")),
            quote_min=max(minimums) if minimums else None,
        )
    return found


def on_step(value: float, step: Decimal | None, rounding: str = ROUND_DOWN) -> str:
    """``value`` on the venue's step (down by default: never more than asked), as a plain string."""
    if not math.isfinite(value) or value <= 0:
        raise ValueError("order sizes and prices must be positive and finite")
    exact = Decimal(repr(float(value)))
    if step is None:
        return format(exact, "f")
    snapped = (exact / step).to_integral_value(rounding=rounding) * step
    if snapped <= 0:
        raise OrderRejected(f"{value} is below the product's minimum step {step}")
    return format(snapped.normalize(), "f")


def order(data: Any) -> Order:
    """One Coinbase order object → Order."""
    what = "order"
    status_name = str(required(data, "status", what))
    if status_name not in _STATUS:
        raise BadResponse(f"Coinbase order status {status_name!r} is not understood")
    side = str(required(data, "side", what)).lower()
    if side not in ("buy", "sell"):
        raise BadResponse(f"Coinbase order side {side!r} is not understood")
    symbol = symbol_of(str(required(data, "product_id", what)))
    filled = number(data, "filled_size", what, default=0.0)
    avg = number(data, "average_filled_price", what, default=0.0)
    # Coinbase charges spot fees in the quote currency, buy or sell: total_fees is in it.
    quote = symbol.split("/")[1]
    fee = number(data, "total_fees", what, default=0.0)
    order_type = str(data.get("order_type") or "").upper()
    reason = next(
        (
            str(data[k])
            for k in ("reject_message", "cancel_message", "reject_reason")
            if data.get(k) and data.get(k) != "REJECT_REASON_UNSPECIFIED"
        ),
        None,
    )
    return Order(
        client_order_id=str(data.get("client_order_id") or ""),
        venue_order_id=str(required(data, "order_id", what)),
        symbol=symbol,
        side=Side(side),
        # Stop-limit and bracket orders carry limit prices; NIJA places only market and limit.
        type=OrderType.MARKET if order_type == "MARKET" else OrderType.LIMIT,
        status=_STATUS[status_name],
        amount=_base_size(data.get("order_configuration")),
        filled=filled,
        average_price=avg if filled > 0 and avg > 0 else None,
        fee_usd=fee if quote in USD_LIKE else 0.0,
        reason=reason,
        extra={"coinbase_status": status_name, "order_type": order_type},
        fee=fee,
        fee_currency=quote,
    )


def _base_size(config: Any) -> float | None:
    """The requested base size, when the order was sized in base units."""
    if not isinstance(config, dict):
        return None
    for inner in config.values():
        if isinstance(inner, dict) and inner.get("base_size") not in (None, ""):
            return number(inner, "base_size", "order configuration")
    return None


def created_order_id(data: Any) -> str | None:
    """The venue id of the order a Create Order answer accepted; None when it was accepted
    (``success: true``) without a readable id: look it up by client id then.

    The id is ``success_response.order_id``: the top-level ``order_id`` was dropped on
    2024-09-03 and before that did not always match. ``success: false`` raises
    OrderRejected (InsufficientFunds); an answer that says neither is BadResponse.
    """
    if not isinstance(data, dict):
        raise BadResponse("Coinbase create order: answer is not an object")
    success = data.get("success")
    if success is False:
        raise _refusal(data)
    if success is not True:
        raise BadResponse("Coinbase create order: answer says neither success nor failure")
    ok = data.get("success_response")
    venue_id = ok.get("order_id") if isinstance(ok, dict) else None
    return str(venue_id) if venue_id else None


def _refusal(data: dict[str, Any]) -> OrderRejected:
    """The refusal a ``success: false`` answer states, naming its most specific reason."""
    err = data.get("error_response")
    err = err if isinstance(err, dict) else {}
    reasons = [
        str(r)
        for r in (
            err.get("error"),
            err.get("new_order_failure_reason"),
            err.get("preview_failure_reason"),
            data.get("failure_reason"),
        )
        if r
    ]
    # UNKNOWN_FAILURE_REASON says nothing: a too-small size is named only in the preview reason.
    code = next((r for r in reasons if not r.startswith("UNKNOWN_")), None)
    code = code or (reasons[0] if reasons else "UNKNOWN_FAILURE_REASON")
    message = str(err.get("message") or err.get("error_details") or "")
    reason = f"{code}: {message}" if message else code
    return InsufficientFunds(reason) if set(reasons) & _INSUFFICIENT else OrderRejected(reason)


def acknowledged(request: OrderRequest, venue_order_id: str) -> Order:
    """The order Coinbase accepted, known only from its acknowledgement: open, nothing filled
    as far as we know; a later look-up by client id tells the rest."""
    return Order(
        client_order_id=request.client_order_id,
        venue_order_id=venue_order_id,
        symbol=symbol_of(product_id(request.symbol)),
        side=request.side,
        type=request.type,
        status=OrderStatus.OPEN,
        amount=request.amount,
        extra={"coinbase_status": "", "known_from": "create order acknowledgement"},
    )


def cancel_result(data: Any, venue_order_id: str) -> tuple[bool, str]:
    """``(success, failure_reason)`` of Cancel Orders for one order id."""
    for r in listing(data, "results", "cancel orders"):
        if str(r.get("order_id")) == venue_order_id:
            return bool(r.get("success")), str(r.get("failure_reason") or "")
    raise BadResponse("Coinbase cancel orders: no result for the order")
