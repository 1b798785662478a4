"""The venue gate of an account's cycle: real ccxt over HTTP to the Kraken emulator, real SQLite.

A venue outage parks the venue's accounts (nothing sent, nothing charged to a breaker) and
they resume one by one; cancel-only and post-only take no entry, hold exits and hold the
re-send of an order proven absent; one
account's bad key stays that account's alone and never puts the venue down.
"""

from __future__ import annotations

import random

import pytest
from structlog.testing import capture_logs

from bot.brokers.ccxt.broker import CcxtBroker
from bot.brokers.factory import create_trading_broker
from bot.engine.orders import RESEND_WINDOW_SECONDS
from bot.engine.risk import RiskManager
from bot.engine.trader import AccountTrader
from bot.model import AccountRef, VenueCondition, VenueStatus
from bot.store.writer import Store
from bot.strategy.trend_pullback import get_strategy
from bot.venue.health import HealthConfig, VenueHealth, VenueState
from nija_testkit import candles as cs
from nija_testkit.candles import rows
from nija_testkit.emulator.server import Fault
from tests.engine.world import SIGNAL, World, entry_id

WHO = ("alice", "bob")


@pytest.fixture
def world(venue_server, tmp_path):
    w = World(venue_server("KRAKEN"), tmp_path)
    w.health = VenueHealth(
        "KRAKEN", w.clock, random.Random(5), HealthConfig(resume_window_seconds=10.0)
    )
    yield w
    w.close()


def trader(world: World, who: str, *, live: bool = True, spec=None) -> AccountTrader:
    spec = spec or world.spec(who)
    broker = create_trading_broker(
        spec, live=live, paper_balance_usd=10_000.0, clock=world.clock, venue=CcxtBroker(spec)
    )
    store = Store(world.db, spec.account.key, clock=world.clock)
    world.stores.append(store)
    return AccountTrader(
        spec.account,
        broker,
        get_strategy("default"),
        RiskManager(),
        store,
        world.isolation,
        world.clock,
        global_cap=world.cap,
        venue_health=world.health,
    )


def metrics(world: World, who: str) -> dict:
    return world.isolation.get_account_status("user", who, "KRAKEN")[1]


def sent(world: World) -> int:
    return len(world.server.requests)


def test_an_outage_parks_every_account_and_no_breaker_moves(world):
    traders = {who: trader(world, who) for who in WHO}
    for t in traders.values():  # in rhythm first: reconciled, a position open
        assert t.run_cycle().ok
    world.server.inject("*", Fault("status", 503))
    first = traders["alice"].run_cycle()  # one account's outage failure: still up
    assert not first.ok and world.health.state is VenueState.UP
    assert metrics(world, "alice")["status"] == "degraded"
    second = traders["bob"].run_cycle()  # half of the venue's accounts: down
    assert world.health.state is VenueState.DOWN
    assert not second.ok and metrics(world, "bob")["status"] == "healthy"  # excused
    before = sent(world)
    for _ in range(20):  # the outage goes on: every cycle blocked, nothing sent
        world.clock.advance(30)
        for t in traders.values():
            result = t.run_cycle()
            assert result.blocked_reason.startswith("venue KRAKEN down: 2 of 2 accounts failed")
            assert result.broker_calls == 0 and result.resume_in_seconds is None
            assert 0 < result.retry_in_seconds <= 36
    assert sent(world) == before
    for who in WHO:  # the failure counted before the venue was declared down is forgiven
        m = metrics(world, who)
        assert m["status"] == "healthy" and m["circuit_state"] == "closed"
        assert m["consecutive_failures"] == 0 and m["quarantine_count"] == 0
        assert m["failure_breakdown"] == {"network_error": 1}  # recorded, visible

    world.server.clear_faults()
    world.health.record_probe(True, "SystemStatus online")
    results = {who: traders[who].run_cycle() for who in WHO}
    assert sum(r.ok for r in results.values()) == 1  # one resumes at once...
    (waiting,) = [r for r in results.values() if not r.ok]  # ...the other 5 s later
    assert waiting.resume_in_seconds == pytest.approx(5.0)  # 2 accounts over a 10 s window
    assert waiting.blocked_reason == "venue KRAKEN back: staggered resume in 5s"
    assert waiting.broker_calls == 0
    world.clock.advance(5)
    for t in traders.values():
        assert t.run_cycle().ok


