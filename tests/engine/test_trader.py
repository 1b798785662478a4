"""One account's cycle, end to end: real ccxt over HTTP to the Kraken emulator, real SQLite.

Live mode sends real orders to the emulator; paper mode uses the paper engine over
the same venue's market data. Crafted candles (nija_testkit/candles.py) make the
default strategy's entry fire at a known candle. As in the daemon, the accounts share
the venue's market data (one ``VenueMarket`` over a client without credentials): new
candles are read once the clock has passed the next candle's close.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, datetime

import pytest
from structlog.testing import capture_logs

from bot.engine.orders import PlannedOrder
from bot.engine.risk import GlobalPositionCap
from bot.model import Side
from bot.store.writer import OrderRecord, Store, StoreError
from bot.strategy.trend_pullback import get_strategy
from nija_testkit import candles as cs
from nija_testkit.candles import rows
from nija_testkit.clock import FakeClock
from nija_testkit.diskfull import FullDiskConnection
from nija_testkit.emulator.server import Fault
from tests.engine.world import NOW, SIGNAL, World, entry_id


@pytest.fixture
def world(venue_server, tmp_path, database):
    """One test's world on the run's Kraken emulator, fresh, its store on each backend in
    turn (tests/conftest.py)."""
    w = World(venue_server("KRAKEN"), tmp_path, database)
    yield w
    w.close()


@pytest.fixture
def sqlite_world(venue_server, tmp_path):
    """The same world on SQLite alone, for SQLite's own behaviour (its busy lock)."""
    w = World(venue_server("KRAKEN"), tmp_path)
    yield w
    w.close()


# -- entries and exits --------------------------------------------------------------------


def test_an_entry_fires_and_opens_a_protected_position(world):
    result = world.trader().run_cycle()
    assert result.ok and result.orders_placed == 1 and result.positions_open == 1
    assert result.no_signal is None  # an entry was taken: nothing to explain
    (order,) = world.venue_orders()
    assert order.client_order_id == entry_id() and order.status == "filled"
    store = world.stores[0]
    rec = store.get_order(entry_id())
    assert rec.status == "filled" and rec.purpose == "entry"
    (pos,) = store.open_positions()
    assert pos.symbol == "BTC/USD" and pos.quantity == pytest.approx(order.amount)
    assert pos.stop < pos.entry_price < pos.target
    assert pos.target - pos.entry_price == pytest.approx(2 * (pos.entry_price - pos.stop))
    assert world.ledgers["alice"].balance("BTC") == pytest.approx(order.amount)


def test_a_cycle_is_stamped_in_wall_time_and_timed_in_monotonic_time(world, monkeypatch):
    trader = world.trader()
    balance = trader.broker.broker.fetch_balance

    def slow_balance_during_an_ntp_step():
        world.clock.advance(0.25)
        world.clock.set_wall(world.clock.wall() - 3600)  # the wall clock is stepped back
        return balance()

    monkeypatch.setattr(trader.broker.broker, "fetch_balance", slow_balance_during_an_ntp_step)
    result = trader.run_cycle()
    assert result.started_at == NOW
    assert result.duration_ms == pytest.approx(250.0)
    assert world.stores[0].last_cycles(1)[0].started_at == NOW


def test_no_signal_no_order(world):
    world.market.set_candles("BTC/USD", rows(cs.flat(price=100.0)))
    result = world.trader().run_cycle()
    assert result.ok and result.orders_placed == 0
    assert world.server.requests_to("create_order") == []
    # Both flat: whichever is nearer an entry (rounding decides), its EMAs are not stacked.
    assert result.no_signal in ("BTC/USD ema not stacked", "ETH/USD ema not stacked")


def test_no_signal_names_the_symbol_nearest_an_entry_and_every_symbol_held(world):
    world.market.set_candles("ETH/USD", rows(cs.uptrend_with_pullback(dip=2.0)))
    trader = world.trader()
    assert trader.run_cycle().no_signal is None  # BTC entered
    world.clock.advance(60)
    assert trader.run_cycle().no_signal == "ETH/USD rsi 67 no cross"
    world.market.set_candles("ETH/USD", rows(SIGNAL))
    world.clock.advance(240)  # the next close: the venue's candles are fetched again
    assert trader.run_cycle().no_signal is None  # ETH entered
    world.clock.advance(60)
    result = trader.run_cycle()
    assert result.positions_open == 2 and result.no_signal == "every symbol held"


def test_the_same_intent_is_never_sent_twice(world):
    trader = world.trader()
    intent = get_strategy("default").decide("BTC/USD", SIGNAL, None, NOW)
    plan = PlannedOrder(intent.intent_id, "BTC/USD", Side.BUY, 0.5, "entry", intent.stop)
    assert trader.desk.submit(plan) is not None
    assert trader.desk.submit(plan) is None
    assert len(world.server.requests_to("create_order")) == 1


