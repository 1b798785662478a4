"""The PostgreSQL pool, bounded whatever the number of accounts (``NIJA_DATABASE_POOL_SIZE``).

An account's store holds a pooled connection only for one statement or one write
transaction, so a few connections serve many accounts; a pool whose every connection stays
in use past the wait (``connect_timeout_seconds``) is that account's ``StoreError`` naming
the pool, at once (no retries stacked on the wait), and the next call works again.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from bot.store.pg import PostgresDatabase, Retry
from bot.store.writer import OrderRecord, Store, StoreError

ACCOUNTS = 50
ORDERS = 4


def order(key: str, cid: str) -> OrderRecord:
    return OrderRecord(cid, key, "i-" + cid, "BTC/USD", "buy", "market", 0.1, None, None, "entry")


def sessions(url: str, schema: str) -> int:
    """The server sessions of the test's pools (named after its schema)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
            " AND pid <> pg_backend_pid()",
            (schema,),
        ).fetchall()
    return int(rows[0][0])


@pytest.fixture
def small(postgres_url: str) -> Iterator[PostgresDatabase]:
    """A prepared store on a pool of 4, giving up on a busy pool after 1 s."""
    db = PostgresDatabase(
        postgres_url,
        "paper",
        max_connections=4,
        connect_timeout_seconds=1.0,
        retry=Retry(attempts=3, first_delay=0.01),
    )
    db.prepare()
    yield db
    db.close()


def test_fifty_accounts_write_together_on_a_pool_of_four(small, postgres_url) -> None:
    keys = [f"user/u{i:02d}/KRAKEN" for i in range(ACCOUNTS)]
    start = threading.Barrier(ACCOUNTS)
    failures: list[BaseException] = []

    def account(key: str) -> None:
        try:
            with Store(small, key, create=False) as store:
                start.wait(10)
                for n in range(ORDERS):
                    assert store.record_order(order(key, f"{key}-{n}"))
                    with store.transaction("settle"):
                        store.update_order(f"{key}-{n}", status="filled", filled=0.1)
                        store.add_fill(f"{key}-{n}", 0.1, 100.0, 0.01, float(n))
                    store.record_cycle(float(n), 1.0, 2, 1, 0, {}, ok=True)
        except BaseException as exc:  # reported below, with the account
            failures.append(exc)

    threads = [threading.Thread(target=account, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == [] and not any(t.is_alive() for t in threads)
    schema = small.url.url.rsplit("application_name=", 1)[1]
    assert sessions(postgres_url, schema) <= 4  # the pool's bound, not one per account
    for key in keys:  # every account's writes, whole and its own
        with Store(small, key, create=False) as store:
            stored = store.orders_since(0)
            assert sorted(o.client_order_id for o in stored) == [
                f"{key}-{n}" for n in range(ORDERS)
            ]
            assert {o.status for o in stored} == {"filled"}
            assert len(store.last_cycles(10)) == ORDERS
            assert all(len(store.fills_for(o.client_order_id)) == 1 for o in stored)


def test_an_exhausted_pool_fails_that_call_naming_the_pool_then_works_again(small) -> None:
    holders = [Store(small, f"user/h{i}/KRAKEN", create=False) for i in range(4)]
    alice = Store(small, "user/alice/KRAKEN", create=False)
    calls = (alice.open_positions, lambda: alice.record_order(order(alice.account_key, "a1")))
    try:
        with contextlib.ExitStack() as held:
            for holder in holders:  # four open transactions hold the pool's four connections
                held.enter_context(holder.transaction("settle"))
            for call in calls:  # a read, and a write's BEGIN
                started = time.monotonic()
                with pytest.raises(StoreError) as caught:
                    call()
                waited = time.monotonic() - started
                assert 0.9 <= waited < 1.9  # one wait of the bound, not one per retry
                error = caught.value
                assert error.error_name == "pool_exhausted"
                assert error.account_key == "user/alice/KRAKEN"
                assert 'pool "nija-store"' in str(error) and "all 4 connections" in str(error)
                assert "NIJA_DATABASE_POOL_SIZE" in str(error)
        # The same store works at once: nothing was written, nothing is left half done.
        assert alice.get_order("a1") is None
        assert alice.record_order(order(alice.account_key, "a1"))
    finally:
        for store in (*holders, alice):
            store.close()


def test_a_server_that_refuses_connections_is_still_tried_again(postgres_server) -> None:
    down = PostgresDatabase(
        postgres_server.url().replace(f":{postgres_server.port}/", ":1/"),
        "paper",
        max_connections=2,
        connect_timeout_seconds=0.5,
        retry=Retry(attempts=3, first_delay=0.01),
    )
    try:
        with pytest.raises(StoreError) as caught:
            down.prepare()
    finally:
        down.close()
    # Not a busy pool: the pool could not connect, and the read was tried three times.
    assert caught.value.error_name == "connection_lost" and "tried 3 times" in str(caught.value)


def test_a_cycle_that_meets_a_busy_pool_is_that_accounts_store_failure(
    venue_server, tmp_path, postgres_url
) -> None:
    from tests.engine.test_trader import World  # the Kraken emulator's world, as the fence's

    db = PostgresDatabase(postgres_url, "live", max_connections=1, connect_timeout_seconds=1.0)
    db.prepare()
    world = World(venue_server("KRAKEN"), tmp_path, db)
    try:
        alice = world.trader("alice", create=False)
        assert alice.run_cycle().ok
        holder = Store(db, "user/holder/KRAKEN", create=False)
        with holder.transaction("settle"):  # the pool's one connection, held
            result = alice.run_cycle()
        holder.close()
        # A failed cycle naming the pool, counted as the account's store failure (its read
        # and then its cycle record each waited the bound): never an empty answer.
        assert not result.ok and result.orders_placed == 0
        assert 'pool "nija-store"' in (result.error or "")
        assert set(result.errors) == {"store_error"}
        status = world.isolation.get_account_status("user", "alice", "KRAKEN")[1]
        assert set(status["failure_breakdown"]) == {"store_error"}
        assert alice.run_cycle().ok  # the next cycle, with the pool free again
    finally:
        world.close()
        db.close()


def test_the_lease_keeper_renews_on_its_own_connection_while_the_pool_is_busy(small) -> None:
    from bot.cluster.keeper import LeaseKeeper, LeaseTimes
    from bot.cluster.nodes import NodeIdentity
    from nija_testkit.clock import FakeClock

    keys = [f"user/k{i}/KRAKEN" for i in range(3)]
    keeper = LeaseKeeper(
        small, NodeIdentity.this_process("n1"), keys, times=LeaseTimes(), clock=FakeClock()
    )
    holders = [Store(small, f"user/h{i}/KRAKEN", create=False) for i in range(4)]
    try:
        keeper.start(thread=False)
        assert set(keeper.held()) == set(keys)
        with contextlib.ExitStack() as held:
            for holder in holders:  # every connection of the accounts' pool held
                held.enter_context(holder.transaction("settle"))
            assert small.pool_in_use() == 4
            started = time.monotonic()
            assert keeper.tick()  # heartbeat and renewal, at once: no wait for the pool
            assert time.monotonic() - started < 0.5
            assert keeper.last_renewal is not None and set(keeper.held()) == set(keys)
    finally:
        keeper.stop()
        for store in holders:
            store.close()
