"""Rows for the check commands: plain dicts from what the commands read (status.json, a
live funded check, the isolation metrics), printed as JSON or as ``bot.cli.render``'s tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bot.config.settings import AccountConfigError
from bot.daemon.funded import FundedResult, FundsCheck, funds_check, funds_unknown_reason
from bot.daemon.worker import ThreadState

# The FUNDED cell of an account whose funds check has no answer: its funds are unknown.
FUNDS_UNKNOWN: dict[str, str] = {
    FundsCheck.WAITS: "waits",  # for its venue (down, or its resume not due)
    FundsCheck.NO_ANSWER: "no answer",  # timed out
    FundsCheck.FAILED: "check failed",
    FundsCheck.NOT_CHECKED: "not checked",
}


def timestamp(iso: Any) -> float | None:
    """Epoch seconds of an ISO-8601 time (naive means UTC; a number is taken as is), or None."""
    if isinstance(iso, int | float) and not isinstance(iso, bool):
        return float(iso)
    if not isinstance(iso, str):
        return None
    try:
        parsed = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def connection(result: FundedResult) -> str:
    """``ok``, ``timeout``, or the failure type of a balance call."""
    if result.balance_usd is not None:
        return "ok"
    if (result.error or "").startswith("TimeoutError: no balance answer"):
        return "timeout"
    return result.failure_type or "failed"


def broker_rows(
    results: Sequence[FundedResult], errors: Sequence[AccountConfigError]
) -> list[dict[str, Any]]:
    """One row per checked account, then one per account whose credentials are incomplete."""
    rows = [
        {
            "account": r.account_key,
            "credentials": "present",
            "connection": connection(r),
            "venue_balance_usd": r.balance_usd,
            "funded": r.funded,
            "seconds": round(r.seconds, 3),
            "error": r.error,
        }
        for r in results
    ]
    rows += [
        {
            "account": err.account,
            "credentials": f"incomplete: {', '.join(err.variables)}",
            "connection": "not tried",
            "venue_balance_usd": None,
            "funded": False,
            "seconds": None,
            "error": err.message,
        }
        for err in errors
    ]
    return rows


def status_rows(data: Mapping[str, Any], now: float) -> list[dict[str, Any]]:
    """One row per account of the daemon's status.json, by account key."""
    rows = []
    for key, a in sorted(data.get("accounts", {}).items()):
        last = timestamp(a.get("last_cycle_at"))
        ready = a.get("ready")
        if ready is None:  # older daemons: ready = funded, thread running, circuit closed
            ready = bool(a.get("funded")) and a.get("thread") == ThreadState.RUNNING
            ready = ready and a.get("circuit") == "closed"
        rows.append(
            {
                "account": key,
                "funded": bool(a.get("funded")),
                # Whether "funded" is an answer (a daemon older than the key: it is).
                "funds_check": a.get("funds_check", FundsCheck.ANSWERED.value),
                "funds_check_reason": a.get("funds_check_reason"),
                **equity(a, str(data.get("mode"))),
                # Why the balance is unknown once cycles run (a daemon older than the key: None).
                "balance_unknown_reason": a.get("balance_unknown_reason"),
                "ready": bool(ready),
                "thread": a.get("thread"),
                "health": a.get("health"),
                "circuit": a.get("circuit"),
                "cycles": a.get("cycles", 0),
                "last_cycle_at": a.get("last_cycle_at"),
                "last_cycle_age_seconds": None if last is None else round(now - last, 1),
                "venue_state": a.get("venue_state"),
                "last_error": a.get("last_error"),
                # Several nodes: False when another node holds its lease (its checks speak for it).
                "lease_held": (a.get("lease") or {}).get("held"),
            }
        )
    return rows


def venue_rows(data: Mapping[str, Any], now: float) -> list[dict[str, Any]]:
    """One row per venue of the daemon's status.json (none from a daemon older than them)."""
    rows = []
    for name, v in sorted((data.get("venues") or {}).items()):
        since = timestamp(v.get("since"))
        probe = v.get("last_probe")
        if isinstance(probe, Mapping):
            at = timestamp(probe.get("at"))
            probe = {**probe, "age_seconds": None if at is None else round(now - at, 1)}
        rows.append(
            {
                "venue": name,
                "state": v.get("state"),
                "since": v.get("since"),
                "since_age_seconds": None if since is None else round(now - since, 1),
                "reason": v.get("reason"),
                "last_probe": probe if isinstance(probe, Mapping) else None,
                "public_requests_per_min": v.get("public_requests_per_min"),
            }
        )
    return rows


def venue_attention(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each venue that is not up, and why (its accounts are parked or restricted)."""
    return [f"venue {v['venue']} {v['state']}: {v['reason']}" for v in rows if v["state"] != "up"]


def equity(entry: Mapping[str, Any], mode: str) -> dict[str, float | None]:
    """An account's venue balance and (in paper mode) paper equity from its status.json entry.

    A daemon older than these keys wrote ``balance_usd`` alone: in live mode that is the
    venue's; in paper mode it may be either, so it is not shown as one of them.
    """
    live_balance = entry.get("balance_usd") if mode == "live" else None
    return {
        "venue_balance_usd": entry.get("venue_balance_usd", live_balance),
        "paper_equity_usd": entry.get("paper_equity_usd"),
    }


def live_rows(
    results: Sequence[FundedResult], metrics: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Rows from a live funded check and the isolation metrics it left (no thread yet)."""
    rows = []
    for r in results:
        m = metrics.get(r.account_key, {})
        circuit = m.get("circuit_state", "closed")
        rows.append(
            {
                "account": r.account_key,
                "funded": r.funded,
                "funds_check": funds_check(r).value,
                "funds_check_reason": funds_unknown_reason(r),
                "venue_balance_usd": r.balance_usd,  # the live check asks the venue
                "paper_equity_usd": None,
                "ready": r.funded and circuit == "closed",
                "thread": ThreadState.NOT_STARTED,
                "health": m.get("status", "healthy"),
                "circuit": circuit,
                "cycles": 0,
                "last_cycle_at": None,
                "last_cycle_age_seconds": None,
                "venue_state": None,  # only a running daemon watches its venues
                "last_error": r.error or m.get("last_error"),
            }
        )
    return rows


def account_attention(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Why each account needs attention: not funded (or its funds unknown: the check has no
    answer), not healthy, thread stalled or dead."""
    reasons = []
    for a in rows:
        key = a["account"]
        if a.get("lease_held") is False:
            continue  # another node's to trade: the cluster view says whether any node holds it
        unknown = FUNDS_UNKNOWN.get(a["funds_check"])
        if unknown is not None:  # never "not funded": the check's own words, else its state
            reasons.append(f"{key}: funds unknown: {a.get('funds_check_reason') or unknown}")
        elif not a["funded"]:
            reasons.append(f"{key}: not funded")
        if a["health"] != "healthy":
            reasons.append(f"{key}: health {a['health']} ({a['last_error'] or 'no error text'})")
        if a["thread"] in (ThreadState.STALLED, ThreadState.DEAD):
            reasons.append(f"{key}: thread {a['thread']}")
    return reasons
