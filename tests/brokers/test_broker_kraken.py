"""The ccxt adapter against the Kraken emulator: real ccxt, real HTTP on 127.0.0.1, no mocks.

Each test gets its own emulator (``kraken`` fixture), so faults and balances never leak.
"""

from __future__ import annotations

import logging
import time
from functools import partial

import ccxt
import pytest

from bot.brokers.ccxt.broker import CcxtBroker
from bot.brokers.factory import create_public_broker
from bot.errors import (
    AuthRejected,
    BadResponse,
    BrokerConfigError,
    BrokerError,
    InsufficientFunds,
    NetworkFailure,
    NetworkTimeout,
    VenueDataError,
)
from bot.isolation.failures import FailureType, classify
from bot.model import (
    AccountRef,
    AssetClass,
    BrokerSpec,
    Credentials,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
)
from bot.venue.market import VenueMarket
from nija_testkit.edge import assert_translated_from
from nija_testkit.emulator.kraken import KrakenVenue
from nija_testkit.emulator.server import EmulatorServer, Fault
from nija_testkit.secrets import assert_no_secret as _assert_no_secret

KEY = "FAKE-KRAKEN-KEY-0123456789"
# Valid base64 (so ccxt can sign with it) and still recognisable.
SECRET = "FAKEKRAKENSECRETFAKEKRAKENSECRET"
SYMBOLS = ("BTC/USD", "ETH/USD", "SOL/USD")


class Kraken:
    """The emulator for one test (a fresh venue on the run's shared server) and its account."""

    def __init__(self, server: EmulatorServer, balances: dict[str, float]) -> None:
        self.server = server
        self.venue: KrakenVenue = server.venue
        self.market = self.venue.market
        self.ledger = self.venue.add_account(KEY, SECRET, balances)

    def spec(self, *, key=KEY, secret=SECRET, symbols=SYMBOLS, timeout=5.0) -> BrokerSpec:
        return BrokerSpec(
            AccountRef("platform", "platform", "KRAKEN"),
            Credentials(key, secret),
            symbols=symbols,
            base_url=self.server.url,
            timeout_seconds=timeout,
            rate_limit=False,
        )

    def broker(self, **spec) -> CcxtBroker:
        return CcxtBroker(self.spec(**spec))

    def form(self, route: str, index: int = -1) -> dict[str, str]:
        return self.server.requests_to(route)[index].params()


@pytest.fixture
def server(venue_server) -> EmulatorServer:
    """The run's Kraken emulator, fresh for this test (tests/conftest.py)."""
    return venue_server("KRAKEN")


@pytest.fixture
def kraken(server):
    return Kraken(server, {"USD": 10000.0, "BTC": 0.01})


assert_no_secret = partial(_assert_no_secret, secrets=(KEY, SECRET), markers=("FAKE",))


def buy(cid: str, amount: float = 0.001, **kw) -> OrderRequest:
    return OrderRequest("BTC/USD", Side.BUY, OrderType.MARKET, cid, amount=amount, **kw)


# -- construction and metadata ---------------------------------------------------------------


def test_constructor_touches_no_network_and_names_the_account(kraken):
    broker = kraken.broker()
    assert kraken.server.requests == []
    assert broker.name == "KRAKEN"
    assert broker.asset_class is AssetClass.CRYPTO
    assert broker.account.key == "platform/platform/KRAKEN"
    assert_no_secret(broker)


def test_symbols_are_configured_and_listed_in_configured_order(kraken):
    broker = kraken.broker(symbols=("ETH/USD", "DOGE/USD", "BTC-USD", "ETH/USD"))
    assert broker.symbols() == ["ETH/USD", "BTC/USD"]
    broker.fetch_ticker("BTC/USD")
    broker.symbols()
    # Market metadata is loaded once per broker object.
    assert len(kraken.server.requests_to("markets")) == 1
    assert len(kraken.server.requests_to("assets")) == 1
    assert all(r.route is not None for r in kraken.server.requests)
    broker.refresh_markets()  # the venue layer's slow timer: the next use loads them again
    assert broker.symbols() == ["ETH/USD", "BTC/USD"]
    assert len(kraken.server.requests_to("markets")) == 2


# -- balances and positions -------------------------------------------------------------------


