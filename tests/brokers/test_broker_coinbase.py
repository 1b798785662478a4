"""CoinbaseBroker through the real coinbase-advanced-py SDK, over real HTTP, against the emulator."""

from __future__ import annotations

import time
from functools import partial

import pytest
import requests

from bot.brokers.coinbase_advanced.broker import CoinbaseBroker
from bot.errors import (
    AuthRejected,
    BadResponse,
    BrokerConfigError,
    BrokerError,
    InsufficientFunds,
    NetworkFailure,
    NetworkTimeout,
    OrderRejected,
    VenueDataError,
)
from bot.isolation.failures import FailureType, classify, retry_after_seconds
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
from nija_testkit.emulator.coinbase import CoinbaseVenue
from nija_testkit.emulator.core import Market
from nija_testkit.emulator.server import EmulatorServer, Fault, Response
from nija_testkit.secrets import assert_no_secret as _assert_no_secret
from nija_testkit.secrets import new_pem
from tests.brokers.coinbase_account import KEY_NAME, PEM, fund, make_broker


@pytest.fixture
def market() -> Market:
    return Market()


@pytest.fixture
def server(venue_server, market: Market) -> EmulatorServer:
    """The run's Coinbase emulator with a fresh venue on ``market`` (tests/conftest.py)."""
    return venue_server("COINBASE", market)


@pytest.fixture
def venue(server: EmulatorServer) -> CoinbaseVenue:
    return server.venue


assert_no_secret = partial(_assert_no_secret, secrets=(KEY_NAME, PEM), markers=("FAKE-",))


# -- construction, markets ---------------------------------------------------------------


def test_constructor_is_offline_and_names_the_account(server, venue):
    fund(venue, {"USD": 100.0})
    broker = make_broker(server)
    assert server.requests == []
    assert broker.name == "COINBASE"
    assert broker.asset_class is AssetClass.CRYPTO
    assert broker.account.key == "user/alice/COINBASE"
    assert_no_secret(repr(broker), str(broker))


def test_symbols_are_configured_and_listed_in_configured_order_loaded_once(server, venue):
    fund(venue, {"USD": 100.0})
    broker = make_broker(server, symbols=("ETH/USD", "DOGE/USD", "BTC/USD", "SPY/USD"))
    assert broker.symbols() == ["ETH/USD", "BTC/USD"]
    assert broker.symbols() == ["ETH/USD", "BTC/USD"]
    assert len(server.requests_to("markets")) == 1


def test_without_credentials_market_data_comes_unsigned_from_the_public_endpoints(server):
    broker = make_broker(server, key="", secret="")  # the venue's shared data client
    assert broker.symbols() == ["BTC/USD", "ETH/USD"]
    assert broker.market_rules("BTC/USD").amount_step == 1e-8
    candles = broker.fetch_candles("BTC/USD", "5m", 10)
    assert len(candles) == 10 and candles.close[-1] == pytest.approx(60_000.0)
    assert broker.fetch_ticker("ETH/USD").last == pytest.approx(3_000.0)
    public = [r for r in server.requests if r.route in ("markets", "candles", "ticker")]
    assert [r.route for r in public] == ["markets", "candles", "ticker"]
    for req in public:
        assert req.path.startswith("/api/v3/brokerage/market/products")
        assert "authorization" not in req.headers
    # Its account and orders are not reachable without a key: nothing is sent.
    with pytest.raises(BrokerConfigError, match="required"):
        broker.fetch_balance()
    assert len(server.requests) == 3


def test_the_signed_market_routes_still_refuse_an_unsigned_request(server):
    answer = requests.get(f"{server.url}/api/v3/brokerage/products", timeout=3)
    assert answer.status_code == 401
    public = requests.get(f"{server.url}/api/v3/brokerage/market/products", timeout=3)
    assert public.status_code == 200 and public.json()["num_products"] >= 2


def test_every_call_is_signed_for_the_emulator_host(server, venue):
    fund(venue, {"USD": 100.0})
    make_broker(server).fetch_ticker("BTC/USD")
    (req,) = server.requests_to("ticker")
    assert req.headers["authorization"].startswith("Bearer ")
    assert req.headers["host"] == f"127.0.0.1:{server.port}"


