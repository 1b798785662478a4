"""A full disk, for tests: SQLite's own SQLITE_FULL error and a store connection that raises it.

No tmpfs is needed: SQLite raises the very error a full disk gives ("database or disk is
full", code ``SQLITE_FULL``) for a database held to one page, so the daemon's handling is
tested against the real exception, not a look-alike built from its message.
"""

from __future__ import annotations

import sqlite3
from typing import Any

# The statements that write (a full disk refuses them; reads still work).
_WRITES = ("BEGIN", "INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE")


def sqlite_full_error() -> sqlite3.OperationalError:
    """SQLite's own "database or disk is full" (SQLITE_FULL)."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("PRAGMA max_page_count = 1")
        conn.execute("CREATE TABLE t (x)")
    except sqlite3.OperationalError as exc:
        return exc
    finally:
        conn.close()
    raise AssertionError("SQLite took a table into a one-page database")


class FullDiskConnection:
    """Wraps a store's sqlite3 connection: every write raises SQLITE_FULL while ``full`` is set."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.full = True

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if self.full and sql.lstrip().upper().startswith(_WRITES):
            raise sqlite_full_error()
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


__all__ = ["FullDiskConnection", "sqlite_full_error"]
