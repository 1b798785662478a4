"""Alpaca's order rules and bar paging, as the emulator enforces them (docs/VENUES.md, Alpaca).

Order rules, from Alpaca's documentation:
- fractional orders (a ``notional``, or a ``qty`` that is not whole) only on assets whose
  ``fractionable`` is true, refused with "requested asset is not fractionable"
  (alpaca.markets/support/how-do-i-know-if-an-asset-is-fractionable); only as DAY orders
  (docs.alpaca.markets/docs/fractional-trading; a GTC one is answered 422);
- a fractional order is worth at least $1 (alpaca.markets/learn-api/fractional-shares-api);
- limit prices in whole cents from $1 up, in 0.0001 below $1, refused with 422 / 42210000
  "invalid limit_price X. sub-penny increment does not fulfill minimum pricing criteria"
  (docs.alpaca.markets/docs/orders-at-alpaca).
The docs name the messages but not every HTTP status and code: where they do not, the emulator
answers as Alpaca answers its other order refusals (403 / 40310000).

Bars: ``limit`` is 1..10000 (default 1000) and bounds one page; a ``next_page_token`` that is
not null means more bars remain in the range, and the client repeats the request with
``page_token``. Pages run symbol by symbol, each in the requested time order.
"""

from __future__ import annotations

import base64
import binascii
from decimal import Decimal, InvalidOperation
from typing import Any

from .server import Response

BARS_DEFAULT_LIMIT = 1_000
BARS_MAX_LIMIT = 10_000  # Alpaca's largest page
MIN_FRACTIONAL_NOTIONAL = 1.0  # USD

Row = list[float]  # [ts_ms, o, h, l, c, v]


def _refusal(status: int, code: int, message: str) -> Response:
    return Response(status, {"code": code, "message": message})


def _places(value: Any) -> int:
    """How many decimals ``value`` is written with (0.25 → 2, 450.0 → 0)."""
    try:
        exponent = Decimal(str(value)).normalize().as_tuple().exponent
    except InvalidOperation:
        return 0
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def is_fractional(body: dict[str, Any]) -> bool:
    """True for an order sized in dollars or in a fraction of a share."""
    qty = body.get("qty")
    return body.get("notional") is not None or (qty is not None and _places(qty) > 0)


def order_refusal(body: dict[str, Any], *, fractionable: bool, price: float) -> Response | None:
    """Alpaca's answer refusing this order body, or None when its rules accept it.

    ``price`` is the asset's last price, for the value of a fractional ``qty``.
    """
    if is_fractional(body):
        if not fractionable:
            return _refusal(403, 40310000, "requested asset is not fractionable")
        if body.get("time_in_force") != "day":
            return _refusal(422, 42210000, "fractional orders must be DAY orders")
        notional = body.get("notional")
        value = float(notional) if notional is not None else float(body["qty"]) * price
        if value < MIN_FRACTIONAL_NOTIONAL:
            return _refusal(403, 40310000, f"cost basis must be >= {MIN_FRACTIONAL_NOTIONAL:g}")
    limit_price = body.get("limit_price")
    if limit_price is not None:
        allowed = 2 if float(limit_price) >= 1 else 4
        if _places(limit_price) > allowed:
            return _refusal(
                422,
                42210000,
                f"invalid limit_price {limit_price}. sub-penny increment does not fulfill"
                " minimum pricing criteria",
            )
    return None


def page_token(ticker: str, ts_ms: float, desc: bool) -> str:
    """A token shaped like Alpaca's: base64 of ``TICKER|A-or-D|timestamp in ns``."""
    raw = f"{ticker}|{'D' if desc else 'A'}|{int(ts_ms) * 1_000_000}"
    return base64.b64encode(raw.encode()).decode()


def _read_token(token: str) -> tuple[str, int]:
    """(ticker, ts_ms) of the first bar of the page a token points to; ValueError if garbled."""
    try:
        ticker, _order, ts_ns = base64.b64decode(token, validate=True).decode().split("|")
        return ticker, int(ts_ns) // 1_000_000
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"invalid page token {token!r}") from exc


def page_bars(
    series: dict[str, list[Row]],
    *,
    desc: bool,
    limit: int,
    token: str | None,
    page_size: int = BARS_MAX_LIMIT,
) -> tuple[dict[str, list[Row]], str | None]:
    """One page of ``series`` (rows oldest first per ticker) and the token of the next page.

    At most ``min(limit, page_size)`` bars; a ``token`` resumes where the page before
    stopped. ValueError for a garbled token.
    """
    flat = [
        (ticker, row)
        for ticker in sorted(series)
        for row in (reversed(series[ticker]) if desc else series[ticker])
    ]
    start = 0
    if token:
        at_ticker, at_ms = _read_token(token)
        start = next(
            (
                i
                for i, (ticker, row) in enumerate(flat)
                if ticker > at_ticker
                or (ticker == at_ticker and (row[0] <= at_ms if desc else row[0] >= at_ms))
            ),
            len(flat),
        )
    end = start + max(1, min(limit, page_size))
    page: dict[str, list[Row]] = {}
    for ticker, row in flat[start:end]:
        page.setdefault(ticker, []).append(row)
    following = flat[end] if end < len(flat) else None
    return page, page_token(following[0], following[1][0], desc) if following else None
