"""CcxtBroker for BINANCE: the real ccxt over real HTTP to the Binance emulator on 127.0.0.1.

Nothing is mocked: the emulator speaks Binance's spot REST API v3 (signatures checked), and
every assertion is about what the adapter returns, what it raised, or what reached the venue.
"""

from __future__ import annotations

import time
from functools import partial

import ccxt
import pytest

from bot.brokers.ccxt.broker import CcxtBroker
from bot.brokers.ccxt.config import redirect_urls
from bot.errors import (
    AuthRejected,
    BadResponse,
    BrokerError,
    InsufficientFunds,
    NetworkTimeout,
    RateLimited,
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
from nija_testkit.edge import assert_translated_from
from nija_testkit.emulator.binance import BinanceVenue
from nija_testkit.emulator.core import Market
from nija_testkit.emulator.server import EmulatorServer, Fault, Recorded
from nija_testkit.secrets import assert_no_secret as _assert_no_secret

KEY = "FAKE-BINANCE-KEY-7f3a9c"
SECRET = "FAKE-BINANCE-SECRET-91b2e4d0"
BTC = 60000.0
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")


@pytest.fixture
def market() -> Market:
    # No spread: bid = ask = last, so valuations and fills are exact.
    return Market(spread_bps=0.0)


@pytest.fixture
def server(venue_server, market: Market) -> EmulatorServer:
    """The run's Binance emulator with a fresh venue on ``market`` (tests/conftest.py)."""
    return venue_server("BINANCE", market)


@pytest.fixture
def venue(server: EmulatorServer) -> BinanceVenue:
    return server.venue


@pytest.fixture
def ledger(venue: BinanceVenue):
    return venue.add_account(KEY, SECRET, {"USDT": 1000.0, "BTC": 0.01})


def _spec(server: EmulatorServer, secret: str, timeout: float, symbols) -> BrokerSpec:
    return BrokerSpec(
        AccountRef("platform", "platform", "BINANCE"),
        Credentials(api_key=KEY, api_secret=secret),
        symbols=tuple(symbols),
        base_url=server.url,
        timeout_seconds=timeout,
        rate_limit=False,
    )


@pytest.fixture
def make_broker():
    """Build CcxtBrokers on the emulator; every one is closed after the test."""
    built: list[CcxtBroker] = []

    def make(server, *, secret=SECRET, timeout=2.0, symbols=SYMBOLS) -> CcxtBroker:
        built.append(CcxtBroker(_spec(server, secret, timeout, symbols)))
        return built[-1]

    yield make
    for b in built:
        b.close()


@pytest.fixture
def broker(server, ledger, make_broker) -> CcxtBroker:
    return make_broker(server)


form_of = Recorded.params  # the query string and the form body together


assert_no_secret = partial(_assert_no_secret, secrets=(KEY, SECRET), markers=("FAKE-",))


# -- construction and markets ---------------------------------------------------------------


def test_constructor_is_offline_and_names_the_account(server, ledger, make_broker):
    broker = make_broker(server)
    assert server.requests == []
    assert broker.name == "BINANCE"
    assert broker.asset_class is AssetClass.CRYPTO
    assert broker.account.key == "platform/platform/BINANCE"
    assert_no_secret(repr(broker), str(broker))


def test_symbols_are_configured_order_intersected_with_spot_markets_loaded_once(
    server, ledger, make_broker
):
    broker = make_broker(server, symbols=("SOL/USDT", "DOGE/USDT", "BTC/USDT"))
    assert broker.symbols() == ["SOL/USDT", "BTC/USDT"]
    assert broker.symbols() == ["SOL/USDT", "BTC/USDT"]
    broker.fetch_ticker("BTC/USDT")
    assert len(server.requests_to("markets")) == 1
    # Only spot market data: no sapi currencies, no futures exchangeInfo, nothing unrouted.
    paths = {r.path for r in server.requests}
    assert all(p.startswith("/api/v3/") for p in paths), paths
    assert all(r.route is not None for r in server.requests)


def test_a_failed_market_load_is_retried_on_the_next_call(server, ledger, make_broker):
    broker = make_broker(server)
    server.inject("markets", Fault("status", status=503, times=1))
    with pytest.raises(BrokerError) as info:
        broker.symbols()
    assert_translated_from(info.value, ccxt.OperationFailed)
    assert broker.symbols() == list(SYMBOLS)
    assert len(server.requests_to("markets")) == 2


# -- balances and positions -----------------------------------------------------------------


def test_balance_cash_and_equity(server, venue, market, make_broker):
    venue.add_account(KEY, SECRET, {"USDT": 1000.0, "USDC": 50.0, "BTC": 0.01, "XYZ": 5.0})
    balance = make_broker(server).fetch_balance()
    assert balance.cash["USDT"] == pytest.approx(1000.0)
    assert balance.cash["BTC"] == pytest.approx(0.01)
    assert balance.usd_cash == pytest.approx(1050.0)
    # XYZ has no market to price it in: it counts 0.
    assert balance.usd_equity == pytest.approx(1050.0 + 0.01 * BTC)


def test_free_balance_excludes_what_an_open_order_holds(server, venue, make_broker):
    """An exit may sell only what is free: an open order's hold is not."""
    venue.add_account(KEY, SECRET, {"USDT": 1000.0, "BTC": 0.01})
    broker = make_broker(server)
    assert broker.fetch_balance().free_amount("BTC") == pytest.approx(0.01)
    broker.place_order(
        OrderRequest("BTC/USDT", Side.SELL, OrderType.LIMIT, "nija-bn-h1", amount=0.004,
                     limit_price=BTC * 2)
    )  # fmt: skip
    balance = broker.fetch_balance()
    assert balance.cash["BTC"] == pytest.approx(0.01)
    assert balance.free_amount("BTC") == pytest.approx(0.006)


def test_an_account_holding_only_crypto_is_funded(server, venue, make_broker):
    venue.add_account(KEY, SECRET, {"BTC": 500.0 / BTC})
    balance = make_broker(server).fetch_balance()
    assert balance.usd_cash == 0.0
    assert balance.usd_equity == pytest.approx(500.0)


def test_a_failed_pricing_call_propagates_instead_of_counting_zero(server, venue, make_broker):
    venue.add_account(KEY, SECRET, {"USDT": 10.0, "BTC": 0.01})
    broker = make_broker(server)
    broker.symbols()
    server.inject("ticker", Fault("status", status=504))
    with pytest.raises(NetworkTimeout):
        broker.fetch_balance()


def test_positions_are_holdings_above_dust(server, venue, make_broker):
    venue.add_account(KEY, SECRET, {"USDT": 100.0, "BTC": 0.01, "ETH": 0.0001})  # ETH: $0.30
    positions = make_broker(server).fetch_positions()
    assert [p.symbol for p in positions] == ["BTC/USDT"]
    assert positions[0].quantity == pytest.approx(0.01)
    assert positions[0].market_value_usd == pytest.approx(0.01 * BTC)


# -- market data ----------------------------------------------------------------------------


def test_candles_oldest_first_in_utc_ms(broker, server):
    candles = broker.fetch_candles("BTC/USDT", "5m", limit=50)
    assert len(candles) == 50
    steps = set((candles.timestamp_ms[1:] - candles.timestamp_ms[:-1]).tolist())
    assert steps == {300_000}
    assert abs(int(candles.timestamp_ms[-1]) - time.time() * 1000) < 300_000
    assert candles.close[-1] == pytest.approx(BTC)
    assert (candles.high >= candles.low).all()
    query = server.requests_to("candles")[-1].query
    assert query["symbol"] == ["BTCUSDT"] and query["interval"] == ["5m"]
    assert query["limit"] == ["50"]


def test_ticker(broker, market):
    market.set_price("ETH/USDT", 3210.5)
    ticker = broker.fetch_ticker("ETH/USDT")
    assert ticker.symbol == "ETH/USDT"
    assert ticker.last == pytest.approx(3210.5)
    assert ticker.bid == pytest.approx(3210.5) and ticker.ask == pytest.approx(3210.5)


# -- orders ---------------------------------------------------------------------------------


def test_market_buy_fills_moves_balances_and_sends_client_id(broker, server, ledger):
    order = broker.place_order(
        OrderRequest("BTC/USDT", Side.BUY, OrderType.MARKET, "nija-bn-m1", amount=0.001)
    )
    assert order.client_order_id == "nija-bn-m1"
    assert order.status is OrderStatus.FILLED
    assert order.filled == pytest.approx(0.001)
    assert order.average_price == pytest.approx(BTC)
    assert order.venue_order_id
    # Binance takes a buy's commission from the coin bought (no BNB here): 0.1% of 0.001 BTC.
    assert (order.fee, order.fee_currency) == (pytest.approx(0.000001), "BTC")
    assert order.base_received("BTC") == pytest.approx(0.000999)
    assert ledger.balance("BTC") == pytest.approx(0.01 + 0.000999)
    assert ledger.balance("USDT") == pytest.approx(1000.0 - 60.0)
    sent = form_of(server.requests_to("create_order")[-1])
    assert sent["newClientOrderId"] == "nija-bn-m1"
    assert sent["type"] == "MARKET" and sent["side"] == "BUY"


def test_market_buy_by_quote_amount_uses_quote_order_qty(broker, server, ledger):
    order = broker.place_order(
        OrderRequest("BTC/USDT", Side.BUY, OrderType.MARKET, "nija-bn-q1", quote_amount=60.0)
    )
    assert order.status is OrderStatus.FILLED
    assert order.filled == pytest.approx(0.001)
    sent = form_of(server.requests_to("create_order")[-1])
    assert float(sent["quoteOrderQty"]) == pytest.approx(60.0)
    assert "quantity" not in sent
    assert ledger.balance("BTC") == pytest.approx(0.01 + 0.000999)
    assert ledger.balance("USDT") == pytest.approx(1000.0 - 60.0)


def test_market_sell(broker, ledger):
    order = broker.place_order(
        OrderRequest("BTC/USDT", Side.SELL, OrderType.MARKET, "nija-bn-s1", amount=0.005)
    )
    assert order.status is OrderStatus.FILLED
    assert ledger.balance("BTC") == pytest.approx(0.005)
    assert ledger.balance("USDT") == pytest.approx(1000.0 + 300.0 * 0.999)


def test_limit_order_fetch_list_cancel_by_client_id(broker, server, ledger):
    placed = broker.place_order(
        OrderRequest(
            "BTC/USDT", Side.BUY, OrderType.LIMIT, "nija-bn-l1", amount=0.002, limit_price=50000.0
        )
    )
    assert placed.status is OrderStatus.OPEN
    assert placed.client_order_id == "nija-bn-l1"
    assert form_of(server.requests_to("create_order")[-1])["price"] == "50000"

    fetched = broker.fetch_order("nija-bn-l1", "BTC/USDT")
    assert fetched is not None and fetched.status is OrderStatus.OPEN
    assert fetched.venue_order_id == placed.venue_order_id
    assert form_of(server.requests_to("fetch_order")[-1])["origClientOrderId"] == "nija-bn-l1"

    assert [o.client_order_id for o in broker.fetch_open_orders("BTC/USDT")] == ["nija-bn-l1"]
    assert [o.client_order_id for o in broker.fetch_open_orders()] == ["nija-bn-l1"]

    canceled = broker.cancel_order("nija-bn-l1", "BTC/USDT")
    # Binance names the cancel request in ``clientOrderId``; the order keeps its own id.
    assert canceled is not None and canceled.client_order_id == "nija-bn-l1"
    assert canceled.status is OrderStatus.CANCELED
    assert form_of(server.requests_to("cancel_order")[-1])["origClientOrderId"] == "nija-bn-l1"
    assert broker.fetch_order("nija-bn-l1", "BTC/USDT").status is OrderStatus.CANCELED
    assert broker.fetch_open_orders() == []


def test_fetch_order_without_symbol_finds_it_by_client_id(broker):
    broker.place_order(
        OrderRequest(
            "ETH/USDT", Side.BUY, OrderType.LIMIT, "nija-bn-e1", amount=0.1, limit_price=2000
        )
    )
    found = broker.fetch_order("nija-bn-e1")
    assert found is not None and found.symbol == "ETH/USDT"
    assert broker.cancel_order("nija-bn-e1").status is OrderStatus.CANCELED


def test_a_resting_limit_order_fills_when_the_market_crosses(broker, market, ledger):
    broker.place_order(
        OrderRequest(
            "BTC/USDT", Side.BUY, OrderType.LIMIT, "nija-bn-l2", amount=0.001, limit_price=59000
        )
    )
    market.set_price("BTC/USDT", 58000.0)
    order = broker.fetch_order("nija-bn-l2", "BTC/USDT")
    assert order.status is OrderStatus.FILLED
    assert order.average_price == pytest.approx(59000.0)
    assert ledger.balance("BTC") == pytest.approx(0.01 + 0.000999)


def test_unknown_client_id_is_none(broker, server):
    assert broker.fetch_order("nija-bn-nope", "BTC/USDT") is None
    assert broker.fetch_order("nija-bn-nope") is None
    assert broker.cancel_order("nija-bn-nope", "BTC/USDT") is None


def test_a_failed_order_query_raises_never_none(broker, server):
    broker.symbols()
    server.inject("fetch_order", Fault("status", status=500))
    with pytest.raises(BrokerError) as info:
        broker.fetch_order("nija-bn-any", "BTC/USDT")
    assert_translated_from(info.value, ccxt.OperationFailed)
    with pytest.raises(BrokerError) as info:
        broker.fetch_order("nija-bn-any")
    assert_translated_from(info.value, ccxt.OperationFailed)


def test_insufficient_funds_is_a_balance_failure(broker, ledger):
    with pytest.raises(InsufficientFunds) as info:
        broker.place_order(
            OrderRequest("BTC/USDT", Side.BUY, OrderType.MARKET, "nija-bn-big", amount=1.0)
        )
    assert classify(info.value) is FailureType.BALANCE_ERROR
    assert ledger.balance("USDT") == 1000.0


# -- faults ---------------------------------------------------------------------------------

ticker = ("ticker", lambda b: b.fetch_ticker("BTC/USDT"))
balance = ("balance", lambda b: b.fetch_balance())
candles = ("candles", lambda b: b.fetch_candles("BTC/USDT", "5m", 10))
create = (
    "create_order",
    lambda b: b.place_order(
        OrderRequest("BTC/USDT", Side.BUY, OrderType.MARKET, "nija-bn-f1", amount=0.001)
    ),
)
fetch = ("fetch_order", lambda b: b.fetch_order("nija-bn-f1", "BTC/USDT"))
F = FailureType
FAULTS = [
    # (call, fault, exact ccxt class translated (or the adapter's own type), failure type)
    (balance, Fault("status", status=401), ccxt.AuthenticationError, F.AUTHENTICATION_ERROR),
    (balance, Fault("status", status=403), ccxt.AuthenticationError, F.AUTHENTICATION_ERROR),
    (ticker, Fault("status", status=418), ccxt.DDoSProtection, F.RATE_LIMIT_ERROR),
    (ticker, Fault("status", status=429, retry_after=7), ccxt.DDoSProtection, F.RATE_LIMIT_ERROR),
    # Binance's 5xx body {"code": -1001} is ccxt's OperationFailed (not a NetworkError).
    (ticker, Fault("status", status=500), ccxt.OperationFailed, F.API_ERROR),
    (ticker, Fault("status", status=502), ccxt.OperationFailed, F.API_ERROR),
    (balance, Fault("status", status=503), ccxt.OperationFailed, F.API_ERROR),
    (create, Fault("status", status=504), ccxt.RequestTimeout, F.NETWORK_ERROR),
    (balance, Fault("venue_error", code="auth"), ccxt.AuthenticationError, F.AUTHENTICATION_ERROR),
    (ticker, Fault("venue_error", code="rate_limit"), ccxt.DDoSProtection, F.RATE_LIMIT_ERROR),
    (
        create,
        Fault("venue_error", code="insufficient_funds"),
        ccxt.InsufficientFunds,
        F.BALANCE_ERROR,
    ),
    (create, Fault("venue_error", code="invalid_order"), ccxt.InvalidOrder, F.EXECUTION_ERROR),
    (
        create,
        Fault("venue_error", code="duplicate_client_id"),
        ccxt.InvalidOrder,
        F.EXECUTION_ERROR,
    ),
    (ticker, Fault("venue_error", code="unknown_symbol"), ccxt.BadSymbol, F.API_ERROR),
    (fetch, Fault("venue_error", code="server"), ccxt.OperationFailed, F.API_ERROR),
    (ticker, Fault("malformed_json"), BadResponse, F.API_ERROR),
    (balance, Fault("malformed_json"), BadResponse, F.API_ERROR),
    (candles, Fault("malformed_json"), BadResponse, F.API_ERROR),
    (create, Fault("malformed_json"), BadResponse, F.API_ERROR),
    (fetch, Fault("malformed_json"), BadResponse, F.API_ERROR),
    (ticker, Fault("html", status=502), ccxt.ExchangeNotAvailable, F.NETWORK_ERROR),
    (balance, Fault("drop"), ccxt.NetworkError, F.NETWORK_ERROR),
]


@pytest.mark.parametrize(
    ("call", "fault", "exc_class", "failure"),
    FAULTS,
    ids=[f"{c[0]}-{f.kind}-{f.code or f.status}" for c, f, _, _ in FAULTS],
)
def test_fault_is_translated_from_the_sdk_exception(
    server, ledger, call, fault, exc_class, failure, make_broker
):
    broker = make_broker(server)  # fresh: no private call has succeeded yet (see the -2015 test)
    broker.symbols()
    route, do = call
    server.inject(route, fault)
    with pytest.raises(BrokerError) as info:  # no ccxt exception leaves the adapter
        do(broker)
    exc = info.value
    assert_translated_from(exc, exc_class)
    assert classify(exc) is failure
    assert_no_secret(str(exc), repr(exc), repr(broker))
    # No SDK-internal retries: the faulty route was asked exactly once.
    assert len(server.requests_to(route)) == 1


def test_retry_after_reaches_the_caller_through_the_exception_chain(server, ledger, make_broker):
    broker = make_broker(server)
    broker.symbols()
    server.inject("ticker", Fault("status", status=429, retry_after=7))
    with pytest.raises(RateLimited) as info:
        broker.fetch_ticker("BTC/USDT")
    # ccxt raises inside its ``except HTTPError``: the response with its headers is the context,
    # and the adapter's edge reads the Retry-After from there.
    assert info.value.__cause__.__context__.response.headers["Retry-After"] == "7"
    assert (info.value.retry_after, info.value.status) == (7.0, 429)


def test_rejected_key_after_a_successful_private_call_is_read_as_a_ban(broker, server):
    """ccxt quirk: once a private call succeeded, Binance's -2015 means a temporary IP ban."""
    broker.fetch_balance()
    server.inject("balance", Fault("venue_error", code="auth"))
    with pytest.raises(RateLimited) as info:
        broker.fetch_balance()
    assert classify(info.value) is FailureType.RATE_LIMIT_ERROR


def test_a_wrong_secret_fails_the_signature_check(server, ledger, make_broker):
    broker = make_broker(server, secret="FAKE-BINANCE-SECRET-wrong")
    with pytest.raises(AuthRejected) as info:
        broker.fetch_balance()
    assert "-1022" in str(info.value)
    assert "FAKE-BINANCE-SECRET-wrong" not in str(info.value) + repr(info.value)


@pytest.mark.parametrize("route", ["markets", "balance", "create_order"])
def test_a_hung_route_returns_within_the_timeout(server, ledger, route, make_broker):
    broker = make_broker(server, timeout=1.0)
    if route != "markets":
        broker.symbols()
    server.inject(route, Fault("hang", seconds=10))
    started = time.monotonic()
    with pytest.raises(NetworkTimeout) as info:
        if route == "create_order":
            broker.place_order(
                OrderRequest("BTC/USDT", Side.BUY, OrderType.MARKET, "nija-bn-h1", amount=0.001)
            )
        else:
            broker.fetch_balance()
    assert time.monotonic() - started < 2.0
    assert classify(info.value) is FailureType.NETWORK_ERROR


def test_proxy_environment_is_ignored_for_the_loopback_emulator(
    server, ledger, monkeypatch, make_broker
):
    # A proxy on a closed port: any request that used it would fail.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert make_broker(server).fetch_balance().usd_cash == pytest.approx(1000.0)


# -- the emulator's own checks, through raw ccxt ----------------------------------------------


def test_redirect_urls_moves_binance_endpoints_keeping_paths():
    api = ccxt.binance().urls["api"]
    moved = redirect_urls(api, "http://127.0.0.1:4321")
    assert moved["public"] == "http://127.0.0.1:4321/api/v3"
    assert moved["private"] == "http://127.0.0.1:4321/api/v3"
    assert moved["sapi"] == "http://127.0.0.1:4321/sapi/v1"
    assert api["public"] == "https://api.binance.com/api/v3"  # the original is left alone


def test_a_stale_timestamp_is_refused_like_binance_does(server, ledger):
    # ccxt signs ``timestamp = now - timeDifference``: 60 s old, past the 10 s recvWindow.
    ex = ccxt.binance(
        {
            "apiKey": KEY,
            "secret": SECRET,
            "timeout": 2000,
            "options": {
                "fetchMarkets": {"types": ["spot"]},
                "fetchCurrencies": False,  # the emulator serves no /sapi
                "fetchMargins": False,
                "timeDifference": 60_000,
            },
        }
    )
    ex.urls["api"] = redirect_urls(ex.urls["api"], server.url)
    ex.session.trust_env = False
    with pytest.raises(ccxt.InvalidNonce) as info:
        ex.fetch_balance()
    assert "-1021" in str(info.value)
    ex.session.close()