# -- balance and positions -------------------------------------------------------------------


def test_balance_cash_and_equity_value_holdings_at_last_price(server, venue):
    # ETH 0.0001 is $0.30 of dust; XYZ has no market to price it in.
    fund(venue, {"USD": 1000.0, "USDC": 50.0, "BTC": 0.5, "ETH": 0.0001, "XYZ": 5.0})
    bal = make_broker(server).fetch_balance()
    assert bal.cash == {"USD": 1000.0, "USDC": 50.0, "BTC": 0.5, "ETH": 0.0001, "XYZ": 5.0}
    assert bal.usd_cash == pytest.approx(1050.0)
    assert bal.usd_equity == pytest.approx(1050.0 + 0.5 * 60000.0)


def test_equity_counts_a_crypto_holding_with_no_cash(server, venue):
    fund(venue, {"BTC": 500.0 / 60000.0})
    bal = make_broker(server).fetch_balance()
    assert bal.usd_cash == 0.0
    assert bal.usd_equity == pytest.approx(500.0)


def test_a_failed_pricing_call_propagates_instead_of_counting_zero(server, venue):
    fund(venue, {"BTC": 1.0})
    server.inject("ticker", Fault("status", status=503))
    with pytest.raises(NetworkFailure) as info:
        make_broker(server).fetch_balance()
    assert info.value.status == 503


def test_holdings_are_valued_at_the_venues_shared_prices_not_the_accounts_own(server, venue):
    fund(venue, {"USD": 100.0, "BTC": 0.01})
    public = make_broker(server, key="", secret="")  # the venue's shared data client
    market = VenueMarket("COINBASE", public, timeout_seconds=3.0)
    try:
        for _ in range(3):  # three accounts' clients (one key here) on one venue
            broker = make_broker(server)
            broker.value_holdings_with(market)
            assert broker.fetch_balance().usd_equity == pytest.approx(100.0 + 600.0)
            assert broker.fetch_positions()[0].market_value_usd == pytest.approx(600.0)
        server.inject("ticker", Fault("status", status=503))
        market.valuation_age_seconds = 0.0  # the next valuation asks the venue again
        with pytest.raises(VenueDataError) as info:
            broker.fetch_balance()  # the BTC held is unknown, not worth 0
        assert type(info.value.__cause__) is NetworkFailure
    finally:
        market.close()
    (ok, failed) = server.requests_to("ticker")  # one per valuation age, for every account
    for req in (ok, failed):
        assert req.path.startswith("/api/v3/brokerage/market/products/BTC-USD")
        assert "authorization" not in req.headers


def test_balance_walks_every_accounts_page(server, venue):
    balances = {f"C{i:03d}": 0.0 for i in range(300)}
    balances.update({"SOL": 2.0, "USD": 100.0})  # sorted after the 300 others: page two
    fund(venue, balances)
    bal = make_broker(server).fetch_balance()
    assert len(server.requests_to("balance")) == 2
    assert bal.usd_equity == pytest.approx(100.0 + 2 * 150.0)


def test_positions_are_holdings_above_dust(server, venue):
    fund(venue, {"USD": 100.0, "BTC": 0.01, "ETH": 0.0001})
    positions = make_broker(server).fetch_positions()
    assert [(p.symbol, p.quantity) for p in positions] == [("BTC/USD", 0.01)]
    assert positions[0].market_value_usd == pytest.approx(600.0)


# -- market data ---------------------------------------------------------------------------------


def test_candles_oldest_first_aligned_and_ending_at_the_price(server, venue, market):
    fund(venue, {"USD": 100.0})
    candles = make_broker(server).fetch_candles("BTC/USD", "5m", 50)
    assert len(candles) == 50
    steps = set((candles.timestamp_ms[1:] - candles.timestamp_ms[:-1]).tolist())
    assert steps == {300_000}
    assert candles.timestamp_ms[-1] % 300_000 == 0
    assert abs(candles.timestamp_ms[-1] / 1000 - time.time()) < 600
    assert candles.close[-1] == pytest.approx(market.price("BTC/USD"))
    (req,) = server.requests_to("candles")
    assert req.query["granularity"] == ["FIVE_MINUTE"]


