"""Per-account isolation: every broker call of every account passes this gate.

Each account has its own circuit (``bot.isolation.circuit``), its own lock and its own
handle (``bot.isolation.handle``): the lock is held only for the few microseconds a
state update takes and never while a guarded call runs, so a slow or failing account
cannot hold up another account's gate or the report. The three-string methods are the
seed's public API; ``handle(ref)`` is the fast path the engine uses.
"""

from __future__ import annotations

import threading
from typing import Any, NamedTuple

from bot.clock import SYSTEM_CLOCK, Clock
from bot.isolation.circuit import (
    AccountHealthStatus,
    CircuitBreakerConfig,
    CircuitState,
)
from bot.isolation.failures import FailureType
from bot.isolation.handle import (
    ACCOUNT_TAG,
    AccountBlockedError,
    AccountHandle,
    Guard,
    Listener,
    Unregistered,
    classify_failure,
    failure_type_of,
)
from bot.isolation.latency import CALL_BUCKETS, Latency, VenueLatencies
from bot.model import AccountRef
from bot.redact import Redactor

__all__ = [
    "ACCOUNT_TAG",
    "AccountBlockedError",
    "AccountCounts",
    "AccountHandle",
    "AccountHealthStatus",
    "AccountIsolationManager",
    "CircuitBreakerConfig",
    "CircuitState",
    "FailureType",
    "classify_failure",
    "failure_type_of",
    "get_isolation_manager",
]


def account_key(account_type: str, account_id: str, broker_type: str) -> str:
    """``"{account_type}/{account_id}/{BROKER}"``; type and id are case-insensitive."""
    return f"{account_type.lower()}/{account_id.lower()}/{broker_type.upper()}"


def _require_clock(clock: object) -> None:
    # A plain callable was the seed's clock; it is no longer one, and should fail here.
    missing = [m for m in ("wall", "monotonic", "utc_now") if not callable(getattr(clock, m, None))]
    if missing:
        raise TypeError(
            f"clock must be a bot.clock.Clock (wall, monotonic, utc_now); "
            f"{clock!r} lacks {', '.join(missing)}"
        )


class AccountCounts(NamedTuple):
    """What the metrics read of one account at every scrape: its health and lifetime counts
    (``get_all_account_statuses`` has them too, among copies and timestamps it formats)."""

    key: str
    status: AccountHealthStatus
    circuit: CircuitState  # the status's
    successes: int
    failures: int
    not_permitted: int
    call_times: Latency  # its successful broker calls' durations, live


