"""Contract tests: the ccxt adapter parses the venues' real answers.

Each answer in ``shared/venue-fixtures/{kraken,binance,okx}.json`` (captured answers and
the venues' documented examples; every entry names its source) is served as is over real
HTTP on 127.0.0.1 (``CannedVenue``), and the real ccxt, through the adapter, must turn it
into the right project types. Where the folder is absent (a user's clone) these skip.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.brokers.ccxt.broker import CcxtBroker
from bot.model import (
    AccountRef,
    BrokerSpec,
    Credentials,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
)
from nija_testkit.emulator.canned import CannedVenue, body
from nija_testkit.emulator.server import EmulatorServer, Request, Response
from nija_testkit.fixtures import load_fixture

CREDENTIALS = {
    "KRAKEN": Credentials("FAKE-KRAKEN-KEY", "FAKEKRAKENSECRETFAKEKRAKENSECRET"),
    "BINANCE": Credentials("FAKE-BINANCE-KEY", "FAKE-BINANCE-SECRET"),
    "OKX": Credentials("FAKE-OKX-KEY", "FAKE-OKX-SECRET", "FAKE-OKX-PASSPHRASE"),
}


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    srv = EmulatorServer(CannedVenue("CANNED")).start()
    yield srv
    srv.stop()


@pytest.fixture
def canned(server: EmulatorServer):
    """``canned("KRAKEN", symbols)`` → (venue to fill with answers, broker against it)."""
    built: list[CcxtBroker] = []

    def make(broker: str, symbols: tuple[str, ...]) -> tuple[CannedVenue, CcxtBroker]:
        server.venue = CannedVenue(broker)
        server.requests.clear()
        spec = BrokerSpec(
            AccountRef("platform", "platform", broker),
            CREDENTIALS[broker],
            symbols=symbols,
            base_url=server.url,
            timeout_seconds=3.0,
            rate_limit=False,
        )
        built.append(CcxtBroker(spec))
        return server.venue, built[-1]

    yield make
    for broker in built:
        broker.close()


def unanswered(server: EmulatorServer) -> list[str]:
    """Requests the canned venue had no answer for (the SDK asked for something unexpected)."""
    return [f"{r.method} {r.path}" for r in server.requests if r.route is None]


# -- Kraken ---------------------------------------------------------------------------------


@pytest.fixture
def kraken(canned, server):
    fx = load_fixture("kraken.json")["entries"]
    venue, broker = canned("KRAKEN", ("BTC/USDT", "LTC/USDT", "BTC/USD"))
    venue.answer("GET", "/0/public/Assets", body(fx["Assets"]))
    venue.answer("GET", "/0/public/AssetPairs", body(fx["AssetPairs"]))
    yield fx, venue, broker
    assert unanswered(server) == []


def kraken_keyed_by(entry: dict, param: str):
    """The entry's one result, keyed by what the request asked for (``pair``/``txid``):
    Kraken keys these answers by the id requested."""

    def answer(req: Request) -> Response:
        asked = req.query.get(param) or req.form().get(param)
        (value,) = entry["body"]["result"].values()
        return Response(200, {"error": [], "result": {asked: value}})

    return answer


def test_kraken_market_rules_come_from_asset_pairs(kraken):
    _, _, broker = kraken
    assert broker.symbols() == ["BTC/USDT", "LTC/USDT", "BTC/USD"]
    btc = broker.market_rules("BTC/USDT")
    assert (btc.base, btc.quote) == ("BTC", "USDT")
    # lot_decimals 8 → step 1e-8; ordermin, costmin and tick_size as listed.
    assert btc.amount_step == pytest.approx(1e-8)
    assert btc.min_amount == pytest.approx(0.00005)
    assert btc.min_notional == pytest.approx(0.5)
    assert btc.price_step == pytest.approx(0.1)
    ltc = broker.market_rules("LTC-USDT")
    assert (ltc.min_amount, ltc.price_step) == (pytest.approx(0.05), pytest.approx(0.01))
    assert ltc.refusal(0.04, 70.0) is not None and ltc.refusal(0.05, 70.0) is None


def test_kraken_ticker_and_candles(kraken):
    fx, venue, broker = kraken
    venue.answer("GET", "/0/public/Ticker", kraken_keyed_by(fx["Ticker"], "pair"))
    venue.answer("GET", "/0/public/OHLC", body(fx["OHLC"]))
    ticker = broker.fetch_ticker("BTC/USDT")
    assert (ticker.bid, ticker.ask, ticker.last) == (73380.6, 73380.7, 73380.6)
    candles = broker.fetch_candles("BTC/USDT", "1h", limit=10)
    assert len(candles) == 6
    assert candles.timestamp_ms[0] == 1706626800 * 1000
    assert (candles.open[0], candles.close[0], candles.volume[0]) == (43437.5, 43361.1, 18.7543011)
    assert candles.timestamp_ms.tolist() == sorted(candles.timestamp_ms.tolist())


def test_kraken_balance_ex(kraken):
    fx, venue, broker = kraken
    venue.answer("POST", "/0/private/BalanceEx", body(fx["BalanceEx"]))
    venue.answer("GET", "/0/public/Ticker", kraken_keyed_by(fx["Ticker"], "pair"))
    balance = broker.fetch_balance()
    assert balance.cash == {"USD": 25435.21, "BTC": 1.2435}
    assert balance.usd_cash == 25435.21
    assert balance.usd_equity == pytest.approx(25435.21 + 1.2435 * 73380.6)
    assert (balance.funding_usd, balance.notes) == (0.0, ())


def test_kraken_market_buy_reads_the_fee_in_quote_from_oflags(kraken):
    fx, venue, broker = kraken
    venue.answer("POST", "/0/private/AddOrder", body(fx["AddOrder"]))
    venue.answer(
        "POST", "/0/private/QueryOrders", kraken_keyed_by(fx["QueryOrders_closed_market"], "txid")
    )
    order = broker.place_order(
        OrderRequest("LTC/USDT", Side.BUY, OrderType.MARKET, "nija-k-1", amount=0.1)
    )
    assert order.venue_order_id == "OL7LNO-R4SAD-6UINEU"
    # Placed without cl_ord_id, the capture carries userref "0": that is not a client id.
    assert order.client_order_id == "nija-k-1"
    assert (order.symbol, order.side, order.type) == ("LTC/USDT", Side.BUY, OrderType.MARKET)
    assert order.status is OrderStatus.FILLED
    assert (order.amount, order.filled, order.average_price) == (0.1, 0.1, 71.05741)
    # oflags "fciq": the fee is in the quote currency, so all 0.1 LTC arrived.
    assert (order.fee, order.fee_currency) == (0.018475, "USDT")
    assert order.fee_usd == pytest.approx(0.018475)
    assert order.base_received("LTC") == 0.1


def test_kraken_finds_an_order_by_cl_ord_id_among_open_then_closed(kraken, server):
    fx, venue, broker = kraken

    def open_orders(req: Request) -> Response:
        cl_ord_id = req.form().get("cl_ord_id")
        if cl_ord_id is None:
            return body(fx["OpenOrders_all"])
        return body(fx["OpenOrders_cl_ord_id_1234" if cl_ord_id == "1234" else "OpenOrders_empty"])

    venue.answer("POST", "/0/private/OpenOrders", open_orders, route="open_orders")
    venue.answer("POST", "/0/private/ClosedOrders", body(fx["ClosedOrders_empty"]), route="closed")
    venue.answer("POST", "/0/private/CancelOrder", body(fx["CancelOrder"]), route="cancel")

    found = broker.fetch_order("1234")
    assert found is not None and found.status is OrderStatus.OPEN
    assert (found.client_order_id, found.venue_order_id) == ("1234", "O45M52-BFD5S-YXKQOU")
    assert (found.symbol, found.side, found.type) == ("BTC/USD", Side.BUY, OrderType.LIMIT)
    assert (found.amount, found.filled) == (0.0001, 0.0)
    assert server.requests_to("closed") == []  # found among the open ones: no second query

    assert broker.fetch_order("absent") is None
    assert server.requests_to("closed")[-1].params()["cl_ord_id"] == "absent"

    listed = broker.fetch_open_orders()
    assert [(o.symbol, o.side, o.status) for o in listed] == [
        ("LTC/USDT", Side.SELL, OrderStatus.OPEN)
    ] * 2
    # ccxt folds Kraken's trigger orders into market/limit; the venue's type stays in extra.
    assert sorted((o.extra["venue_type"], o.type) for o in listed) == [
        ("stop-loss-limit", OrderType.LIMIT),
        ("take-profit", OrderType.MARKET),
    ]
    assert all(o.client_order_id == "" for o in listed)  # userref "0" is not a client id

    after = broker.cancel_order("1234")
    assert server.requests_to("cancel")[-1].params()["cl_ord_id"] == "1234"
    assert after is not None and after.venue_order_id == "O45M52-BFD5S-YXKQOU"


# -- Binance --------------------------------------------------------------------------------


@pytest.fixture
def binance(canned, server):
    fx = load_fixture("binance.json")["entries"]
    venue, broker = canned("BINANCE", ("BTC/USDT", "LTC/USDT", "SOL/USDT"))
    venue.answer("GET", "/api/v3/exchangeInfo", body(fx["exchangeInfo"]))
    yield fx, venue, broker
    assert unanswered(server) == []


def test_binance_market_rules_come_from_the_symbol_filters(binance):
    _, _, broker = binance
    assert broker.symbols() == ["BTC/USDT", "LTC/USDT", "SOL/USDT"]
    btc = broker.market_rules("BTC/USDT")
    # LOT_SIZE stepSize/minQty, MIN_NOTIONAL minNotional, PRICE_FILTER tickSize.
    assert (btc.amount_step, btc.min_amount) == (pytest.approx(0.00001), pytest.approx(0.00001))
    assert (btc.min_notional, btc.price_step) == (pytest.approx(5.0), pytest.approx(0.01))
    ltc = broker.market_rules("LTC/USDT")
    assert (ltc.amount_step, ltc.min_amount) == (pytest.approx(0.001), pytest.approx(0.001))
    assert ltc.floor_amount(0.12345) == pytest.approx(0.123)
    assert ltc.refusal(0.05, 90.0) is not None  # $4.50 is under the $5 minimum notional


def test_binance_ticker_candles_and_account(binance):
    fx, venue, broker = binance
    venue.answer("GET", "/api/v3/ticker/24hr", body(fx["ticker24hr"]))
    venue.answer("GET", "/api/v3/klines", body(fx["klines"]))
    venue.answer("GET", "/api/v3/account", body(fx["account"]))
    ticker = broker.fetch_ticker("BTC/USDT")
    assert (ticker.bid, ticker.ask, ticker.last) == (118449.02, 118449.03, 118449.03)
    candles = broker.fetch_candles("BTC/USDT", "1m", limit=5)
    assert candles.timestamp_ms.tolist() == [1591478520000]
    assert (candles.open[0], candles.close[0], candles.volume[0]) == (0.025013, 0.025, 22.19)
    balance = broker.fetch_balance()
    assert balance.cash == {"BTC": 0.00219821}
    assert balance.usd_cash == 0.0
    assert balance.usd_equity == pytest.approx(0.00219821 * 118449.03)


def test_binance_full_market_buy_with_the_commission_in_bnb(binance):
    fx, venue, broker = binance
    venue.answer("POST", "/api/v3/order", body(fx["order_full_market_buy"]))
    order = broker.place_order(
        OrderRequest("BTC/USDT", Side.BUY, OrderType.MARKET, "nija-b-1", amount=0.0005)
    )
    assert order.client_order_id == "x-TKT5PX2F5e669e75b6c14f69a2c43e"  # as the venue says
    assert (order.venue_order_id, order.status) == ("5403233939", OrderStatus.FILLED)
    assert (order.filled, order.average_price) == (0.0005, 58941.63)
    # BNB paid the commission: the whole 0.0005 BTC arrived.
    assert (order.fee, order.fee_currency) == (0.0000705, "BNB")
    assert order.base_received("BTC") == 0.0005
    assert order.fee_usd == 0.0  # a BNB fee is not valued here


def test_binance_limit_order_open_and_listed(binance):
    fx, venue, broker = binance
    venue.answer("POST", "/api/v3/order", body(fx["order_limit_new"]))
    venue.answer("GET", "/api/v3/openOrders", body(fx["openOrders"]))
    placed = broker.place_order(
        OrderRequest(
            "SOL/USDT", Side.BUY, OrderType.LIMIT, "nija-b-2", amount=0.05, limit_price=241.0
        )
    )
    assert (placed.venue_order_id, placed.status, placed.type) == (
        "9780331417",
        OrderStatus.OPEN,
        OrderType.LIMIT,
    )
    assert (placed.amount, placed.filled, placed.fee_currency) == (0.05, 0.0, None)
    (listed,) = broker.fetch_open_orders("LTC/USDT")
    assert (listed.client_order_id, listed.status) == (
        "x-R4BD3S82102a551f8c1642bba06728",
        OrderStatus.OPEN,
    )
    assert (listed.type, listed.extra["venue_type"]) == (OrderType.LIMIT, "LIMIT_MAKER")
    assert (listed.amount, listed.side) == (0.2, Side.BUY)


def test_binance_closed_order_by_client_id_with_its_fee_from_my_trades(binance, server):
    fx, venue, broker = binance

    def order(req: Request) -> Response:
        if req.query.get("origClientOrderId") == "x-R4BD3S825806ed40c861260428a48c":
            return body(fx["order_closed_market_sell"])
        return body(fx["order_not_found"])

    # GET /api/v3/order carries no commission; GET /api/v3/myTrades does. This answer is
    # built in Binance's documented myTrades shape for the captured order (no capture exists).
    trade = {
        "symbol": "LTCUSDT",
        "id": 1,
        "orderId": 3397148653,
        "orderListId": -1,
        "price": "90.80000000",
        "qty": "0.10000000",
        "quoteQty": "9.08000000",
        "commission": "0.00908000",
        "commissionAsset": "USDT",
        "time": 1679571174472,
        "isBuyer": False,
        "isMaker": False,
        "isBestMatch": True,
    }
    venue.answer("GET", "/api/v3/order", order)
    venue.answer("GET", "/api/v3/myTrades", Response(200, [trade]), route="my_trades")
    closed = broker.fetch_order("x-R4BD3S825806ed40c861260428a48c", "LTC/USDT")
    assert closed is not None and closed.status is OrderStatus.FILLED
    assert (closed.side, closed.type, closed.filled) == (Side.SELL, OrderType.MARKET, 0.1)
    assert closed.average_price == pytest.approx(90.8)
    assert (closed.fee, closed.fee_currency, closed.fee_usd) == (0.00908, "USDT", 0.00908)
    assert server.requests_to("my_trades")[-1].query["orderId"] == ["3397148653"]
    assert broker.fetch_order("nija-absent", "BTC/USDT") is None


def test_binance_cancel_answer_keeps_the_orders_own_client_id(binance, server):
    fx, venue, broker = binance
    (resting,) = fx["openOrders"]["body"]
    venue.answer("GET", "/api/v3/order", Response(200, resting), body(fx["cancel"]))
    venue.answer("DELETE", "/api/v3/order", body(fx["cancel"]))
    after = broker.cancel_order("x-R4BD3S82102a551f8c1642bba06728", "LTC/USDT")
    sent = [r for r in server.requests if r.method == "DELETE"][-1].params()
    assert sent["origClientOrderId"] == "x-R4BD3S82102a551f8c1642bba06728"
    assert after is not None and after.status is OrderStatus.CANCELED
    # The cancel answer's clientOrderId names the cancel request; the order's is the orig one.
    assert after.client_order_id == "web_3f6286480b194b079870ac75fb6978b7"
    assert (after.venue_order_id, after.amount) == ("16383156620", 0.0011)


# -- OKX ------------------------------------------------------------------------------------


@pytest.fixture
def okx(canned, server):
    fx = load_fixture("okx.json")["entries"]
    venue, broker = canned("OKX", ("BTC/USDT", "ETH/USDT"))
    venue.answer("GET", "/api/v5/public/instruments", body(fx["instruments"]))
    yield fx, venue, broker
    assert unanswered(server) == []


def okx_ticker_for_asked(entry: dict):
    """The ticker example, under the instrument the request asked for."""

    def answer(req: Request) -> Response:
        (row,) = entry["body"]["data"]
        return Response(200, {**entry["body"], "data": [{**row, "instId": req.query["instId"]}]})

    return answer


def test_okx_market_rules_come_from_the_instruments(okx):
    _, _, broker = okx
    assert broker.symbols() == ["BTC/USDT", "ETH/USDT"]
    btc = broker.market_rules("BTC/USDT")
    # lotSz, minSz, tickSz; OKX publishes no minimum notional for spot.
    assert (btc.amount_step, btc.min_amount) == (pytest.approx(1e-8), pytest.approx(0.00001))
    assert (btc.min_notional, btc.price_step) == (None, pytest.approx(0.1))
    eth = broker.market_rules("ETH/USDT")
    assert (eth.amount_step, eth.min_amount) == (pytest.approx(1e-6), pytest.approx(0.001))


def test_okx_candles_ticker_and_trading_balance(okx):
    fx, venue, broker = okx
    venue.answer("GET", "/api/v5/market/candles", body(fx["candles"]))
    venue.answer("GET", "/api/v5/market/ticker", okx_ticker_for_asked(fx["ticker"]))
    venue.answer("GET", "/api/v5/account/balance", body(fx["balance"]))
    # The funding account in OKX's documented shape (GET /api/v5/asset/balances).
    funding = {"availBal": "250", "bal": "250", "ccy": "USDT", "frozenBal": "0"}
    venue.answer(
        "GET", "/api/v5/asset/balances", Response(200, {"code": "0", "msg": "", "data": [funding]})
    )
    candles = broker.fetch_candles("BTC/USDT", "1m", limit=3)
    assert candles.timestamp_ms.tolist() == [1678928640000, 1678928700000, 1678928760000]
    assert candles.close.tolist() == [24324.1, 24341.4, 24323.0]
    ticker = broker.fetch_ticker("ETH/USDT")
    assert (ticker.symbol, ticker.bid, ticker.ask, ticker.last) == (
        "ETH/USDT",
        0.0732,
        0.07322,
        0.07319,
    )
    balance = broker.fetch_balance()
    assert balance.cash == {"BTC": 0.049}
    assert balance.usd_cash == 0.0
    # The funding account's 250 USDT is reported, never counted as equity.
    assert balance.funding_usd == 250.0
    assert balance.usd_equity < 1.0  # 0.049 BTC at the example's 0.07319 is dust
    assert balance.notes and "transfer to trading" in balance.notes[0]


def test_okx_placed_order_is_read_back_with_its_fee_currency(okx, server):
    fx, venue, broker = okx
    venue.answer("POST", "/api/v5/trade/order", body(fx["order_placed"]))
    venue.answer("GET", "/api/v5/trade/order", body(fx["order_live_spot"]))
    placed = broker.place_order(
        OrderRequest(
            "ETH/USDT", Side.BUY, OrderType.LIMIT, "nijaOkx1", amount=0.001, limit_price=2000.0
        )
    )
    sent = [r for r in server.requests if r.method == "POST"][-1].json()
    assert (sent["clOrdId"], sent["sz"], sent["px"]) == ("nijaOkx1", "0.001", "2000")
    assert placed.status is OrderStatus.OPEN
    assert (placed.symbol, placed.side, placed.type) == ("ETH/USDT", Side.BUY, OrderType.LIMIT)
    assert (placed.amount, placed.filled, placed.venue_order_id) == (
        0.001,
        0.0,
        "317251910906576896",
    )
    assert placed.client_order_id == "nijaOkx1"  # the example's clOrdId is empty
    assert (placed.fee, placed.fee_currency) == (0.0, None)  # nothing filled, nothing charged


def test_okx_unknown_order_is_none_and_cancel_is_read(okx, server):
    fx, venue, broker = okx

    def order(req: Request) -> Response:
        if req.query.get("clOrdId") == "nijaLive":
            return body(fx["order_live_spot"])
        return body(fx["order_not_found"])

    venue.answer("GET", "/api/v5/trade/order", order)
    venue.answer("POST", "/api/v5/trade/cancel-order", body(fx["cancel_ok"]))
    assert broker.fetch_order("nijaAbsent", "BTC/USDT") is None
    after = broker.cancel_order("nijaLive", "ETH/USDT")
    sent = [r for r in server.requests if r.path.endswith("cancel-order")][-1].json()
    assert (sent["clOrdId"], sent["instId"]) == ("nijaLive", "ETH-USDT")
    assert after is not None and after.venue_order_id == "317251910906576896"
