"""One store interface, two backends: SQLite (a file, the embedded default) and PostgreSQL.

A ``Database`` says where the state lives (``bot.store.sqlite.SqliteDatabase``, a file;
``bot.store.pg.PostgresDatabase``, a server named by ``NIJA_DATABASE_URL``) and opens
``Connection``\\ s to it. ``Store``, ``ReadOnlyStore`` and ``OperatorStore`` take a
``Database`` (or, as before, a SQLite file path: ``as_database``) and speak to it only
through ``Connection``, a small part of ``sqlite3.Connection``'s shape:

* ``execute(sql, params)`` with SQLite's ``?`` placeholders (the PostgreSQL connection
  translates them); rows are read by column name (``Row``); an ``INSERT ... RETURNING id``
  gives a new row's id on both;
* ``begin_write`` / ``commit`` / ``rollback``: one write transaction, taken whole or not
  at all. On PostgreSQL a check and an insert made between them are one transaction:
  the lease fence of several nodes (``bot.store.fence``) locks the account's lease row
  where it is still this node's, then the order is inserted, in one transaction;
* driver failures surface as the driver's error or as ``BackendError``; ``bot.store.db.guarded``
  turns either into a ``StoreError`` naming the store operation and the account.

The SQL itself is written once, in the dialect both accept (``ON CONFLICT``, ``RETURNING``,
``COALESCE``, ``GROUP BY``); only the table definitions differ (``bot.store.schema``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from bot.store.db import DEFAULT_BUSY_TIMEOUT_MS, db_path

__all__ = [
    "Connection",
    "Cursor",
    "Database",
    "Row",
    "as_database",
    "open_database",
]


class Row(Protocol):
    """One result row, read by column name (``sqlite3.Row``, or psycopg's dict row)."""

    def __getitem__(self, key: str, /) -> Any: ...

    def keys(self) -> Iterable[str]: ...


class Cursor(Protocol):
    """The result of one ``Connection.execute``."""

    @property
    def rowcount(self) -> int: ...

    def fetchall(self) -> list[Any]: ...

    def fetchone(self) -> Any: ...


class Connection(Protocol):
    """A connection as the store classes use it; used by one thread at a time."""

    @property
    def in_transaction(self) -> bool: ...

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Cursor:
        """Run one statement (``?`` placeholders) inside the open transaction, if any."""
        ...

    def begin_write(self) -> None:
        """Start a write transaction (SQLite: take the write lock now, ``BEGIN IMMEDIATE``)."""
        ...

    def commit(self) -> None:
        """Commit the open transaction."""
        ...

    def rollback(self) -> None:
        """Roll back the open transaction."""
        ...

    def close(self) -> None:
        """Close (SQLite) or give back (PostgreSQL) the connection."""
        ...


class Database(Protocol):
    """Where the state store lives, and how to reach it."""

    @property
    def kind(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        ...

    def describe(self) -> str:
        """Where the store is, for messages: a file path, or a server's host and database
        (never a password)."""
        ...

    def identity(self) -> object | None:
        """What names the store now (a file's device and inode); None when it is gone.

        The daemon compares it with what it opened, to notice a database file moved away.
        """
        ...

    def prepare(self) -> str | None:
        """Create or migrate the store once, before account threads open it together.

        What was found when the store is new (no earlier orders), else None; ``StoreError``
        when it cannot be used.
        """
        ...

    def connect(
        self, account_key: str | None, *, create: bool, dedicated: bool = False
    ) -> Connection:
        """A connection at the current schema version (migrating if needed).

        ``create`` False: a store that is not there is an error, never a new empty one.
        ``dedicated``: one that never waits on the accounts' shared connections (PostgreSQL:
        a connection of its own, for the lease keeper; SQLite: every connection is).
        """
        ...

    def connect_readonly(self) -> Connection:
        """A connection that cannot write, for readers (the check scripts, the API);
        ``SchemaVersionError`` unless the store is at the current version."""
        ...

    def close(self) -> None:
        """Release what the database holds (PostgreSQL: its connection pools)."""
        ...


def as_database(
    target: Database | str | Path, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS
) -> Database:
    """``target`` itself, or the SQLite database at the path ``target``."""
    if isinstance(target, str | Path):
        from bot.store.sqlite import SqliteDatabase

        return SqliteDatabase(target, busy_timeout_ms)
    return target


def open_database(
    data_dir: str | Path,
    mode: str,
    database_url: str | None,
    *,
    max_connections: int = 10,
) -> Database:
    """The state store of ``mode``: on PostgreSQL when ``database_url`` is set
    (``NIJA_DATABASE_URL``), else the SQLite file ``<data_dir>/nija-<mode>.db``.

    ``max_connections`` bounds PostgreSQL's pool (``NIJA_DATABASE_POOL_SIZE``): a thread
    holds a connection for one statement or one write transaction only, so a few serve
    hundreds of accounts.
    """
    if database_url:
        from bot.store.pg import PostgresDatabase  # psycopg is loaded only when it is used

        return PostgresDatabase(database_url, mode, max_connections=max_connections)
    from bot.store.sqlite import SqliteDatabase

    return SqliteDatabase(db_path(data_dir, mode))
