"""AlpacaBroker through the real alpaca-py SDK, over real HTTP, against the Alpaca emulator."""

from __future__ import annotations

import time
from functools import partial

import numpy as np
import pytest
import requests
from alpaca.common.exceptions import APIError

from bot.brokers.alpaca_stocks.broker import AlpacaBroker
from bot.errors import (
    AuthRejected,
    BadResponse,
    BrokerConfigError,
    BrokerError,
    InsufficientFunds,
    NetworkFailure,
    NetworkTimeout,
    RateLimited,
    VenueRefused,
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
from nija_testkit.emulator.alpaca import AlpacaVenue
from nija_testkit.emulator.server import EmulatorServer, Fault, Response
from nija_testkit.secrets import assert_no_secret as _assert_no_secret

API_KEY = "FAKE-ALPACA-KEY-ID-0001"
SECRET = "FAKE-ALPACA-SECRET-9f8e7d6c5b4a"
ACCOUNT = AccountRef("platform", "platform", "ALPACA")


@pytest.fixture
def server(venue_server) -> EmulatorServer:
    """The run's Alpaca emulator, fresh for this test (tests/conftest.py)."""
    return venue_server("ALPACA")


@pytest.fixture(autouse=True)
def venue(server: EmulatorServer) -> AlpacaVenue:
    v = server.venue
    v.add_account(API_KEY, SECRET, {"USD": 10000.0})
    return v


def make_broker(server: EmulatorServer, **overrides) -> AlpacaBroker:
    fields = {
        "account": ACCOUNT,
        "credentials": Credentials(API_KEY, SECRET),
        "symbols": ("SPY", "AAPL", "MSFT"),
        "base_url": server.url,
        "timeout_seconds": 3.0,
    }
    fields.update(overrides)
    return AlpacaBroker(BrokerSpec(**fields))


@pytest.fixture
def broker(server: EmulatorServer):
    b = make_broker(server)
    yield b
    b.close()


assert_no_secret = partial(_assert_no_secret, secrets=(API_KEY, SECRET), markers=("FAKE-",))


# -- construction ---------------------------------------------------------------------


def test_constructor_touches_no_network_and_names_the_account(server):
    broker = make_broker(server)
    assert server.requests == []
    assert broker.name == "ALPACA"
    assert broker.asset_class is AssetClass.STOCKS
    assert broker.account == ACCOUNT
    assert_no_secret(repr(broker), str(broker))


def test_missing_secret_is_a_config_error_without_values(server):
    with pytest.raises(BrokerConfigError) as info:
        make_broker(server, credentials=Credentials(API_KEY, ""))
    assert classify(info.value) is FailureType.AUTHENTICATION_ERROR
    assert_no_secret(str(info.value), repr(info.value))


def test_paper_endpoint_unless_told_otherwise():
    paper = AlpacaBroker(BrokerSpec(ACCOUNT, Credentials(API_KEY, SECRET)))
    live = AlpacaBroker(BrokerSpec(ACCOUNT, Credentials(API_KEY, SECRET), paper_endpoint=False))
    assert paper._trading._base_url == "https://paper-api.alpaca.markets"
    assert live._trading._base_url == "https://api.alpaca.markets"


# -- market data ----------------------------------------------------------------------


def test_symbols_are_configured_symbols_alpaca_lists_in_configured_order(server):
    broker = make_broker(server, symbols=("MSFT", "NOPE", "SPY"))
    assert broker.symbols() == ["MSFT", "SPY"]
    lookups = len(server.requests_to("markets"))
    assert lookups == 3
    assert broker.symbols() == ["MSFT", "SPY"]
    assert len(server.requests_to("markets")) == lookups  # loaded once per broker object


def test_candles_are_oldest_first_in_utc_ms(broker, server, venue):
    candles = broker.fetch_candles("SPY", "5m", 200)
    assert len(candles) == 200
    assert list(candles.timestamp_ms) == sorted(candles.timestamp_ms)
    assert set(np.diff(candles.timestamp_ms)) == {300_000}
    assert abs(candles.timestamp_ms[-1] - time.time() * 1000) < 600_000
    assert candles.close[-1] == pytest.approx(venue.market.price("SPY/USD"))
    assert (candles.high >= candles.low).all()
    sent = server.requests_to("candles")[-1].query
    assert sent["symbols"] == ["SPY"]
    assert sent["timeframe"] == ["5Min"]
    assert sent["limit"] == ["200"]


@pytest.mark.parametrize(
    ("timeframe", "sent", "step_ms"), [("1h", "1Hour", 3_600_000), ("1d", "1Day", 86_400_000)]
)
def test_candle_timeframes_map_to_alpaca_bars(broker, server, timeframe, sent, step_ms):
    candles = broker.fetch_candles("AAPL", timeframe, 5)
    assert len(candles) == 5
    assert candles.timestamp_ms[1] - candles.timestamp_ms[0] == step_ms
    assert server.requests_to("candles")[-1].query["timeframe"] == [sent]


def test_ticker_uses_latest_quote_and_trade(broker, venue):
    venue.market.set_price("MSFT/USD", 410.0)
    ticker = broker.fetch_ticker("MSFT")
    bid, ask = venue.market.bid_ask("MSFT/USD")
    assert (ticker.symbol, ticker.last) == ("MSFT", 410.0)
    assert ticker.bid == pytest.approx(bid)
    assert ticker.ask == pytest.approx(ask)
    assert ticker.bid < ticker.last < ticker.ask


def test_ticker_of_a_symbol_without_data_raises(broker):
    with pytest.raises(BadResponse):
        broker.fetch_ticker("NOPE")


def test_market_data_goes_to_data_url_when_set(venue, server):
    data_server = EmulatorServer(venue).start()
    try:
        broker = make_broker(server, data_url=data_server.url)
        broker.fetch_candles("SPY", "5m", 10)
        broker.fetch_ticker("SPY")
        broker.fetch_balance()
        assert len(data_server.requests_to("candles")) == 1
        assert len(data_server.requests_to("ticker")) == 1
        assert server.requests_to("candles") == server.requests_to("ticker") == []
        assert len(server.requests_to("balance")) == 1
        assert data_server.requests_to("balance") == []
    finally:
        data_server.stop()


# -- account --------------------------------------------------------------------------


def test_balance_reports_cash_and_equity(venue, server):
    venue.accounts[API_KEY].balances["SPY"] = 2.0
    balance = make_broker(server).fetch_balance()
    assert balance.cash == {"USD": 10000.0}
    assert balance.usd_cash == 10000.0
    assert balance.usd_equity == pytest.approx(10000.0 + 2 * 500.0)


def test_holding_without_cash_is_funded(venue, server):
    venue.add_account(API_KEY, SECRET, {"USD": 0.0, "SPY": 1.0})
    balance = make_broker(server).fetch_balance()
    assert balance.usd_cash == 0.0
    assert balance.usd_equity == pytest.approx(500.0)


def test_positions_come_from_the_positions_endpoint(venue, server):
    venue.add_account(API_KEY, SECRET, {"USD": 100.0, "AAPL": 3.0})
    positions = make_broker(server).fetch_positions()
    assert [(p.symbol, p.quantity) for p in positions] == [("AAPL", 3.0)]
    assert positions[0].market_value_usd == pytest.approx(600.0)
    assert positions[0].avg_entry_price == pytest.approx(200.0)
    assert len(server.requests_to("positions")) == 1


# -- orders ---------------------------------------------------------------------------


def test_market_buy_fills_moves_balances_and_sends_client_id(broker, server, venue):
    order = broker.place_order(
        OrderRequest("SPY", Side.BUY, OrderType.MARKET, "nija-buy-1", amount=2)
    )
    ask = venue.market.bid_ask("SPY/USD")[1]
    assert order.client_order_id == "nija-buy-1"
    assert (order.symbol, order.side, order.type) == ("SPY", Side.BUY, OrderType.MARKET)
    assert order.status is OrderStatus.FILLED
    assert (order.amount, order.filled) == (2.0, 2.0)
    assert order.average_price == pytest.approx(ask)
    body = server.requests_to("create_order")[-1].json()
    assert body["client_order_id"] == "nija-buy-1"
    assert (body["symbol"], body["side"], body["type"], body["qty"]) == ("SPY", "buy", "market", 2)
    assert venue.accounts[API_KEY].snapshot() == pytest.approx(
        {"USD": 10000.0 - 2 * ask, "SPY": 2.0}
    )


def test_market_buy_by_notional_sends_notional(broker, server, venue):
    order = broker.place_order(
        OrderRequest("AAPL", Side.BUY, OrderType.MARKET, "nija-notional", quote_amount=100.0)
    )
    body = server.requests_to("create_order")[-1].json()
    assert body["notional"] == 100.0
    assert "qty" not in body
    assert order.amount is None
    assert order.extra["notional"] == "100.0"
    assert order.filled * order.average_price == pytest.approx(100.0)
    assert venue.accounts[API_KEY].balance("USD") == pytest.approx(9900.0)


def test_market_sell_of_a_holding(venue, server):
    ledger = venue.add_account(API_KEY, SECRET, {"USD": 0.0, "SPY": 1.5})
    order = make_broker(server).place_order(
        OrderRequest("SPY", Side.SELL, OrderType.MARKET, "nija-sell-1", amount=1.5)
    )
    assert (order.side, order.status, order.filled) == (Side.SELL, OrderStatus.FILLED, 1.5)
    assert ledger.balance("SPY") == 0.0
    assert ledger.balance("USD") == pytest.approx(1.5 * venue.market.bid_ask("SPY/USD")[0])


def test_limit_order_lives_is_found_and_cancelled_by_client_id(broker, server):
    request = OrderRequest(
        "SPY", Side.BUY, OrderType.LIMIT, "nija-limit-1", amount=1, limit_price=450.004
    )
    placed = broker.place_order(request)
    assert placed.status is OrderStatus.OPEN
    assert placed.type is OrderType.LIMIT
    assert server.requests_to("create_order")[-1].json()["limit_price"] == 450.0  # whole cents

    found = broker.fetch_order("nija-limit-1")
    assert found is not None and found.venue_order_id == placed.venue_order_id
    assert server.requests_to("fetch_order")[-1].query == {"client_order_id": ["nija-limit-1"]}
    assert [o.client_order_id for o in broker.fetch_open_orders("SPY")] == ["nija-limit-1"]
    assert broker.fetch_open_orders("AAPL") == []

    cancelled = broker.cancel_order("nija-limit-1")
    assert cancelled is not None and cancelled.status is OrderStatus.CANCELED
    assert server.requests_to("cancel_order")[-1].path == f"/v2/orders/{placed.venue_order_id}"
    assert broker.fetch_open_orders() == []


def test_limit_order_fills_when_the_market_crosses(broker, venue):
    broker.place_order(
        OrderRequest("MSFT", Side.BUY, OrderType.LIMIT, "nija-limit-2", amount=1, limit_price=390)
    )
    venue.market.set_price("MSFT/USD", 380.0)
    order = broker.fetch_order("nija-limit-2")
    assert order is not None and order.status is OrderStatus.FILLED
    assert order.average_price == pytest.approx(390.0)


def test_unknown_client_id_is_none_for_fetch_and_cancel(broker, server):
    assert broker.fetch_order("never-sent") is None
    assert broker.cancel_order("never-sent") is None
    assert server.requests_to("cancel_order") == []


def test_cancel_of_a_filled_order_returns_it_unchanged(broker, server):
    broker.place_order(OrderRequest("SPY", Side.BUY, OrderType.MARKET, "nija-done", amount=1))
    order = broker.cancel_order("nija-done")
    assert order is not None and order.status is OrderStatus.FILLED
    assert server.requests_to("cancel_order") == []


@pytest.mark.parametrize(
    "fault",
    [Fault("status", status=500), Fault("html", status=404), Fault("status", status=404)],
)
def test_failed_order_lookup_raises_and_is_never_none(broker, server, fault):
    server.inject("fetch_order", fault)
    with pytest.raises(BrokerError) as info:
        broker.fetch_order("never-sent")
    assert type(info.value.__cause__) is APIError


def test_insufficient_buying_power_is_an_order_rejection(broker, venue):
    with pytest.raises(InsufficientFunds) as info:
        broker.place_order(OrderRequest("SPY", Side.BUY, OrderType.MARKET, "nija-big", amount=100))
    assert "insufficient buying power" in info.value.reason
    assert classify(info.value) is FailureType.BALANCE_ERROR
    assert isinstance(info.value.__cause__, APIError) and info.value.__cause__.status_code == 403
    assert venue.accounts[API_KEY].snapshot() == {"USD": 10000.0}


def test_selling_shares_not_held_is_an_order_rejection(broker):
    with pytest.raises(InsufficientFunds):
        broker.place_order(
            OrderRequest("AAPL", Side.SELL, OrderType.MARKET, "nija-short", amount=1)
        )


def test_duplicate_client_id_is_a_venue_refusal(broker):
    request = OrderRequest("SPY", Side.BUY, OrderType.MARKET, "nija-dup", amount=1)
    broker.place_order(request)
    with pytest.raises(VenueRefused) as info:
        broker.place_order(request)
    assert info.value.status == 422
    assert classify(info.value) is FailureType.API_ERROR


# -- faults ---------------------------------------------------------------------------

STATUS_FAULTS = [
    (401, FailureType.AUTHENTICATION_ERROR),
    (403, FailureType.AUTHENTICATION_ERROR),
    (418, FailureType.RATE_LIMIT_ERROR),
    (429, FailureType.RATE_LIMIT_ERROR),
    (500, FailureType.NETWORK_ERROR),
    (502, FailureType.NETWORK_ERROR),
    (503, FailureType.NETWORK_ERROR),
    (504, FailureType.NETWORK_ERROR),
]


@pytest.mark.parametrize(("status", "expected"), STATUS_FAULTS)
def test_http_status_faults_are_translated_once_without_sdk_retries(
    broker, server, status, expected
):
    server.inject("balance", Fault("status", status=status, retry_after=7))
    started = time.monotonic()
    with pytest.raises(BrokerError) as info:  # no alpaca-py exception leaves the adapter
        broker.fetch_balance()
    assert time.monotonic() - started < 1.0  # alpaca-py would sleep 3 s per retry on 429/504
    assert len(server.requests_to("balance")) == 1
    assert type(info.value.__cause__) is APIError
    assert info.value.status == status
    assert classify(info.value) is expected
    # The venue's Retry-After reaches the rate limit (the emulator sends one on 418/429/503).
    assert retry_after_seconds(info.value) == (7.0 if status in (418, 429) else None)
    assert_no_secret(str(info.value), repr(info.value))


@pytest.mark.parametrize(
    ("route", "call"),
    [
        ("candles", lambda b: b.fetch_candles("SPY")),
        ("ticker", lambda b: b.fetch_ticker("SPY")),
        ("positions", lambda b: b.fetch_positions()),
        ("open_orders", lambda b: b.fetch_open_orders()),
        ("markets", lambda b: b.symbols()),
    ],
)
def test_rate_limit_on_every_route_is_not_retried(broker, server, route, call):
    server.inject(route, Fault("status", status=429, retry_after=2))
    with pytest.raises(RateLimited) as info:
        call(broker)
    assert (info.value.status, info.value.retry_after) == (429, 2.0)
    assert len(server.requests_to(route)) == 1


@pytest.mark.parametrize(
    ("code", "status", "alpaca_code", "expected"),
    [
        ("auth", 401, 40110000, FailureType.AUTHENTICATION_ERROR),
        ("rate_limit", 429, 42910000, FailureType.RATE_LIMIT_ERROR),
        ("server", 500, 50010000, FailureType.NETWORK_ERROR),
    ],
)
def test_alpaca_error_bodies_keep_their_code(broker, server, code, status, alpaca_code, expected):
    server.inject("balance", Fault("venue_error", code=code))
    with pytest.raises(BrokerError) as info:
        broker.fetch_balance()
    assert info.value.status == status
    assert info.value.__cause__.code == alpaca_code
    assert classify(info.value) is expected


def test_injected_insufficient_funds_body_is_an_order_rejection(broker, server):
    server.inject("create_order", Fault("venue_error", code="insufficient_funds"))
    with pytest.raises(InsufficientFunds) as info:
        broker.place_order(OrderRequest("SPY", Side.BUY, OrderType.MARKET, "nija-ins", amount=1))
    assert classify(info.value) is FailureType.BALANCE_ERROR


def test_forbidden_order_that_is_not_about_funds_stays_an_auth_failure(broker, server):
    server.inject("create_order", Fault("status", status=403))
    with pytest.raises(AuthRejected) as info:
        broker.place_order(OrderRequest("SPY", Side.BUY, OrderType.MARKET, "nija-403", amount=1))
    assert classify(info.value) is FailureType.AUTHENTICATION_ERROR


def test_wrong_secret_is_an_authentication_failure(server):
    broker = make_broker(server, credentials=Credentials(API_KEY, "FAKE-ALPACA-SECRET-WRONG"))
    with pytest.raises(AuthRejected) as info:
        broker.fetch_balance()
    assert info.value.status == 401
    assert classify(info.value) is FailureType.AUTHENTICATION_ERROR
    assert "FAKE-ALPACA-SECRET-WRONG" not in str(info.value) + repr(info.value)


def test_malformed_json_is_a_bad_response(broker, server):
    server.inject("balance", Fault("malformed_json"))
    with pytest.raises(BadResponse) as info:
        broker.fetch_balance()
    assert type(info.value.__cause__) is requests.exceptions.JSONDecodeError
    assert classify(info.value) is FailureType.API_ERROR


def test_html_error_page_is_a_network_failure_with_its_status(broker, server):
    server.inject("candles", Fault("html", status=502))
    with pytest.raises(NetworkFailure) as info:
        broker.fetch_candles("SPY")
    assert info.value.status == 502
    assert classify(info.value) is FailureType.NETWORK_ERROR


def test_dropped_connection_is_a_network_failure(broker, server):
    server.inject("positions", Fault("drop"))
    with pytest.raises(NetworkFailure) as info:
        broker.fetch_positions()
    assert isinstance(info.value.__cause__, requests.ConnectionError)
    assert classify(info.value) is FailureType.NETWORK_ERROR
    assert_no_secret(str(info.value), repr(info.value))


@pytest.mark.parametrize("route", ["balance", "candles", "create_order"])
def test_hung_route_returns_within_the_timeout(server, route):
    broker = make_broker(server, timeout_seconds=1.0)
    server.inject(route, Fault("hang", seconds=10))
    calls = {
        "balance": broker.fetch_balance,
        "candles": lambda: broker.fetch_candles("SPY"),
        "create_order": lambda: broker.place_order(
            OrderRequest("SPY", Side.BUY, OrderType.MARKET, "nija-hang", amount=1)
        ),
    }
    started = time.monotonic()
    with pytest.raises(NetworkTimeout) as info:
        calls[route]()
    assert time.monotonic() - started < 2.0
    assert classify(info.value) is FailureType.NETWORK_ERROR


@pytest.mark.parametrize(
    ("route", "body", "call"),
    [
        ("balance", {"id": "not-a-uuid", "status": "ACTIVE"}, lambda b: b.fetch_balance()),
        ("candles", {"unexpected": {}}, lambda b: b.fetch_candles("SPY")),
        (
            "candles",
            {"bars": {"SPY": [{"t": "2024-01-02T15:00:00Z"}]}},
            lambda b: b.fetch_candles("SPY"),
        ),
        ("positions", {"not": "a list"}, lambda b: b.fetch_positions()),
        (
            "create_order",
            {"id": "1", "status": "filled"},
            lambda b: b.place_order(
                OrderRequest("SPY", Side.BUY, OrderType.MARKET, "nija-x", amount=1)
            ),
        ),
        ("fetch_order", None, lambda b: b.fetch_order("nija-x")),
    ],
)
def test_responses_of_the_wrong_shape_are_a_bad_response(broker, server, venue, route, body, call):
    venue.canned[route] = Response(200, "null" if body is None else body)
    with pytest.raises(BadResponse) as info:
        call(broker)
    assert classify(info.value) is FailureType.API_ERROR
    assert_no_secret(str(info.value), repr(info.value))


@pytest.mark.parametrize("equity", [None, "n/a"])
def test_account_without_readable_equity_raises_instead_of_reading_zero(broker, venue, equity):
    account = {
        "id": "1b2c3d4e-0000-4000-8000-000000000001",
        "account_number": "PA1",
        "status": "ACTIVE",
        "cash": "5",
        "equity": equity,
    }
    venue.canned["balance"] = Response(200, account)
    with pytest.raises(BadResponse) as info:
        broker.fetch_balance()
    assert "equity" in str(info.value)


def test_proxy_environment_is_ignored_for_loopback(server, monkeypatch):
    # Nothing listens on port 9: if the proxy were used, the call would fail.
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    broker = make_broker(server)
    assert broker.fetch_balance().usd_cash == 10000.0
    assert broker.fetch_ticker("SPY").last == 500.0
