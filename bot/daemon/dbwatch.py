"""The state database under watch: ready at start, and still there while the daemon runs.

At start ``open`` creates or migrates the database and says so when it is new: in live
mode a new (or empty) database means the daemon has no record of earlier orders, and
reconciliation will adopt what the venue holds. An unusable database is a
``StartupError`` naming the file (or the PostgreSQL server and database) and the fix.

While the daemon runs, SQLite keeps writing through its open descriptors even after the
file is deleted or renamed, into a file nobody will ever read again. ``check`` (called by
the watchdog every tick) compares the open file's device and inode with what the path
names now, and answers why new positions must wait (None when all is well); it logs each
change once. On PostgreSQL there is no file to move away: a lost connection is a failure
of the account whose call met it (``bot.store.pg``).
"""

from __future__ import annotations

from typing import Any

from bot.errors import StartupError
from bot.store.backend import Database
from bot.store.writer import SchemaVersionError, StoreError

__all__ = ["DatabaseWatch"]

_FIXES = {
    "sqlite": "fix: move the file aside (a new one is created and reconciliation adopts what "
    "the venues hold), or restore a backup",
    "postgresql": "fix: check that the server is up and reachable from here, and the user, "
    "password and database in NIJA_DATABASE_URL",
}


class DatabaseWatch:
    """The database the daemon opened, and whether its path still names the same file."""

    def __init__(self, database: Database, *, live: bool, log: Any) -> None:
        self.database = database
        self.path = database.describe()  # the file's path, or the server and database
        self.live = live
        self.log = log
        self._opened: object | None = None
        self.problem: str | None = None  # why new positions wait; None: the file is in place

    def open(self) -> None:
        """Create or migrate the database (once); ``StartupError`` when it cannot be used."""
        if self._opened is not None:
            return
        try:
            found = self.database.prepare()
        except SchemaVersionError as exc:
            raise StartupError(f"the state database {self.path} cannot be used: {exc}") from exc
        except StoreError as exc:
            fix = _FIXES.get(self.database.kind, _FIXES["sqlite"])
            raise StartupError(
                f"the state database {self.path} cannot be used: {exc}; {fix}"
            ) from exc
        self._opened = self.database.identity()
        if found is not None:
            log = self.log.warning if self.live else self.log.info
            log(
                "state_database_new",
                path=self.path,
                found=found,
                note="no record of earlier orders: reconciliation adopts what the venue holds"
                if self.live
                else "a fresh paper history",
            )

    def check(self) -> str | None:
        """Why new positions must wait (the file is gone or replaced), or None; logs changes."""
        if self._opened is None:
            return None
        now = self.database.identity()
        if now == self._opened:
            if self.problem is not None:
                self.problem = None
                self.log.info("state_database_back", path=str(self.path), entries="allowed again")
            return None
        if now is None:
            problem = f"state database {self.path} is missing"
            fix = "put the file back at this path (move it back, or restore the data directory)"
        else:
            problem = f"state database {self.path} was replaced by another file"
            fix = "restart the daemon to use the file now at this path, or move the old one back"
        if problem != self.problem:
            self.problem = problem
            self.log.error(
                "state_database_missing" if now is None else "state_database_replaced",
                path=str(self.path),
                effect="no new positions until it is back; exits and order checks continue",
                fix=fix,
            )
        return self.problem
