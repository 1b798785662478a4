"""The VenueHub: one Venue per venue among the accounts, each over one public-data client."""

from __future__ import annotations

import socket

import pytest

from bot.brokers.alpaca_stocks.broker import AlpacaBroker
from bot.brokers.ccxt.broker import CcxtBroker
from bot.brokers.factory import create_public_broker, public_spec
from bot.errors import BrokerConfigError, ConfigError, VenueDataError
from bot.model import AccountRef, BrokerSpec, Credentials
from bot.venue.hub import VenueHub
from nija_testkit.clock import FakeClock


def spec(ident: str, broker: str, symbols: tuple[str, ...], key: str = "") -> BrokerSpec:
    creds = Credentials(key or f"FAKE-{broker}-KEY-{ident}", f"FAKE-{broker}-SECRET-{ident}-x9")
    return BrokerSpec(AccountRef("user", ident, broker), creds, symbols=symbols)


def test_the_public_client_has_no_key_where_the_venue_serves_data_without_one():
    specs = [spec("a", "KRAKEN", ("BTC/USD",)), spec("b", "KRAKEN", ("ETH/USD", "BTC/USD"))]
    public = public_spec(specs)
    assert public.account.key == "venue/public/KRAKEN"
    assert public.credentials == Credentials()  # nothing secret in it
    assert public.symbols == ("BTC/USD", "ETH/USD")  # every symbol any account trades


def test_alpacas_data_client_uses_its_first_accounts_key():
    specs = [spec("first", "ALPACA", ("SPY",)), spec("second", "ALPACA", ("AAPL",))]
    public = public_spec(specs)
    assert public.credentials.api_key == "FAKE-ALPACA-KEY-first"
    assert public.symbols == ("SPY", "AAPL")


def test_a_public_spec_is_of_one_venue():
    with pytest.raises(ValueError, match="one venue"):
        public_spec([spec("a", "KRAKEN", ()), spec("b", "OKX", ())])


def test_public_clients_build_offline(monkeypatch):
    def no_network(*_args, **_kwargs):
        raise AssertionError("building a client must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    kraken = create_public_broker([spec("a", "KRAKEN", ("BTC/USD",))])
    alpaca = create_public_broker([spec("a", "ALPACA", ("SPY",))])
    try:
        assert isinstance(kraken, CcxtBroker) and isinstance(alpaca, AlpacaBroker)
    finally:
        kraken.close()
        alpaca.close()


class Source:
    def __init__(self, name: str) -> None:
        self.name = name

    def symbols(self) -> list[str]:
        return [self.name]


def test_one_venue_per_venue_name_in_account_order():
    built: list[list[str]] = []

    def make(group):
        built.append([s.account.key for s in group])
        return Source(group[0].account.broker)

    specs = [
        spec("a", "OKX", ()),
        spec("b", "KRAKEN", ()),
        spec("c", "OKX", ()),
    ]
    hub = VenueHub.build(specs, make, clock=FakeClock(), timeout_seconds=2.0)
    assert list(hub) == ["OKX", "KRAKEN"]
    assert built == [["user/a/OKX", "user/c/OKX"], ["user/b/KRAKEN"]]
    okx = hub.get("OKX")
    assert okx.name == "OKX" and okx.market.client.name == "OKX"
    assert okx.market.timeout_seconds == 2.0
    assert hub.get("OKX") is okx and hub.venues() == [okx, hub.get("KRAKEN")]
    with pytest.raises(ConfigError, match="no venue 'BINANCE'"):
        hub.get("BINANCE")


def test_a_venue_whose_client_cannot_be_built_fails_its_data_not_the_daemon():
    def make(group):
        raise BrokerConfigError("the first account's secret is not usable")

    hub = VenueHub.build([spec("a", "ALPACA", ("SPY",))], make, clock=FakeClock())
    market = hub.get("ALPACA").market
    with pytest.raises(VenueDataError, match="could not be built") as failed:
        market.candles("SPY", "5m", 10)
    assert isinstance(failed.value.__cause__, ConfigError)
    with pytest.raises(VenueDataError):
        market.listed()
    hub.close()
