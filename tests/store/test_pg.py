"""The PostgreSQL backend's own behaviour, on a throwaway server (``postgres_server``).

What both backends share runs in test_store.py on each; here: the schema as PostgreSQL
holds it (its version table, the mode, the same columns as SQLite's), its migrations,
lost connections (retried, or a failure of that account: never an empty answer), lock
timeouts, and a password that never reaches a message.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bot.store.pg import PostgresDatabase, Retry, parse_database_url
from bot.store.schema import PG_MIGRATIONS, SCHEMA_VERSION
from bot.store.writer import OrderRecord, SchemaVersionError, Store, StoreError
from nija_testkit.postgres import PostgresServer

ALICE = "user/alice/KRAKEN"
QUICK = Retry(attempts=3, first_delay=0.01)


def order(cid: str) -> OrderRecord:
    return OrderRecord(cid, ALICE, "i-" + cid, "BTC/USD", "buy", "market", 0.1, None, None, "entry")


@pytest.fixture
def db(postgres_url: str) -> Iterator[PostgresDatabase]:
    database = PostgresDatabase(postgres_url, "paper", retry=QUICK, connect_timeout_seconds=2.0)
    yield database
    database.close()


def sql(url: str, statement: str, *params: object) -> list[tuple[object, ...]]:
    """Run one statement in the test's schema on a connection of its own."""
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(statement, params or None)
        return cur.fetchall() if cur.description else []


def schema_name(url: str) -> str:
    return sql(url, "SELECT current_schema()")[0][0]  # type: ignore[return-value]


# -- the schema ------------------------------------------------------------------------


def test_a_fresh_schema_gets_every_table_its_version_and_mode(db, postgres_url) -> None:
    assert (
        db.prepare() == f'no NIJA tables in PostgreSQL database "nija" on 127.0.0.1:{db.url.port}'
    )
    assert db.prepare() is None  # once there, nothing new
    assert sql(postgres_url, "SELECT version, mode FROM nija_schema") == [(SCHEMA_VERSION, "paper")]
    tables = {
        r[0]
        for r in sql(
            postgres_url,
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            schema_name(postgres_url),
        )
    }
    assert tables == {
        "nija_schema", "orders", "fills", "positions", "cycles", "health_events",
        "day_equity", "dust", "operator_actions", "account_pauses",
        "leases", "lease_events", "nodes",  # several nodes' leases: PostgreSQL's own
    }  # fmt: skip


def test_its_columns_are_sqlites_columns(db, postgres_url, tmp_path: Path) -> None:
    db.prepare()
    lite = tmp_path / "nija-paper.db"
    Store(lite, ALICE).close()
    conn = sqlite3.connect(lite)
    kinds = {"INTEGER": "bigint", "REAL": "double precision", "TEXT": "text"}
    for table in ("orders", "fills", "positions", "cycles", "health_events", "dust"):
        want = {
            (r[1], kinds[r[2]], bool(r[3]) or bool(r[5]))
            for r in conn.execute(f"PRAGMA table_info({table})")
        }
        got = {
            (name, kind, nullable == "NO")
            for name, kind, nullable in sql(
                postgres_url,
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
                " WHERE table_schema = %s AND table_name = %s",
                schema_name(postgres_url),
                table,
            )
        }
        assert got == want, table
    conn.close()


def test_floats_keep_every_digit(db) -> None:
    # PostgreSQL's REAL has 4 bytes: the schema must say DOUBLE PRECISION.
    values = (0.1 + 0.2, 1e-12, 123456789.123456789, 2.0**60 + 0.5)
    with Store(db, ALICE) as store:
        for i, value in enumerate(values):
            store.record_order(OrderRecord(f"c{i}", ALICE, "i", "X/USD", "buy", "market",
                                           value, None, None, "entry", fee=value))  # fmt: skip
        assert [store.get_order(f"c{i}").amount for i in range(len(values))] == list(values)


def test_a_newer_schema_is_a_clear_error_and_left_untouched(db, postgres_url) -> None:
    db.prepare()
    sql(postgres_url, "UPDATE nija_schema SET version = %s", SCHEMA_VERSION + 1)
    with pytest.raises(SchemaVersionError) as info:
        Store(db, ALICE)
    assert "newer NIJA" in str(info.value)
    with pytest.raises(SchemaVersionError):
        Store.open_readonly(db)
    assert sql(postgres_url, "SELECT version FROM nija_schema") == [(SCHEMA_VERSION + 1,)]


