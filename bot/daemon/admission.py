"""Which accounts get a thread: when each account's funds are checked, and what the answer starts.

An account's thread starts only once its funds check has found it funded (the checks
themselves run in ``bot.daemon.funded``). ``Admission`` decides when each account is
checked, keeps each answer, and has the supervisor start each funded account's thread as
its own answer lands:

* at start-up, every account this node holds, all at once (``first_round``);
* the periodic re-check (``NIJA_FUNDED_RECHECK_SECONDS``): every held account without a
  thread (unfunded, or its check failed), in a background thread, never the watchdog's;
  ``recheck_now`` brings it forward (an operator's reset or reload of such an account);
* several nodes (``bot.daemon.leasing``): an account whose lease is ready here starts at
  once when it was found funded, and is checked when it never was here; a held account
  whose check got no answer (a timeout, the node frozen through it) is asked again at the
  next lease renewal, not left idle until the periodic re-check, for no other node may
  trade it meanwhile;
* single-account mode (``MULTI_BROKER_INDEPENDENT=false``): only the first funded account
  to answer (of ``NIJA_PRIMARY_BROKER``, if set) gets a thread;
* its venue's word (``FundedResult.venue_retry_in_seconds``): an account whose check its venue
  parked (the venue down, or its staggered resume not due), or whose check failed as an
  outage fails, is asked again when its venue lets it, not at the periodic re-check: once
  the venue is back it starts within the venue's resume window.

Each answer is logged (``funded_check`` / ``funded_check_failed``; a check its venue parked:
``funded_check_waits``, once until it is answered) and kept in ``funded`` (the supervisor's:
status.json shows it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from bot.clock import Clock
from bot.config.settings import Settings
from bot.daemon.funded import FundedChecker, FundedResult
from bot.daemon.leasing import Leasing
from bot.daemon.worker import AccountWorker
from bot.isolation.failures import FailureType
from bot.model import BrokerSpec

__all__ = ["Admission"]


class Admission:
    """The funds checks of the daemon's accounts, and the threads their answers start (module doc)."""

    def __init__(
        self,
        settings: Settings,
        specs: Mapping[str, BrokerSpec],
        checker: FundedChecker,
        leases: Leasing,
        workers: Mapping[str, AccountWorker],
        funded: dict[str, FundedResult],
        *,
        start: Callable[[BrokerSpec], None],
        stopping: threading.Event,
        clock: Clock,
        log: Any,
        changed: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.specs = specs  # the supervisor's: a reload replaces an account's spec in it
        self.checker = checker
        self.leases = leases
        self.workers = workers  # the supervisor's, read here
        self.funded = funded  # the supervisor's: each account's last answer
        self.start = start  # starts an account's thread (the supervisor's)
        self.stopping = stopping
        self.clock = clock
        self.log = log
        self.changed = changed
        self._unanswered: dict[str, float] = {}  # key -> when its funds check got no answer
        # key -> when its venue lets it be asked again: written by the check thread, read and
        # emptied by the watchdog's tick, so both under _due_lock.
        self._venue_due: dict[str, float] = {}
        self._due_lock = threading.Lock()
        self._recheck: threading.Thread | None = None
        self._next_recheck = 0.0

    def first_round(self) -> None:
        """Check every account this node holds at once; start each funded one as its answer
        lands; the periodic re-check counts from the end of this round."""
        self._check_and_start([s for k, s in self.specs.items() if self.leases.holds(k)])
        funded = sum(1 for r in self.funded.values() if r.funded)
        # Counts only: each account has its own funded_check line, and status.json the lists.
        self.log.info(
            "funded_summary",
            funded=funded,
            not_funded=len(self.specs) - funded,
            trading=len(self.workers),
            waiting_for_venue=sum(1 for r in self.funded.values() if r.parked),
        )
        self._next_recheck = self.clock.monotonic() + self.settings.funded_recheck_seconds

    def tick(self, now: float) -> None:
        """The watchdog's: what the leases let this node start, then the periodic re-check
        (or, before it, the accounts whose venue now lets them be asked again)."""
        self._lease_tick()
        if self.checking():
            return
        if now >= self._next_recheck:
            self._next_recheck = now + self.settings.funded_recheck_seconds
            with self._due_lock:
                self._venue_due.clear()  # every idle account is asked now
            idle = [
                s for k, s in self.specs.items() if k not in self.workers and self.leases.holds(k)
            ]
            if idle:
                self._check_in_background(idle, "funded-recheck")
            return
        with self._due_lock:
            due = [k for k, at in self._venue_due.items() if now >= at]
            for key in due:  # asked once; its answer says when again, if ever
                del self._venue_due[key]
        ready = [self.specs[k] for k in due if k not in self.workers and self.leases.holds(k)]
        if ready:
            self._check_in_background(ready, "funded-recheck")

    def recheck_now(self) -> None:
        """The periodic re-check at the next tick (an account without a thread was reset)."""
        self._next_recheck = self.clock.monotonic()

    def _lease_tick(self) -> None:
        """Several nodes: hand back, forget, and start what the leases let this node trade
        (funds checked first, in the re-check thread, for an account never checked here)."""
        ready = self.leases.tick()
        now = self.clock.monotonic()
        # Never checked here, or its check got no answer (a timeout, the node frozen through
        # it): a held lease is asked again at the next renewal (10 s by default), not left
        # idle until the periodic re-check, for no other node may trade it meanwhile.
        keeper = self.leases.keeper
        retry = self.settings.funded_recheck_seconds
        if keeper is not None:
            retry = min(retry, keeper.times.renew_every)
        unchecked = [
            self.specs[k]
            for k in ready
            if k not in self.funded or now - self._unanswered.get(k, now) >= retry
        ]
        for key in ready:
            funded = self.funded.get(key)
            if funded is not None and funded.funded and self._may_trade(key):
                self.start(self.specs[key])
        if unchecked and not self.checking():
            self._check_in_background(unchecked, "funded-check")

    def checking(self) -> bool:
        """True while a round of funds checks runs in the background (a re-check)."""
        return self._recheck is not None and self._recheck.is_alive()

    def _check_in_background(self, specs: list[BrokerSpec], name: str) -> None:
        self._recheck = threading.Thread(
            target=self._check_and_start, args=(specs,), name=name, daemon=True
        )
        self._recheck.start()

    def _check_and_start(self, specs: list[BrokerSpec]) -> None:
        for result in self.checker.check(specs, stop=self.stopping):
            self._record(result)
            if result.funded and self._may_trade(result.account_key):
                if not self.settings.multi_broker_independent:
                    self._log_single_account(result.account_key)
                self.start(self.specs[result.account_key])

    def _record(self, result: FundedResult) -> None:
        before = self.funded.get(result.account_key)
        self.funded[result.account_key] = result
        now = self.clock.monotonic()
        if result.timed_out or result.failure_type == FailureType.NETWORK_ERROR.value:
            self._unanswered[result.account_key] = now
        else:
            self._unanswered.pop(result.account_key, None)
        with self._due_lock:
            if result.venue_retry_in_seconds is not None:
                self._venue_due[result.account_key] = now + result.venue_retry_in_seconds
            else:
                self._venue_due.pop(result.account_key, None)
        took = round(result.seconds, 2)  # the whole check: client, metadata, balance
        if result.parked:
            if before is None or not before.parked:  # once, not at every probe of the outage
                self.log.info(
                    "funded_check_waits",
                    account=result.account_key,
                    reason=result.error,
                    retry_in_s=round(result.venue_retry_in_seconds or 0.0, 1),
                )
        elif result.error:
            self.log.warning(
                "funded_check_failed", account=result.account_key, error=result.error, seconds=took
            )
        else:
            self.log.info(
                "funded_check",
                account=result.account_key,
                funded=result.funded,
                balance_usd=round(result.balance_usd or 0.0, 2),
                min_usd=self.settings.min_balance_usd,
                seconds=took,
            )
        self.changed()

    def _may_trade(self, key: str) -> bool:
        if key in self.workers or self.stopping.is_set() or not self.leases.may_trade(key):
            return False
        if self.settings.multi_broker_independent:
            return True
        # Single-account mode: the first funded account (of NIJA_PRIMARY_BROKER, if set).
        primary = self.settings.primary_broker
        return not self.workers and (primary is None or self.specs[key].account.broker == primary)

    def _log_single_account(self, key: str) -> None:
        primary = self.settings.primary_broker
        which = f"NIJA_PRIMARY_BROKER={primary}" if primary else "NIJA_PRIMARY_BROKER not set"
        reason = f"the first funded {primary + ' ' if primary else ''}account to answer ({which})"
        self.log.info("single_account_chosen", account=key, reason=reason)
