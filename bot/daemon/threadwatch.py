"""The watchdog's eye on the account threads: dead ones restarted with a growing delay,
stalled ones shown.

A thread killed by an exception is recorded against its account (a failure of the isolation
manager's, so its health shows it) and started again after 1 s, then 2 s, 4 s... up to 5
minutes; a healthy cycle resets the delay. A cycle running past its interval plus two call
timeouts is shown as stalled (and recorded once) until it ends. A worker asked to stop (the
daemon stopping, its lease handed back or lost) is left alone.
"""

from __future__ import annotations

from typing import Any

from bot.daemon.worker import AccountWorker, ThreadState
from bot.isolation.failures import FailureType
from bot.isolation.manager import AccountIsolationManager

__all__ = ["FIRST_RESTART_DELAY", "MAX_RESTART_DELAY", "ThreadWatch"]

FIRST_RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 300.0


class ThreadWatch:
    """Dead and stalled account threads, seen from the watchdog (the main thread)."""

    def __init__(
        self,
        isolation: AccountIsolationManager,
        call_timeout_seconds: float,
        *,
        once: bool,
        log: Any,
    ) -> None:
        self.isolation = isolation
        self.call_timeout_seconds = call_timeout_seconds
        self.once = once  # --once: a dead thread is not started again
        self.log = log
        self._restart_at: dict[str, float] = {}
        self._restart_delay: dict[str, float] = {}

    def healthy_cycle(self, key: str) -> None:
        """A cycle that ended well: the next death starts from the first delay again."""
        self._restart_delay.pop(key, None)

    def watch(self, worker: AccountWorker, now: float) -> None:
        """Restart the worker's dead thread when its delay is over; mark a stalled one."""
        if worker.stop_event.is_set() or worker.state == ThreadState.FINISHED:
            return
        key = worker.key
        if not worker.alive():
            if key not in self._restart_at:
                worker.state = ThreadState.DEAD
                delay = self._restart_delay.get(key, FIRST_RESTART_DELAY)
                self._restart_at[key] = now + delay
                self._restart_delay[key] = min(delay * 2, MAX_RESTART_DELAY)
                self._record(worker, RuntimeError(f"trader thread died: {worker.crash}"), "thread")
                self.log.error(
                    "INDEPENDENT_thread_died", account=key, error=worker.crash, restart_in_s=delay
                )
            elif now >= self._restart_at[key] and not self.once:
                del self._restart_at[key]
                worker.start()
                self.log.warning(
                    "INDEPENDENT_thread_restarted", account=key, restarts=worker.restarts
                )
            return
        limit = worker.interval + 2 * self.call_timeout_seconds
        busy = worker.busy_since
        if busy is not None and now - busy > limit and worker.state != ThreadState.STALLED:
            worker.state = ThreadState.STALLED
            self._record(worker, TimeoutError(f"cycle running for {now - busy:.0f}s"), "stall")
            self.log.warning("INDEPENDENT_thread_stalled", account=key, busy_s=round(now - busy))
        elif busy is None and worker.state == ThreadState.STALLED:
            worker.state = ThreadState.RUNNING

    def _record(self, worker: AccountWorker, error: Exception, operation: str) -> None:
        acct = worker.spec.account
        kind = FailureType.NETWORK_ERROR if operation == "stall" else FailureType.UNKNOWN_ERROR
        self.isolation.record_failure(
            acct.account_type, acct.account_id, acct.broker, error, kind, operation=operation
        )
