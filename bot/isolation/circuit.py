"""One account's circuit breaker: health states, waits that grow, half-open trials.

``AccountCircuit`` holds no lock and reads no clock of its own: the manager passes
``now`` (monotonic seconds) and ``wall`` (epoch seconds) and serialises calls with the
account's lock. That keeps the state machine a plain object that tests can drive step by step.

The health status is the one stored state; the circuit's position (closed, open,
half-open) is derived from it (``AccountHealthStatus.circuit``).

Which failures count is decided by ``bot.isolation.policy``; how a counted failure is
cleared is decided here: **a success answers the failures of its own operation**. A
working balance call says nothing about the strategy, so a strategy that raises on
every cycle keeps its failures unanswered until they open the circuit, however many
broker calls succeed in between. A success that names no operation (a whole clean
cycle of the trader, or a caller of the three-string API) answers every failure, and
a failure that names no operation is answered by any success.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from bot.isolation.failures import FailureType
from bot.isolation.latency import CALL_BUCKETS, Latency
from bot.isolation.policy import Weight


class CircuitState(Enum):
    """The breaker's position; derived from the health status, never stored beside it."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"

    # A member is equal only to itself, so its identity is its hash: C code, where Enum's
    # own hashes the name in Python at every dict lookup (each call, cycle and scrape).
    __hash__ = object.__hash__


