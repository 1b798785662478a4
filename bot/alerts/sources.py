"""Which log events become which alerts, and the words of each (docs/OPERATIONS.md's table).

The daemon already logs every event an operator must hear of, under a fixed event name (a
contract, design.md): this table maps those names, and nothing else, to alerts, so the
engine and the daemon need not know that alerts exist. A source reads the line's fields
(already redacted) and returns what to say, or None when the line is not alert-worthy
(a health change to ``degraded``, an operator action that was refused).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.alerts.events import DAEMON, AlertKind

__all__ = ["SOURCE_EVENTS", "Found", "alert_for"]

Fields = Mapping[str, Any]
# The health states an account comes back from when it is healthy again ("recovered"): not
# degraded, which no alert announced.
_ALERTED_STATES = frozenset({"failing", "quarantined", "recovering"})
_OPERATOR = {
    "pause": (AlertKind.OPERATOR_PAUSE, "paused"),
    "resume": (AlertKind.OPERATOR_RESUME, "resumed"),
    "reset": (AlertKind.OPERATOR_RESET, "reset"),
    "reload": (AlertKind.OPERATOR_RELOAD, "reloaded"),
}


@dataclass(frozen=True, slots=True)
class Found:
    """What one log line says as an alert."""

    kind: AlertKind
    subject: str
    text: str
    topic: str = ""


def _s(fields: Fields, name: str, default: str = "?") -> str:
    value = fields.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return str(value)


def _account(fields: Fields) -> str:
    return _s(fields, "account")


def _started(f: Fields) -> Found:
    text = f"NIJA started: {_s(f, 'mode')}, {_s(f, 'accounts')} account(s)"
    return Found(AlertKind.STARTED, DAEMON, text)


def _stopped(f: Fields) -> Found:
    text = f"NIJA stopped ({_s(f, 'accounts', '0')} account thread(s))"
    stuck = f.get("still_in_broker_calls")
    if stuck:
        text += f"; {stuck} still in a broker call: their orders are settled at the next start"
    return Found(AlertKind.STOPPED, DAEMON, text)


def _start_failed(f: Fields) -> Found:
    return Found(AlertKind.START_FAILED, DAEMON, f"NIJA cannot start: {_s(f, 'error')}")


def _health(f: Fields) -> Found | None:
    account, new, old = _account(f), f.get("new"), f.get("old")
    why = _s(f, "reason")
    error = f"; last error: {_s(f, 'error')}" if f.get("error") else ""
    if new == "failing":
        fix = f"Fix it, then run: python3 nija_ctl.py reset {account}"
        text = f"{account} is failing: {why}{error}. {fix}"
        return Found(AlertKind.ACCOUNT_FAILING, account, text)
    if new == "quarantined":
        text = f"{account} is quarantined (no trading until its circuit's wait ends): {why}{error}"
        return Found(AlertKind.ACCOUNT_QUARANTINED, account, text)
    if new == "healthy" and old in _ALERTED_STATES:
        text = f"{account} recovered ({old} -> healthy): {why}"
        return Found(AlertKind.ACCOUNT_RECOVERED, account, text)
    return None


def _thread_died(f: Fields) -> Found:
    account = _account(f)
    text = (
        f"{account}: its trading thread died ({_s(f, 'error')}); restarting in "
        f"{_s(f, 'restart_in_s')} s"
    )
    return Found(AlertKind.THREAD_DEAD, account, text)


def _thread_restarted(f: Fields) -> Found:
    account = _account(f)
    text = f"{account}: its trading thread was restarted ({_s(f, 'restarts')} restart(s) so far)"
    return Found(AlertKind.THREAD_RESTARTED, account, text)


def _venue_down(f: Fields) -> Found:
    venue = _s(f, "venue")
    text = f"venue {venue} is down ({_s(f, 'reason')}): its accounts send nothing until it is back"
    return Found(AlertKind.VENUE_DOWN, venue, text)


def _venue_up(f: Fields) -> Found | None:
    if f.get("was") != "down":
        return None  # the end of a restriction (cancel-only, post-only): no alert announced it
    venue = _s(f, "venue")
    text = f"venue {venue} is up again ({_s(f, 'reason')}): its accounts resume"
    return Found(AlertKind.VENUE_UP, venue, text)


def _daily_loss(f: Fields) -> Found:
    account = _account(f)
    text = (
        f"{account}: daily loss limit reached: down {_s(f, 'loss_pct')} % from "
        f"${_s(f, 'day_start_equity_usd')} at the start of the UTC day (limit "
        f"{_s(f, 'limit_pct')} %): no new entries until the next UTC day; exits go on"
    )
    return Found(AlertKind.DAILY_LOSS_HALT, account, text, _s(f, "day", ""))


def _order_unknown(f: Fields) -> Found:
    account, order = _account(f), _s(f, "client_order_id")
    text = (
        f"{account}: order {order} ({_s(f, 'side')} {_s(f, 'quantity')} {_s(f, 'symbol')}) is "
        f"left unknown: the venue's lookups can no longer prove it absent; nothing is re-sent: "
        f"check it at the venue by hand"
    )
    return Found(AlertKind.ORDER_UNKNOWN, account, text, order)


def _exit_blocked(f: Fields) -> Found:
    account, symbol = _account(f), _s(f, "symbol")
    text = (
        f"{account}: exits of {symbol} blocked after {_s(f, 'attempts')} refusals "
        f"({_s(f, 'reason')}): the position is no longer protected; see to it at the venue, "
        f"then restart"
    )
    return Found(AlertKind.EXIT_BLOCKED, account, text, symbol)


def _reconciled(f: Fields) -> Found | None:
    # A resize alone is the venue's fee taken in the coin, or a rounding remainder: routine.
    closed, adopted = f.get("closed"), f.get("adopted")
    if not closed and not adopted:
        return None
    account = _account(f)
    parts = []
    if closed:
        parts.append(f"closed {_s(f, 'closed')} (in NIJA's records, not held at the venue)")
    if adopted:
        parts.append(f"adopted {_s(f, 'adopted')} (held at the venue, unknown to NIJA)")
    text = f"{account}: the venue and NIJA's records disagreed at reconciliation: " + "; ".join(
        parts
    )
    return Found(AlertKind.RECONCILE_MISMATCH, account, text)


def _operator(f: Fields) -> Found | None:
    known = _OPERATOR.get(str(f.get("action")))
    if known is None or f.get("outcome") != "done":
        return None  # refused or failed: nothing changed, and the operator was told
    kind, done = known
    account = _account(f)
    text = f"{account} {done} by an operator ({_s(f, 'actor')}): {_s(f, 'message', '')}"
    return Found(kind, account, text.rstrip(": "))


def _taken_over(f: Fields) -> Found:
    account = _account(f)
    text = (
        f"{account} taken over from node {_s(f, 'previous_owner')}, which stopped renewing its "
        f"lease (epoch {_s(f, 'epoch')}): it trades here after a reconciliation"
    )
    return Found(AlertKind.ACCOUNT_TAKEN_OVER, account, text, _s(f, "epoch", ""))


def _lease_lost(f: Fields) -> Found:
    account = _account(f)
    text = (
        f"{account}: this node lost its lease (epoch {_s(f, 'epoch')}, {_s(f, 'kind')}); now "
        f"held by node {_s(f, 'owner_now')}: this node stopped trading it"
    )
    return Found(AlertKind.LEASE_LOST, account, text, _s(f, "epoch", ""))


def _superseded(f: Fields) -> Found:
    text = (
        f"node {_s(f, 'node')}: another process took this node's name (NIJA_NODE_ID): this one "
        f"stopped trading its {_s(f, 'leases')} account(s); give each node its own name"
    )
    return Found(AlertKind.NODE_SUPERSEDED, DAEMON, text)


_SOURCES: dict[str, Callable[[Fields], Found | None]] = {
    "nija_starting": _started,
    "stopped": _stopped,
    "startup_failed": _start_failed,
    "INDEPENDENT_health_changed": _health,
    "INDEPENDENT_thread_died": _thread_died,
    "INDEPENDENT_thread_restarted": _thread_restarted,
    "venue_down": _venue_down,
    "venue_up": _venue_up,
    "daily_loss_halt": _daily_loss,
    "order_absence_unprovable": _order_unknown,
    "exit_blocked": _exit_blocked,
    "reconciled": _reconciled,
    "control_request": _operator,
    "lease_taken_over": _taken_over,
    "lease_lost": _lease_lost,
    "node_superseded": _superseded,
}
# The log events that may become alerts (the tap checks a line's name against these).
SOURCE_EVENTS = frozenset(_SOURCES)


def alert_for(fields: Fields) -> Found | None:
    """The alert one log line (its structlog fields, redacted) calls for, or None."""
    source = _SOURCES.get(str(fields.get("event")))
    return None if source is None else source(fields)
