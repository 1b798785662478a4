"""Which accounts hold funds: every balance fetched at once, each answer used as it arrives.

The reference design checked balances one after another with no timeout, so one hung
account delayed every other account's start. Here each account's check (its client, the
venue's market metadata, its balance) runs in its own worker, passes the isolation gate,
and has one deadline on the injected clock: the call timeout plus a grace, from the moment
its check starts, moved back by whatever it waited on what it shares with its venue: its
requests on their request budgets (a client-side throttle wait is never a timeout), and it
on the venue's one metadata load (the venue's work, bounded by its own call timeout).

``FundedChecker`` outlives one round of checks: an account's client comes from
``make_broker`` (the daemon's ``VenueClients.client``: the same client at every re-check,
later its trading thread's), and an account whose previous check is still running is not
checked again. A check that only timed out counts one network failure against its
account (operation ``balance``), so status.json shows it failing to answer, never healthy;
the hung call's own outcome is recorded by the guard whenever it comes.

Each check passes its venue's gate as the account's trading calls do (``VenueGate``, with
the venue's health from ``venue_health``): while the venue is down, or until the account's
staggered resume time once it is back, nothing is asked (``parked``: neither funded nor
unfunded, checked again when the venue lets it: ``venue_retry_in_seconds``). A failure an outage
explains (a timeout, the deadline's too, a refused connection, a 5xx, a maintenance
answer) is told to the venue's health, counts toward declaring it down, and is weighed on
the breaker as an engine call's (excused once the venue is down; forgiven at the next
check when the venue was declared down after it); such a check is asked again when its
venue lets it (at the next probe while it is down), not at the periodic re-check.
Authentication, permission and funds failures stay the account's, as ever.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from queue import Empty, Queue

from bot.brokers.base import Broker
from bot.clock import SYSTEM_CLOCK, Clock
from bot.errors import describe
from bot.isolation.failures import FailureType
from bot.isolation.manager import AccountBlockedError, AccountIsolationManager, classify_failure
from bot.isolation.policy import is_outage
from bot.model import Balance, BrokerSpec
from bot.venue.gate import VenueGate
from bot.venue.health import VenueHealth, VenueParked

# Grace on top of the call timeout before a check is declared hung.
DEADLINE_GRACE_SECONDS = 2.0
# How often the waiting loop looks at the checks' deadlines (real seconds).
_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class FundedResult:
    """One account's answer: its balance, or why there is none."""

    account_key: str
    funded: bool
    balance_usd: float | None = None
    cash_usd: float | None = None
    error: str | None = None  # "Type: message", secrets masked by the isolation's redactor
    failure_type: str | None = None
    seconds: float = 0.0
    notes: tuple[str, ...] = ()  # the venue's word to the operator (Balance.notes)
    timed_out: bool = False  # no answer by the deadline (counted as a network failure)
    parked: bool = False  # its venue was down (or it waits to resume): nothing was asked
    # Check again this much later, when its venue lets it (parked, or an outage-kind
    # failure); None: at the periodic re-check. The venue's wait, not the account's
    # breaker's (status.json's retry_in_seconds).
    venue_retry_in_seconds: float | None = None


class FundsCheck(StrEnum):
    """What an account's last funds check found out (status.json's ``funds_check``): only
    ``answered`` makes ``funded`` an answer; every other state means its funds are unknown."""

    ANSWERED = "answered"  # the venue told its balance
    WAITS = "waits"  # parked: its venue is down, or its staggered resume is not due
    NO_ANSWER = "no_answer"  # no answer by the deadline (timed out)
    FAILED = "failed"  # the check failed, or the account's breaker let nothing be asked
    NOT_CHECKED = "not_checked"  # no check has answered yet


