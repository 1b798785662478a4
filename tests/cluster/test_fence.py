"""The fence: an order is stored only while this node holds the account's lease (checked in
the insert's own transaction), sent only before its local deadline, and an order of another
tenure is never sent by a later owner. The engine tests use the Kraken emulator (real ccxt
over HTTP) and a real PostgreSQL."""

from __future__ import annotations

import time

import pytest
from structlog.testing import capture_logs

from bot.store.fence import LeaseLostError
from bot.store.sqlite import SqliteDatabase
from bot.store.writer import OrderRecord, Store, StoreError
from tests.engine.world import World, entry_id

KEY = "user/alice/KRAKEN"


def order(cid: str) -> OrderRecord:
    return OrderRecord(cid, KEY, "i-" + cid, "BTC/USD", "buy", "market", 0.1, None, None, "entry")


def expire(sql) -> None:
    sql("UPDATE leases SET expires_at = now() - interval '1 second' WHERE owner IS NOT NULL")


def test_a_fenced_store_writes_its_node_and_epoch_into_each_order(pg, node, sql):
    a = node("a", [KEY])
    with Store(pg, KEY, fence=a.keeper.lease(KEY).fence) as store:
        assert store.record_order(order("c1"))
        assert store.get_order("c1").node_id == "a" and store.get_order("c1").lease_epoch == 1
    assert sql("SELECT node_id, lease_epoch FROM orders") == [("a", 1)]


def test_a_node_that_lost_the_lease_stores_nothing_whatever_its_own_clock_says(pg, node, sql):
    a, b = node("a", [KEY]), node("b", [KEY])
    store = Store(pg, KEY, fence=a.keeper.lease(KEY).fence)
    assert store.record_order(order("c1"))
    expire(sql)
    b.keeper.tick()
    assert b.epoch(KEY) == 2
    assert store.fence.lost() is None  # a's clock has not moved: only the database knows
    with pytest.raises(LeaseLostError) as caught:
        store.record_order(order("c2"))
    assert "node a epoch 1" in str(caught.value)
    with pytest.raises(LeaseLostError):
        store.record_cycle(0.0, 1.0, 0, 0, 0, {}, True)  # no write of any kind
    assert sql("SELECT client_order_id FROM orders") == [("c1",)]
    assert sql("SELECT count(*) FROM cycles") == [(0,)]
    assert store.fence.lost() is not None  # and a's fence now refuses sends too
    with pytest.raises(LeaseLostError):
        store.check_lease()
    store.close()
    with Store(pg, KEY, fence=b.keeper.lease(KEY).fence) as mine:
        assert mine.record_order(order("c2")) and mine.get_order("c2").lease_epoch == 2


def test_the_lease_check_and_the_insert_are_one_transaction(pg, node, sql):
    a, b = node("a", [KEY]), node("b", [KEY])
    store = Store(pg, KEY, fence=a.keeper.lease(KEY).fence)
    with store.transaction("record_order"):
        assert store.record_order(order("c1"))  # the lease row is locked until the commit
        expire(sql)  # its expiry passes meanwhile (the owner's renewal never waits either)
        b.keeper.tick()
        assert b.holds() == set()  # FOR UPDATE SKIP LOCKED: no takeover mid-insert
    b.keeper.tick()  # committed: now it can be taken over
    assert b.epoch(KEY) == 2
    assert sql("SELECT client_order_id, lease_epoch FROM orders") == [("c1", 1)]
    with pytest.raises(LeaseLostError):
        store.record_order(order("c2"))
    store.close()


def test_a_node_frozen_inside_a_write_holds_the_lease_row_no_longer_than_its_lease(pg, node, sql):
    # Found by scripts/cluster_chaos.py: a node SIGSTOPped inside one of its write
    # transactions (every cycle writes) kept that account's lease row locked, so every other
    # node's takeover skipped it for the whole freeze (up to PostgreSQL's 60 s idle timeout).
    # The transaction may idle no longer than the lease has left by the node's own clock.
    a, b = node("a", [KEY]), node("b", [KEY])
    a.clock.advance(26.0)  # 1 s left before a's local deadline (TTL 30 s - margin 3 s)
    store = Store(pg, KEY, fence=a.keeper.lease(KEY).fence)
    with pytest.raises(StoreError), store.transaction("record_order"):
        assert store.record_order(order("c1"))  # the lease row is locked until the commit
        time.sleep(1.6)  # frozen here, past what the lease had left
        expire(sql)  # the database's expiry passes too
        b.keeper.tick()
        assert b.epoch(KEY) == 2  # taken over while a is still frozen
    assert sql("SELECT count(*) FROM orders") == [(0,)]  # a's insert never committed
    store.close()


