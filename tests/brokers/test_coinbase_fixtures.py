"""Contract: every Coinbase fixture (real answers and documented examples, each with its
``source``) read by CoinbaseBroker through the real SDK over real HTTP, and the emulator's
own answers in the same shapes.

A fixture body is served on the emulator's route of the same name (``serve``); the
expected values are derived from the body's own fields, so the tests check the mapping
from Coinbase's fields to the project's types. Without the fixtures (a user's clone)
every test here skips: nija_testkit.fixtures says where they are looked for.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from bot.errors import InsufficientFunds, OrderRejected
from bot.isolation.failures import is_definitive_refusal
from bot.model import MarketRules, OrderRequest, OrderStatus, OrderType, Position, Side
from nija_testkit.emulator.coinbase import CoinbaseVenue
from nija_testkit.emulator.core import Market
from nija_testkit.emulator.server import EmulatorServer, Request, Response
from nija_testkit.fixtures import load_fixture
from tests.brokers.coinbase_account import fund, make_broker

Answer = dict[str, Any] | Callable[[Request], Response]


@pytest.fixture
def entries() -> dict[str, Any]:
    return load_fixture("coinbase.json")["entries"]


@pytest.fixture
def server(venue_server) -> EmulatorServer:
    return venue_server("COINBASE", Market())


@pytest.fixture
def venue(server: EmulatorServer) -> CoinbaseVenue:
    fund(server.venue, {"USD": 1000.0})
    return server.venue


def body(entries: dict[str, Any], name: str) -> dict[str, Any]:
    """A fresh copy of fixture entry ``name``'s body."""
    return copy.deepcopy(entries[name]["body"])


def serve(venue: CoinbaseVenue, route: str, answer: Answer) -> None:
    """Answer the emulator's route ``route`` with ``answer`` (a body sent with 200, or a
    handler). It takes that route's place in the table: ``/orders/historical/{id}`` must
    not shadow ``/orders/historical/batch``."""
    at = next(i for i, (_m, _p, name, _h) in enumerate(venue.routes) if name == route)
    method, pattern = venue.routes[at][:2]
    handler = answer if callable(answer) else (lambda req: Response(200, copy.deepcopy(answer)))
    venue.routes.insert(at, (method, pattern, route, handler))


def symbol_of(product_id: str) -> str:
    return product_id.replace("-", "/")


# -- market data and accounts ------------------------------------------------------------------------


def test_products_give_each_products_market_rules(server, venue, entries):
    products = body(entries, "products")["products"]
    serve(venue, "markets", body(entries, "products"))
    symbols = tuple(symbol_of(p["product_id"]) for p in products)
    broker = make_broker(server, symbols=symbols)
    assert broker.symbols() == list(symbols)
    for p in products:
        symbol = symbol_of(p["product_id"])
        assert broker.market_rules(symbol) == MarketRules(
            symbol,
            p["base_currency_id"],
            p["quote_currency_id"],
            amount_step=float(p["base_increment"]),
            min_amount=float(p["base_min_size"]),
            min_notional=float(p["quote_min_size"]),
            price_step=float(p["quote_increment"]),  # the doc example has no price_increment
        )
    assert len(server.requests_to("markets")) == 1


def test_the_emulators_products_have_the_real_field_set(server, venue, entries):
    real = body(entries, "products")["products"][0]
    emulated = make_broker(server)._raw("products", "get", "/products")["products"][0]
    assert set(real) <= set(emulated)
    assert {k: type(v) for k, v in emulated.items() if k in real} == {
        k: type(v) for k, v in real.items()
    }


def test_accounts_and_ticker_give_the_balance_and_positions(server, venue, entries):
    accounts = body(entries, "accounts")["accounts"]
    trades = body(entries, "ticker")
    serve(venue, "markets", body(entries, "products"))
    serve(venue, "balance", body(entries, "accounts"))
    serve(venue, "ticker", trades)
    last = float(trades["trades"][0]["price"])
    held = {a["currency"]: float(a["available_balance"]["value"]) for a in accounts}
    broker = make_broker(server)
    balance = broker.fetch_balance()
    assert balance.cash == {c: v for c, v in held.items() if v > 0}
    assert balance.usd_cash == pytest.approx(held["USDC"])
    assert balance.usd_equity == pytest.approx(held["USDC"] + held["BTC"] * last)
    assert broker.fetch_positions() == [
        Position("BTC/USDC", held["BTC"], None, pytest.approx(held["BTC"] * last))
    ]
    assert server.requests_to("ticker")[0].path.endswith("/products/BTC-USDC/ticker")


