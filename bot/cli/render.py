"""Rows and text for the check commands: plain-dict rows, aligned tables, small formats.

Pure functions: the rows (plain dicts, which ``bot.cli.commands`` prints as JSON) from what the
commands read, and the text from those rows, so the table and the JSON always agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bot.config.settings import AccountConfigError
from bot.daemon.funded import FundedResult, FundsCheck, funds_check, funds_unknown_reason
from bot.daemon.worker import ThreadState

# The FUNDED cell of an account whose funds check has no answer: its funds are unknown.
_FUNDS_UNKNOWN: dict[str, str] = {
    FundsCheck.WAITS: "waits",  # for its venue (down, or its resume not due)
    FundsCheck.NO_ANSWER: "no answer",  # timed out
    FundsCheck.FAILED: "check failed",
    FundsCheck.NOT_CHECKED: "not checked",
}

# Longest cell before it is cut (an error message can be long; the JSON keeps it whole).
# The commands mask secrets in a report before rendering it, so a cut never comes first.
MAX_CELL = 60


def cell(value: Any) -> str:
    """One table cell: ``-`` for nothing, yes/no for booleans, long text shortened."""
    if value is None or value == "":
        text = "-"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    else:
        text = " ".join(str(value).split())  # no newlines inside a row
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 3] + "..."


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to their widest cell, a rule under the headers, two spaces apart."""
    cells = [[cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], len(text))

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(row) for row in cells]
    return "\n".join(out)


def usd(value: float | None) -> str | None:
    """``$1,234.50``, or None when unknown."""
    return None if value is None else f"${value:,.2f}"


def age(seconds: float | None) -> str | None:
    """A duration a person reads at a glance: ``4 s``, ``3 min``, ``2.5 h``, ``3.0 d``."""
    if seconds is None:
        return None
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _ago(seconds: float | None) -> str | None:
    return None if seconds is None else f"{age(seconds)} ago"


def mode_line(mode: str, demo: bool) -> str:
    """``Mode: PAPER``, ``Mode: LIVE`` or ``Mode: PAPER (DEMO)``; LIVE is said to be real money."""
    text = f"Mode: {mode.upper()}"
    if demo:
        text += " (DEMO: simulated accounts)"
    elif mode == "live":
        text += " (real orders)"
    return text


def footer(report: Mapping[str, Any]) -> str:
    """The closing lines: what needs attention (incomplete credentials first), or all well."""
    reasons = [
        f"{err['account']}: credentials incomplete: {err['message']}"
        for err in report.get("config_errors", [])
    ]
    reasons += report.get("attention", [])
    if not reasons:
        return "All well."
    return "\n".join(["Needs attention:", *(f"  - {reason}" for reason in reasons)])


def render_broker_status(report: Mapping[str, Any]) -> str:
    """The check_broker_status table."""
    rows = [
        (
            a["account"],
            a["credentials"],
            a["connection"],
            usd(a["venue_balance_usd"]),
            a["funded"],
            f"{a['seconds']:.1f} s" if a["seconds"] is not None else None,
            a["error"],
        )
        for a in report["accounts"]
    ]
    head = [mode_line(report["mode"], report.get("demo", False))]
    head.append(
        f"Funded threshold {usd(report['min_balance_usd'])} (of the venue balance), call timeout "
        f"{report['timeout_seconds']:g} s"
    )
    if report.get("paper_balance_usd") is not None:
        wallet = usd(report["paper_balance_usd"])
        head.append(
            f"Paper mode: each account trades a paper wallet of {wallet};"
            " VENUE BALANCE is what the account holds at the venue."
        )
    parts = ["\n".join(head)]
    if rows:
        headers = (
            "ACCOUNT",
            "CREDENTIALS",
            "CONNECTION",
            "VENUE BALANCE",
            "FUNDED",
            "TIME",
            "ERROR",
        )
        parts.append(table(headers, rows))
    if report.get("note"):
        parts.append(report["note"])
    parts.append(f"isolation_guarantee: {report['isolation_guarantee']}")
    parts.append(footer(report))
    return "\n\n".join(parts) + "\n"


def render_independent_status(report: Mapping[str, Any], sections: Sequence[str] = ()) -> str:
    """The check_independent_broker_status table (a PAPER EQUITY column in paper mode), then
    ``sections`` (the cluster's leases and nodes), before the verdict."""
    paper = report["mode"] == "paper"
    rows = [
        (
            a["account"],
            _FUNDS_UNKNOWN.get(a["funds_check"], a["funded"]),
            usd(a["venue_balance_usd"]),
            *((usd(a["paper_equity_usd"]),) if paper else ()),
            a["ready"],
            a["thread"],
            a["health"],
            a["circuit"],
            a["cycles"],
            _ago(a["last_cycle_age_seconds"]),
            a.get("venue_state"),
            a["last_error"],
        )
        for a in report["accounts"]
    ]
    head = [mode_line(report["mode"], report["demo"])]
    if paper:
        head.append(paper_note())
    head.append(report["daemon"]["summary"])
    parts = ["\n".join(head)]
    if rows:
        headers = (
            "ACCOUNT",
            "FUNDED",
            "VENUE BALANCE",
            *(("PAPER EQUITY",) if paper else ()),
            "READY",
            "THREAD",
            "HEALTH",
            "CIRCUIT",
            "CYCLES",
            "LAST CYCLE",
            "VENUE",
            "LAST ERROR",
        )
        parts.append(table(headers, rows))
    if report.get("venues"):
        parts.append(render_venues(report["venues"]))
    parts += sections
    parts.append(f"isolation_guarantee: {report['isolation_guarantee']}")
    parts.append(footer(report))
    return "\n\n".join(parts) + "\n"


def render_venues(venues: Sequence[Mapping[str, Any]]) -> str:
    """The venues table: each venue's state, since when and why, its last probe, its public
    request rate."""
    rows = []
    for v in venues:
        probe = v["last_probe"]
        probed = None
        if probe is not None:
            probed = f"{'ok' if probe['ok'] else 'failed'} {_ago(probe['age_seconds'])}"
        rows.append(
            (
                v["venue"],
                v["state"],
                _ago(v["since_age_seconds"]),
                v["reason"],
                probed,
                v["public_requests_per_min"],
            )
        )
    headers = ("VENUE", "STATE", "SINCE", "REASON", "LAST PROBE", "PUBLIC REQ/MIN")
    return table(headers, rows)


def paper_note() -> str:
    """What paper mode's two amounts are: the venue balance is real, the paper equity simulated."""
    return (
        "Paper mode: paper equity is the simulated wallet's worth, venue balance what the"
        " account holds at the venue."
    )


def indent(text: str, prefix: str = "    ") -> str:
    """Every line of ``text`` indented by ``prefix``."""
    return "\n".join(prefix + line for line in text.splitlines())


# -- rows (plain dicts: printed as JSON, or as the tables above) ------------------------


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
        unknown = _FUNDS_UNKNOWN.get(a["funds_check"])
        if unknown is not None:  # never "not funded": the check's own words, else its state
            reasons.append(f"{key}: funds unknown: {a.get('funds_check_reason') or unknown}")
        elif not a["funded"]:
            reasons.append(f"{key}: not funded")
        if a["health"] != "healthy":
            reasons.append(f"{key}: health {a['health']} ({a['last_error'] or 'no error text'})")
        if a["thread"] in (ThreadState.STALLED, ThreadState.DEAD):
            reasons.append(f"{key}: thread {a['thread']}")
    return reasons
