"""What the accounts on one venue share, one ``Venue`` per venue in the process.

The daemon builds one ``VenueHub`` from every account spec at start and hands each
account's trader its venue (``hub.get(broker_name)``). A ``Venue`` holds the venue's
shared market data (``bot.venue.market.VenueMarket``); nothing an account owns (its key,
its client, its breaker, its orders) lives here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from bot.brokers.paper.broker import MarketData
from bot.clock import SYSTEM_CLOCK, Clock
from bot.errors import ConfigError, describe
from bot.model import BrokerSpec, Candles, Ticker
from bot.venue.market import VenueMarket

log = structlog.get_logger()

# Builds a venue's public-data client from its accounts' specs (in listing order).
SourceFactory = Callable[[Sequence[BrokerSpec]], MarketData]


@dataclass(frozen=True)
class Venue:
    """One venue as its accounts share it."""

    name: str  # the registry's name, e.g. KRAKEN
    market: VenueMarket


class VenueHub:
    """Every venue of the process's accounts, one ``Venue`` each."""

    def __init__(self, venues: Sequence[Venue] = ()) -> None:
        self._venues = {v.name: v for v in venues}

    @classmethod
    def build(
        cls,
        specs: Sequence[BrokerSpec],
        make_source: SourceFactory,
        *,
        clock: Clock = SYSTEM_CLOCK,
        **market_options: Any,
    ) -> VenueHub:
        """One ``Venue`` per venue name among ``specs``; ``market_options`` go to each
        ``VenueMarket`` (e.g. ``timeout_seconds``, ``settle_seconds``).

        Building a client touches no network. A venue whose client cannot be built (e.g.
        Alpaca's data key, taken from its first account, is unusable) still gets a
        ``Venue``: every fetch of its data fails, as the venue's failure.
        """
        groups: dict[str, list[BrokerSpec]] = {}
        for spec in specs:
            groups.setdefault(spec.account.broker, []).append(spec)
        venues = []
        for name, group in groups.items():
            try:
                source = make_source(group)
            except Exception as exc:  # the venue's data is unavailable, not the daemon
                log.error("venue_client_failed", venue=name, error=describe(exc))
                source = _Unavailable(name, exc)
            venues.append(Venue(name, VenueMarket(name, source, clock=clock, **market_options)))
        return cls(venues)

    def get(self, broker_name: str) -> Venue:
        """The venue of accounts of ``broker_name``."""
        found = self._venues.get(broker_name)
        if found is None:
            raise ConfigError(f"no venue {broker_name!r} in this process ({', '.join(self)})")
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._venues)

    def venues(self) -> list[Venue]:
        """Every venue, in the order of the accounts."""
        return list(self._venues.values())

    def close(self) -> None:
        """Release every venue's client."""
        for venue in self._venues.values():
            try:
                venue.market.close()
            except Exception as exc:  # closing one venue's sessions never stops the others'
                log.warning("venue_close_failed", venue=venue.name, error=describe(exc))


class _Unavailable:
    """The client of a venue whose client could not be built: every call raises why."""

    def __init__(self, name: str, error: Exception) -> None:
        self.name = name
        self.error = error

    def _fail(self) -> Any:
        # A new exception each time: re-raising one object would grow its traceback forever.
        why = describe(self.error)
        raise ConfigError(f"{self.name}'s market-data client could not be built: {why}")

    def fetch_candles(self, symbol: str, timeframe: str = "5m", limit: int = 200) -> Candles:
        return self._fail()

    def fetch_ticker(self, symbol: str) -> Ticker:
        return self._fail()

    def symbols(self) -> list[str]:
        return self._fail()
