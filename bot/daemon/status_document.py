"""The status.json document (schema in design.md): the daemon's, and each account's entry.

An account's entry is built from what the daemon knows of it: its spec, its isolation
health, its funded check, its worker's last snapshot, its pause, overrides and lease. Keys
keep their meaning; new ones are added.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from bot.daemon.funded import FundedResult, funds_check, funds_unknown_reason
from bot.daemon.wiring import interval_for
from bot.daemon.worker import ThreadState, WorkerSnapshot
from bot.engine.cycle import CycleResult
from bot.model import BrokerSpec

if TYPE_CHECKING:
    from bot.daemon.supervisor import IndependentBrokerTrader


def account_entry(
    spec: BrokerSpec,
    health: dict[str, Any],
    funded: FundedResult | None,
    snap: WorkerSnapshot | None,
    *,
    live: bool,
    interval_seconds: float,
    venue_state: str | None = None,
    paused: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
    overrides_error: str | None = None,
    lease: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One account's entry; ``snap`` is None before its thread ever ran; ``paused`` says
    since when and by whom an operator paused its entries (None: not paused);
    ``overrides``: its per-account overrides in force (None: the global settings), and
    ``overrides_error`` why they could not be applied (its entries are held meanwhile);
    ``lease``: this node's lease of it (``bot.daemon.leasing``; None without leases)."""
    return {
        "account_type": spec.account.account_type,
        "account_id": spec.account.account_id,
        "broker": spec.account.broker,
        "funded": bool(funded and funded.funded),
        # Whether "funded" is an answer: a check its venue parked, or that timed out or
        # failed, leaves the funds unknown ("funded" false), never "not funded".
        "funds_check": funds_check(funded).value,
        "funds_check_reason": funds_unknown_reason(funded),
        "balance_usd": equity(funded, snap),
        # Why balance_usd is null once cycles run (else null).
        "balance_unknown_reason": snap.equity_unknown_reason if snap else None,
        "thread": snap.thread if snap else ThreadState.NOT_STARTED,
        "health": health.get("status"),
        "circuit": health.get("circuit_state"),
        "cycles": snap.cycles if snap else 0,
        "last_cycle_at": snap.last_cycle_at if snap else None,
        "last_cycle_ms": snap.last_cycle_ms if snap else None,
        "last_error": (snap.last_error if snap else None)
        or health.get("last_error")
        or (funded.error if funded else None),
        "open_positions": snap.open_positions if snap else 0,
        "next_cycle_at": snap.next_cycle_at if snap else None,
        "interval_seconds": snap.interval_seconds if snap else interval_seconds,
        "restarts": snap.restarts if snap else 0,
        "retry_in_seconds": health.get("retry_in_seconds"),
        "consecutive_failures": health.get("consecutive_failures"),
        "failure_breakdown": health.get("failure_breakdown", {}),
        # balance_usd is the trading equity when known: in paper mode the paper wallet's.
        # These two say which is which, and marks value open positions (the checks).
        "venue_balance_usd": venue_balance(funded, snap, live=live),
        "paper_equity_usd": None if live or snap is None else snap.equity_usd,
        "marks": snap.marks if snap else {},
        "marks_at": snap.marks_at if snap else None,
        # Venues as they really are: remainders too small to trade, exits the venue keeps
        # refusing, orders whose outcome the venue has not told.
        "dust": snap.dust if snap else {},
        "exit_blocked": snap.exit_blocked if snap else {},
        "orders_unknown": snap.orders_unknown if snap else [],
        # Its venue's state (status.json's "venues" has the reason): up, down, cancel_only
        # or post_only.
        "venue_state": venue_state,
        "paused": paused,
        "overrides": overrides,
        "overrides_error": overrides_error,
        # Several nodes: whether this node holds its lease, at which epoch (None: SQLite).
        "lease": lease,
    }