def test_candles_are_capped_at_coinbase_limit(server, venue):
    fund(venue, {"USD": 100.0})
    assert len(make_broker(server).fetch_candles("ETH/USD", "1h", 1000)) == 350


def test_ticker(server, venue):
    fund(venue, {"USD": 100.0})
    t = make_broker(server).fetch_ticker("BTC/USD")
    assert t.symbol == "BTC/USD"
    assert t.bid < t.last < t.ask
    assert t.last == pytest.approx(60000.0)


# -- orders ----------------------------------------------------------------------------------------


def test_market_buy_by_notional_fills_and_moves_balances(server, venue):
    ledger = fund(venue, {"USD": 2000.0})
    broker = make_broker(server)
    order = broker.place_order(
        OrderRequest("BTC/USD", Side.BUY, OrderType.MARKET, "nija-cb-0001", quote_amount=1000.0)
    )
    assert order.status is OrderStatus.FILLED
    assert order.client_order_id == "nija-cb-0001"
    assert order.filled == pytest.approx(ledger.balance("BTC"))
    assert order.filled == pytest.approx(1000.0 / 60006.0)
    assert order.fee_usd == pytest.approx(1.0)
    assert ledger.balance("USD") == pytest.approx(2000.0 - 1000.0 - 1.0)
    (sent,) = server.requests_to("create_order")
    assert sent.json()["client_order_id"] == "nija-cb-0001"
    assert sent.json()["order_configuration"] == {"market_market_ioc": {"quote_size": "1000"}}


def test_market_sell_by_base_amount(server, venue):
    ledger = fund(venue, {"USD": 0.0, "ETH": 2.0})
    order = make_broker(server).place_order(
        OrderRequest("ETH/USD", Side.SELL, OrderType.MARKET, "nija-cb-0002", amount=0.5)
    )
    assert order.status is OrderStatus.FILLED
    assert order.amount == 0.5
    assert ledger.balance("ETH") == pytest.approx(1.5)
    assert ledger.balance("USD") > 1400.0


def test_sizes_and_prices_are_put_on_the_product_steps(server, venue):
    ledger = fund(venue, {"USD": 5000.0, "BTC": 1.0})
    broker = make_broker(server)
    buy = broker.place_order(
        OrderRequest("BTC/USD", Side.BUY, OrderType.MARKET, "nija-cb-step1", quote_amount=33.3399)
    )
    sell = broker.place_order(
        OrderRequest(
            "BTC/USD",
            Side.SELL,
            OrderType.LIMIT,
            "nija-cb-step2",
            amount=0.123456789123,
            limit_price=70000.123,
        )
    )
    sent = [r.json()["order_configuration"] for r in server.requests_to("create_order")]
    assert sent[0] == {"market_market_ioc": {"quote_size": "33.33"}}
    # Sizes round down (never more than asked); a sell's limit rounds up (never a worse price).
    assert sent[1]["limit_limit_gtc"]["base_size"] == "0.12345678"
    assert sent[1]["limit_limit_gtc"]["limit_price"] == "70000.13"
    assert buy.status is OrderStatus.FILLED
    assert sell.status is OrderStatus.OPEN
    assert ledger.find(client_order_id="nija-cb-step2").limit_price == 70000.13


def test_the_emulator_refuses_sizes_off_the_step(server, venue):
    # The check above is only worth something if the venue really refuses off-step sizes.
    fund(venue, {"USD": 5000.0})
    body = {
        "client_order_id": "raw-1",
        "product_id": "BTC-USD",
        "side": "BUY",
        "order_configuration": {"market_market_ioc": {"quote_size": "33.3399"}},
    }
    sdk = make_broker(server)._sdk()  # the adapter's own SDK client, to send an unrounded size
    data = sdk.create_order(**body).to_dict()
    assert data["success"] is False
    assert data["error_response"]["error"] == "INVALID_SIZE_PRECISION"