def test_a_stop_hit_sells_and_closes_the_position_with_its_reason(world):
    trader = world.trader()
    trader.run_cycle()
    (pos,) = world.stores[0].open_positions()
    world.market.set_candles("BTC/USD", rows(cs.from_closes([*SIGNAL.close[:-1], pos.stop * 0.99])))
    world.clock.advance(300)
    result = trader.run_cycle()
    assert result.ok and result.orders_placed == 1
    assert world.stores[0].open_positions() == []
    (closed,) = world.stores[0].closed_positions_since(0)
    assert closed.close_reason == "stop hit" and closed.realized_pnl_usd < 0
    assert world.ledgers["alice"].balance("BTC") == pytest.approx(0.0, abs=1e-12)


# -- ambiguous outcomes --------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        Fault("hang", seconds=3, times=1, after=True),
        Fault("drop", times=1, after=True),
        Fault("status", 502, times=1, after=True),
        Fault("malformed_json", times=1, after=True),
    ],
    ids=["timeout", "dropped", "502", "garbled"],
)
def test_an_ambiguous_answer_is_looked_up_never_resent(world, fault):
    trader = world.trader(timeout=1.0)
    world.server.inject("create_order", fault)
    first = trader.run_cycle()
    assert not first.ok and world.stores[0].get_order(entry_id()).status == "unknown"
    world.clock.advance(300)
    second = trader.run_cycle()
    assert second.ok
    assert world.stores[0].get_order(entry_id()).status == "filled"
    assert len(world.server.requests_to("create_order")) == 1
    assert [o.client_order_id for o in world.venue_orders()] == [entry_id()]
    assert len(world.stores[0].open_positions()) == 1


def test_an_order_that_never_arrived_is_sent_once_after_the_venue_proves_it_absent(world):
    # Kraken's policy: two "no such order" answers, each 15 s after the send or the last one.
    trader = world.trader(timeout=1.0)
    world.server.inject("create_order", Fault("drop", times=1))  # lost before the venue saw it
    assert not trader.run_cycle().ok
    for advance in (10, 30, 10):  # 10 s: too early to count; 40 s: the first; 50 s: too soon
        world.clock.advance(advance)
        trader.run_cycle()
        assert world.stores[0].get_order(entry_id()).status == "unknown"
        assert len(world.server.requests_to("create_order")) == 1  # nothing sent again yet
    assert world.stores[0].get_order(entry_id()).absent_checks == 1
    world.clock.advance(10)
    assert trader.run_cycle().ok  # the second, 60 s on: absence proven; sent, same client id
    assert [o.client_order_id for o in world.venue_orders()] == [entry_id()]
    assert len(world.server.requests_to("create_order")) == 2
    assert world.stores[0].get_order(entry_id()).status == "filled"


def test_a_rejection_is_final_for_its_intent(world):
    trader = world.trader()
    world.server.inject("create_order", Fault("venue_error", code="insufficient_funds", times=1))
    result = trader.run_cycle()
    assert not result.ok and result.errors == {"balance_error": 1}
    rec = world.stores[0].get_order(entry_id())
    assert rec.status == "rejected" and "nsufficient" in rec.reason
    world.clock.advance(1)
    trader.run_cycle()  # the same candle, the same intent: not sent again
    assert len(world.server.requests_to("create_order")) == 1


# -- crash and restart ------------------------------------------------------------------------


def pending_entry(store: Store, clock: FakeClock) -> OrderRecord:
    """The row ``submit`` writes before sending, as a crash would leave it."""
    intent = get_strategy("default").decide("BTC/USD", SIGNAL, None, NOW)
    rec = OrderRecord(
        entry_id(), store.account_key, intent.intent_id, "BTC/USD", "buy", "market",
        0.5, None, None, "entry", created_at=clock.wall(), updated_at=clock.wall(),
        stop=intent.stop, target=intent.target, initial_risk=intent.price - intent.stop,
    )  # fmt: skip
    assert store.record_order(rec)
    return rec


def test_crash_between_stored_and_sent_ends_with_one_order(world):
    before = Store(world.db, "user/alice/KRAKEN", clock=world.clock)
    pending_entry(before, world.clock)
    before.close()
    world.clock.advance(20)
    trader = world.trader()  # the restarted process
    assert trader.run_cycle().ok and not trader.reconciled  # one "no such order": not proof
    assert trader.run_cycle().ok and world.venue_orders() == []  # the same moment: not counted
    world.clock.advance(15)
    assert trader.run_cycle().ok and trader.reconciled  # proven absent: sent now
    assert [o.client_order_id for o in world.venue_orders()] == [entry_id()]
    (pos,) = world.stores[0].open_positions()
    assert pos.entry_client_order_id == entry_id()