def test_a_store_of_another_mode_is_refused(postgres_url) -> None:
    live = PostgresDatabase(postgres_url, "live", retry=QUICK)
    paper = PostgresDatabase(postgres_url, "paper", retry=QUICK)
    try:
        live.prepare()
        for opening in (
            paper.prepare,
            lambda: Store(paper, ALICE),
            lambda: paper.connect_readonly(),
        ):
            with pytest.raises(StoreError) as info:
                opening()
            assert "holds the live store, not paper" in str(info.value)
    finally:
        live.close()
        paper.close()


def test_without_create_no_tables_are_made_and_readers_are_told(db, postgres_url) -> None:
    with pytest.raises(StoreError) as info:
        Store(db, ALICE, create=False)
    assert "no NIJA tables" in str(info.value) and info.value.account_key == ALICE
    with pytest.raises(SchemaVersionError) as ro:
        Store.open_readonly(db)
    assert "not initialised" in str(ro.value)
    assert sql(postgres_url, "SELECT to_regclass('orders') IS NULL") == [(True,)]


def test_a_version_1_schema_upgrades_and_keeps_its_orders(db, postgres_url) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for statement in PG_MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("CREATE TABLE nija_schema (version BIGINT NOT NULL, mode TEXT NOT NULL)")
        conn.execute("INSERT INTO nija_schema VALUES (1, 'paper')")
        conn.execute(
            "INSERT INTO orders (account_key, client_order_id, intent_id, symbol, side, type,"
            " amount, purpose, status, created_at, updated_at) VALUES (%s, 'c1', 'i1',"
            " 'BTC/USD', 'buy', 'market', 0.1, 'entry', 'unknown', 1.0, 1.0)",
            (ALICE,),
        )
    with Store(db, ALICE) as store:
        old = store.get_order("c1")
        assert old is not None and old.status == "unknown" and old.fee == 0.0
        store.set_dust("BTC", 1e-9)  # a table of version 3
    assert sql(postgres_url, "SELECT version FROM nija_schema") == [(SCHEMA_VERSION,)]


def test_two_nodes_starting_together_migrate_once(postgres_url) -> None:
    nodes = [PostgresDatabase(postgres_url, "paper", retry=QUICK) for _ in range(3)]
    found: list[str | None] = []
    errors: list[BaseException] = []

    def start(node: PostgresDatabase) -> None:
        try:
            found.append(node.prepare())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(n,)) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for n in nodes:
        n.close()
    assert errors == []
    assert len(found) == 3 and sum(f is not None for f in found) == 1  # one found it empty
    assert sql(postgres_url, "SELECT count(*) FROM nija_schema") == [(1,)]


# -- lost connections and locks -----------------------------------------------------------


def test_a_read_after_the_sessions_were_killed_is_retried_not_empty(
    db, postgres_url, postgres_server: PostgresServer
) -> None:
    app = schema_name(postgres_url)  # the fixture's URL names the sessions after the schema
    with Store(db, ALICE) as store:
        store.record_order(order("c1"))
        pos = store.open_position("BTC/USD", 0.1, 100.0, 90.0, None, None, 1.0)
        assert postgres_server.terminate(app) >= 1
        assert [o.client_order_id for o in store.orders_since(0)] == ["c1"]
        assert postgres_server.terminate(app) >= 1
        assert store.open_positions() == [pos]
        assert postgres_server.terminate(app) >= 1
        store.record_order(order("c2"))  # the BEGIN met the dead session and was tried again
        assert store.get_order("c2") is not None


