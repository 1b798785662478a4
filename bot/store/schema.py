"""The state database's tables and migrations, and the queries that read them.

The schema version lives in ``PRAGMA user_version``. ``MIGRATIONS[i]`` takes a
database from version ``i`` to ``i + 1``; ``bot.store.db.migrate`` applies the
missing steps in order, in one transaction. Never edit a released step: append one.
PostgreSQL runs the same steps (``PG_MIGRATIONS``, its version in the table
``nija_schema``: ``bot.store.pg``), with the column types spelled its way (``postgres_ddl``),
plus the tables of several nodes' leases, which only it has (``_PG_ONLY``).

Every table carries ``account_key``, and every query in ``bot.store.writer`` filters on it,
so two accounts sharing one file never see each other's rows. The row types and the
stored vocabularies are in ``bot.store.records``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from bot.store.records import (
    CYCLE_COLUMNS,
    DUST_COLUMNS,
    FILL_COLUMNS,
    HEALTH_COLUMNS,
    ORDER_COLUMNS,
    POSITION_COLUMNS,
    CycleRecord,
    DustRecord,
    FillRecord,
    HealthEventRecord,
    OrderRecord,
    PositionRecord,
    StoredOrderStatus,
    cycle_from_row,
    dust_from_row,
    fill_from_row,
    health_from_row,
    order_from_row,
    position_from_row,
)

if TYPE_CHECKING:
    from bot.store.backend import Row

# The fields update_order / update_position may change (names go into SQL, so whitelisted).
ORDER_UPDATABLE = frozenset(
    {"status", "venue_order_id", "filled", "average_price", "fee_usd", "reason", "attempts"}
    | {"position_id", "fee", "fee_currency", "sent_at", "absent_checks", "absent_at"}
)
POSITION_UPDATABLE = frozenset(
    {"stop", "target", "highest_close", "breakeven_done", "quantity"}
    | {"exit_attempts", "exit_retry_at", "exit_blocked"}
    | {"realized_pnl_usd"}  # the parts of an open position sold so far (bot.engine.orders)
)

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

# Venues as they really are: the fee as charged (a buy's fee may be taken in the coin
# bought), the proof that an order never arrived before it may be sent again, exits the
# venue keeps refusing, and remainders too small to trade.
_V3 = (
    "ALTER TABLE orders ADD COLUMN fee REAL NOT NULL DEFAULT 0",
    "ALTER TABLE orders ADD COLUMN fee_currency TEXT",
    "ALTER TABLE orders ADD COLUMN sent_at REAL",
    "ALTER TABLE orders ADD COLUMN absent_checks INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE orders ADD COLUMN absent_at REAL",
    "ALTER TABLE positions ADD COLUMN exit_attempts INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE positions ADD COLUMN exit_retry_at REAL",
    "ALTER TABLE positions ADD COLUMN exit_blocked TEXT",
    """CREATE TABLE dust (
        account_key TEXT NOT NULL,
        asset TEXT NOT NULL,
        quantity REAL NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (account_key, asset)
    )""",
)

# The operator plane (bot.api): every operator action (who, what, when, outcome), and the
# accounts an operator paused (a pause outlives a restart). ``account_key`` is '' for an
# action that names no account.
_V4 = (
    """CREATE TABLE operator_actions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        account_key TEXT NOT NULL,
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        outcome TEXT NOT NULL,
        message TEXT NOT NULL
    )""",
    "CREATE INDEX operator_actions_by_account ON operator_actions (account_key, at)",
    """CREATE TABLE account_pauses (
        account_key TEXT PRIMARY KEY,
        paused_at REAL NOT NULL,
        paused_by TEXT NOT NULL
    )""",
)

# The P&L per day (bot.store.pnl) reads every account's closes and fills of a few days:
# without these, today's figures in /api/v1/accounts would scan every fill ever made
# (scripts/bench_pnl.py: 1.46 million fills, 470 ms without, 12 ms with).
_V5 = (
    "CREATE INDEX fills_by_at ON fills (at)",
    "CREATE INDEX positions_by_closed_at ON positions (closed_at)",
)

# Several nodes on one PostgreSQL (bot.cluster): each order row names the node that stored
# it and the lease epoch it held then (the fenced insert writes both), so every order can
# be attributed to one tenure of its account. NULL on SQLite (one daemon per data directory)
# and for orders stored before leases.
_V6 = (
    "ALTER TABLE orders ADD COLUMN node_id TEXT",
    "ALTER TABLE orders ADD COLUMN lease_epoch INTEGER",
)

# One tuple of statements per version step; the schema version is len(MIGRATIONS).
MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3, _V4, _V5, _V6)
SCHEMA_VERSION = len(MIGRATIONS)

# PostgreSQL only: the leases of several nodes (bot.cluster). SQLite never runs leases (its
# data directory's lock file allows one daemon), and these need the server's clock
# (``now()``) and row locks (``FOR UPDATE SKIP LOCKED``, ``FOR KEY SHARE``) anyway.
# * leases: one row per account; ``owner`` NULL when free; ``epoch`` + 1 at every new
#   tenure (a claim, a takeover); ``expires_at`` by the server's clock.
# * lease_events: the history (who held which epoch when), written in the statement that
#   changes the lease: claimed | taken_over | released | lost | renewed_failed | expired.
#   An acquisition keeps what it replaced (previous owner, and the expiry or release time
#   that ended the previous epoch).
# * nodes: each node's heartbeat (``last_seen``), its process (``incarnation``) and its TTL,
#   for the fair share (live nodes) and for operators (a node that stopped renewing).
LEASE_EVENTS = ("claimed", "taken_over", "released", "lost", "renewed_failed", "expired")
_PG_V6 = (
    """CREATE TABLE leases (
        account_key TEXT PRIMARY KEY,
        owner TEXT,
        epoch BIGINT NOT NULL DEFAULT 0,
        acquired_at TIMESTAMPTZ,
        renewed_at TIMESTAMPTZ,
        expires_at TIMESTAMPTZ NOT NULL DEFAULT '-infinity'
    )""",
    "CREATE INDEX leases_by_owner ON leases (owner)",
    f"""CREATE TABLE lease_events (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        account_key TEXT NOT NULL,
        node_id TEXT NOT NULL,
        epoch BIGINT NOT NULL,
        event TEXT NOT NULL CHECK (event IN ({", ".join(f"'{e}'" for e in LEASE_EVENTS)})),
        at TIMESTAMPTZ NOT NULL DEFAULT now(),
        previous_owner TEXT,
        previous_epoch_ended_at TIMESTAMPTZ,
        detail TEXT
    )""",
    "CREATE INDEX lease_events_by_account ON lease_events (account_key, epoch)",
    """CREATE TABLE nodes (
        node_id TEXT PRIMARY KEY,
        incarnation TEXT NOT NULL,
        host TEXT NOT NULL,
        pid BIGINT NOT NULL,
        ttl_seconds DOUBLE PRECISION NOT NULL,
        started_at TIMESTAMPTZ NOT NULL,
        last_seen TIMESTAMPTZ NOT NULL,
        stopped_at TIMESTAMPTZ
    )""",
)
_PG_ONLY: dict[int, tuple[str, ...]] = {6: _PG_V6}  # version reached → its extra statements


def postgres_ddl(statement: str) -> str:
    """A step's statement as PostgreSQL reads it: SQLite's 64-bit ``INTEGER`` is ``BIGINT``,
    its 8-byte ``REAL`` is ``DOUBLE PRECISION`` (PostgreSQL's ``REAL`` has 4 bytes), and an
    ``AUTOINCREMENT`` key is an identity column. Everything else is written portably."""
    statement = statement.replace(
        "INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    )
    statement = re.sub(r"\bREAL\b", "DOUBLE PRECISION", statement)
    return re.sub(r"\bINTEGER\b", "BIGINT", statement)


# The same steps for PostgreSQL: its version N is SQLite's version N.
PG_MIGRATIONS: tuple[tuple[str, ...], ...] = tuple(
    tuple(postgres_ddl(statement) for statement in step) + _PG_ONLY.get(version, ())
    for version, step in enumerate(MIGRATIONS, start=1)
)


class AccountQueries:
    """The reads of one account's rows; every query's first parameter is the account key.

    ``bot.store.reader.AccountReader`` supplies ``_rows`` (the connection and the error policy).
    """

    account_key: str

    def _rows(self, operation: str, sql: str, *params: Any) -> list[Row]:
        """Rows of ``sql`` run with ``(account_key, *params)``, read by column name."""
        raise NotImplementedError

    def get_order(self, client_order_id: str) -> OrderRecord | None:
        """The order with this client id, or None."""
        sql = f"SELECT {ORDER_COLUMNS} FROM orders WHERE account_key = ? AND client_order_id = ?"
        rows = self._rows("get_order", sql, client_order_id)
        return order_from_row(rows[0]) if rows else None

    def orders_with_status(self, *statuses: StoredOrderStatus) -> list[OrderRecord]:
        """Orders in any of these statuses, oldest first; ValueError for a status that is none."""
        wanted = [StoredOrderStatus(status) for status in statuses]  # a typo must not match nothing
        marks = ", ".join("?" * len(wanted))
        sql = f"SELECT {ORDER_COLUMNS} FROM orders WHERE account_key = ? AND status IN ({marks})"
        rows = self._rows("orders_with_status", sql + " ORDER BY created_at", *wanted)
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
        sql = (
            "SELECT COALESCE(SUM(realized_pnl_usd), 0.0) AS pnl FROM positions"
            " WHERE account_key = ? AND status = 'closed' AND closed_at >= ?"
        )
        return float(self._rows("realized_pnl_since", sql, ts)[0]["pnl"])

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

    def dust(self) -> list[DustRecord]:
        """The remainders too small to trade, by asset."""
        sql = f"SELECT {DUST_COLUMNS} FROM dust WHERE account_key = ? ORDER BY asset"
        return [dust_from_row(r) for r in self._rows("dust", sql)]

    def day_start_equity(self, day: str) -> float | None:
        """The equity recorded at the start of UTC ``day`` (``YYYY-MM-DD``), or None."""
        sql = "SELECT equity FROM day_equity WHERE account_key = ? AND day = ?"
        rows = self._rows("day_start_equity", sql, day)
        return rows[0]["equity"] if rows else None
