"""The daemon's command: ``python3 bot.py``, ``python -m bot`` or the ``nija`` script.

Trade every funded broker account in its own isolated thread until stopped.
Settings come from the environment and from .env (the real environment wins).
With no broker credentials at all it runs a demo on simulated accounts.

One daemon per data directory: it holds ``<NIJA_DATA_DIR>/nija.lock`` while it runs
(``bot.daemon.lock``). SIGTERM, SIGHUP and SIGINT stop it gracefully; a second SIGINT
during that stop exits at once (logged).

Exit codes: 0 clean stop (SIGTERM, SIGHUP, SIGINT, or --once done); 2 configuration
error or a start-up error (a bad setting, another daemon on the data directory, an
unusable data directory, database or log file: one line on stderr and in nija.log);
130 a second Ctrl-C forced the exit.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import stat
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from bot.alerts.wiring import Alerts, start_alerts
from bot.api.heartbeat import Heartbeat
from bot.api.probes import liveness
from bot.api.server import start_api
from bot.brokers.factory import load_adapters
from bot.cli.commands import read_env
from bot.clock import SYSTEM_CLOCK
from bot.config.env import load_env
from bot.config.limits import apply_limits
from bot.config.secrets import secret_values
from bot.config.settings import Settings, load_accounts, load_settings
from bot.config.unknown import unknown_variables
from bot.daemon.demo import FAULTY_ACCOUNT, demo_factories, demo_settings, demo_specs
from bot.daemon.lock import DataDirLock
from bot.daemon.log import get_logger, setup_logging, shutdown_logging
from bot.daemon.supervisor import IndependentBrokerTrader
from bot.daemon.wiring import TraderFactory, circuit_config, make_trader
from bot.errors import ConfigError, StartupError
from bot.isolation.manager import get_isolation_manager
from bot.model import BrokerSpec
from bot.redact import Redactor

EXIT_OK, EXIT_CONFIG, EXIT_FORCED = 0, 2, 130


def main(argv: list[str] | None = None, trader_factory: TraderFactory = make_trader) -> int:
    """Run the daemon; ``trader_factory`` builds each account's trader (a test may wrap it)."""
    parser = argparse.ArgumentParser(
        prog="bot.py", description="NIJA: trade every funded broker account in its own thread."
    )
    parser.add_argument(
        "--once", action="store_true", help="one cycle per funded account, then exit"
    )
    parser.add_argument("--env-file", default=".env", help="dotenv file to load (default .env)")
    args = parser.parse_args(argv)

    environ = dict(os.environ)  # the real environment, before .env is merged into it
    env = load_env(args.env_file)  # the real environment wins
    os.environ.update(env)  # so libraries that read os.environ (proxies, CA files) see .env too
    try:
        settings = load_settings(env)
    except ConfigError as exc:
        print(f"NIJA configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    settings, notices = apply_limits(settings)
    secrets = secret_values(env)
    try:
        setup_logging(settings.log_file, secrets)
    except OSError as exc:
        problem = (
            f"cannot write the log file {settings.log_file}: {exc.strerror or exc}; fix: make "
            "it writable by this user, or set NIJA_LOG_FILE to a path that is"
        )
        return _fatal(problem, settings, secrets)
    log = get_logger()
    _warn_if_readable_by_others(log, args.env_file)
    # Once, at start-up: a misspelt name silently drops an account; names only, never values.
    for unknown in unknown_variables(env):
        log.warning(
            "unknown_variable",
            variable=unknown.name,
            did_you_mean=unknown.did_you_mean,
            note="NIJA does not read it",
        )
    for notice in notices:
        log.warning(
            "setting_out_of_range",
            variable=notice.variable,
            value=notice.value,
            used=notice.used,
            problem=notice.why,
        )
    try:
        lock = DataDirLock.acquire(settings.data_dir)
    except StartupError as exc:
        return _fatal(str(exc), settings, secrets)
    redactor = Redactor(tuple(secrets))
    # Before anything can fail or be started: the start, a start-up error, the stop are told.
    alerts = start_alerts(settings, redactor, clock=SYSTEM_CLOCK, log=log)
    clean = False
    try:
        code = _run(
            args,
            env,
            settings,
            lock,
            trader_factory,
            redactor,
            lambda: read_env(args.env_file, environ),
            alerts,
        )
        clean = True
        return code
    except StartupError as exc:
        clean = True  # nothing ran: nothing to reconcile
        return _fatal(str(exc), settings, secrets)
    finally:
        lock.release(clean=clean)  # an unexpected exception leaves the pid: "not stopped cleanly"
        if alerts is not None:
            alerts.close()  # after the last line worth an alert; bounded
        shutdown_logging()


def _run(
    args: argparse.Namespace,
    env: dict[str, str],
    settings: Settings,
    lock: DataDirLock,
    trader_factory: TraderFactory,
    redactor: Redactor,
    reread_env: Callable[[], dict[str, str]],
    alerts: Alerts | None = None,
) -> int:
    """The daemon, from its accounts to its stop; ``StartupError`` before any thread starts.

    ``redactor`` masks the secrets in everything the daemon writes besides the log:
    status.json, the state database, and the error texts the isolation manager keeps.
    ``reread_env`` reads the environment and .env afresh (an operator's reload).
    ``alerts``: the running alerts, whose counts /metrics shows.
    """
    log = get_logger()
    if lock.previous_pid is not None:
        log.warning(
            "unclean_previous_stop",
            previous_pid=lock.previous_pid,
            message=f"previous run (pid {lock.previous_pid}) did not stop cleanly; reconciling",
        )
    clock = SYSTEM_CLOCK  # the one clock every component is given
    accounts = load_accounts(env, settings)
    for err in accounts.errors:
        log.error("account_config_error", account=err.account, error=err.message)
    demo = not accounts.specs and not accounts.errors
    specs, factories = accounts.specs, None
    if demo:
        settings = demo_settings(settings)
        specs, factories = demo_specs(settings), demo_factories(settings, clock=clock)
    elif not specs:
        log.error("no_usable_accounts", fix="complete the variables named above, see .env.example")
        return EXIT_CONFIG
    problem = _single_account_problem(settings, specs)
    if problem:
        raise StartupError(problem)
    load_adapters(specs)

    isolation = get_isolation_manager(circuit_config(settings), redactor=redactor)
    trader = IndependentBrokerTrader(
        settings,
        specs,
        isolation,
        trader_factory=trader_factory,
        factories=factories,
        config_errors=accounts.errors,
        demo=demo,
        once=args.once,
        clock=clock,
        log=log,
        redactor=redactor,
        read_env=reread_env,
    )
    trader.alerts = None if alerts is None else alerts.notifier
    trader.database.open()  # an unusable database stops the start before anything runs
    _banner(log, settings, specs, demo, trader.db.describe())
    stop = threading.Event()
    handler = _StopSignals(stop, log)
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, handler)
    began = clock.monotonic()
    # /healthz answers during the start-up too. Not for --once: a one-shot run (cron) next
    # to a running daemon must not contend for its port, and has nothing to keep alive.
    api = None if args.once else start_api(settings, trader, log=log)
    heartbeat = None
    if settings.heartbeat_url and not args.once:
        heartbeat = Heartbeat(
            settings.heartbeat_url,
            settings.heartbeat_seconds,
            alive=lambda: liveness(trader, began).ok,
            log=log,
        )
        heartbeat.start()
    try:
        trader.start_independent_multi_broker_trading()
        trader.run_until(stop)
        if handler.received:
            log.info("signal_received", signal=handler.received, action="stopping")
    finally:
        trader.stop_independent_trading()
        if heartbeat is not None:
            heartbeat.stop()
        if api is not None:
            api.stop()
        trader.db.close()  # after the API: its readers use the database's connections
    return EXIT_OK