def test_balance_counts_cash_and_values_holdings(kraken):
    kraken.ledger.balances.update({"SOL": 0.001})  # $0.15 of SOL: dust
    bal = kraken.broker().fetch_balance()
    assert bal.cash == {"USD": 10000.0, "BTC": 0.01, "SOL": 0.001}
    assert bal.usd_cash == 10000.0
    assert bal.usd_equity == pytest.approx(10000.0 + 0.01 * 60000.0)
    assert kraken.form("balance")  # a signed POST with a nonce
    assert "nonce" in kraken.form("balance")


def test_equity_of_an_account_with_crypto_and_no_cash(server):
    bal = Kraken(server, {"BTC": 0.01}).broker().fetch_balance()
    assert bal.usd_cash == 0.0
    assert bal.usd_equity == pytest.approx(600.0)


def test_a_currency_without_a_market_counts_zero_but_stays_in_cash(kraken):
    kraken.ledger.balances.update({"DOGE": 1000.0})
    bal = kraken.broker().fetch_balance()
    assert bal.cash["DOGE"] == 1000.0
    assert bal.usd_equity == pytest.approx(10600.0)


def test_a_failed_pricing_call_propagates(kraken):
    kraken.server.inject("ticker", Fault("status", status=502))
    with pytest.raises(NetworkFailure) as info:
        kraken.broker().fetch_balance()
    assert type(info.value.__cause__) is ccxt.ExchangeNotAvailable


@pytest.fixture
def shared(kraken):
    """The venue's shared market data, as the daemon builds it: a client without a key."""
    market = VenueMarket("KRAKEN", create_public_broker([kraken.spec()]), timeout_seconds=5.0)
    yield market
    market.close()


def test_holdings_are_valued_at_the_venues_shared_prices_not_the_accounts_own(kraken, shared):
    kraken.ledger.balances.update({"ETH": 0.5})
    market = shared
    brokers = [kraken.broker() for _ in range(3)]  # three accounts' clients on one venue
    for broker in brokers:
        broker.value_holdings_with(market)
        bal = broker.fetch_balance()
        assert bal.usd_equity == pytest.approx(10000.0 + 0.01 * 60000.0 + 0.5 * 3000.0)
        positions = {p.symbol: p.market_value_usd for p in broker.fetch_positions()}
        assert positions == pytest.approx({"BTC/USD": 600.0, "ETH/USD": 1500.0})
    tickers = kraken.server.requests_to("ticker")
    assert len(tickers) == 2  # one per held symbol for the venue, not 2 per call per account
    assert all("api-key" not in r.headers for r in tickers)  # the venue's keyless client
    assert market.requests_by_operation["ticker"] == 2


def test_a_failed_shared_price_fails_the_balance_as_the_venues_failure(kraken, shared):
    broker = kraken.broker()
    broker.value_holdings_with(shared)
    kraken.server.inject("ticker", Fault("status", status=502))
    with pytest.raises(VenueDataError, match="KRAKEN ticker failed") as info:
        broker.fetch_balance()  # the BTC held is unknown, not worth 0
    assert type(info.value.__cause__) is NetworkFailure
    with pytest.raises(VenueDataError, match="next try in"):
        broker.fetch_positions()  # no request until the venue's retry interval has passed
    assert len(kraken.server.requests_to("ticker")) == 1


def test_positions_are_holdings_above_dust(kraken):
    kraken.ledger.balances.update({"SOL": 0.001, "ETH": 0.5})
    positions = {p.symbol: p for p in kraken.broker().fetch_positions()}
    assert set(positions) == {"BTC/USD", "ETH/USD"}
    assert positions["BTC/USD"].quantity == 0.01
    assert positions["ETH/USD"].market_value_usd == pytest.approx(1500.0)


# -- market data ------------------------------------------------------------------------------


def test_candles_are_oldest_first_in_utc_ms(kraken):
    start = 1_700_000_100_000
    rows = [[start + i * 300_000, 100 + i, 101 + i, 99 + i, 100.5 + i, 2.0 + i] for i in range(10)]
    kraken.market.set_candles("BTC/USD", rows)
    candles = kraken.broker().fetch_candles("BTC/USD", "5m", limit=4)
    assert list(candles.timestamp_ms) == [r[0] for r in rows[-4:]]
    assert list(candles.close) == pytest.approx([r[4] for r in rows[-4:]])
    assert list(candles.volume) == pytest.approx([r[5] for r in rows[-4:]])
    assert kraken.form("candles")["interval"] == "5"
    assert kraken.form("candles")["pair"] == "XXBTZUSD"


