"""A venue's health: its outages told apart from an account's own failures.

``VenueHealth`` is a plain state machine (no I/O; an injected ``Clock`` and ``random.Random``;
one short lock, never held while a listener runs), one per venue in the process:

* **UP → DOWN** when failures of the kind an outage explains (``bot.isolation.policy.
  is_outage``: timeouts, refused or dropped connections, 5xx, maintenance answers) hit at
  least ``failure_share`` of the venue's registered accounts, and at least
  ``min_failing_accounts``, within ``failure_window_seconds``; or when
  ``public_failures`` public fetches in a row fail so; or when the venue's own status
  check says maintenance. Authentication, permission, funds failures and an account's own
  rate limit never count: one account's bad key quarantines that account alone.
* **cancel_only / post_only** come from the status check (Kraken's SystemStatus): the
  venue answers, but takes no market order, which is every order NIJA sends.
* **While DOWN** every account is parked (``parked`` says for how long: no calls at all),
  and one probe per ``probe_interval_seconds`` (jittered) tests the venue
  (``probe_due`` / ``record_probe``, run by ``bot.venue.monitor``).
* **Back**: every registered account gets its own resume time, spread evenly in a random
  order over ``resume_window_seconds``, so they do not all call the venue in the same
  second; ``parked`` counts down to it.

Transitions go to the listeners (the daemon logs ``venue_down`` / ``venue_up`` once each).
"""

from __future__ import annotations

import math
import random
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.clock import SYSTEM_CLOCK, Clock, iso_text
from bot.errors import describe
from bot.isolation.failures import FailureType
from bot.isolation.handle import AccountBlockedError
from bot.isolation.policy import is_outage
from bot.model import VenueCondition, VenueStatus

# The failure types an outage can show as: no answer, or a venue error that came with a 5xx
# (the caller decided that with ``is_outage``; any other type is the account's own).
_OUTAGE_TYPES = frozenset({FailureType.NETWORK_ERROR, FailureType.API_ERROR})
_RATE_WINDOW = 60.0  # public requests are counted over the last minute


class VenueState(StrEnum):
    """A venue as its accounts see it; the value is what status.json shows."""

    UP = "up"
    DOWN = "down"  # no calls at all: its accounts are parked
    CANCEL_ONLY = "cancel_only"  # look-ups and cancels only: no entries, exits wait
    POST_ONLY = "post_only"  # post-only limit orders only: no entries, exits wait

    @property
    def takes_market_orders(self) -> bool:
        """False while the venue refuses market orders (NIJA's entries and exits are)."""
        return self is VenueState.UP


_FROM_STATUS = {
    VenueCondition.OK: VenueState.UP,
    VenueCondition.MAINTENANCE: VenueState.DOWN,
    VenueCondition.CANCEL_ONLY: VenueState.CANCEL_ONLY,
    VenueCondition.POST_ONLY: VenueState.POST_ONLY,
}


class DownCause(StrEnum):
    """What declared the venue down; a probe of a venue its own status check did not put
    down also asks for market data (``bot.venue.monitor``)."""

    ACCOUNTS = "accounts"
    PUBLIC = "public"
    STATUS = "status"


