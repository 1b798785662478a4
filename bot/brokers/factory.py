"""Build the broker object for an account spec: the venue's adapter, wrapped for paper mode.

In paper mode (the default) the venue adapter still supplies real balances and
market data where credentials exist, but orders go to the paper engine: nothing
is ever sent to a venue's order endpoint.
"""

from __future__ import annotations

from bot.brokers.alpaca_stocks.broker import AlpacaBroker
from bot.brokers.base import Broker
from bot.brokers.ccxt.broker import SUPPORTED_BROKERS as CCXT_BROKERS
from bot.brokers.ccxt.broker import CcxtBroker
from bot.brokers.coinbase_advanced.broker import CoinbaseBroker
from bot.brokers.paper.broker import PaperBroker
from bot.clock import SYSTEM_CLOCK, Clock
from bot.errors import ConfigError
from bot.model import BrokerSpec

VENUES = ("COINBASE", "KRAKEN", "OKX", "BINANCE", "ALPACA")


def create_venue_broker(spec: BrokerSpec, *, clock: Clock = SYSTEM_CLOCK) -> Broker:
    """The real adapter for ``spec.account.broker``; it touches no network until first used."""
    name = spec.account.broker
    if name in CCXT_BROKERS:
        return CcxtBroker(spec, clock=clock)
    if name == "COINBASE":
        return CoinbaseBroker(spec, clock=clock)
    if name == "ALPACA":
        return AlpacaBroker(spec, clock=clock)
    raise ConfigError(f"{spec.account.key}: unknown broker {name!r} (known: {', '.join(VENUES)})")


def create_trading_broker(
    spec: BrokerSpec,
    *,
    live: bool,
    paper_balance_usd: float,
    clock: Clock = SYSTEM_CLOCK,
    venue: Broker | None = None,
) -> Broker:
    """The broker an account trades through: the venue itself when ``live``, else paper fills
    over the venue's real market data (``venue`` may be passed in to share its markets)."""
    venue = venue or create_venue_broker(spec, clock=clock)
    if live:
        return venue
    return PaperBroker(
        spec,
        venue,
        starting_usd=paper_balance_usd,
        asset_class=venue.asset_class,
        clock=clock,
    )


__all__ = ["VENUES", "create_trading_broker", "create_venue_broker"]
