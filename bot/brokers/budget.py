"""Request budgets: how fast NIJA lets itself call a venue, per IP and per key.

Each venue documents what one IP may ask of its public endpoints and what one key may ask
of its private ones (docs/VENUES.md, "## Request budgets"; the numbers are in the venue
registry, ``bot.brokers.venues``). A ``RequestBudget`` is a token bucket for one such
limit; ``Budgets`` is what one account's adapter spends on every HTTP request: the venue's
public budget (one per venue in the process, shared by all of its clients) and the
account's own private budget.

A request that finds its budget empty waits (outside every lock) until its tokens are
there; concurrent requests queue in the order they asked. What a request waited is
returned, so the adapter can push its call's deadline back by it: a client-side throttle
wait never counts against a call's timeout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.clock import SYSTEM_CLOCK, Clock

# What NIJA takes of every documented limit: half of its rate, half of its burst
# (docs/VENUES.md, "## Request budgets", says why).
NIJA_SHARE = 0.5

Wait = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A venue's documented limit: ``amount`` units per ``per_seconds``, ``burst`` at once.

    For a window limit (Binance's weight per minute) ``burst`` is the window's amount; for
    a counter with a maximum and a decay (Kraken's private counter) it is the maximum.
    ``unit`` names what one request spends: requests, counter points, weight.
    """

    amount: float
    per_seconds: float
    burst: float
    unit: str = "requests"

    def __post_init__(self) -> None:
        if self.amount <= 0 or self.per_seconds <= 0 or self.burst <= 0:
            raise ValueError(f"a rate limit needs positive numbers, got {self!r}")

    @property
    def rate(self) -> float:
        """The documented sustained rate, in units per second."""
        return self.amount / self.per_seconds

    def budget(self, *, clock: Clock = SYSTEM_CLOCK, wait: Wait | None = None) -> RequestBudget:
        """NIJA's budget for this limit: ``NIJA_SHARE`` of its rate and of its burst
        (a burst of at least one unit, so that a request of cost 1 never waits on an
        idle budget)."""
        return RequestBudget(
            NIJA_SHARE * self.rate, max(1.0, NIJA_SHARE * self.burst), clock=clock, wait=wait
        )


class RequestBudget:
    """A token bucket: ``rate`` tokens per second, at most ``burst`` saved up. Thread-safe.

    ``acquire(cost)`` takes ``cost`` tokens. When they are not there, it reserves them
    anyway (the balance goes below zero) and waits until the bucket has refilled to
    cover them, so concurrent callers are served in the order they asked and none
    waits longer than the queue in front of it. A cost above the burst is allowed:
    it just waits longer. The clock and the wait function are injected (tests pass a
    FakeClock and a wait that advances it).
    """

    def __init__(
        self, rate: float, burst: float, *, clock: Clock = SYSTEM_CLOCK, wait: Wait | None = None
    ) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError(f"a budget needs a positive rate and burst, got {rate}, {burst}")
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._wait = wait or time.sleep
        self._lock = threading.Lock()
        self._tokens = self.burst  # starts full
        self._at = clock.monotonic()
        self.acquired = 0  # requests that spent from this budget
        self.spent = 0.0  # tokens they spent
        self.waited_seconds = 0.0  # the waits they were given

    def __repr__(self) -> str:
        return f"RequestBudget(rate={self.rate:g}/s, burst={self.burst:g})"

    def acquire(self, cost: float = 1.0) -> float:
        """Take ``cost`` tokens, waiting until they are there; the seconds waited."""
        delay = self.reserve(cost)
        self.pause(delay)
        return delay

    def reserve(self, cost: float = 1.0) -> float:
        """Take ``cost`` tokens without waiting; how long the caller must wait before its
        request (0 when they were there). ``acquire`` is this, then the wait."""
        if cost < 0:
            raise ValueError(f"a request cannot cost {cost}")
        if cost == 0:
            return 0.0
        with self._lock:
            now = self._clock.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            self._tokens -= cost
            delay = -self._tokens / self.rate if self._tokens < 0 else 0.0
            self.acquired += 1
            self.spent += cost
            self.waited_seconds += delay
        return delay

    def pause(self, seconds: float) -> None:
        """Wait ``seconds`` with this budget's wait function (never under its lock)."""
        if seconds > 0:
            self._wait(seconds)

    def available(self) -> float:
        """Tokens in the bucket now (negative: reserved by callers still waiting)."""
        with self._lock:
            now = self._clock.monotonic()
            return min(self.burst, self._tokens + (now - self._at) * self.rate)


@dataclass(slots=True)
class Budgets:
    """What one account's requests spend: the venue's public budget (per IP, shared by
    every client of the venue in the process) and the account's private one (per key).

    Either may be None: that side is not throttled. ``waited_seconds`` is what this
    account's requests have waited in total (the funded check moves its deadline by it).
    """

    public: RequestBudget | None = None
    private: RequestBudget | None = None
    waited_seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def spend(self, *, public: float = 0.0, private: float = 0.0) -> float:
        """Spend one request's cost on each budget and wait until both allow it; the
        seconds waited (counted in ``waited_seconds`` before the wait begins)."""
        reserved = [
            (budget, budget.reserve(cost))
            for budget, cost in ((self.private, private), (self.public, public))
            if budget is not None and cost
        ]
        if not reserved:
            return 0.0
        budget, delay = max(reserved, key=lambda pair: pair[1])
        if delay > 0:
            with self._lock:
                self.waited_seconds += delay
            budget.pause(delay)
        return delay


__all__ = ["NIJA_SHARE", "Budgets", "RateLimit", "RequestBudget", "Wait"]
