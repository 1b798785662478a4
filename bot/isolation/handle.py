"""One account's handle: the fast path to its gate and outcomes.

``AccountIsolationManager.handle(ref)`` returns the account's ``AccountHandle`` (the same
object every time). Its methods skip key building and dictionary lookups; the
manager's three-string methods find the handle and call these. Each call holds the
account's own lock only for the few microseconds a state update takes, never while a
guarded call runs, so a slow or failing account cannot hold up another account.

Every exception that escapes ``guard`` carries two tags: the key of the account it
came from (``ACCOUNT_TAG``) and the ``FailureType`` the guard computed for it, which
callers read with ``failure_type_of`` instead of classifying it again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, Literal

from bot.clock import Clock, IsoText
from bot.errors import LeaseLost, VenueDataError, describe
from bot.isolation.circuit import (
    AccountCircuit,
    AccountHealthStatus,
    CircuitBreakerConfig,
    Transition,
)
from bot.isolation.failures import FailureType, classify, retry_after_seconds
from bot.isolation.latency import Latency
from bot.isolation.policy import weigh
from bot.model import AccountRef
from bot.redact import Redactor

# Set on every exception that escapes ``guard``: which account it came from...
ACCOUNT_TAG = "_nija_account_key"
# ...and the FailureType the guard recorded for it.
FAILURE_TAG = "_nija_failure_type"

Listener = Callable[[str, Transition], None]

_HEALTHY = AccountHealthStatus.HEALTHY
_ALLOWED = (True, "healthy")
_new_guard = object.__new__


def failure_type_of(error: BaseException) -> FailureType | None:
    """The FailureType ``guard`` recorded for ``error``; None when no guard saw it."""
    return getattr(error, FAILURE_TAG, None)


def classify_failure(error: BaseException, operation: str | None = None) -> FailureType:
    """The FailureType of ``error``: the one ``guard`` recorded, else classified now."""
    return failure_type_of(error) or classify(error, operation)


def _tag(error: BaseException, name: str, value: object) -> None:
    """Set a tag on ``error`` (some builtin exceptions refuse attributes: then none is set)."""
    try:
        setattr(error, name, value)
    except (AttributeError, TypeError):
        return


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


class AccountHandle:
    """One account's circuit, lock and clock: gate, outcomes and ``guard`` without lookups."""

    __slots__ = (
        "_listeners",
        "_monotonic",
        "_wall",
        "account_id",
        "account_type",
        "broker_type",
        "circuit",
        "config",
        "key",
        "lock",
        "redactor",
        "times_text",
    )

    def __init__(
        self,
        account: AccountRef,
        config: CircuitBreakerConfig,
        clock: Clock,
        listeners: list[Listener],
        redactor: Redactor,
        call_times: Latency | None = None,
    ) -> None:
        self.account_type = account.account_type
        self.account_id = account.account_id
        self.broker_type = account.broker
        self.key = account.key
        self.config = config
        self.lock = threading.Lock()
        self.circuit = AccountCircuit(config, account.key)
        if call_times is not None:  # its venue's: counted into the venue's total too
            self.circuit.call_times = call_times
        self._monotonic = clock.monotonic
        self._wall = clock.wall
        self._listeners = listeners  # the manager's list: listeners added later are heard
        self.redactor = redactor  # the manager's: masks secrets before an error text is cut
        # Its last failure's and success's times as text (the statuses, read every second).
        self.times_text = (IsoText(), IsoText())

    def _notify(self, transition: Transition) -> None:
        for listener in self._listeners:
            listener(self.key, transition)

    # -- the gate ------------------------------------------------------------------
    def allow(self) -> tuple[bool, str]:
        """May this account call its broker now? ``(allowed, reason a person can read)``."""
        with self.lock:
            c = self.circuit
            if c.status is _HEALTHY and not c.hold_until:
                return _ALLOWED
            allowed, reason, moved = c.allow(self._monotonic())
        if moved is not None:
            self._notify(moved)
        return allowed, reason

    def refusal(self, reason: str) -> AccountBlockedError:
        """The error for a refused gate: the status now and how long the refusal will last."""
        with self.lock:
            status = self.circuit.status
            retry = self.circuit.blocked_for(self._monotonic())
        return AccountBlockedError(self.key, status, reason, retry)

    # -- outcomes ------------------------------------------------------------------
    def record_success(self, operation_time_ms: float = 0.0, operation: str | None = None) -> None:
        """Record a successful operation (it answers that operation's failures). Never raises.

        With no ``operation`` the success answers every failure: the trader records one
        such success for each cycle that went through without any failure.
        """
        with self.lock:
            moved = self.circuit.success(self._wall(), operation_time_ms, operation)
        if moved is not None:
            self._notify(moved)

    def record_failure(
        self,
        error: BaseException,
        operation: str | None = None,
        failure_type: FailureType | None = None,
    ) -> FailureType:
        """Record a failed operation; returns the type recorded. Never raises.

        The type is ``failure_type`` when given, else the one a guard attached to
        ``error``, else classified from ``error`` and ``operation``. An exception tagged
        by ``guard`` for another account counts as a cross-account error (and is still
        recorded here). ``bot.isolation.policy`` decides whether it counts.
        """
        if failure_type is None:
            failure_type = classify_failure(error, operation)
        weight = weigh(self.config, failure_type, error)
        origin = getattr(error, ACCOUNT_TAG, None)
        text = describe(error, limit=200, redactor=self.redactor)
        retry_after = (
            retry_after_seconds(error) if failure_type is FailureType.RATE_LIMIT_ERROR else None
        )
        with self.lock:
            c = self.circuit
            if origin is not None and origin != self.key:
                c.cross_account_errors += 1
            moved = c.failure(
                self._monotonic(), self._wall(), failure_type, weight, text, operation, retry_after
            )
        if moved is not None:
            self._notify(moved)
        return failure_type

    def forgive_outage(self, why: str) -> None:
        """Forgive the unanswered failures a venue outage explains: the account's venue has
        been declared down (``AccountCircuit.forgive_outage``). Never raises."""
        with self.lock:
            moved = self.circuit.forgive_outage(why)
        if moved is not None:
            self._notify(moved)

    def guard(self, operation: str) -> Guard:
        """Run a block as one operation of this account, or raise AccountBlockedError.

        The block is timed (monotonic clock); its success is recorded, or its exception
        is tagged with this account and its FailureType (classified once, with
        ``operation`` as context), recorded and re-raised.
        """
        guard = _new_guard(Guard)  # no __init__ frame: this runs for every broker call
        guard._handle = self
        guard._operation = operation
        return guard

    def _guarded_failure(self, error: Exception, operation: str) -> None:
        if getattr(error, ACCOUNT_TAG, None) is None:
            _tag(error, ACCOUNT_TAG, self.key)
        failure_type = failure_type_of(error)
        if failure_type is None:
            failure_type = classify(error, operation)
            _tag(error, FAILURE_TAG, failure_type)
        self.record_failure(error, operation, failure_type)


