"""Build the broker objects: an account's adapter, its trading broker, a venue's data client.

In paper mode (the default) an account's orders go to the paper engine over the venue's
shared market data: nothing is ever sent to a venue's order endpoint. The venue's public
data comes from one client per venue (``create_public_broker``), built without
credentials where the venue serves market data without a key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from bot.brokers import venues
from bot.brokers.base import Broker
from bot.brokers.budget import Budgets
from bot.brokers.paper.broker import MarketData, PaperBroker
from bot.clock import SYSTEM_CLOCK, Clock
from bot.errors import ConfigError
from bot.model import AccountRef, BrokerSpec, Credentials

# The account a venue's shared data client is built for: it owns no funds and no key
# (except Alpaca's, whose data API needs one: the first account's).
PUBLIC_ACCOUNT = ("venue", "public")


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


def public_spec(specs: Sequence[BrokerSpec]) -> BrokerSpec:
    """The spec of one venue's shared data client, from that venue's accounts (in order):
    every symbol any of them trades, the first one's URLs and timeout, and no credentials
    unless the registry says the venue's data API needs a key (then the first account's)."""
    if not specs:
        raise ValueError("a venue's data client needs at least one account of that venue")
    first = specs[0]
    name = first.account.broker
    if any(s.account.broker != name for s in specs):
        raise ValueError(f"the accounts of one venue only ({name})")
    needs_key = venues.venue(name).data_needs_key
    symbols = tuple(dict.fromkeys(sym for s in specs for sym in s.symbols))
    return dataclasses.replace(
        first,
        account=AccountRef(*PUBLIC_ACCOUNT, name),
        credentials=first.credentials if needs_key else Credentials(),
        symbols=symbols,
    )


def create_public_broker(
    specs: Sequence[BrokerSpec], *, clock: Clock = SYSTEM_CLOCK, budgets: Budgets | None = None
) -> Broker:
    """The venue's shared market-data client (``public_spec``); it touches no network until
    first used. Its requests spend ``budgets`` (the venue's public one)."""
    return create_venue_broker(public_spec(specs), clock=clock, budgets=budgets)


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
    market: MarketData | None = None,
) -> Broker:
    """The broker an account trades through: the venue itself (``venue``, the account's own
    client, built here when None) when ``live``, else paper fills over ``market``: the
    venue's shared market data (``bot.venue.market.VenueMarket``), or when None the
    account's own client's."""
    venue = venue or create_venue_broker(spec, clock=clock)
    if live:
        return venue
    return PaperBroker(
        spec,
        market or venue,
        starting_usd=paper_balance_usd,
        asset_class=venues.venue(spec.account.broker).asset_class,
        clock=clock,
    )


__all__ = [
    "create_public_broker",
    "create_trading_broker",
    "create_venue_broker",
    "load_adapters",
    "public_spec",
]
