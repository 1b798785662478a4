"""The PostgreSQL backend: the state store on a server (``NIJA_DATABASE_URL=postgresql://…``).

``PostgresDatabase`` owns two psycopg connection pools, opened on first use: one for the
account threads and the operator (sized by the daemon: one connection per account thread
and a few more, so no account waits on another's), and a small one for readers whose
sessions are ``default_transaction_read_only``. ``PostgresConnection`` is the backend
``Connection`` (``bot.store.backend``): it takes a pooled connection for each statement
outside a transaction, and holds one from ``begin_write`` to ``commit``/``rollback``.

A lost connection (the server restarted, the network dropped, the pool could not connect
in time) is a failure of the store for the account that hit it, never an empty answer:

* a read (``SELECT``) outside a transaction, and the ``BEGIN`` of a write, are tried again
  with backoff (``Retry``) on a fresh connection: nothing was written yet;
* a statement inside a transaction is not: the transaction is gone with its connection,
  and the ``StoreError`` fails that account's cycle (its worker tries again later);
* a connection lost during ``COMMIT`` is reported as such: the write may or may not have
  landed, and is never blindly repeated.

Every message names the server's host and database, never the password. The schema lives
in the URL's first ``search_path`` schema (``public`` unless the URL's ``options`` say
otherwise); the table ``nija_schema`` holds its version and the mode (paper or live) it
was created for: a paper daemon never opens a live store.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from bot.store.db import (
    DEFAULT_BUSY_TIMEOUT_MS,
    BackendError,
    SchemaVersionError,
    StoreError,
    guarded,
    rollback_quietly,
)
from bot.store.schema import PG_MIGRATIONS, SCHEMA_VERSION

__all__ = [
    "DatabaseUrl",
    "PostgresConnection",
    "PostgresDatabase",
    "Retry",
    "parse_database_url",
]

_T = TypeVar("_T")
PgConnection = psycopg.Connection[DictRow]

# pg_advisory_xact_lock key held while migrating: two nodes starting together never both migrate.
_MIGRATION_LOCK = 0x4E494A41  # "NIJA"
# Server states that mean the session is gone: 08xxx connection exceptions, and the
# server shutting down or restarting (admin_shutdown, crash_shutdown, cannot_connect_now).
_LOST_STATES = frozenset({"57P01", "57P02", "57P03"})
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


@dataclass(frozen=True, slots=True)
class Retry:
    """How often, and how far apart, a lost connection is tried again."""

    attempts: int = 3
    first_delay: float = 0.2
    max_delay: float = 2.0

    def delays(self) -> list[float]:
        """The waits between the attempts, doubling from ``first_delay``."""
        return [min(self.first_delay * 2**i, self.max_delay) for i in range(self.attempts - 1)]


@lru_cache(maxsize=1024)
def _pg_sql(sql: str) -> str:
    """SQLite's ``?`` placeholders as psycopg's ``%s`` (outside string literals), ``%`` escaped."""
    parts = sql.replace("%", "%%").split("'")
    parts[::2] = [part.replace("?", "%s") for part in parts[::2]]
    return "'".join(parts)


def _is_read(sql: str) -> bool:
    return sql.lstrip()[:6].upper() == "SELECT"


def _is_lost(exc: BaseException, conn: PgConnection | None) -> bool:
    """True when ``exc`` means the session is gone (not a refusal of the statement)."""
    if isinstance(exc, PoolTimeout) or conn is None or conn.closed or conn.broken:
        return True
    state = getattr(exc, "sqlstate", None) or ""
    return state.startswith("08") or state in _LOST_STATES


@dataclass(slots=True)
class _Result:
    """A statement's rows, fetched before its connection went back to the pool."""

    rows: list[DictRow]
    rowcount: int

    def fetchall(self) -> list[DictRow]:
        return self.rows

    def fetchone(self) -> DictRow | None:
        return self.rows[0] if self.rows else None


def _run(conn: PgConnection, sql: str, params: Sequence[Any]) -> _Result:
    # Without parameters psycopg reads no placeholders in the text: it goes as it is.
    cur = conn.execute(_pg_sql(sql), tuple(params)) if params else conn.execute(sql)
    rows = cur.fetchall() if cur.description is not None else []
    return _Result(rows, cur.rowcount)