def test_ticker(kraken):
    kraken.market.set_price("ETH/USD", 3210.0)
    ticker = kraken.broker().fetch_ticker("ETH/USD")
    assert ticker.symbol == "ETH/USD"
    assert ticker.last == pytest.approx(3210.0)
    assert ticker.bid < ticker.last < ticker.ask


# -- orders -----------------------------------------------------------------------------------


def test_a_market_order_fills_and_moves_the_balances(kraken):
    order = kraken.broker().place_order(buy("nija-mkt-0001"))
    assert order.status is OrderStatus.FILLED
    assert order.client_order_id == "nija-mkt-0001"
    assert order.filled == pytest.approx(0.001)
    ask = kraken.market.bid_ask("BTC/USD")[1]
    assert order.average_price == pytest.approx(ask)
    assert kraken.ledger.balance("BTC") == pytest.approx(0.011)
    assert kraken.ledger.balance("USD") == pytest.approx(10000.0 - 0.001 * ask * 1.001)
    sent = kraken.form("create_order")
    assert sent["cl_ord_id"] == "nija-mkt-0001"  # Kraken's own client-id field
    assert (sent["pair"], sent["type"], sent["ordertype"]) == ("XXBTZUSD", "buy", "market")


def test_a_market_buy_by_notional_uses_volume_in_quote(kraken):
    order = kraken.broker().place_order(
        OrderRequest("BTC/USD", Side.BUY, OrderType.MARKET, "nija-quote-01", quote_amount=120.0)
    )
    sent = kraken.form("create_order")
    assert "viqc" in sent["oflags"]
    assert float(sent["volume"]) == 120.0
    assert order.status is OrderStatus.FILLED
    assert kraken.ledger.balance("USD") == pytest.approx(10000.0 - 120.0 * 1.001)


def test_a_market_sell_by_notional_is_sized_at_the_bid(kraken):
    order = kraken.broker().place_order(
        OrderRequest("BTC/USD", Side.SELL, OrderType.MARKET, "nija-sell-01", quote_amount=60.0)
    )
    bid = kraken.market.bid_ask("BTC/USD")[0]
    assert order.status is OrderStatus.FILLED
    assert order.filled == pytest.approx(60.0 / bid, rel=1e-6)


def test_limit_order_fetch_and_cancel_by_client_id(kraken):
    broker = kraken.broker()
    req = OrderRequest(
        "BTC/USD", Side.BUY, OrderType.LIMIT, "nija-lim-0001", amount=0.002, limit_price=50000.0
    )
    placed = broker.place_order(req)
    assert placed.status is OrderStatus.OPEN
    assert [o.client_order_id for o in broker.fetch_open_orders()] == ["nija-lim-0001"]
    assert [o.client_order_id for o in broker.fetch_open_orders("ETH/USD")] == []
    found = broker.fetch_order("nija-lim-0001")
    assert (found.status, found.venue_order_id, found.amount) == (
        OrderStatus.OPEN,
        placed.venue_order_id,
        0.002,
    )
    assert kraken.form("open_orders")["cl_ord_id"] == "nija-lim-0001"

    canceled = broker.cancel_order("nija-lim-0001")
    assert canceled.status is OrderStatus.CANCELED
    sent = kraken.form("cancel_order")
    assert sent["cl_ord_id"] == "nija-lim-0001" and "txid" not in sent
    assert broker.fetch_order("nija-lim-0001").status is OrderStatus.CANCELED
    assert broker.fetch_open_orders() == []
    assert kraken.ledger.balance("USD") == 10000.0


def test_a_limit_order_fills_when_the_market_crosses_it(kraken):
    broker = kraken.broker()
    req = OrderRequest(
        "BTC/USD", Side.BUY, OrderType.LIMIT, "nija-lim-0002", amount=0.001, limit_price=59000.0
    )
    broker.place_order(req)
    kraken.market.set_price("BTC/USD", 58000.0)
    order = broker.fetch_order("nija-lim-0002")
    assert order.status is OrderStatus.FILLED
    assert order.average_price == pytest.approx(59000.0)
    # Cancelling a filled order changes nothing and reports what it became.
    assert broker.cancel_order("nija-lim-0002").status is OrderStatus.FILLED