def test_nothing_is_sent_past_the_local_deadline(pg, node):
    a = node("a", [KEY], ttl=30.0)
    with Store(pg, KEY, fence=a.keeper.lease(KEY).fence) as store:
        store.check_lease()
        a.clock.advance(26.9)
        store.check_lease()
        a.clock.advance(0.1)  # renewal start + TTL - margin (3 s)
        with pytest.raises(LeaseLostError) as caught:
            store.check_lease()
        assert "local deadline" in str(caught.value)


def test_sqlite_takes_no_fence(tmp_path, pg, node):
    fence = node("a", [KEY]).keeper.lease(KEY).fence
    with pytest.raises(ValueError, match="sqlite"):
        Store(SqliteDatabase(tmp_path / "x.db"), KEY, fence=fence)
    with pytest.raises(ValueError):
        Store(pg, "user/bob/KRAKEN", fence=fence)


# -- the engine: a zombie sends nothing, and its order is never sent by the new owner ----------


@pytest.fixture
def world(venue_server, tmp_path, pg):
    w = World(venue_server("KRAKEN"), tmp_path, pg)
    yield w
    w.close()


def test_a_node_paused_between_storing_and_sending_sends_nothing_ever(world, node, sql):
    a = node("a", [KEY], ttl=30.0)
    trader = world.trader(fence=a.keeper.lease(KEY).fence)
    store = trader.store
    stored = store.record_order

    def record_then_pause(rec: OrderRecord) -> bool:
        done = stored(rec)
        a.clock.advance(60)  # SIGSTOP: the node's monotonic clock moves on, nothing renews
        return done

    store.record_order = record_then_pause  # type: ignore[method-assign]
    with capture_logs() as logs:
        result = trader.run_cycle()
    assert result.lease_lost and not result.ok
    assert world.server.requests_to("create_order") == []  # stored, never sent
    (rec,) = store.orders_since(0)
    assert (rec.client_order_id, rec.status, rec.node_id, rec.lease_epoch) == (
        entry_id(),
        "pending",
        "a",
        1,
    )
    assert not [e for e in logs if e["event"] == "order_sending"]
    assert world.isolation.get_account_status("user", "alice", "KRAKEN")[1]["status"] == "healthy"

    # By the database's clock the lease expires; b takes it over and reconciles.
    expire(sql)
    b = node("b", [KEY], ttl=30.0)
    assert b.epoch(KEY) == 2
    a.keeper.tick()
    assert a.holds() == set() and a.lost
    new_owner = world.trader(fence=b.keeper.lease(KEY).fence)
    with capture_logs() as logs:
        for _ in range(8):  # Kraken: two "no such order" answers 15 s apart prove it absent
            new_owner.run_cycle()
            world.clock.advance(15)
    assert new_owner.reconciled
    given_up = new_owner.store.get_order(entry_id())
    assert given_up.status == "canceled" and "given up" in given_up.reason
    assert given_up.lease_epoch == 1  # still a's order: b never sends it
    assert world.server.requests_to("create_order") == []
    assert any(e["event"] == "order_given_up_other_lease" for e in logs)
    assert not any(e["event"] == "order_never_arrived_sending_now" for e in logs)


def test_a_zombie_whose_lease_was_taken_over_stores_and_sends_nothing(world, node, sql):
    a = node("a", [KEY], ttl=30.0)
    zombie = world.trader(fence=a.keeper.lease(KEY).fence)
    expire(sql)
    b = node("b", [KEY], ttl=30.0)
    assert b.epoch(KEY) == 2
    result = zombie.run_cycle()  # its own clock never noticed: the database refuses it
    assert result.lease_lost and "database" in result.lease_lost
    assert sql("SELECT count(*) FROM orders") == [(0,)]
    assert world.server.requests_to("create_order") == []
    # The new owner trades it: its entry, stored under epoch 2 and sent once.
    owner = world.trader(fence=b.keeper.lease(KEY).fence)
    assert owner.run_cycle().orders_placed == 1
    assert sql("SELECT node_id, lease_epoch FROM orders") == [("b", 2)]
    assert len(world.server.requests_to("create_order")) == 1