def test_crash_between_sent_and_acknowledged_ends_with_one_order(world):
    before = Store(world.db, "user/alice/KRAKEN", clock=world.clock)
    rec = pending_entry(before, world.clock)
    before.close()
    world.ledgers["alice"].place(
        "BTC/USD", "buy", "market", amount=0.5, client_order_id=rec.client_order_id
    )
    trader = world.trader()
    assert trader.run_cycle().ok
    assert world.server.requests_to("create_order") == []
    assert world.stores[0].get_order(rec.client_order_id).status == "filled"
    (pos,) = world.stores[0].open_positions()
    assert pos.quantity == pytest.approx(0.5) and pos.stop == pytest.approx(rec.stop)


# -- reconciliation ----------------------------------------------------------------------------


def test_reconciliation_adopts_unknown_holdings_and_closes_vanished_ones(world):
    world.ledgers["alice"].balances.update({"ETH": 0.5, "SOL": 3.0})  # SOL is not traded here
    store = Store(world.db, "user/alice/KRAKEN", clock=world.clock)
    gone = store.open_position("BTC/USD", 0.2, 140.0, 130.0, 160.0, 10.0, NOW - 3600)
    store.close()
    report = world.trader().reconcile()
    assert report.done and report.ignored_holdings == ["SOL/USD"]
    positions = {p.symbol: p for p in world.stores[0].open_positions()}
    assert set(positions) == {"ETH/USD"}
    eth = positions["ETH/USD"]
    assert eth.external and eth.quantity == pytest.approx(0.5) and 0 < eth.stop < eth.entry_price
    (closed,) = [p for p in world.stores[0].closed_positions_since(0) if p.id == gone.id]
    assert "not held at the venue" in closed.close_reason


def test_a_failed_venue_query_is_never_read_as_flat(world):
    store = Store(world.db, "user/alice/KRAKEN", clock=world.clock)
    store.open_position("BTC/USD", 0.2, 140.0, 130.0, 160.0, 10.0, NOW - 3600)
    store.close()
    world.ledgers["alice"].balances["BTC"] = 0.2
    trader = world.trader()
    trader.symbols()
    world.server.inject("balance", Fault("status", 500, times=1))  # Kraken holdings = Balance
    with pytest.raises(Exception, match="kraken"):
        trader.reconcile()
    assert not trader.reconciled
    assert [p.symbol for p in world.stores[0].open_positions()] == ["BTC/USD"]
    assert world.stores[0].closed_positions_since(0) == []
    assert world.server.requests_to("create_order") == []
    assert trader.run_cycle().ok and trader.reconciled  # the next attempt succeeds
    assert [p.symbol for p in world.stores[0].open_positions()] == ["BTC/USD"]


def test_a_position_stored_without_initial_risk_is_still_managed(world):
    # The store takes a position without its initial risk (the column is nullable): the
    # strategy must manage it, not fail on it every cycle until the account is quarantined.
    store = Store(world.db, "user/alice/KRAKEN", clock=world.clock)
    store.open_position("BTC/USD", 0.2, 140.0, 130.0, 160.0, None, NOW - 3600)
    store.close()
    world.ledgers["alice"].balances["BTC"] = 0.2
    result = world.trader().run_cycle()
    assert result.ok and result.errors == {} and result.notes == []
    (pos,) = world.stores[0].open_positions()
    # Managed with the risk to its stop (10): the close of 149 is under 1 R up, no break-even.
    assert pos.highest_close == pytest.approx(149.0) and not pos.breakeven_done


# -- the venue's shared data ---------------------------------------------------------------------


def test_data_older_than_one_candle_takes_no_entry(world):
    world.set_clock(FakeClock(wall_start=NOW + 301))  # the signal candle closed 301 s ago
    result = world.trader().run_cycle()
    assert result.ok and result.orders_placed == 0
    assert "BTC/USD: market data 301s old; entry waits" in result.notes
    assert result.no_signal == "BTC/USD market data stale"  # neither could be judged: the first
    assert world.server.requests_to("create_order") == []


def test_with_stale_data_an_exit_looks_at_the_accounts_own_ticker(world):
    world.set_clock(FakeClock(wall_start=NOW + 900))
    store = Store(world.db, "user/alice/KRAKEN", clock=world.clock)
    store.open_position("BTC/USD", 0.2, 140.0, 130.0, 160.0, 10.0, NOW - 3600)
    store.open_position("ETH/USD", 0.1, 1_900.0, 2_001.0, 2_500.0, 99.0, NOW - 3600)
    store.close()
    world.ledgers["alice"].balances.update({"BTC": 0.2, "ETH": 0.1})
    result = world.trader().run_cycle()
    # BTC's ticker (149) is between its stop and target: held. ETH's (2000) is under its stop.
    assert result.ok and result.orders_placed == 1
    assert "BTC/USD: market data stale; stop and target held at 149" in result.notes
    (closed,) = world.stores[0].closed_positions_since(0)
    assert closed.symbol == "ETH/USD" and closed.close_reason == "stop hit"
    tickers = [r.params().get("pair") for r in world.server.requests_to("ticker")]
    assert len(tickers) >= 2  # each position's own ticker, asked with the account's key
    assert result.marks == {"BTC/USD": 149.0, "ETH/USD": 2_000.0}


