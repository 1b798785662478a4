"""Liveness and readiness of the running daemon, for ``/healthz``, ``/readyz`` and the heartbeat.

* **Live**: the supervisor's loop (the watchdog, which also restarts dead threads and
  performs operator requests) ran within ``LIVENESS_SECONDS``; before its first run, the
  daemon is live while its start-up (the concurrent funds check) has time left.
* **Ready**: start-up is done and every account that trades has reconciled with its venue.
  An account whose circuit is open cannot reconcile until it closes: it is named, and does
  not hold readiness back (one broken account must not make the whole daemon "unready").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.daemon.funded import DEADLINE_GRACE_SECONDS
from bot.daemon.worker import ThreadState

if TYPE_CHECKING:
    from bot.daemon.supervisor import IndependentBrokerTrader

__all__ = ["LIVENESS_SECONDS", "Probe", "liveness", "readiness"]

# The watchdog ticks every second: ten missed ticks is a loop that is stuck, not slow.
LIVENESS_SECONDS = 10.0
_OPEN_CIRCUIT = frozenset({"failing", "quarantined"})


@dataclass(frozen=True)
class Probe:
    """A probe's answer: ok, why, and details for the JSON body."""

    ok: bool
    reason: str
    details: dict[str, Any] = field(default_factory=dict)


def liveness(sup: IndependentBrokerTrader, created_at: float) -> Probe:
    """Did the supervisor loop run within ``LIVENESS_SECONDS``? (``created_at``: when the
    daemon began starting, on the supervisor's monotonic clock.)"""
    now = sup.clock.monotonic()
    if sup.last_tick is None:
        grace = sup.settings.call_timeout_seconds + DEADLINE_GRACE_SECONDS + LIVENESS_SECONDS
        waited = now - created_at
        if waited <= grace:
            return Probe(True, "starting", {"starting_for_s": round(waited, 1)})
        return Probe(False, f"start-up has run for {waited:.0f}s", {"starting_for_s": waited})
    age = now - sup.last_tick
    details = {"last_loop_age_s": round(age, 1), "limit_s": LIVENESS_SECONDS}
    if age > LIVENESS_SECONDS:
        return Probe(False, f"the supervisor loop last ran {age:.0f}s ago", details)
    return Probe(True, "alive", details)


def readiness(sup: IndependentBrokerTrader) -> Probe:
    """Start-up done, and every trading account reconciled (open circuits named apart)."""
    if sup.started_at is None:
        return Probe(False, "starting: checking every account's funds")
    health = sup.isolation.get_all_account_statuses()
    waiting, blocked = [], []
    for key, worker in list(sup.workers.items()):
        if worker.reconciled or worker.state == ThreadState.FINISHED:
            continue
        if health.get(key, {}).get("status") in _OPEN_CIRCUIT:
            blocked.append(key)
        else:
            waiting.append(key)
    details = {
        "trading": len(sup.workers),
        # Counts only: this probe needs no token, and account keys are the operator's.
        "reconciling": len(waiting),
        "circuit_open": len(blocked),
    }
    if waiting:
        return Probe(False, f"{len(waiting)} account(s) still reconciling", details)
    return Probe(True, "ready", details)
