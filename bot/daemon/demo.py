"""The demo that ``./start.sh`` runs when no broker credentials are set.

Three simulated accounts trade the synthetic market on short cycles. One of them,
``user/bob/PAPER``, is given faults: intermittent timeouts at first, then its
credentials "expire". Within a minute nija.log and check_independent_broker_status.py
show that account failing and quarantined while the other two keep trading.

The market runs ``MARKET_SPEED`` times faster than the wall clock (a 5-minute candle
every 5 s), and the accounts' traders run on its time. Whenever the demo starts, it
replays the same scene: the synthetic path from ``SCENE_START`` on, shaped by
``MARKET_SHAPE`` (rallies with regular pullbacks), so that the real strategy with its
real settings enters within the first minute, exits within the second, and goes on
trading. Only the path is replayed: the market's clock starts at the wall clock's now
(and then runs ahead of it), so orders and positions carry today's times, and a second
run's orders never take the client ids of an earlier run's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from bot.brokers.base import Broker
from bot.brokers.paper.broker import PaperBroker
from bot.brokers.paper.synthetic import SyntheticMarket, TrendShape
from bot.brokers.venues import PAPER
from bot.clock import SYSTEM_CLOCK, Clock
from bot.config.settings import Settings
from bot.daemon.wiring import BrokerFactories
from bot.model import AccountRef, BrokerSpec
from bot.venue.market import VenueMarket

DEMO_ACCOUNTS = (("platform", "platform"), ("user", "alice"), ("user", "bob"))
FAULTY_ACCOUNT = f"user/bob/{PAPER.name}"
SYMBOLS = PAPER.default_symbols
CYCLE_SECONDS = 5.0
# The synthetic market runs 60× faster than the wall clock: a 5-minute candle every 5 s.
MARKET_SPEED = 60.0
# The scene: 2026-01-01T03:05Z on seed 7's path, 15 s before the first entry (see the
# module docstring; tests/daemon/test_demo.py holds the story to it).
SCENE_START = 1_767_236_700.0
MARKET_SHAPE = TrendShape()
TIMEOUTS_FOR_SECONDS = 25.0  # then the credentials stop working
TIMEOUT_PROBABILITY = 0.5


def demo_settings(settings: Settings) -> Settings:
    """Short cycles and a short call timeout, so the demo shows its story in a minute."""
    return settings.model_copy(
        update={
            "cycle_seconds": CYCLE_SECONDS,
            "broker_cycle_seconds": (),
            "call_timeout_seconds": min(settings.call_timeout_seconds, 3.0),
            "funded_recheck_seconds": min(settings.funded_recheck_seconds, 30.0),
            "status_log_seconds": min(settings.status_log_seconds, 30.0),
            "cb_timeout_seconds": min(settings.cb_timeout_seconds, 20.0),
        }
    )


def demo_specs(settings: Settings) -> list[BrokerSpec]:
    return [
        BrokerSpec(
            AccountRef(kind, ident, PAPER.name),
            symbols=SYMBOLS,
            timeout_seconds=settings.call_timeout_seconds,
        )
        for kind, ident in DEMO_ACCOUNTS
    ]


class FastClock:
    """A ``Clock`` that runs ``speed`` times faster than ``base`` from the moment it is made."""

    def __init__(self, base: Clock, speed: float) -> None:
        self._base = base
        self.speed = speed
        self._wall0 = base.wall()
        self._mono0 = base.monotonic()

    def wall(self) -> float:
        return self._wall0 + (self._base.wall() - self._wall0) * self.speed

    def monotonic(self) -> float:
        return self._mono0 + (self._base.monotonic() - self._mono0) * self.speed

    def utc_now(self) -> datetime:
        return datetime.fromtimestamp(self.wall(), UTC)


def demo_factories(
    settings: Settings, seed: int = 7, clock: Clock = SYSTEM_CLOCK
) -> BrokerFactories:
    """Paper brokers over a sped-up synthetic market; the faulty account gets its faults.

    The synthetic market is the venue's public data, shared by every account (through its
    ``VenueMarket``); the faults are on the faulty account's own calls. The brokers' fills
    and fault schedule keep ``clock``; the market and the traders (``market_clock``) run
    ``MARKET_SPEED`` times faster from now.
    """
    market_clock = FastClock(clock, MARKET_SPEED)
    time_shift = SCENE_START - market_clock.wall()
    synthetic = SyntheticMarket(
        SYMBOLS, seed=seed, clock=market_clock, shape=MARKET_SHAPE, time_shift=time_shift
    )

    def paper(spec: BrokerSpec) -> PaperBroker:
        return PaperBroker(spec, synthetic, starting_usd=settings.paper_balance_usd, clock=clock)

    def trading(spec: BrokerSpec, market: VenueMarket) -> Broker:
        broker = PaperBroker(spec, market, starting_usd=settings.paper_balance_usd, clock=clock)
        if spec.account.key == FAULTY_ACCOUNT:
            broker.faults.inject(
                "*", "timeout", probability=TIMEOUT_PROBABILITY, stop=TIMEOUTS_FOR_SECONDS
            )
            broker.faults.inject("*", "auth", start=TIMEOUTS_FOR_SECONDS)
        return broker

    def public(specs: Sequence[BrokerSpec]) -> SyntheticMarket:
        return synthetic

    return BrokerFactories(
        venue=paper,
        trading=trading,
        public=public,
        market_clock=market_clock,
        settle_seconds=0.0,  # a synthetic candle is final the moment it closes
    )