class PostgresConnection:
    """One user's way to the server (a ``Store``, a reader): a backend ``Connection``.

    Used by one thread at a time, like a ``sqlite3`` connection.
    """

    def __init__(self, database: PostgresDatabase, pool: ConnectionPool[PgConnection]) -> None:
        self._db = database
        self._pool = pool
        self._tx: PgConnection | None = None
        self._closed = False

    @property
    def in_transaction(self) -> bool:
        return self._tx is not None

    def _checkout(
        self, work: Callable[[PgConnection], _T], *, retry: bool, keep: bool
    ) -> tuple[PgConnection, _T]:
        """Run ``work`` on a pooled connection, tried again on a fresh one when the
        connection was lost (``retry``); the connection goes back unless ``keep``."""
        if self._closed:
            raise BackendError("the store's connection is closed", error_name="closed")
        delays = self._db.retry.delays() if retry else []
        tries = 0
        while True:
            conn: PgConnection | None = None
            tries += 1
            try:
                conn = self._pool.getconn()
                result = work(conn)
            except psycopg.Error as exc:
                lost = _is_lost(exc, conn)
                if conn is not None:
                    self._pool.putconn(conn)  # the pool drops it if it is broken
                if not (lost and delays):
                    raise self._db.failure(exc, lost=lost, tries=tries) from exc
                self._db.sleep(delays.pop(0))
                self._pool.check()  # the other idle connections may be dead too
                continue
            if not keep:
                self._pool.putconn(conn)
            return conn, result

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> _Result:
        if self._tx is not None:
            try:
                return _run(self._tx, sql, params)
            except psycopg.Error as exc:  # the transaction is lost with it: never retried
                raise self._db.failure(exc, lost=_is_lost(exc, self._tx)) from exc
        _conn, result = self._checkout(
            lambda conn: _run(conn, sql, params), retry=_is_read(sql), keep=False
        )
        return result

    def begin_write(self) -> None:
        if self._tx is not None:
            raise BackendError("a transaction is already open", error_name="nested")
        self._tx, _ = self._checkout(lambda conn: conn.execute("BEGIN"), retry=True, keep=True)

    def commit(self) -> None:
        conn, self._tx = self._tx, None
        if conn is None:
            return
        try:
            conn.execute("COMMIT")
        except psycopg.Error as exc:
            lost = _is_lost(exc, conn)
            raise self._db.failure(exc, lost=lost, during_commit=lost) from exc
        finally:
            self._pool.putconn(conn)

    def rollback(self) -> None:
        conn, self._tx = self._tx, None
        if conn is None:
            return
        try:
            conn.execute("ROLLBACK")
        except psycopg.Error:
            pass  # a lost session's transaction is rolled back by the server
        finally:
            self._pool.putconn(conn)

    def close(self) -> None:
        self.rollback()
        self._closed = True


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
        self._pools: dict[bool, ConnectionPool[PgConnection]] = {}  # by read-only

    def __repr__(self) -> str:
        return f"PostgresDatabase({self.describe()!r}, mode={self.mode!r})"

    def describe(self) -> str:
        return self.url.describe()

    def identity(self) -> str:
        return self.describe()  # a server has no file to move away; a lost one is per call

    # -- connections -------------------------------------------------------------
    def _pool(self, read_only: bool) -> ConnectionPool[PgConnection]:
        with self._lock:
            pool = self._pools.get(read_only)
            if pool is None:
                kwargs: dict[str, Any] = {"autocommit": True, "row_factory": dict_row}
                if "connect_timeout" not in self.url.params:  # libpq's minimum is 2 s
                    kwargs["connect_timeout"] = max(2, round(self.connect_timeout_seconds))
                if "application_name" not in self.url.params:
                    kwargs["application_name"] = "nija-readonly" if read_only else "nija"
                pool = ConnectionPool(
                    self.url.url,
                    connection_class=psycopg.Connection[DictRow],
                    kwargs=kwargs,
                    min_size=1,
                    max_size=self.readers if read_only else self.max_connections,
                    configure=self._configure_readonly if read_only else self._configure,
                    timeout=self.connect_timeout_seconds,
                    name="nija-store-readonly" if read_only else "nija-store",
                    open=False,
                )
                pool.open(wait=False)
                self._pools[read_only] = pool
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

    def connection(self, *, read_only: bool = False) -> PostgresConnection:
        """A connection over the pool, with no schema check (``connect`` checks)."""
        return PostgresConnection(self, self._pool(read_only))

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

    def connect(self, account_key: str | None, *, create: bool) -> PostgresConnection:
        self._open("open", account_key, create=create)
        return self.connection()

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
