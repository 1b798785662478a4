"""Coinbase Advanced Trade's JSON shapes for the emulator: error bodies, products, orders.

The shapes follow the real answers in ``../shared/venue-fixtures/coinbase.json``
(List Products entries, the create-order failure); docs/VENUES.md says where each rule
comes from.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from .core import EmuOrder
from .server import Response

PREFIX = "/api/v3/brokerage"
MARKET_PREFIX = PREFIX + "/market"  # the public (unsigned) market-data endpoints
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
# Venue-neutral rejection codes → Coinbase's create-order failure: (``error``, the
# deprecated ``preview_failure_reason``, message). NewOrderFailureReason has no "too
# small" value: a size below the product's minimum is refused with UNKNOWN_FAILURE_REASON
# and the PreviewFailureReason that names it.
ORDER_FAILURES = {
    "insufficient_funds": (
        "INSUFFICIENT_FUND",
        "PREVIEW_INSUFFICIENT_FUND",
        "Insufficient balance in source account",
    ),
    "invalid_order": ("INVALID_LIMIT_PRICE", "PREVIEW_INVALID_LIMIT_PRICE", "Invalid limit price"),
    "invalid_amount": (
        "INVALID_SIZE_PRECISION",
        "PREVIEW_INVALID_SIZE_PRECISION",
        "Invalid order size",
    ),
    "unknown_symbol": ("INVALID_PRODUCT_ID", "PREVIEW_INVALID_PRODUCT_ID", "ProductID is invalid"),
    "size_precision": (
        "INVALID_SIZE_PRECISION",
        "PREVIEW_INVALID_SIZE_PRECISION",
        "Too many decimals in order size",
    ),
    "price_precision": (
        "INVALID_PRICE_PRECISION",
        "PREVIEW_INVALID_PRICE_PRECISION",
        "Too many decimals in order price",
    ),
    "base_too_small": (
        "UNKNOWN_FAILURE_REASON",
        "PREVIEW_INVALID_BASE_SIZE_TOO_SMALL",
        "Order size is below the product's base_min_size",
    ),
    "quote_too_small": (
        "UNKNOWN_FAILURE_REASON",
        "PREVIEW_INVALID_QUOTE_SIZE_TOO_SMALL",
        "Order value is below the product's quote_min_size",
    ),
    "unsupported_config": (
        "UNSUPPORTED_ORDER_CONFIGURATION",
        "PREVIEW_INVALID_ORDER_CONFIG",
        "Unsupported order configuration",
    ),
}


@dataclass(frozen=True)
class ProductRules:
    """A product's steps and limits, as List Products publishes them (decimal strings)."""

    base_increment: str = "0.00000001"
    quote_increment: str = "0.01"
    price_increment: str = "0.01"
    base_min_size: str = "0.00000001"
    base_max_size: str = "3400"
    quote_min_size: str = "1"
    quote_max_size: str = "150000000"

    def replace(self, **fields: str) -> ProductRules:
        """These rules with some fields changed (tests make a product stricter)."""
        return dataclasses.replace(self, **fields)


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


def order_failure(code: str, message: str | None = None, config: object = None) -> Response:
    """A create-order refusal: HTTP 200 with ``success: false``, in the shape of the documented
    failure example (fixture ``create_failed``), echoing the order configuration sent."""
    error, preview, default = ORDER_FAILURES.get(
        code, ("UNKNOWN_FAILURE_REASON", "UNKNOWN_PREVIEW_FAILURE_REASON", "order refused")
    )
    body = {
        "success": False,
        "failure_reason": "UNKNOWN_FAILURE_REASON",
        "order_id": "",
        "error_response": {
            "error": error,
            "message": message or default,
            "error_details": message or default,
            "preview_failure_reason": preview,
            "new_order_failure_reason": error,
        },
    }
    if isinstance(config, dict):  # an injected fault has no request to echo
        body["order_configuration"] = config
    return Response(200, body)


def product_json(symbol: str, price: float, rules: ProductRules) -> dict:
    """A List Products entry: the field set of the real entries (fixture ``products``)."""
    base, quote = symbol.split("/")
    return {
        "product_id": pid(symbol),
        "price": repr(price),
        "price_percentage_change_24h": "0",
        "volume_24h": "1000",
        "volume_percentage_change_24h": "0",
        "base_increment": rules.base_increment,
        "quote_increment": rules.quote_increment,
        "quote_min_size": rules.quote_min_size,
        "quote_max_size": rules.quote_max_size,
        "base_min_size": rules.base_min_size,
        "base_max_size": rules.base_max_size,
        "base_name": base,
        "quote_name": quote,
        "watched": False,
        "is_disabled": False,
        "new": False,
        "status": "online",
        "cancel_only": False,
        "limit_only": False,
        "post_only": False,
        "trading_disabled": False,
        "auction_mode": False,
        "product_type": "SPOT",
        "quote_currency_id": quote,
        "base_currency_id": base,
        "fcm_trading_session_details": None,
        "mid_market_price": "",
        "price_increment": rules.price_increment,
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
    value = o.filled * (o.average_price or 0.0)
    # Fees are in the quote currency: a buy costs value + fees, a sell yields value - fees.
    after_fees = value + o.fee if o.side == "buy" else value - o.fee
    hold = o.amount * (o.limit_price or 0.0) if o.status == "open" and o.side == "buy" else 0.0
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
        "fee": "",
        "number_of_fills": "1" if o.filled else "0",
        "filled_value": _num(value),
        "pending_cancel": False,
        "size_in_quote": o.quote_amount is not None,
        "total_fees": _num(o.fee),
        "size_inclusive_of_fees": False,
        "total_value_after_fees": _num(after_fees),
        "trigger_status": "INVALID_ORDER_TYPE",
        "order_type": o.type.upper(),
        "reject_reason": "REJECT_REASON_UNSPECIFIED",
        "settled": o.status != "open",
        "product_type": "SPOT",
        "reject_message": "",
        "cancel_message": "User requested cancel" if o.status == "canceled" else "",
        "order_placement_source": "RETAIL_ADVANCED",
        "outstanding_hold_amount": _num(hold),
        "is_liquidation": False,
        "last_fill_time": iso(o.created_ms) if o.filled else None,
        "edit_history": [],
        "leverage": "",
        "margin_type": "UNKNOWN_MARGIN_TYPE",
    }


def decimal(raw: object) -> Decimal | None:
    """A size or price string as a finite Decimal, or None when it is not one."""
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def on_step(raw: object, step: str) -> bool:
    """Whether a size or price string is a positive multiple of the product's step."""
    value = decimal(raw)
    return value is not None and value > 0 and value % Decimal(step) == 0
