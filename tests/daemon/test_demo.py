"""The demo's wiring: a synthetic market that runs 60 times faster than the given clock."""

from __future__ import annotations

import pytest

from bot.brokers.paper.synthetic import SyntheticMarket
from bot.config.settings import load_settings
from bot.daemon.demo import (
    FAULTY_ACCOUNT,
    MARKET_SPEED,
    SYMBOLS,
    TIMEOUTS_FOR_SECONDS,
    FastClock,
    demo_factories,
    demo_specs,
)
from bot.errors import SimulatedAuthError
from nija_testkit.clock import FakeClock


def test_a_fast_clock_runs_speed_times_faster_from_its_start():
    base = FakeClock()
    fast = FastClock(base, 60.0)
    wall0, mono0 = base.wall(), base.monotonic()
    assert (fast.wall(), fast.monotonic()) == (wall0, mono0)
    base.advance(5)
    assert fast.wall() == wall0 + 300 and fast.monotonic() == mono0 + 300
    assert fast.utc_now().timestamp() == fast.wall()


def test_the_demo_market_runs_fast_while_the_brokers_keep_the_given_clock():
    clock = FakeClock()
    wall0 = clock.wall()
    settings = load_settings({})
    factories = demo_factories(settings, seed=7, clock=clock)
    specs = {s.account.key: s for s in demo_specs(settings)}
    alice = factories.trading(specs["user/alice/PAPER"])
    bob = factories.trading(specs[FAULTY_ACCOUNT])
    clock.advance(5)
    market_now = wall0 + 5 * MARKET_SPEED
    expected = SyntheticMarket(SYMBOLS, seed=7).price_at("BTC/USD", market_now)
    assert alice.fetch_ticker("BTC/USD").last == pytest.approx(expected, rel=1e-12)
    # The faulty account's schedule is in the given clock's seconds, not the market's.
    clock.advance(TIMEOUTS_FOR_SECONDS - 5)
    with pytest.raises(SimulatedAuthError):
        bob.fetch_balance()
