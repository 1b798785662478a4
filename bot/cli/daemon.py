"""The daemon's command: ``python3 bot.py``, ``python -m bot`` or the ``nija`` script.

Trade every funded broker account in its own isolated thread until stopped.
Settings come from the environment and from .env (the real environment wins).
With no broker credentials at all it runs a demo on simulated accounts.

Exit codes: 0 clean stop (SIGTERM, SIGINT, or --once done); 2 configuration error.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from bot.brokers.factory import load_adapters
from bot.clock import SYSTEM_CLOCK
from bot.config.env import load_env
from bot.config.limits import apply_limits
from bot.config.settings import load_accounts, load_settings, secret_values
from bot.config.unknown import unknown_variables
from bot.daemon.demo import FAULTY_ACCOUNT, demo_factories, demo_settings, demo_specs
from bot.daemon.log import get_logger, setup_logging, shutdown_logging
from bot.daemon.supervisor import IndependentBrokerTrader
from bot.daemon.wiring import TraderFactory, circuit_config, make_trader
from bot.errors import ConfigError
from bot.isolation.manager import get_isolation_manager

EXIT_OK, EXIT_CONFIG = 0, 2


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

    env = load_env(args.env_file)  # the real environment wins
    os.environ.update(env)  # so libraries that read os.environ (proxies, CA files) see .env too
    try:
        settings = load_settings(env)
    except ConfigError as exc:
        print(f"NIJA configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    settings, notices = apply_limits(settings)
    setup_logging(settings.log_file, secret_values(env))
    log = get_logger()
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
    load_adapters(specs)

    isolation = get_isolation_manager(circuit_config(settings))
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
    )
    _banner(log, settings, specs, demo)

    stop = threading.Event()

    def request_stop(signum: int, _frame) -> None:
        log.info("signal_received", signal=signal.Signals(signum).name, action="stopping")
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        trader.start_independent_multi_broker_trading()
        trader.run_until(stop)
    finally:
        trader.stop_independent_trading()
        shutdown_logging()
    return EXIT_OK


def _banner(log, settings, specs, demo: bool) -> None:
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
    )
    if demo:
        log.info("demo", faulty_account=FAULTY_ACCOUNT, story="timeouts, then bad credentials")


def run() -> None:
    """The ``nija`` console script."""
    raise SystemExit(main())
