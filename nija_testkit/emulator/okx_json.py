"""OKX v5 JSON shapes for the emulator: envelopes, error tables, and the records OKX returns
(instruments, currencies, tickers, orders), as documented at https://www.okx.com/docs-v5/en/.
"""

from __future__ import annotations

import time

from .core import EmuOrder, Market
from .server import Response

# Spot instruments this venue lists: canonical market symbols with these quotes.
QUOTES = ("USDT", "USDC")
# tickSz, lotSz, minSz per base currency (as OKX lists them); others get the default.
LOTS = {
    "BTC": ("0.1", "0.00000001", "0.00001"),
    "ETH": ("0.01", "0.000001", "0.0001"),
    "SOL": ("0.01", "0.000001", "0.001"),
}
DEFAULT_LOT = ("0.0001", "0.0001", "0.001")

# venue-neutral code → (HTTP status, OKX code, msg, sCode or None)
ERRORS: dict[str, tuple[int, str, str, str | None]] = {
    "auth": (401, "50111", "Invalid OK-ACCESS-KEY", None),
    "rate_limit": (
        429,
        "50011",
        "Rate limit reached. Please refer to API documentation and throttle requests accordingly.",
        None,
    ),
    "insufficient_funds": (200, "1", "All operations failed", "51008"),
    "order_not_found": (200, "51603", "Order does not exist", None),
    "invalid_order": (200, "1", "All operations failed", "51020"),
    "unknown_symbol": (200, "51001", "Instrument ID does not exist", None),
    "duplicate_client_id": (200, "1", "All operations failed", "51016"),
    "server": (503, "50001", "Service temporarily unavailable. Please try again later.", None),
}
S_MSGS = {
    "51000": "Parameter {0} error",
    "51001": "Instrument ID does not exist",
    "51008": "Order failed. Insufficient {0} balance in account.",
    "51016": "Duplicated clOrdId",
    "51020": "Order amount should be greater than the min available amount.",
    "51121": "Order quantity must be a multiple of the lot size.",
}
# The body OKX sends with a bare HTTP error status.
STATUS_BODIES = {
    400: ("51000", "Parameter error"),
    403: ("50110", "Your IP is not included in your API key's IP whitelist."),
    404: ("50000", "Not Found"),
    418: ("50011", "Too Many Requests"),
    429: ("50011", "Too Many Requests"),
    500: ("50026", "System error. Try again later"),
    502: ("50013", "Systems are busy. Please try again later."),
    503: ("50001", "Service temporarily unavailable. Please try again later."),
    504: ("50004", "API endpoint request timeout"),
}
ORDER_STATES = {"open": "live", "filled": "filled", "canceled": "canceled", "rejected": "canceled"}


def num(value: float | None) -> str:
    """A number the way OKX writes it: a plain decimal string, '' when absent."""
    if value is None:
        return ""
    return format(float(value), ".10f").rstrip("0").rstrip(".") or "0"


def now_ms() -> int:
    return int(time.time() * 1000)


def ok(data: list) -> Response:
    """OKX's success envelope."""
    return Response(200, {"code": "0", "msg": "", "data": data})


def fail(code: str, msg: str, status: int = 200, data: list | None = None) -> Response:
    """OKX's error envelope."""
    return Response(status, {"code": code, "msg": msg, "data": data or []})


def status_event(state: str) -> dict:
    """One event of GET /api/v5/system/status (the field set of OKX's v5 documentation):
    a spot trading-service upgrade that began a minute ago and ends in an hour."""
    now = now_ms()
    return {
        "title": "Spot System Upgrade",
        "state": state,
        "begin": str(now - 60_000),
        "end": str(now + 3_600_000),
        "preOpenBegin": str(now) if state == "pre_open" else "",
        "href": "",
        "serviceType": "5",  # the trading service
        "system": "unified",
        "scheDesc": "",
        "maintType": "1",
        "env": "1",
    }


def inst_id(symbol: str) -> str:
    """``BTC/USDT`` → ``BTC-USDT``."""
    return symbol.replace("/", "-")