def test_accounts_on_one_venue_read_the_same_candles_once(world):
    traders = [world.trader("alice", live=False), world.trader("bob", live=False)]
    for _ in range(3):
        for trader in traders:
            assert trader.run_cycle().ok
        world.clock.advance(60)
    candles = world.server.requests_to("candles")
    assert len(candles) == 2  # one per symbol, not one per account and cycle
    assert all("api-key" not in r.headers for r in candles)  # asked without a key
    assert len(world.server.requests_to("markets")) == 1


# -- paper mode and isolation -----------------------------------------------------------------------


def test_paper_mode_never_touches_an_order_route(world):
    result = world.trader(live=False).run_cycle()
    assert result.ok and result.orders_placed == 1
    assert world.stores[0].get_order(entry_id()).status == "filled"
    order_routes = {"create_order", "fetch_order", "open_orders", "cancel_order"}
    hit = {r.route for r in world.server.requests}
    assert hit and not (hit & order_routes)
    assert world.venue_orders() == [] and world.ledgers["alice"].balance("USD") == 10_000.0


def test_two_accounts_on_one_broker_never_see_each_others_orders(world):
    alice, bob = world.trader("alice"), world.trader("bob")
    world.market.set_candles("BTC/USD", rows(SIGNAL))
    assert alice.run_cycle().orders_placed == 1
    world.market.set_candles("BTC/USD", rows(cs.flat(price=150.0)))
    world.clock.advance(300)  # the next candle: bob reads the flat market
    assert bob.run_cycle().orders_placed == 0
    alice_store, bob_store = world.stores
    assert len(alice_store.open_positions()) == 1
    assert bob_store.open_positions() == [] and bob_store.orders_since(0) == []
    assert world.venue_orders("bob") == [] and len(world.venue_orders("alice")) == 1


def test_the_process_wide_cap_holds_across_accounts(world):
    world.cap = GlobalPositionCap(1)
    alice, bob = world.trader("alice"), world.trader("bob")
    assert alice.run_cycle().orders_placed == 1
    result = bob.run_cycle()
    assert result.orders_placed == 0 and "process-wide position cap reached" in result.notes


def test_a_hold_stops_new_positions_of_every_account_but_never_an_exit(world):
    trader = world.trader()
    trader.run_cycle()
    (pos,) = world.stores[0].open_positions()
    world.cap.hold("state database missing")
    bob = world.trader("bob")
    result = bob.run_cycle()  # the same entry signal
    assert result.orders_placed == 0 and "state database missing" in result.notes
    world.market.set_candles("BTC/USD", rows(cs.from_closes([*SIGNAL.close[:-1], pos.stop * 0.99])))
    world.clock.advance(300)
    assert trader.run_cycle().orders_placed == 1  # the stop still sells
    assert world.stores[0].open_positions() == []
    world.cap.hold(None)
    world.market.set_candles("BTC/USD", rows(cs.later(SIGNAL, 600)))  # a signal two candles on
    world.clock.advance(300)
    assert bob.run_cycle().orders_placed == 1


def test_a_paused_account_opens_nothing_but_its_stop_still_sells_and_others_still_enter(world):
    alice = world.trader()
    alice.run_cycle()
    (pos,) = world.stores[0].open_positions()
    world.cap.hold_account("user/alice/KRAKEN", "paused by the operator")
    world.market.set_candles("BTC/USD", rows(cs.from_closes([*SIGNAL.close[:-1], pos.stop * 0.99])))
    world.clock.advance(300)
    assert alice.run_cycle().orders_placed == 1  # the stop still sells
    assert world.stores[0].open_positions() == []
    world.market.set_candles("BTC/USD", rows(cs.later(SIGNAL, 600)))  # two candles on
    world.clock.advance(300)
    paused = alice.run_cycle()  # a fresh entry signal: refused
    assert paused.orders_placed == 0 and paused.no_signal == "paused by the operator"
    assert world.trader("bob").run_cycle().orders_placed == 1  # another account is not paused
    world.cap.hold_account("user/alice/KRAKEN", None)
    assert world.cap.held_for("user/alice/KRAKEN") is None
    assert world.cap.try_reserve("user/alice/KRAKEN")


# -- failures stay with their account --------------------------------------------------------------