def test_resending_a_client_id_does_not_trade_twice(server, venue):
    ledger = fund(venue, {"USD": 5000.0})
    broker = make_broker(server)
    req = OrderRequest("BTC/USD", Side.BUY, OrderType.MARKET, "nija-cb-0003", quote_amount=100.0)
    first = broker.place_order(req)
    second = broker.place_order(req)
    assert second.venue_order_id == first.venue_order_id
    assert len(ledger.all_orders()) == 1


def test_limit_order_fetch_and_cancel_by_client_id(server, venue):
    ledger = fund(venue, {"USD": 5000.0})
    broker = make_broker(server)
    placed = broker.place_order(
        OrderRequest(
            "BTC/USD", Side.BUY, OrderType.LIMIT, "nija-cb-lim1", amount=0.01, limit_price=50000.0
        )
    )
    assert placed.status is OrderStatus.OPEN
    assert placed.amount == 0.01
    assert server.requests_to("create_order")[0].json()["order_configuration"] == {
        "limit_limit_gtc": {"base_size": "0.01", "limit_price": "50000", "post_only": False}
    }
    fetched = broker.fetch_order("nija-cb-lim1", "BTC/USD")
    assert fetched is not None and fetched.venue_order_id == placed.venue_order_id
    assert [o.client_order_id for o in broker.fetch_open_orders()] == ["nija-cb-lim1"]
    assert broker.fetch_open_orders("ETH/USD") == []

    canceled = broker.cancel_order("nija-cb-lim1")
    assert canceled is not None and canceled.status is OrderStatus.CANCELED
    assert ledger.find(client_order_id="nija-cb-lim1").status == "canceled"
    assert broker.fetch_open_orders() == []
    assert len(server.requests_to("cancel_order")) == 1


def test_limit_order_fills_when_the_market_crosses(server, venue, market):
    ledger = fund(venue, {"USD": 5000.0})
    broker = make_broker(server)
    broker.place_order(
        OrderRequest(
            "ETH/USD", Side.BUY, OrderType.LIMIT, "nija-cb-lim2", amount=1.0, limit_price=2900.0
        )
    )
    market.set_price("ETH/USD", 2800.0)
    order = broker.fetch_order("nija-cb-lim2")
    assert order is not None and order.status is OrderStatus.FILLED
    assert order.average_price == pytest.approx(2900.0)
    assert ledger.balance("ETH") == pytest.approx(1.0)


def test_lookup_by_client_id_walks_the_order_pages(server, venue):
    ledger = fund(venue, {"USD": 1000.0})
    for i in range(260):  # more than one page of 250, placed straight into the venue
        ledger.place(
            "BTC/USD", "buy", "limit", amount=0.001, limit_price=1000.0, client_order_id=f"old-{i}"
        )
    broker = make_broker(server)
    oldest = broker.fetch_order("old-0")
    assert oldest is not None and oldest.status is OrderStatus.OPEN
    assert len(server.requests_to("fetch_order")) == 2
    assert len(broker.fetch_open_orders("BTC/USD")) == 260


def test_unknown_client_id_is_none_and_cancel_of_it_is_none(server, venue):
    fund(venue, {"USD": 100.0})
    broker = make_broker(server)
    assert broker.fetch_order("nija-cb-nope") is None
    assert broker.cancel_order("nija-cb-nope") is None
    assert server.requests_to("cancel_order") == []


def test_a_failed_lookup_raises_never_none(server, venue):
    fund(venue, {"USD": 100.0})
    server.inject("fetch_order", Fault("status", status=503))
    with pytest.raises(NetworkFailure):
        make_broker(server).fetch_order("nija-cb-any")


def test_insufficient_funds_is_a_rejection_inside_http_200(server, venue):
    fund(venue, {"USD": 10.0})
    with pytest.raises(InsufficientFunds) as info:
        make_broker(server).place_order(
            OrderRequest("BTC/USD", Side.BUY, OrderType.MARKET, "nija-cb-poor", quote_amount=1e6)
        )
    assert "INSUFFICIENT_FUND" in info.value.reason
    assert classify(info.value) is FailureType.BALANCE_ERROR


