"""The stored vocabularies and row mapping: enums in memory, the same strings on disk."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.model import OrderType, Side
from bot.store.records import ORDER_COLUMNS, POSITION_COLUMNS, order_from_row, position_from_row
from bot.store.writer import (
    MIGRATIONS,
    OrderPurpose,
    OrderRecord,
    PositionStatus,
    Store,
    StoredOrderStatus,
    migrate,
)

KEY = "user/a/KRAKEN"
# Every string a NIJA without these enums wrote into these columns.
OLD_ORDER_STATUSES = ("pending", "unknown", "open", "filled", "canceled", "rejected")
OLD_PURPOSES = ("entry", "exit")


def old_database(path: Path) -> None:
    """A database at the current schema whose rows were written as plain strings, by hand."""
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, MIGRATIONS)
    for i, status in enumerate(OLD_ORDER_STATUSES):
        purpose = OLD_PURPOSES[i % 2]
        conn.execute(
            "INSERT INTO orders (account_key, client_order_id, intent_id, symbol, side, type,"
            " amount, purpose, status, created_at, updated_at)"
            " VALUES (?, ?, 'i', 'BTC/USD', 'sell', 'limit', 0.1, ?, ?, ?, ?)",
            (KEY, f"c-{status}", purpose, status, float(i), float(i)),
        )
    for symbol, status, closed_at in (("BTC/USD", "open", None), ("ETH/USD", "closed", 1.5)):
        conn.execute(
            "INSERT INTO positions (account_key, symbol, quantity, entry_price, stop,"
            " highest_close, opened_at, status, closed_at, breakeven_done, external)"
            " VALUES (?, ?, 1.0, 10.0, 9.0, 10.0, 1.0, ?, ?, 1, 0)",
            (KEY, symbol, status, closed_at),
        )
    conn.close()


def raw_column(path: Path, sql: str, *params: object) -> list[tuple[str, str]]:
    """(value, SQLite type) of the first column selected by ``sql``, read past the store."""
    conn = sqlite3.connect(path)
    try:
        return [(row[0], row[1]) for row in conn.execute(sql, params)]
    finally:
        conn.close()


def test_a_database_written_with_the_old_strings_reads_as_the_enums(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old_database(path)
    with Store(path, KEY) as store:
        orders = store.orders_since(0.0)
        assert [o.status for o in orders] == list(StoredOrderStatus)
        for rec in orders:
            assert type(rec.status) is StoredOrderStatus and type(rec.purpose) is OrderPurpose
            assert type(rec.side) is Side and type(rec.type) is OrderType
            assert rec.status == rec.client_order_id.removeprefix("c-")
        assert [o.purpose for o in orders] == [OrderPurpose.ENTRY, OrderPurpose.EXIT] * 3
        assert [o.client_order_id for o in store.orders_with_status("unknown", "open")] == [
            "c-unknown",
            "c-open",
        ]
        [held] = store.open_positions()
        assert held.status is PositionStatus.OPEN and held.breakeven_done is True
        [closed] = store.closed_positions_since(0.0)
        assert closed.status is PositionStatus.CLOSED and closed.symbol == "ETH/USD"

        # Writing the members back stores exactly the strings that were there.
        store.update_order("c-pending", status=StoredOrderStatus.UNKNOWN)
        store.update_order("c-unknown", status="filled")
        store.close_position(held.id, 11.0, "target", closed_at=2.0, realized_pnl_usd=1.0)
    statuses = raw_column(
        path, "SELECT status, typeof(status) FROM orders WHERE client_order_id IN (?, ?)"
        " ORDER BY created_at", "c-pending", "c-unknown",
    )  # fmt: skip
    assert statuses == [("unknown", "text"), ("filled", "text")]
    assert raw_column(path, "SELECT status, typeof(status) FROM positions ORDER BY id") == [
        ("closed", "text"),
        ("closed", "text"),
    ]


def test_new_rows_are_stored_as_the_plain_strings(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with Store(path, KEY) as store:
        store.record_order(
            OrderRecord(
                "c1", KEY, "i1", "BTC/USD", Side.BUY, OrderType.MARKET, 1.0, None, None,
                OrderPurpose.EXIT, status=StoredOrderStatus.UNKNOWN,
            )
        )  # fmt: skip
    row = raw_column(path, "SELECT side || type || purpose || status, 'x' FROM orders")
    assert row == [("buymarketexitunknown", "x")]


def test_records_hold_the_enum_members_and_refuse_other_strings() -> None:
    rec = OrderRecord("c", KEY, "i", "BTC/USD", "buy", "market", 1.0, None, None, "entry")
    assert rec.status is StoredOrderStatus.PENDING and rec.purpose is OrderPurpose.ENTRY
    assert rec.side is Side.BUY and rec.type is OrderType.MARKET
    with pytest.raises(ValueError, match=r"order purpose must be one of \['entry', 'exit'\]"):
        OrderRecord("c", KEY, "i", "BTC/USD", "buy", "market", 1.0, None, None, "hedge")
    with pytest.raises(ValueError, match="order status"):
        OrderRecord("c", KEY, "i", "BTC/USD", "buy", "market", 1.0, None, None, "entry", "done")


def test_a_misspelt_status_is_an_error_not_an_empty_answer(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db", KEY) as store:
        with pytest.raises(ValueError):
            store.orders_with_status("filed")
        with pytest.raises(ValueError):
            store.update_order("c1", status="done")


def test_a_record_changed_after_it_was_made_is_still_checked(tmp_path: Path) -> None:
    rec = OrderRecord("c", KEY, "i", "BTC/USD", "buy", "market", 1.0, None, None, "entry")
    rec.status = "sent"  # type: ignore[assignment]
    with Store(tmp_path / "s.db", KEY) as store:
        with pytest.raises(ValueError, match="order status"):
            store.record_order(rec)
        assert store.orders_since(0.0) == []


def test_rows_are_mapped_by_column_name_whatever_the_column_order(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old_database(path)
    with Store(path, KEY) as store:
        expected = store.get_order("c-filled")
        [position] = store.open_positions()
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        columns = ", ".join(reversed(ORDER_COLUMNS.split(", ")))
        row = conn.execute(
            f"SELECT {columns} FROM orders WHERE client_order_id = 'c-filled'"
        ).fetchone()
        assert order_from_row(row) == expected
        columns = ", ".join(reversed(POSITION_COLUMNS.split(", ")))
        row = conn.execute(f"SELECT {columns} FROM positions WHERE status = 'open'").fetchone()
        assert position_from_row(row) == position
    finally:
        conn.close()