def funds_check(result: FundedResult | None) -> FundsCheck:
    """The state of an account's last funds check (None: none has answered yet)."""
    if result is None:
        return FundsCheck.NOT_CHECKED
    if result.parked:
        return FundsCheck.WAITS
    if result.timed_out:
        return FundsCheck.NO_ANSWER
    if result.balance_usd is None:
        return FundsCheck.FAILED
    return FundsCheck.ANSWERED


def funds_unknown_reason(result: FundedResult | None) -> str | None:
    """Why the check left the account's funds unknown (its error); None once it answered."""
    return None if result is None or result.balance_usd is not None else result.error


@dataclass
class _Check:
    """One account's check in progress."""

    spec: BrokerSpec
    started: float | None = None  # when its worker began (the deadline runs from here)
    waited_at_start: float = 0.0  # what the account had waited on shared things by then


def _never_waited(spec: BrokerSpec) -> float:
    return 0.0


def _no_venue_health(spec: BrokerSpec) -> VenueHealth | None:
    return None


class FundedChecker:
    """Runs the funded checks of one process (see the module doc)."""

    def __init__(
        self,
        make_broker: Callable[[BrokerSpec], Broker],
        isolation: AccountIsolationManager,
        *,
        min_balance_usd: float,
        timeout_seconds: float,
        waited: Callable[[BrokerSpec], float] = _never_waited,
        venue_health: Callable[[BrokerSpec], VenueHealth | None] = _no_venue_health,
        max_workers: int = 32,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._make_broker = make_broker
        self._isolation = isolation
        self._min_balance_usd = min_balance_usd
        self._timeout = timeout_seconds
        # Seconds the account has waited on what it shares with its venue (its request
        # budgets, the venue's one metadata load): not the account's time, so not its deadline's.
        self._waited = waited
        self._venue_health = venue_health  # the health of the account's venue (its gate)
        self._max_workers = max_workers
        self._clock = clock
        self._lock = threading.Lock()
        self._running: dict[str, _Check] = {}

    def running(self, key: str) -> bool:
        """True while an account's check (perhaps one declared hung) has not finished."""
        with self._lock:
            return key in self._running

    def check(
        self, specs: Iterable[BrokerSpec], stop: threading.Event | None = None
    ) -> Iterator[FundedResult]:
        """Check these accounts at once; yield each FundedResult as soon as it is known.

        At most ``max_workers`` checks run at a time; one declared hung gives its place to
        the next (its thread is left to finish on its own, its late answer dropped). An
        account whose previous check is still running is skipped (nothing is yielded for
        it). A check past its deadline is yielded as timed out and counted as one network
        failure of its account. When ``stop`` is set, the checks not answered yet are left
        without an answer.
        """
        queued: deque[_Check] = deque()
        with self._lock:
            for spec in specs:
                if spec.account.key not in self._running:
                    self._running[spec.account.key] = check = _Check(spec)
                    queued.append(check)
        answers: Queue[FundedResult] = Queue()
        active: dict[str, _Check] = {}
        try:
            while (queued or active) and not (stop and stop.is_set()):
                while queued and len(active) < self._max_workers:
                    check = queued.popleft()
                    active[check.spec.account.key] = check
                    threading.Thread(
                        target=self._run,
                        args=(check, answers),
                        name=f"funded-check-{check.spec.account.key}",
                        daemon=True,
                    ).start()
                now = self._clock.monotonic()
                for key, check in list(active.items()):
                    deadline = self._deadline(check)
                    if deadline is not None and now >= deadline:
                        del active[key]
                        yield self._timed_out(check, now)
                try:
                    result = answers.get(timeout=_POLL_SECONDS)
                except Empty:
                    continue
                if active.pop(result.account_key, None) is not None:
                    yield result  # else: the late answer of a check declared hung
        finally:
            with self._lock:  # never started: not running
                for check in queued:
                    self._running.pop(check.spec.account.key, None)

    def _deadline(self, check: _Check) -> float | None:
        """When the check is declared hung; None before its worker has started."""
        if check.started is None:
            return None
        waited = self._waited(check.spec) - check.waited_at_start
        return check.started + self._timeout + DEADLINE_GRACE_SECONDS + waited

    def _gate(self, spec: BrokerSpec) -> VenueGate:
        return VenueGate(self._isolation.handle(spec.account), self._venue_health(spec))

    def _timed_out(self, check: _Check, now: float) -> FundedResult:
        acct = check.spec.account
        error = TimeoutError(f"no balance answer within {self._timeout:.0f}s")
        gate = self._gate(check.spec)
        gate.failed(error, "balance")  # the venue's to know first, as for any call of its
        gate.handle.record_failure(error, "balance", FailureType.NETWORK_ERROR)
        return FundedResult(
            acct.key,
            False,
            error=describe(error),
            failure_type=FailureType.NETWORK_ERROR.value,
            seconds=now - (check.started or now),
            timed_out=True,
            venue_retry_in_seconds=_venue_retry(gate),
        )

    def _run(self, check: _Check, answers: Queue[FundedResult]) -> None:
        check.waited_at_start = self._waited(check.spec)
        check.started = self._clock.monotonic()
        try:
            answers.put(self._one(check.spec, check.started))
        finally:
            with self._lock:
                self._running.pop(check.spec.account.key, None)

    def _one(self, spec: BrokerSpec, started: float) -> FundedResult:
        acct = spec.account
        isolation = self._isolation
        gate = self._gate(spec)  # registers the account with the isolation manager
        if gate.health is not None:
            # Counted among the venue's accounts, answered or not: "half its accounts
            # failed" must weigh two failed checks against every account checked, or two
            # unfunded accounts' transient 5xx would put the venue down for all of them.
            gate.health.register(acct.key)
        try:
            gate.check()  # its venue down, or its resume not due: nothing is asked
            with gate.handle.guard("balance"):
                # Inside the guard: an unusable secret is this account's recorded failure.
                # The client is the account's own for good: it is not closed here.
                broker = self._make_broker(spec)
                balance: Balance = gate.call("balance", broker.fetch_balance)
        except VenueParked as parked:
            # Once the venue is back it calls again: its resume is staggered with the others'
            # (it was registered above).
            return FundedResult(
                acct.key,
                False,
                error=f"funds check waits: {parked.reason}",
                parked=True,
                venue_retry_in_seconds=parked.retry_in_seconds,
            )
        except AccountBlockedError as blocked:
            return FundedResult(acct.key, False, error=f"blocked: {blocked.reason}")
        except Exception as exc:  # recorded by the guard; reported here for the operator
            return FundedResult(
                acct.key,
                False,
                error=describe(exc, redactor=isolation.redactor),
                failure_type=classify_failure(exc, "balance").value,
                seconds=self._clock.monotonic() - started,
                venue_retry_in_seconds=_venue_retry(gate) if is_outage(exc) else None,
            )
        funded = balance.usd_equity >= self._min_balance_usd
        return FundedResult(
            acct.key,
            funded,
            balance_usd=balance.usd_equity,
            cash_usd=balance.usd_cash,
            seconds=self._clock.monotonic() - started,
            notes=balance.notes,
            # An unfunded account's status shows why (e.g. its funds sit in OKX's funding account).
            error=None if funded or not balance.notes else "; ".join(balance.notes),
        )


def _venue_retry(gate: VenueGate) -> float | None:
    """When a check that failed as an outage fails is asked again: once its venue lets the
    account call (the next probe while it is down), else one probe interval on; None
    without a venue health (the periodic re-check)."""
    health = gate.health
    if health is None:
        return None
    return health.parked(gate.handle.key) or health.config.probe_interval_seconds


__all__ = [
    "DEADLINE_GRACE_SECONDS",
    "FundedChecker",
    "FundedResult",
    "FundsCheck",
    "funds_check",
    "funds_unknown_reason",
]
