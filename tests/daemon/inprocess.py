"""The daemon in-process, as the daemon tests (and the cluster's) drive it: paper accounts on
the synthetic market, cycles of 0.2 s, a fake watchdog clock the test moves by hand."""

from __future__ import annotations

from functools import partial

from bot.brokers.paper.broker import MarketData, PaperBroker
from bot.brokers.paper.synthetic import SyntheticMarket
from bot.config.settings import load_settings
from bot.daemon.supervisor import IndependentBrokerTrader
from bot.daemon.wiring import make_trader
from bot.daemon.worker import AccountWorker
from bot.isolation.manager import AccountIsolationManager
from bot.model import AccountRef, BrokerSpec
from nija_testkit import harness
from nija_testkit.clock import FakeClock

SYMBOLS = ("BTC/USD",)


def spec(ident: str) -> BrokerSpec:
    """The paper account ``user/<ident>/PAPER``."""
    return BrokerSpec(AccountRef("user", ident, "PAPER"), symbols=SYMBOLS, timeout_seconds=1.0)


def paper(s: BrokerSpec, market: MarketData | None = None, usd: float = 10_000.0) -> PaperBroker:
    """An account's paper broker: over its venue's shared ``market`` when trading, else (the
    funded check) over a synthetic market of its own."""
    return PaperBroker(s, market or SyntheticMarket(SYMBOLS, seed=1), starting_usd=usd)


# The daemon runs in-process here, with cycles of 0.2 s: poll often, give up after 10 s.
wait_for = partial(harness.wait_for, timeout=10.0, what="condition", interval=0.02)


class Daemon:
    """The real ``IndependentBrokerTrader`` on a ``FakeClock``; a context manager that starts
    and stops it. ``env`` overrides the settings."""

    def __init__(self, tmp_path, specs, factories, trader_factory=make_trader, **env) -> None:
        base = {
            "NIJA_DATA_DIR": str(tmp_path),
            "NIJA_CYCLE_SECONDS": "0.2",
            "NIJA_CALL_TIMEOUT_SECONDS": "1",
            "NIJA_FUNDED_RECHECK_SECONDS": "60",
        }
        self.settings = load_settings(base | env)
        self.clock = FakeClock()
        self.isolation = AccountIsolationManager(clock=self.clock)
        self.trader = IndependentBrokerTrader(
            self.settings,
            specs,
            self.isolation,
            trader_factory=trader_factory,
            factories=factories,
            clock=self.clock,
        )

    def __enter__(self):
        self.trader.start_independent_multi_broker_trading()
        return self

    def __exit__(self, *exc) -> None:
        self.trader.stop_independent_trading(timeout=3)

    def worker(self, ident: str) -> AccountWorker:
        return self.trader.workers[f"user/{ident}/PAPER"]

    def health(self, ident: str) -> dict:
        return self.isolation.get_account_status("user", ident, "PAPER")[1]

    def checks_done(self) -> None:
        """Wait until the funds checks a watchdog tick started in the background are done."""
        wait_for(lambda: not self.trader.admission.checking(), what="the funds checks")