def test_one_bad_key_quarantines_its_account_alone_never_the_venue(world):
    alice, bob = trader(world, "alice"), trader(world, "bob")
    world.server.inject("*", Fault("status", 401, api_key=world.spec("bob").credentials.api_key))
    for _ in range(6):
        assert alice.run_cycle().ok
        assert not bob.run_cycle().ok
        world.clock.advance(30)
    assert world.health.state is VenueState.UP
    assert metrics(world, "bob")["status"] == "failing"
    assert metrics(world, "alice")["status"] == "healthy"


def test_one_accounts_network_trouble_stays_its_own(world):
    """One of two accounts times out alone: the venue stays up; its breaker counts as ever."""
    alice, bob = trader(world, "alice"), trader(world, "bob")
    world.server.inject("*", Fault("status", 503, api_key=world.spec("bob").credentials.api_key))
    for _ in range(5):
        assert alice.run_cycle().ok
        bob.run_cycle()
        world.clock.advance(30)
    assert world.health.state is VenueState.UP
    assert metrics(world, "bob")["status"] == "quarantined"


@pytest.mark.parametrize("condition", [VenueCondition.CANCEL_ONLY, VenueCondition.POST_ONLY])
def test_a_restricted_venue_takes_no_entry_and_its_exits_wait(world, condition):
    alice = trader(world, "alice")
    world.health.record_status(VenueStatus(condition, f"SystemStatus {condition.value}"))
    result = alice.run_cycle()  # the entry signal is there
    assert result.ok and result.orders_placed == 0 and not world.venue_orders()
    assert result.no_signal == f"venue KRAKEN {condition.value}: no new entries, exits wait"
    world.health.record_status(VenueStatus(VenueCondition.OK, "SystemStatus online"))
    assert alice.run_cycle().orders_placed == 1
    (pos,) = alice.store.open_positions()
    crash = cs.from_closes([*SIGNAL.close[:-1], pos.stop * 0.99])
    world.market.set_candles("BTC/USD", rows(crash))
    world.clock.advance(300)  # the next close: the venue's candles are fetched again
    world.health.record_status(VenueStatus(condition, f"SystemStatus {condition.value}"))
    held = alice.run_cycle()
    assert held.ok and held.orders_placed == 0
    assert f"BTC/USD: exit waits (venue {condition.value})" in held.notes
    assert len(world.venue_orders()) == 1 and alice.store.open_positions()
    world.health.record_status(VenueStatus(VenueCondition.OK, "SystemStatus online"))
    assert alice.run_cycle().orders_placed == 1 and not alice.store.open_positions()


def test_an_account_without_a_venue_health_trades_as_before(world):
    spec = world.spec("alice")
    broker = create_trading_broker(
        spec, live=True, paper_balance_usd=1.0, clock=world.clock, venue=CcxtBroker(spec)
    )
    store = Store(world.db, spec.account.key, clock=world.clock)
    world.stores.append(store)
    t = AccountTrader(
        AccountRef("user", "alice", "KRAKEN"),
        broker,
        get_strategy("default"),
        RiskManager(),
        store,
        world.isolation,
        world.clock,
    )
    assert t.broker.venue_state is VenueState.UP
    assert t.run_cycle().orders_placed == 1


def hold_an_order(world: World, condition: VenueCondition) -> AccountTrader:
    """alice's entry lost before the venue saw it and one "no such order" counted (Kraken
    proves absence with two, 15 s apart); then the venue takes no market order (it refuses
    them, as Kraken does in either mode)."""
    alice = trader(world, "alice")
    world.server.inject("create_order", Fault("drop", times=1))  # lost before the venue saw it
    assert not alice.run_cycle().ok
    world.clock.advance(20)
    alice.run_cycle()  # the first "no such order"
    assert alice.store.get_order(entry_id()).absent_checks == 1
    world.health.record_status(VenueStatus(condition, f"SystemStatus {condition.value}"))
    world.server.inject("create_order", Fault("venue_error", code="invalid_order"))
    return alice