def test_candles(server, venue, entries):
    (raw,) = body(entries, "candles")["candles"]
    serve(venue, "candles", body(entries, "candles"))
    candles = make_broker(server).fetch_candles("BTC/USD", "1m", 1)
    assert candles.timestamp_ms.tolist() == [int(raw["start"]) * 1000]
    assert [candles.open[0], candles.high[0], candles.low[0], candles.close[0]] == [
        float(raw[k]) for k in ("open", "high", "low", "close")
    ]
    assert candles.volume[0] == float(raw["volume"])


def test_ticker_is_best_bid_ask_and_the_newest_trade(server, venue, entries):
    trades = body(entries, "ticker")
    serve(venue, "ticker", trades)
    ticker = make_broker(server).fetch_ticker("BTC/USDC")
    assert (ticker.symbol, ticker.bid, ticker.ask, ticker.last) == (
        "BTC/USDC",
        float(trades["best_bid"]),
        float(trades["best_ask"]),
        float(trades["trades"][0]["price"]),
    )


# -- creating orders ---------------------------------------------------------------------------------


def _request(success: dict[str, Any], config: dict[str, Any] | None) -> OrderRequest:
    """The request a create-order answer answers (its product, side and client id)."""
    base_size = next(iter((config or {}).values()), {}).get("base_size", "0.01")
    return OrderRequest(
        symbol_of(success["product_id"]),
        Side(success["side"].lower()),
        OrderType.MARKET,
        success["client_order_id"],
        amount=float(base_size),
    )


CREATED = ["create_ok_doc2023", "create_ok_issue49", "create_ok_after_2024_09"]


@pytest.mark.parametrize("name", CREATED)
def test_an_accepted_order_is_read_back_by_the_success_response_id(server, venue, entries, name):
    answer = body(entries, name)
    success = answer["success_response"]
    filled = {**body(entries, "order_filled"), **success}  # the order as Get Order shows it
    serve(venue, "create_order", answer)
    serve(venue, "get_order", {"order": filled})
    order = make_broker(server).place_order(_request(success, answer["order_configuration"]))
    (read_back,) = server.requests_to("get_order")
    assert read_back.path.endswith("/orders/historical/" + success["order_id"])
    assert (order.venue_order_id, order.client_order_id) == (
        success["order_id"],
        success["client_order_id"],
    )
    assert (order.symbol, order.side, order.status) == (
        symbol_of(success["product_id"]),
        Side(success["side"].lower()),
        OrderStatus.FILLED,
    )


@pytest.mark.parametrize("name", CREATED)
def test_an_accepted_order_not_yet_readable_is_the_acknowledged_order(server, venue, entries, name):
    answer = body(entries, name)
    success = answer["success_response"]
    serve(venue, "create_order", answer)
    serve(venue, "get_order", lambda req: venue.error_response("order_not_found"))
    order = make_broker(server).place_order(_request(success, answer["order_configuration"]))
    assert (order.venue_order_id, order.status) == (success["order_id"], OrderStatus.OPEN)


def test_the_emulators_success_answer_has_the_current_shape(server, venue, entries):
    real = body(entries, "create_ok_after_2024_09")
    broker = make_broker(server)
    order = {"market_market_ioc": {"quote_size": "10"}}
    sent = {"client_order_id": "shape-1", "product_id": "BTC-USD", "side": "BUY"}
    emulated = broker._raw("create", "post", "/orders", data={**sent, "order_configuration": order})
    assert set(emulated) == set(real)
    assert set(emulated["success_response"]) == set(real["success_response"])


def test_a_failed_create_is_a_definitive_rejection_with_the_venues_reason(server, venue, entries):
    answer = body(entries, "create_failed")
    serve(venue, "create_order", answer)
    with pytest.raises(OrderRejected) as info:
        make_broker(server).place_order(
            OrderRequest("BTC/USD", Side.BUY, OrderType.LIMIT, "fx-1", amount=1.0, limit_price=1.0)
        )
    assert type(info.value) is OrderRejected  # not InsufficientFunds
    err = answer["error_response"]
    assert err["error"] in info.value.reason and err["message"] in info.value.reason
    assert is_definitive_refusal(info.value)
    assert not isinstance(info.value, InsufficientFunds)


