"""Binance spot JSON shapes and market rules for the emulator: orders, fills and trades as
the API shows them, the exchangeInfo filters, the filter checks an order must pass, and how
a fill's commission is charged.

Values are Binance's own for these symbols (PRICE_FILTER tickSize, LOT_SIZE minQty/stepSize,
NOTIONAL minNotional); docs/VENUES.md names the sources.
"""

from __future__ import annotations

import math

from .core import EmuOrder, Ledger, fee_in_received, off_step

STATUS = {"open": "NEW", "filled": "FILLED", "canceled": "CANCELED", "rejected": "REJECTED"}


def num(x: float | None) -> str:
    return f"{(x or 0.0):.8f}"


def market_id(symbol: str) -> str:
    """``BTC/USDT`` → ``BTCUSDT``."""
    return symbol.replace("/", "")


# base currency → (tickSize, minQty = stepSize); minNotional is 5 (USDT) on each.
LOTS = {
    "BTC": ("0.01", "0.00001"),
    "ETH": ("0.01", "0.0001"),
    "SOL": ("0.01", "0.001"),
}
DEFAULT_LOT = ("0.01", "0.001")
MAX_QTY = "9000.00000000"
MIN_NOTIONAL = "5.00000000"
# Paying commissions in BNB takes 25% off (Binance's spot discount).
BNB_DISCOUNT = 0.75
BNB_PRICE_USDT = 600.0


def lot(symbol: str) -> tuple[str, str]:
    """(tickSize, stepSize) of a canonical symbol; stepSize is also its minQty."""
    return LOTS.get(symbol.split("/")[0], DEFAULT_LOT)


def filters(symbol: str) -> list[dict]:
    """The symbol's filters as exchangeInfo lists them."""
    tick, step = lot(symbol)
    return [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": tick,
            "maxPrice": "1000000.00000000",
            "tickSize": tick,
        },
        {"filterType": "LOT_SIZE", "minQty": step, "maxQty": MAX_QTY, "stepSize": step},
        {
            "filterType": "NOTIONAL",
            "minNotional": MIN_NOTIONAL,
            "applyMinToMarket": True,
            "maxNotional": "9000000.00000000",
            "applyMaxToMarket": False,
            "avgPriceMins": 5,
        },
    ]


def filter_failure(symbol: str, quantity: float | None, notional: float) -> str | None:
    """The filter an order breaks ("LOT_SIZE", "NOTIONAL"), or None.

    ``quantity`` is None for a market order sized by ``quoteOrderQty`` (Binance sizes it).
    """
    _, step = lot(symbol)
    if quantity is not None and (
        quantity < float(step) or quantity > float(MAX_QTY) or off_step(quantity, step)
    ):
        return "LOT_SIZE"
    if notional < float(MIN_NOTIONAL):
        return "NOTIONAL"
    return None


def floor_to_step(quantity: float, symbol: str) -> float:
    """What Binance fills for a ``quoteOrderQty`` market order: the quantity on the lot step."""
    step = float(lot(symbol)[1])
    return math.floor(quantity / step + 1e-9) * step


def fee_in_bnb_or_received(
    ledger: Ledger, order: EmuOrder, price: float, fee_quote: float
) -> tuple[str, float]:
    """With "use BNB to pay fees" on: the commission in BNB (discounted) while the account
    holds enough BNB; otherwise in the asset received, as without it."""
    bnb_price = ledger.market.price("BNB/USDT") if ledger.market.has("BNB/USDT") else None
    if bnb_price and order.base != "BNB":
        quote_usd = 1.0  # the quotes listed here are USD stablecoins
        bnb_fee = fee_quote * quote_usd * BNB_DISCOUNT / bnb_price
        if ledger.balances.get("BNB", 0.0) >= bnb_fee:
            return "BNB", bnb_fee
    return fee_in_received(ledger, order, price, fee_quote)


def trade_json(order: EmuOrder) -> dict:
    """An order's one fill as GET /api/v3/myTrades lists it (the emulator fills in one go)."""
    price = order.average_price or 0.0
    return {
        "symbol": market_id(order.symbol),
        "id": int(order.order_id),
        "orderId": int(order.order_id),
        "orderListId": -1,
        "price": num(price),
        "qty": f"{order.filled:.8f}",
        "quoteQty": f"{order.filled * price:.8f}",
        "commission": f"{order.fee:.8f}",
        "commissionAsset": order.fee_currency,
        "time": order.created_ms,
        "isBuyer": order.side == "buy",
        "isMaker": order.type == "limit",
        "isBestMatch": True,
    }


def order_json(o: EmuOrder) -> dict:
    """An order as GET /api/v3/order (and openOrders, allOrders) shows it."""
    cost = o.filled * (o.average_price or 0.0)
    return {
        "symbol": market_id(o.symbol),
        "orderId": int(o.order_id),
        "orderListId": -1,
        "clientOrderId": o.client_order_id,
        "price": num(o.limit_price),
        "origQty": num(o.amount),
        "executedQty": num(o.filled),
        "cummulativeQuoteQty": num(cost),
        "status": STATUS[o.status],
        "timeInForce": "GTC",
        "type": o.type.upper(),
        "side": o.side.upper(),
        "stopPrice": num(0),
        "icebergQty": num(0),
        "time": o.created_ms,
        "updateTime": o.created_ms,
        "isWorking": True,
        "workingTime": o.created_ms,
        "origQuoteOrderQty": num(o.quote_amount),
        "selfTradePreventionMode": "EXPIRE_MAKER",
    }


def order_ack(o: EmuOrder, resp_type: str) -> dict:
    """POST /api/v3/order's answer in ``newOrderRespType`` ACK, RESULT or FULL."""
    full = order_json(o)
    ack = {
        "symbol": full["symbol"],
        "orderId": full["orderId"],
        "orderListId": -1,
        "clientOrderId": o.client_order_id,
        "transactTime": o.created_ms,
    }
    if resp_type == "ACK":
        return ack
    result = {**ack, **{k: full[k] for k in full if k not in ("time", "updateTime")}}
    for k in ("stopPrice", "icebergQty", "isWorking"):
        result.pop(k)
    if resp_type == "FULL":
        fills = []
        if o.filled > 0:
            fills.append(
                {
                    "price": num(o.average_price),
                    "qty": num(o.filled),
                    "commission": num(o.fee),
                    "commissionAsset": o.fee_currency,
                    "tradeId": int(o.order_id),
                }
            )
        result["fills"] = fills
    return result