class Guard:
    """The context manager ``AccountHandle.guard`` returns (a class: no generator per call)."""

    __slots__ = ("_handle", "_operation", "_started")
    _handle: AccountHandle
    _operation: str
    _started: float

    def __enter__(self) -> None:
        handle = self._handle
        allowed, reason = handle.allow()
        if not allowed:
            raise handle.refusal(reason)
        self._started = handle._monotonic()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> Literal[False]:
        handle = self._handle
        if error is None:  # record_success, inlined: this is every broker call's path
            elapsed_ms = (handle._monotonic() - self._started) * 1000.0
            with handle.lock:
                moved = handle.circuit.success(handle._wall(), elapsed_ms, self._operation)
            if moved is not None:
                handle._notify(moved)
        elif isinstance(error, Exception) and not isinstance(error, LeaseLost | VenueDataError):
            # Not KeyboardInterrupt / SystemExit, not a lease lost at the order's last
            # look (nothing was sent, and it is no failure of the account), and not the
            # venue's shared data failing inside the call (the price that values a
            # holding): the venue's, told to the venue's health where it was fetched.
            handle._guarded_failure(error, self._operation)
        return False


class Unregistered:
    """What ``guard`` returns for an unknown account: entering it raises AccountBlockedError."""

    __slots__ = ("_key",)

    def __init__(self, key: str) -> None:
        self._key = key

    def __enter__(self) -> None:
        raise AccountBlockedError(self._key, None, f"account {self._key} is not registered")

    def __exit__(self, *exc: Any) -> Literal[False]:
        return False
