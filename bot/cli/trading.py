"""The report of ``check_active_trading_per_broker.py``, its rows and its text: per account,
read (read-only) from the state store, its open positions valued at the running daemon's
marks, today's orders, realized P&L and fees, and (from the daemon) its paper equity and
venue balance.

Marks come from the daemon's status.json (``marks``: the last price of each symbol the
account's last cycle priced). Nothing is guessed offline: without a running daemon a
position's mark is unknown and the text says why.

Prices are shown to 5 significant digits, never fewer than 2 decimals nor more than 8
(trailing zeros past the second decimal dropped): 61,234.50, 150.25, 1.2345, 0.51234,
0.0000123. The venues' own price steps are not known offline (neither the state store nor
the venue registry holds them), and this shows at least every digit a tick of a major pair
moves, without the float noise of a computed stop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli.render import (
    age,
    cell,
    footer,
    indent,
    mode_line,
    paper_note,
    table,
    usd,
)
from bot.cli.rows import timestamp
from bot.cli.statusfile import DaemonStatus, records_now
from bot.store.backend import Database
from bot.store.reader import AccountReader, PnlTotals
from bot.store.writer import Store, StoredOrderStatus, StoreError

if TYPE_CHECKING:
    from bot.cli.commands import Context

__all__ = [
    "DAEMON_NOT_RUNNING",
    "active_trading_report",
    "price",
    "render_active_trading",
    "signed_usd",
    "trading_account",
]

DAY_SECONDS = 86400.0
PRICE_SIGNIFICANT_DIGITS = 5
PRICE_MIN_DECIMALS = 2
PRICE_MAX_DECIMALS = 8
DAEMON_NOT_RUNNING = "daemon not running"


def price(value: float | None) -> str | None:
    """A price as a person reads it (see the module's docstring), or None when unknown."""
    if value is None:
        return None
    if not math.isfinite(value) or value == 0:
        return f"{value:,.{PRICE_MIN_DECIMALS}f}"
    magnitude = math.floor(math.log10(abs(value)))  # 61234.5 -> 4, 0.5123 -> -1
    decimals = PRICE_SIGNIFICANT_DIGITS - 1 - magnitude
    decimals = min(PRICE_MAX_DECIMALS, max(PRICE_MIN_DECIMALS, decimals))
    text = f"{value:,.{decimals}f}"
    whole, _, fraction = text.partition(".")
    fraction = fraction[:PRICE_MIN_DECIMALS] + fraction[PRICE_MIN_DECIMALS:].rstrip("0")
    return f"{whole}.{fraction}"


def signed_usd(value: float | None) -> str | None:
    """``+$12.34``, ``-$3.40``, ``$0.00`` (a P&L), or None when unknown."""
    if value is None:
        return None
    cents = round(value, 2)
    text = f"${abs(cents):,.2f}"
    if cents == 0:
        return text
    return f"-{text}" if cents < 0 else f"+{text}"


def _clock_time(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")


def _mark_of(
    daemon: Mapping[str, Any] | None, no_daemon: str | None, symbol: str
) -> tuple[float | None, str | None]:
    """The mark of ``symbol``, or why there is none."""
    if no_daemon is not None:
        return None, no_daemon
    if daemon is None:
        return None, "not traded by the running daemon"
    mark = (daemon.get("marks") or {}).get(symbol)
    if not isinstance(mark, int | float) or isinstance(mark, bool):
        return None, "not priced by the daemon yet"
    return float(mark), None


def trading_account(
    reader: AccountReader,
    key: str,
    day: tuple[float, float],
    daemon: Mapping[str, Any] | None,
    no_daemon: str | None,
    now: float,
) -> tuple[dict[str, Any], list[str]]:
    """One account's row, and its unresolved orders as reasons for attention.

    ``day`` is today's (start, end) in epoch seconds; ``daemon`` the account's entry of a
    running daemon's status.json (None when that daemon does not trade it); ``no_daemon``
    why no daemon's marks can be read at all (e.g. ``DAEMON_NOT_RUNNING``), else None.
    """
    positions: list[dict[str, Any]] = []
    for p in reader.open_positions():
        mark, unknown = _mark_of(daemon, no_daemon, p.symbol)
        positions.append(
            {
                "symbol": p.symbol,
                "quantity": p.quantity,
                "entry_price": p.entry_price,
                "mark_price": mark,
                # Before fees: selling at the mark would pay the exit's fee too.
                "unrealized_pnl_usd": None if mark is None else (mark - p.entry_price) * p.quantity,
                "mark_unknown": unknown,
                "stop": p.stop,
                "target": p.target,
                "opened_at": p.opened_at,
                "external": p.external,
                "exit_blocked": p.exit_blocked,
            }
        )
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
        for o in reader.orders_since(day[0])
    ]
    unrealized: list[float | None] = [p["unrealized_pnl_usd"] for p in positions]
    marks_at = (daemon or {}).get("marks_at") if no_daemon is None else None
    marked = timestamp(marks_at)
    account = {
        "account": key,
        "today": _totals(reader.pnl_between(*day)),
        "unrealized_pnl_usd": None
        if None in unrealized
        else sum(u for u in unrealized if u is not None),
        "marks_at": marks_at,
        "marks_age_seconds": None if marked is None else round(now - marked, 1),
        # In paper mode the account trades a paper wallet; the venue holds the real account.
        "paper_equity_usd": (daemon or {}).get("paper_equity_usd") if no_daemon is None else None,
        "venue_balance_usd": (daemon or {}).get("venue_balance_usd") if no_daemon is None else None,
        "open_positions": positions,
        "orders_today": orders,
        # Remainders below the venue's minimum: held, shown, never sent as an order.
        "dust": {d.asset: d.quantity for d in reader.dust()},
    }
    unresolved = reader.orders_with_status(StoredOrderStatus.UNKNOWN)
    reasons = [f"{key}: order {o.client_order_id} ({o.symbol}) left unknown" for o in unresolved]
    reasons += [
        f"{key}: exit of {p['symbol']} blocked ({p['exit_blocked']})"
        for p in positions
        if p["exit_blocked"]
    ]
    return account, reasons


def _day_start(now: float) -> float:
    """Midnight UTC of the day ``now`` falls in."""
    day = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day.timestamp()


def active_trading_report(
    ctx: Context, status: DaemonStatus | None, problem: str | None, database: Database
) -> dict[str, Any] | None:
    """The report from the store in ``database``, the daemon's ``status`` (status.json, or
    None) and ``problem`` (why it cannot be read); None when there is nothing to report on
    (no account configured, no store, no daemon or demo status to show)."""
    path = database.describe()
    configured = {s.account.key for s in ctx.accounts.specs}
    running = status if status is not None and status.running else None
    if running is not None:
        no_daemon, marks = None, f"Marks: the running daemon's last prices (pid {running.pid})."
    elif problem is not None:
        no_daemon = "daemon status unreadable"
        marks = "Marks unknown: the daemon's status.json cannot be read (see below)."
    else:
        no_daemon = DAEMON_NOT_RUNNING
        marks = "Marks unknown: the daemon is not running (its status.json holds them)."
    report: dict[str, Any] = {
        "command": "check_active_trading_per_broker",
        "mode": ctx.settings.mode,
        "demo": bool(status and status.demo),
        "db": path,
        "marks_note": marks,
        "note": None,
        "brokers": [],
        "config_errors": ctx.config_errors(),
        "attention": [problem] if problem else [],
    }
    if database.kind == "sqlite" and not Path(path).is_file():
        if not configured and not ctx.accounts.errors and status is None and problem is None:
            return None
        report["note"] = f"No state database at {path} yet: the daemon has not traded in this mode."
        return report
    now = ctx.clock.wall()
    start = _day_start(records_now(status, now))  # today on the records' clock
    try:
        with Store.open_readonly(database) as store:
            by_broker: dict[str, list[dict[str, Any]]] = {}
            for key in sorted(configured | set(store.account_keys())):
                entry = running.account(key) if running is not None else None
                account, reasons = trading_account(
                    store.account(key), key, (start, start + DAY_SECONDS), entry, no_daemon, now
                )
                by_broker.setdefault(key.rsplit("/", 1)[-1], []).append(account)
                report["attention"] += reasons
    except StoreError as exc:
        report["attention"].append(f"cannot read the state store: {exc}")
        return report
    report["brokers"] = [{"broker": b, "accounts": by_broker[b]} for b in sorted(by_broker)]
    return report


def _totals(totals: PnlTotals) -> dict[str, Any]:
    return {
        "realized_pnl_usd": totals.realized_pnl_usd,
        "fees_usd": totals.fees_usd,
        "closed_positions": totals.closed_positions,
        "fills": totals.fills,
    }


# -- text -----------------------------------------------------------------------------------


def _money_lines(acct: Mapping[str, Any], paper: bool) -> list[str]:
    """Today's results; the open positions' unrealized P&L; the account's worth, if known."""
    today = acct["today"]
    lines = [
        f"today (UTC): realized P&L {signed_usd(today['realized_pnl_usd'])} (net of fees),"
        f" fees paid {usd(today['fees_usd'])}"
    ]
    positions = acct["open_positions"]
    if positions and acct["unrealized_pnl_usd"] is None:
        why = next(p["mark_unknown"] for p in positions if p["mark_unknown"])
        lines.append(f"open: unrealized P&L unknown (mark unknown: {why})")
    elif positions:
        old = age(acct["marks_age_seconds"])
        when = f", at marks {old} old" if old else ""
        lines.append(f"open: unrealized P&L {signed_usd(acct['unrealized_pnl_usd'])}{when}")
    worth = []
    if paper and acct["paper_equity_usd"] is not None:
        worth.append(f"paper equity {usd(acct['paper_equity_usd'])}")
    if acct["venue_balance_usd"] is not None:
        worth.append(f"venue balance {usd(acct['venue_balance_usd'])}")
    return lines + ([", ".join(worth)] if worth else [])


def _positions_table(positions: list[Mapping[str, Any]]) -> str:
    rows = [
        (
            p["symbol"],
            f"{p['quantity']:g}",
            price(p["entry_price"]),
            price(p["mark_price"]) or f"mark unknown ({p['mark_unknown']})",
            signed_usd(p["unrealized_pnl_usd"]),
            price(p["stop"]),
            price(p["target"]),
        )
        for p in positions
    ]
    headers = ("SYMBOL", "QTY", "ENTRY", "MARK", "UNREALIZED", "STOP", "TARGET")
    return table(headers, rows)


def _orders_table(orders: list[Mapping[str, Any]]) -> str:
    keys = ("time", "client_order_id", "symbol", "side", "purpose", "status", "filled")
    rows = [tuple(o[k] for k in keys) for o in orders]
    headers = ("TIME (UTC)", "CLIENT ID", "SYMBOL", "SIDE", "PURPOSE", "STATUS", "FILLED")
    return table(headers, rows)


def render_active_trading(report: Mapping[str, Any]) -> str:
    """The check_active_trading_per_broker listing: per broker, per account, positions and orders."""
    paper = report["mode"] == "paper"
    parts = [mode_line(report["mode"], report.get("demo", False)) + f"  (store: {report['db']})"]
    notes = [report["marks_note"]]
    if paper:
        notes.append(paper_note())
    if report.get("note"):
        notes.append(report["note"])
    parts.append("\n".join(notes))
    for broker in report["brokers"]:
        lines = [f"== {broker['broker']} =="]
        for acct in broker["accounts"]:
            lines.append(
                f"{acct['account']}: {len(acct['open_positions'])} open position(s), "
                f"{len(acct['orders_today'])} order(s) today (UTC)"
            )
            lines += [indent(line) for line in _money_lines(acct, paper)]
            if acct["open_positions"]:
                lines.append(indent(_positions_table(acct["open_positions"])))
                lines += [
                    f"    exit blocked: {p['symbol']} ({cell(p['exit_blocked'])})"
                    for p in acct["open_positions"]
                    if p.get("exit_blocked")
                ]
            if acct.get("dust"):
                held = ", ".join(f"{q:g} {a}" for a, q in sorted(acct["dust"].items()))
                lines.append(f"    dust (too small to trade, never sent): {held}")
            if acct["orders_today"]:
                lines.append(indent(_orders_table(acct["orders_today"])))
        parts.append("\n".join(lines))
    parts.append(footer(report))
    return "\n\n".join(parts) + "\n"
