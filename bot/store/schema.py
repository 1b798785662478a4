"""The state database's tables and migrations, its row types, and the queries that read them.

The schema version lives in ``PRAGMA user_version``. ``MIGRATIONS[i]`` takes a
database from version ``i`` to ``i + 1``; ``bot.store.db.migrate`` applies the
missing steps in order, in one transaction. Never edit a released step: append one.

Every table carries ``account_key``, and every query in ``bot.store.writer`` filters on it,
so two accounts sharing one file never see each other's rows.
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass
from typing import Any

ORDER_STATUSES = frozenset({"pending", "unknown", "open", "filled", "canceled", "rejected"})
ORDER_SIDES = frozenset({"buy", "sell"})
ORDER_TYPES = frozenset({"market", "limit"})
ORDER_PURPOSES = frozenset({"entry", "exit"})
# The fields update_order / update_position may change (names go into SQL, so whitelisted).
ORDER_UPDATABLE = frozenset(
    {"status", "venue_order_id", "filled", "average_price", "fee_usd", "reason", "attempts"}
    | {"position_id"}
)
POSITION_UPDATABLE = frozenset({"stop", "target", "highest_close", "breakeven_done", "quantity"})

_V1 = (
    # Client order ids are unique per account, not globally: two accounts that derive
    # the same deterministic id must not refuse each other's orders.
    """CREATE TABLE orders (
        account_key TEXT NOT NULL,
        client_order_id TEXT NOT NULL,
        intent_id TEXT NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        type TEXT NOT NULL,
        amount REAL,
        quote_amount REAL,
        limit_price REAL,
        purpose TEXT NOT NULL,
        status TEXT NOT NULL,
        venue_order_id TEXT,
        filled REAL NOT NULL DEFAULT 0,
        average_price REAL,
        fee_usd REAL NOT NULL DEFAULT 0,
        reason TEXT,
        position_id INTEGER,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (account_key, client_order_id)
    )""",
    "CREATE INDEX orders_by_status ON orders (account_key, status)",
    "CREATE INDEX orders_by_created ON orders (account_key, created_at)",
    """CREATE TABLE fills (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        account_key TEXT NOT NULL,
        client_order_id TEXT NOT NULL,
        quantity REAL NOT NULL,
        price REAL NOT NULL,
        fee_usd REAL NOT NULL,
        at REAL NOT NULL,
        FOREIGN KEY (account_key, client_order_id)
            REFERENCES orders (account_key, client_order_id)
    )""",
    "CREATE INDEX fills_by_order ON fills (account_key, client_order_id)",
    """CREATE TABLE positions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        account_key TEXT NOT NULL,
        symbol TEXT NOT NULL,
        quantity REAL NOT NULL,
        entry_price REAL NOT NULL,
        stop REAL NOT NULL,
        target REAL,
        initial_risk REAL,
        highest_close REAL NOT NULL,
        breakeven_done INTEGER NOT NULL DEFAULT 0,
        opened_at REAL NOT NULL,
        entry_client_order_id TEXT,
        external INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL DEFAULT 'open',
        closed_at REAL,
        exit_price REAL,
        close_reason TEXT,
        realized_pnl_usd REAL
    )""",
    # At most one open position per symbol and account: position_for() relies on it.
    """CREATE UNIQUE INDEX positions_one_open ON positions (account_key, symbol)
        WHERE status = 'open'""",
    "CREATE INDEX positions_by_closed ON positions (account_key, closed_at)",
    """CREATE TABLE cycles (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        account_key TEXT NOT NULL,
        started_at REAL NOT NULL,
        duration_ms REAL NOT NULL,
        broker_calls INTEGER NOT NULL,
        orders_placed INTEGER NOT NULL,
        positions_open INTEGER NOT NULL,
        errors TEXT NOT NULL,
        ok INTEGER NOT NULL
    )""",
    "CREATE INDEX cycles_by_account ON cycles (account_key, id)",
    """CREATE TABLE health_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        account_key TEXT NOT NULL,
        at REAL NOT NULL,
        old TEXT NOT NULL,
        new TEXT NOT NULL,
        reason TEXT NOT NULL
    )""",
    "CREATE INDEX health_by_account ON health_events (account_key, at)",
    """CREATE TABLE day_equity (
        account_key TEXT NOT NULL,
        day TEXT NOT NULL,
        equity REAL NOT NULL,
        PRIMARY KEY (account_key, day)
    )""",
)

# An entry's stop, target and risk travel with its order, so a fill that is only
# settled after a crash or a lookup still opens the position with its protection.
_V2 = (
    "ALTER TABLE orders ADD COLUMN stop REAL",
    "ALTER TABLE orders ADD COLUMN target REAL",
    "ALTER TABLE orders ADD COLUMN initial_risk REAL",
)

# One tuple of statements per version step; the schema version is len(MIGRATIONS).
MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(slots=True)
class OrderRecord:
    """One order as NIJA stored it: written before it is sent, updated as the venue answers.

    ``status``: pending (stored, not sent), unknown (sent, outcome ambiguous), open,
    filled, canceled, rejected. ``created_at``/``updated_at`` left None are set by the
    store's clock. ``attempts`` counts lookups tried for an ambiguous order.
    """

    client_order_id: str
    account_key: str
    intent_id: str
    symbol: str
    side: str
    type: str
    amount: float | None
    quote_amount: float | None
    limit_price: float | None
    purpose: str
    status: str = "pending"
    venue_order_id: str | None = None
    filled: float = 0.0
    average_price: float | None = None
    fee_usd: float = 0.0
    reason: str | None = None
    position_id: int | None = None
    created_at: float | None = None
    updated_at: float | None = None
    attempts: int = 0
    stop: float | None = None  # entries: protective levels for the position it opens
    target: float | None = None
    initial_risk: float | None = None


@dataclass(slots=True)
class FillRecord:
    """One (partial) fill of an order."""

    id: int
    account_key: str
    client_order_id: str
    quantity: float
    price: float
    fee_usd: float
    at: float


@dataclass(slots=True)
class PositionRecord:
    """A position NIJA manages; ``external`` marks one adopted from the venue."""

    id: int
    account_key: str
    symbol: str
    quantity: float
    entry_price: float
    stop: float
    target: float | None
    initial_risk: float | None
    highest_close: float
    breakeven_done: bool
    opened_at: float
    entry_client_order_id: str | None
    external: bool
    status: str  # "open" or "closed"
    closed_at: float | None
    exit_price: float | None
    close_reason: str | None
    realized_pnl_usd: float | None


@dataclass(slots=True)
class CycleRecord:
    """The outcome of one account cycle; ``errors`` counts failures by type name."""

    id: int
    account_key: str
    started_at: float
    duration_ms: float
    broker_calls: int
    orders_placed: int
    positions_open: int
    errors: dict[str, int]
    ok: bool


@dataclass(slots=True)
class HealthEventRecord:
    """A change of an account's health state."""

    id: int
    account_key: str
    at: float
    old: str
    new: str
    reason: str


