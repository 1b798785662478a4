"""The state database file: opening it (WAL), migrating its schema, and the error policy.

``db_path`` names one database per mode. ``connect`` and ``prepare_connection`` open
a connection in autocommit mode, in WAL, at the current schema version (``migrate``
applies the missing steps of ``bot.store.schema.MIGRATIONS``). ``make_private`` keeps the
file and its ``-wal``/``-shm`` companions readable by their owner only (0600). ``guarded`` turns any
sqlite3 or file-system failure (or a ``BackendError`` of another backend) into a
``StoreError`` naming the operation, so a caller can count it as that account's failure.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from bot.errors import StorageError
from bot.store.schema import MIGRATIONS, SCHEMA_VERSION

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_MS",
    "BackendError",
    "SchemaVersionError",
    "StoreError",
    "connect",
    "db_path",
    "guarded",
    "make_private",
    "migrate",
    "open_existing",
    "pragma",
    "prepare_connection",
    "prepare_database",
    "rollback_quietly",
]

DEFAULT_BUSY_TIMEOUT_MS = 2000
# Orders, positions and venue texts are nobody else's business, whatever the umask.
PRIVATE_FILE_MODE = 0o600


class StoreError(StorageError):
    """A state-store operation failed (locked, busy, disk full, closed, missing row…).

    ``operation`` names the store method; ``error_name`` is SQLite's code name
    (e.g. ``SQLITE_BUSY``) when the failure came from SQLite.
    """

    def __init__(
        self,
        operation: str,
        message: str,
        *,
        account_key: str | None = None,
        error_name: str | None = None,
    ) -> None:
        where = f" for {account_key}" if account_key else ""
        super().__init__(f"store {operation}{where} failed: {message}")
        self.operation = operation
        self.account_key = account_key
        self.error_name = error_name


class BackendError(Exception):
    """A database backend's failure, already worded for an operator (never a password).

    ``guarded`` makes it a ``StoreError`` naming the store operation; ``error_name`` is the
    backend's code for it (PostgreSQL's SQLSTATE, e.g. ``08006``, or ``connection_lost``).
    """

    def __init__(self, message: str, *, error_name: str | None = None) -> None:
        super().__init__(message)
        self.error_name = error_name


class SchemaVersionError(StoreError):
    """The database's schema version is not one this NIJA can use."""

    def __init__(self, operation: str, found: int, supported: int) -> None:
        if found > supported:
            hint = (
                "it was written by a newer NIJA; upgrade NIJA or use another NIJA_DATA_DIR"
                " (or NIJA_DATABASE_URL)"
            )
        else:
            hint = "it is not initialised or not migrated yet; start the daemon once"
        super().__init__(
            operation, f"database schema version {found}, expected {supported}: {hint}"
        )
        self.found = found
        self.supported = supported


class _Rollbackable(Protocol):
    """Any backend's connection, as ``rollback_quietly`` sees it."""

    @property
    def in_transaction(self) -> bool: ...

    def rollback(self) -> None: ...


def db_path(data_dir: str | Path, mode: str) -> Path:
    """The state database of one mode: ``<data_dir>/nija-<mode>.db``."""
    if not mode or "/" in mode or "\\" in mode:
        raise ValueError(f"mode must be a plain name like 'paper' or 'live', not {mode!r}")
    return Path(data_dir) / f"nija-{mode}.db"


def make_private(path: Path, *, create: bool = True) -> None:
    """Create the database file owner-only (0600) unless it exists (or, with ``create``
    False, require it to exist), and make it and its ``-wal`` and ``-shm`` files 0600
    (files an older version left readable are fixed too).

    SQLite creates ``-wal`` and ``-shm`` with the main file's mode, so creating that file
    first is what keeps them private. OSError when the files cannot be changed, and
    FileNotFoundError when ``create`` is False and the file is missing.
    """
    flags = os.O_RDWR | (os.O_CREAT if create else 0)
    fd = os.open(path, flags, PRIVATE_FILE_MODE)
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(path.with_name(path.name + suffix), PRIVATE_FILE_MODE)


