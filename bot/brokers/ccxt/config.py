"""Per-venue ccxt settings, and moving ccxt's endpoint table to a base URL (sandbox, emulator)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


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


VENUES = {
    # Kraken's currency list is public and one call; it also fixes amount precision.
    "KRAKEN": VenueConfig("kraken"),
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
