"""The crash-restart market driver: what the daemon's accounts would decide on its candles.

Each served series is read as the venue layer reads it (a ``CandleSnapshot`` of the
emulator's answer) and handed to the default strategy, on a fake wall clock.
"""

from __future__ import annotations

from bot.model import Candles
from bot.strategy.base import Intent, PositionView
from bot.strategy.trend_pullback import get_strategy
from bot.venue.snapshot import CandleSnapshot
from nija_testkit.emulator.core import Market
from nija_testkit.reliability.crash_market import CandleDriver

T0 = 1_800_000_000 // 60 * 60 + 20.0  # 20 s into a minute
TICKERS = ("BTC", "ETH", "SOL")
STRATEGY = get_strategy()


class World:
    def __init__(self) -> None:
        self.now = T0
        self.market = Market({f"{t}/USD": 100.0 for t in TICKERS})
        self.driver = CandleDriver(self.market, TICKERS, 60, wall=lambda: self.now)

    def snapshot(self, ticker: str) -> CandleSnapshot:
        rows = self.market.candles(f"{ticker}/USD", 60, 201)
        return CandleSnapshot.of(Candles.from_rows(rows), f"{ticker}/USD", "1m", self.now + 2)

    def decide(self, ticker: str, position: PositionView | None = None) -> Intent | None:
        snap = self.snapshot(ticker)
        assert snap.complete and not snap.stale(self.now + 30), snap  # fresh: traded on
        return STRATEGY.decide(f"{ticker}/USD", snap.candles, position, self.now + 2)


def _held(entry: Intent, opened_at: float) -> PositionView:
    assert entry.stop is not None
    return PositionView(
        entry.symbol, 1.0, entry.price, entry.stop, entry.target, entry.price - entry.stop,
        entry.price, opened_at,
    )  # fmt: skip


def test_quiet_series_are_fresh_and_neither_enter_nor_exit():
    world = World()
    for ticker in TICKERS:
        intent = world.decide(ticker)
        assert intent is None or intent.kind != "enter"


def test_at_every_close_an_account_enters_or_exits_and_each_entry_exits_within_two_closes():
    world = World()
    world.driver.activate()
    held: dict[str, tuple[Intent, int]] = {}  # one account's positions: entry, close
    intent_ids, exits = set(), 0
    for close in range(7):
        world.now = T0 + 60 * close
        world.driver.tick()
        acted = 0
        for ticker in TICKERS:
            if ticker in held:
                entry, at = held[ticker]
                intent = world.decide(ticker, _held(entry, T0 + 60 * at))
                if intent is not None and intent.kind == "exit":
                    assert close - at in (1, 2)  # its target is hit one or two closes on
                    del held[ticker]
                    exits, acted = exits + 1, acted + 1
                else:
                    assert intent is None or intent.kind == "adjust", intent
                    assert close - at < 2, (ticker, close, at)
                continue
            intent = world.decide(ticker)  # an entry, or nothing at the symbol's exit turn
            if intent is not None:
                assert intent.kind == "enter", intent
                held[ticker] = (intent, close)
                intent_ids.add(intent.intent_id)
                acted += 1
        assert acted >= 1, close
    assert exits >= 5 and len(intent_ids) == exits + len(held)  # every entry a new intent


def test_a_switch_to_quiet_serves_quiet_data_at_once_and_at_later_closes():
    world = World()
    world.driver.activate()
    ticker, entry = next((t, i) for t in TICKERS if (i := world.decide(t)) is not None)
    assert entry.kind == "enter"
    world.driver.quiet()
    for close in (0, 1, 2):  # whatever turn the symbol would be at: held, not sold
        world.now = T0 + 60 * close
        world.driver.tick()
        intent = world.decide(ticker, _held(entry, T0))
        assert intent is None or intent.kind == "adjust", intent
        for other in TICKERS:
            intent = world.decide(other)
            assert intent is None or intent.kind != "enter", (other, intent)