ORDER_COLUMNS = (
    "client_order_id, account_key, intent_id, symbol, side, type, amount, quote_amount,"
    " limit_price, purpose, status, venue_order_id, filled, average_price, fee_usd, reason,"
    " position_id, created_at, updated_at, attempts, stop, target, initial_risk"
)
POSITION_COLUMNS = (
    "id, account_key, symbol, quantity, entry_price, stop, target, initial_risk, highest_close,"
    " breakeven_done, opened_at, entry_client_order_id, external, status, closed_at, exit_price,"
    " close_reason, realized_pnl_usd"
)
FILL_COLUMNS = "id, account_key, client_order_id, quantity, price, fee_usd, at"
CYCLE_COLUMNS = (
    "id, account_key, started_at, duration_ms, broker_calls, orders_placed, positions_open,"
    " errors, ok"
)
HEALTH_COLUMNS = "id, account_key, at, old, new, reason"


def order_from_row(row: sqlite3.Row | tuple) -> OrderRecord:
    """An ``OrderRecord`` from a row selected with ``ORDER_COLUMNS``."""
    return OrderRecord(*row)


def position_from_row(row: sqlite3.Row | tuple) -> PositionRecord:
    """A ``PositionRecord`` from a row selected with ``POSITION_COLUMNS``."""
    values = list(row)
    values[9] = bool(values[9])  # breakeven_done
    values[12] = bool(values[12])  # external
    return PositionRecord(*values)


def fill_from_row(row: sqlite3.Row | tuple) -> FillRecord:
    """A ``FillRecord`` from a row selected with ``FILL_COLUMNS``."""
    return FillRecord(*row)


def cycle_from_row(row: sqlite3.Row | tuple) -> CycleRecord:
    """A ``CycleRecord`` from a row selected with ``CYCLE_COLUMNS``."""
    values = list(row)
    values[7] = json.loads(values[7])
    values[8] = bool(values[8])
    return CycleRecord(*values)


def health_from_row(row: sqlite3.Row | tuple) -> HealthEventRecord:
    """A ``HealthEventRecord`` from a row selected with ``HEALTH_COLUMNS``."""
    return HealthEventRecord(*row)


def check_finite(**values: Any) -> None:
    """ValueError for a NaN or infinite number: SQLite would silently store NaN as NULL."""
    for name, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, not {value!r}")


def check_order(rec: OrderRecord) -> None:
    """ValueError when an order's side, type, purpose, status or numbers are invalid."""
    for name, allowed in (
        ("side", ORDER_SIDES),
        ("type", ORDER_TYPES),
        ("purpose", ORDER_PURPOSES),
        ("status", ORDER_STATUSES),
    ):
        value = getattr(rec, name)
        if str(value) not in allowed:
            raise ValueError(f"order {name} must be one of {sorted(allowed)}, not {value!r}")
    check_finite(
        amount=rec.amount,
        quote_amount=rec.quote_amount,
        limit_price=rec.limit_price,
        filled=rec.filled,
        average_price=rec.average_price,
        fee_usd=rec.fee_usd,
        stop=rec.stop,
        target=rec.target,
        initial_risk=rec.initial_risk,
    )