class AccountIsolationManager:
    """Circuit breakers, health states and failure metrics, one independent set per account."""

    def __init__(
        self,
        config: CircuitBreakerConfig | None = None,
        clock: Clock = SYSTEM_CLOCK,
        redactor: Redactor | None = None,
    ) -> None:
        _require_clock(clock)
        self.config = config or CircuitBreakerConfig()
        self._clock = clock
        # Masks the secrets in every error text recorded here (last_error, and the reasons
        # AccountBlockedError quotes it in); callers that show an error use it too.
        self.redactor = redactor or Redactor()
        self._accounts: dict[str, AccountHandle] = {}
        # The three strings as a caller spelled them → the handle (filled on first use).
        self._spellings: dict[tuple[str, str, str], AccountHandle] = {}
        self._registry_lock = threading.Lock()  # guards insertion only
        self._listeners: list[Listener] = []
        # Each venue's accounts' successful call durations, added up as they are observed.
        self._call_times = VenueLatencies(CALL_BUCKETS)

    # -- registration ---------------------------------------------------------
    def handle(self, account: AccountRef) -> AccountHandle:
        """The account's handle, registering the account on first use: the fast path."""
        found = self._accounts.get(account.key)
        return found if found is not None else self._register(account)[0]

    def register_account(self, account_type: str, account_id: str, broker_type: str) -> bool:
        """Register an account; True when new. Never resets a known account."""
        ref = AccountRef(account_type, account_id, broker_type)
        return ref.key not in self._accounts and self._register(ref)[1]

    def _register(self, account: AccountRef) -> tuple[AccountHandle, bool]:
        with self._registry_lock:
            found = self._accounts.get(account.key)
            if found is not None:
                return found, False
            found = AccountHandle(
                account,
                self.config,
                self._clock,
                self._listeners,
                self.redactor,
                self._call_times.account(account.broker),
            )
            self._accounts[account.key] = found
            return found, True

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(account_key, transition)`` on every health change (outside any lock)."""
        self._listeners.append(listener)

    def _find(self, account_type: str, account_id: str, broker_type: str) -> AccountHandle | None:
        spelled = (account_type, account_id, broker_type)
        found = self._spellings.get(spelled)
        if found is None:
            found = self._accounts.get(account_key(account_type, account_id, broker_type))
            if found is not None:
                with self._registry_lock:
                    self._spellings[spelled] = found
        return found

    def _ensure(self, account_type: str, account_id: str, broker_type: str) -> AccountHandle:
        found = self._find(account_type, account_id, broker_type)
        if found is None:
            found = self.handle(AccountRef(account_type, account_id, broker_type))
        return found

    # -- the gate and outcomes -------------------------------------------------
    def can_execute_operation(
        self, account_type: str, account_id: str, broker_type: str
    ) -> tuple[bool, str]:
        """May this account call its broker now? ``(allowed, reason a person can read)``."""
        found = self._find(account_type, account_id, broker_type)
        if found is None:
            key = account_key(account_type, account_id, broker_type)
            return False, f"account {key} is not registered"
        return found.allow()

    def record_success(
        self,
        account_type: str,
        account_id: str,
        broker_type: str,
        operation_time_ms: float = 0.0,
    ) -> None:
        """Record a successful operation (registering the account if needed). Never raises."""
        self._ensure(account_type, account_id, broker_type).record_success(operation_time_ms)

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
        found = self._ensure(account_type, account_id, broker_type)
        return found.record_failure(error, operation, failure_type)

    def guard(
        self, account_type: str, account_id: str, broker_type: str, operation: str
    ) -> Guard | Unregistered:
        """Run a block as one operation of this account, or raise AccountBlockedError.

        The block is timed; its success is recorded, or its exception is tagged with
        this account and its FailureType (``failure_type_of``), recorded and re-raised.
        """
        found = self._find(account_type, account_id, broker_type)
        if found is None:
            return Unregistered(account_key(account_type, account_id, broker_type))
        return found.guard(operation)

    # -- reading ---------------------------------------------------------------
    def get_account_status(
        self, account_type: str, account_id: str, broker_type: str
    ) -> tuple[AccountHealthStatus, dict[str, Any]]:
        """``(status, metrics)``; KeyError when the account is unknown."""
        found = self._find(account_type, account_id, broker_type)
        if found is None:
            raise KeyError(account_key(account_type, account_id, broker_type))
        metrics = self._metrics(found)
        return AccountHealthStatus(metrics["status"]), metrics

    def get_all_account_statuses(self) -> dict[str, dict[str, Any]]:
        """Metrics of every account, by account key."""
        return {acct.key: self._metrics(acct) for acct in list(self._accounts.values())}

    def _metrics(self, acct: AccountHandle) -> dict[str, Any]:
        now = self._clock.monotonic()
        with acct.lock:
            c = acct.circuit
            state = c.state
            snapshot = {
                "account_type": acct.account_type,
                "account_id": acct.account_id,
                "broker_type": acct.broker_type,
                "status": c.status.value,
                "total_failures": c.total_failures,
                "total_successes": c.total_successes,
                "consecutive_failures": c.consecutive_failures,
                "consecutive_successes": c.consecutive_successes,
                "circuit_open": state is not CircuitState.CLOSED,
                "circuit_state": state.value,
                "quarantine_count": c.quarantine_count,
                "failure_breakdown": dict(c.failure_breakdown),
                "last_failure_time": acct.times_text[0](c.last_failure_wall),
                "last_success_time": acct.times_text[1](c.last_success_wall),
                "last_error": c.last_error,
                "last_operation": c.last_operation,
                "average_operation_time_ms": (
                    c.op_time_total_ms / c.op_count if c.op_count else 0.0
                ),
                "retry_in_seconds": c.retry_in(now),
                "rate_limited_for_seconds": c.held_for(now),
                "cross_account_errors": c.cross_account_errors,
                "not_permitted_calls": c.not_permitted,
            }
        return snapshot

    def account_counts(self) -> list[AccountCounts]:
        """Every account's health and counts, each read under its own lock (for metrics)."""
        rows = []
        for acct in list(self._accounts.values()):
            with acct.lock:
                c = acct.circuit
                status = c.status
                counts = (c.total_successes, c.total_failures, c.not_permitted)
            rows.append(AccountCounts(acct.key, status, status.circuit, *counts, c.call_times))
        return rows

    def venue_call_times(self) -> dict[str, Latency]:
        """Each venue's successful call durations: its accounts' together, live (for metrics)."""
        return self._call_times.totals()

    def get_isolation_report(self, read: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        """Counts per health state, failure totals, and whether isolation held: of ``read``
        when given (what ``get_all_account_statuses`` returned, for a caller that has it),
        else of every account read now."""
        statuses = (self.get_all_account_statuses() if read is None else read).values()
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
            "open_circuits": sum(
                1 for m in statuses if m["circuit_state"] == CircuitState.OPEN.value
            ),
            "total_failures_across_all_accounts": sum(m["total_failures"] for m in statuses),
            "total_quarantines": sum(m["quarantine_count"] for m in statuses),
            "cross_account_errors_detected": cross,
            "isolation_guarantee": "VIOLATED" if cross else "ACTIVE",
            "timestamp": self._clock.utc_now().isoformat(),
        }

    def reset_account(self, account_type: str, account_id: str, broker_type: str) -> bool:
        """Back to HEALTHY with the circuit closed; lifetime counters kept. False when unknown."""
        found = self._find(account_type, account_id, broker_type)
        if found is None:
            return False
        with found.lock:
            moved = found.circuit.reset()
        if moved is not None:
            found._notify(moved)
        return True


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
