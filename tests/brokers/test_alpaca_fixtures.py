"""Contract: AlpacaBroker reads the answers alpaca-py's own tests mock (fixture
``alpaca_py_tests.json`` in ``../shared/venue-fixtures``), through the real SDK over real HTTP.

Each fixture body is served from the emulator's route of the same meaning (``canned``), and
the adapter's parsed project types are checked field by field. Skipped where the fixture
folder is absent (a plain clone): see ``nija_testkit.fixtures``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.brokers.alpaca_stocks.broker import AlpacaBroker
from bot.model import (
    AccountRef,
    BrokerSpec,
    Credentials,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Side,
)
from nija_testkit.emulator.server import EmulatorServer, Response
from nija_testkit.fixtures import load_fixture

API_KEY = "FAKE-ALPACA-KEY-ID-0003"
SECRET = "FAKE-ALPACA-SECRET-fixture0001"

# Fixture entry → the emulator route whose answer it replaces.
ROUTES = {
    "test_get_account": "balance",
    "test_get_all_positions": "positions",
    "test_get_asset": "markets",
    "test_market_order": "create_order",
    "test_get_orders": "open_orders",
    "test_get_order_by_client_id": "fetch_order",
    "test_cancel_order_by_id": "cancel_order",
    "test_get_bars_desc": "candles",
    "test_get_bars_single_empty_response": "candles",
    "test_get_latest_trade": "last_trade",
    "test_get_latest_quote": "ticker",
}
# Entries that concern no call the adapter makes.
NOT_USED = {"test_cancel_orders": "DELETE /v2/orders cancels every order: NIJA never does"}

FIXTURE_ORDER_ID = "61e69015-8549-4bfd-b9c3-01e75843f47d"
FIXTURE_CLIENT_ID = "eb9e2aaa-f71a-4f51-b5b4-52a6c565dad4"


@pytest.fixture(scope="module")
def fixtures() -> dict:
    return load_fixture("alpaca_py_tests.json")["fixtures"]


@pytest.fixture
def server(venue_server) -> EmulatorServer:
    server = venue_server("ALPACA")
    server.venue.add_account(API_KEY, SECRET, {"USD": 0.0})
    return server


@pytest.fixture
def serve(server: EmulatorServer, fixtures: dict):
    """``serve("test_get_account", ...)``: those fixture bodies answer their routes."""

    def put(*names: str) -> None:
        for name in names:
            entry = fixtures[name]
            server.venue.canned[ROUTES[name]] = Response(entry["status"], entry["body"])

    return put


@pytest.fixture
def broker(server: EmulatorServer):
    spec = BrokerSpec(
        AccountRef("platform", "platform", "ALPACA"),
        Credentials(API_KEY, SECRET),
        symbols=("AAPL",),
        base_url=server.url,
        timeout_seconds=3.0,
    )
    b = AlpacaBroker(spec)
    yield b
    b.close()


def ms(iso: str) -> int:
    return int(
        datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC).timestamp() * 1000
    )


def test_every_fixture_entry_is_checked_or_set_aside(fixtures):
    assert set(fixtures) == set(ROUTES) | set(NOT_USED)


def test_account(broker, serve):
    serve("test_get_account")
    balance = broker.fetch_balance()
    assert balance.cash == {"USD": -23140.2}
    assert (balance.usd_cash, balance.usd_equity) == (-23140.2, 103820.56)


def test_positions(broker, serve):
    serve("test_get_all_positions")
    assert broker.fetch_positions() == [
        Position(symbol="AAPL", quantity=5.0, avg_entry_price=100.0, market_value_usd=600.0)
    ]


def test_asset_gives_symbols_and_market_rules(broker, serve, server):
    serve("test_get_asset")
    assert broker.symbols() == ["AAPL"]
    rules = broker.market_rules("AAPL")
    assert (rules.symbol, rules.base, rules.quote, rules.fractionable) == (
        "AAPL",
        "AAPL",
        "USD",
        True,
    )
    assert (rules.min_notional, rules.min_amount, rules.price_step) == (1.0, None, 0.01)
    assert len(server.requests_to("markets")) == 1


def assert_is_the_fixture_order(order) -> None:
    """The accepted market buy of 1 ``AAPL``` (sic) that two fixture entries share."""
    assert (order.client_order_id, order.venue_order_id) == (FIXTURE_CLIENT_ID, FIXTURE_ORDER_ID)
    assert (order.symbol, order.side, order.type) == ("AAPL`", Side.BUY, OrderType.MARKET)
    assert order.status is OrderStatus.OPEN  # "accepted": live, not filled yet
    assert (order.amount, order.filled, order.average_price) == (1.0, 0.0, None)
    assert order.extra == {"alpaca_status": "accepted", "alpaca_type": "market"}
    # The body's "commission": 1.25 is a Broker API field; alpaca-py's Order has none, and the
    # Trading API charges no commission on stocks.
    assert (order.fee, order.fee_currency, order.fee_usd) == (0.0, "USD", 0.0)