class AccountQueries:
    """The reads of one account's rows; every query's first parameter is the account key.

    ``bot.store.reader.AccountReader`` supplies ``_rows`` (the connection and the error policy).
    """

    account_key: str

    def _rows(self, operation: str, sql: str, *params: Any) -> list[tuple]:
        """Rows of ``sql`` run with ``(account_key, *params)``."""
        raise NotImplementedError

    def get_order(self, client_order_id: str) -> OrderRecord | None:
        """The order with this client id, or None."""
        sql = f"SELECT {ORDER_COLUMNS} FROM orders WHERE account_key = ? AND client_order_id = ?"
        rows = self._rows("get_order", sql, client_order_id)
        return order_from_row(rows[0]) if rows else None

    def orders_with_status(self, *statuses: str) -> list[OrderRecord]:
        """Orders in any of these statuses, oldest first."""
        marks = ", ".join("?" * len(statuses))
        sql = f"SELECT {ORDER_COLUMNS} FROM orders WHERE account_key = ? AND status IN ({marks})"
        rows = self._rows("orders_with_status", sql + " ORDER BY created_at", *map(str, statuses))
        return [order_from_row(r) for r in rows]

    def orders_since(self, ts: float) -> list[OrderRecord]:
        """Orders created at or after ``ts``, oldest first."""
        sql = f"SELECT {ORDER_COLUMNS} FROM orders WHERE account_key = ? AND created_at >= ?"
        return [
            order_from_row(r) for r in self._rows("orders_since", sql + " ORDER BY created_at", ts)
        ]

    def fills_for(self, client_order_id: str) -> list[FillRecord]:
        """The fills of one order, in the order they were recorded."""
        sql = f"SELECT {FILL_COLUMNS} FROM fills WHERE account_key = ? AND client_order_id = ?"
        return [
            fill_from_row(r) for r in self._rows("fills_for", sql + " ORDER BY id", client_order_id)
        ]

    def open_positions(self) -> list[PositionRecord]:
        """Open positions, oldest first."""
        sql = f"SELECT {POSITION_COLUMNS} FROM positions WHERE account_key = ? AND status = 'open'"
        return [position_from_row(r) for r in self._rows("open_positions", sql + " ORDER BY id")]

    def position_for(self, symbol: str) -> PositionRecord | None:
        """The open position in ``symbol``, or None."""
        sql = f"SELECT {POSITION_COLUMNS} FROM positions WHERE account_key = ? AND status = 'open'"
        rows = self._rows("position_for", sql + " AND symbol = ?", symbol)
        return position_from_row(rows[0]) if rows else None

    def closed_positions_since(self, ts: float) -> list[PositionRecord]:
        """Positions closed at or after ``ts``, oldest close first."""
        sql = (
            f"SELECT {POSITION_COLUMNS} FROM positions WHERE account_key = ? AND status = 'closed'"
        )
        rows = self._rows(
            "closed_positions_since", sql + " AND closed_at >= ? ORDER BY closed_at, id", ts
        )
        return [position_from_row(r) for r in rows]

    def realized_pnl_since(self, ts: float) -> float:
        """Sum of realized PnL (USD) of positions closed at or after ``ts``."""
        sql = "SELECT COALESCE(SUM(realized_pnl_usd), 0.0) FROM positions WHERE account_key = ?"
        rows = self._rows(
            "realized_pnl_since", sql + " AND status = 'closed' AND closed_at >= ?", ts
        )
        return float(rows[0][0])

    def last_cycles(self, n: int) -> list[CycleRecord]:
        """The ``n`` most recent cycles, newest first."""
        sql = f"SELECT {CYCLE_COLUMNS} FROM cycles WHERE account_key = ? ORDER BY id DESC LIMIT ?"
        return [cycle_from_row(r) for r in self._rows("last_cycles", sql, n)]

    def health_events_since(self, ts: float) -> list[HealthEventRecord]:
        """Health changes at or after ``ts``, oldest first."""
        sql = f"SELECT {HEALTH_COLUMNS} FROM health_events WHERE account_key = ? AND at >= ?"
        return [
            health_from_row(r)
            for r in self._rows("health_events_since", sql + " ORDER BY at, id", ts)
        ]

    def day_start_equity(self, day: str) -> float | None:
        """The equity recorded at the start of UTC ``day`` (``YYYY-MM-DD``), or None."""
        sql = "SELECT equity FROM day_equity WHERE account_key = ? AND day = ?"
        rows = self._rows("day_start_equity", sql, day)
        return rows[0][0] if rows else None
