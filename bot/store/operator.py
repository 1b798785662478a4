"""The operator's rows: the audit trail of operator actions, and the accounts paused.

Unlike ``Store`` (one account, one thread, one long-lived connection), these rows are
written by whichever daemon thread performs an operator action (the watchdog for a
``nija_ctl.py`` request, an HTTP worker for an API call) and read by the API. Actions
are rare, so each call opens its own short connection to the existing database (never
creating one: a vanished file is a ``StoreError``; on PostgreSQL, one from the pool) and
closes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bot.redact import Redactor
from bot.store.backend import Connection, Database, as_database
from bot.store.db import DEFAULT_BUSY_TIMEOUT_MS, guarded, rollback_quietly

__all__ = ["OperatorAction", "OperatorStore", "Pause"]


@dataclass(frozen=True, slots=True)
class OperatorAction:
    """One audited operator action: who (an actor id, never a token), what, when, outcome."""

    id: int
    account_key: str
    at: float  # wall-clock epoch seconds
    actor: str  # e.g. "http:token-1a2b3c4d" or "ctl:pid-4242"
    action: str
    outcome: str
    message: str


@dataclass(frozen=True, slots=True)
class Pause:
    """An account an operator paused: it opens no new position until resumed."""

    account_key: str
    paused_at: float
    paused_by: str


_ACTION_COLUMNS = "id, account_key, at, actor, action, outcome, message"


class OperatorStore:
    """The audit trail and the pauses in the state database ``target`` (a ``Database`` or a
    SQLite file path); any thread may call.

    Every failure raises ``StoreError``. ``redactor`` masks the secrets in the messages
    it stores (an error text may quote one).
    """

    def __init__(
        self,
        target: Database | str | Path,
        *,
        redactor: Redactor | None = None,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    ) -> None:
        self.database = as_database(target, busy_timeout_ms)
        self.redactor = redactor or Redactor()

    @contextmanager
    def _connection(self, operation: str, write: bool) -> Iterator[Connection]:
        with guarded(operation, None):
            conn = self.database.connect(None, create=False)
        try:
            with guarded(operation, None):
                if write:
                    conn.begin_write()
                try:
                    yield conn
                    if write:
                        conn.commit()
                except BaseException:
                    rollback_quietly(conn)
                    raise
        finally:
            conn.close()

    def record_action(
        self, at: float, actor: str, action: str, account_key: str, outcome: str, message: str
    ) -> None:
        """Add one action to the audit trail."""
        with self._connection("record_action", write=True) as conn:
            conn.execute(
                "INSERT INTO operator_actions (account_key, at, actor, action, outcome, message)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (account_key, at, actor, action, outcome, self.redactor.mask_values(message)),
            )

    def actions(self, account_key: str | None = None, limit: int = 20) -> list[OperatorAction]:
        """The latest ``limit`` actions (of one account, when given), newest first."""
        sql = f"SELECT {_ACTION_COLUMNS} FROM operator_actions"
        params: tuple[object, ...] = (limit,)
        if account_key is not None:
            sql += " WHERE account_key = ?"
            params = (account_key, limit)
        with self._connection("actions", write=False) as conn:
            rows = conn.execute(sql + " ORDER BY id DESC LIMIT ?", params).fetchall()
        return [OperatorAction(**dict(row)) for row in rows]

    def pause(self, account_key: str, at: float, by: str) -> Pause:
        """Mark the account paused (kept if it already is); the pause in force."""
        with self._connection("pause", write=True) as conn:
            conn.execute(
                "INSERT INTO account_pauses (account_key, paused_at, paused_by) VALUES (?, ?, ?)"
                " ON CONFLICT (account_key) DO NOTHING",
                (account_key, at, by),
            )
            row = conn.execute(
                "SELECT account_key, paused_at, paused_by FROM account_pauses"
                " WHERE account_key = ?",
                (account_key,),
            ).fetchone()
        return Pause(**dict(row))

    def resume(self, account_key: str) -> bool:
        """Lift the account's pause; False when it was not paused."""
        with self._connection("resume", write=True) as conn:
            cur = conn.execute("DELETE FROM account_pauses WHERE account_key = ?", (account_key,))
            return cur.rowcount == 1

    def pauses(self) -> dict[str, Pause]:
        """Every paused account, by key."""
        with self._connection("pauses", write=False) as conn:
            rows = conn.execute(
                "SELECT account_key, paused_at, paused_by FROM account_pauses"
            ).fetchall()
        return {row["account_key"]: Pause(**dict(row)) for row in rows}