class Observer:
    """Records what the venue's market data tells its observer (the venue's health)."""

    def __init__(self) -> None:
        self.failed: list[tuple[str, str]] = []  # (operation, error type)
        self.ok: list[str] = []

    def public_failed(self, error: BaseException, operation: str) -> None:
        self.failed.append((operation, type(error).__name__))

    def public_ok(self, operation: str) -> None:
        self.ok.append(operation)


def test_one_symbols_data_failure_is_that_symbols_problem_and_the_venues(world):
    world.venue.market.observer = observer = Observer()
    world.server.inject("candles", Fault("status", 502, times=1))  # BTC/USD is asked first
    result = world.trader().run_cycle()
    assert result.ok and result.orders_placed == 0
    assert any(n.startswith("BTC/USD: candles failed (network_error)") for n in result.notes)
    assert result.errors == {}  # the venue's failure: nothing charged to the account
    assert world.isolation.get_account_status("user", "alice", "KRAKEN")[1]["total_failures"] == 0
    assert observer.failed == [("candles", "NetworkFailure")]
    assert "candles" in observer.ok  # ETH/USD was answered


def test_a_balance_failure_ends_the_cycle_early_for_that_account_only(world):
    alice, bob = world.trader("alice"), world.trader("bob")
    world.server.inject("balance", Fault("venue_error", code="auth", times=1))
    result = alice.run_cycle()
    assert not result.ok and result.broker_calls == 1 and result.orders_placed == 0
    assert world.isolation.get_account_status("user", "alice", "KRAKEN")[0].value == "failing"
    assert bob.run_cycle().orders_placed == 1
    assert world.isolation.get_account_status("user", "bob", "KRAKEN")[0].value == "healthy"


def test_a_strategy_bug_is_recorded_and_the_cycle_goes_on(world):
    trader = world.trader()

    class Broken(type(trader.strategy)):
        def decide(self, symbol, candles, position, now, memo=None):
            if symbol == "BTC/USD":
                raise ZeroDivisionError("bug in strategy code")
            return super().decide(symbol, candles, position, now, memo)

    trader.strategy = Broken()
    result = trader.run_cycle()
    assert result.ok and any("strategy failed" in n for n in result.notes)
    assert result.errors == {"unknown_error": 1}
    status = world.isolation.get_account_status("user", "alice", "KRAKEN")[1]
    assert status["last_operation"] == "strategy" and status["total_failures"] == 1


