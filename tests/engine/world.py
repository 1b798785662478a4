"""One account's world for the engine's tests: the Kraken emulator's accounts (alice, bob)
with crafted candles on which the default strategy's entry fires at a known candle, a fake
clock just after it, an isolation manager and a database; ``World.trader`` builds an
account's real trader over real ccxt (shared by the trader's tests and the ones built on
them: fees in the coin bought, partial exits, the venue gate, fencing).
"""

from __future__ import annotations

from pathlib import Path

from bot.brokers.factory import create_public_broker, create_trading_broker
from bot.engine.orders import client_order_id
from bot.engine.risk import GlobalPositionCap, RiskManager
from bot.engine.trader import AccountTrader
from bot.isolation.manager import AccountIsolationManager
from bot.model import AccountRef, BrokerSpec, Credentials
from bot.store.backend import Database
from bot.store.sqlite import SqliteDatabase
from bot.store.writer import Store
from bot.strategy.trend_pullback import get_strategy
from bot.venue.hub import Venue
from bot.venue.market import VenueMarket
from nija_testkit import candles as cs
from nija_testkit.candles import rows
from nija_testkit.clock import FakeClock
from nija_testkit.emulator.kraken import KrakenVenue
from nija_testkit.emulator.server import EmulatorServer

KEYS = {"alice": ("FAKE-KRAKEN-KEY-ALICE-01", "RkFLRUFMSUNFU0VDUkVUMDFGQUtFQUxJQ0U="),
        "bob": ("FAKE-KRAKEN-KEY-BOB-0002", "RkFLRUJPQlNFQ1JFVDAyRkFLRUJPQlNFQ1I=")}  # fmt: skip
SYMBOLS = ("BTC/USD", "ETH/USD")
SIGNAL = cs.uptrend_with_pullback()  # the entry fires on its last candle
NOW = SIGNAL.timestamp_ms[-1] / 1000 + 300  # just after that candle closed


class World:
    """A fresh venue state, clock, isolation manager and database for one test."""

    def __init__(self, server: EmulatorServer, tmp_path: Path, db: Database | None = None) -> None:
        self.server = server
        venue: KrakenVenue = server.venue
        self.market = venue.market
        self.ledgers = {
            name: venue.add_account(key, secret, {"USD": 10_000.0})
            for name, (key, secret) in KEYS.items()
        }
        self.market.set_candles("BTC/USD", rows(SIGNAL))
        self.market.set_candles("ETH/USD", rows(cs.flat(price=2_000.0)))
        self.clock = FakeClock(wall_start=NOW)
        self.isolation = AccountIsolationManager(clock=self.clock)
        self.db = db or SqliteDatabase(tmp_path / "nija-live.db")
        self.cap = GlobalPositionCap(None)
        self.stores: list[Store] = []
        self.venue = self._venue()

    def set_clock(self, clock: FakeClock) -> None:
        """Start over at another time: a new clock, the venue's data fetched anew."""
        self.venue.market.close()
        self.clock = clock
        self.venue = self._venue()

    def _venue(self) -> Venue:
        # The venue's shared data; the emulator's candles are final at their close.
        public = create_public_broker([self.spec()], clock=self.clock)
        return Venue("KRAKEN", VenueMarket("KRAKEN", public, clock=self.clock, settle_seconds=0.0))

    def spec(self, who: str = "alice", timeout: float = 2.0) -> BrokerSpec:
        key, secret = KEYS[who]
        return BrokerSpec(
            AccountRef("user", who, "KRAKEN"),
            Credentials(key, secret),
            symbols=SYMBOLS,
            base_url=self.server.url,
            timeout_seconds=timeout,
            rate_limit=False,
        )

    def trader(self, who: str = "alice", *, live: bool = True, timeout: float = 2.0, **kw):
        spec = self.spec(who, timeout)
        broker = create_trading_broker(
            spec, live=live, paper_balance_usd=10_000.0, clock=self.clock, market=self.venue.market
        )
        store = Store(self.db, f"user/{who}/KRAKEN", clock=self.clock, **kw)
        self.stores.append(store)
        return AccountTrader(
            AccountRef("user", who, "KRAKEN"),
            broker,
            get_strategy("default"),
            RiskManager(),
            store,
            self.isolation,
            self.clock,
            global_cap=self.cap,
            venue=self.venue,
            symbols=SYMBOLS,
        )

    def venue_orders(self, who: str = "alice"):
        return self.ledgers[who].all_orders()

    def close(self) -> None:
        for s in self.stores:
            s.close()
        self.venue.market.close()


def entry_id(who: str = "alice") -> str:
    intent = get_strategy("default").decide("BTC/USD", SIGNAL, None, NOW)
    return client_order_id(f"user/{who}/KRAKEN", "BTC/USD", "buy", intent.intent_id)
