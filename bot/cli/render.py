"""Rows and text for the check commands: plain-dict rows, aligned tables, small formats.

Pure functions: the rows (plain dicts, which ``bot.cli.commands`` prints as JSON) from what the
commands read, and the text from those rows, so the table and the JSON always agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bot.config.settings import AccountConfigError
from bot.daemon.funded import FundedResult
from bot.daemon.worker import ThreadState
from bot.store.writer import AccountReader, StoredOrderStatus

# Longest cell before it is cut (an error message can be long; the JSON keeps it whole).
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
            usd(a["balance_usd"]),
            a["funded"],
            f"{a['seconds']:.1f} s" if a["seconds"] is not None else None,
            a["error"],
        )
        for a in report["accounts"]
    ]
    head = [mode_line(report["mode"], report.get("demo", False))]
    head.append(
        f"Funded threshold {usd(report['min_balance_usd'])}, call timeout "
        f"{report['timeout_seconds']:g} s"
    )
    parts = ["\n".join(head)]
    if rows:
        headers = ("ACCOUNT", "CREDENTIALS", "CONNECTION", "BALANCE", "FUNDED", "TIME", "ERROR")
        parts.append(table(headers, rows))
    if report.get("note"):
        parts.append(report["note"])
    parts.append(f"isolation_guarantee: {report['isolation_guarantee']}")
    parts.append(footer(report))
    return "\n\n".join(parts) + "\n"


def render_independent_status(report: Mapping[str, Any]) -> str:
    """The check_independent_broker_status table."""
    rows = [
        (
            a["account"],
            a["funded"],
            usd(a["balance_usd"]),
            a["ready"],
            a["thread"],
            a["health"],
            a["circuit"],
            a["cycles"],
            _ago(a["last_cycle_age_seconds"]),
            a["last_error"],
        )
        for a in report["accounts"]
    ]
    head = [mode_line(report["mode"], report["demo"]), report["daemon"]["summary"]]
    parts = ["\n".join(head)]
    if rows:
        headers = (
            "ACCOUNT",
            "FUNDED",
            "BALANCE",
            "READY",
            "THREAD",
            "HEALTH",
            "CIRCUIT",
            "CYCLES",
            "LAST CYCLE",
            "LAST ERROR",
        )
        parts.append(table(headers, rows))
    parts.append(f"isolation_guarantee: {report['isolation_guarantee']}")
    parts.append(footer(report))
    return "\n\n".join(parts) + "\n"


def render_active_trading(report: Mapping[str, Any]) -> str:
    """The check_active_trading_per_broker listing: per broker, per account, positions and orders."""
    parts = [mode_line(report["mode"], report.get("demo", False)) + f"  (store: {report['db']})"]
    if report.get("note"):
        parts.append(report["note"])
    for broker in report["brokers"]:
        lines = [f"== {broker['broker']} =="]
        for acct in broker["accounts"]:
            lines.append(
                f"{acct['account']}: {len(acct['open_positions'])} open position(s), "
                f"{len(acct['orders_today'])} order(s) today (UTC)"
            )
            if acct["open_positions"]:
                pos_rows = [
                    (p["symbol"], f"{p['quantity']:g}", p["entry_price"], p["stop"], p["target"])
                    for p in acct["open_positions"]
                ]
                lines.append(indent(table(("SYMBOL", "QTY", "ENTRY", "STOP", "TARGET"), pos_rows)))
                lines += [
                    f"    exit blocked: {p['symbol']} ({cell(p['exit_blocked'])})"
                    for p in acct["open_positions"]
                    if p.get("exit_blocked")
                ]
            if acct.get("dust"):
                held = ", ".join(f"{q:g} {a}" for a, q in sorted(acct["dust"].items()))
                lines.append(f"    dust (too small to trade, never sent): {held}")
            if acct["orders_today"]:
                order_rows = [
                    (
                        o["time"],
                        o["client_order_id"],
                        o["symbol"],
                        o["side"],
                        o["purpose"],
                        o["status"],
                        o["filled"],
                    )
                    for o in acct["orders_today"]
                ]
                headers = (
                    "TIME (UTC)",
                    "CLIENT ID",
                    "SYMBOL",
                    "SIDE",
                    "PURPOSE",
                    "STATUS",
                    "FILLED",
                )
                lines.append(indent(table(headers, order_rows)))
        parts.append("\n".join(lines))
    parts.append(footer(report))
    return "\n\n".join(parts) + "\n"


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
            "balance_usd": r.balance_usd,
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
            "balance_usd": None,
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
                "balance_usd": a.get("balance_usd"),
                "ready": bool(ready),
                "thread": a.get("thread"),
                "health": a.get("health"),
                "circuit": a.get("circuit"),
                "cycles": a.get("cycles", 0),
                "last_cycle_at": a.get("last_cycle_at"),
                "last_cycle_age_seconds": None if last is None else round(now - last, 1),
                "last_error": a.get("last_error"),
            }
        )
    return rows


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
                "balance_usd": r.balance_usd,
                "ready": r.funded and circuit == "closed",
                "thread": ThreadState.NOT_STARTED,
                "health": m.get("status", "healthy"),
                "circuit": circuit,
                "cycles": 0,
                "last_cycle_at": None,
                "last_cycle_age_seconds": None,
                "last_error": r.error or m.get("last_error"),
            }
        )
    return rows


def account_attention(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Why each account needs attention: not funded, not healthy, thread stalled or dead."""
    reasons = []
    for a in rows:
        key = a["account"]
        if not a["funded"]:
            reasons.append(f"{key}: not funded")
        if a["health"] != "healthy":
            reasons.append(f"{key}: health {a['health']} ({a['last_error'] or 'no error text'})")
        if a["thread"] in (ThreadState.STALLED, ThreadState.DEAD):
            reasons.append(f"{key}: thread {a['thread']}")
    return reasons


def _clock_time(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")


def trading_account(
    reader: AccountReader, key: str, since: float
) -> tuple[dict[str, Any], list[str]]:
    """One account's open positions and today's orders, and its unresolved orders as reasons."""
    positions = [
        {
            "symbol": p.symbol,
            "quantity": p.quantity,
            "entry_price": p.entry_price,
            "stop": p.stop,
            "target": p.target,
            "opened_at": p.opened_at,
            "external": p.external,
            "exit_blocked": p.exit_blocked,
        }
        for p in reader.open_positions()
    ]
    orders = [
        {
            "client_order_id": o.client_order_id,
            "time": _clock_time(o.created_at),
            "created_at": o.created_at,
            "symbol": o.symbol,
            "side": o.side,
            "purpose": o.purpose,
            "status": o.status,
            "amount": o.amount,
            "filled": o.filled,
        }
        for o in reader.orders_since(since)
    ]
    unknown = reader.orders_with_status(StoredOrderStatus.UNKNOWN)
    reasons = [f"{key}: order {o.client_order_id} ({o.symbol}) left unknown" for o in unknown]
    reasons += [
        f"{key}: exit of {p['symbol']} blocked ({p['exit_blocked']})"
        for p in positions
        if p["exit_blocked"]
    ]
    dust = {d.asset: d.quantity for d in reader.dust()}
    account = {"account": key, "open_positions": positions, "orders_today": orders, "dust": dust}
    return account, reasons
