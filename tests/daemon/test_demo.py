"""The no-keys demo trades: its accounts, through the real wiring, on a fake wall clock.

Each test builds the demo's brokers (``demo_factories``), the venue they share
(``build_hub``: the synthetic market, read once per candle) and the real ``AccountTrader``
of each account (``make_trader``, on the factories' ``market_clock``), then runs one
cycle per account every ``CYCLE_SECONDS`` of fake wall time, so minutes of the demo take
a second or two.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from bot.brokers.paper.synthetic import SyntheticMarket
from bot.config.settings import load_settings
from bot.daemon.demo import (
    CYCLE_SECONDS,
    FAULTY_ACCOUNT,
    MARKET_SHAPE,
    MARKET_SPEED,
    SCENE_START,
    SYMBOLS,
    TIMEOUTS_FOR_SECONDS,
    FastClock,
    demo_factories,
    demo_settings,
    demo_specs,
)
from bot.daemon.wiring import build_hub, make_trader
from bot.engine.risk import GlobalPositionCap
from bot.engine.trader import AccountTrader, CycleResult
from bot.errors import SimulatedAuthError
from bot.isolation.manager import AccountIsolationManager
from bot.store.writer import PositionRecord, Store, db_path, prepare_database
from nija_testkit.clock import DEFAULT_WALL, FakeClock

HEALTHY = ("platform/platform/PAPER", "user/alice/PAPER")


@dataclass
class Account:
    trader: AccountTrader
    store: Store
    cycles: list[tuple[float, CycleResult]] = field(default_factory=list)  # (demo s, result)

    def opened(self) -> list[PositionRecord]:
        return self.store.open_positions() + self.store.closed_positions_since(0.0)

    def closed(self) -> list[PositionRecord]:
        return self.store.closed_positions_since(0.0)


@dataclass
class Demo:
    clock: FakeClock
    started: float  # fake wall time when the demo's factories were built
    accounts: dict[str, Account]

    def run(self, seconds: float) -> None:
        """Cycle every account every CYCLE_SECONDS until ``seconds`` of demo time."""
        while self.elapsed() < seconds:
            for acct in self.accounts.values():
                acct.cycles.append((self.elapsed(), acct.trader.run_cycle()))
            self.clock.advance(CYCLE_SECONDS)

    def elapsed(self) -> float:
        return self.clock.wall() - self.started

    def at(self, market_time: float) -> float:
        """Seconds of demo (wall) time at which the market's clock read ``market_time``."""
        return (market_time - self.started) / MARKET_SPEED


@contextmanager
def demo(tmp_path, wall_start: float = DEFAULT_WALL + 12_345.678) -> Iterator[Demo]:
    """The demo's accounts (bob's too) with their own stores in one database under tmp_path."""
    settings = demo_settings(load_settings({"NIJA_DATA_DIR": str(tmp_path)}))
    clock = FakeClock(wall_start=wall_start)
    factories = demo_factories(settings, clock=clock)
    isolation = AccountIsolationManager(clock=clock)
    cap = GlobalPositionCap(settings.max_total_positions)
    db = db_path(tmp_path, settings.mode)
    prepare_database(db)
    accounts: dict[str, Account] = {}
    specs = demo_specs(settings)
    hub = build_hub(settings, specs, factories, clock)
    try:
        for spec in specs:
            key = spec.account.key
            store = Store(db, key, clock=clock)
            venue = hub.get(spec.account.broker)
            trader = make_trader(
                spec,
                settings,
                factories.trading(spec, venue.market),
                store,
                isolation,
                cap,
                clock=factories.market_clock,
                venue=venue,
            )
            accounts[key] = Account(trader, store)
        yield Demo(clock, wall_start, accounts)
    finally:
        for acct in accounts.values():
            acct.store.close()
        hub.close()


def test_each_healthy_account_enters_in_the_first_minute_and_exits_in_the_second(tmp_path):
    with demo(tmp_path) as d:
        d.run(120)
        for key in HEALTHY:
            acct = d.accounts[key]
            first_entry = min(d.at(p.opened_at) for p in acct.opened())
            assert first_entry <= 60, key
            closed = acct.closed()
            assert closed, f"{key} closed no position in two minutes"
            assert min(d.at(p.closed_at) for p in closed) <= 120, key
            assert all(p.realized_pnl_usd not in (None, 0.0) for p in closed), key
            # The cycle results show it too: orders placed, and a position held for a while.
            assert sum(r.orders_placed for _, r in acct.cycles) >= 2 * len(closed)
            assert any(r.positions_open for _, r in acct.cycles)
            assert all(r.ok for _, r in acct.cycles), key
        # Bob's faults keep him from trading; they never reach the others (checked above).
        assert any(not r.ok for _, r in d.accounts[FAULTY_ACCOUNT].cycles)


