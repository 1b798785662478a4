"""Which log lines become which alerts, and what each says (docs/OPERATIONS.md's table)."""

from __future__ import annotations

import pytest

from bot.alerts.events import DAEMON, AlertKind, Severity
from bot.alerts.sources import SOURCE_EVENTS, Found, alert_for

BOB = "user/bob/KRAKEN"
HEALTH = "INDEPENDENT_health_changed"


def found(event: str, **fields) -> Found | None:
    return alert_for({"event": event, **fields})


@pytest.mark.parametrize(
    ("line", "kind", "subject", "words"),
    [
        (
            {"event": "nija_starting", "mode": "PAPER", "accounts": 3},
            AlertKind.STARTED, DAEMON, "NIJA started: PAPER, 3 account(s)",
        ),
        (
            {"event": "stopped", "accounts": 3, "still_in_broker_calls": 1},
            AlertKind.STOPPED, DAEMON, "1 still in a broker call",
        ),
        (
            {"event": "startup_failed", "error": "the HTTP API cannot listen on 127.0.0.1:8780"},
            AlertKind.START_FAILED, DAEMON, "NIJA cannot start: the HTTP API cannot listen",
        ),
        (
            {"event": "INDEPENDENT_health_changed", "account": BOB, "old": "healthy",
             "new": "failing", "reason": "authentication_error: retrying will not fix it",
             "error": "AuthRejected: EAPI:Invalid key"},
            AlertKind.ACCOUNT_FAILING, BOB,
            "is failing: authentication_error: retrying will not fix it; last error: "
            "AuthRejected: EAPI:Invalid key. Fix it, then run: "
            "python3 nija_ctl.py reset user/bob/KRAKEN",
        ),
        (
            {"event": "INDEPENDENT_health_changed", "account": BOB, "old": "degraded",
             "new": "quarantined", "reason": "5 consecutive failures; circuit open for 300s"},
            AlertKind.ACCOUNT_QUARANTINED, BOB, "quarantined (no trading until",
        ),
        (
            {"event": "INDEPENDENT_health_changed", "account": BOB, "old": "recovering",
             "new": "healthy", "reason": "recovered: circuit closed"},
            AlertKind.ACCOUNT_RECOVERED, BOB, "recovered (recovering -> healthy)",
        ),
        (
            {"event": "INDEPENDENT_thread_died", "account": BOB, "error": "RuntimeError: boom",
             "restart_in_s": 2.0},
            AlertKind.THREAD_DEAD, BOB, "thread died (RuntimeError: boom); restarting in 2.0 s",
        ),
        (
            {"event": "INDEPENDENT_thread_restarted", "account": BOB, "restarts": 2},
            AlertKind.THREAD_RESTARTED, BOB, "restarted (2 restart(s) so far)",
        ),
        (
            {"event": "venue_down", "venue": "KRAKEN", "state": "down", "was": "up",
             "reason": "3 of 4 accounts failed"},
            AlertKind.VENUE_DOWN, "KRAKEN", "venue KRAKEN is down (3 of 4 accounts failed)",
        ),
        (
            {"event": "venue_up", "venue": "KRAKEN", "state": "up", "was": "down",
             "reason": "probe answered"},
            AlertKind.VENUE_UP, "KRAKEN", "venue KRAKEN is up again",
        ),
        (
            {"event": "daily_loss_halt", "account": BOB, "day": "2026-01-01", "loss_pct": 5.2,
             "limit_pct": 5.0, "equity_usd": 9480.0, "day_start_equity_usd": 10000.0},
            AlertKind.DAILY_LOSS_HALT, BOB, "down 5.2 % from $10000.0 at the start of the UTC day",
        ),
        (
            {"event": "order_absence_unprovable", "account": BOB, "client_order_id": "nija-1",
             "symbol": "BTC/USD", "side": "buy", "quantity": 0.01, "age_s": 90000},
            AlertKind.ORDER_UNKNOWN, BOB, "order nija-1 (buy 0.01 BTC/USD) is left unknown",
        ),
        (
            {"event": "exit_blocked", "account": BOB, "symbol": "ETH/USD", "attempts": 5,
             "reason": "rejected: lot size"},
            AlertKind.EXIT_BLOCKED, BOB, "exits of ETH/USD blocked after 5 refusals",
        ),
        (
            {"event": "reconciled", "account": BOB, "closed": ["BTC/USD"], "adopted": ["SOL/USD"],
             "resized": ["ETH/USD"]},
            AlertKind.RECONCILE_MISMATCH, BOB,
            "closed BTC/USD (in NIJA's records, not held at the venue); adopted SOL/USD "
            "(held at the venue, unknown to NIJA)",
        ),
        (
            {"event": "control_request", "action": "pause", "account": BOB, "outcome": "done",
             "message": "paused: no new entries", "actor": "http:token-1a2b3c4d"},
            AlertKind.OPERATOR_PAUSE, BOB,
            "user/bob/KRAKEN paused by an operator (http:token-1a2b3c4d): paused: no new entries",
        ),
        (
            {"event": "control_request", "action": "reset", "account": BOB, "outcome": "done",
             "message": "failing -> healthy", "actor": "ctl:pid-42"},
            AlertKind.OPERATOR_RESET, BOB, "reset by an operator (ctl:pid-42): failing -> healthy",
        ),
        (
            {"event": "control_request", "action": "reload", "account": BOB, "outcome": "done",
             "message": "", "actor": "ctl:pid-42"},
            AlertKind.OPERATOR_RELOAD, BOB, "reloaded by an operator (ctl:pid-42)",
        ),
        (
            {"event": "control_request", "action": "resume", "account": BOB, "outcome": "done",
             "message": "resumed", "actor": "ctl:pid-42"},
            AlertKind.OPERATOR_RESUME, BOB, "resumed by an operator",
        ),
        (
            {"event": "lease_taken_over", "account": BOB, "epoch": 4,
             "previous_owner": "vps1-1", "trades_in_s": 5.0},
            AlertKind.ACCOUNT_TAKEN_OVER, BOB,
            "user/bob/KRAKEN taken over from node vps1-1, which stopped renewing its lease "
            "(epoch 4)",
        ),
        (
            {"event": "lease_lost", "account": BOB, "epoch": 3, "kind": "lost",
             "owner_now": "vps2-1", "owner_epoch": 4},
            AlertKind.LEASE_LOST, BOB,
            "this node lost its lease (epoch 3, lost); now held by node vps2-1",
        ),
        (
            {"event": "node_superseded", "node": "vps1-1", "leases": 20},
            AlertKind.NODE_SUPERSEDED, DAEMON,
            "node vps1-1: another process took this node's name (NIJA_NODE_ID): this one "
            "stopped trading its 20 account(s)",
        ),
    ],
)  # fmt: skip
def test_each_source_line_becomes_its_alert(line, kind, subject, words):
    got = alert_for(line)
    assert got is not None
    assert (got.kind, got.subject) == (kind, subject)
    assert words in got.text
    assert line["event"] in SOURCE_EVENTS


