"""The check commands behind ``check_broker_status.py``, ``check_independent_broker_status.py``
and ``check_active_trading_per_broker.py``.

Each command reads the environment (and ``.env``, the real environment winning) like the
daemon does, prints an aligned table (or ``--json``) and exits 0 when all is well, 1 when
something needs attention, 2 on a configuration error. Nothing printed comes from
credentials, but a venue's error text may quote one: every report passes a
``bot.redact.Redactor`` over the configured secret values before it is rendered (so a
table cell is cut only after masking), and the printed text passes it once more. Log
records (the SDKs' own loggers print a venue's error body) go to stderr through the same
redactor (``bot.daemon.log.setup_command_logging``).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.brokers.factory import load_adapters
from bot.cli import pnl, trading
from bot.cli import render as cli_render
from bot.cli.cluster import cluster_report, render_cluster
from bot.cli.output import (
    EXIT_ATTENTION,
    EXIT_CONFIG,
    EXIT_OK,
    crashed,
    fail,
    parse_args,
    run,
)
from bot.cli.statusfile import DaemonStatus, stale_after_seconds, status_or_problem
from bot.clock import SYSTEM_CLOCK, Clock
from bot.config.env import load_env
from bot.config.limits import SettingNotice, apply_limits
from bot.config.secrets import secret_values
from bot.config.settings import (
    AccountsResult,
    Settings,
    load_accounts,
    load_settings,
)
from bot.config.unknown import UnknownVariable, unknown_variables
from bot.daemon.clients import VenueClients
from bot.daemon.funded import FundedChecker, FundedResult
from bot.daemon.log import setup_command_logging, shutdown_logging
from bot.daemon.wiring import circuit_config
from bot.errors import ConfigError
from bot.isolation.manager import AccountIsolationManager
from bot.redact import Redactor
from bot.store.backend import Database, open_database
from bot.store.writer import Store, StoreError

EXIT_CODES_HELP = """exit codes:
  0  all well
  1  something needs attention: an account not funded or not healthy, a thread
     stalled or dead, credentials incomplete, daemon status stale or unreadable, orders
     left "unknown"; or the check itself failed (its traceback is on stderr)
  2  configuration error: a bad setting, an unreadable .env, or no accounts configured
     (and no daemon or demo status to show); ./start.sh with no keys set runs a demo
With --json, stdout is one JSON object whatever happens: an error is {"command",
"error", "exit_code"}.
"""
_NO_ACCOUNTS = (
    "No broker accounts are configured. Set an account's keys in .env (see .env.example),"
    " e.g. KRAKEN_API_KEY and KRAKEN_API_SECRET, or run ./start.sh with no keys for a demo"
    " on simulated accounts."
)


@dataclass
class Context:
    """What every command starts from: settings, accounts, the secrets' redactor, the clock."""

    prog: str  # the script's name, e.g. check_broker_status.py
    settings: Settings
    accounts: AccountsResult
    redactor: Redactor
    clock: Clock
    as_json: bool
    unknown: list[UnknownVariable]  # variable names NIJA does not read (typos?)
    notices: list[SettingNotice]  # absurd settings, as the daemon warns of them
    args: argparse.Namespace  # the command line, for a command's own options


def read_env(env_file: str, environ: Mapping[str, str] | None) -> dict[str, str]:
    """The environment and ``.env`` as ``load_env`` reads them (the checks and nija_ctl.py);
    ``ConfigError`` naming the file when it exists but cannot be read."""
    try:
        return load_env(env_file, environ)
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"cannot read the .env file {Path(env_file)}: {why}") from exc


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=textwrap.fill(description, 88),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--env-file", default=".env", help="the .env file to read (default: ./.env)"
    )
    return parser


