"""Coinbase as it really is: create-order answers, fees in USD-like quotes, product rules,
repeated client ids and look-ups of closed orders (docs/VENUES.md, "Coinbase").

Through the real coinbase-advanced-py SDK over real HTTP against the emulator; the
helpers are those of test_broker_coinbase.py.
"""

from __future__ import annotations

import pytest

from bot.errors import BadResponse, NotFound, OrderRejected
from bot.isolation.failures import is_definitive_refusal
from bot.model import MarketRules, OrderRequest, OrderStatus, OrderType, Side
from nija_testkit.emulator.coinbase import CoinbaseVenue
from nija_testkit.emulator.core import Market
from nija_testkit.emulator.server import EmulatorServer, Fault, Request, Response
from tests.brokers.coinbase_account import fund, make_broker


@pytest.fixture
def server(venue_server) -> EmulatorServer:
    return venue_server("COINBASE", Market())


@pytest.fixture
def venue(server: EmulatorServer) -> CoinbaseVenue:
    return server.venue


def rewrite_create(venue: CoinbaseVenue, rewrite) -> None:
    """Let the emulator create the order, then answer with ``rewrite(body)`` instead."""
    create = next(r for r in venue.routes if r[2] == "create_order")

    def handler(req: Request) -> Response:
        answer = create[3](req)
        return Response(answer.status, rewrite(dict(answer.body)))

    venue.routes.insert(0, (create[0], create[1], "create_order", handler))


def market_buy(client_id: str, quote: float = 100.0, symbol: str = "BTC/USD") -> OrderRequest:
    return OrderRequest(symbol, Side.BUY, OrderType.MARKET, client_id, quote_amount=quote)


# -- a created order is the order, whatever else the answer carries ------------------------------


def test_null_order_configuration_in_the_answer_still_returns_the_order(server, venue):
    # Coinbase's 2023 documented success example carries "order_configuration": null; the
    # SDK's typed response raises on it after the order exists.
    ledger = fund(venue, {"USD": 1000.0})
    rewrite_create(venue, lambda body: {**body, "order_configuration": None})
    order = make_broker(server).place_order(market_buy("nija-cb-null"))
    (placed,) = ledger.all_orders()
    assert order.venue_order_id == placed.order_id
    assert order.status is OrderStatus.FILLED
    assert order.client_order_id == "nija-cb-null"


def test_answer_without_top_level_order_id_uses_the_success_response(server, venue):
    # Since 2024-09-03 Create Order sends no top-level order_id / failure_reason; an old
    # top-level order_id that differs from success_response's is not the order's id.
    ledger = fund(venue, {"USD": 1000.0})
    rewrite_create(venue, lambda body: {**body, "order_id": "not-the-order-id"})
    order = make_broker(server).place_order(market_buy("nija-cb-toplevel"))
    assert order.venue_order_id == ledger.all_orders()[0].order_id


def test_success_without_an_order_id_is_looked_up_by_client_id(server, venue):
    ledger = fund(venue, {"USD": 1000.0})
    rewrite_create(venue, lambda body: {"success": True, "success_response": {}})
    order = make_broker(server).place_order(market_buy("nija-cb-noid"))
    assert order.venue_order_id == ledger.all_orders()[0].order_id
    assert len(server.requests_to("fetch_order")) == 1


def test_a_failed_read_back_of_a_created_order_is_never_a_refusal(server, venue):
    # Right after Create Order said success, Get Order answers 404 (not visible yet): the
    # order exists, so the answer is the acknowledged order, not "no such order".
    ledger = fund(venue, {"USD": 1000.0})
    server.inject("get_order", Fault("venue_error", code="order_not_found", times=1))
    order = make_broker(server).place_order(market_buy("nija-cb-404"))
    assert order.venue_order_id == ledger.all_orders()[0].order_id
    assert order.status is OrderStatus.OPEN  # to be resolved by client id, like any open order
    assert (order.client_order_id, order.symbol, order.side) == ("nija-cb-404", "BTC/USD", "buy")


def test_success_without_any_readable_order_is_ambiguous_not_a_refusal(server, venue):
    fund(venue, {"USD": 1000.0})
    rewrite_create(venue, lambda body: {"success": True})
    server.inject("fetch_order", Fault("status", status=503))
    with pytest.raises(BadResponse) as info:
        make_broker(server).place_order(market_buy("nija-cb-lost"))
    assert not is_definitive_refusal(info.value)


# -- fees as charged ---------------------------------------------------------------------------------


@pytest.mark.parametrize("symbol", ["BTC/USDT", "BTC/USD"])
def test_fees_in_a_usd_like_quote_are_counted_in_dollars(server, venue, symbol):
    quote = symbol.split("/")[1]
    ledger = fund(venue, {quote: 1000.0})
    order = make_broker(server).place_order(market_buy(f"nija-cb-fee-{quote}", 500.0, symbol))
    charged = ledger.all_orders()[0].fee  # the emulator charges 0.1% in the quote currency
    assert charged == pytest.approx(0.5)
    assert (order.fee, order.fee_currency) == (pytest.approx(charged), quote)
    assert order.fee_usd == pytest.approx(charged)
    assert order.base_received("BTC") == pytest.approx(order.filled)  # the fee is not in BTC


# -- product rules -----------------------------------------------------------------------------------


def test_market_rules_come_from_the_product_metadata_loaded_once(server, venue):
    fund(venue, {"USD": 100.0})
    venue.set_rules("ETH/USD", base_increment="0.0001", base_min_size="0.001", quote_min_size="5")
    broker = make_broker(server)
    assert broker.symbols() == ["BTC/USD", "ETH/USD"]
    assert broker.market_rules("ETH/USD") == MarketRules(
        "ETH/USD", "ETH", "USD", amount_step=0.0001, min_amount=0.001, min_notional=5.0,
        price_step=0.01,
    )  # fmt: skip
    assert broker.market_rules("BTC/USD").amount_step == 1e-8
    assert len(server.requests_to("markets")) == 1


