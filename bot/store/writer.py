"""The state store's writer: orders, fills, positions, cycle results and health events.

The store lives in a SQLite file per mode (``db_path``, the default) or on PostgreSQL
(``NIJA_DATABASE_URL``); ``bot.store.backend`` is the one interface over both.
Each account thread opens its own ``Store`` (scoped to one account key); every query
filters on that key. Writes are short transactions (SQLite: ``BEGIN IMMEDIATE`` bounded by
a busy timeout), fenced by the account's lease on several nodes (``bot.store.transactions``),
and any database failure surfaces as ``StoreError`` so the caller can count it as that
account's failure for the cycle. The check scripts read through
``Store.open_readonly``, which takes no write locks.

This module is the writer; the database file, its migrations and ``StoreError`` live
in ``bot.store.db``, the reads (``AccountReader``, ``ReadOnlyStore``) in
``bot.store.reader``, the row types and stored vocabularies (``StoredOrderStatus``,
``OrderPurpose``, ``PositionStatus``) in ``bot.store.records``. Every name is importable
from here.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from bot.clock import SYSTEM_CLOCK, Clock
from bot.redact import Redactor
from bot.store.backend import Database
from bot.store.db import (
    DEFAULT_BUSY_TIMEOUT_MS,
    SchemaVersionError,
    StoreError,
    db_path,
    migrate,
    prepare_database,
)
from bot.store.fence import LeaseFence, LeaseLostError
from bot.store.reader import AccountReader, ReadOnlyStore
from bot.store.records import (
    ORDER_COLUMNS,
    POSITION_COLUMNS,
    CycleRecord,
    DustRecord,
    FillRecord,
    HealthEventRecord,
    OrderPurpose,
    OrderRecord,
    PositionRecord,
    PositionStatus,
    StoredOrderStatus,
    check_finite,
    check_order,
    position_from_row,
)
from bot.store.schema import MIGRATIONS, ORDER_UPDATABLE, POSITION_UPDATABLE, SCHEMA_VERSION
from bot.store.transactions import AccountTransactions

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_MS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "AccountReader",
    "CycleRecord",
    "DustRecord",
    "FillRecord",
    "HealthEventRecord",
    "LeaseFence",
    "LeaseLostError",
    "OrderPurpose",
    "OrderRecord",
    "PositionRecord",
    "PositionStatus",
    "ReadOnlyStore",
    "SchemaVersionError",
    "Store",
    "StoreError",
    "StoredOrderStatus",
    "db_path",
    "migrate",
    "prepare_database",
]


class Store(AccountTransactions):
    """One account's state, over its own connection; every read and write is scoped to it.

    ``target`` is a ``Database`` (``bot.store.backend``) or a SQLite file path. Create it in
    the thread that uses it (sqlite3 refuses cross-thread use) and ``close()`` it when the
    thread ends. Every database failure raises ``StoreError``;
    invalid arguments (a bug in the caller) raise ``ValueError``. The times it stamps
    (``created_at``, ``updated_at``) are ``clock.wall()``. ``redactor`` masks the
    secrets in every free-text column it writes (order and close reasons, health reasons).

    ``fence`` (PostgreSQL, several nodes): every write transaction is fenced by the account's
    lease (``bot.store.transactions``), and ``LeaseLostError`` writes nothing once this node
    no longer holds it; orders are stored with the fence's node and epoch. None (SQLite, one
    daemon): no lease is checked.
    """

    def __init__(
        self,
        target: Database | str | Path,
        account_key: str,
        clock: Clock = SYSTEM_CLOCK,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        *,
        redactor: Redactor | None = None,
        create: bool = True,
        fence: LeaseFence | None = None,
    ) -> None:
        """Open (and, with ``create``, create) the store of ``account_key`` in ``target``.

        The daemon prepares its database once and opens each account's store with
        ``create=False``: a database file that has vanished is then a StoreError for that
        account, never a fresh empty file.
        """
        super().__init__(target, account_key, busy_timeout_ms, create=create, fence=fence)
        self.redactor = redactor or Redactor()
        self._clock = clock

    def _text(self, text: str | None) -> str | None:
        """A free-text column's value with the secrets masked (a venue may quote a key)."""
        return None if text is None else self.redactor.mask_values(text)

    @staticmethod
    def open_readonly(
        target: Database | str | Path, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS
    ) -> ReadOnlyStore:
        """A read-only view of every account, for another process (the check scripts)."""
        return ReadOnlyStore(target, busy_timeout_ms)

    def record_order(self, rec: OrderRecord) -> bool:
        """Store a new order; False (nothing changed) when its client id is already stored.

        ``LeaseLostError`` (nothing stored) when the store has a fence this node no longer holds.
        """
        if rec.account_key != self.account_key:
            raise ValueError(
                f"order for {rec.account_key} given to the store of {self.account_key}"
            )
        check_order(rec)
        now = self._clock.wall()
        values = (
            rec.client_order_id, self.account_key, rec.intent_id, rec.symbol, str(rec.side),
            str(rec.type), rec.amount, rec.quote_amount, rec.limit_price, str(rec.purpose),
            str(rec.status), rec.venue_order_id, rec.filled, rec.average_price, rec.fee_usd,
            self._text(rec.reason), rec.position_id,
            now if rec.created_at is None else rec.created_at,
            now if rec.updated_at is None else rec.updated_at, rec.attempts,
            rec.stop, rec.target, rec.initial_risk, rec.fee, rec.fee_currency, rec.sent_at,
            rec.absent_checks, rec.absent_at,
            *((self.fence.node_id, self.fence.epoch) if self.fence else (None, None)),
        )  # fmt: skip
        # One write transaction, on PostgreSQL on a connection held for it: with a fence, the
        # lease row is checked and locked in it first (_check_fence), so the insert lands only
        # while the lease is this node's, and names the node and epoch it was stored under.
        with self._write("record_order") as conn:
            # Only the client id conflict is ignored (INSERT OR IGNORE would hide NOT NULL failures too).
            cur = conn.execute(
                f"INSERT INTO orders ({ORDER_COLUMNS}) VALUES ({', '.join('?' * len(values))})"
                " ON CONFLICT (account_key, client_order_id) DO NOTHING",
                values,
            )
            return cur.rowcount == 1

    def update_order(self, client_order_id: str, **fields: Any) -> None:
        """Change an order's status, venue_order_id, filled, average_price, fee_usd, fee,
        fee_currency, reason, attempts, position_id, sent_at, absent_checks or absent_at;
        ``updated_at`` becomes now. StoreError if there is no such order."""
        if unknown := set(fields) - ORDER_UPDATABLE:
            raise ValueError(f"update_order cannot change {sorted(unknown)}")
        if "status" in fields:  # ValueError for a string that is no StoredOrderStatus
            fields["status"] = StoredOrderStatus(fields["status"])
        check_finite(**fields)
        if "reason" in fields:
            fields["reason"] = self._text(fields["reason"])
        self._update(
            "update_order",
            "orders",
            "client_order_id = ?",
            client_order_id,
            **fields,
            updated_at=self._clock.wall(),
        )

    def add_fill(
        self, client_order_id: str, quantity: float, price: float, fee_usd: float, at: float
    ) -> None:
        """Record one fill of a stored order; StoreError if this account has no such order."""
        check_finite(quantity=quantity, price=price, fee_usd=fee_usd)
        self._insert(
            "add_fill",
            "fills",
            client_order_id=client_order_id,
            quantity=quantity,
            price=price,
            fee_usd=fee_usd,
            at=at,
        )

    def open_position(
        self,
        symbol: str,
        quantity: float,
        entry_price: float,
        stop: float,
        target: float | None,
        initial_risk: float | None,
        opened_at: float,
        entry_client_order_id: str | None = None,
        external: bool = False,
    ) -> PositionRecord:
        """Store a new open position; ``highest_close`` starts at the entry price.

        StoreError if this account already has an open position in ``symbol``.
        """
        values = dict(
            quantity=quantity,
            entry_price=entry_price,
            stop=stop,
            target=target,
            initial_risk=initial_risk,
        )
        check_finite(**values)
        position_id = self._insert(
            "open_position",
            "positions",
            symbol=symbol,
            **values,
            highest_close=entry_price,
            opened_at=opened_at,
            entry_client_order_id=entry_client_order_id,
            external=int(external),
        )
        sql = f"SELECT {POSITION_COLUMNS} FROM positions WHERE account_key = ? AND id = ?"
        return position_from_row(self._rows("open_position", sql, position_id)[0])

    def update_position(self, position_id: int, **fields: Any) -> None:
        """Change a position's stop, target, highest_close, breakeven_done, quantity,
        exit_attempts, exit_retry_at, exit_blocked or realized_pnl_usd (of the parts sold)."""
        if unknown := set(fields) - POSITION_UPDATABLE:
            raise ValueError(f"update_position cannot change {sorted(unknown)}")
        if not fields:
            return
        check_finite(**fields)
        if "breakeven_done" in fields:
            fields["breakeven_done"] = int(bool(fields["breakeven_done"]))
        self._update("update_position", "positions", "id = ?", position_id, **fields)

    def close_position(
        self,
        position_id: int,
        exit_price: float,
        reason: str,
        closed_at: float,
        realized_pnl_usd: float,
    ) -> None:
        """Mark an open position closed; StoreError if it is not open (never closed twice)."""
        check_finite(exit_price=exit_price, realized_pnl_usd=realized_pnl_usd)
        self._update(
            "close_position",
            "positions",
            "id = ? AND status = 'open'",
            position_id,
            status=PositionStatus.CLOSED,
            exit_price=exit_price,
            close_reason=self._text(reason),
            closed_at=closed_at,
            realized_pnl_usd=realized_pnl_usd,
        )

    def record_cycle(
        self,
        started_at: float,
        duration_ms: float,
        broker_calls: int,
        orders_placed: int,
        positions_open: int,
        errors: dict[str, int],
        ok: bool,
    ) -> None:
        """Store one cycle's outcome; ``errors`` counts failures by type name."""
        self._insert(
            "record_cycle",
            "cycles",
            started_at=started_at,
            duration_ms=duration_ms,
            broker_calls=broker_calls,
            orders_placed=orders_placed,
            positions_open=positions_open,
            errors=json.dumps(errors, sort_keys=True),
            ok=int(ok),
        )

    def record_health_event(self, at: float, old: str, new: str, reason: str) -> None:
        """Store a change of this account's health state."""
        self._insert(
            "record_health_event",
            "health_events",
            at=at,
            old=str(old),
            new=str(new),
            reason=self._text(reason),
        )

    def set_dust(self, asset: str, quantity: float) -> None:
        """Record the remainder of ``asset`` too small to trade; 0 (or less) forgets it."""
        check_finite(quantity=quantity)
        with self._write("set_dust") as conn:
            if quantity <= 0:
                conn.execute(
                    "DELETE FROM dust WHERE account_key = ? AND asset = ?",
                    (self.account_key, asset),
                )
                return
            conn.execute(
                "INSERT INTO dust (account_key, asset, quantity, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (account_key, asset) DO UPDATE SET quantity = excluded.quantity,"
                " updated_at = excluded.updated_at",
                (self.account_key, asset, float(quantity), self._clock.wall()),
            )

    def set_day_start_equity(self, day: str, equity: float) -> None:
        """Record (or replace) the equity at the start of UTC ``day`` (``YYYY-MM-DD``)."""
        date.fromisoformat(day)  # ValueError for anything but a calendar date
        check_finite(equity=equity)
        with self._write("set_day_start_equity") as conn:
            conn.execute(
                "INSERT INTO day_equity (account_key, day, equity) VALUES (?, ?, ?)"
                " ON CONFLICT (account_key, day) DO UPDATE SET equity = excluded.equity",
                (self.account_key, day, float(equity)),
            )