@pytest.mark.parametrize("condition", [VenueCondition.CANCEL_ONLY, VenueCondition.POST_ONLY])
def test_a_proven_absent_order_is_not_resent_while_the_venue_takes_no_market_order(
    world, condition
):
    alice = hold_an_order(world, condition)
    with capture_logs() as logs:
        for _ in range(4):  # proven absent at the first; never sent while the mode lasts
            world.clock.advance(20)
            result = alice.run_cycle()
            assert result.ok and result.orders_placed == 0
            rec = alice.store.get_order(entry_id())
            assert rec.status == "unknown" and rec.absent_checks == 2  # the proof is kept
            assert len(world.server.requests_to("create_order")) == 1
    assert [e["event"] for e in logs if e["event"].startswith("order_")] == ["order_resend_waits"]
    (held,) = [e for e in logs if e["event"] == "order_resend_waits"]
    assert held["venue_state"] == condition.value and held["client_order_id"] == entry_id()

    world.server.clear_faults()
    world.health.record_status(VenueStatus(VenueCondition.OK, "SystemStatus online"))
    world.clock.advance(20)  # 120 s after the send: the signal is still fresh
    assert alice.run_cycle().ok
    assert alice.store.get_order(entry_id()).status == "filled"
    assert [o.client_order_id for o in world.venue_orders()] == [entry_id()]
    assert len(world.server.requests_to("create_order")) == 2


@pytest.mark.parametrize("condition", [VenueCondition.CANCEL_ONLY, VenueCondition.POST_ONLY])
def test_an_order_held_past_its_signals_freshness_is_settled_as_never_arrived_never_sent(
    world, condition
):
    """The venue keeps its mode past RESEND_WINDOW_SECONDS: the held order is settled as any
    proven-absent order whose signal went stale (canceled: never arrived), and never sent
    late, not even once the venue takes market orders again."""
    alice = hold_an_order(world, condition)
    sent_at = alice.store.get_order(entry_id()).created_at
    with capture_logs() as logs:
        for _ in range(20):  # 20 s apart: the window (300 s) passes within 16 cycles
            world.clock.advance(20)
            assert alice.run_cycle().ok
            if alice.store.get_order(entry_id()).status != "unknown":
                break
    rec = alice.store.get_order(entry_id())
    assert rec.status == "canceled"
    assert rec.reason == "the venue has no such order (never arrived or expired)"
    assert world.clock.wall() - sent_at > RESEND_WINDOW_SECONDS
    events = [e["event"] for e in logs if e["event"].startswith("order_")]
    assert events == ["order_resend_waits", "order_not_at_venue"]
    assert len(world.server.requests_to("create_order")) == 1  # the lost original alone
    assert entry_id() not in alice.desk._held  # settled: no longer held back

    world.server.clear_faults()
    world.health.record_status(VenueStatus(VenueCondition.OK, "SystemStatus online"))
    world.clock.advance(20)
    assert alice.run_cycle().ok
    assert alice.store.get_order(entry_id()).status == "canceled"
    assert entry_id() not in [o.client_order_id for o in world.venue_orders()]  # never late


def test_a_held_order_the_venue_finds_after_all_is_settled_and_no_longer_held(world):
    """Proven absent, held by the venue's mode, then found after all (the venue's registry
    was late): settled as the fill it was, never sent, and no longer held back."""
    alice = hold_an_order(world, VenueCondition.CANCEL_ONLY)
    world.clock.advance(20)
    with capture_logs() as logs:
        assert alice.run_cycle().ok  # the second "no such order": proven absent, held
    assert [e["event"] for e in logs if e["event"].startswith("order_")] == ["order_resend_waits"]
    assert entry_id() in alice.desk._held
    rec = alice.store.get_order(entry_id())
    world.ledgers["alice"].place(
        "BTC/USD", "buy", "market", amount=rec.amount, client_order_id=entry_id()
    )
    world.clock.advance(20)
    assert alice.run_cycle().ok
    assert alice.store.get_order(entry_id()).status == "filled"
    assert len(alice.store.open_positions()) == 1
    assert len(world.server.requests_to("create_order")) == 1  # found, never sent again
    assert entry_id() not in alice.desk._held
