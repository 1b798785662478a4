"""Alpaca as it really is: asset rules (fractionable, $1 minimum), paged bars, no commission,
client ids unique among all orders and found whatever their state (docs/VENUES.md, Alpaca).

Through the real alpaca-py SDK over real HTTP against the Alpaca emulator.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import requests
from alpaca.common.exceptions import APIError

from bot.brokers.alpaca_stocks.broker import AlpacaBroker
from bot.errors import BrokerConfigError, NotFound, OrderRejected, VenueRefused
from bot.isolation.failures import FailureType, classify
from bot.model import (
    AccountRef,
    BrokerSpec,
    Credentials,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
)
from nija_testkit.emulator.alpaca import AlpacaVenue
from nija_testkit.emulator.server import EmulatorServer

API_KEY = "FAKE-ALPACA-KEY-ID-0002"
SECRET = "FAKE-ALPACA-SECRET-0a1b2c3d4e5f"
ACCOUNT = AccountRef("platform", "platform", "ALPACA")
HEADERS = {"APCA-API-KEY-ID": API_KEY, "APCA-API-SECRET-KEY": SECRET}


@pytest.fixture
def server(venue_server) -> EmulatorServer:
    """The run's Alpaca emulator, fresh for this test (tests/conftest.py)."""
    return venue_server("ALPACA")


@pytest.fixture
def venue(server: EmulatorServer) -> AlpacaVenue:
    v = server.venue
    v.add_account(API_KEY, SECRET, {"USD": 10000.0})
    return v


@pytest.fixture
def broker(server: EmulatorServer, venue: AlpacaVenue):
    b = AlpacaBroker(
        BrokerSpec(
            ACCOUNT,
            Credentials(API_KEY, SECRET),
            symbols=("SPY", "AAPL", "MSFT"),
            base_url=server.url,
            timeout_seconds=3.0,
        )
    )
    yield b
    b.close()


def buy(symbol: str, client_id: str, **size) -> OrderRequest:
    return OrderRequest(symbol, Side.BUY, OrderType.MARKET, client_id, **size)


# -- configuration ----------------------------------------------------------------------


def test_a_crypto_pair_is_refused_before_any_request(server, venue):
    spec = BrokerSpec(
        ACCOUNT, Credentials(API_KEY, SECRET), symbols=("SPY", "BTC/USD"), base_url=server.url
    )
    with pytest.raises(BrokerConfigError) as info:
        AlpacaBroker(spec)
    assert "ALPACA_SYMBOLS" in str(info.value) and "BTC/USD" in str(info.value)
    assert server.requests == []


# -- market rules from the asset -----------------------------------------------------------


def test_market_rules_of_a_fractionable_stock(broker, server):
    rules = broker.market_rules("spy")
    assert (rules.symbol, rules.base, rules.quote) == ("SPY", "SPY", "USD")
    assert rules.fractionable is True
    assert rules.amount_step == pytest.approx(1e-9)
    assert rules.min_amount is None
    assert rules.min_notional == 1.0
    assert rules.price_step == 0.01
    assert rules.refusal(0.004, 200.0) is not None  # $0.80: under Alpaca's $1 minimum
    assert rules.refusal(0.5, 200.0) is None
    assert [r.path for r in server.requests_to("markets")] == ["/v2/assets/SPY"]


def test_market_rules_of_a_non_fractionable_stock_are_whole_shares(broker, venue):
    venue.not_fractionable.add("MSFT")
    rules = broker.market_rules("MSFT")
    assert rules.fractionable is False
    assert (rules.amount_step, rules.min_amount, rules.min_notional) == (1.0, 1.0, None)
    assert rules.floor_amount(2.7) == 2.0
    assert rules.refusal(0.5, 400.0) is not None


def test_assets_are_loaded_once_per_client(broker, server):
    assert broker.symbols() == ["SPY", "AAPL", "MSFT"]
    broker.market_rules("SPY")
    broker.market_rules("MSFT")
    broker.symbols()
    assert len(server.requests_to("markets")) == 3  # one lookup per ticker, then the cache


def test_market_rules_of_an_unlisted_symbol_raise_not_found(broker, server):
    with pytest.raises(NotFound):
        broker.market_rules("NOPE")
    with pytest.raises(NotFound):
        broker.market_rules("NOPE")
    assert len(server.requests_to("markets")) == 1  # "not listed" is cached too


# -- fractional orders, as Alpaca enforces them ----------------------------------------------


@pytest.mark.parametrize("size", [{"amount": 1.5}, {"quote_amount": 100.0}])
def test_fractional_order_on_a_non_fractionable_stock_is_refused(broker, venue, size):
    venue.not_fractionable.add("MSFT")
    with pytest.raises(OrderRejected) as info:
        broker.place_order(buy("MSFT", "nija-frac", **size))
    assert "requested asset is not fractionable" in info.value.reason
    cause = info.value.__cause__
    assert isinstance(cause, APIError) and (cause.status_code, cause.code) == (403, 40310000)
    # A refused order shape, not a refused key: the breaker must not read it as auth.
    assert classify(info.value) is FailureType.EXECUTION_ERROR
    assert venue.accounts[API_KEY].snapshot() == {"USD": 10000.0}


def test_whole_shares_of_a_non_fractionable_stock_fill(broker, venue):
    venue.not_fractionable.add("MSFT")
    order = broker.place_order(buy("MSFT", "nija-whole", amount=2))
    assert (order.status, order.filled) == (OrderStatus.FILLED, 2.0)


