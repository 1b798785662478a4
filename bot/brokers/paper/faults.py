"""Faults the paper broker injects on request, for the demo and for tests.

A rule names an operation (a broker method name such as ``"fetch_balance"``, or ``"*"``
for every method) and a kind of failure. Before (or, with ``after=True``, after) each
broker call the injector walks its rules in the order they were added:

* ``latency`` sleeps ``seconds`` and lets the call proceed; a delay longer than the
  call timeout ends in ``SimulatedTimeout`` at the timeout, as a real client's would;
* ``hang`` sleeps ``seconds`` (default: the call timeout) and then raises
  ``SimulatedTimeout``; it is not cut short, so it can also stand for a client whose
  own timeout failed;
* ``timeout``, ``network``, ``auth``, ``rate_limit``, ``api_error`` raise at once.

Rules can be limited in count (``times``), made intermittent (``probability``, drawn
from a seeded RNG so a demo run is repeatable) and scheduled (``start``/``stop``, in
seconds after the rule was added). That is enough for a scripted plan such as
"30% of calls time out for 40 s, then the credentials go bad"::

    faults.inject("*", "timeout", probability=0.3, stop=40)
    faults.inject("*", "auth", start=40)
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from bot.clock import Clock
from bot.errors import (
    SimulatedApiError,
    SimulatedAuthError,
    SimulatedNetworkError,
    SimulatedRateLimit,
    SimulatedTimeout,
)

ANY_OPERATION = "*"


class FaultKind(StrEnum):
    LATENCY = "latency"
    HANG = "hang"
    TIMEOUT = "timeout"
    NETWORK = "network"
    AUTH = "auth"
    RATE_LIMIT = "rate_limit"
    API_ERROR = "api_error"


@dataclass
class FaultRule:
    """One injected fault. ``remaining`` counts down from ``times``; None means unlimited."""

    operation: str
    kind: FaultKind
    remaining: int | None = None
    seconds: float = 0.0
    retry_after: float | None = None
    probability: float = 1.0
    start_at: float = float("-inf")  # monotonic time from which the rule is active
    stop_at: float = float("inf")  # monotonic time at which it stops
    after: bool = False  # fail after the call took effect (an order placed, then lost)

    def matches(self, operation: str, now: float, after: bool) -> bool:
        """Whether this rule applies to this call at this moment and phase."""
        return (
            self.after == after
            and self.operation in (operation, ANY_OPERATION)
            and self.start_at <= now < self.stop_at
            and (self.remaining is None or self.remaining > 0)
        )


class FaultInjector:
    """The fault rules of one paper broker; safe to change from another thread."""

    def __init__(
        self,
        *,
        clock: Clock,
        sleep: Callable[[float], None],
        timeout_seconds: float,
        seed: int = 0,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._timeout = timeout_seconds
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def inject(
        self,
        operation: str,
        kind: FaultKind | str,
        times: int | None = None,
        seconds: float = 0.0,
        retry_after: float | None = None,
        *,
        probability: float = 1.0,
        start: float = 0.0,
        stop: float | None = None,
        after: bool = False,
    ) -> FaultRule:
        """Add a rule (returned, for inspection); ``start``/``stop`` are seconds from now."""
        kind = FaultKind(kind)
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for unlimited)")
        if not 0.0 < probability <= 1.0:
            raise ValueError("probability must be in (0, 1]")
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        now = self._clock.monotonic()
        rule = FaultRule(
            operation=operation,
            kind=kind,
            remaining=times,
            seconds=float(seconds),
            retry_after=retry_after,
            probability=probability,
            start_at=now + start,
            stop_at=float("inf") if stop is None else now + stop,
            after=after,
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[FaultRule]:
        """The rules still able to fire, in order."""
        with self._lock:
            return [r for r in self._rules if r.remaining is None or r.remaining > 0]

    def before(self, operation: str) -> None:
        """Run the rules for a call that is about to happen; raises the injected failure."""
        self._run(operation, after=False)

    def after(self, operation: str) -> None:
        """Run the rules for a call that has just taken effect; raises the injected failure."""
        self._run(operation, after=True)

    def _run(self, operation: str, *, after: bool) -> None:
        for rule in self._fire(operation, after):
            self._apply(rule, operation)

    def _fire(self, operation: str, after: bool) -> list[FaultRule]:
        """The rules that fire for this call, counted down atomically.

        Only the first failing rule fires (a call fails once); latencies before it add up.
        """
        now = self._clock.monotonic()
        fired: list[FaultRule] = []
        with self._lock:
            for rule in self._rules:
                if not rule.matches(operation, now, after):
                    continue
                if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                fired.append(rule)
                if rule.kind is not FaultKind.LATENCY:
                    break
            self._rules = [r for r in self._rules if r.remaining is None or r.remaining > 0]
        return fired

    def _apply(self, rule: FaultRule, operation: str) -> None:
        where = f"injected {rule.kind} on {operation}"
        match rule.kind:
            case FaultKind.LATENCY:
                if rule.seconds > self._timeout:
                    self._sleep(self._timeout)
                    raise SimulatedTimeout(f"{where}: no answer within {self._timeout:g}s")
                self._sleep(rule.seconds)
            case FaultKind.HANG:
                self._sleep(rule.seconds or self._timeout)
                raise SimulatedTimeout(f"{where}: the call hung")
            case FaultKind.TIMEOUT:
                raise SimulatedTimeout(f"{where}: no answer within {self._timeout:g}s")
            case FaultKind.NETWORK:
                raise SimulatedNetworkError(f"{where}: connection reset")
            case FaultKind.AUTH:
                raise SimulatedAuthError(f"{where}: invalid API key")
            case FaultKind.RATE_LIMIT:
                raise SimulatedRateLimit(
                    f"{where}: too many requests", retry_after=rule.retry_after
                )
            case FaultKind.API_ERROR:
                raise SimulatedApiError(f"{where}: internal error")