def daemon_document(sup: IndependentBrokerTrader) -> dict[str, Any]:
    """The whole status.json document of a running daemon (schema in design.md)."""
    health = sup.isolation.get_all_account_statuses()
    accounts = {}
    for key, spec in sup.specs.items():
        worker = sup.workers.get(key)
        accounts[key] = account_entry(
            spec,
            health.get(key, {}),
            sup.funded.get(key),
            worker.snapshot() if worker else None,
            live=sup.settings.live,
            interval_seconds=interval_for(sup.settings, spec),
            venue_state=sup.venues.state_of(spec.account.broker),
            paused=sup.operator.pause_document(key),
            overrides=sup.tunings.account_document(key),
            overrides_error=sup.tunings.account_error(key),
            lease=sup.leases.document(key),
        )
    return {
        "updated_at": sup.clock.utc_now().isoformat(),
        "pid": os.getpid(),
        "mode": sup.settings.mode,
        "demo": sup.demo,
        "trading_clock": trading_clock(sup),
        "entries_held": sup.global_cap.held,  # why no account opens positions now
        "node_id": sup.leases.node_id,  # several nodes: this node's name (else None)
        "accounts": accounts,
        "venues": sup.venues.snapshot(),
        "config_errors": [{"account": e.account, "error": e.message} for e in sup.config_errors],
        "overrides_file": sup.tunings.file_document(),
        "isolation_report": sup.isolation.get_isolation_report(health),  # the same reading
    }


def trading_clock(sup: IndependentBrokerTrader) -> dict[str, Any] | None:
    """The clock the accounts trade and record on, when it is not the system's (the demo's
    runs faster): its time as this document is written, and how many seconds it counts in
    one (the checks' P&L days follow it). None for every real daemon."""
    clock = sup.trading_clock
    if clock is sup.clock:
        return None
    return {"now": clock.utc_now().isoformat(), "speed": getattr(clock, "speed", 1.0)}


def equity(funded: FundedResult | None, snap: WorkerSnapshot | None) -> float | None:
    """The account's trading equity: its last cycle's once a cycle ended (None when that
    cycle read no balance: its venue parked, its circuit open, a holding's price not to be
    had; unknown, never the funded check's older figure shown as today's), before that the
    funded check's answer."""
    if snap is not None and snap.last_cycle_ms is not None:  # a cycle's result is there
        return snap.equity_usd
    return funded.balance_usd if funded else None


def venue_balance(
    funded: FundedResult | None, snap: WorkerSnapshot | None, *, live: bool
) -> float | None:
    """What the account holds at its venue: in live mode its trading equity (``equity``),
    else the funded check's answer (in paper mode the trader's equity is the paper wallet's)."""
    return equity(funded, snap) if live else (funded.balance_usd if funded else None)


def log_summary(log: Any, status: dict[str, Any], mode: str) -> None:
    """The periodic status summary of a status document: one line, then one per account."""
    report = status["isolation_report"]
    log.info(
        "status_summary",
        mode=mode,
        accounts=len(status["accounts"]),
        trading=sum(1 for a in status["accounts"].values() if a["thread"] == ThreadState.RUNNING),
        healthy=report["healthy_accounts"],
        quarantined=report["quarantined_accounts"],
        failing=report["failing_accounts"],
        isolation=report["isolation_guarantee"],
    )
    for name, venue in status.get("venues", {}).items():
        log.info("status_venue", venue=name, state=venue["state"], reason=venue["reason"])
    for key, acct in status["accounts"].items():
        log.info(
            "status_account",
            account=key,
            funded=acct["funded"],
            funds_check=acct["funds_check"],
            thread=acct["thread"],
            health=acct["health"],
            circuit=acct["circuit"],
            cycles=acct["cycles"],
            positions=acct["open_positions"],
            venue_state=acct["venue_state"],
            last_error=acct["last_error"],
        )


def log_cycle(log: Any, key: str, result: CycleResult) -> None:
    """A cycle's one log line: a warning when a failure ended it, else info."""
    line = log.warning if result.error else log.info
    line(
        "cycle",
        account=key,
        ok=result.ok,
        ms=round(result.duration_ms, 1),
        calls=result.broker_calls,
        orders=result.orders_placed,
        positions=result.positions_open,
        equity_usd=None if result.equity_usd is None else round(result.equity_usd, 2),
        errors=result.errors or None,
        blocked=result.blocked_reason,
        error=result.error,
        # Only when the cycle took no entry: a line with an entry has nothing to explain.
        **({"no_signal": result.no_signal} if result.no_signal else {}),
    )