def test_an_order_of_an_earlier_tenure_found_at_the_venue_is_settled_not_sent(world, node, sql):
    a = node("a", [KEY], ttl=30.0)
    first = world.trader(fence=a.keeper.lease(KEY).fence)
    stored = first.store.record_order

    def record_send_and_pause(r: OrderRecord) -> bool:
        done = stored(r)
        # Its order reaches the venue (as if sent just before the pause), then it freezes.
        world.ledgers["alice"].place(
            "BTC/USD", "buy", "market", amount=0.5, client_order_id=r.client_order_id
        )
        a.clock.advance(60)
        return done

    first.store.record_order = record_send_and_pause  # type: ignore[method-assign]
    assert first.run_cycle().lease_lost
    expire(sql)
    b = node("b", [KEY], ttl=30.0)
    owner = world.trader(fence=b.keeper.lease(KEY).fence)
    assert owner.run_cycle().ok and owner.reconciled
    settled = owner.store.get_order(entry_id())
    assert settled.status == "filled" and settled.lease_epoch == 1
    (pos,) = owner.store.open_positions()
    assert pos.entry_client_order_id == entry_id()
    assert world.server.requests_to("create_order") == []  # placed by hand above: none sent


def test_a_node_frozen_after_its_last_check_while_the_sdk_signs_sends_nothing(world, node):
    """The engine's check passes and ``order_sending`` is logged; then the node freezes while
    ccxt signs the order (its clock moves past the lease's local deadline). The transport's
    last look withdraws the request: the venue sees nothing, and the account has no failure."""
    a = node("a", [KEY], ttl=30.0)
    trader = world.trader(fence=a.keeper.lease(KEY).fence)
    exchange = trader.broker.broker._ex
    sign = exchange.sign

    def sign_then_freeze(path, *args, **kwargs):
        signed = sign(path, *args, **kwargs)
        if path == "AddOrder":
            a.clock.advance(60)  # SIGSTOP between signing and the socket
        return signed

    exchange.sign = sign_then_freeze
    with capture_logs() as logs:
        result = trader.run_cycle()
    assert result.lease_lost and "local deadline" in result.lease_lost, result
    assert [e["client_order_id"] for e in logs if e["event"] == "order_sending"] == [entry_id()]
    assert world.server.requests_to("create_order") == []
    (rec,) = trader.store.orders_since(0)
    assert (rec.status, rec.lease_epoch) == ("pending", 1)  # left for the next owner
    status = world.isolation.get_account_status("user", "alice", "KRAKEN")[1]
    assert status["status"] == "healthy" and status["total_failures"] == 0, status
    assert not result.errors


def test_a_node_frozen_after_the_transports_look_is_refused_at_the_socket_write(world, node):
    """The engine's look and the transport's pass; the node freezes before urllib3 writes the
    request. The look at the socket write refuses: the refusal comes up through urllib3,
    requests, ccxt, the adapter and the isolation guard to the engine, and nothing is sent."""
    a = node("a", [KEY], ttl=30.0)
    trader = world.trader(fence=a.keeper.lease(KEY).fence)
    check = trader.store.check_lease
    looks: list[int] = []

    def check_then_freeze() -> None:
        check()
        looks.append(1)
        if len(looks) == 2:  # the transport's look passed: SIGSTOP before the socket write
            a.clock.advance(60)

    trader.store.check_lease = check_then_freeze  # type: ignore[method-assign]
    result = trader.run_cycle()
    assert result.lease_lost and "local deadline" in result.lease_lost, result
    assert len(looks) == 2  # the third look, at the socket, refused
    assert world.server.requests_to("create_order") == []
    (rec,) = trader.store.orders_since(0)
    assert (rec.status, rec.lease_epoch) == ("pending", 1)
    status = world.isolation.get_account_status("user", "alice", "KRAKEN")[1]
    assert status["total_failures"] == 0 and not result.errors
