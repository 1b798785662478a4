"""One account that trades through the paper broker with a buy's fee taken in the coin
bought (Binance's and OKX's way), over the Kraken emulator's market data with Binance-like
rules for BTC/USD; ``Desk.round_trip`` enters on a day's signal candle and exits at its
stop (shared by the fee and the partial-exit tests)."""

from __future__ import annotations

import dataclasses

from bot.brokers.ccxt.broker import CcxtBroker
from bot.brokers.paper.broker import PaperBroker
from bot.brokers.paper.wallet import FeeCurrency
from bot.brokers.venues import DuplicateClientIds
from bot.engine.risk import RiskManager
from bot.engine.trader import AccountTrader
from bot.model import AccountRef, Candles, MarketRules
from bot.store.writer import Store
from bot.strategy.trend_pullback import get_strategy
from nija_testkit import candles as cs
from nija_testkit.candles import rows
from tests.engine.world import NOW, SIGNAL, World

DAY = 86_400
STEP = 0.001
RULES = MarketRules("BTC/USD", "BTC", "USD", STEP, 0.001, 5.0, 0.01)


class BinanceLikeData:
    """The venue's public data (the real adapter) with Binance-like rules for its symbols."""

    def __init__(self, source: CcxtBroker) -> None:
        self.source = source

    def symbols(self) -> list[str]:
        return self.source.symbols()

    def fetch_candles(self, symbol: str, timeframe: str = "5m", limit: int = 200) -> Candles:
        return self.source.fetch_candles(symbol, timeframe, limit)

    def fetch_ticker(self, symbol: str):
        return self.source.fetch_ticker(symbol)

    def market_rules(self, symbol: str) -> MarketRules:
        return dataclasses.replace(RULES, symbol=symbol, base=symbol.partition("/")[0])


class Desk:
    """One account trading with fees in the base through the paper broker."""

    def __init__(self, world: World) -> None:
        spec = world.spec()
        self.world = world
        self.broker = PaperBroker(
            spec,
            BinanceLikeData(CcxtBroker(spec)),
            clock=world.clock,
            slippage_bps=0.0,
            fee_currency=FeeCurrency.RECEIVED,
            duplicate_client_ids=DuplicateClientIds.OPEN_ONLY,
        )
        self.store = Store(world.db, "user/alice/KRAKEN", clock=world.clock)
        world.stores.append(self.store)
        self.trader = AccountTrader(
            AccountRef("user", "alice", "KRAKEN"),
            self.broker,
            get_strategy("default"),
            RiskManager(),
            self.store,
            world.isolation,
            world.clock,
        )

    def held(self) -> float:
        return self.broker.fetch_balance().cash.get("BTC", 0.0)

    def round_trip(self, day: int) -> tuple:
        """Enter on day ``day``'s signal candle, then exit at its stop: both cycles' results."""
        shift = day * DAY * 1000
        signal = dataclasses.replace(SIGNAL, timestamp_ms=SIGNAL.timestamp_ms + shift)
        self.world.clock.set_wall(NOW + day * DAY)
        self.world.market.set_candles("BTC/USD", rows(signal))
        entered = self.trader.run_cycle()
        (pos,) = self.store.open_positions()
        stop_hit = cs.from_closes([*SIGNAL.close[:-1], pos.stop * 0.99], first_open=100.0)
        stop_hit = dataclasses.replace(stop_hit, timestamp_ms=signal.timestamp_ms)
        self.world.market.set_candles("BTC/USD", rows(stop_hit))
        self.world.clock.advance(300)
        exited = self.trader.run_cycle()
        return entered, exited
