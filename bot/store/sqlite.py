"""The SQLite backend: the state store in one file per mode, the embedded default.

``SqliteDatabase`` is a file path and a busy timeout; its connections are plain
``sqlite3`` connections in WAL mode (``bot.store.db``) behind ``SqliteConnection``, the
backend interface of ``bot.store.backend``. A single VPS needs no server.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.store.db import (
    DEFAULT_BUSY_TIMEOUT_MS,
    SchemaVersionError,
    StoreError,
    connect,
    guarded,
    make_private,
    open_existing,
    pragma,
    prepare_connection,
    prepare_database,
)
from bot.store.schema import SCHEMA_VERSION

__all__ = ["SqliteConnection", "SqliteDatabase"]


class SqliteConnection:
    """A ``sqlite3`` connection (autocommit, rows by name) as a backend ``Connection``."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.raw = conn

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> sqlite3.Cursor:
        return self.raw.execute(sql, params)

    def begin_write(self) -> None:
        self.raw.execute("BEGIN IMMEDIATE")  # take the write lock now, not on a later upgrade

    def commit(self) -> None:
        self.raw.execute("COMMIT")

    def rollback(self) -> None:
        self.raw.rollback()

    def close(self) -> None:
        self.raw.close()


class SqliteDatabase:
    """The state store in the SQLite file at ``path``."""

    kind = "sqlite"

    def __init__(self, path: str | Path, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms

    def __repr__(self) -> str:
        return f"SqliteDatabase({str(self.path)!r})"

    def describe(self) -> str:
        return str(self.path)

    def identity(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def prepare(self) -> str | None:
        try:
            size = self.path.stat().st_size if self.path.is_file() else None
        except OSError:
            size = None
        prepare_database(self.path, self.busy_timeout_ms)
        if size is None:
            return "no database file"
        return "an empty (0-byte) database file" if size == 0 else None

    def connect(
        self, account_key: str | None, *, create: bool, dedicated: bool = False
    ) -> SqliteConnection:
        with guarded("open", account_key):
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            make_private(self.path, create=create)
            conn = (
                connect(str(self.path), self.busy_timeout_ms)
                if create
                else open_existing(self.path, self.busy_timeout_ms)
            )
        try:
            with guarded("open", account_key):
                prepare_connection(conn, account_key)
        except BaseException:
            conn.close()
            raise
        return SqliteConnection(conn)

    def connect_readonly(self) -> SqliteConnection:
        if not self.path.is_file():  # sqlite would report only "unable to open database file"
            raise StoreError("open_readonly", f"no database at {self.path}")
        with guarded("open_readonly", None):
            conn = connect(
                self.path.resolve().as_uri() + "?mode=ro", self.busy_timeout_ms, uri=True
            )
        try:
            with guarded("open_readonly", None):
                version = pragma(conn, "user_version")
            if version != SCHEMA_VERSION:
                raise SchemaVersionError("open_readonly", version, SCHEMA_VERSION)
        except BaseException:
            conn.close()
            raise
        return SqliteConnection(conn)

    def close(self) -> None:
        """Nothing to release: every connection is its user's to close."""
