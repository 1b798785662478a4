"""``check_active_trading_per_broker.py --pnl``: realized P&L, fees, trades and win rate per
account and UTC day, read (read-only) from the state store: a table per account, ``--json``,
or ``--csv FILE`` (``-`` for stdout) in the API's CSV format (``bot.store.pnl``: the figures
and what a trade is are defined there).

The accounts are the configured ones, a running daemon's, and every account with a trade
or a fill in the days asked. A store that cannot be read is an error (exit 1), never a
table or a CSV of zeros.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli.output import EXIT_ATTENTION, EXIT_CONFIG, fail
from bot.cli.render import footer, indent, mode_line, table, usd
from bot.cli.statusfile import records_now, status_or_problem
from bot.cli.trading import signed_usd
from bot.store.pnl import DEFAULT_DAYS, last_days, parse_days, pnl_document, write_csv
from bot.store.writer import Store, StoreError, db_path

if TYPE_CHECKING:
    from bot.cli.commands import Context

__all__ = ["add_arguments", "main_pnl", "render_pnl"]

MEANING = (
    "A trade is a position closed that day, its P&L net of its entry's and exit's fees; fees"
    " are those of the day's fills (entries and exits); win rate = wins / trades."
)


def _days(text: str) -> int:
    try:
        return parse_days(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--pnl``, ``--days N`` and ``--csv FILE|-`` (each of the last two implies ``--pnl``)."""
    group = parser.add_argument_group("P&L per day (from the state store)")
    group.add_argument(
        "--pnl",
        action="store_true",
        help="realized P&L, fees, trades and win rate per account and UTC day instead",
    )
    group.add_argument(
        "--days",
        type=_days,
        metavar="N",
        help=f"the last N UTC days, today included (default {DEFAULT_DAYS}; implies --pnl)",
    )
    group.add_argument(
        "--csv",
        metavar="FILE",
        help="also write the rows as CSV to FILE, or only them to stdout with '-' (implies --pnl)",
    )


def wants_pnl(args: argparse.Namespace) -> bool:
    """Whether the command line asks for the P&L report."""
    return bool(args.pnl or args.days is not None or args.csv is not None)


def main_pnl(
    ctx: Context,
    emit: Callable[[Context, dict[str, Any], Callable], int],
    no_accounts: Callable[[Context], int],
) -> int:
    """The P&L report: ``emit`` prints it (text or JSON) as every check does, CSV on request;
    ``no_accounts`` says there is nothing to report on (no account, no store, no daemon)."""
    args = ctx.args
    if args.csv == "-" and ctx.as_json:
        why = "--csv - and --json would both print on stdout: give --csv a file, or drop --json"
        return fail(ctx.prog, why, ctx.redactor, True, EXIT_CONFIG)
    days = args.days or DEFAULT_DAYS
    path = db_path(ctx.settings.data_dir, ctx.settings.mode)
    status, problem = status_or_problem(ctx.settings.data_dir, ctx.clock.wall())
    first, last = last_days(records_now(status, ctx.clock.wall()), days)
    accounts = {s.account.key for s in ctx.accounts.specs}
    if status is not None and status.running:
        accounts |= set(status.data.get("accounts") or {})
    report: dict[str, Any] = {
        "command": "check_active_trading_per_broker",
        "mode": ctx.settings.mode,
        "demo": bool(status and status.running and status.demo),
        "db": str(path),
        "from": first.isoformat(),
        "to": last.isoformat(),
        "days": days,
        "clock_note": None if status is None else status.trading_clock_note(),
        "meaning": MEANING,
        "rows": [],
        "totals": [],
        "csv_file": None if args.csv in (None, "-") else str(Path(args.csv)),
        "note": None,
        "config_errors": [
            {"account": e.account, "variables": list(e.variables), "message": e.message}
            for e in ctx.accounts.errors
        ],
        "attention": [],
    }
    if not path.is_file():
        if not accounts and not ctx.accounts.errors and status is None and problem is None:
            return no_accounts(ctx)
        report["note"] = f"No state database at {path} yet: no account has traded in this mode."
    else:
        try:
            with Store.open_readonly(path) as store:
                pnl = store.pnl_report(first, last, accounts=accounts)
        except StoreError as exc:  # never a report of zeros
            report.update(rows=None, totals=None)
            if args.csv is not None:
                why = f"cannot read the state store: {exc} (no CSV written)"
                return fail(ctx.prog, why, ctx.redactor, ctx.as_json, EXIT_ATTENTION)
            report["attention"].append(f"cannot read the state store: {exc}")
            return emit(ctx, report, render_pnl)
        doc = pnl_document(pnl)
        report.update(rows=doc["rows"], totals=doc["totals"])
    if args.csv is not None:
        text = io.StringIO()
        write_csv(report["rows"], text)
        csv_text = ctx.redactor.mask_values(text.getvalue())
        if args.csv == "-":
            sys.stdout.write(csv_text)
            if report["note"]:
                print(report["note"], file=sys.stderr)
            return EXIT_ATTENTION if report["config_errors"] else 0
        try:
            Path(args.csv).write_text(csv_text, encoding="utf-8", newline="")
        except OSError as exc:
            why = f"cannot write the CSV file {args.csv}: {exc.strerror or exc}"
            return fail(ctx.prog, why, ctx.redactor, ctx.as_json, EXIT_CONFIG)
    return emit(ctx, report, render_pnl)


# -- text -----------------------------------------------------------------------------------


def _rate(value: float | None) -> str | None:
    return None if value is None else f"{value:.0%}"


def _cells(label: str, row: Mapping[str, Any]) -> tuple[Any, ...]:
    return (
        label,
        signed_usd(row["realized_pnl_usd"]),
        usd(row["fees_usd"]),
        row["trades"],
        row["wins"],
        row["losses"],
        _rate(row["win_rate"]),
    )


def render_pnl(report: Mapping[str, Any]) -> str:
    """The ``--pnl`` listing: per broker, per account, a row a day and the total."""
    parts = [mode_line(report["mode"], report.get("demo", False)) + f"  (store: {report['db']})"]
    head = (
        f"Realized P&L, fees, trades and win rate per UTC day, {report['from']} to"
        f" {report['to']} ({report['days']} day{'s' if report['days'] != 1 else ''})."
    )
    notes = [head, report["meaning"]]
    if report.get("clock_note"):
        notes.append(report["clock_note"])
    if report.get("note"):
        notes.append(report["note"])
    if report.get("csv_file"):
        notes.append(f"CSV: {len(report['rows'] or [])} rows written to {report['csv_file']}")
    parts.append("\n".join(notes))
    headers = ("DAY (UTC)", "REALIZED", "FEES", "TRADES", "WINS", "LOSSES", "WIN RATE")
    totals = {t["account"]: t for t in report["totals"] or []}
    by_broker: dict[str, dict[str, list[Mapping[str, Any]]]] = {}
    for row in report["rows"] or []:
        by_broker.setdefault(row["broker"], {}).setdefault(row["account"], []).append(row)
    for broker in sorted(by_broker):
        lines = [f"== {broker} =="]
        for key, rows in sorted(by_broker[broker].items()):
            cells = [_cells(row["day"], row) for row in rows] + [_cells("total", totals[key])]
            lines += [f"{key}:", indent(table(headers, cells))]
        parts.append("\n".join(lines))
    parts.append(footer(report))
    return "\n\n".join(parts) + "\n"
