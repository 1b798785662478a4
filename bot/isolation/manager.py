"""Per-account isolation: every broker call of every account passes this gate.

Each account has its own circuit (``bot.isolation.circuit``) and its own lock, held only for
the few microseconds a state update takes and never while a guarded call runs, so
a slow or failing account cannot hold up another account's gate or the report.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from bot.errors import describe
from bot.isolation.circuit import (
    CLOSED,
    OPEN,
    AccountCircuit,
    AccountHealthStatus,
    CircuitBreakerConfig,
    Transition,
)
from bot.isolation.failures import FailureType, classify, retry_after_seconds
from bot.redact import Redactor

__all__ = [
    "AccountBlockedError",
    "AccountHealthStatus",
    "AccountIsolationManager",
    "CircuitBreakerConfig",
    "FailureType",
    "get_isolation_manager",
]

# Set on every exception that escapes ``guard``: which account it came from.
ACCOUNT_TAG = "_nija_account_key"

Listener = Callable[[str, Transition], None]


def account_key(account_type: str, account_id: str, broker_type: str) -> str:
    """``"{account_type}/{account_id}/{BROKER}"``; type and id are case-insensitive."""
    return f"{account_type.lower()}/{account_id.lower()}/{broker_type.upper()}"


def _iso(wall: float | None) -> str | None:
    return None if wall is None else datetime.fromtimestamp(wall, UTC).isoformat()


class AccountBlockedError(Exception):
    """The gate refused an operation; nothing was sent to the broker."""

    def __init__(
        self,
        key: str,
        status: AccountHealthStatus | None,
        reason: str,
        retry_in_seconds: float | None = None,
    ) -> None:
        super().__init__(f"{key}: {reason}")
        self.account_key = key
        self.status = status
        self.reason = reason
        self.retry_in_seconds = retry_in_seconds


class _Account:
    __slots__ = ("account_id", "account_type", "broker_type", "circuit", "key", "lock")

    def __init__(self, account_type: str, account_id: str, broker_type: str, config) -> None:
        self.account_type = account_type.lower()
        self.account_id = account_id.lower()
        self.broker_type = broker_type.upper()
        self.key = account_key(account_type, account_id, broker_type)
        self.lock = threading.Lock()
        self.circuit = AccountCircuit(config)


class AccountIsolationManager:
    """Circuit breakers, health states and failure metrics, one independent set per account."""

    def __init__(
        self,
        config: CircuitBreakerConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        redactor: Redactor | None = None,
    ) -> None:
        self.config = config or CircuitBreakerConfig()
        self._clock = clock
        # Masks the secrets in every error text recorded here (last_error, and the reasons
        # AccountBlockedError quotes it in); callers that show an error use it too.
        self.redactor = redactor or Redactor()
        self._accounts: dict[str, _Account] = {}
        self._registry_lock = threading.Lock()  # guards insertion only
        self._listeners: list[Listener] = []

    # -- registration ---------------------------------------------------------
    def register_account(self, account_type: str, account_id: str, broker_type: str) -> bool:
        """Register an account; True when new. Never resets a known account."""
        key = account_key(account_type, account_id, broker_type)
        if key in self._accounts:
            return False
        with self._registry_lock:
            if key in self._accounts:
                return False
            self._accounts[key] = _Account(account_type, account_id, broker_type, self.config)
            return True

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(account_key, transition)`` on every health change (outside any lock)."""
        self._listeners.append(listener)

    def _get(self, account_type: str, account_id: str, broker_type: str) -> _Account | None:
        return self._accounts.get(account_key(account_type, account_id, broker_type))

    def _notify(self, key: str, transition: Transition | None) -> None:
        if transition is None:
            return
        for listener in self._listeners:
            listener(key, transition)

    # -- the gate and outcomes -------------------------------------------------
    def can_execute_operation(
        self, account_type: str, account_id: str, broker_type: str
    ) -> tuple[bool, str]:
        """May this account call its broker now? ``(allowed, reason a person can read)``."""
        acct = self._get(account_type, account_id, broker_type)
        if acct is None:
            key = account_key(account_type, account_id, broker_type)
            return False, f"account {key} is not registered"
        with acct.lock:
            allowed, reason, moved = acct.circuit.allow(self._clock())
        self._notify(acct.key, moved)
        return allowed, reason

    def record_success(
        self,
        account_type: str,
        account_id: str,
        broker_type: str,
        operation_time_ms: float = 0.0,
    ) -> None:
        """Record a successful operation. Never raises."""
        acct = self._ensure(account_type, account_id, broker_type)
        with acct.lock:
            moved = acct.circuit.success(self._clock(), operation_time_ms)
        self._notify(acct.key, moved)

    def record_failure(
        self,
        account_type: str,
        account_id: str,
        broker_type: str,
        error: BaseException,
        failure_type: FailureType | None = None,
        operation: str | None = None,
    ) -> FailureType:
        """Record a failed operation (classified from ``error`` when no type is given).

        Never raises. Returns the type recorded. An exception tagged by ``guard`` for
        another account counts as a cross-account error (and is still recorded here).
        """
        acct = self._ensure(account_type, account_id, broker_type)
        if failure_type is None:
            failure_type = classify(error, operation)
        origin = getattr(error, ACCOUNT_TAG, None)
        text = describe(error, limit=200, redactor=self.redactor)
        retry_after = (
            retry_after_seconds(error) if failure_type is FailureType.RATE_LIMIT_ERROR else None
        )
        with acct.lock:
            if origin is not None and origin != acct.key:
                acct.circuit.cross_account_errors += 1
            moved = acct.circuit.failure(self._clock(), failure_type, text, operation, retry_after)
        self._notify(acct.key, moved)
        return failure_type

    def _ensure(self, account_type: str, account_id: str, broker_type: str) -> _Account:
        acct = self._get(account_type, account_id, broker_type)
        if acct is None:
            self.register_account(account_type, account_id, broker_type)
            acct = self._get(account_type, account_id, broker_type)
        return acct

    @contextmanager
    def guard(
        self, account_type: str, account_id: str, broker_type: str, operation: str
    ) -> Iterator[None]:
        """Run a block as one operation of this account, or raise AccountBlockedError.

        The block is timed; its success is recorded, or its exception is tagged with
        this account, classified (with ``operation`` as context), recorded and re-raised.
        """
        allowed, reason = self.can_execute_operation(account_type, account_id, broker_type)
        if not allowed:
            acct = self._get(account_type, account_id, broker_type)
            key = account_key(account_type, account_id, broker_type)
            status = retry = None
            if acct is not None:
                with acct.lock:
                    status = acct.circuit.status
                    retry = acct.circuit.blocked_for(self._clock())
            raise AccountBlockedError(key, status, reason, retry)
        started = time.perf_counter()
        try:
            yield
        except Exception as exc:
            key = account_key(account_type, account_id, broker_type)
            if getattr(exc, ACCOUNT_TAG, None) is None:
                _tag(exc, key)
            self.record_failure(account_type, account_id, broker_type, exc, operation=operation)
            raise
        self.record_success(
            account_type, account_id, broker_type, (time.perf_counter() - started) * 1000.0
        )

    # -- reading ---------------------------------------------------------------
    def get_account_status(
        self, account_type: str, account_id: str, broker_type: str
    ) -> tuple[AccountHealthStatus, dict[str, Any]]:
        """``(status, metrics)``; KeyError when the account is unknown."""
        acct = self._get(account_type, account_id, broker_type)
        if acct is None:
            raise KeyError(account_key(account_type, account_id, broker_type))
        metrics = self._metrics(acct)
        return AccountHealthStatus(metrics["status"]), metrics

    def get_all_account_statuses(self) -> dict[str, dict[str, Any]]:
        """Metrics of every account, by account key."""
        return {acct.key: self._metrics(acct) for acct in list(self._accounts.values())}

    def _metrics(self, acct: _Account) -> dict[str, Any]:
        now = self._clock()
        with acct.lock:
            c = acct.circuit
            snapshot = {
                "account_type": acct.account_type,
                "account_id": acct.account_id,
                "broker_type": acct.broker_type,
                "status": c.status.value,
                "total_failures": c.total_failures,
                "total_successes": c.total_successes,
                "consecutive_failures": c.consecutive_failures,
                "consecutive_successes": c.consecutive_successes,
                "circuit_open": c.state != CLOSED,
                "circuit_state": c.state,
                "quarantine_count": c.quarantine_count,
                "failure_breakdown": dict(c.failure_breakdown),
                "last_failure_time": _iso(c.last_failure_wall),
                "last_success_time": _iso(c.last_success_wall),
                "last_error": c.last_error,
                "last_operation": c.last_operation,
                "average_operation_time_ms": (
                    c.op_time_total_ms / c.op_count if c.op_count else 0.0
                ),
                "retry_in_seconds": c.retry_in(now),
                "rate_limited_for_seconds": max(0.0, c.hold_until - now)
                if c.state == CLOSED
                else 0.0,
                "cross_account_errors": c.cross_account_errors,
            }
        return snapshot

    def get_isolation_report(self) -> dict[str, Any]:
        """Counts per health state, failure totals, and whether isolation held."""
        statuses = self.get_all_account_statuses().values()
        counts = {s: 0 for s in AccountHealthStatus}
        for m in statuses:
            counts[AccountHealthStatus(m["status"])] += 1
        cross = sum(m["cross_account_errors"] for m in statuses)
        return {
            "total_accounts": len(statuses),
            "healthy_accounts": counts[AccountHealthStatus.HEALTHY],
            "degraded_accounts": counts[AccountHealthStatus.DEGRADED],
            "failing_accounts": counts[AccountHealthStatus.FAILING],
            "quarantined_accounts": counts[AccountHealthStatus.QUARANTINED],
            "recovering_accounts": counts[AccountHealthStatus.RECOVERING],
            "open_circuits": sum(1 for m in statuses if m["circuit_state"] == OPEN),
            "total_failures_across_all_accounts": sum(m["total_failures"] for m in statuses),
            "total_quarantines": sum(m["quarantine_count"] for m in statuses),
            "cross_account_errors_detected": cross,
            "isolation_guarantee": "VIOLATED" if cross else "ACTIVE",
            "timestamp": datetime.now(UTC).isoformat(),
        }

    def reset_account(self, account_type: str, account_id: str, broker_type: str) -> bool:
        """Back to HEALTHY with the circuit closed; lifetime counters kept. False when unknown."""
        acct = self._get(account_type, account_id, broker_type)
        if acct is None:
            return False
        with acct.lock:
            moved = acct.circuit.reset()
        self._notify(acct.key, moved)
        return True


def _tag(exc: BaseException, key: str) -> None:
    """Mark ``exc`` as raised for account ``key`` (some builtin exceptions refuse attributes)."""
    try:
        setattr(exc, ACCOUNT_TAG, key)
    except (AttributeError, TypeError):
        return


_manager: AccountIsolationManager | None = None
_manager_lock = threading.Lock()


def get_isolation_manager(
    config: CircuitBreakerConfig | None = None, redactor: Redactor | None = None
) -> AccountIsolationManager:
    """The process-wide manager, created on first use (``config`` and ``redactor`` apply only then)."""
    global _manager
    if _manager is None:
        with _manager_lock:
            if _manager is None:
                _manager = AccountIsolationManager(config, redactor=redactor)
    if config is not None and config != _manager.config:
        raise ValueError("the process-wide isolation manager already exists with another config")
    if redactor is not None and redactor != _manager.redactor:
        raise ValueError("the process-wide isolation manager already exists with other secrets")
    return _manager
