"""One account's connection and its write transactions, fenced by the account's lease.

Every write of the state store is a short transaction on the account's own connection
(SQLite: ``BEGIN IMMEDIATE`` bounded by a busy timeout; PostgreSQL: on a connection held
for it): any failure rolls it back and raises ``StoreError``. ``transaction()`` makes
several writes one, all of them landing or none. With a lease fence (several nodes on
PostgreSQL, ``bot.store.fence``) every write transaction first checks, in the same
transaction, that this node still holds the account's lease at the fence's epoch, and
``LeaseLostError`` writes nothing when it does not.

``AccountTransactions`` is that plumbing; ``bot.store.writer.Store`` builds the account's
rows on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from bot.store.backend import Connection, Database, as_database
from bot.store.db import DEFAULT_BUSY_TIMEOUT_MS, StoreError, guarded, rollback_quietly
from bot.store.fence import FENCE_SQL, LeaseFence, LeaseLostError
from bot.store.reader import AccountReader

__all__ = ["AccountTransactions"]


class AccountTransactions(AccountReader):
    """One account's own connection, its reads and its (fenced) write transactions.

    ``target`` is a ``Database`` (``bot.store.backend``) or a SQLite file path. Create it in
    the thread that uses it (sqlite3 refuses cross-thread use) and ``close()`` it when the
    thread ends. ``fence`` (PostgreSQL, several nodes: ``bot.store.fence``): every write
    transaction first checks, in the same transaction, that this node still holds the
    account's lease at the fence's epoch. None (SQLite, one daemon): no lease is checked.
    """

    def __init__(
        self,
        target: Database | str | Path,
        account_key: str,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        *,
        create: bool = True,
        fence: LeaseFence | None = None,
    ) -> None:
        """Open (and, with ``create``, create) the connection of ``account_key`` to ``target``."""
        if not account_key:
            raise ValueError("account_key is required")
        self.database = as_database(target, busy_timeout_ms)
        if fence is not None and (
            fence.account_key != account_key or self.database.kind == "sqlite"
        ):
            raise ValueError(f"a lease fence of {fence.account_key} on {self.database.kind} store")
        self.fence = fence
        super().__init__(self.database.connect(account_key, create=create), account_key)
        self._in_transaction = False

    def close(self) -> None:
        """Close (or give back) the connection; later calls raise ``StoreError``."""
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self, operation: str) -> Iterator[Connection]:
        """One short write transaction; any failure rolls back and raises ``StoreError``.

        Inside ``transaction()`` it joins the transaction already open.
        """
        if self._in_transaction:
            with guarded(operation, self.account_key):
                yield self._conn
            return
        with guarded(operation, self.account_key):
            conn = self._conn
            conn.begin_write()
            try:
                self._check_fence(conn, operation)
                yield conn
                conn.commit()
            except BaseException:
                rollback_quietly(conn)
                raise

    def _check_fence(self, conn: Connection, operation: str) -> None:
        """With a fence: this node's own clock, then the lease row itself (locked until the
        commit) must say the lease is still this node's; else ``LeaseLostError``."""
        fence = self.fence
        if fence is None:
            return
        fence.check(operation)
        held = conn.execute(
            FENCE_SQL, (fence.idle_limit(), self.account_key, fence.node_id, fence.epoch)
        ).fetchall()
        if not held:
            why = "the database says it is no longer this node's, or it has expired"
            fence.revoke(why)
            raise LeaseLostError(
                operation, self.account_key, f"node {fence.node_id} epoch {fence.epoch}: {why}"
            )

    def check_lease(self) -> None:
        """Raise ``LeaseLostError`` when this node may no longer send for the account: its
        lease is lost or its local deadline has passed (no fence: always allowed)."""
        if self.fence is not None:
            self.fence.check()

    @contextmanager
    def transaction(self, operation: str) -> Iterator[None]:
        """Make every write inside one transaction: all of them land, or none does.

        A crash between two of them can then never leave, say, a filled order without
        the position it opened.
        """
        if self._in_transaction:
            yield
            return
        with self._write(operation):
            self._in_transaction = True
            try:
                yield
            finally:
                self._in_transaction = False

    def _insert(self, operation: str, table: str, **values: Any) -> int:
        """Insert one row of this account; its id."""
        columns = ", ".join(["account_key", *values])
        marks = ", ".join("?" * (len(values) + 1))
        with self._write(operation) as conn:
            sql = f"INSERT INTO {table} ({columns}) VALUES ({marks}) RETURNING id"
            (row,) = conn.execute(sql, (self.account_key, *values.values())).fetchall()
            return int(row["id"])

    def _update(self, operation: str, table: str, where: str, key: Any, **fields: Any) -> None:
        """Update one row of this account (``where`` names its key column); StoreError if none."""
        assignments = ", ".join(f"{name} = ?" for name in fields)  # names are whitelisted
        with self._write(operation) as conn:
            sql = f"UPDATE {table} SET {assignments} WHERE account_key = ? AND {where}"
            if conn.execute(sql, (*fields.values(), self.account_key, key)).rowcount != 1:
                raise StoreError(operation, f"no such row ({key!r})", account_key=self.account_key)
