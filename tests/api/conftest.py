"""The HTTP API in-process over real HTTP: a supervisor of paper accounts, the real server on
127.0.0.1 (a free port), ``requests`` as the client, a fake clock for the supervisor."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import requests
import structlog

from bot.api.server import ApiServer, start_api
from bot.brokers.paper.broker import MarketData, PaperBroker
from bot.brokers.paper.synthetic import SyntheticMarket
from bot.config.settings import load_accounts, load_settings
from bot.daemon.supervisor import IndependentBrokerTrader
from bot.daemon.wiring import BrokerFactories, make_trader
from bot.isolation.manager import AccountIsolationManager
from bot.model import AccountRef, BrokerSpec
from bot.redact import Redactor
from nija_testkit import harness
from nija_testkit.clock import FakeClock

SYMBOLS = ("BTC/USD",)
# Two Kraken user accounts, read from the environment as bot.py reads them (a reload
# re-reads them); their brokers are paper brokers on the synthetic market.
ALICE, BOB = "user/alice/KRAKEN", "user/bob/KRAKEN"
KEYS = {
    "KRAKEN_USER_ALICE_API_KEY": "FAKE-KRAKEN-KEY-ALICE-0001",
    "KRAKEN_USER_ALICE_API_SECRET": "QUxJQ0VTRUNSRVQwMUFMSUNFU0VDUkVUMDE=",
    "KRAKEN_USER_BOB_API_KEY": "FAKE-KRAKEN-KEY-BOB-0002",
    "KRAKEN_USER_BOB_API_SECRET": "RkFLRUJPQlNFQ1JFVDAyRkFLRUJPQlNFQ1I=",
}
TOKEN = "test-token-0123456789abcdef"

wait_for = partial(harness.wait_for, timeout=10.0, what="condition", interval=0.02)


class ApiDaemon:
    """A running supervisor and its API; ``env`` is what a reload re-reads. ``market(clock)``:
    the market data every account reads and fills from (default: the synthetic market)."""

    def __init__(
        self,
        tmp_path: Path,
        market: Callable[[FakeClock], MarketData] | None = None,
        **settings: str,
    ) -> None:
        self.env: dict[str, str] = (
            dict(KEYS)
            | {
                "NIJA_DATA_DIR": str(tmp_path),
                "NIJA_CYCLE_SECONDS": "0.2",
                "NIJA_CALL_TIMEOUT_SECONDS": "1",
                "NIJA_FUNDED_RECHECK_SECONDS": "60",
                "NIJA_HTTP_PORT": "0",
                "KRAKEN_SYMBOLS": ",".join(SYMBOLS),
            }
            | settings
        )
        self.settings = load_settings(self.env)
        self.clock = FakeClock()
        self.market = market or (lambda _clock: SyntheticMarket(SYMBOLS, seed=1))
        self.redactor = Redactor(tuple(v for k, v in KEYS.items() if k.endswith("SECRET")))
        self.isolation = AccountIsolationManager(clock=self.clock, redactor=self.redactor)
        self.built: list[BrokerSpec] = []  # every trading client built, in order
        factories = BrokerFactories(
            venue=self.paper,
            trading=self.trading,
            public=lambda specs: self.market(self.clock),  # the venue's shared data
        )
        specs = load_accounts(self.env, self.settings).specs
        assert [s.account.key for s in specs] == [ALICE, BOB]
        self.sup = IndependentBrokerTrader(
            self.settings,
            specs,
            self.isolation,
            trader_factory=make_trader,
            factories=factories,
            clock=self.clock,
            redactor=self.redactor,
            read_env=lambda: dict(self.env),
        )
        self.api: ApiServer | None = None

    def paper(self, spec: BrokerSpec) -> PaperBroker:
        return PaperBroker(spec, self.market(self.clock), starting_usd=10_000.0)

    def trading(self, spec: BrokerSpec, market: object = None) -> PaperBroker:
        self.built.append(spec)
        return self.paper(spec)

    def start(self) -> ApiDaemon:
        self.sup.start_independent_multi_broker_trading()
        self.api = start_api(self.settings, self.sup, log=structlog.get_logger())
        return self

    def stop(self) -> None:
        if self.api is not None:
            self.api.stop()
        self.sup.stop_independent_trading(timeout=3)

    @property
    def url(self) -> str:
        assert self.api is not None
        return self.api.url

    def request(
        self, method: str, path: str, token: str | None = TOKEN, **kw: Any
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers |= kw.pop("headers", {})
        return requests.request(method, self.url + path, headers=headers, timeout=10, **kw)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.request("POST", path, **kw)

    def worker(self, key: str):
        return self.sup.workers[key]


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[ApiDaemon]:
    """Alice and Bob trading, the API on a free port with ``TOKEN``."""
    d = ApiDaemon(tmp_path, NIJA_HTTP_TOKEN=TOKEN).start()
    try:
        wait_for(lambda: d.worker(ALICE).cycles >= 1 and d.worker(BOB).cycles >= 1, what="cycles")
        yield d
    finally:
        d.stop()


def paper_spec(ident: str) -> BrokerSpec:
    return BrokerSpec(AccountRef("user", ident, "PAPER"), symbols=SYMBOLS, timeout_seconds=1.0)