def test_market_rules_of_an_unlisted_product_is_not_found(server, venue):
    fund(venue, {"USD": 100.0})
    with pytest.raises(NotFound):
        make_broker(server).market_rules("DOGE/USD")


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (OrderRequest("ETH/USD", Side.SELL, OrderType.MARKET, "min-b", amount=0.0005), "BASE"),
        (OrderRequest("ETH/USD", Side.BUY, OrderType.MARKET, "min-q", quote_amount=4.0), "QUOTE"),
        (
            OrderRequest(
                "ETH/USD", Side.BUY, OrderType.LIMIT, "min-n", amount=0.001, limit_price=2000.0
            ),
            "QUOTE",
        ),
    ],
    ids=["base_min_size", "quote_min_size", "limit_notional"],
)
def test_orders_below_the_product_minimums_are_refused_by_the_venue(
    server, venue, request_, reason
):
    ledger = fund(venue, {"USD": 1000.0, "ETH": 1.0})
    venue.set_rules("ETH/USD", base_min_size="0.001", quote_min_size="5")
    with pytest.raises(OrderRejected) as info:
        make_broker(server).place_order(request_)
    assert f"PREVIEW_INVALID_{reason}_SIZE_TOO_SMALL" in info.value.reason
    assert is_definitive_refusal(info.value)
    assert ledger.all_orders() == []
    assert len(server.requests_to("create_order")) == 1  # refused by the venue, not before


def test_the_rules_the_adapter_reads_are_the_rules_the_venue_enforces(server, venue):
    ledger = fund(venue, {"USD": 1000.0})
    venue.set_rules("ETH/USD", base_min_size="0.01", quote_min_size="10")
    broker = make_broker(server)
    rules = broker.market_rules("ETH/USD")
    price = 3000.0
    small = rules.floor_amount(0.00999)
    assert rules.refusal(small, price) is not None
    with pytest.raises(OrderRejected):
        broker.place_order(
            OrderRequest("ETH/USD", Side.BUY, OrderType.MARKET, "edge-1", amount=small)
        )
    enough = rules.floor_amount(0.01)
    assert rules.refusal(enough, price) is None
    order = broker.place_order(
        OrderRequest("ETH/USD", Side.BUY, OrderType.MARKET, "edge-2", amount=enough)
    )
    assert order.status is OrderStatus.FILLED
    assert len(ledger.all_orders()) == 1


# -- a repeated client id -------------------------------------------------------------------------


def test_a_repeated_client_id_answers_the_existing_order_even_when_closed(server, venue):
    # "If the ID provided is not unique, the order will not be created and the order
    # corresponding with that ID will be returned instead" (Create Order, client_order_id).
    ledger = fund(venue, {"USD": 1000.0, "BTC": 1.0})
    broker = make_broker(server)
    first = broker.place_order(market_buy("nija-cb-again", 100.0))
    assert first.status is OrderStatus.FILLED  # closed: a market order fills at once
    again = broker.place_order(
        OrderRequest("BTC/USD", Side.SELL, OrderType.MARKET, "nija-cb-again", amount=0.5)
    )
    assert again.venue_order_id == first.venue_order_id
    assert (again.side, again.status) == (Side.BUY, OrderStatus.FILLED)
    assert len(ledger.all_orders()) == 1
    assert ledger.balance("BTC") == pytest.approx(1.0 + first.filled)


def test_a_repeated_client_id_of_a_canceled_order_creates_nothing(server, venue):
    ledger = fund(venue, {"USD": 1000.0})
    broker = make_broker(server)
    limit = OrderRequest(
        "BTC/USD", Side.BUY, OrderType.LIMIT, "nija-cb-cxl", amount=0.001, limit_price=50000.0
    )
    placed = broker.place_order(limit)
    broker.cancel_order("nija-cb-cxl")
    again = broker.place_order(limit)
    assert again.venue_order_id == placed.venue_order_id
    assert again.status is OrderStatus.CANCELED
    assert len(ledger.all_orders()) == 1


# -- look-up by client id covers closed orders ---------------------------------------------------------


def test_lookup_by_client_id_finds_filled_and_canceled_orders_behind_newer_ones(server, venue):
    ledger = fund(venue, {"USD": 100000.0})
    broker = make_broker(server)
    broker.place_order(market_buy("nija-cb-filled", 10.0))
    broker.place_order(
        OrderRequest(
            "BTC/USD", Side.BUY, OrderType.LIMIT, "nija-cb-gone", amount=0.001, limit_price=1000.0
        )
    )
    broker.cancel_order("nija-cb-gone")
    for i in range(300):  # newer orders: the two closed ones are on the second page
        ledger.place(
            "BTC/USD", "buy", "limit", amount=0.001, limit_price=1000.0, client_order_id=f"n-{i}"
        )
    server.requests.clear()
    filled = broker.fetch_order("nija-cb-filled", "BTC/USD")
    canceled = broker.fetch_order("nija-cb-gone")
    assert filled is not None and filled.status is OrderStatus.FILLED
    assert canceled is not None and canceled.status is OrderStatus.CANCELED
    walks = server.requests_to("fetch_order")
    assert len(walks) == 4  # two pages each
    assert all("order_status" not in r.query for r in walks)  # every status, not just OPEN
    assert walks[0].query["product_ids"] == ["BTC-USD"]