def test_the_emulators_refusal_has_the_documented_shape(server, venue, entries):
    real = body(entries, "create_failed")
    venue.set_rules("BTC/USD", quote_min_size="50")
    sent = {"client_order_id": "shape-2", "product_id": "BTC-USD", "side": "BUY"}
    config = {"market_market_ioc": {"quote_size": "10"}}
    emulated = make_broker(server)._raw(
        "create", "post", "/orders", data={**sent, "order_configuration": config}
    )
    assert set(emulated) == set(real)
    assert set(real["error_response"]) <= set(emulated["error_response"])
    assert (emulated["success"], emulated["order_configuration"]) == (False, config)


# -- looking orders up -------------------------------------------------------------------------------


def list_pages(entries: dict[str, Any], orders: list[dict[str, Any]]) -> Callable:
    """List Orders as captured: the orders with the first page's envelope, then the last page."""
    first = {"orders": orders, **body(entries, "list_page1_meta")}

    def handler(req: Request) -> Response:
        more = req.query.get("cursor") == first["cursor"]
        return Response(200, body(entries, "list_last_page") if more else copy.deepcopy(first))

    return handler


def test_a_filled_order_is_found_by_client_id_with_its_fee(server, venue, entries):
    raw = body(entries, "order_filled")
    serve(venue, "fetch_order", list_pages(entries, [raw]))
    order = make_broker(server).fetch_order(raw["client_order_id"])
    assert order is not None
    quote = raw["product_id"].split("-")[1]
    assert (order.client_order_id, order.venue_order_id, order.symbol) == (
        raw["client_order_id"],
        raw["order_id"],
        symbol_of(raw["product_id"]),
    )
    assert (order.side, order.type, order.status) == (
        Side.SELL,
        OrderType.MARKET,
        OrderStatus.FILLED,
    )
    assert order.amount == float(raw["order_configuration"]["market_market_ioc"]["base_size"])
    assert (order.filled, order.average_price) == (
        float(raw["filled_size"]),
        float(raw["average_filled_price"]),
    )
    # Charged in USDT: counted as dollars, and not taken from the coin sold.
    assert (order.fee, order.fee_currency) == (float(raw["total_fees"]), quote)
    assert order.fee_usd == float(raw["total_fees"])
    assert order.base_received(raw["product_id"].split("-")[0]) == order.filled


def test_an_unknown_client_id_walks_every_page_before_none(server, venue, entries):
    meta = body(entries, "list_page1_meta")
    serve(venue, "fetch_order", list_pages(entries, [body(entries, "order_filled")]))
    broker = make_broker(server)
    assert broker.fetch_order("not-at-the-venue") is None
    pages = server.requests_to("fetch_order")
    assert [r.query.get("cursor") for r in pages] == [None, [meta["cursor"]]]
    assert broker.fetch_open_orders() == []  # the filled order is not open


def test_the_emulators_orders_have_the_real_field_set(server, venue, entries):
    real = body(entries, "order_filled")
    real.pop("cursor")  # the captured list page's cursor, repeated on its order
    broker = make_broker(server)
    placed = broker.place_order(
        OrderRequest("BTC/USD", Side.BUY, OrderType.MARKET, "f-1", amount=0.001)
    )
    raw = broker._raw("list", "get", "/orders/historical/batch")
    (emulated,) = raw["orders"]
    assert emulated["order_id"] == placed.venue_order_id
    assert set(real) <= set(emulated)
    assert {k: type(v) for k, v in emulated.items() if k in real} == {
        k: type(v) for k, v in real.items()
    }
    assert set(body(entries, "list_last_page")) <= set(raw)


def test_cancel_reads_the_batch_cancel_result(server, venue, entries):
    (result,) = body(entries, "cancel")["results"]
    open_order = {**body(entries, "order_filled"), "order_id": result["order_id"]}
    open_order.update(status="OPEN", filled_size="0", completion_percentage="0")
    serve(venue, "fetch_order", {"orders": [open_order], "has_next": False, "cursor": ""})
    serve(venue, "cancel_order", body(entries, "cancel"))
    serve(venue, "get_order", {"order": {**open_order, "status": "CANCELLED"}})
    canceled = make_broker(server).cancel_order(open_order["client_order_id"])
    assert canceled is not None
    assert (canceled.venue_order_id, canceled.status) == (result["order_id"], OrderStatus.CANCELED)
    (sent,) = server.requests_to("cancel_order")
    assert sent.json() == {"order_ids": [result["order_id"]]}
