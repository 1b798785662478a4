"""ccxt's unified structures as NIJA's plain types: orders (with the fee as charged) and
market rules (no SDK object leaves the adapter)."""

from __future__ import annotations

from typing import Any

from bot.errors import BadResponse
from bot.model import USD_LIKE, MarketRules, Order, OrderStatus, OrderType, Side

# ccxt's precision modes (ccxt.base.decimal_to_precision): a step size, or a count of decimals.
DECIMAL_PLACES = 2
TICK_SIZE = 4
# Venues whose order answers may name no fee currency, and what they charge in by default:
# Kraken reports ``fciq``/``fcib`` in ``oflags``; without either, spot fees are in quote.
_DEFAULT_FEE_IN_QUOTE = frozenset({"KRAKEN"})

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
    # ccxt folds trigger orders into market/limit (Kraken take-profit → market): keep the
    # venue's own word so such an order is never mistaken for a plain one.
    venue_type = _venue_type(raw) or raw_type
    extra = {"venue_type": str(venue_type)} if str(venue_type).lower() != raw_type else {}
    if raw_type in ("market", "limit"):
        otype = OrderType(raw_type)
    else:
        otype = OrderType.LIMIT if raw.get("price") else OrderType.MARKET
    average = raw.get("average")
    listed = raw.get("fees") or ([raw["fee"]] if isinstance(raw.get("fee"), dict) else [])
    fee, fee_currency, fee_usd = charged_fee(venue, symbol, listed, average)
    return Order(
        client_order_id=_client_id(venue, raw) or client_order_id or "",
        venue_order_id=str(venue_id),
        symbol=symbol,
        side=Side(side),
        type=otype,
        status=status,
        amount=float(raw["amount"]) if raw.get("amount") is not None else None,
        filled=float(raw.get("filled") or 0.0),
        average_price=float(average) if average else None,
        fee_usd=fee_usd,
        reason=_reason(raw),
        extra=extra,
        fee=fee,
        fee_currency=fee_currency,
    )


def _dict(value: object) -> dict:
    """``value`` when the venue sent an object there, else an empty one."""
    return value if isinstance(value, dict) else {}


def _venue_type(raw: dict) -> str | None:
    """The order type in the venue's words: Kraken ``descr.ordertype``, Binance ``type``,
    OKX ``ordType``."""
    info = _dict(raw.get("info"))
    descr = _dict(info.get("descr"))
    value = descr.get("ordertype") or info.get("type") or info.get("ordType")
    return value if isinstance(value, str) and value else None


def _client_id(venue: str, raw: dict) -> str | None:
    """The order's own client id as the venue reports it, or None.

    Kraken: only ``cl_ord_id`` (ccxt falls back to ``userref``, "0" on orders sent without
    one). Binance's cancel answer names the cancel request in ``clientOrderId`` and the
    order in ``origClientOrderId``.
    """
    info = _dict(raw.get("info"))
    if venue == "KRAKEN":
        return info.get("cl_ord_id") or None
    return info.get("origClientOrderId") or raw.get("clientOrderId") or None


def charged_fee(
    venue: str, symbol: str, listed: list, average: float | None
) -> tuple[float, str | None, float]:
    """(fee, its currency, every fee valued in USD) from ccxt fee structures (an order's
    ``fees``, or its trades' ``fee``): ``Order.fee``/``fee_currency``/``fee_usd``."""
    fees = _fees(venue, symbol, listed)
    currency, fee = _charged(fees, symbol)
    fee_usd = sum(_fee_usd(cost, ccy, symbol, average) for ccy, cost in fees.items())
    return fee, currency, fee_usd


def _fees(venue: str, symbol: str, listed: list) -> dict[str | None, float]:
    """Fees per currency. Binance's FULL answer lists one commission per fill, maybe in
    several assets (BNB). A currency ccxt could not name is None, except on venues with a
    documented default.
    """
    default = symbol.partition("/")[2] if venue in _DEFAULT_FEE_IN_QUOTE else None
    fees: dict[str | None, float] = {}
    for item in listed:
        if not isinstance(item, dict) or item.get("cost") in (None, ""):
            continue
        currency = item.get("currency") or default
        fees[currency] = fees.get(currency, 0.0) + float(item["cost"])
    return {ccy: cost for ccy, cost in fees.items() if cost}


def _charged(fees: dict[str | None, float], symbol: str) -> tuple[str | None, float]:
    """The fee ``Order.fee`` carries: the only one, or the one in the base currency (it
    changes what a fill leaves in the account), else the first."""
    if not fees:
        return None, 0.0
    base = symbol.partition("/")[0]
    currency = base if base in fees else next(iter(fees))
    return currency, fees[currency]


def _fee_usd(cost: float, currency: str | None, symbol: str, average: float | None) -> float:
    base, _, quote = symbol.partition("/")
    if currency in USD_LIKE or (currency is None and quote in USD_LIKE):
        return cost
    if currency == base and quote in USD_LIKE and average:
        return cost * float(average)
    return 0.0  # a fee in a third currency (BNB) is not valued here


def to_market_rules(symbol: str, market: dict[str, Any], precision_mode: int) -> MarketRules:
    """ccxt's parsed market (``precision``, ``limits``) as ``MarketRules``.

    ccxt fills these from the venue's own fields: Kraken ``lot_decimals``/``ordermin``/
    ``costmin``/``tick_size``, Binance LOT_SIZE/(MIN_)NOTIONAL/PRICE_FILTER, OKX
    ``lotSz``/``minSz``/``tickSz``.
    """
    precision = market.get("precision") or {}
    limits = market.get("limits") or {}

    def step(value: Any) -> float | None:
        if value is None:
            return None
        return 10.0 ** -float(value) if precision_mode == DECIMAL_PLACES else float(value)

    def minimum(kind: str) -> float | None:
        value = (limits.get(kind) or {}).get("min")
        return float(value) if value else None

    base, quote = market.get("base"), market.get("quote")
    if not base or not quote:
        raise BadResponse(f"market {symbol} lacks its base or quote currency")
    return MarketRules(
        symbol=symbol,
        base=base,
        quote=quote,
        amount_step=step(precision.get("amount")),
        min_amount=minimum("amount"),
        min_notional=minimum("cost"),
        price_step=step(precision.get("price")),
    )


def _reason(raw: dict) -> str | None:
    info = raw.get("info")
    if not isinstance(info, dict):
        return None
    for key in ("reason", "sMsg", "msg"):
        value = info.get(key)
        if isinstance(value, str) and value:
            return value
    return None
