"""The emulator answers in the venues' own shapes: every field a real answer (fixture) has,
the emulator's answer to the same request has too, at every depth.

The emulator may send more (venues add fields); it may not send less, or an adapter could
pass against the emulator and fail against the venue. Requests go through a plain ccxt
client's raw endpoint methods (signed like the adapter's) to the emulator.
"""

from __future__ import annotations

import uuid
from typing import Any

import ccxt
import pytest

from nija_testkit.ccxt_client import raw_client
from nija_testkit.fixtures import load_fixture

# Kraken keys these objects by ids (pairs, assets, txids): their values are compared.
ID_KEYED = ("/result", "/result/open", "/result/closed")
NOT_IDS = ("count", "last", "open", "closed", "txid", "descr")


def missing(real: Any, emulated: Any, path: str = "", ids: tuple[str, ...] = ()) -> list[str]:
    """Paths present in ``real`` but absent (or of another kind) in ``emulated``.

    Objects at ``ids`` paths are keyed by ids: one value of each is compared. Lists are
    compared by their first items.
    """
    if isinstance(real, dict):
        if not isinstance(emulated, dict):
            return [f"{path or '/'}: not an object"]
        if path in ids and not (real.keys() & set(NOT_IDS)):
            real_values = [v for k, v in real.items() if k not in NOT_IDS]
            emu_values = [v for k, v in emulated.items() if k not in NOT_IDS]
            if real_values and emu_values:
                return missing(real_values[0], emu_values[0], f"{path}/<id>", ids)
            return []
        gaps = [f"{path}/{k}" for k in real if k not in emulated]
        for key in real.keys() & emulated.keys():
            gaps += missing(real[key], emulated[key], f"{path}/{key}", ids)
        return gaps
    if isinstance(real, list):
        if not isinstance(emulated, list):
            return [f"{path or '/'}: not a list"]
        if real and emulated:
            return missing(real[0], emulated[0], f"{path}[0]", ids)
    return []


def kraken_missing(real: Any, emulated: Any) -> list[str]:
    return missing(real, emulated, ids=ID_KEYED)


@pytest.fixture
def kraken(venue_handle):
    handle = venue_handle("KRAKEN")
    return load_fixture("kraken.json")["entries"], handle, raw_client(handle)


def test_kraken_public_answers(kraken):
    fx, _, raw = kraken
    pairs = raw.publicGetAssetPairs()
    assert kraken_missing(fx["AssetPairs"]["body"], pairs) == []
    assert kraken_missing(fx["Assets"]["body"], raw.publicGetAssets()) == []
    assert kraken_missing(fx["Ticker"]["body"], raw.publicGetTicker({"pair": "XBTUSDT"})) == []
    ohlc = raw.publicGetOHLC({"pair": "XBTUSDT", "interval": 60})
    assert kraken_missing(fx["OHLC"]["body"], ohlc) == []
    assert len(ohlc["result"]["XBTUSDT"][0]) == len(fx["OHLC"]["body"]["result"]["XBTUSDT"][0])


def test_kraken_private_answers(kraken):
    fx, _, raw = kraken
    assert kraken_missing(fx["BalanceEx"]["body"], raw.privatePostBalanceEx()) == []
    added = raw.privatePostAddOrder(
        {"pair": "XBTUSD", "type": "buy", "ordertype": "market", "volume": "0.001"}
    )
    assert kraken_missing(fx["AddOrder"]["body"], added) == []
    txid = added["result"]["txid"][0]
    queried = raw.privatePostQueryOrders({"txid": txid})
    # ``trades`` lists fill ids; the emulator keeps no trade records.
    assert kraken_missing(fx["QueryOrders_closed_market"]["body"], queried) == [
        "/result/<id>/trades"
    ]
    raw.privatePostAddOrder(
        {
            "pair": "XBTUSD",
            "type": "buy",
            "ordertype": "limit",
            "price": "1000",
            "volume": "0.001",
            "cl_ord_id": "1234",
        }
    )
    listed = raw.privatePostOpenOrders({"cl_ord_id": "1234"})
    assert kraken_missing(fx["OpenOrders_cl_ord_id_1234"]["body"], listed) == []
    assert raw.privatePostOpenOrders({"cl_ord_id": "none"}) == fx["OpenOrders_empty"]["body"]
    assert raw.privatePostClosedOrders({"cl_ord_id": "none"}) == fx["ClosedOrders_empty"]["body"]
    assert raw.privatePostCancelOrder({"cl_ord_id": "1234"}) == fx["CancelOrder"]["body"]


@pytest.fixture
def binance(venue_handle):
    handle = venue_handle("BINANCE")
    return load_fixture("binance.json")["entries"], handle, raw_client(handle)