def test_an_unknown_client_id_is_none(kraken):
    broker = kraken.broker()
    assert broker.fetch_order("nija-never-sent") is None
    assert broker.cancel_order("nija-never-sent") is None


def test_a_failed_lookup_raises_instead_of_none(kraken):
    kraken.server.inject("closed_orders", Fault("status", status=503))
    with pytest.raises(NetworkFailure):
        kraken.broker().fetch_order("nija-never-sent")


def test_real_insufficient_funds(kraken):
    with pytest.raises(InsufficientFunds) as info:
        kraken.broker().place_order(buy("nija-big-0001", amount=5.0))
    assert classify(info.value) is FailureType.BALANCE_ERROR
    assert kraken.ledger.balance("USD") == 10000.0


def test_a_client_id_kraken_cannot_take_is_refused_by_the_venue(kraken):
    # Kraken takes a UUID, 32 hex chars, or free text of at most 18 characters.
    with pytest.raises(BrokerError) as info:
        kraken.broker().place_order(buy("nija-platform-kraken-123456"))
    assert type(info.value.__cause__) is ccxt.ExchangeError
    assert kraken.ledger.all_orders() == []


# -- faults -----------------------------------------------------------------------------------

BALANCE_FAULTS = [
    (Fault("status", status=401), ccxt.AuthenticationError, FailureType.AUTHENTICATION_ERROR),
    (Fault("status", status=403), ccxt.PermissionDenied, FailureType.AUTHENTICATION_ERROR),
    (Fault("status", status=418), ccxt.DDoSProtection, FailureType.RATE_LIMIT_ERROR),
    (
        Fault("status", status=429, retry_after=7),
        ccxt.DDoSProtection,
        FailureType.RATE_LIMIT_ERROR,
    ),
    (Fault("status", status=500), ccxt.ExchangeNotAvailable, FailureType.NETWORK_ERROR),
    (Fault("status", status=502), ccxt.ExchangeNotAvailable, FailureType.NETWORK_ERROR),
    (Fault("status", status=503), ccxt.ExchangeNotAvailable, FailureType.NETWORK_ERROR),
    (Fault("status", status=504), ccxt.ExchangeNotAvailable, FailureType.NETWORK_ERROR),
    (Fault("venue_error", code="auth"), ccxt.AuthenticationError, FailureType.AUTHENTICATION_ERROR),
    (Fault("venue_error", code="rate_limit"), ccxt.DDoSProtection, FailureType.RATE_LIMIT_ERROR),
    (Fault("venue_error", code="server"), ccxt.ExchangeNotAvailable, FailureType.NETWORK_ERROR),
    (Fault("venue_error", code="unknown_symbol"), ccxt.ExchangeError, FailureType.API_ERROR),
    (Fault("malformed_json"), BadResponse, FailureType.API_ERROR),
    (Fault("html", status=502), ccxt.ExchangeNotAvailable, FailureType.NETWORK_ERROR),
    (Fault("drop"), ccxt.NetworkError, FailureType.NETWORK_ERROR),
]


@pytest.mark.parametrize(
    ("fault", "expected", "failure"),
    BALANCE_FAULTS,
    ids=[f"{f.kind}-{f.code or f.status}" for f, _, _ in BALANCE_FAULTS],
)
def test_balance_fault_is_translated_from_the_sdk_exception(kraken, fault, expected, failure):
    broker = kraken.broker()
    kraken.server.inject("balance", fault)
    with pytest.raises(BrokerError) as info:  # no ccxt exception leaves the adapter
        broker.fetch_balance()
    assert_translated_from(info.value, expected)
    assert classify(info.value) is failure
    assert_no_secret(info.value, broker)


ORDER_FAULTS = [
    (
        Fault("venue_error", code="insufficient_funds"),
        ccxt.InsufficientFunds,
        FailureType.BALANCE_ERROR,
    ),
    (Fault("venue_error", code="invalid_order"), ccxt.InvalidOrder, FailureType.EXECUTION_ERROR),
    (Fault("malformed_json"), BadResponse, FailureType.API_ERROR),
    (Fault("status", status=504), ccxt.ExchangeNotAvailable, FailureType.NETWORK_ERROR),
]