def _command(
    prog: str,
    description: str,
    arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> Callable[[Callable[[Context], int]], Callable[..., int]]:
    """Make ``body(ctx)`` a command ``main(argv=None, environ=None, clock=SYSTEM_CLOCK) -> int``.

    ``arguments`` adds the command's own options to the parser (``ctx.args`` holds them).

    ``main`` parses the arguments and reads the environment and settings into a
    ``Context``; on a configuration error it returns its exit code without calling ``body``.
    A bug (any other exception) is reported as ``output.crashed`` says: JSON too with --json.
    """

    def wrap(body: Callable[[Context], int]) -> Callable[..., int]:
        def main(
            argv: Sequence[str] | None = None,
            environ: Mapping[str, str] | None = None,
            clock: Clock = SYSTEM_CLOCK,
        ) -> int:
            parser = _parser(prog, description)
            if arguments is not None:
                arguments(parser)
            args = parse_args(parser, argv)
            redactor = Redactor()
            try:
                env = read_env(args.env_file, environ)
                redactor = Redactor(tuple(secret_values(env)))
                settings = load_settings(env)
            except ConfigError as exc:
                return fail(prog, f"configuration error: {exc}", redactor, args.json, EXIT_CONFIG)
            # Whatever logs (our notes, the SDKs' own loggers) says it on stderr, masked.
            setup_command_logging(redactor)
            try:
                settings, notices = apply_limits(settings)
                accounts = load_accounts(env, settings)
                unknown = unknown_variables(env)
                ctx = Context(
                    prog, settings, accounts, redactor, clock, args.json, unknown, notices, args
                )
                return body(ctx)
            except Exception as exc:
                return crashed(prog, exc, redactor, args.json)
            finally:
                shutdown_logging()

        main.__name__, main.__qualname__ = body.__name__, body.__qualname__
        main.__doc__ = body.__doc__
        return main

    return wrap


def _no_accounts(ctx: Context) -> int:
    """Nothing to check: no account configured, and no daemon status to show."""
    return fail(ctx.prog, _NO_ACCOUNTS, ctx.redactor, ctx.as_json, EXIT_CONFIG)


def _emit(ctx: Context, report: dict[str, Any], render: Callable[[dict[str, Any]], str]) -> int:
    """Print the report (JSON or ``render(report)``'s text, redacted) and return its exit code.

    The report is masked before it is rendered: the text cuts long cells, and a cut could
    leave a piece of a secret too short to recognise afterwards.
    """
    code = EXIT_ATTENTION if report["attention"] or report["config_errors"] else EXIT_OK
    report["exit_code"] = code
    report = ctx.redactor.mask_data(report)
    out = json.dumps(report, indent=2, default=str) + "\n" if ctx.as_json else render(report)
    sys.stdout.write(ctx.redactor.mask_values(out))
    return code


def _config_errors(ctx: Context) -> list[dict[str, Any]]:
    return [
        {"account": e.account, "variables": list(e.variables), "message": e.message}
        for e in ctx.accounts.errors
    ]


def _status_or_note(ctx: Context) -> tuple[DaemonStatus | None, str | None]:
    """status.json, or why it cannot be read (the file and the problem)."""
    return status_or_problem(ctx.settings.data_dir, ctx.clock.wall())


# -- live balance check ---------------------------------------------------------------------


def live_check(ctx: Context) -> tuple[list[FundedResult], AccountIsolationManager]:
    """Every loaded account's balance, all at once, bounded by the call timeout."""
    isolation = AccountIsolationManager(
        circuit_config(ctx.settings), clock=ctx.clock, redactor=ctx.redactor
    )
    load_adapters(ctx.accounts.specs)
    # Budgets and the venues' shared metadata, as in the daemon; its notes go to stderr.
    clients = VenueClients(clock=ctx.clock)
    checker = FundedChecker(
        clients.client,
        isolation,
        min_balance_usd=ctx.settings.min_balance_usd,
        timeout_seconds=ctx.settings.call_timeout_seconds,
        waited=clients.waited_seconds,
        clock=ctx.clock,
    )
    try:
        results = {r.account_key: r for r in checker.check(ctx.accounts.specs)}
    finally:
        clients.close()
    return [results[s.account.key] for s in ctx.accounts.specs], isolation


# -- check_broker_status --------------------------------------------------------------------


@_command(
    "check_broker_status.py",
    "Check every configured broker account: credentials present, a live connection"
    " test and its balance (all accounts at once, each bounded by"
    " NIJA_CALL_TIMEOUT_SECONDS).",
)
def main_broker_status(ctx: Context) -> int:
    """Credentials, a live connection test and the balance of every configured account."""
    status, problem = _status_or_note(ctx)
    demo = bool(status and status.running and status.demo)
    if not ctx.accounts.specs and not ctx.accounts.errors and not demo and problem is None:
        return _no_accounts(ctx)
    results, isolation = live_check(ctx)
    accounts = cli_render.broker_rows(results, ctx.accounts.errors)
    threshold = cli_render.usd(ctx.settings.min_balance_usd)
    attention = [problem] if problem else []
    attention += [str(u) for u in ctx.unknown] + [str(n) for n in ctx.notices]
    attention += [
        f"{r.account_key}: no balance: {r.error}"
        if r.balance_usd is None
        else f"{r.account_key}: not funded ({cli_render.usd(r.balance_usd)} < {threshold})"
        for r in results
        if not r.funded
    ]
    report = {
        "command": "check_broker_status",
        "mode": ctx.settings.mode,
        "demo": demo,
        "min_balance_usd": ctx.settings.min_balance_usd,
        # What each account trades with in paper mode; the balances shown are the venue's.
        "paper_balance_usd": None if ctx.settings.live else ctx.settings.paper_balance_usd,
        "timeout_seconds": ctx.settings.call_timeout_seconds,
        "accounts": accounts,
        "isolation_guarantee": isolation.get_isolation_report()["isolation_guarantee"],
        "note": "No accounts configured; the running daemon trades a DEMO." if demo else None,
        "config_errors": _config_errors(ctx),
        "attention": attention,
    }
    return _emit(ctx, report, cli_render.render_broker_status)


# -- check_independent_broker_status ---------------------------------------------------------


@_command(
    "check_independent_broker_status.py",
    "Show each account's trading thread: funded, ready, thread state, health, circuit,"
    " cycles, last cycle, its venue's state and last error; and each venue's state, why,"
    " its last probe and its public request rate. Read from $NIJA_DATA_DIR/status.json"
    " while the daemon runs, else from a live balance check. With NIJA_DATABASE_URL (several"
    " nodes): which node holds each account's lease, its epoch, age and expiry, and every"
    " node's last heartbeat (a node that stopped renewing needs attention).",
)
def main_independent_status(ctx: Context) -> int:
    """Per account: funded, ready, thread, health, circuit, cycles, last cycle and last error."""
    now = ctx.clock.wall()
    status, problem = _status_or_note(ctx)
    attention = [problem] if problem else []
    daemon: dict[str, Any] = {"running": False, "pid": None, "status_age_seconds": None}
    if status is not None:
        daemon.update(pid=status.pid, status_age_seconds=round(status.age_seconds or 0.0, 1))
    if status is not None and status.running:
        age = cli_render.age(status.age_seconds)
        stale_after = stale_after_seconds(status, ctx.settings)
        daemon.update(running=True, summary=f"daemon running (pid {status.pid}), status {age} old")
        daemon["stale_after_seconds"] = stale_after
        if (status.age_seconds or 0.0) > stale_after:
            attention.append(
                f"daemon status stale: {age} old (the daemon rewrites it about every second;"
                f" stuck after {stale_after:g} s: is its disk full? see nija.log)"
            )
        rows = cli_render.status_rows(status.data, now)
        venues = cli_render.venue_rows(status.data, now)
        report_iso = status.data.get("isolation_report") or {}
        guarantee = report_iso.get("isolation_guarantee", "unknown")
        source = "daemon"
    else:
        nothing = not ctx.accounts.specs and not ctx.accounts.errors
        if nothing and not (status and status.demo) and problem is None:
            return _no_accounts(ctx)
        if problem is not None:
            summary = "daemon status unreadable (see below). Live check instead:"
        elif status is not None:
            summary = (
                f"daemon not running; last status from {cli_render.age(status.age_seconds)}"
                f" ago (pid {status.pid} is gone). Live check instead:"
            )
            attention.append("daemon not running (its last status.json is stale)")
        else:
            summary = "daemon not running (no status.json yet). Live check instead:"
        daemon["summary"] = summary
        results, isolation = live_check(ctx)
        rows = cli_render.live_rows(results, isolation.get_all_account_statuses())
        venues = []
        guarantee = isolation.get_isolation_report()["isolation_guarantee"]
        source = "live_check"
    if guarantee == "VIOLATED":
        attention.append("isolation_guarantee VIOLATED: an error crossed accounts")
    cluster = None
    if ctx.settings.database_url:  # several nodes: who holds each account's lease
        s = ctx.settings
        database = open_database(s.data_dir, s.mode, s.database_url, max_connections=1)
        try:
            cluster, more = cluster_report(database, status.data.get("node_id") if status else None)
        finally:
            database.close()
        attention += more
    report = {
        "command": "check_independent_broker_status",
        "mode": str((status.data.get("mode") if status else None) or ctx.settings.mode),
        "demo": bool(status and status.demo),
        "source": source,
        "daemon": daemon,
        "accounts": rows,
        "venues": venues,
        "isolation_guarantee": guarantee,
        "cluster": cluster,
        "config_errors": _config_errors(ctx),
        "attention": attention
        + cli_render.venue_attention(venues)
        + cli_render.account_attention(rows),
    }
    return _emit(ctx, report, _render_independent)


def _render_independent(report: dict[str, Any]) -> str:
    cluster = [render_cluster(report["cluster"])] if report.get("cluster") else []
    return cli_render.render_independent_status(report, cluster)


# -- check_active_trading_per_broker ---------------------------------------------------------


DAY_SECONDS = 86400.0


def _day_start(now: float) -> float:
    """Midnight UTC of the day ``now`` falls in."""
    day = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day.timestamp()


@_command(
    "check_active_trading_per_broker.py",
    "List open positions (valued at the running daemon's last prices), today's (UTC)"
    " orders, realized P&L and fees per account, grouped by broker, read (read-only) from"
    " the state store ($NIJA_DATA_DIR/nija-<mode>.db, or $NIJA_DATABASE_URL) and the"
    " daemon's status.json. With --pnl: realized P&L, fees, trades and win rate per account"
    " and UTC day.",
    pnl.add_arguments,
)
def main_active_trading(ctx: Context) -> int:
    """Open positions valued at the daemon's marks, today's (UTC) orders, realized P&L and fees
    per account, grouped by broker, from the store; with ``--pnl`` the P&L per day."""
    if pnl.wants_pnl(ctx.args):
        return pnl.main_pnl(ctx, _emit, _no_accounts)
    status, problem = _status_or_note(ctx)
    database = open_database(ctx.settings.data_dir, ctx.settings.mode, ctx.settings.database_url)
    try:
        return _active_trading(ctx, status, problem, database)
    finally:
        database.close()


def _active_trading(
    ctx: Context, status: DaemonStatus | None, problem: str | None, database: Database
) -> int:
    path = database.describe()
    configured = {s.account.key for s in ctx.accounts.specs}
    running = status if status is not None and status.running else None
    if running is not None:
        no_daemon, marks = None, f"Marks: the running daemon's last prices (pid {running.pid})."
    elif problem is not None:
        no_daemon = "daemon status unreadable"
        marks = "Marks unknown: the daemon's status.json cannot be read (see below)."
    else:
        no_daemon = trading.DAEMON_NOT_RUNNING
        marks = "Marks unknown: the daemon is not running (its status.json holds them)."
    report: dict[str, Any] = {
        "command": "check_active_trading_per_broker",
        "mode": ctx.settings.mode,
        "demo": bool(status and status.demo),
        "db": path,
        "marks_note": marks,
        "note": None,
        "brokers": [],
        "config_errors": _config_errors(ctx),
        "attention": [problem] if problem else [],
    }
    if database.kind == "sqlite" and not Path(path).is_file():
        if not configured and not ctx.accounts.errors and status is None and problem is None:
            return _no_accounts(ctx)
        report["note"] = f"No state database at {path} yet: the daemon has not traded in this mode."
        return _emit(ctx, report, trading.render_active_trading)
    now = ctx.clock.wall()
    start = _day_start(now)
    try:
        with Store.open_readonly(database) as store:
            by_broker: dict[str, list[dict[str, Any]]] = {}
            for key in sorted(configured | set(store.account_keys())):
                entry = running.account(key) if running is not None else None
                account, reasons = trading.trading_account(
                    store.account(key), key, (start, start + DAY_SECONDS), entry, no_daemon, now
                )
                by_broker.setdefault(key.rsplit("/", 1)[-1], []).append(account)
                report["attention"] += reasons
    except StoreError as exc:
        report["attention"].append(f"cannot read the state store: {exc}")
        return _emit(ctx, report, trading.render_active_trading)
    report["brokers"] = [{"broker": b, "accounts": by_broker[b]} for b in sorted(by_broker)]
    return _emit(ctx, report, trading.render_active_trading)


def run_broker_status() -> None:
    """The ``nija-check-brokers`` console script (``check_broker_status.py``)."""
    run(main_broker_status)


def run_independent_status() -> None:
    """The ``nija-status`` console script (``check_independent_broker_status.py``)."""
    run(main_independent_status)


def run_active_trading() -> None:
    """The ``nija-trading`` console script (``check_active_trading_per_broker.py``)."""
    run(main_active_trading)