def test_a_session_lost_inside_a_transaction_fails_it_whole(
    db, postgres_url, postgres_server: PostgresServer
) -> None:
    app = schema_name(postgres_url)
    with Store(db, ALICE) as store:
        store.record_order(order("c1"))
        with pytest.raises(StoreError) as info, store.transaction("settle"):
            store.update_order("c1", status="filled", filled=0.1)
            store.add_fill("c1", 0.1, 100.0, 0.01, 2.0)
            postgres_server.terminate(app)
            store.open_position("BTC/USD", 0.1, 100.0, 90.0, None, None, 2.0)
        assert info.value.error_name == "connection_lost"
        assert info.value.account_key == ALICE
        # Nothing of it landed, and the store works again at once.
        assert store.get_order("c1").status == "pending"
        assert store.fills_for("c1") == [] and store.open_positions() == []


def test_a_commit_whose_session_is_lost_says_the_outcome_is_unknown(
    db, postgres_url, postgres_server: PostgresServer
) -> None:
    app = schema_name(postgres_url)
    with Store(db, ALICE) as store:
        with pytest.raises(StoreError) as info, store.transaction("settle"):
            store.record_order(order("c1"))
            postgres_server.terminate(app)
        assert "may or may not have been stored" in str(info.value)
        assert store.get_order("c1") is None  # the server rolled it back


def test_an_unreachable_server_is_a_failure_never_an_empty_answer(
    db, postgres_server: PostgresServer
) -> None:
    with Store(db, ALICE) as store:
        store.record_order(order("c1"))
        down = PostgresDatabase(
            postgres_server.url().replace(f":{postgres_server.port}/", ":1/"),
            "paper",
            retry=QUICK,
            connect_timeout_seconds=0.5,
        )
        try:
            started = time.monotonic()
            with pytest.raises(StoreError) as info:
                Store(down, ALICE)
            assert time.monotonic() - started < 10
        finally:
            down.close()
    message = str(info.value)
    assert info.value.error_name == "connection_lost" and "tried 3 times" in message
    assert 'PostgreSQL database "nija" on 127.0.0.1:1' in message
    assert postgres_server.password not in message


def test_a_wrong_password_is_named_without_the_password(postgres_server: PostgresServer) -> None:
    wrong = "not-the-password-7f3a9c"
    url = postgres_server.url().replace(postgres_server.password, wrong)
    db = PostgresDatabase(url, "paper", retry=Retry(attempts=1), connect_timeout_seconds=1.0)
    try:
        with pytest.raises(StoreError) as info:
            db.prepare()
    finally:
        db.close()
    assert "password authentication failed" in str(info.value)
    assert wrong not in str(info.value) and "127.0.0.1" in str(info.value)
    assert wrong not in repr(db) and wrong not in repr(db.url)


def test_a_held_lock_fails_the_write_in_the_busy_timeout_and_reads_go_on(postgres_url) -> None:
    db = PostgresDatabase(postgres_url, "paper", busy_timeout_ms=200, retry=QUICK)
    try:
        with Store(db, ALICE) as store, psycopg.connect(postgres_url) as locker:
            store.record_cycle(1.0, 1.0, 1, 0, 0, {}, ok=True)
            locker.execute("LOCK TABLE cycles IN EXCLUSIVE MODE")
            started = time.monotonic()
            with pytest.raises(StoreError) as info:
                store.record_cycle(2.0, 1.0, 1, 0, 0, {}, ok=True)
            assert 0.15 <= time.monotonic() - started < 3
            assert info.value.error_name == "55P03"  # lock_not_available
            assert len(store.last_cycles(10)) == 1
            locker.rollback()
            store.record_cycle(3.0, 1.0, 1, 0, 0, {}, ok=True)
            assert [c.started_at for c in store.last_cycles(10)] == [3.0, 1.0]
    finally:
        db.close()


# -- the URL -----------------------------------------------------------------------------


def test_the_url_is_checked_without_being_echoed() -> None:
    url = parse_database_url("postgresql://nija:s3cr%40t@db.example.com:6432/trading")
    assert (url.host, url.port, url.dbname, url.user, url.password) == (
        "db.example.com", "6432", "trading", "nija", "s3cr@t",
    )  # fmt: skip
    assert url.describe() == 'PostgreSQL database "trading" on db.example.com:6432'
    for bad in (
        "mysql://u:pw-9x@h/db",
        "postgresql://u:pw-9x@h:port/db",
        "postgresql://u:pw 9x@h/d",
    ):
        with pytest.raises(ValueError) as info:
            parse_database_url(bad)
        assert "pw" not in str(info.value)