def _warn_if_readable_by_others(log, env_file: str) -> None:
    """A warning (its path and mode only, nothing from inside it) when group or others may
    read the .env file that holds the keys."""
    try:
        mode = stat.S_IMODE(os.stat(env_file).st_mode)
    except OSError:
        return  # no .env: the settings come from the environment
    if mode & 0o077:
        log.warning(
            "env_file_readable_by_others",
            path=env_file,
            mode=f"{mode:04o}",
            fix=f"chmod 600 {env_file}",
        )


class _StopSignals:
    """SIGTERM, SIGHUP (the terminal of a foreground ./start.sh went away) and SIGINT all
    stop the daemon gracefully; a second SIGINT during that stop exits at once.

    The first signal only sets ``stop`` and records its name: the main loop logs it. A
    handler runs between any two bytecodes of the main thread, possibly inside a write of
    the same log stream, where a nested write can fail and the line be lost.
    """

    def __init__(self, stop: threading.Event, log: Any) -> None:
        self.stop = stop
        self.log = log
        self.received: str | None = None

    def __call__(self, signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if not self.stop.is_set():
            self.received = name
            self.stop.set()
            return
        if signum != signal.SIGINT:
            self.log.info("signal_received", signal=name, action="already stopping")
            return
        self.log.warning(
            "forced_exit",
            signal=name,
            note="second Ctrl-C while stopping: not waiting for the account threads; "
            "the next start reconciles",
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(EXIT_FORCED)  # the lock file keeps our pid: the next start says so


def _single_account_problem(settings: Settings, specs: Sequence[BrokerSpec]) -> str | None:
    """Why single-account mode would trade nothing (no account of NIJA_PRIMARY_BROKER), or None."""
    primary = settings.primary_broker
    if settings.multi_broker_independent or primary is None:
        return None
    brokers = sorted({s.account.broker for s in specs})
    if primary in brokers:
        return None
    return (
        f"MULTI_BROKER_INDEPENDENT=false trades only the account of NIJA_PRIMARY_BROKER={primary}, "
        f"but no {primary} account is configured (configured: {', '.join(brokers)}); fix: set "
        f"NIJA_PRIMARY_BROKER to one of those, or complete the {primary} account's variables "
        "(check_broker_status.py names what is missing)"
    )


def _fatal(problem: str, settings: Settings, secrets: list[str]) -> int:
    """A start-up error: one line on stderr and, where it can be written, in nija.log; exit 2."""
    print(f"NIJA cannot start: {problem}", file=sys.stderr)
    try:  # the file only: the console has the line above
        setup_logging(settings.log_file, secrets, stdout=False)
        get_logger().error("startup_failed", error=problem)
    except OSError:
        pass  # the log file is the problem: stderr has it
    finally:
        shutdown_logging()
    return EXIT_CONFIG


def _banner(log, settings, specs, demo: bool, store: str) -> None:
    mode = settings.mode.upper()
    label = f"DEMO ({mode}, simulated accounts, no keys set)" if demo else mode
    if settings.live:
        log.warning("LIVE_TRADING", note="orders are REAL and spend real money")
    # No per-account lists: each account has its own lines, and status.json has them all.
    log.info(
        "nija_starting",
        mode=label,
        accounts=len(specs),
        cycle_s=settings.cycle_seconds,
        min_balance_usd=settings.min_balance_usd,
        call_timeout_s=settings.call_timeout_seconds,
        multi_broker_independent=settings.multi_broker_independent,
        data_dir=settings.data_dir,
        store=store,
    )
    if demo:
        log.info("demo", faulty_account=FAULTY_ACCOUNT, story="timeouts, then bad credentials")


def run() -> None:
    """The ``nija`` console script."""
    raise SystemExit(main())