def test_other_rejections_are_execution_failures(server, venue):
    fund(venue, {"USD": 100.0})
    server.inject("create_order", Fault("venue_error", code="invalid_order"))
    with pytest.raises(OrderRejected) as info:
        make_broker(server).place_order(
            OrderRequest("BTC/USD", Side.BUY, OrderType.MARKET, "nija-cb-bad", quote_amount=10.0)
        )
    assert type(info.value) is OrderRejected
    assert classify(info.value) is FailureType.EXECUTION_ERROR


# -- faults → exception types ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, FailureType.AUTHENTICATION_ERROR),
        (403, FailureType.AUTHENTICATION_ERROR),
        (418, FailureType.RATE_LIMIT_ERROR),
        (429, FailureType.RATE_LIMIT_ERROR),
        (500, FailureType.NETWORK_ERROR),
        (502, FailureType.NETWORK_ERROR),
        (503, FailureType.NETWORK_ERROR),
        (504, FailureType.NETWORK_ERROR),
    ],
)
def test_http_status_faults_are_translated_from_the_sdk_http_error(server, venue, status, expected):
    fund(venue, {"USD": 100.0})
    server.inject("balance", Fault("status", status=status, retry_after=7))
    with pytest.raises(BrokerError) as info:  # no requests exception leaves the adapter
        make_broker(server).fetch_balance()
    assert type(info.value.__cause__) is requests.HTTPError
    assert info.value.status == status
    assert classify(info.value) is expected
    # The venue's Retry-After reaches the rate limit (the emulator sends one on 418/429/503).
    assert retry_after_seconds(info.value) == (7.0 if status in (418, 429) else None)
    assert_no_secret(str(info.value), repr(info.value))


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("auth", 401, FailureType.AUTHENTICATION_ERROR),
        ("rate_limit", 429, FailureType.RATE_LIMIT_ERROR),
        ("server", 500, FailureType.NETWORK_ERROR),
        ("order_not_found", 404, FailureType.API_ERROR),
        ("unknown_symbol", 404, FailureType.API_ERROR),
        ("duplicate_client_id", 400, FailureType.API_ERROR),
    ],
)
def test_coinbase_error_bodies_are_translated_by_status(server, venue, code, status, expected):
    fund(venue, {"USD": 100.0})
    server.inject("ticker", Fault("venue_error", code=code))
    with pytest.raises(BrokerError) as info:
        make_broker(server).fetch_ticker("BTC/USD")
    assert info.value.status == status
    assert info.value.__cause__.response.json()[
        "error"
    ]  # Coinbase's {"error", "error_details", "message"}
    assert classify(info.value) is expected


def test_venue_insufficient_funds_body_is_a_balance_rejection(server, venue):
    fund(venue, {"USD": 100.0})
    server.inject("create_order", Fault("venue_error", code="insufficient_funds"))
    with pytest.raises(InsufficientFunds) as info:
        make_broker(server).place_order(
            OrderRequest("BTC/USD", Side.BUY, OrderType.MARKET, "nija-cb-if", quote_amount=10.0)
        )
    assert classify(info.value) is FailureType.BALANCE_ERROR


def test_malformed_json_is_a_bad_response(server, venue):
    fund(venue, {"USD": 100.0})
    server.inject("balance", Fault("malformed_json"))
    with pytest.raises(BadResponse) as info:
        make_broker(server).fetch_balance()
    assert type(info.value.__cause__) is requests.exceptions.JSONDecodeError
    assert classify(info.value) is FailureType.API_ERROR


def test_html_error_page_is_a_network_failure_with_its_status(server, venue):
    fund(venue, {"USD": 100.0})
    server.inject("candles", Fault("html", status=502))
    with pytest.raises(NetworkFailure) as info:
        make_broker(server).fetch_candles("BTC/USD")
    assert info.value.status == 502
    assert classify(info.value) is FailureType.NETWORK_ERROR


def test_dropped_connection_is_a_network_failure(server, venue):
    fund(venue, {"USD": 100.0})
    server.inject("ticker", Fault("drop"))
    with pytest.raises(NetworkFailure) as info:
        make_broker(server).fetch_ticker("BTC/USD")
    assert isinstance(info.value.__cause__, requests.ConnectionError)
    assert classify(info.value) is FailureType.NETWORK_ERROR


