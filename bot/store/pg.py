"""The PostgreSQL backend: the state store on a server (``NIJA_DATABASE_URL=postgresql://…``).

``PostgresDatabase`` owns three psycopg connection pools, opened on first use: one for the
account threads and the operator (``NIJA_DATABASE_POOL_SIZE``, 10 by default, whatever the
number of accounts: a thread holds a connection only for one statement or one write
transaction, never between them), one connection of its own for the lease keeper
(``dedicated``: its renewals never queue behind the accounts' transactions), and a small
pool for readers whose sessions are ``default_transaction_read_only``. ``PostgresConnection``
(``bot.store.pg_connection``) is the backend ``Connection`` (``bot.store.backend``), and
says how a lost connection is tried again or reported: a failure of the store for the
account that hit it, never an empty answer.

Every message names the server's host and database, never the password. The schema lives
in the URL's first ``search_path`` schema (``public`` unless the URL's ``options`` say
otherwise); the table ``nija_schema`` holds its version and the mode (paper or live) it
was created for: a paper daemon never opens a live store.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row
from psycopg_pool import PoolTimeout

from bot.store.db import (
    DEFAULT_BUSY_TIMEOUT_MS,
    BackendError,
    SchemaVersionError,
    StoreError,
    guarded,
    rollback_quietly,
)
from bot.store.pg_connection import LendingPool, PgConnection, PostgresConnection, Retry
from bot.store.schema import PG_MIGRATIONS, SCHEMA_VERSION

__all__ = [
    "DatabaseUrl",
    "PostgresConnection",
    "PostgresDatabase",
    "Retry",
    "parse_database_url",
]

# pg_advisory_xact_lock key held while migrating: two nodes starting together never both migrate.
_MIGRATION_LOCK = 0x4E494A41  # "NIJA"
# The pools, by name (psycopg's ``name``, seen in its log).
_ACCOUNTS, _DEDICATED, _READERS = "nija-store", "nija-store-dedicated", "nija-store-readonly"
_SCHEMA_TABLE = """CREATE TABLE IF NOT EXISTS nija_schema (
    version BIGINT NOT NULL,
    mode TEXT NOT NULL
)"""


@dataclass(frozen=True, slots=True)
class DatabaseUrl:
    """A PostgreSQL URL and what may be shown of it: host, port, database, user."""

    url: str = field(repr=False)
    host: str
    port: str
    dbname: str
    user: str | None
    password: str | None = field(repr=False)
    params: frozenset[str] = frozenset()  # the connection parameters the URL sets

    def describe(self) -> str:
        """``PostgreSQL database "nija" on db.example.com:5432`` (never the password)."""
        return f'PostgreSQL database "{self.dbname}" on {self.host}:{self.port}'


def parse_database_url(raw: str) -> DatabaseUrl:
    """``raw`` as a ``postgresql://`` (or ``postgres://``) URL; ValueError says what is wrong
    without the value, which may hold a password."""
    if not raw.startswith(("postgresql://", "postgres://")) or any(c.isspace() for c in raw):
        raise ValueError("a URL like postgresql://user:password@host:5432/dbname")
    try:
        params = conninfo_to_dict(raw)
    except psycopg.Error:  # its message may quote the URL, password and all
        raise ValueError("a valid PostgreSQL URL (it could not be parsed)") from None
    port = str(params.get("port") or "5432")
    if not port.isdigit():
        raise ValueError("a PostgreSQL URL whose port is a number")
    host = str(params.get("host") or params.get("hostaddr") or "localhost")
    user = params.get("user")
    dbname = str(params.get("dbname") or user or "postgres")
    password = params.get("password")
    return DatabaseUrl(
        raw,
        host,
        port,
        dbname,
        None if user is None else str(user),
        None if password is None else str(password),
        frozenset(params),
    )


class PostgresDatabase:
    """The state store of ``mode`` in the PostgreSQL database at ``url``.

    ``busy_timeout_ms`` bounds a wait for a lock (``lock_timeout``), as SQLite's busy
    timeout does; ``statement_timeout_ms`` bounds any one statement; a connection is made
    within ``connect_timeout_seconds`` (the pool's wait for one too). ``retry`` and
    ``sleep`` pace the attempts after a lost connection.
    """

    kind = "postgresql"

    def __init__(
        self,
        url: str,
        mode: str,
        *,
        max_connections: int = 10,
        readers: int = 4,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        statement_timeout_ms: int = 30_000,
        connect_timeout_seconds: float = 5.0,
        retry: Retry | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not mode or not mode.isidentifier():
            raise ValueError(f"mode must be a plain name like 'paper' or 'live', not {mode!r}")
        self.url = parse_database_url(url)
        self.mode = mode
        self.max_connections = max(1, max_connections)
        self.readers = max(1, readers)
        self.busy_timeout_ms = busy_timeout_ms
        self.statement_timeout_ms = statement_timeout_ms
        self.connect_timeout_seconds = connect_timeout_seconds
        self.retry = retry or Retry()
        self.sleep = sleep
        self._lock = threading.Lock()
        self._pools: dict[str, LendingPool] = {}  # by name

    def __repr__(self) -> str:
        return f"PostgresDatabase({self.describe()!r}, mode={self.mode!r})"

    def describe(self) -> str:
        return self.url.describe()

    def identity(self) -> str:
        return self.describe()  # a server has no file to move away; a lost one is per call

    # -- connections -------------------------------------------------------------
    def _pool(self, name: str) -> LendingPool:
        read_only = name == _READERS
        size = {_ACCOUNTS: self.max_connections, _DEDICATED: 1, _READERS: self.readers}[name]
        with self._lock:
            pool = self._pools.get(name)
            if pool is None:
                kwargs: dict[str, Any] = {"autocommit": True, "row_factory": dict_row}
                if "connect_timeout" not in self.url.params:  # libpq's minimum is 2 s
                    kwargs["connect_timeout"] = max(2, round(self.connect_timeout_seconds))
                if "application_name" not in self.url.params:
                    kwargs["application_name"] = "nija-readonly" if read_only else "nija"
                pool = LendingPool(
                    self.url.url,
                    connection_class=psycopg.Connection[DictRow],
                    kwargs=kwargs,
                    min_size=1,
                    max_size=size,
                    configure=self._configure_readonly if read_only else self._configure,
                    timeout=self.connect_timeout_seconds,
                    name=name,
                    open=False,
                )
                pool.open(wait=False)
                self._pools[name] = pool
            return pool

    def _configure(self, conn: PgConnection, read_only: bool = False) -> None:
        """Each new session's limits: a lock wait, a statement, a transaction left idle."""
        conn.execute(
            "SELECT set_config('lock_timeout', %s, false),"
            " set_config('statement_timeout', %s, false),"
            " set_config('idle_in_transaction_session_timeout', %s, false),"
            " set_config('default_transaction_read_only', %s, false)",
            (
                f"{self.busy_timeout_ms}ms",
                f"{self.statement_timeout_ms}ms",
                f"{2 * self.statement_timeout_ms}ms",
                "on" if read_only else "off",
            ),
        )

    def _configure_readonly(self, conn: PgConnection) -> None:
        self._configure(conn, read_only=True)

    def failure(
        self,
        exc: BaseException,
        *,
        lost: bool,
        tries: int = 1,
        during_commit: bool = False,
    ) -> BackendError:
        """``exc`` worded for an operator: where, what, and whether the session was lost."""
        detail = self._why_no_connection() if isinstance(exc, PoolTimeout) else str(exc)
        detail = (detail.strip().splitlines() or [type(exc).__name__])[0]
        for secret in (self.url.url, self.url.password):
            if secret:
                detail = detail.replace(secret, "***")
        where = self.describe()
        if during_commit:
            return BackendError(
                f"connection to {where} lost during COMMIT: the write may or may not have"
                f" been stored ({detail})",
                error_name="connection_lost",
            )
        if lost:
            times = f" (tried {tries} times)" if tries > 1 else ""
            return BackendError(
                f"connection to {where} lost or refused{times}: {detail}",
                error_name="connection_lost",
            )
        return BackendError(f"{where}: {detail}", error_name=getattr(exc, "sqlstate", None))

    def exhausted(self, pool: LendingPool) -> BackendError:
        """``pool`` had no free connection for the whole wait: named, with its size."""
        setting = " (NIJA_DATABASE_POOL_SIZE)" if pool is self._pools.get(_ACCOUNTS) else ""
        return BackendError(
            f'pool "{pool.name}" of {self.describe()}: all {pool.max_size} connections{setting}'
            f" stayed in use for {self.connect_timeout_seconds:g}s (other accounts'"
            " transactions: the server is slow, or the pool too small for them)",
            error_name="pool_exhausted",
        )

    def _why_no_connection(self) -> str:
        """Why the pool had no connection to give: the server's own answer to a new one
        (refused, bad password, no such database), or all of them in use."""
        try:
            psycopg.connect(
                self.url.url, connect_timeout=max(2, round(self.connect_timeout_seconds))
            ).close()
        except psycopg.Error as exc:
            return str(exc).replace("connection failed: ", "", 1)
        return f"all {self.max_connections} connections of the pool stayed in use"

    def pool_in_use(self) -> int:
        """Connections of the accounts' pool lent out now (0 before its first use)."""
        pool = self._pools.get(_ACCOUNTS)
        return 0 if pool is None else pool.lent

    def connection(self, *, read_only: bool = False, dedicated: bool = False) -> PostgresConnection:
        """A connection over a pool (the accounts', the dedicated one, the readers'), with no
        schema check (``connect`` checks)."""
        name = _READERS if read_only else _DEDICATED if dedicated else _ACCOUNTS
        return PostgresConnection(self, self._pool(name))

    # -- the schema --------------------------------------------------------------
    def _state(self, conn: PostgresConnection) -> tuple[int, str] | None:
        """The stored (version, mode), or None when there are no NIJA tables."""
        rows = conn.execute("SELECT to_regclass('nija_schema') IS NOT NULL AS present").fetchall()
        if not rows[0]["present"]:
            return None
        stored = conn.execute("SELECT version, mode FROM nija_schema").fetchall()
        return (int(stored[0]["version"]), str(stored[0]["mode"])) if stored else None

    def _check_mode(self, operation: str, stored: str) -> None:
        if stored != self.mode:
            raise StoreError(
                operation,
                f"{self.describe()} holds the {stored} store, not {self.mode}: each mode needs"
                " a database (or a schema, through the URL's options=-csearch_path=...) of its own",
            )

    def _migrate(self, conn: PostgresConnection, operation: str) -> int | None:
        """Bring the schema to ``SCHEMA_VERSION`` in one transaction; the version before
        (None: there were no NIJA tables), as read under the migration lock."""
        conn.begin_write()
        try:
            conn.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
            conn.execute(_SCHEMA_TABLE)
            stored = conn.execute("SELECT version, mode FROM nija_schema").fetchall()
            if not stored:
                conn.execute("INSERT INTO nija_schema (version, mode) VALUES (0, ?)", (self.mode,))
            found = int(stored[0]["version"]) if stored else 0
            self._check_mode(operation, str(stored[0]["mode"]) if stored else self.mode)
            if found > SCHEMA_VERSION:
                raise SchemaVersionError(operation, found, SCHEMA_VERSION)
            for step in PG_MIGRATIONS[found:]:
                for statement in step:
                    conn.execute(statement)
            conn.execute("UPDATE nija_schema SET version = ?", (SCHEMA_VERSION,))
            conn.commit()
        except BaseException:
            rollback_quietly(conn)
            raise
        return found if stored else None

    def _open(self, operation: str, account_key: str | None, *, create: bool) -> int | None:
        """Check (and, if behind or with ``create`` new, migrate) the schema; the version
        found, None when there were no NIJA tables."""
        conn = self.connection()
        try:
            with guarded(operation, account_key):
                state = self._state(conn)
                if state is not None:
                    self._check_mode(operation, state[1])
                    if state[0] > SCHEMA_VERSION:
                        raise SchemaVersionError(operation, state[0], SCHEMA_VERSION)
                    if state[0] == SCHEMA_VERSION:
                        return state[0]
                elif not create:
                    raise StoreError(
                        operation,
                        f"no NIJA tables in {self.describe()}: the daemon creates them at start",
                        account_key=account_key,
                    )
                return self._migrate(conn, operation)
        finally:
            conn.close()

    # -- the Database interface ----------------------------------------------------
    def prepare(self) -> str | None:
        found = self._open("prepare", None, create=True)
        return f"no NIJA tables in {self.describe()}" if found is None else None

    def connect(
        self, account_key: str | None, *, create: bool, dedicated: bool = False
    ) -> PostgresConnection:
        self._open("open", account_key, create=create)
        return self.connection(dedicated=dedicated)

    def connect_readonly(self) -> PostgresConnection:
        conn = self.connection(read_only=True)
        try:
            with guarded("open_readonly", None):
                state = self._state(conn)
            if state is None:
                raise SchemaVersionError("open_readonly", 0, SCHEMA_VERSION)
            self._check_mode("open_readonly", state[1])
            if state[0] != SCHEMA_VERSION:
                raise SchemaVersionError("open_readonly", state[0], SCHEMA_VERSION)
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close(timeout=5.0)
