"""Reading the state store: one account's reads, and a read-only view of every account.

``AccountReader`` is every read of one account's rows over a given connection (the
queries are ``bot.store.schema.AccountQueries``, and ``pnl_between`` here); ``bot.store.writer.Store``
extends it with the writes. ``ReadOnlyStore`` (``Store.open_readonly``) opens the database
read-only (SQLite ``mode=ro``; PostgreSQL read-only transactions) for readers other than the
account threads, the check scripts and the API: no write locks, latest commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.store.backend import Connection, Database, Row, as_database
from bot.store.db import DEFAULT_BUSY_TIMEOUT_MS, guarded
from bot.store.pnl import PnlQueries
from bot.store.records import OrderRecord, PositionRecord
from bot.store.schema import AccountQueries

__all__ = ["AccountReader", "PnlTotals", "ReadOnlyStore"]


@dataclass(frozen=True, slots=True)
class PnlTotals:
    """One account's trading results over a time range (``AccountReader.pnl_between``).

    ``realized_pnl_usd`` sums the positions closed in the range, each net of its entry's and
    exit's fees (as stored at the close, every part of an exit sold in parts). ``fees_usd`` sums the fees of the fills made in the
    range, entries and exits alike: an entry filled today and closed tomorrow pays its fee
    today, and counts in tomorrow's realized P&L.
    """

    realized_pnl_usd: float
    fees_usd: float
    closed_positions: int
    fills: int


class AccountReader(AccountQueries):
    """Every read of one account's rows. ``Store`` is one; ``ReadOnlyStore.account`` makes others."""

    def __init__(self, conn: Connection, account_key: str) -> None:
        if not account_key:
            raise ValueError("account_key is required")
        self._conn = conn
        self.account_key = account_key

    def _rows(self, operation: str, sql: str, *params: Any) -> list[Row]:
        with guarded(operation, self.account_key):
            return self._conn.execute(sql, (self.account_key, *params)).fetchall()

    def pnl_between(self, start: float, end: float) -> PnlTotals:
        """Realized P&L and fees from ``start`` (included) to ``end`` (excluded), epoch seconds:
        one UTC day is ``(midnight, midnight + 86400)``."""
        closed = self._rows(
            "pnl_between",
            "SELECT COUNT(*) AS n, COALESCE(SUM(realized_pnl_usd), 0.0) AS pnl FROM positions"
            " WHERE account_key = ? AND status = 'closed' AND closed_at >= ? AND closed_at < ?",
            start,
            end,
        )[0]
        fills = self._rows(
            "pnl_between",
            "SELECT COUNT(*) AS n, COALESCE(SUM(fee_usd), 0.0) AS fees FROM fills"
            " WHERE account_key = ? AND at >= ? AND at < ?",
            start,
            end,
        )[0]
        return PnlTotals(float(closed["pnl"]), float(fills["fees"]), closed["n"], fills["n"])


class ReadOnlyStore(PnlQueries):
    """Every account's state through a read-only connection: no write locks, latest commits.

    For readers other than the account threads (the check scripts, the API). ``target`` is
    a ``Database`` or a SQLite file path. ``account(key)`` gives all of ``AccountReader``'s
    reads for one account; ``daily_pnl`` and ``pnl_report`` (``bot.store.pnl``) every
    account's results per UTC day.
    """

    def __init__(
        self, target: Database | str | Path, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS
    ) -> None:
        self.database = as_database(target, busy_timeout_ms)
        self._conn = self.database.connect_readonly()

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def __enter__(self) -> ReadOnlyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _select(self, operation: str, sql: str, *params: Any) -> list[Row]:
        with guarded(operation, None):
            return self._conn.execute(sql, params).fetchall()

    def account(self, account_key: str) -> AccountReader:
        """Every read of one account's rows, over this read-only connection."""
        return AccountReader(self._conn, account_key)

    def account_keys(self) -> list[str]:
        """Every account key with a stored order, position or cycle, sorted."""
        sql = (
            "SELECT account_key FROM orders UNION SELECT account_key FROM positions"
            " UNION SELECT account_key FROM cycles ORDER BY 1"
        )
        with guarded("account_keys", None):
            return [row["account_key"] for row in self._conn.execute(sql).fetchall()]

    def lifetime_totals(self) -> dict[str, PnlTotals]:
        """Every account's realized P&L and fees since its first order, by key (for metrics)."""
        closed_sql = (
            "SELECT account_key, COUNT(*) AS n, COALESCE(SUM(realized_pnl_usd), 0.0) AS pnl"
            " FROM positions WHERE status = 'closed' GROUP BY account_key"
        )
        fills_sql = (
            "SELECT account_key, COUNT(*) AS n, COALESCE(SUM(fee_usd), 0.0) AS fees"
            " FROM fills GROUP BY account_key"
        )
        with guarded("lifetime_totals", None):
            closed = {r["account_key"]: r for r in self._conn.execute(closed_sql).fetchall()}
            fills = {r["account_key"]: r for r in self._conn.execute(fills_sql).fetchall()}
        totals = {}
        for key in sorted(set(closed) | set(fills)):
            c, f = closed.get(key), fills.get(key)
            totals[key] = PnlTotals(
                float(c["pnl"]) if c else 0.0,
                float(f["fees"]) if f else 0.0,
                c["n"] if c else 0,
                f["n"] if f else 0,
            )
        return totals

    def order_counts(self) -> dict[str, int]:
        """How many orders of every account are in each status, by status."""
        sql = "SELECT status, COUNT(*) AS n FROM orders GROUP BY status"
        with guarded("order_counts", None):
            return {row["status"]: row["n"] for row in self._conn.execute(sql).fetchall()}

    def open_positions(self, account_key: str) -> list[PositionRecord]:
        """That account's open positions, oldest first."""
        return self.account(account_key).open_positions()

    def orders_since(self, account_key: str, ts: float) -> list[OrderRecord]:
        """That account's orders created at or after ``ts``, oldest first."""
        return self.account(account_key).orders_since(ts)
