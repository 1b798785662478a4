"""PostgreSQL connections as the store uses them: ``PostgresConnection`` (``bot.store.pg``).

It takes a pooled connection for each statement outside a transaction, and holds one from
``begin_write`` to ``commit``/``rollback``. A lost connection (the server restarted, the
network dropped, the pool could not connect in time) is a failure of the store for the
account that hit it, never an empty answer:

* a read (``SELECT``) outside a transaction, and the ``BEGIN`` of a write, are tried again
  with backoff (``Retry``) on a fresh connection: nothing was written yet;
* a statement inside a transaction is not: the transaction is gone with its connection,
  and the ``StoreError`` fails that account's cycle (its worker tries again later);
* a connection lost during ``COMMIT`` is reported as such: the write may or may not have
  landed, and is never blindly repeated;
* a pool whose every connection stayed in use for the whole wait (``connect_timeout``:
  other accounts' transactions, a slow server, a pool too small) is not tried again: the
  account has waited its bound, and its ``StoreError`` (``pool_exhausted``, naming the pool)
  fails that account's cycle, which its worker runs again at the next one.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol, TypeVar

import psycopg
from psycopg.rows import DictRow
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from bot.store.db import BackendError

__all__ = ["LendingPool", "PgConnection", "PostgresConnection", "Retry"]

_T = TypeVar("_T")
PgConnection = psycopg.Connection[DictRow]

# Server states that mean the session is gone: 08xxx connection exceptions, and the
# server shutting down or restarting (admin_shutdown, crash_shutdown, cannot_connect_now).
_LOST_STATES = frozenset({"57P01", "57P02", "57P03"})


class _Owner(Protocol):
    """What a connection asks of its database (``bot.store.pg.PostgresDatabase``)."""

    retry: Retry
    sleep: Callable[[float], None]

    def failure(
        self, exc: BaseException, *, lost: bool, tries: int = 1, during_commit: bool = False
    ) -> BackendError: ...

    def exhausted(self, pool: LendingPool) -> BackendError: ...


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


class LendingPool(ConnectionPool[PgConnection]):
    """psycopg's pool, counting the connections lent out: a wait that ran out with all of
    them lent is a busy pool, told apart from a server the pool cannot connect to (whose
    connections still being attempted psycopg counts in its ``pool_size``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lent_lock = threading.Lock()
        self.lent = 0  # connections given out by getconn and not yet put back

    def getconn(self, timeout: float | None = None) -> PgConnection:
        conn = super().getconn(timeout)
        with self._lent_lock:
            self.lent += 1
        return conn

    def putconn(self, conn: PgConnection) -> None:
        with self._lent_lock:
            self.lent -= 1
        super().putconn(conn)

    def exhausted(self) -> bool:
        """Every connection the pool may open is lent out now."""
        return self.lent >= self.max_size


def _is_lost(exc: BaseException, conn: PgConnection | None) -> bool:
    """True when ``exc`` means the session is gone (not a refusal of the statement)."""
    if isinstance(exc, PoolClosed):
        return False  # the database was closed: nothing to wait for
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

    def __init__(self, database: _Owner, pool: LendingPool) -> None:
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
                if conn is None and isinstance(exc, PoolTimeout) and self._pool.exhausted():
                    raise self._db.exhausted(self._pool) from exc  # waited its bound: no retry
                lost = _is_lost(exc, conn)
                if conn is not None:
                    self._pool.putconn(conn)  # the pool drops it if it is broken
                if not (lost and delays):
                    raise self._db.failure(exc, lost=lost, tries=tries) from exc
                self._db.sleep(delays.pop(0))
                with contextlib.suppress(psycopg.Error):
                    self._pool.check()  # the other idle connections may be dead too
                continue
            except BaseException:
                if conn is not None:
                    self._pool.putconn(conn)  # never leaked, whatever the failure
                raise
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
