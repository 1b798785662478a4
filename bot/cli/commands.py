"""The check commands behind ``check_broker_status.py``, ``check_independent_broker_status.py``
and ``check_active_trading_per_broker.py``.

Each command reads the environment (and ``.env``, the real environment winning) like the
daemon does, prints an aligned table (or ``--json``) and exits 0 when all is well, 1 when
something needs attention, 2 on a configuration error. Nothing printed comes from
credentials, but a venue's error text may quote one: every report passes a
``bot.redact.Redactor`` over the configured secret values before it is rendered (so a
table cell is cut only after masking), and the printed text passes it once more. Log
records (the SDKs' own loggers print a venue's error body) go to stderr through the same
redactor (``bot.daemon.log.setup_command_logging``). The reports of the last two commands
are built in ``bot.cli.independent`` and ``bot.cli.trading`` (``bot.cli.pnl`` for ``--pnl``).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.cli import pnl, trading
from bot.cli import render as cli_render
from bot.cli import rows as cli_rows
from bot.cli.independent import independent_report, render_independent
from bot.cli.live import live_check
from bot.cli.output import (
    EXIT_ATTENTION,
    EXIT_CONFIG,
    EXIT_OK,
    crashed,
    fail,
    parse_args,
    run,
)
from bot.cli.statusfile import DaemonStatus, status_or_problem
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
from bot.daemon.log import setup_command_logging, shutdown_logging
from bot.errors import ConfigError
from bot.redact import Redactor
from bot.store.backend import open_database

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

    def config_errors(self) -> list[dict[str, Any]]:
        """The accounts' configuration errors, as the reports list them."""
        return [
            {"account": e.account, "variables": list(e.variables), "message": e.message}
            for e in self.accounts.errors
        ]

    def status_or_note(self) -> tuple[DaemonStatus | None, str | None]:
        """status.json, or why it cannot be read (the file and the problem)."""
        return status_or_problem(self.settings.data_dir, self.clock.wall())


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


# -- check_broker_status --------------------------------------------------------------------


@_command(
    "check_broker_status.py",
    "Check every configured broker account: credentials present, a live connection"
    " test and its balance (all accounts at once, each bounded by"
    " NIJA_CALL_TIMEOUT_SECONDS).",
)
def main_broker_status(ctx: Context) -> int:
    """Credentials, a live connection test and the balance of every configured account."""
    status, problem = ctx.status_or_note()
    demo = bool(status and status.running and status.demo)
    if not ctx.accounts.specs and not ctx.accounts.errors and not demo and problem is None:
        return _no_accounts(ctx)
    results, isolation = live_check(ctx)
    accounts = cli_rows.broker_rows(results, ctx.accounts.errors)
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
        "config_errors": ctx.config_errors(),
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
    report = independent_report(ctx)
    if report is None:
        return _no_accounts(ctx)
    return _emit(ctx, report, render_independent)


# -- check_active_trading_per_broker ---------------------------------------------------------


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
    status, problem = ctx.status_or_note()
    database = open_database(ctx.settings.data_dir, ctx.settings.mode, ctx.settings.database_url)
    try:
        report = trading.active_trading_report(ctx, status, problem, database)
        if report is None:
            return _no_accounts(ctx)
        return _emit(ctx, report, trading.render_active_trading)
    finally:
        database.close()


def run_broker_status() -> None:
    """The ``nija-check-brokers`` console script (``check_broker_status.py``)."""
    run(main_broker_status)


def run_independent_status() -> None:
    """The ``nija-status`` console script (``check_independent_broker_status.py``)."""
    run(main_independent_status)


def run_active_trading() -> None:
    """The ``nija-trading`` console script (``check_active_trading_per_broker.py``)."""
    run(main_active_trading)