def test_a_hung_route_returns_within_the_timeout(server, venue):
    fund(venue, {"USD": 100.0})
    server.inject("balance", Fault("hang", seconds=10))
    broker = make_broker(server, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(NetworkTimeout) as info:
        broker.fetch_balance()
    assert time.monotonic() - started < 2.0
    assert classify(info.value) is FailureType.NETWORK_ERROR


def test_a_create_order_timeout_is_not_resent(server, venue):
    fund(venue, {"USD": 1000.0})
    server.inject("create_order", Fault("hang", seconds=3, times=1))
    broker = make_broker(server, timeout=1.0)
    with pytest.raises(NetworkTimeout):
        broker.place_order(
            OrderRequest("BTC/USD", Side.BUY, OrderType.MARKET, "nija-cb-slow", quote_amount=10.0)
        )
    assert len(server.requests_to("create_order")) == 1


def test_wrong_shape_answer_is_a_response_error(server, venue):
    fund(venue, {"USD": 100.0})
    venue.routes.insert(
        0, ("GET", venue.routes[0][1], "balance", lambda req: Response(200, ["not", "a", "dict"]))
    )
    with pytest.raises(BadResponse) as info:
        make_broker(server).fetch_balance()
    assert classify(info.value) is FailureType.API_ERROR


def test_missing_fields_are_a_response_error(server, venue):
    fund(venue, {"USD": 100.0})
    body = {"accounts": [{"currency": "USD"}], "has_next": False}
    venue.routes.insert(0, ("GET", venue.routes[0][1], "balance", lambda req: Response(200, body)))
    with pytest.raises(BadResponse, match="available_balance"):
        make_broker(server).fetch_balance()


# -- credentials ---------------------------------------------------------------------------------------


def test_pem_with_literal_backslash_n_is_accepted(server, venue):
    fund(venue, {"USD": 123.0})
    broker = make_broker(server, secret=PEM.replace("\n", "\\n"))
    assert broker.fetch_balance().usd_cash == pytest.approx(123.0)


def test_bad_pem_is_a_config_error_without_the_value(server, venue):
    fund(venue, {"USD": 100.0})
    broker = make_broker(server, secret="FAKE-COINBASE-SECRET-not-a-pem-at-all")
    with pytest.raises(BrokerConfigError) as info:
        broker.fetch_balance()
    assert classify(info.value) is FailureType.AUTHENTICATION_ERROR
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert_no_secret(str(info.value), repr(info.value), repr(broker))
    assert server.requests == []


def test_plain_http_to_a_remote_host_is_refused(venue):
    spec = BrokerSpec(
        account=AccountRef("platform", "platform", "COINBASE"),
        credentials=Credentials(api_key=KEY_NAME, api_secret=PEM),
        base_url="http://example.invalid:8080",
    )
    with pytest.raises(BrokerConfigError):
        CoinbaseBroker(spec).fetch_ticker("BTC/USD")


def test_a_key_the_venue_does_not_know_is_rejected_by_the_venue(server, venue):
    fund(venue, {"USD": 100.0})
    with pytest.raises(AuthRejected) as info:
        make_broker(server, key="organizations/x/apiKeys/FAKE-COINBASE-KEY-other").fetch_balance()
    assert info.value.status == 401
    assert info.value.__cause__.response.json()["error"] == "UNAUTHENTICATED"


def test_a_signature_by_the_wrong_private_key_is_rejected(server, venue):
    fund(venue, {"USD": 100.0})
    with pytest.raises(AuthRejected) as info:
        make_broker(server, secret=new_pem()).fetch_balance()
    assert info.value.status == 401
    assert classify(info.value) is FailureType.AUTHENTICATION_ERROR
    assert_no_secret(str(info.value), repr(info.value))


def test_proxy_environment_does_not_capture_loopback_calls(server, venue, monkeypatch):
    fund(venue, {"USD": 100.0})
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert make_broker(server).fetch_balance().usd_cash == pytest.approx(100.0)