def test_the_demo_keeps_trading_wins_and_losses_on_every_symbol(tmp_path):
    with demo(tmp_path) as d:
        d.run(15 * 60)  # 15 minutes: longer than one period of the market's shape
        acct = d.accounts["platform/platform/PAPER"]
        closed = acct.closed()
        entries = sorted(d.at(p.opened_at) for p in acct.opened())
        assert len(closed) >= 10
        assert {p.symbol for p in closed} == {"BTC/USD", "ETH/USD", "SOL/USD"}
        assert {p.close_reason for p in closed} >= {"target hit", "stop hit"}
        assert any(p.realized_pnl_usd > 0 for p in closed)
        assert any(p.realized_pnl_usd < 0 for p in closed)
        # Never a long silence: a new entry at least every 3 minutes, to the end.
        gaps = [b - a for a, b in zip([0.0, *entries], [*entries, d.elapsed()], strict=True)]
        assert max(gaps) <= 180, gaps


def test_the_story_does_not_depend_on_when_the_demo_starts(tmp_path):
    stories = []
    for i, wall_start in enumerate((DEFAULT_WALL, DEFAULT_WALL + 86_400 * 45 + 1_234.5)):
        with demo(tmp_path / str(i), wall_start) as d:
            d.run(120)
            acct = d.accounts["user/alice/PAPER"]
            stories.append(
                [
                    (p.symbol, round(d.at(p.opened_at)), p.close_reason, round(p.entry_price, 6))
                    for p in acct.opened()
                ]
            )
    assert stories[0] and stories[0] == stories[1]


def test_a_cycle_without_entry_says_why_and_one_with_an_entry_does_not(tmp_path):
    with demo(tmp_path) as d:
        d.run(120)
        results = [r for _, r in d.accounts["user/alice/PAPER"].cycles]
    took_entry = [r for r in results if r.positions_open and r.no_signal is None]
    no_entry = [r for r in results if r.no_signal is not None]
    assert took_entry and no_entry
    for r in no_entry:
        symbol, _, reason = r.no_signal.partition(" ")
        assert symbol in ("BTC/USD", "ETH/USD", "SOL/USD") and reason, r.no_signal
        assert len(r.no_signal) <= 40, r.no_signal
    assert results[0].orders_placed == 0 and results[0].no_signal is not None
    reasons = {r.no_signal.partition(" ")[2] for r in no_entry}
    known = ("ema not stacked", "adx ", "rsi ", "close below ema21", "volume low")
    assert all(reason.startswith(known) for reason in reasons), reasons


@pytest.mark.parametrize("seconds", [0.0, 30.0])
def test_the_demo_market_runs_on_its_own_fast_clock(tmp_path, seconds):
    settings = demo_settings(load_settings({"NIJA_DATA_DIR": str(tmp_path)}))
    clock = FakeClock()
    factories = demo_factories(settings, clock=clock)
    clock.advance(seconds)
    assert factories.market_clock.wall() == pytest.approx(DEFAULT_WALL + MARKET_SPEED * seconds)
    specs = demo_specs(settings)
    candles = factories.public(specs).fetch_candles("BTC/USD", "5m", 3)
    # The newest candle is the one forming at the market's time, not the wall clock's.
    assert candles.timestamp_ms[-1] / 1000 <= factories.market_clock.wall()
    assert factories.market_clock.wall() < candles.timestamp_ms[-1] / 1000 + 300


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
    market = build_hub(settings, list(specs.values()), factories, clock).get("PAPER").market
    alice = factories.trading(specs["user/alice/PAPER"], market)
    bob = factories.trading(specs[FAULTY_ACCOUNT], market)
    clock.advance(5)
    scene = SyntheticMarket(SYMBOLS, seed=7, shape=MARKET_SHAPE, time_shift=SCENE_START - wall0)
    expected = scene.price_at("BTC/USD", wall0 + 5 * MARKET_SPEED)
    assert alice.fetch_ticker("BTC/USD").last == pytest.approx(expected, rel=1e-12)
    # The faulty account's schedule is in the given clock's seconds, not the market's.
    clock.advance(TIMEOUTS_FOR_SECONDS - 5)
    with pytest.raises(SimulatedAuthError):
        bob.fetch_balance()