class AccountHealthStatus(Enum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    FAILING = "failing"
    QUARANTINED = "quarantined"
    RECOVERING = "recovering"

    __hash__ = object.__hash__  # as CircuitState's

    @property
    def circuit(self) -> CircuitState:
        """Closed while operations flow, open while they are refused, half-open while on trial."""
        return _CIRCUIT_OF[self]


HEALTHY = AccountHealthStatus.HEALTHY
DEGRADED = AccountHealthStatus.DEGRADED
FAILING = AccountHealthStatus.FAILING
QUARANTINED = AccountHealthStatus.QUARANTINED
RECOVERING = AccountHealthStatus.RECOVERING

_CIRCUIT_OF = {
    HEALTHY: CircuitState.CLOSED,
    DEGRADED: CircuitState.CLOSED,
    QUARANTINED: CircuitState.OPEN,
    FAILING: CircuitState.OPEN,
    RECOVERING: CircuitState.HALF_OPEN,
}
_OPEN = frozenset({QUARANTINED, FAILING})


@dataclass(frozen=True)
class CircuitBreakerConfig:
    """Circuit breaker settings shared by every account of a manager.

    ``open_immediately_on`` and ``refusals`` are the two sets of the failure policy
    (``bot.isolation.policy.weigh``): types that open the circuit at once, and types
    that, when the error's own type proves them, are the venue's final "no" to one
    request and never count toward quarantine.
    """

    failure_threshold: int = 5
    success_threshold: int = 3
    timeout_seconds: float = 300.0
    half_open_max_calls: int = 1
    backoff_multiplier: float = 2.0
    max_timeout_seconds: float = 3600.0
    open_immediately_on: frozenset[FailureType] = frozenset({FailureType.AUTHENTICATION_ERROR})
    failing_timeout_seconds: float = 3600.0
    refusals: frozenset[FailureType] = frozenset(
        {FailureType.BALANCE_ERROR, FailureType.EXECUTION_ERROR}
    )

    def __post_init__(self) -> None:
        for name in ("failure_threshold", "success_threshold", "half_open_max_calls"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        if not self.timeout_seconds > 0:
            raise ValueError(f"timeout_seconds must be positive, got {self.timeout_seconds!r}")
        if self.failing_timeout_seconds < 0:
            raise ValueError(
                f"failing_timeout_seconds must not be negative, got {self.failing_timeout_seconds!r}"
            )
        if self.backoff_multiplier < 1:
            raise ValueError(
                f"backoff_multiplier must be at least 1, got {self.backoff_multiplier!r}"
            )
        if self.max_timeout_seconds < self.timeout_seconds:
            raise ValueError(
                "max_timeout_seconds must be at least timeout_seconds, "
                f"got {self.max_timeout_seconds!r} < {self.timeout_seconds!r}"
            )
        object.__setattr__(self, "open_immediately_on", frozenset(self.open_immediately_on))
        object.__setattr__(self, "refusals", frozenset(self.refusals))


@dataclass(slots=True)
class Transition:
    """A change of health status, reported to the manager's listeners."""

    old: AccountHealthStatus
    new: AccountHealthStatus
    reason: str


@dataclass(slots=True)
class AccountCircuit:
    """The state machine of one account. Not thread-safe on its own; see module doc."""

    config: CircuitBreakerConfig
    account_key: str = "ACCOUNT"  # for the operator's command in the FAILING message
    status: AccountHealthStatus = HEALTHY
    consecutive_successes: int = 0
    total_failures: int = 0
    total_successes: int = 0
    quarantine_count: int = 0
    failure_breakdown: dict[str, int] = field(default_factory=dict)
    # Counted failures not answered yet, by operation (None: no operation named).
    unanswered: dict[str | None, int] = field(default_factory=dict)
    # Of those, the ones a venue outage explains (Weight.OUTAGE), by operation: forgiven
    # when the venue layer declares the account's venue down (``forgive_outage``).
    outage_unanswered: dict[str | None, int] = field(default_factory=dict)
    last_failure_wall: float | None = None
    last_success_wall: float | None = None
    last_error: str | None = None
    last_operation: str | None = None
    op_time_total_ms: float = 0.0
    op_count: int = 0
    opened_at: float = 0.0
    wait_seconds: float = 0.0
    reopenings: int = 0  # re-openings from half-open since the last full recovery
    trials: list[float] = field(default_factory=list)  # start times of trials in flight (few)
    hold_until: float = 0.0  # a venue's Retry-After, honoured while closed; 0: none
    cross_account_errors: int = 0
    # For the operator's metrics: operations the gate refused, and successful call durations.
    not_permitted: int = 0
    call_times: Latency = field(default_factory=lambda: Latency(CALL_BUCKETS))

    @property
    def state(self) -> CircuitState:
        return self.status.circuit

    @property
    def consecutive_failures(self) -> int:
        """Counted failures that no success of their operation has answered yet."""
        return sum(self.unanswered.values())

    # -- the gate -------------------------------------------------------------
    def allow(self, now: float) -> tuple[bool, str, Transition | None]:
        """May an operation start now? Also moves an expired open circuit to half-open."""
        moved = None
        if self.status in _OPEN:
            left = self.opened_at + self.wait_seconds - now
            if left > 0:
                self.not_permitted += 1
                return False, self._open_reason(left), None
            moved = self._set(RECOVERING, "wait over: trying again")
            self.consecutive_successes = 0
            self.trials.clear()
        if self.status is RECOVERING:
            # A trial whose outcome never came frees its slot after timeout_seconds.
            while self.trials and now - self.trials[0] >= self.config.timeout_seconds:
                self.trials.pop(0)
            if len(self.trials) >= self.config.half_open_max_calls:
                self.not_permitted += 1
                return False, "recovering: waiting for the outcome of a trial call", moved
            self.trials.append(now)
            done, need = self.consecutive_successes, self.config.success_threshold
            return True, f"recovering: trial call ({done} of {need} successes so far)", moved
        if self.hold_until:
            if now < self.hold_until:
                left = self.hold_until - now
                self.not_permitted += 1
                return False, f"rate limited by the venue: retry in {left:.0f}s", None
            self.hold_until = 0.0
        if self.status is DEGRADED:
            return True, f"degraded: {self.consecutive_failures} consecutive failure(s)", None
        return True, "healthy", None

    def _open_reason(self, left: float) -> str:
        if self.status is FAILING:
            return (
                f"failing: {self.last_error or 'authentication error'}; fix the credentials, "
                f"then run: python3 nija_ctl.py reset {self.account_key} "
                f"(automatic retry in {left:.0f}s)"
            )
        return (
            f"quarantined: circuit open after {self.consecutive_failures} consecutive "
            f"failure(s); retry in {left:.0f}s"
        )

    # -- outcomes -------------------------------------------------------------
    def success(
        self, wall: float, operation_time_ms: float, operation: str | None = None
    ) -> Transition | None:
        """Record one successful operation; it answers the failures of ``operation``."""
        self.total_successes += 1
        self.last_success_wall = wall
        if operation_time_ms > 0:
            self.op_time_total_ms += operation_time_ms
            self.op_count += 1
            self.call_times.observe(operation_time_ms / 1000.0)
        status = self.status
        if status is HEALTHY:  # the common case: nothing to answer, nothing to change
            self.consecutive_successes += 1
            return None
        if status is QUARANTINED or status is FAILING:  # a late answer: changes nothing
            return None
        if status is RECOVERING and self.trials:
            self.trials.pop(0)
        if self.unanswered:
            self._answer(operation)
        self.consecutive_successes += 1
        if self.consecutive_successes < self.config.success_threshold:
            return None
        if status is RECOVERING:
            self.reopenings = 0
            self.trials.clear()
            self.unanswered.clear()
            self.outage_unanswered.clear()
            return self._set(HEALTHY, "recovered: circuit closed")
        if status is DEGRADED and not self.unanswered:
            return self._set(HEALTHY, "recovered")
        return None

    def _answer(self, operation: str | None) -> None:
        if operation is None:
            self.unanswered.clear()
            self.outage_unanswered.clear()
            return
        for pending in (self.unanswered, self.outage_unanswered):
            pending.pop(operation, None)
            pending.pop(None, None)

    def failure(
        self,
        now: float,
        wall: float,
        failure_type: FailureType,
        weight: Weight,
        error_text: str,
        operation: str | None,
        retry_after: float | None = None,
    ) -> Transition | None:
        """Record one failed operation of type ``failure_type``, weighed by the policy."""
        self.total_failures += 1
        self.failure_breakdown[failure_type.value] = (
            self.failure_breakdown.get(failure_type.value, 0) + 1
        )
        self.last_failure_wall = wall
        self.last_error = error_text[:200]
        self.last_operation = operation
        if self.status in _OPEN:  # late answer: counted, changes nothing
            return None
        if self.status is RECOVERING and self.trials:
            self.trials.pop(0)
        if weight is Weight.REFUSAL or weight is Weight.EXCUSED:
            return None  # recorded and visible: the account works, or its venue was down
        self.unanswered[operation] = self.unanswered.get(operation, 0) + 1
        if weight is Weight.OUTAGE:
            self.outage_unanswered[operation] = self.outage_unanswered.get(operation, 0) + 1
        self.consecutive_successes = 0
        if weight is Weight.OPENS:
            return self._open(
                now,
                self.config.failing_timeout_seconds,
                FAILING,
                f"{failure_type.value}: retrying will not fix it",
            )
        if self.status is RECOVERING:
            self.reopenings += 1
            wait = self.config.timeout_seconds * self.config.backoff_multiplier**self.reopenings
            return self._open(
                now,
                min(wait, self.config.max_timeout_seconds),
                QUARANTINED,
                f"failed while recovering (re-opening {self.reopenings})",
            )
        failures = self.consecutive_failures
        if failures >= self.config.failure_threshold:
            return self._open(
                now, self.config.timeout_seconds, QUARANTINED, f"{failures} consecutive failures"
            )
        if retry_after:
            self.hold_until = now + min(retry_after, self.config.max_timeout_seconds)
        return self._set(DEGRADED, f"{failure_type.value} on {operation}")

    def _open(
        self, now: float, wait: float, status: AccountHealthStatus, why: str
    ) -> Transition | None:
        self.opened_at = now
        self.wait_seconds = wait
        self.quarantine_count += 1
        self.trials.clear()
        return self._set(status, f"{why}; circuit open for {wait:.0f}s")

    def forgive_outage(self, why: str) -> Transition | None:
        """Take back the unanswered failures a venue outage explains (its venue is down).

        Closed, they no longer count: DEGRADED with nothing else unanswered is HEALTHY again.
        A circuit those failures alone opened (every unanswered failure was of that kind)
        closes again, without a trial: the account never failed, its venue did. Any other
        failure still unanswered keeps its weight, and so does a FAILING circuit.
        """
        if not self.outage_unanswered:
            return None
        only_outage = self.outage_unanswered == self.unanswered
        for operation, count in self.outage_unanswered.items():
            left = self.unanswered.get(operation, 0) - count
            if left > 0:
                self.unanswered[operation] = left
            else:
                self.unanswered.pop(operation, None)
        self.outage_unanswered.clear()
        if self.status is DEGRADED and not self.unanswered:
            return self._set(HEALTHY, why)
        if self.status in (QUARANTINED, RECOVERING) and only_outage:
            self.reopenings = 0
            self.trials.clear()
            return self._set(HEALTHY, why)
        return None

    def reset(self) -> Transition | None:
        """Back to healthy and closed; lifetime counters stay."""
        self.consecutive_successes = 0
        self.unanswered.clear()
        self.outage_unanswered.clear()
        self.reopenings = 0
        self.trials.clear()
        self.hold_until = 0.0
        return self._set(HEALTHY, "reset by operator")

    def _set(self, new: AccountHealthStatus, reason: str) -> Transition | None:
        old, self.status = self.status, new
        return Transition(old, new, reason) if old is not new else None

    def blocked_for(self, now: float) -> float | None:
        """Seconds until the gate may say yes again: an open circuit's wait or a venue's hold."""
        if self.status in _OPEN:
            return self.retry_in(now)
        if self.status.circuit is CircuitState.CLOSED and now < self.hold_until:
            return self.hold_until - now
        return None

    def retry_in(self, now: float) -> float | None:
        """Seconds left of an open circuit's wait; None unless open."""
        if self.status not in _OPEN:
            return None
        return max(0.0, self.opened_at + self.wait_seconds - now)

    def held_for(self, now: float) -> float:
        """Seconds left of a venue's Retry-After while closed; 0 when none."""
        if self.status.circuit is not CircuitState.CLOSED:
            return 0.0
        return max(0.0, self.hold_until - now)