class RaisingStrategy:
    """Wraps the default strategy; raises instead of deciding while ``raising`` is set."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.raising = True
        self.timeframe, self.history = inner.timeframe, inner.history

    def decide(self, symbol, candles, position, now, memo=None):
        if self.raising:
            raise ZeroDivisionError("bug in strategy code")
        return self.inner.decide(symbol, candles, position, now, memo)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_a_strategy_that_raises_every_cycle_quarantines_its_account_only(world):
    alice, bob = world.trader("alice"), world.trader("bob")
    alice.strategy = RaisingStrategy(alice.strategy)
    seen = []
    for _ in range(3):  # two symbols: two failures a cycle, five open the circuit
        alice.run_cycle()
        seen.append(world.isolation.get_account_status("user", "alice", "KRAKEN")[0].value)
    assert seen == ["degraded", "degraded", "quarantined"]
    blocked = alice.run_cycle()
    assert blocked.broker_calls == 0 and "quarantined" in blocked.blocked_reason
    assert bob.run_cycle().orders_placed == 1
    assert world.isolation.get_account_status("user", "bob", "KRAKEN")[0].value == "healthy"


def test_a_strategy_that_raises_now_and_then_is_answered_by_clean_cycles(world):
    trader = world.trader()
    trader.strategy = RaisingStrategy(trader.strategy)
    # One cycle in three raises; a clean cycle is two successes (its balance and the cycle
    # itself), and three answer the failures. Within one candle, so the strategy always decides.
    for cycle in range(9):
        trader.strategy.raising = cycle % 3 == 0
        result = trader.run_cycle()
        assert result.ok
        world.clock.advance(30)
        if cycle % 3 == 2:
            assert world.isolation.get_account_status("user", "alice", "KRAKEN")[0].value == (
                "healthy"
            )
    status, m = world.isolation.get_account_status("user", "alice", "KRAKEN")
    assert status.value == "healthy" and m["consecutive_failures"] == 0
    assert m["quarantine_count"] == 0 and m["failure_breakdown"] == {"unknown_error": 6}


def test_an_order_the_venue_refuses_for_funds_leaves_the_account_healthy(world):
    world.server.inject("create_order", Fault("venue_error", code="insufficient_funds", times=1))
    result = world.trader().run_cycle()
    assert not result.ok and result.errors == {"balance_error": 1}
    assert world.stores[0].get_order(entry_id()).status == "rejected"
    status, m = world.isolation.get_account_status("user", "alice", "KRAKEN")
    assert status.value == "healthy" and m["consecutive_failures"] == 0
    assert m["failure_breakdown"] == {"balance_error": 1}


def test_a_full_disk_ends_the_cycle_as_that_accounts_store_error_logged_by_no_one_here(
    sqlite_world,
):
    world = sqlite_world  # SQLite's own full disk (on PostgreSQL the server's disk fills)
    with capture_logs() as logs:  # the traders are made inside: their loggers are captured
        alice, bob = world.trader("alice"), world.trader("bob")
        assert alice.run_cycle().ok
        alice.store._conn = FullDiskConnection(alice.store._conn)
        result = alice.run_cycle()
        assert bob.run_cycle().ok
    assert not result.ok and result.disk_full and "database or disk is full" in result.error
    assert result.errors == {"store_error": 1}  # one per cycle, however many writes failed
    status = world.isolation.get_account_status("user", "alice", "KRAKEN")[1]
    assert set(status["failure_breakdown"]) == {"store_error"}
    assert world.isolation.get_account_status("user", "bob", "KRAKEN")[1]["total_failures"] == 0
    # The trader returns the failure; the daemon logs the cycle's one line (a warning).
    assert [e for e in logs if e["log_level"] in ("warning", "error")] == []


def test_a_locked_database_is_that_accounts_failure_only(sqlite_world):
    world = sqlite_world
    alice = world.trader("alice", busy_timeout_ms=100)
    bob = world.trader("bob")
    alice.run_cycle()
    locker = sqlite3.connect(world.db.path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        result = alice.run_cycle()
        assert not result.ok and "StoreError" in result.error and not result.disk_full
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    status = world.isolation.get_account_status("user", "alice", "KRAKEN")[1]
    assert status["total_failures"] >= 1
    assert bob.run_cycle().ok


def test_positions_the_store_could_not_count_are_unknown_not_zero(world):
    alice = world.trader("alice")
    first = alice.run_cycle()
    assert first.ok and first.positions_open == 1  # the entry on the signal
    counted = alice.store.open_positions
    calls = {"n": 0}

    def fails_at_the_end(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 1:  # the cycle's own reads pass; the count at its end fails
            raise StoreError("open_positions", "database is locked")
        return counted(*args, **kwargs)

    alice.store.open_positions = fails_at_the_end  # type: ignore[method-assign]
    world.clock.advance(60)
    result = alice.run_cycle()
    assert not result.ok and "database is locked" in result.error
    assert result.positions_open is None  # unknown: never read as "no positions"


def test_a_store_out_of_reach_for_a_whole_cycle_is_one_failure_not_two(world):
    alice = world.trader("alice")
    assert alice.run_cycle().ok

    def unreachable(*args, **kwargs):
        raise StoreError("read", "no connection within 5 s (the pool is full)")

    for read in ("orders_with_status", "open_positions", "dust"):
        setattr(alice.store, read, unreachable)
    world.clock.advance(60)
    result = alice.run_cycle()
    assert not result.ok and "pool is full" in result.error
    # The cycle's own read and its closing count both failed: one failure of the account.
    assert result.errors == {"store_error": 1}
    status = world.isolation.get_account_status("user", "alice", "KRAKEN")[1]
    assert status["failure_breakdown"] == {"store_error": 1}


def test_the_daily_loss_limit_halts_entries_until_the_next_utc_day(world):
    with capture_logs() as logs:  # the trader is made inside: its logger is captured
        trader = world.trader()
        store = Store(world.db, "user/alice/KRAKEN", clock=world.clock)
        today = datetime.fromtimestamp(NOW, UTC).date().isoformat()
        store.set_day_start_equity(today, 11_000.0)  # 10,000 now: a 9% loss today
        store.close()
        halted = trader.run_cycle()
        assert halted.orders_placed == 0 and any("daily loss" in n for n in halted.notes)
        world.clock.advance(60)
        assert trader.run_cycle().orders_placed == 0  # still halted: said once a day
        world.clock.advance(86_400)
        world.market.set_candles("BTC/USD", rows(cs.later(SIGNAL, 86_400)))  # the next day's
        assert trader.run_cycle().orders_placed == 1
    # The alerts' source (bot.alerts.sources): one line, the day it happened.
    (halt,) = [e for e in logs if e["event"] == "daily_loss_halt"]
    assert halt["log_level"] == "warning" and halt["account"] == "user/alice/KRAKEN"
    assert (halt["day"], halt["loss_pct"], halt["limit_pct"]) == (today, 9.09, 5.0)
    assert (halt["equity_usd"], halt["day_start_equity_usd"]) == (10_000.0, 11_000.0)


def test_a_refused_late_send_is_looked_up_again_not_believed(world):
    trader = world.trader(timeout=1.0)
    world.server.inject("create_order", Fault("drop", times=1))  # the first send never arrives
    trader.run_cycle()
    world.clock.advance(20)
    trader.run_cycle()  # the first "no such order"
    world.clock.advance(20)
    # The second proves it absent; the late send is refused: it might be a duplicate of a
    # send that did arrive.
    world.server.inject("create_order", Fault("venue_error", code="insufficient_funds", times=1))
    trader.run_cycle()
    rec = world.stores[0].get_order(entry_id())
    assert rec.status == "unknown" and rec.absent_checks == 0  # the proof starts over
    assert len(world.server.requests_to("create_order")) == 2
    for _ in range(2):
        world.clock.advance(20)
        trader.run_cycle()  # looked up twice more: not there; still fresh, so sent again
    assert world.stores[0].get_order(entry_id()).status == "filled"
    assert [o.client_order_id for o in world.venue_orders()] == [entry_id()]


def test_a_first_send_refused_with_a_4xx_is_final(world):
    trader = world.trader()
    world.server.inject("create_order", Fault("venue_error", code="invalid_order", times=1))
    assert not trader.run_cycle().ok
    assert world.stores[0].get_order(entry_id()).status == "rejected"
    world.clock.advance(60)
    trader.run_cycle()
    assert len(world.server.requests_to("create_order")) == 1


def test_dust_at_the_venue_is_never_adopted(world):
    world.ledgers["alice"].balances.update({"ETH": 1e-9})
    report = world.trader().reconcile()
    assert report.done and report.adopted == []
    assert world.stores[0].open_positions() == []


def test_a_signal_on_a_candle_still_forming_waits_until_it_closes(world):
    world.set_clock(FakeClock(wall_start=NOW - 1))  # the signal candle closes in one second
    trader = world.trader()
    assert trader.run_cycle().orders_placed == 0
    world.clock.advance(1)
    assert trader.run_cycle().orders_placed == 1


# -- venues as they really are ----------------------------------------------------------------


def test_a_candle_still_forming_when_fetched_is_never_decided_on(world, monkeypatch):
    world.set_clock(FakeClock(wall_start=NOW - 1))  # the signal candle closes in one second
    trader = world.trader()
    public = world.venue.market.client
    fetch = public.fetch_candles

    def slow_fetch(*args):  # the answer takes 2 s: the minute rolls over before the decision
        candles = fetch(*args)
        world.clock.advance(2)
        return candles

    monkeypatch.setattr(public, "fetch_candles", slow_fetch)
    assert trader.run_cycle().orders_placed == 0  # fetched while the candle was forming
    assert world.server.requests_to("create_order") == []
    assert trader.run_cycle().orders_placed == 1  # fetched after it closed


def test_an_order_that_arrives_late_is_found_never_sent_twice(world):
    # A crash left the entry stored but its send in flight: the venue takes it only after the
    # restarted process first looks for it. Kraken (like Binance) refuses a repeated client
    # id only while the first order is open, so a re-send then would be a second real order.
    before = Store(world.db, "user/alice/KRAKEN", clock=world.clock)
    rec = pending_entry(before, world.clock)
    before.close()
    trader = world.trader()
    world.clock.advance(1)
    assert trader.run_cycle().ok and not trader.reconciled  # "no such order", 1 s on: no proof
    assert world.server.requests_to("create_order") == []
    world.ledgers["alice"].place(  # the first send arrives
        "BTC/USD", "buy", "market", amount=0.5, client_order_id=rec.client_order_id
    )
    world.clock.advance(15)
    assert trader.run_cycle().ok and trader.reconciled
    assert world.server.requests_to("create_order") == []  # found: never sent again
    assert [o.client_order_id for o in world.venue_orders()] == [rec.client_order_id]
    assert world.stores[0].get_order(rec.client_order_id).status == "filled"
    assert len(world.stores[0].open_positions()) == 1


def test_an_order_whose_absence_cannot_be_proven_stays_unknown_and_is_told_once(world):
    trader = world.trader(timeout=1.0)
    # A venue whose lookup forgets orders after 60 s (as OKX forgets cancelled ones).
    trader.desk.venue = dataclasses.replace(trader.venue, lookup_retention_seconds=60.0)
    world.server.inject("create_order", Fault("drop", times=1))
    trader.run_cycle()
    world.clock.advance(20)  # the first "no such order"...
    trader.run_cycle()
    world.clock.advance(100)  # ...and the venue's memory ended before a second one
    with capture_logs() as logs:
        results = [trader.run_cycle()]
        world.clock.advance(30)
        results.append(trader.run_cycle())
    told = [e for e in logs if e["event"] == "order_absence_unprovable"]
    assert len(told) == 1 and told[0]["log_level"] == "error"
    assert told[0]["client_order_id"] == entry_id()
    assert world.stores[0].get_order(entry_id()).status == "unknown"
    assert len(world.server.requests_to("create_order")) == 1  # nothing re-sent
    assert [r.orders_unknown for r in results] == [[entry_id()], [entry_id()]]


def exits_world(world) -> Store:
    """Alice holds BTC and ETH, both stored as positions whose stops the candles now hit."""
    store = Store(world.db, "user/alice/KRAKEN", clock=world.clock)
    store.open_position("BTC/USD", 0.2, 140.0, 130.0, 160.0, 10.0, NOW - 3600)
    store.open_position("ETH/USD", 0.5, 2100.0, 2050.0, 2300.0, 50.0, NOW - 3600)
    store.close()
    world.ledgers["alice"].balances.update({"BTC": 0.2, "ETH": 0.5})
    world.market.set_candles("BTC/USD", rows(cs.from_closes([*SIGNAL.close[:-1], 128.0])))
    return store


def test_a_refused_exit_is_that_positions_problem_and_the_counts_stay_true(world):
    exits_world(world)
    trader = world.trader()
    # The venue refuses the first exit (BTC's: the oldest position comes first).
    world.server.inject("create_order", Fault("venue_error", code="insufficient_funds", times=1))
    result = trader.run_cycle()
    assert result.positions_open == 1  # BTC's, still open: never 0 while one is
    assert [p.symbol for p in world.stores[0].open_positions()] == ["BTC/USD"]
    (eth,) = [o for o in world.venue_orders() if o.symbol == "ETH/USD"]  # ETH went on
    assert eth.side == "sell" and eth.status == "filled"
    assert any("BTC/USD: exit refused" in n and "in 60s" in n for n in result.notes)
    (btc,) = world.stores[0].open_positions()
    assert btc.exit_attempts == 1 and btc.exit_retry_at == pytest.approx(NOW + 60)
    assert result.exit_blocked == {}


def test_a_refused_exit_is_retried_with_backoff_then_flagged_blocked(world):
    exits_world(world)
    world.ledgers["alice"].balances["ETH"] = 0.0  # only BTC is held now
    store = Store(world.db, "user/alice/KRAKEN", clock=world.clock)
    (eth,) = [p for p in store.open_positions() if p.symbol == "ETH/USD"]
    store.close_position(eth.id, 2000.0, "sold elsewhere", NOW, 0.0)
    store.close()
    trader = world.trader()
    world.server.inject("create_order", Fault("venue_error", code="insufficient_funds"))
    sends = []
    for advance in (0, 30, 30, 100, 140, 600, 600):
        world.clock.advance(advance)
        result = trader.run_cycle()
        sends.append(len(world.server.requests_to("create_order")))
        assert result.positions_open == 1
    # Tried at 0 s, then 60 s and 300 s later (waits of 60 s and 240 s), then never again.
    assert sends == [1, 1, 2, 2, 3, 3, 3]
    (btc,) = world.stores[0].open_positions()
    assert btc.exit_attempts == 3 and "nsufficient" in btc.exit_blocked
    assert result.exit_blocked == {"BTC/USD": btc.exit_blocked}
    assert any("exit blocked" in n for n in result.notes)


def test_a_cycle_that_ends_early_still_counts_its_open_positions(world):
    store = Store(world.db, "user/alice/KRAKEN", clock=world.clock)
    store.open_position("BTC/USD", 0.2, 140.0, 130.0, 160.0, 10.0, NOW - 3600)  # not hit
    store.close()
    world.ledgers["alice"].balances["BTC"] = 0.2
    trader = world.trader()
    assert trader.run_cycle().positions_open == 1
    world.server.inject("balance", Fault("status", 502, times=1))
    result = trader.run_cycle()
    assert not result.ok and result.positions_open == 1


def test_reconciliation_corrects_drift_below_one_percent(world):
    store = Store(world.db, "user/alice/KRAKEN", clock=world.clock)
    store.open_position("BTC/USD", 0.2, 140.0, 130.0, 160.0, 10.0, NOW - 3600)
    store.close()
    world.ledgers["alice"].balances["BTC"] = 0.1998  # 0.1% less: a fee taken in the coin
    report = world.trader().reconcile()
    assert report.resized == ["BTC/USD"]
    (pos,) = world.stores[0].open_positions()
    assert pos.quantity == pytest.approx(0.1998)


def test_a_holding_too_small_to_sell_is_dust_never_adopted(world):
    # $2 of ETH: worth more than the $1 of a rounding remainder, less than the venue takes
    # (Kraken's ETH ordermin 0.002; the registry's $10 where the adapter publishes no rules).
    world.ledgers["alice"].balances["ETH"] = 0.001
    trader = world.trader()
    result = trader.run_cycle()
    assert trader.reconciled
    assert "ETH/USD" not in [p.symbol for p in world.stores[0].open_positions()]
    assert result.dust == {"ETH": pytest.approx(0.001)}
    assert [o for o in world.venue_orders() if o.symbol == "ETH/USD"] == []