@dataclass(frozen=True)
class HealthConfig:
    """When a venue is declared down, how it is probed, and how its accounts resume."""

    failure_window_seconds: float = 60.0
    failure_share: float = 0.5
    min_failing_accounts: int = 2
    public_failures: int = 3  # public fetches failing in a row
    probe_interval_seconds: float = 30.0
    probe_jitter: float = 0.2  # each probe interval is moved by up to this share, either way
    resume_window_seconds: float = 30.0

    def __post_init__(self) -> None:
        for name in ("failure_window_seconds", "probe_interval_seconds"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if not 0 < self.failure_share <= 1:
            raise ValueError(f"failure_share must be in (0, 1], got {self.failure_share!r}")
        if self.min_failing_accounts < 1 or self.public_failures < 1:
            raise ValueError("min_failing_accounts and public_failures must be at least 1")
        if not 0 <= self.probe_jitter < 1 or self.resume_window_seconds < 0:
            raise ValueError("probe_jitter must be in [0, 1), resume_window_seconds >= 0")


@dataclass(frozen=True)
class VenueTransition:
    """A change of a venue's state, reported to the listeners."""

    venue: str
    old: VenueState
    new: VenueState
    reason: str
    at: float  # wall-clock epoch seconds


@dataclass(frozen=True)
class Probe:
    """The last probe of a down venue."""

    at: float  # wall-clock epoch seconds
    ok: bool
    reason: str


VenueListener = Callable[[VenueTransition], None]


class VenueParked(AccountBlockedError):
    """The account's venue is down, or the account waits for its resume time: no call was
    sent, and nothing is charged to the account's breaker."""

    def __init__(
        self, key: str, venue: str, reason: str, retry_in_seconds: float, *, resuming: bool
    ) -> None:
        super().__init__(key, None, reason, retry_in_seconds)
        self.venue = venue
        self.resuming = resuming  # the venue is back; the account waits for its resume time


class VenueHealth:
    """The health of one venue, shared by its accounts' threads and its monitor."""

    def __init__(
        self,
        name: str,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
        config: HealthConfig | None = None,
    ) -> None:
        self.name = name
        self.config = config or HealthConfig()
        self._clock = clock
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._listeners: list[VenueListener] = []
        self._accounts: set[str] = set()
        self._state = VenueState.UP
        self._since = clock.wall()
        self._reason = "no outage seen"
        self._cause: DownCause | None = None
        self._failing: dict[str, float] = {}  # account → monotonic time of its last outage failure
        self._public_streak = 0
        self._public_calls: deque[float] = deque()  # monotonic times, the last minute's
        self._next_probe = 0.0
        self._last_probe: Probe | None = None
        self._resume_at: dict[str, float] = {}  # account → monotonic time it may call again

    # -- set-up ----------------------------------------------------------------------------
    def register(self, account_key: str) -> None:
        """Count ``account_key`` among the venue's accounts (those trading on it)."""
        with self._lock:
            self._accounts.add(account_key)

    def add_listener(self, listener: VenueListener) -> None:
        """Call ``listener(transition)`` on every change of state (outside the lock)."""
        self._listeners.append(listener)

    # -- reading ---------------------------------------------------------------------------
    @property
    def state(self) -> VenueState:
        return self._state

    @property
    def reason(self) -> str:
        return self._reason

    @property
    def down_cause(self) -> DownCause | None:
        """What declared the venue down (None while it is not down)."""
        return self._cause

    def parked(self, account_key: str) -> float:
        """Seconds ``account_key`` must make no call to the venue; 0.0 when it may.

        While DOWN: until the next probe is due (its worker is woken if the venue comes
        back sooner). After a recovery: until the account's own staggered resume time.
        """
        now = self._clock.monotonic()
        with self._lock:
            if self._state is VenueState.DOWN:
                left = self._next_probe - now
                # A probe under way (or late): a whole interval, not a wake-up every second.
                return left if left >= 1.0 else self.config.probe_interval_seconds
            resume = self._resume_at.get(account_key)
            if resume is None:
                return 0.0
            if resume <= now:
                del self._resume_at[account_key]
                return 0.0
            return resume - now

    def parked_error(self, account_key: str, wait: float) -> VenueParked:
        """The refusal for an account ``parked`` for ``wait`` seconds: nothing was sent."""
        down = self._state is VenueState.DOWN
        if down:
            why = f"venue {self.name} down: {self._reason}"
        else:
            why = f"venue {self.name} back: staggered resume in {wait:.0f}s"
        return VenueParked(account_key, self.name, why, wait, resuming=not down)

    def probe_due(self) -> bool:
        """True when the venue is down and its next (jittered) probe is due."""
        with self._lock:
            return self._state is VenueState.DOWN and self._clock.monotonic() >= self._next_probe

    def snapshot(self) -> dict[str, Any]:
        """status.json's entry for this venue."""
        now = self._clock.monotonic()
        with self._lock:
            self._prune_calls(now)
            probe = self._last_probe
            return {
                "state": self._state.value,
                "since": iso_text(self._since),
                "reason": self._reason,
                "last_probe": None
                if probe is None
                else {"at": iso_text(probe.at), "ok": probe.ok, "reason": probe.reason},
                "public_requests_per_min": len(self._public_calls),
            }

    # -- what the accounts report (their own calls) -------------------------------------------
    def record_failure(self, account_key: str, failure: FailureType, reason: str) -> bool:
        """One of the account's own calls failed the way an outage fails (the caller checked
        the error with ``is_outage``). True when the venue is down: the failure is its outage.

        Other failure types (authentication, permission, funds, rate limits) are the
        account's own and are ignored here.
        """
        if failure not in _OUTAGE_TYPES:
            return False
        now = self._clock.monotonic()
        with self._lock:
            if self._state is VenueState.DOWN:
                return True
            self._accounts.add(account_key)
            self._failing[account_key] = now
            horizon = now - self.config.failure_window_seconds
            self._failing = {k: t for k, t in self._failing.items() if t >= horizon}
            failing, total = len(self._failing), len(self._accounts)
            need = max(
                self.config.min_failing_accounts, math.ceil(self.config.failure_share * total)
            )
            if failing < need:
                return False
            window = self.config.failure_window_seconds
            why = f"{failing} of {total} accounts failed within {window:g}s ({reason})"
            moved = self._go_down(DownCause.ACCOUNTS, why)
        self._notify(moved)
        return True

    def record_success(self, account_key: str) -> None:
        """One of the account's own calls was answered: its earlier failures no longer point
        at an outage."""
        with self._lock:
            self._failing.pop(account_key, None)

    # -- what the shared market data reports (public fetches) ------------------------------
    def public_failed(self, error: BaseException, operation: str) -> None:
        """A public fetch failed; a few in a row that an outage explains put the venue down."""
        now = self._clock.monotonic()
        with self._lock:
            self._count_call(now)
            if not is_outage(error) or self._state is VenueState.DOWN:
                return
            self._public_streak += 1
            if self._public_streak < self.config.public_failures:
                return
            why = f"{self._public_streak} public requests failed in a row ({operation}: {describe(error, 120)})"
            moved = self._go_down(DownCause.PUBLIC, why)
        self._notify(moved)

    def public_ok(self, operation: str) -> None:
        """A public fetch was answered."""
        with self._lock:
            self._count_call(self._clock.monotonic())
            self._public_streak = 0

    # -- what the monitor reports (the status check and the probes) --------------------------
    def record_status(self, status: VenueStatus) -> None:
        """The venue's status check answered: maintenance puts it down, cancel-only and
        post-only restrict it, ok lifts a restriction (and a down its status check caused).

        A venue its accounts or its public data put down comes back through a probe only.
        An unknown answer changes nothing.
        """
        target = _FROM_STATUS.get(status.condition)
        with self._lock:
            self._count_call(self._clock.monotonic())
            if target is None or target is self._state:
                return
            why = f"status check: {status.message or status.condition.value}"
            if target is VenueState.DOWN:
                moved = self._go_down(DownCause.STATUS, why)
            elif self._state is not VenueState.DOWN:
                moved = self._move(target, why)
            elif self._cause is DownCause.STATUS:
                moved = self._come_back(target, why)
            else:
                return
        self._notify(moved)

    def record_probe(
        self, ok: bool, reason: str, state: VenueState = VenueState.UP, requests: int = 1
    ) -> None:
        """The outcome of a probe of the down venue (``requests`` sent): back (as ``state``)
        or the next probe after another jittered interval."""
        now = self._clock.monotonic()
        with self._lock:
            for _ in range(requests):
                self._count_call(now)
            self._last_probe = Probe(self._clock.wall(), ok, reason)
            if self._state is not VenueState.DOWN:
                return
            if not ok:
                self._next_probe = now + self._probe_interval()
                return
            moved = self._come_back(state, f"probe answered: {reason}")
        self._notify(moved)

    # -- the moves (under the lock) -----------------------------------------------------------
    def _go_down(self, cause: DownCause, why: str) -> VenueTransition | None:
        self._cause = cause
        self._failing.clear()
        self._public_streak = 0
        self._resume_at.clear()
        self._next_probe = self._clock.monotonic() + self._probe_interval()
        return self._move(VenueState.DOWN, why)

    def _come_back(self, state: VenueState, why: str) -> VenueTransition | None:
        """Leave DOWN for ``state``: every account resumes at its own time in the window."""
        now = self._clock.monotonic()
        self._cause = None
        keys = sorted(self._accounts)
        self._rng.shuffle(keys)
        window = self.config.resume_window_seconds
        self._resume_at = {key: now + window * i / len(keys) for i, key in enumerate(keys)}
        return self._move(state, why)

    def _move(self, state: VenueState, why: str) -> VenueTransition | None:
        old = self._state
        if old is state:
            return None
        self._state, self._since, self._reason = state, self._clock.wall(), why
        return VenueTransition(self.name, old, state, why, self._since)

    def _probe_interval(self) -> float:
        jitter = self.config.probe_jitter
        return self.config.probe_interval_seconds * (1 + self._rng.uniform(-jitter, jitter))

    def _count_call(self, now: float) -> None:
        self._public_calls.append(now)
        self._prune_calls(now)

    def _prune_calls(self, now: float) -> None:
        while self._public_calls and self._public_calls[0] <= now - _RATE_WINDOW:
            self._public_calls.popleft()

    def _notify(self, transition: VenueTransition | None) -> None:
        if transition is None:
            return
        for listener in self._listeners:
            listener(transition)
