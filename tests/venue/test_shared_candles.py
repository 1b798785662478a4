"""N accounts on one venue, wired as the daemon wires them, share one fetch per candle, and
live accounts holding a coin share one ticker per valuation age to value it.

Six Kraken accounts on the Kraken emulator through the real ccxt adapter:
``default_factories`` and ``build_hub`` give them one ``VenueMarket`` over a client without
credentials, ``make_trader`` their own traders. Each round, every account runs a cycle,
all six at once in their own threads; the emulator counts what reached it.
"""

from __future__ import annotations

import threading

import pytest

from bot.config.settings import load_settings
from bot.daemon.wiring import build_hub, default_factories, make_trader
from bot.engine.risk import GlobalPositionCap
from bot.engine.trader import CycleResult
from bot.isolation.manager import AccountIsolationManager
from bot.model import AccountRef, BrokerSpec, Credentials
from bot.store.writer import Store, db_path, prepare_database
from nija_testkit import candles as cs
from nija_testkit.candles import rows
from nija_testkit.clock import FakeClock
from nija_testkit.emulator.server import Fault

ACCOUNTS = 6
SYMBOLS = ("BTC/USD", "ETH/USD")
CANDLES = 3
SIGNAL = cs.uptrend_with_pullback()
CLOSED = SIGNAL.timestamp_ms[-1] / 1000 + 300  # the signal candle's close


def kraken_spec(i: int, url: str) -> BrokerSpec:
    return BrokerSpec(
        AccountRef("user", f"u{i}", "KRAKEN"),
        Credentials(f"FAKE-KRAKEN-KEY-SHARED-{i:02d}", "RkFLRVNIQVJFRFNFQ1JFVA=="),
        symbols=SYMBOLS,
        base_url=url,
        timeout_seconds=3.0,
        rate_limit=False,
    )


class Accounts:
    """Each account in its own thread (as the daemon runs them: its store belongs to it),
    running one cycle per round, all at once, while the test moves the clock between rounds."""

    def __init__(
        self, server, tmp_path, rounds: int, *, mode: str = "paper", balances=None
    ) -> None:
        self.server = server
        specs = [kraken_spec(i, server.url) for i in range(ACCOUNTS)]
        for spec in specs:
            creds = spec.credentials
            server.venue.add_account(creds.api_key, creds.api_secret, balances)
        self.settings = load_settings(
            {"NIJA_DATA_DIR": str(tmp_path), "NIJA_CALL_TIMEOUT_SECONDS": "3", "NIJA_MODE": mode}
        )
        self.clock = FakeClock(wall_start=CLOSED + 30)
        self.factories = default_factories(self.settings, self.clock)
        self.hub = build_hub(self.settings, specs, self.factories, self.clock)
        self.db = db_path(tmp_path, self.settings.mode)
        prepare_database(self.db)
        self.isolation = AccountIsolationManager(clock=self.clock)
        self.cap = GlobalPositionCap(None)
        self.rounds: list[list[CycleResult]] = [[] for _ in range(rounds)]
        self.held: list[int] = []
        self.go = threading.Barrier(ACCOUNTS + 1)  # the test thread starts each round...
        self.done = threading.Barrier(ACCOUNTS + 1)  # ...and waits for all of it
        self.threads = [
            threading.Thread(target=self._account, args=(s, rounds), daemon=True) for s in specs
        ]
        for t in self.threads:
            t.start()

    def _account(self, spec: BrokerSpec, rounds: int) -> None:
        venue = self.hub.get(spec.account.broker)
        broker = self.factories.trading(spec, venue.market)
        with Store(self.db, spec.account.key, clock=self.clock) as store:
            trader = make_trader(
                spec, self.settings, broker, store, self.isolation, self.cap,
                clock=self.clock, venue=venue,
            )  # fmt: skip
            for i in range(rounds):
                self.go.wait(30)
                self.rounds[i].append(trader.run_cycle())
                self.done.wait(30)
            self.held.append(len(store.open_positions()))

    def run_round(self) -> None:
        self.go.wait(30)
        self.done.wait(30)

    def close(self) -> None:
        for t in self.threads:
            t.join(30)
        self.hub.close()