def test_binance_public_answers(binance):
    fx, _, raw = binance
    info = raw.publicGetExchangeInfo()
    # Today's listings carry NOTIONAL where the fixture's older shape has MIN_NOTIONAL,
    # and only the filters the emulator enforces or serves (no ICEBERG_PARTS, ...).
    symbol = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    real_symbol = fx["exchangeInfo"]["body"]["symbols"][0]
    assert {k for k in real_symbol if k not in symbol} <= {
        "baseCommissionPrecision",
        "quoteCommissionPrecision",
        "allowTrailingStop",
    }
    kinds = {f["filterType"] for f in symbol["filters"]}
    assert {"PRICE_FILTER", "LOT_SIZE", "NOTIONAL"} <= kinds
    klines = raw.publicGetKlines({"symbol": "BTCUSDT", "interval": "1m", "limit": 2})
    assert len(klines[0]) == len(fx["klines"]["body"][0])
    ticker = raw.publicGetTicker24hr({"symbol": "BTCUSDT"})
    assert missing(fx["ticker24hr"]["body"], ticker) == []


def test_binance_private_answers(binance):
    fx, _, raw = binance
    assert missing(fx["account"]["body"], raw.privateGetAccount()) == []
    cid = uuid.uuid4().hex
    full = raw.privatePostOrder(
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "MARKET",
            "quantity": "0.001",
            "newClientOrderId": cid,
            "newOrderRespType": "FULL",
        }
    )
    assert missing(fx["order_full_market_buy"]["body"], full) == []
    limit = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
    resting = raw.privatePostOrder(
        {**limit, "quantity": "0.001", "price": "10000", "newOrderRespType": "FULL"}
    )
    # ``icebergQty`` appears only on iceberg orders.
    assert missing(fx["order_limit_new"]["body"], resting) == ["/icebergQty"]
    closed = raw.privateGetOrder({"symbol": "BTCUSDT", "origClientOrderId": cid})
    assert missing(fx["order_closed_market_sell"]["body"], closed) == []
    assert missing(fx["openOrders"]["body"], raw.privateGetOpenOrders()) == []
    canceled = raw.privateDeleteOrder({"symbol": "BTCUSDT", "orderId": resting["orderId"]})
    assert missing(fx["cancel"]["body"], canceled) == []
    with pytest.raises(ccxt.OrderNotFound) as info:
        raw.privateGetOrder({"symbol": "BTCUSDT", "origClientOrderId": "nope"})
    assert str(fx["order_not_found"]["body"]["code"]) in str(info.value)


@pytest.fixture
def okx(venue_handle):
    handle = venue_handle("OKX")
    return load_fixture("okx.json")["entries"], handle, raw_client(handle)


def test_okx_public_answers(okx):
    fx, _, raw = okx
    instruments = raw.publicGetPublicInstruments({"instType": "SPOT"})
    assert missing(fx["instruments"]["body"], instruments) == []
    candles = raw.publicGetMarketCandles({"instId": "BTC-USDT", "bar": "1m", "limit": "3"})
    assert missing(fx["candles"]["body"], candles) == []
    assert len(candles["data"][0]) == len(fx["candles"]["body"]["data"][0])
    ticker = raw.publicGetMarketTicker({"instId": "BTC-USDT"})
    assert missing(fx["ticker"]["body"], ticker) == []


def test_okx_private_answers(okx):
    fx, handle, raw = okx
    handle.ledger.balances["BTC"] = 0.049
    balance = raw.privateGetAccountBalance()
    # Margin-mode fields of the unified account (imr, mmr, isoEq, ...) are not emulated.
    gaps = missing(fx["balance"]["body"], balance)
    assert all(g.rsplit("/", 1)[-1] in MARGIN_FIELDS for g in gaps), gaps
    order = {"instId": "ETH-USDT", "tdMode": "cash", "side": "buy", "ordType": "limit"}
    placed = raw.privatePostTradeOrder({**order, "sz": "0.001", "px": "2000", "clOrdId": "shape1"})
    assert missing(fx["order_placed"]["body"], placed) == []
    live = raw.privateGetTradeOrder({"instId": "ETH-USDT", "clOrdId": "shape1"})
    gaps = missing(fx["order_live_spot"]["body"], live)
    assert all(g.rsplit("/", 1)[-1] in ORDER_TPSL_FIELDS for g in gaps), gaps
    canceled = raw.privatePostTradeCancelOrder({"instId": "ETH-USDT", "clOrdId": "shape1"})
    assert missing(fx["cancel_ok"]["body"], canceled) == []
    with pytest.raises(ccxt.OrderNotFound):
        raw.privateGetTradeOrder({"instId": "ETH-USDT", "clOrdId": "absent"})


MARGIN_FIELDS = {
    "availEq",
    "crossLiab",
    "interest",
    "isoEq",
    "isoLiab",
    "maxLoan",
    "mgnRatio",
    "notionalLever",
    "twap",
    "uplLiab",
    "imr",
    "mmr",
    "notionalUsd",
    "ordFroz",
}
ORDER_TPSL_FIELDS = {"slOrdPx", "tpOrdPx", "tradeId"}


def test_the_shape_check_finds_what_is_missing():
    real = {"result": {"XXBT": {"a": 1, "b": [{"c": 2}]}}, "error": []}
    assert kraken_missing(real, {"result": {"ZUSD": {"a": 1, "b": [{}]}}, "error": []}) == [
        "/result/<id>/b[0]/c"
    ]
    assert missing({"a": {"b": 1}}, {"a": []}) == ["/a: not an object"]
    assert missing({"a": 1, "b": 2}, {"a": 1, "extra": 3}) == ["/b"]
