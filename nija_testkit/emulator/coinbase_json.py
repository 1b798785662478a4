"""Coinbase Advanced Trade's JSON shapes for the emulator: error bodies, products, orders."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from .core import EmuOrder
from .server import Response

PREFIX = "/api/v3/brokerage"
BASE_STEP = "0.00000001"
QUOTE_STEP = "0.01"
DEFAULT_PRODUCTS = ("BTC/USD", "ETH/USD", "SOL/USD", "BTC/USDT", "ETH/USDT", "SOL/USDT")
GRANULARITY = {
    "ONE_MINUTE": 60,
    "FIVE_MINUTE": 300,
    "FIFTEEN_MINUTE": 900,
    "THIRTY_MINUTE": 1800,
    "ONE_HOUR": 3600,
    "TWO_HOUR": 7200,
    "FOUR_HOUR": 14400,
    "SIX_HOUR": 21600,
    "ONE_DAY": 86400,
}
# gRPC-style status names Coinbase uses in error bodies, by HTTP status.
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    418: "RESOURCE_EXHAUSTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
# Venue-neutral rejection codes → Coinbase's create-order failure names.
ORDER_FAILURES = {
    "insufficient_funds": ("INSUFFICIENT_FUND", "Insufficient balance in source account"),
    "invalid_order": ("INVALID_LIMIT_PRICE", "Invalid limit price"),
    "invalid_amount": ("INVALID_SIZE_PRECISION", "Invalid order size"),
    "unknown_symbol": ("INVALID_PRODUCT_ID", "ProductID is invalid"),
    "size_precision": ("INVALID_SIZE_PRECISION", "Too many decimals in order size"),
    "price_precision": ("INVALID_PRICE_PRECISION", "Too many decimals in order price"),
}


def pid(symbol: str) -> str:
    return symbol.replace("/", "-")


def canonical(product_id: str) -> str:
    return product_id.replace("-", "/")


def _num(x: float | None) -> str:
    return "0" if x is None else repr(float(x))


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def error_body(status: int, message: str, name: str | None = None) -> Response:
    """Coinbase's error shape: ``{"error", "error_details", "message"}``."""
    name = name or _STATUS_NAMES.get(status, "UNKNOWN")
    return Response(status, {"error": name, "error_details": message, "message": message})


def order_failure(code: str, message: str | None = None) -> Response:
    """A create-order refusal: HTTP 200 with ``success: false``, as Coinbase answers it."""
    error, default = ORDER_FAILURES.get(code, ("UNKNOWN_FAILURE_REASON", "order refused"))
    return Response(
        200,
        {
            "success": False,
            "failure_reason": "UNKNOWN_FAILURE_REASON",
            "order_id": "",
            "error_response": {
                "error": error,
                "message": message or default,
                "error_details": message or default,
                "preview_failure_reason": f"PREVIEW_{error}",
                "new_order_failure_reason": error,
            },
        },
    )


def product_json(symbol: str, price: float) -> dict:
    """A List Products entry."""
    base, quote = symbol.split("/")
    return {
        "product_id": pid(symbol),
        "price": repr(price),
        "base_increment": BASE_STEP,
        "quote_increment": QUOTE_STEP,
        "price_increment": QUOTE_STEP,
        "base_min_size": "0.00000001",
        "quote_min_size": "1",
        "base_name": base,
        "quote_name": quote,
        "status": "online",
        "is_disabled": False,
        "trading_disabled": False,
        "cancel_only": False,
        "limit_only": False,
        "post_only": False,
        "auction_mode": False,
        "product_type": "SPOT",
        "base_currency_id": base,
        "quote_currency_id": quote,
        "base_display_symbol": base,
        "quote_display_symbol": quote,
    }


def order_json(o: EmuOrder) -> dict:
    """An order as Get Order / List Orders show it."""
    if o.type == "market":
        size = (
            {"quote_size": _num(o.quote_amount)}
            if o.quote_amount is not None
            else {"base_size": _num(o.amount)}
        )
        config = {"market_market_ioc": size}
    else:
        config = {
            "limit_limit_gtc": {
                "base_size": _num(o.amount),
                "limit_price": _num(o.limit_price),
                "post_only": False,
            }
        }
    status = {"open": "OPEN", "filled": "FILLED", "canceled": "CANCELLED"}.get(o.status, "FAILED")
    return {
        "order_id": o.order_id,
        "product_id": pid(o.symbol),
        "user_id": "emulated-user",
        "order_configuration": config,
        "side": o.side.upper(),
        "client_order_id": o.client_order_id,
        "status": status,
        "time_in_force": "IMMEDIATE_OR_CANCEL" if o.type == "market" else "GOOD_UNTIL_CANCELLED",
        "created_time": iso(o.created_ms),
        "completion_percentage": "100" if o.status == "filled" else "0",
        "filled_size": _num(o.filled),
        "average_filled_price": _num(o.average_price),
        "number_of_fills": "1" if o.filled else "0",
        "filled_value": _num(o.filled * (o.average_price or 0.0)),
        "pending_cancel": False,
        "size_in_quote": o.quote_amount is not None,
        "total_fees": _num(o.fee),
        "order_type": o.type.upper(),
        "reject_reason": "REJECT_REASON_UNSPECIFIED",
        "settled": o.status != "open",
        "product_type": "SPOT",
        "reject_message": "",
        "cancel_message": "User requested cancel" if o.status == "canceled" else "",
        "order_placement_source": "RETAIL_ADVANCED",
    }


def on_step(raw: object, step: str) -> bool:
    """Whether a size or price string is a positive multiple of the product's step."""
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        return False
    return value.is_finite() and value > 0 and value % Decimal(step) == 0