@contextmanager
def guarded(operation: str, account_key: str | None) -> Iterator[None]:
    """Turn a sqlite3, file system or backend failure into a ``StoreError`` naming the operation."""
    try:
        yield
    except BackendError as exc:
        raise StoreError(
            operation, str(exc), account_key=account_key, error_name=exc.error_name
        ) from exc
    except (sqlite3.Error, OSError) as exc:
        name = getattr(exc, "sqlite_errorname", None)
        raise StoreError(operation, str(exc), account_key=account_key, error_name=name) from exc


def rollback_quietly(conn: sqlite3.Connection | _Rollbackable) -> None:
    """Roll back an open transaction; the original failure is the one worth reporting."""
    try:
        if conn.in_transaction:
            conn.rollback()
    except (sqlite3.Error, BackendError):
        pass


def open_existing(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    """A connection to the database at ``path`` that never creates it: a file that has
    vanished is an error, not a new empty database that would forget every order."""
    return connect(f"{path.resolve().as_uri()}?mode=rw", busy_timeout_ms, uri=True)


def connect(target: str, busy_timeout_ms: int, *, uri: bool = False) -> sqlite3.Connection:
    """A connection to ``target`` (a path, or a URI when ``uri``) with the busy timeout.

    Its rows are ``sqlite3.Row``: every read takes a column by name, never by position.
    """
    # isolation_level=None: no implicit transactions, every write says BEGIN itself.
    conn = sqlite3.connect(target, timeout=busy_timeout_ms / 1000, isolation_level=None, uri=uri)
    conn.row_factory = sqlite3.Row
    return conn


def pragma(conn: sqlite3.Connection, statement: str) -> Any:
    """The one value a ``PRAGMA <statement>`` answers, whatever the connection's row factory."""
    (value,) = conn.execute(f"PRAGMA {statement}").fetchone()
    return value


def prepare_connection(conn: sqlite3.Connection, account_key: str | None) -> None:
    """Foreign keys on, synchronous FULL, WAL, and the schema migrated to ``SCHEMA_VERSION``."""
    conn.execute("PRAGMA foreign_keys = ON")
    # FULL: a committed "pending" order must survive a power cut; it proves what may have been sent.
    conn.execute("PRAGMA synchronous = FULL")
    if pragma(conn, "journal_mode").lower() != "wal":
        mode = pragma(conn, "journal_mode = WAL")
        if mode.lower() != "wal":
            raise StoreError("open", f"cannot enable WAL (got {mode})", account_key=account_key)
    # No write lock when there is nothing to migrate: opening never waits on another writer.
    version = pragma(conn, "user_version")
    if version > SCHEMA_VERSION:
        raise SchemaVersionError("open", version, SCHEMA_VERSION)
    if version < SCHEMA_VERSION:
        migrate(conn)


def prepare_database(path: str | Path, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> None:
    """Create or migrate the database once, before account threads open it together.

    Switching a new file to WAL needs it to itself, so the daemon does this first.
    """
    path = Path(path)
    with guarded("prepare", None):
        path.parent.mkdir(parents=True, exist_ok=True)
        make_private(path)
        conn = connect(str(path), busy_timeout_ms)
    try:
        with guarded("prepare", None):
            prepare_connection(conn, None)
    finally:
        conn.close()


def migrate(
    conn: sqlite3.Connection, migrations: Sequence[Sequence[str]] = MIGRATIONS
) -> tuple[int, int]:
    """Bring the database to version ``len(migrations)``: all missing steps in one transaction.

    Returns ``(version_before, version_after)``. A database newer than ``migrations``
    raises ``SchemaVersionError`` and is left untouched; so is one whose step fails.
    ``conn`` must be in autocommit mode (``isolation_level=None``).
    """
    target = len(migrations)
    conn.execute("BEGIN IMMEDIATE")  # the write lock first: two processes never both migrate
    try:
        found = pragma(conn, "user_version")
        if found > target:
            raise SchemaVersionError("open", found, target)
        for step in migrations[found:]:
            for statement in step:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {int(target)}")
        conn.execute("COMMIT")
    except BaseException:
        rollback_quietly(conn)
        raise
    return found, target