def instrument(symbol: str) -> dict:
    """A spot instrument as GET /api/v5/public/instruments lists it."""
    base, quote_ = symbol.split("/")
    tick, lot, min_sz = LOTS.get(base, DEFAULT_LOT)
    return {
        "instType": "SPOT",
        "instId": inst_id(symbol),
        "uly": "",
        "instFamily": "",
        "category": "1",
        "baseCcy": base,
        "quoteCcy": quote_,
        "settleCcy": "",
        "ctVal": "",
        "ctMult": "",
        "ctValCcy": "",
        "ctType": "",
        "optType": "",
        "stk": "",
        "alias": "",
        "listTime": "1606468572000",
        "expTime": "",
        "lever": "10",
        "tickSz": tick,
        "lotSz": lot,
        "minSz": min_sz,
        "maxLmtSz": "9999999999",
        "maxMktSz": "1000000",
        "maxLmtAmt": "20000000",
        "maxMktAmt": "1000000",
        "ruleType": "normal",
        "state": "live",
    }


def currency(code: str) -> dict:
    """One chain of a currency, as GET /api/v5/asset/currencies lists it."""
    return {
        "ccy": code,
        "name": code,
        "chain": f"{code}-{code}",
        "canDep": True,
        "canWd": True,
        "canInternal": True,
        "mainNet": True,
        "minDep": "0.00000001",
        "minWd": "0.001",
        "maxWd": "1000000",
        "wdTickSz": "8",
        "minFee": "0.0001",
        "maxFee": "0.0002",
        "wdQuota": "10000000",
        "usedWdQuota": "0",
        "needTag": False,
        "logoLink": "",
    }


def ticker(market: Market, symbol: str) -> dict:
    """A ticker as GET /api/v5/market/ticker(s) shows it."""
    bid, ask = market.bid_ask(symbol)
    last = market.price(symbol)
    now = str(now_ms())
    return {
        "instType": "SPOT",
        "instId": inst_id(symbol),
        "last": num(last),
        "lastSz": "0.01",
        "askPx": num(ask),
        "askSz": "1.5",
        "bidPx": num(bid),
        "bidSz": "1.2",
        "open24h": num(last * 0.99),
        "high24h": num(last * 1.02),
        "low24h": num(last * 0.98),
        "volCcy24h": num(1000 * last),
        "vol24h": "1000",
        "sodUtc0": num(last * 0.995),
        "sodUtc8": num(last * 0.997),
        "ts": now,
    }


def order(o: EmuOrder, tgt: str) -> dict:
    """An order as OKX's order-details endpoints show it."""
    quote_sized = o.type == "market" and tgt == "quote_ccy"
    filled_at = str(o.created_ms) if o.filled else ""
    return {
        "instType": "SPOT",
        "instId": inst_id(o.symbol),
        "ccy": "",
        "ordId": o.order_id,
        "clOrdId": o.client_order_id,
        "tag": "",
        "px": num(o.limit_price),
        "sz": num(o.quote_amount if quote_sized else o.amount),
        "tgtCcy": tgt if o.type == "market" else "",
        "ordType": o.type,
        "side": o.side,
        "posSide": "net",
        "tdMode": "cash",
        "accFillSz": num(o.filled),
        "fillPx": num(o.average_price),
        "fillSz": num(o.filled),
        "fillTime": filled_at,
        "avgPx": num(o.average_price),
        "state": ORDER_STATES[o.status],
        "lever": "",
        "fee": num(-o.fee) if o.fee else "0",
        "feeCcy": o.fee_currency,
        "rebate": "0",
        "rebateCcy": o.quote,
        "pnl": "0",
        "category": "normal",
        "source": "",
        "cancelSource": "1" if o.status == "canceled" else "",
        "reduceOnly": "false",
        "stpMode": "cancel_maker",
        "attachAlgoOrds": [],
        "tpTriggerPx": "",
        "slTriggerPx": "",
        "uTime": str(now_ms()),
        "cTime": str(o.created_ms),
    }
