"""Build the broker object for an account spec: the venue's adapter, wrapped for paper mode.

In paper mode (the default) the venue adapter still supplies real balances and
market data where credentials exist, but orders go to the paper engine: nothing
is ever sent to a venue's order endpoint.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.brokers import venues
from bot.brokers.base import Broker
from bot.brokers.budget import Budgets
from bot.brokers.paper.broker import PaperBroker
from bot.clock import SYSTEM_CLOCK, Clock
from bot.errors import ConfigError
from bot.model import BrokerSpec


def create_venue_broker(
    spec: BrokerSpec, *, clock: Clock = SYSTEM_CLOCK, budgets: Budgets | None = None
) -> Broker:
    """The adapter the venue registry gives ``spec.account.broker``; it touches no network
    until first used. Its requests spend ``budgets`` (None: not throttled; the daemon's
    ``bot.daemon.clients.VenueClients`` always passes them)."""
    try:
        entry = venues.venue(spec.account.broker)
    except ConfigError as exc:
        raise ConfigError(f"{spec.account.key}: {exc}") from None
    return entry.build(spec, clock=clock, budgets=budgets)


def load_adapters(specs: Iterable[BrokerSpec]) -> None:
    """Import the adapters (and SDKs) of these accounts' venues now: a first import takes
    up to a second on a busy machine, which must not count against a timed balance check."""
    for name in sorted({spec.account.broker for spec in specs}):
        venues.venue(name).adapter()


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


__all__ = ["create_trading_broker", "create_venue_broker", "load_adapters"]
