"""One Coinbase account for the adapter's tests: its CDP key (a fresh PEM per run), its
symbols, a ``CoinbaseBroker`` on an emulator (``make_broker``) and its funds there
(``fund``); shared by the adapter's, its fixtures' and its venue rules' tests."""

from __future__ import annotations

from bot.brokers.coinbase_advanced.broker import CoinbaseBroker
from bot.model import AccountRef, BrokerSpec, Credentials
from nija_testkit.emulator.coinbase import CoinbaseVenue
from nija_testkit.emulator.server import EmulatorServer
from nija_testkit.secrets import new_pem

KEY_NAME = "organizations/FAKE-COINBASE-ORG/apiKeys/FAKE-COINBASE-KEY-0001"
SYMBOLS = ("BTC/USD", "ETH/USD")
PEM = new_pem()


def make_broker(
    server: EmulatorServer,
    *,
    key: str = KEY_NAME,
    secret: str = PEM,
    timeout: float = 3.0,
    symbols: tuple[str, ...] = SYMBOLS,
) -> CoinbaseBroker:
    spec = BrokerSpec(
        account=AccountRef("user", "alice", "coinbase"),
        credentials=Credentials(api_key=key, api_secret=secret),
        symbols=symbols,
        base_url=server.url,
        timeout_seconds=timeout,
        rate_limit=False,
    )
    return CoinbaseBroker(spec)


def fund(venue: CoinbaseVenue, balances: dict[str, float]):
    return venue.add_account(KEY_NAME, PEM, balances)
