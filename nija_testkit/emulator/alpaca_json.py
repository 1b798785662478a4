"""Alpaca JSON shapes for the emulator: error bodies, account and order fields, bars, and the
ids and timestamps Alpaca writes (https://docs.alpaca.markets/reference)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from .core import EmuOrder
from .server import Response

EXCHANGES = {"SPY": "ARCA", "AAPL": "NASDAQ", "MSFT": "NASDAQ"}

# Alpaca's documented error codes and messages, by the emulator's venue-neutral code.
ERRORS = {
    "auth": (401, 40110000, "request is not authorized"),
    "forbidden": (403, 40310000, "access forbidden"),
    "rate_limit": (429, 42910000, "rate limit exceeded"),
    "insufficient_funds": (403, 40310000, "insufficient buying power"),
    "order_not_found": (404, 40410000, "order not found"),
    "invalid_order": (422, 40010001, "invalid order"),
    "unknown_symbol": (422, 40010001, "asset not found"),
    "duplicate_client_id": (422, 40010001, "client_order_id must be unique"),
    "server": (500, 50010000, "internal server error"),
}


ZERO_ACCOUNT_FIELDS = [
    "daytrading_buying_power",
    "short_market_value",
    "initial_margin",
    "maintenance_margin",
    "last_maintenance_margin",
    "sma",
    "accrued_fees",
    "pending_transfer_in",
]
FALSE_ACCOUNT_FLAGS = [
    "pattern_day_trader",
    "trading_blocked",
    "transfers_blocked",
    "account_blocked",
    "shorting_enabled",
    "trade_suspended_by_user",
]
# Order fields NIJA's orders never use; Alpaca sends them as null.
NULL_ORDER_FIELDS = [
    "expired_at",
    "failed_at",
    "replaced_at",
    "replaced_by",
    "replaces",
    "stop_price",
    "legs",
    "trail_percent",
    "trail_price",
    "hwm",
    "subtag",
    "source",
    "expires_at",
]


def invalid(message: str) -> Response:
    """Alpaca's 422 for an order it cannot accept as sent."""
    return Response(422, {"code": 40010001, "message": message})


def iso(ms: int | float) -> str:
    return datetime.fromtimestamp(ms / 1000.0, tz=UTC).isoformat().replace("+00:00", "Z")


def num(value: float | None) -> str | None:
    return None if value is None else repr(float(value))


def time_param(raw: str | None) -> int | None:
    """An RFC 3339 query value (``start``, ``end``) as epoch ms; None when absent."""
    if not raw:
        return None
    moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def bar(row: list[float]) -> dict:
    """One ``[ts_ms, o, h, l, c, v]`` row in Alpaca's bar shape."""
    return {
        "t": iso(row[0]),
        "o": row[1],
        "h": row[2],
        "l": row[3],
        "c": row[4],
        "v": row[5],
        "n": 10,
        "vw": (row[2] + row[3] + row[4]) / 3,
    }


def order_uuid(order_id: str) -> str:
    return str(uuid.UUID(int=int(order_id)))


def asset_uuid(symbol: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"alpaca-emulator/{symbol}"))


def asset(ticker: str, *, fractionable: bool) -> dict:
    """An active, tradable US stock as ``GET /v2/assets/{symbol}`` returns it."""
    return {
        "id": asset_uuid(ticker),
        "class": "us_equity",
        "exchange": EXCHANGES.get(ticker, "NYSE"),
        "symbol": ticker,
        "name": f"{ticker} (emulated)",
        "status": "active",
        "tradable": True,
        "marginable": True,
        "shortable": True,
        "easy_to_borrow": True,
        "fractionable": fractionable,
        "maintenance_margin_requirement": 30,
        "attributes": [],
    }


def order(order: EmuOrder, time_in_force: str) -> dict:
    """An order as Alpaca returns it. No ``commission``: the Trading API charges none on stocks."""
    ticker = order.base
    created = iso(order.created_ms)
    notional = order.quote_amount  # set only for orders sized in dollars
    return {
        "id": order_uuid(order.order_id),
        "client_order_id": order.client_order_id,
        "created_at": created,
        "updated_at": created,
        "submitted_at": created,
        "filled_at": created if order.status == "filled" else None,
        "canceled_at": created if order.status == "canceled" else None,
        "asset_id": asset_uuid(ticker),
        "symbol": ticker,
        "asset_class": "us_equity",
        "notional": num(notional),
        "qty": None if notional is not None else num(order.amount),
        "filled_qty": num(order.filled),
        "filled_avg_price": num(order.average_price),
        "order_class": "",
        "order_type": order.type,
        "type": order.type,
        "side": order.side,
        "position_intent": "buy_to_open" if order.side == "buy" else "sell_to_close",
        "time_in_force": time_in_force,
        "limit_price": num(order.limit_price),
        "status": "new" if order.status == "open" else order.status,
        "extended_hours": False,
        **dict.fromkeys(NULL_ORDER_FIELDS),
    }
