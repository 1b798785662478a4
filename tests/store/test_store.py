"""The state store on both backends (``database``: a SQLite file in tmp_path, then a fresh
schema on a throwaway PostgreSQL). Tests named ``..._sqlite`` or taking ``path`` are about
SQLite's file (WAL, file modes, busy locks, PRAGMA user_version) and run on it alone;
PostgreSQL's own (schema version table, lost connections, lock timeouts) are in test_pg.py.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from bot.errors import NijaError
from bot.redact import Redactor
from bot.store.backend import Database
from bot.store.db import BackendError
from bot.store.writer import (
    MIGRATIONS,
    SCHEMA_VERSION,
    OrderRecord,
    SchemaVersionError,
    Store,
    StoreError,
    db_path,
    migrate,
    prepare_database,
)
from nija_testkit.clock import FakeClock

ALICE = "user/alice/COINBASE"
BOB = "platform/platform/KRAKEN"


def order(cid: str = "cid-1", account_key: str = ALICE, **overrides) -> OrderRecord:
    fields = dict(
        client_order_id=cid,
        account_key=account_key,
        intent_id="intent-1",
        symbol="BTC-USD",
        side="buy",
        type="market",
        amount=None,
        quote_amount=25.0,
        limit_price=None,
        purpose="entry",
    )
    fields.update(overrides)
    return OrderRecord(**fields)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return db_path(tmp_path, "paper")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(wall_start=1_700_000_000.0)  # monotonic stays apart: stamps are wall time


@pytest.fixture
def store(database: Database, clock: FakeClock):
    with Store(database, ALICE, clock=clock) as s:
        yield s


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


@contextmanager
def write_lock(database: Database) -> Iterator[None]:
    """Another session holding the write lock on orders and cycles until the block ends."""
    if database.kind == "sqlite":
        locker = raw(database.path)  # type: ignore[attr-defined]
        locker.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        return
    with psycopg.connect(database.url.url, autocommit=True) as conn:  # type: ignore[attr-defined]
        conn.execute("BEGIN")
        conn.execute("LOCK TABLE orders, cycles IN EXCLUSIVE MODE")  # readers go on
        try:
            yield
        finally:
            conn.execute("ROLLBACK")


# -- file, WAL, migrations -------------------------------------------------------


def test_db_path_names_the_mode(tmp_path: Path) -> None:
    assert db_path(tmp_path, "live") == tmp_path / "nija-live.db"
    assert db_path("data", "paper") == Path("data/nija-paper.db")
    with pytest.raises(ValueError):
        db_path(tmp_path, "../x")


def test_fresh_database_is_wal_at_current_version_sqlite(tmp_path: Path) -> None:
    path = db_path(tmp_path / "nested" / "dir", "paper")
    Store(path, ALICE).close()
    conn = raw(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"orders", "fills", "positions", "cycles", "health_events", "day_equity"} <= tables
    assert {"dust", "operator_actions", "account_pauses"} <= tables
    conn.close()


def test_reopening_is_idempotent_and_keeps_data(database: Database) -> None:
    with Store(database, ALICE) as s:
        assert s.record_order(order())
    with Store(database, ALICE) as s:
        assert s.get_order("cid-1") is not None
    database.prepare()
    with Store(database, ALICE, create=False) as s:
        assert s.get_order("cid-1") is not None


def test_migrating_a_current_file_changes_nothing_sqlite(path: Path) -> None:
    Store(path, ALICE).close()
    conn = raw(path)
    assert migrate(conn) == (SCHEMA_VERSION, SCHEMA_VERSION)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_newer_schema_is_a_clear_error_and_left_untouched_sqlite(path: Path) -> None:
    Store(path, ALICE).close()
    conn = raw(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaVersionError) as info:
        Store(path, ALICE)
    assert isinstance(info.value, StoreError)
    assert info.value.found == SCHEMA_VERSION + 1 and info.value.supported == SCHEMA_VERSION
    assert "newer NIJA" in str(info.value)
    with pytest.raises(SchemaVersionError):
        Store.open_readonly(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    conn.close()


def test_migrations_apply_missing_steps_in_order_sqlite(tmp_path: Path) -> None:
    conn = raw(tmp_path / "m.db")
    steps = [("CREATE TABLE a (x)",), ("INSERT INTO a VALUES (1)",)]
    assert migrate(conn, steps) == (0, 2)
    # Only the new third step runs: the insert of step 2 is not repeated.
    assert migrate(conn, [*steps, ("INSERT INTO a VALUES (3)",)]) == (2, 3)
    assert [r[0] for r in conn.execute("SELECT x FROM a ORDER BY x")] == [1, 3]
    conn.close()


def test_a_failing_migration_changes_nothing_sqlite(tmp_path: Path) -> None:
    conn = raw(tmp_path / "m.db")
    steps = [("CREATE TABLE a (x)",), ("CREATE TABLE b (y)", "THIS IS NOT SQL")]
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, steps)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    assert not conn.in_transaction
    conn.close()


# -- orders and fills ----------------------------------------------------------------


def test_order_round_trip_with_clock_timestamps(store: Store, clock: FakeClock) -> None:
    rec = order(amount=None, quote_amount=25.0)
    assert store.record_order(rec) is True
    got = store.get_order("cid-1")
    expected = dataclasses.replace(rec, created_at=clock.wall(), updated_at=clock.wall())
    assert got == expected
    assert got.status == "pending" and got.attempts == 0 and got.filled == 0.0
    assert store.get_order("nope") is None


def test_limit_order_with_explicit_fields_round_trips(store: Store) -> None:
    rec = order(
        "cid-L", side="sell", type="limit", amount=0.5, quote_amount=None, limit_price=101.5,
        purpose="exit", status="open", venue_order_id="V1", filled=0.1, average_price=101.0,
        fee_usd=0.02, reason="partial", position_id=7, created_at=5.0, updated_at=6.0, attempts=2,
    )  # fmt: skip
    assert store.record_order(rec)
    assert store.get_order("cid-L") == rec


def test_duplicate_client_order_id_is_refused_and_changes_nothing(store: Store) -> None:
    assert store.record_order(order(quote_amount=25.0))
    assert store.record_order(order(quote_amount=999.0, intent_id="other")) is False
    got = store.get_order("cid-1")
    assert got.quote_amount == 25.0 and got.intent_id == "intent-1"
    assert len(store.orders_since(0)) == 1


def test_invalid_orders_are_refused(store: Store) -> None:
    with pytest.raises(ValueError):
        store.record_order(order(account_key=BOB))
    with pytest.raises(ValueError):
        store.record_order(order(side="hold"))
    with pytest.raises(ValueError):
        store.record_order(order(status="done"))
    with pytest.raises(ValueError):
        store.record_order(order(quote_amount=math.nan))
    assert store.orders_since(0) == []


def test_update_order_sets_fields_and_updated_at(store: Store, clock: FakeClock) -> None:
    store.record_order(order())
    created = clock.wall()
    clock.advance(30)
    store.update_order(
        "cid-1", status="filled", venue_order_id="V9", filled=0.001, average_price=25000.0,
        fee_usd=0.1, reason=None, attempts=3, position_id=4,
    )  # fmt: skip
    got = store.get_order("cid-1")
    assert (got.status, got.venue_order_id, got.filled, got.average_price) == (
        "filled",
        "V9",
        0.001,
        25000.0,
    )
    assert (got.fee_usd, got.attempts, got.position_id) == (0.1, 3, 4)
    assert got.created_at == created and got.updated_at == created + 30


def test_update_order_refuses_bad_input_and_missing_orders(store: Store) -> None:
    store.record_order(order())
    with pytest.raises(ValueError):
        store.update_order("cid-1", symbol="ETH-USD")
    with pytest.raises(ValueError):
        store.update_order("cid-1", status="done")
    with pytest.raises(ValueError):
        store.update_order("cid-1", filled=math.inf)
    with pytest.raises(StoreError) as info:
        store.update_order("missing", status="open")
    assert info.value.operation == "update_order"
    assert store.get_order("cid-1").status == "pending"


def test_orders_with_status_and_since(store: Store, clock: FakeClock) -> None:
    store.record_order(order("a"))
    clock.advance(10)
    store.record_order(order("b", status="unknown"))
    clock.advance(10)
    store.record_order(order("c", status="open"))
    store.update_order("a", status="filled")
    assert [o.client_order_id for o in store.orders_with_status("unknown", "open")] == ["b", "c"]
    assert [o.client_order_id for o in store.orders_with_status("filled")] == ["a"]
    assert store.orders_with_status("rejected") == []
    assert [o.client_order_id for o in store.orders_since(clock.wall() - 10)] == ["b", "c"]


def test_fills_round_trip_and_need_a_stored_order(store: Store) -> None:
    store.record_order(order())
    store.add_fill("cid-1", 0.001, 25000.0, 0.05, at=10.0)
    store.add_fill("cid-1", 0.002, 25010.0, 0.10, at=11.0)
    fills = store.fills_for("cid-1")
    assert [(f.quantity, f.price, f.fee_usd, f.at) for f in fills] == [
        (0.001, 25000.0, 0.05, 10.0),
        (0.002, 25010.0, 0.10, 11.0),
    ]
    with pytest.raises(StoreError) as info:
        store.add_fill("no-such-order", 1.0, 1.0, 0.0, at=12.0)
    assert info.value.operation == "add_fill"
    assert store.fills_for("no-such-order") == []


# -- positions ---------------------------------------------------------------------


def test_position_lifecycle(store: Store) -> None:
    pos = store.open_position("BTC-USD", 0.01, 25000.0, 24500.0, 26000.0, 500.0, opened_at=100.0)
    assert pos.id > 0 and pos.status == "open" and pos.account_key == ALICE
    assert pos.highest_close == 25000.0 and pos.breakeven_done is False and pos.external is False
    assert store.position_for("BTC-USD") == pos
    assert store.position_for("ETH-USD") is None

    store.update_position(pos.id, stop=25000.0, highest_close=25600.0, breakeven_done=True)
    store.update_position(pos.id, quantity=0.008, target=27000.0)
    got = store.position_for("BTC-USD")
    assert (got.stop, got.highest_close, got.breakeven_done) == (25000.0, 25600.0, True)
    assert (got.quantity, got.target) == (0.008, 27000.0)
    with pytest.raises(ValueError):
        store.update_position(pos.id, symbol="ETH-USD")

    store.close_position(pos.id, 26100.0, "target", closed_at=200.0, realized_pnl_usd=8.8)
    assert store.open_positions() == [] and store.position_for("BTC-USD") is None
    [closed] = store.closed_positions_since(150.0)
    assert (closed.status, closed.exit_price, closed.close_reason) == ("closed", 26100.0, "target")
    assert (closed.closed_at, closed.realized_pnl_usd) == (200.0, 8.8)
    assert store.closed_positions_since(201.0) == []
    with pytest.raises(StoreError):
        store.close_position(pos.id, 1.0, "again", closed_at=300.0, realized_pnl_usd=-1.0)
    assert store.realized_pnl_since(0) == pytest.approx(8.8)


def test_one_open_position_per_symbol_and_external_flag(store: Store) -> None:
    first = store.open_position(
        "ETH-USD", 1.0, 2000.0, 1900.0, None, None, 1.0, entry_client_order_id=None, external=True
    )
    assert first.external is True and first.target is None
    with pytest.raises(StoreError) as info:
        store.open_position("ETH-USD", 1.0, 2000.0, 1900.0, 2200.0, 100.0, 2.0)
    assert info.value.operation == "open_position"
    store.close_position(first.id, 2100.0, "stop", closed_at=3.0, realized_pnl_usd=100.0)
    second = store.open_position("ETH-USD", 2.0, 2050.0, 1950.0, 2300.0, 100.0, 4.0, "cid-2")
    assert second.id != first.id and second.entry_client_order_id == "cid-2"
    assert [p.id for p in store.open_positions()] == [second.id]


def test_realized_pnl_sums_closes_since(store: Store) -> None:
    assert store.realized_pnl_since(0) == 0.0
    for i, (pnl, at) in enumerate([(10.0, 100.0), (-4.0, 200.0), (2.5, 300.0)]):
        pos = store.open_position(f"S{i}", 1.0, 10.0, 9.0, 12.0, 1.0, opened_at=at - 50)
        store.close_position(pos.id, 10.0, "exit", closed_at=at, realized_pnl_usd=pnl)
    assert store.realized_pnl_since(0) == pytest.approx(8.5)
    assert store.realized_pnl_since(200.0) == pytest.approx(-1.5)


# -- cycles, health, risk state ------------------------------------------------------


def test_cycles_newest_first(store: Store) -> None:
    store.record_cycle(1.0, 120.0, 5, 0, 1, {}, ok=True)
    store.record_cycle(2.0, 300.5, 7, 1, 2, {"network_error": 2}, ok=False)
    store.record_cycle(3.0, 90.0, 4, 0, 2, {}, ok=True)
    last_two = store.last_cycles(2)
    assert [c.started_at for c in last_two] == [3.0, 2.0]
    failed = last_two[1]
    assert failed.errors == {"network_error": 2} and failed.ok is False
    assert (
        failed.duration_ms,
        failed.broker_calls,
        failed.orders_placed,
        failed.positions_open,
    ) == (
        300.5,
        7,
        1,
        2,
    )
    assert len(store.last_cycles(10)) == 3


def test_health_events_round_trip(store: Store) -> None:
    store.record_health_event(10.0, "healthy", "degraded", "2 network errors")
    store.record_health_event(20.0, "degraded", "failing", "circuit open")
    events = store.health_events_since(15.0)
    assert [(e.at, e.old, e.new, e.reason) for e in events] == [
        (20.0, "degraded", "failing", "circuit open")
    ]
    assert len(store.health_events_since(0)) == 2


def test_free_text_columns_never_hold_a_secret(database: Database, clock: FakeClock) -> None:
    key = "K7qP2xZ9mW4vN8rT3yL6aB5cD1"  # as a venue may quote it: whole, cut, in capitals
    with Store(database, ALICE, clock=clock, redactor=Redactor((key,))) as s:
        s.record_order(order(reason=f"invalid key {key}"))
        s.update_order("cid-1", status="rejected", reason=f"invalid key {key[:12]}")
        s.record_health_event(1.0, "healthy", "failing", f"auth: {key.upper()}")
        pos = s.open_position("BTC-USD", 1.0, 10.0, 9.0, 12.0, 1.0, opened_at=1.0)
        s.close_position(pos.id, 11.0, f"{key[-10:]} revoked", closed_at=2.0, realized_pnl_usd=1.0)
        assert s.get_order("cid-1").reason == "invalid key ***"
        assert [e.reason for e in s.health_events_since(0)] == ["auth: ***"]
        assert s.closed_positions_since(0)[0].close_reason == "*** revoked"
    if database.kind != "sqlite":
        return  # the rows read back above are the rows as stored
    path = database.path  # type: ignore[attr-defined]
    stored = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*")).lower()
    for piece in (key[:8], key[-8:]):
        assert piece.lower().encode() not in stored


def test_database_files_are_private_whatever_the_umask_sqlite(path: Path) -> None:
    old = os.umask(0)
    try:
        with Store(path, ALICE) as s:
            s.record_health_event(1.0, "healthy", "degraded", "x")
            files = sorted(path.parent.glob(path.name + "*"))
            assert [f.name for f in files] == [path.name, f"{path.name}-shm", f"{path.name}-wal"]
            assert all(f.stat().st_mode & 0o777 == 0o600 for f in files)
        os.chmod(path, 0o644)  # left readable by an older version: made private again
        with Store(path, ALICE):
            assert path.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_day_start_equity(store: Store) -> None:
    assert store.day_start_equity("2024-05-01") is None
    store.set_day_start_equity("2024-05-01", 1000.0)
    store.set_day_start_equity("2024-05-02", 1010.0)
    store.set_day_start_equity("2024-05-01", 1001.0)  # replaced, not duplicated
    assert store.day_start_equity("2024-05-01") == 1001.0
    assert store.day_start_equity("2024-05-02") == 1010.0
    with pytest.raises(ValueError):
        store.set_day_start_equity("May 1st", 1.0)


# -- isolation between accounts ------------------------------------------------------


def test_two_accounts_in_one_database_never_see_each_other(database: Database) -> None:
    with Store(database, ALICE) as alice, Store(database, BOB) as bob:
        assert alice.record_order(order("same-id", ALICE))
        alice.add_fill("same-id", 1.0, 10.0, 0.0, at=1.0)
        pos = alice.open_position("BTC-USD", 1.0, 10.0, 9.0, 12.0, 1.0, opened_at=1.0)
        alice.record_cycle(1.0, 10.0, 1, 1, 1, {}, ok=True)
        alice.record_health_event(1.0, "healthy", "degraded", "x")
        alice.set_day_start_equity("2024-05-01", 500.0)

        assert bob.get_order("same-id") is None
        assert bob.orders_since(0) == [] and bob.orders_with_status("pending") == []
        assert bob.fills_for("same-id") == []
        assert bob.open_positions() == [] and bob.position_for("BTC-USD") is None
        assert bob.last_cycles(5) == [] and bob.health_events_since(0) == []
        assert bob.day_start_equity("2024-05-01") is None
        # Bob cannot touch Alice's rows, and may reuse her client id for his own order.
        with pytest.raises(StoreError):
            bob.update_order("same-id", status="canceled")
        with pytest.raises(StoreError):
            bob.close_position(pos.id, 11.0, "x", closed_at=2.0, realized_pnl_usd=1.0)
        with pytest.raises(StoreError):
            bob.update_position(pos.id, stop=1.0)
        with pytest.raises(StoreError):
            bob.add_fill("same-id", 1.0, 10.0, 0.0, at=2.0)
        assert bob.record_order(order("same-id", BOB, quote_amount=7.0))
        bob.open_position("BTC-USD", 2.0, 10.0, 9.0, 12.0, 1.0, opened_at=1.0)

        assert alice.get_order("same-id").quote_amount == 25.0
        assert alice.get_order("same-id").status == "pending"
        assert bob.get_order("same-id").quote_amount == 7.0
        assert alice.position_for("BTC-USD").stop == 9.0
        assert alice.position_for("BTC-USD").quantity == 1.0
        assert len(alice.fills_for("same-id")) == 1


# -- failures and concurrency --------------------------------------------------------


def test_locked_database_raises_store_error_then_recovers_sqlite(path: Path) -> None:
    with Store(path, ALICE, busy_timeout_ms=100) as s:
        s.record_cycle(1.0, 1.0, 1, 0, 0, {}, ok=True)
        locker = raw(path)
        locker.execute("BEGIN EXCLUSIVE")
        try:
            started = time.monotonic()
            with pytest.raises(StoreError) as info:
                s.record_cycle(2.0, 1.0, 1, 0, 0, {}, ok=True)
            elapsed = time.monotonic() - started
            assert info.value.operation == "record_cycle"
            assert info.value.account_key == ALICE
            assert info.value.error_name == "SQLITE_BUSY"
            assert isinstance(info.value, NijaError)
            assert 0.05 <= elapsed < 1.5
            assert len(s.last_cycles(10)) == 1  # WAL: reads go on during the lock
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        s.record_cycle(3.0, 1.0, 1, 0, 0, {}, ok=True)
        assert [c.started_at for c in s.last_cycles(10)] == [3.0, 1.0]


def test_closed_store_raises_store_error(database: Database) -> None:
    s = Store(database, ALICE)
    s.close()
    with pytest.raises(StoreError) as info:
        s.get_order("x")
    assert info.value.operation == "get_order"


def test_two_threads_write_concurrently(database: Database) -> None:
    per_thread = 150
    errors: list[BaseException] = []

    def work(account_key: str) -> None:
        try:
            with Store(database, account_key) as s:
                for i in range(per_thread):
                    s.record_order(order(f"{account_key}-{i}", account_key))
                    s.record_cycle(float(i), 1.0, 1, 1, 0, {}, ok=True)
        except BaseException as exc:  # reported below, never lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(key,)) for key in (ALICE, BOB)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    with Store.open_readonly(database) as ro:
        for key in (ALICE, BOB):
            assert len(ro.orders_since(key, 0)) == per_thread
            assert len(ro.account(key).last_cycles(per_thread + 10)) == per_thread


# -- read-only access ----------------------------------------------------------------


def test_read_only_view_sees_commits_while_a_writer_is_open(database: Database) -> None:
    with Store(database, ALICE) as alice, Store(database, BOB) as bob:
        alice.record_order(order("a1", ALICE))
        alice.open_position("BTC-USD", 1.0, 10.0, 9.0, 12.0, 1.0, opened_at=1.0)
        bob.record_cycle(1.0, 1.0, 1, 0, 0, {}, ok=True)
        with Store.open_readonly(database) as ro:
            assert ro.account_keys() == sorted([ALICE, BOB])
            assert [o.client_order_id for o in ro.orders_since(ALICE, 0)] == ["a1"]
            assert [p.symbol for p in ro.open_positions(ALICE)] == ["BTC-USD"]
            assert ro.open_positions(BOB) == []

            # Later commits show up; a writer holding the lock does not block the reader.
            alice.record_order(order("a2", ALICE))
            with write_lock(database):
                assert [o.client_order_id for o in ro.orders_since(ALICE, 0)] == ["a1", "a2"]
            # The reader holds no lock that stops the writer.
            alice.record_order(order("a3", ALICE))
            assert len(ro.account(ALICE).orders_with_status("pending")) == 3


def test_read_only_view_cannot_write(database: Database) -> None:
    Store(database, ALICE).close()
    with Store.open_readonly(database) as ro:
        with pytest.raises((sqlite3.OperationalError, BackendError)):
            ro._conn.execute("INSERT INTO day_equity VALUES (?, ?, ?)", ("k", "2024-01-01", 1.0))
        with pytest.raises((sqlite3.OperationalError, BackendError)):
            ro._conn.begin_write()
            ro._conn.execute("INSERT INTO day_equity VALUES (?, ?, ?)", ("k", "2024-01-01", 1.0))
    with Store(database, "k") as s:
        assert s.day_start_equity("2024-01-01") is None


def test_read_only_open_of_missing_or_uninitialised_file_sqlite(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        Store.open_readonly(tmp_path / "absent.db")
    assert not (tmp_path / "absent.db").exists()
    empty = tmp_path / "empty.db"
    raw(empty).execute("CREATE TABLE t (x)")
    with pytest.raises(SchemaVersionError) as info:
        Store.open_readonly(empty)
    assert "not initialised" in str(info.value)


def test_a_version_1_database_upgrades_and_keeps_its_orders_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, MIGRATIONS[:1]) == (0, 1)
    conn.execute(
        "INSERT INTO orders (account_key, client_order_id, intent_id, symbol, side, type,"
        " amount, purpose, status, created_at, updated_at)"
        " VALUES ('user/a/KRAKEN', 'c1', 'i1', 'BTC/USD', 'buy', 'market', 0.1, 'entry',"
        " 'unknown', 1.0, 1.0)"
    )
    conn.close()
    store = Store(path, "user/a/KRAKEN")
    try:
        old = store.get_order("c1")
        assert old is not None and old.status == "unknown" and old.stop is None
        store.record_order(
            OrderRecord(
                "c2", "user/a/KRAKEN", "i2", "BTC/USD", "buy", "market", 0.1, None, None,
                "entry", stop=90.0, target=120.0, initial_risk=10.0,
            )
        )  # fmt: skip
        new = store.get_order("c2")
        assert (new.stop, new.target, new.initial_risk) == (90.0, 120.0, 10.0)
    finally:
        store.close()


def test_a_transaction_lands_all_its_writes_or_none(database: Database) -> None:
    store = Store(database, "user/a/KRAKEN")
    try:
        store.record_order(
            OrderRecord("c1", "user/a/KRAKEN", "i1", "BTC/USD", "buy", "market", 1.0, None, None, "entry")
        )  # fmt: skip
        with pytest.raises(RuntimeError), store.transaction("settle"):
            store.update_order("c1", status="filled", filled=1.0)
            store.add_fill("c1", 1.0, 100.0, 0.1, 1.0)
            raise RuntimeError("killed between the fill and the position")
        assert store.get_order("c1").status == "pending" and store.fills_for("c1") == []
        with store.transaction("settle"):
            store.update_order("c1", status="filled", filled=1.0)
            store.add_fill("c1", 1.0, 100.0, 0.1, 1.0)
            pos = store.open_position("BTC/USD", 1.0, 100.0, 90.0, 120.0, 10.0, 1.0, "c1")
        assert store.get_order("c1").status == "filled" and len(store.fills_for("c1")) == 1
        assert store.open_positions() == [pos]
    finally:
        store.close()


def test_a_version_2_database_upgrades_with_fees_absence_exits_and_dust_sqlite(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v2.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, MIGRATIONS[:2]) == (0, 2)
    conn.execute(
        "INSERT INTO orders (account_key, client_order_id, intent_id, symbol, side, type,"
        " amount, purpose, status, created_at, updated_at)"
        " VALUES ('user/a/KRAKEN', 'c1', 'i1', 'LTC/USDT', 'buy', 'market', 0.1, 'entry',"
        " 'filled', 1.0, 1.0)"
    )
    conn.execute(
        "INSERT INTO positions (account_key, symbol, quantity, entry_price, stop, highest_close,"
        " opened_at) VALUES ('user/a/KRAKEN', 'LTC/USDT', 0.1, 80.0, 75.0, 80.0, 1.0)"
    )
    conn.close()
    clock = FakeClock(wall_start=50.0)
    with Store(path, "user/a/KRAKEN", clock=clock) as store:
        old = store.get_order("c1")
        assert (old.fee, old.fee_currency, old.sent_at, old.absent_checks) == (0.0, None, None, 0)
        (pos,) = store.open_positions()
        assert (pos.exit_attempts, pos.exit_retry_at, pos.exit_blocked) == (0, None, None)
        store.update_order("c1", fee=0.0001, fee_currency="LTC", absent_checks=2, absent_at=9.0)
        got = store.get_order("c1")
        assert (got.fee, got.fee_currency, got.absent_checks, got.absent_at) == (
            0.0001, "LTC", 2, 9.0,
        )  # fmt: skip
        store.update_position(pos.id, exit_attempts=3, exit_retry_at=70.0, exit_blocked="EOrder")
        (pos,) = store.open_positions()
        assert (pos.exit_attempts, pos.exit_retry_at, pos.exit_blocked) == (3, 70.0, "EOrder")
        assert store.dust() == []


def test_dust_is_kept_per_asset_and_forgotten_at_zero(store: Store, clock: FakeClock) -> None:
    store.set_dust("LTC", 0.0004)
    clock.advance(5)
    store.set_dust("BTC", 2e-9)
    store.set_dust("LTC", 0.0006)  # replaced, not added: the caller knows the whole remainder
    assert [(d.asset, d.quantity) for d in store.dust()] == [("BTC", 2e-9), ("LTC", 0.0006)]
    assert {d.updated_at for d in store.dust()} == {clock.wall()}
    store.set_dust("BTC", 0.0)
    assert [d.asset for d in store.dust()] == ["LTC"]
    with pytest.raises(ValueError):
        store.set_dust("LTC", math.nan)
    with Store(store.database, BOB) as other:
        assert other.dust() == []  # scoped to its account like every other table


def test_new_order_fields_round_trip(store: Store) -> None:
    rec = order(fee=0.25, fee_currency="USD", sent_at=5.0, absent_checks=1, absent_at=6.0)
    assert store.record_order(rec)
    got = store.get_order("cid-1")
    assert (got.fee, got.fee_currency, got.sent_at, got.absent_checks, got.absent_at) == (
        0.25, "USD", 5.0, 1, 6.0,
    )  # fmt: skip
    with pytest.raises(ValueError):
        store.record_order(order("cid-2", fee=math.inf))


def test_a_store_opened_without_create_never_makes_a_new_database_sqlite(tmp_path):
    """The daemon's account threads open with create=False: a vanished file is an error."""
    path = tmp_path / "nija-paper.db"
    prepare_database(path)
    with Store(path, "user/a/PAPER", create=False) as store:
        assert store.open_positions() == []
    path.unlink()
    with pytest.raises(StoreError):
        Store(path, "user/a/PAPER", create=False)
    assert not path.exists()