def test_order_submission(broker, serve):
    serve("test_market_order")
    placed = broker.place_order(
        OrderRequest("AAPL", Side.BUY, OrderType.MARKET, FIXTURE_CLIENT_ID, amount=1)
    )
    assert_is_the_fixture_order(placed)


def test_order_by_client_id(broker, serve, server):
    serve("test_get_order_by_client_id")
    assert_is_the_fixture_order(broker.fetch_order(FIXTURE_CLIENT_ID))
    assert server.requests_to("fetch_order")[-1].path == "/v2/orders:by_client_order_id"


def test_open_orders(broker, serve):
    serve("test_get_orders")
    (order,) = broker.fetch_open_orders()
    assert (order.client_order_id, order.venue_order_id) == (
        "string",
        "0b11f089-722d-4ced-9beb-e2eeed3637dc",
    )
    assert (order.symbol, order.side, order.status) == ("SPY", Side.BUY, OrderStatus.OPEN)
    assert order.type is OrderType.MARKET  # a "stop" order: not a limit order
    assert order.extra["alpaca_type"] == "stop"
    assert (order.amount, order.filled, order.average_price) == (1.0, 0.0, None)


def test_cancel_by_client_id(broker, serve, server):
    serve("test_get_order_by_client_id", "test_cancel_order_by_id")
    after = broker.cancel_order(FIXTURE_CLIENT_ID)
    assert server.requests_to("cancel_order")[-1].path == f"/v2/orders/{FIXTURE_ORDER_ID}"
    # Alpaca cancels asynchronously: the order read back may still be live.
    assert_is_the_fixture_order(after)


def test_bars_newest_first_become_candles_oldest_first(broker, serve, server):
    serve("test_get_bars_desc")
    candles = broker.fetch_candles("TSLA", "1d", 3)
    assert list(candles.timestamp_ms) == [
        ms("2023-09-25T04:00:00Z"),
        ms("2023-09-26T04:00:00Z"),
        ms("2023-09-27T04:00:00Z"),
    ]
    assert list(candles.open) == [243.38, 242.98, 244.262]
    assert list(candles.high) == [247.1, 249.55, 245.33]
    assert list(candles.low) == [238.31, 241.6601, 234.58]
    assert list(candles.close) == [246.99, 244.12, 240.5]
    assert list(candles.volume) == [104668716, 102033779, 136616287]
    # The body carries a next_page_token, but the 3 bars asked for are all there.
    assert len(server.requests_to("candles")) == 1


def test_empty_bars_page_is_no_candles(broker, serve):
    serve("test_get_bars_single_empty_response")
    assert len(broker.fetch_candles("AAPL", "1d", 10)) == 0


def test_latest_quote_and_trade_make_the_ticker(broker, serve):
    serve("test_get_latest_quote", "test_get_latest_trade")
    ticker = broker.fetch_ticker("AAPL")
    assert (ticker.symbol, ticker.bid, ticker.ask, ticker.last) == ("AAPL", 161.1, 161.11, 161.2958)