@pytest.mark.parametrize(
    "line",
    [
        {"event": HEALTH, "account": BOB, "old": "healthy", "new": "degraded"},
        {"event": HEALTH, "account": BOB, "old": "degraded", "new": "healthy"},
        {"event": HEALTH, "account": BOB, "old": "quarantined", "new": "recovering"},
        {"event": "venue_up", "venue": "OKX", "state": "up", "was": "cancel_only"},
        {"event": "reconciled", "account": BOB, "closed": [], "adopted": [],
         "resized": ["BTC/USD"]},
        {"event": "reconciled", "account": BOB, "settled_orders": 0},
        {"event": "control_request", "action": "reload", "account": BOB, "outcome": "refused"},
        {"event": "control_request", "action": "?", "outcome": "bad_request"},
        {"event": "cycle", "account": BOB, "ok": False},
        {"event": "heartbeat_failed"},
        {"no_event": True},
    ],
)  # fmt: skip
def test_lines_that_call_for_no_alert(line):
    assert alert_for(line) is None


def test_repeats_of_different_orders_or_symbols_are_different_alerts():
    first = found("order_absence_unprovable", account=BOB, client_order_id="nija-1")
    second = found("order_absence_unprovable", account=BOB, client_order_id="nija-2")
    assert first is not None and second is not None and first.topic != second.topic
    blocked = found("exit_blocked", account=BOB, symbol="ETH/USD")
    assert blocked is not None and blocked.topic == "ETH/USD"


def test_a_line_missing_its_fields_still_makes_a_readable_alert():
    got = found("INDEPENDENT_thread_died")
    assert got is not None and got.text == "?: its trading thread died (?); restarting in ? s"


def test_severities():
    assert AlertKind.ACCOUNT_FAILING.severity is Severity.CRITICAL
    assert AlertKind.ORDER_UNKNOWN.severity is Severity.CRITICAL
    assert AlertKind.VENUE_DOWN.severity is Severity.WARNING
    assert AlertKind.OPERATOR_PAUSE.severity is Severity.INFO