def test_n_accounts_make_one_candle_request_per_symbol_per_candle(venue_server, tmp_path):
    server = venue_server("KRAKEN")
    accounts = Accounts(server, tmp_path, rounds=2 * CANDLES)
    clock, round_ = accounts.clock, 0
    try:
        for candle in range(CANDLES):
            later = candle * 300  # each candle's data as the venue publishes it then
            server.venue.market.set_candles("BTC/USD", rows(cs.later(SIGNAL, later)))
            flat = cs.later(cs.flat(price=2_000.0), later)
            server.venue.market.set_candles("ETH/USD", rows(flat))
            for _ in range(2):
                accounts.run_round()
                results = accounts.rounds[round_]
                assert len(results) == ACCOUNTS
                assert all(r.ok and r.errors == {} for r in results), results
                assert all("BTC/USD" in r.marks for r in results)
                round_ += 1
                clock.advance(60)
            clock.advance(180)  # the next candle has closed, and settled
            assert len(server.requests_to("candles")) == len(SYMBOLS) * (candle + 1)
    finally:
        accounts.close()
    candles = server.requests_to("candles")
    assert {r.params()["pair"] for r in candles} == {"XXBTZUSD", "XETHZUSD"}
    assert all("api-key" not in r.headers for r in candles)  # the venue's client has no key
    assert len(server.requests_to("markets")) == 1  # market metadata: once for the venue
    assert not [r for r in server.requests if r.path.startswith("/0/private/")]  # paper mode
    market = accounts.hub.get("KRAKEN").market
    assert market.requests_by_operation["candles"] == len(SYMBOLS) * CANDLES
    # Every account entered on the same signal, each with its own paper order.
    assert accounts.held == [1] * ACCOUNTS


class Health:
    """The venue's observer (its health, in the daemon): what it was told."""

    def __init__(self) -> None:
        self.failed: list[tuple[str, str]] = []

    def public_failed(self, error: BaseException, operation: str) -> None:
        self.failed.append((operation, type(error).__name__))

    def public_ok(self, operation: str) -> None:
        pass


def test_n_live_accounts_holding_a_coin_value_it_at_one_ticker_per_valuation_age(
    venue_server, tmp_path
):
    server = venue_server("KRAKEN")
    server.venue.market.set_candles("BTC/USD", rows(SIGNAL))  # BTC at 149
    server.venue.market.set_candles("ETH/USD", rows(cs.flat(price=2_000.0)))
    held = {"USD": 10_000.0, "BTC": 10.0}
    accounts = Accounts(server, tmp_path, rounds=5, mode="live", balances=held)
    market = accounts.hub.get("KRAKEN").market
    market.observer = health = Health()
    clock = accounts.clock
    assert market.valuation_age_seconds == 30.0
    try:
        for round_ in range(4):  # a cycle every 60 s, inside one candle
            accounts.run_round()
            results = accounts.rounds[round_]
            assert all(r.ok and r.errors == {} for r in results), results
            assert all(r.equity_usd == pytest.approx(10_000.0 + 1_490.0) for r in results)
            # 6 accounts valued BTC, in their balance and (first cycle) their positions:
            # one ticker for the venue, not one per account.
            assert len(server.requests_to("ticker")) == round_ + 1
            clock.advance(60)
        failing = Fault("status", status=502)
        server.inject("ticker", failing)
        accounts.run_round()
        server.remove_fault("ticker", failing)
    finally:
        accounts.close()
    tickers = server.requests_to("ticker")
    assert len(tickers) == 5  # the failed one too: once for the venue
    assert all("api-key" not in r.headers for r in tickers)  # the venue's keyless client
    assert len(server.requests_to("balance")) >= 5 * ACCOUNTS  # each account's own, keyed
    # The failed price was the venue's: told to its health once, charged to no account.
    assert health.failed == [("ticker", "NetworkFailure")]
    for r in accounts.rounds[4]:
        assert r.equity_usd is None  # unknown: never valued at 0
        assert any("equity unknown" in n for n in r.notes), r.notes
        assert r.errors == {}
    for key, status in accounts.isolation.get_all_account_statuses().items():
        assert status["total_failures"] == 0, key
        assert status["consecutive_failures"] == 0 and not status["circuit_open"], key
    assert accounts.held == [1] * ACCOUNTS  # each adopted the BTC it holds, and kept it