@pytest.mark.parametrize(
    ("fault", "expected", "failure"),
    ORDER_FAULTS,
    ids=[f"{f.kind}-{f.code or f.status}" for f, _, _ in ORDER_FAULTS],
)
def test_order_fault_is_translated_from_the_sdk_exception(kraken, fault, expected, failure):
    broker = kraken.broker()
    kraken.server.inject("create_order", fault)
    with pytest.raises(BrokerError) as info:
        broker.place_order(buy("nija-fault-001"))
    assert_translated_from(info.value, expected)
    assert classify(info.value) is failure
    assert_no_secret(info.value, broker)
    assert kraken.ledger.all_orders() == []


def test_malformed_candles_are_a_response_error_not_an_empty_series(kraken):
    kraken.server.inject("candles", Fault("malformed_json"))
    with pytest.raises(BadResponse):
        kraken.broker().fetch_candles("BTC/USD")


def test_a_hung_route_returns_within_the_timeout(kraken):
    broker = kraken.broker(timeout=1.0)
    broker.symbols()  # markets loaded: only the hung call is timed
    kraken.server.inject("balance", Fault("hang", seconds=10))
    started = time.monotonic()
    with pytest.raises(NetworkTimeout) as info:
        broker.fetch_balance()
    assert time.monotonic() - started < 2.0
    assert classify(info.value) is FailureType.NETWORK_ERROR


def test_one_call_of_many_requests_stays_within_its_budget(kraken):
    kraken.ledger.balances.update({"ETH": 1.0, "SOL": 10.0})
    broker = kraken.broker(timeout=1.0)
    broker.symbols()
    kraken.server.inject("ticker", Fault("latency", seconds=0.6))
    started = time.monotonic()
    with pytest.raises(NetworkTimeout):
        broker.fetch_balance()  # balance + two slow tickers > 1 s
    assert time.monotonic() - started < 1.5


# -- credentials ------------------------------------------------------------------------------


def test_a_secret_that_is_not_base64_is_a_config_error(kraken):
    bad = "FAKE-KRAKEN-SECRET-not-base64!"
    broker = kraken.broker(secret=bad)
    with pytest.raises(BrokerConfigError) as info:
        broker.fetch_balance()
    assert classify(info.value) is FailureType.AUTHENTICATION_ERROR
    assert "base64" in str(info.value)
    for text in (str(info.value), repr(info.value), repr(broker)):
        assert bad not in text and "not-base64" not in text
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_an_unknown_key_is_an_authentication_error(kraken):
    with pytest.raises(AuthRejected) as info:
        kraken.broker(key="FAKE-KRAKEN-KEY-unknown").fetch_balance()
    assert classify(info.value) is FailureType.AUTHENTICATION_ERROR


def test_a_wrong_secret_is_caught_by_the_signature_check(kraken):
    # Kraken says "EAPI:Invalid signature", which ccxt maps to no specific class.
    other = "FAKEKRAKENSECRETOTHERKRAKENSECRT"
    with pytest.raises(BrokerError) as info:
        kraken.broker(secret=other).fetch_balance()
    assert type(info.value) is BrokerError
    assert type(info.value.__cause__) is ccxt.ExchangeError
    assert "EAPI:Invalid signature" in str(info.value)
    assert other not in str(info.value) and other not in repr(info.value)


def test_sdk_debug_logging_never_carries_credentials(kraken, caplog):
    caplog.set_level(logging.DEBUG)
    broker = kraken.broker()
    broker.fetch_balance()
    broker.place_order(buy("nija-log-0001"))
    assert kraken.server.requests_to("create_order")
    for record in caplog.records:
        text = record.getMessage()
        assert KEY not in text and SECRET not in text


def test_a_32_hex_client_id_round_trips(kraken):
    cid = "0123456789abcdef0123456789abcdef"  # the shape bot.engine.orders.client_order_id makes
    broker = kraken.broker()
    assert broker.place_order(buy(cid)).client_order_id == cid
    assert broker.fetch_order(cid).status is OrderStatus.FILLED