@pytest.mark.parametrize("size", [{"quote_amount": 0.5}, {"amount": 0.001}])
def test_fractional_order_under_one_dollar_is_refused(broker, venue, size):
    with pytest.raises(OrderRejected) as info:  # SPY is $500: 0.001 share is $0.50
        broker.place_order(buy("SPY", "nija-tiny", **size))
    assert "cost basis must be >= 1" in info.value.reason
    assert classify(info.value) is FailureType.EXECUTION_ERROR
    assert venue.accounts[API_KEY].snapshot() == {"USD": 10000.0}


def test_emulator_refuses_sub_penny_limit_prices_and_gtc_fractions(server, venue):
    order = {"symbol": "SPY", "side": "buy", "type": "limit", "time_in_force": "day", "qty": "1"}
    answer = requests.post(
        f"{server.url}/v2/orders", json=order | {"limit_price": "450.123"}, headers=HEADERS
    )
    assert answer.status_code == 422
    assert answer.json()["code"] == 42210000
    assert (
        "sub-penny increment does not fulfill minimum pricing criteria" in answer.json()["message"]
    )
    cheap = order | {"symbol": "AAPL", "limit_price": "0.5123"}  # 4 decimals are fine below $1
    assert requests.post(f"{server.url}/v2/orders", json=cheap, headers=HEADERS).status_code == 200
    gtc = order | {"type": "market", "qty": "0.5", "time_in_force": "gtc"}
    answer = requests.post(f"{server.url}/v2/orders", json=gtc, headers=HEADERS)
    assert (answer.status_code, answer.json()["code"]) == (422, 42210000)


# -- fees ------------------------------------------------------------------------------------


def test_fills_are_commission_free_in_usd(broker, venue):
    bought = broker.place_order(buy("SPY", "nija-fee-buy", amount=2))
    sold = broker.place_order(
        OrderRequest("SPY", Side.SELL, OrderType.MARKET, "nija-fee-sell", amount=2)
    )
    for order in (bought, sold):
        assert (order.fee, order.fee_currency, order.fee_usd) == (0.0, "USD", 0.0)
    assert bought.base_received("SPY") == 2.0
    assert venue.accounts[API_KEY].balance("SPY") == 0.0


# -- client order ids ---------------------------------------------------------------------------


def test_closed_orders_are_found_by_client_id(broker, server):
    broker.place_order(buy("SPY", "nija-filled", amount=1))
    broker.place_order(
        OrderRequest("AAPL", Side.BUY, OrderType.LIMIT, "nija-cxl", amount=1, limit_price=100.0)
    )
    assert broker.cancel_order("nija-cxl").status is OrderStatus.CANCELED
    assert broker.fetch_order("nija-filled").status is OrderStatus.FILLED
    assert broker.fetch_order("nija-cxl").status is OrderStatus.CANCELED
    sent = server.requests_to("fetch_order")[-1]
    assert (sent.path, sent.query) == (
        "/v2/orders:by_client_order_id",
        {"client_order_id": ["nija-cxl"]},
    )


@pytest.mark.parametrize("close", ["fill", "cancel"])
def test_a_client_id_stays_taken_after_its_order_closed(broker, venue, close):
    request = (
        buy("SPY", "nija-once", amount=1)
        if close == "fill"
        else OrderRequest(
            "SPY", Side.BUY, OrderType.LIMIT, "nija-once", amount=1, limit_price=400.0
        )
    )
    broker.place_order(request)
    if close == "cancel":
        broker.cancel_order("nija-once")
    with pytest.raises(VenueRefused) as info:
        broker.place_order(request)  # Alpaca: unique among all orders, not only open ones
    assert info.value.__cause__.code == 40010001
    assert "client_order_id must be unique" in str(info.value)
    assert len([o for o in venue.accounts[API_KEY].all_orders()]) == 1


# -- bars come in pages ------------------------------------------------------------------------


def test_candles_follow_every_page_of_bars(broker, server, venue):
    venue.bars_page_size = 64
    candles = broker.fetch_candles("SPY", "5m", 200)
    assert len(candles) == 200  # 64 + 64 + 64 + 8: reading the first page only would give 64
    assert set(np.diff(candles.timestamp_ms)) == {300_000}
    assert abs(candles.timestamp_ms[-1] - time.time() * 1000) < 600_000
    assert candles.close[-1] == pytest.approx(venue.market.price("SPY/USD"))
    pages = server.requests_to("candles")
    assert [p.query["limit"] for p in pages] == [["200"], ["136"], ["72"], ["8"]]
    assert "page_token" not in pages[0].query
    assert all(p.query["page_token"] for p in pages[1:])


def test_emulator_pages_ascending_bars_and_refuses_a_garbled_token(server, venue):
    venue.bars_page_size = 3
    query = {"symbols": "SPY,AAPL", "timeframe": "1Hour", "start": "2024-01-02T00:00:00Z",
             "end": "2024-01-02T04:00:00Z", "limit": "100"}  # fmt: skip
    seen: list[tuple[str, str]] = []
    token = None
    for _ in range(10):  # 10 bars in 4 pages; bounded in case the emulator never stops
        page = requests.get(f"{server.url}/v2/stocks/bars", params=query | ({"page_token": token} if token else {}), headers=HEADERS).json()  # fmt: skip
        seen += [(ticker, bar["t"]) for ticker, bars in page["bars"].items() for bar in bars]
        token = page["next_page_token"]
        if token is None:
            break
    hours = [f"2024-01-02T0{h}:00:00Z" for h in range(5)]
    assert seen == [("AAPL", t) for t in hours] + [("SPY", t) for t in hours]
    bad = requests.get(
        f"{server.url}/v2/stocks/bars", params=query | {"page_token": "%%%"}, headers=HEADERS
    )
    assert bad.status_code == 400
