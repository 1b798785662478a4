"""Per-venue ccxt settings, and moving ccxt's endpoint table to a base URL (sandbox, emulator)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

# What one request costs on the venue's request budgets (``bot.brokers.budget``):
# (public endpoint?, HTTP method, ccxt's path, ccxt's own cost of it) -> (cost on the
# per-IP budget, cost on the per-key budget), in the units of the venue's registry entry.
RequestCosts = Callable[[bool, str, str, float], tuple[float, float]]

# Kraken's private counter: "Ledger/trade history calls increase the counter by 2. All
# other API calls increase this counter by 1 (except AddOrder, CancelOrder which operate
# on a different limiter)" (docs.kraken.com spot-rest-ratelimits).
_KRAKEN_PRIVATE_POINTS = {
    "Ledgers": 2.0,
    "QueryLedgers": 2.0,
    "TradesHistory": 2.0,
    "QueryTrades": 2.0,
    "AddOrder": 0.0,
    "AddOrderBatch": 0.0,
    "AmendOrder": 0.0,
    "EditOrder": 0.0,
    "CancelOrder": 0.0,
    "CancelOrderBatch": 0.0,
}


def _one_request(public: bool, method: str, path: str, ccxt_cost: float) -> tuple[float, float]:
    return (1.0, 0.0) if public else (0.0, 1.0)


def _kraken_costs(public: bool, method: str, path: str, ccxt_cost: float) -> tuple[float, float]:
    # Public: one request each (Kraken documents no weights for them).
    return (1.0, 0.0) if public else (0.0, _KRAKEN_PRIVATE_POINTS.get(path, 1.0))


def _okx_costs(public: bool, method: str, path: str, ccxt_cost: float) -> tuple[float, float]:
    # ccxt's okx costs are in units of one request to a 20-per-2-s endpoint (its rateLimit
    # 100 ms): candles (40 / 2 s) 0.5, balance (10 / 2 s) 2, an order (60 / 2 s) 1/3.
    return (ccxt_cost, 0.0) if public else (0.0, ccxt_cost)


# ccxt's binance cost is the endpoint's documented REQUEST_WEIGHT / 5 (its rateLimit 50 ms
# against 6000 weight a minute): klines 0.4 (weight 2), exchangeInfo 4 (20), account 4 (20).
_BINANCE_WEIGHT_PER_COST = 5.0


def _binance_costs(public: bool, method: str, path: str, ccxt_cost: float) -> tuple[float, float]:
    # Every request spends the IP's weight, signed or not; only a new order spends the
    # account's ORDERS count.
    new_order = not public and method == "POST" and path == "order"
    return ccxt_cost * _BINANCE_WEIGHT_PER_COST, 1.0 if new_order else 0.0


@dataclass(frozen=True)
class VenueConfig:
    ccxt_id: str
    options: dict[str, Any] = field(default_factory=dict)
    has: dict[str, Any] = field(default_factory=dict)
    # Venues whose fetch/cancel by client id need the market (Binance, OKX).
    lookup_needs_symbol: bool = False
    # Venues with a separate account orders cannot spend (OKX's funding account).
    funding_account: bool = False
    # Venues whose order look-up carries no fee: read it from the order's trades (Binance).
    fees_from_trades: bool = False
    request_costs: RequestCosts = _one_request


VENUES = {
    # Kraken's currency list is public and one call; it also fixes amount precision.
    "KRAKEN": VenueConfig("kraken", request_costs=_kraken_costs),
    "OKX": VenueConfig(
        "okx",
        options={
            "defaultType": "spot",
            "fetchMarkets": {"types": ["spot"]},
            # One order per request on POST /api/v5/trade/order (not the batch endpoint).
            "createOrder": "privatePostTradeOrder",
        },
        # OKX currencies come from a private endpoint; market data is enough for spot.
        has={"fetchCurrencies": False},
        lookup_needs_symbol=True,
        funding_account=True,
        request_costs=_okx_costs,
    ),
    "BINANCE": VenueConfig(
        "binance",
        options={
            "defaultType": "spot",
            "fetchMarkets": {"types": ["spot"]},
            "fetchMargins": False,  # no sapi margin-pair calls while loading markets
            "fetchCurrencies": False,  # sapi capital/config/getall is private and heavy
            "fetchOpenOrders": {"warnWithoutSymbol": False},
        },
        lookup_needs_symbol=True,
        fees_from_trades=True,
        request_costs=_binance_costs,
    ),
}

SUPPORTED_BROKERS = frozenset(VENUES)


def redirect_urls(api_urls: Any, base_url: str, hostname: str | None = None) -> Any:
    """A copy of ccxt's ``urls['api']`` with every http(s) URL moved to ``base_url``'s host.

    ``{hostname}`` placeholders are filled first; the scheme and host are replaced, the
    path is kept (``https://api.kraken.com/0/private`` → ``http://127.0.0.1:PORT/0/private``).
    Non-HTTP entries (websocket URLs) are left as they are.
    """
    base = urlsplit(base_url)
    prefix = f"{base.scheme}://{base.netloc}{base.path.rstrip('/')}"

    def move(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: move(v) for k, v in value.items()}
        if isinstance(value, list):
            return [move(v) for v in value]
        if not isinstance(value, str):
            return value
        url = value.replace("{hostname}", hostname) if hostname else value
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            return value
        query = f"?{parts.query}" if parts.query else ""
        return f"{prefix}{parts.path}{query}"

    return move(api_urls)
