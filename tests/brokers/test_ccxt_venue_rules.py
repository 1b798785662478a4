"""The venues' own rules, as the emulator now plays them and the ccxt adapter reads them:
fee currency per side, client ids unique among OPEN orders only, lot step / minimum size /
minimum notional from the venue's metadata (docs/VENUES.md gives the sources).

Orders the adapter would never send (ccxt rounds amounts to the lot step first) are sent
with a plain ccxt client, so the emulator's own refusal is what is checked.
"""

from __future__ import annotations

import uuid

import ccxt
import pytest

from bot.brokers.ccxt.broker import CcxtBroker
from bot.errors import BrokerError, NotFound, OrderRejected, VenueRefused
from bot.model import (
    AccountRef,
    BrokerSpec,
    Credentials,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
)
from nija_testkit.ccxt_client import raw_client
from nija_testkit.emulator.binance import BinanceVenue


def market_buy(symbol: str, amount: float, cid: str | None = None) -> OrderRequest:
    return OrderRequest(symbol, Side.BUY, OrderType.MARKET, cid or uuid.uuid4().hex, amount=amount)


def limit_buy(symbol: str, amount: float, price: float, cid: str) -> OrderRequest:
    return OrderRequest(symbol, Side.BUY, OrderType.LIMIT, cid, amount=amount, limit_price=price)


# -- market rules from each venue's metadata ----------------------------------------------------


@pytest.mark.parametrize(
    ("broker", "symbol", "step", "minimum", "notional"),
    [
        ("KRAKEN", "BTC/USD", 1e-8, 0.00005, 0.5),  # lot_decimals, ordermin, costmin
        ("BINANCE", "ETH/USDT", 0.0001, 0.0001, 5.0),  # LOT_SIZE, NOTIONAL
        ("OKX", "SOL/USDT", 0.000001, 0.001, None),  # lotSz, minSz (no notional on OKX)
    ],
)
def test_market_rules_are_the_venues_metadata(
    venue_handle, broker, symbol, step, minimum, notional
):
    handle = venue_handle(broker)
    adapter = handle.make_broker()
    rules = adapter.market_rules(symbol)
    assert (rules.symbol, rules.amount_step, rules.min_amount) == (
        symbol,
        pytest.approx(step),
        pytest.approx(minimum),
    )
    assert rules.min_notional == (pytest.approx(notional) if notional else None)
    assert rules.price_step and rules.price_step > 0
    adapter.market_rules(handle.kind.symbols[1])
    assert len(handle.server.requests_to("markets")) == 1  # loaded once, then cached
    with pytest.raises(NotFound):
        adapter.market_rules("DOGE/USD")


# -- fee currency -------------------------------------------------------------------------------


def test_kraken_charges_quote_by_default_and_base_when_asked_fcib(venue_handle):
    handle = venue_handle("KRAKEN")
    adapter = handle.make_broker()
    bought = adapter.place_order(market_buy("BTC/USD", 0.001))
    # Kraken prints the fee to 5 decimals.
    expected = 0.001 * bought.average_price * 0.001
    assert bought.fee_currency == "USD" and bought.fee == pytest.approx(expected, abs=1e-5)
    assert bought.base_received("BTC") == pytest.approx(0.001)
    assert handle.ledger.balance("BTC") == pytest.approx(0.001)

    raw_client(handle).create_order(
        "BTC/USD", "market", "buy", 0.001, None, {"oflags": "fcib", "cl_ord_id": "fcib-1"}
    )
    fcib = adapter.fetch_order("fcib-1")
    assert fcib is not None and fcib.fee_currency == "BTC"
    assert fcib.base_received("BTC") == pytest.approx(0.001 * 0.999)
    assert handle.ledger.balance("BTC") == pytest.approx(0.001 + 0.001 * 0.999)


@pytest.mark.parametrize("broker", ["BINANCE", "OKX"])
def test_binance_and_okx_take_a_buys_fee_from_the_coin_and_a_sells_from_the_quote(
    venue_handle, broker
):
    handle = venue_handle(broker)
    adapter = handle.make_broker()
    bought = adapter.place_order(market_buy("BTC/USDT", 0.01))
    bought = adapter.fetch_order(
        bought.client_order_id, "BTC/USDT"
    )  # as the venue reports it later
    assert (bought.fee, bought.fee_currency) == (pytest.approx(0.00001), "BTC")
    held = handle.ledger.balance("BTC")
    assert held == pytest.approx(bought.base_received("BTC")) == pytest.approx(0.00999)

    sold = adapter.place_order(
        OrderRequest("BTC/USDT", Side.SELL, OrderType.MARKET, uuid.uuid4().hex, amount=0.009)
    )
    sold = adapter.fetch_order(sold.client_order_id, "BTC/USDT")
    assert sold.fee_currency == "USDT" and sold.base_received("BTC") == pytest.approx(0.009)
    assert handle.ledger.balance("BTC") == pytest.approx(0.00099)


def test_binance_pays_the_fee_in_bnb_while_the_account_holds_enough(venue_server):
    server = venue_server("BINANCE")
    server.venue = venue = BinanceVenue(server.venue.market, bnb_fees=True)
    ledger = venue.add_account("FAKE-BNB-KEY", "FAKE-BNB-SECRET", {"USDT": 1000.0, "BNB": 0.0001})
    spec = BrokerSpec(
        AccountRef("user", "bnb", "BINANCE"),
        Credentials("FAKE-BNB-KEY", "FAKE-BNB-SECRET"),
        symbols=("BTC/USDT",),
        base_url=server.url,
        rate_limit=False,
    )
    adapter = CcxtBroker(spec)
    try:
        first = adapter.place_order(market_buy("BTC/USDT", 0.001))  # fee ≈ $0.06 → 0.000075 BNB
        assert first.fee_currency == "BNB"
        bnb = 0.001 * first.average_price * 0.001 * 0.75 / 600.0
        assert first.fee == pytest.approx(bnb, abs=1e-8)  # Binance prints 8 decimals
        assert first.base_received("BTC") == pytest.approx(0.001)
        second = adapter.place_order(market_buy("BTC/USDT", 0.001))  # BNB left is too little
        assert second.fee_currency == "BTC"
        assert ledger.balance("BTC") == pytest.approx(0.001 + 0.000999)
    finally:
        adapter.close()


# -- client ids: unique among open orders only --------------------------------------------------


@pytest.mark.parametrize("broker", ["KRAKEN", "BINANCE", "OKX"])
def test_a_client_id_is_refused_while_its_order_is_open_and_taken_again_once_closed(
    venue_handle, broker
):
    handle = venue_handle(broker)
    adapter = handle.make_broker()
    symbol = handle.kind.symbols[0]
    cid = uuid.uuid4().hex
    resting = adapter.place_order(limit_buy(symbol, 0.001, 10000.0, cid))
    assert resting.status is OrderStatus.OPEN
    # Binance -2010 and OKX 51016 are order rejections; Kraken's duplicate answer is not
    # documented (the emulator's "EOrder:Duplicate order" reaches ccxt as a plain error).
    with pytest.raises(BrokerError, match=r"Duplicate|51016"):
        adapter.place_order(market_buy(symbol, 0.001, cid))
    adapter.cancel_order(cid, symbol)

    # Closed now: the same id is a new, second real order (a blind re-send buys twice).
    again = adapter.place_order(market_buy(symbol, 0.001, cid))
    assert again.venue_order_id != resting.venue_order_id
    assert [o.status for o in handle.ledger.all_orders()] == ["canceled", "filled"]
    newest = adapter.fetch_order(cid, symbol)
    assert newest is not None and newest.venue_order_id == again.venue_order_id
    assert newest.status is OrderStatus.FILLED


# -- minimum size, lot step and minimum notional are enforced ----------------------------------


def test_kraken_refuses_below_ordermin_and_costmin_with_its_own_errors(venue_handle):
    handle = venue_handle("KRAKEN")
    adapter = handle.make_broker()
    with pytest.raises(OrderRejected, match="Order minimum not met"):
        adapter.place_order(market_buy("BTC/USD", 0.00004))
    handle.venue.market.set_price("ETH/USD", 200.0)  # 0.002 ETH (ordermin) is now $0.40 < costmin
    with pytest.raises(Exception, match="Cost minimum not met"):
        adapter.place_order(market_buy("ETH/USD", 0.002))
    form = raw_client(handle)
    with pytest.raises(ccxt.InvalidOrder, match="Invalid arguments:volume"):
        form.privatePostAddOrder(
            {"pair": "XXBTZUSD", "type": "buy", "ordertype": "market", "volume": "0.000100001"}
        )
    assert handle.ledger.all_orders() == []


def test_binance_refuses_lot_size_and_notional_filter_failures(venue_handle):
    handle = venue_handle("BINANCE")
    adapter = handle.make_broker()
    with pytest.raises(VenueRefused, match="Filter failure: NOTIONAL"):
        adapter.place_order(market_buy("BTC/USDT", 0.00005))  # $3 < $5
    raw = raw_client(handle)
    for quantity in ("0.000015", "0.000001"):  # off the 0.00001 step; under minQty
        with pytest.raises(ccxt.ExchangeError, match="Filter failure: LOT_SIZE"):
            raw.privatePostOrder(
                {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": quantity}
            )
    assert handle.ledger.all_orders() == []
    # quoteOrderQty: Binance sizes the order on the lot step.
    sized = adapter.place_order(
        OrderRequest("ETH/USDT", Side.BUY, OrderType.MARKET, uuid.uuid4().hex, quote_amount=100.0)
    )
    assert sized.filled == pytest.approx(round(sized.filled, 4)) and sized.filled > 0


def test_okx_refuses_below_min_sz_and_off_lot_sz(venue_handle):
    handle = venue_handle("OKX")
    adapter = handle.make_broker()
    with pytest.raises(OrderRejected, match="min available amount"):
        adapter.place_order(market_buy("BTC/USDT", 0.000009))  # minSz 0.00001
    raw = raw_client(handle)
    order = {"instId": "ETH-USDT", "tdMode": "cash", "side": "buy", "ordType": "market"}
    with pytest.raises(ccxt.InvalidOrder, match="51121"):
        raw.privatePostTradeOrder({**order, "sz": "0.0010005", "tgtCcy": "base_ccy"})  # lotSz 1e-6
    assert handle.ledger.all_orders() == []


# -- OKX's funding account ----------------------------------------------------------------------


def test_okx_funds_in_the_funding_account_are_reported_not_counted(venue_server):
    server = venue_server("OKX")
    key, secret, phrase = "FAKE-OKX-FUND-KEY", "FAKE-OKX-FUND-SECRET", "FAKE-OKX-FUND-PASS"
    server.venue.add_account(
        key, secret, {"USDT": 4.0}, passphrase=phrase, funding={"USDT": 500.0, "BTC": 0.01}
    )
    spec = BrokerSpec(
        AccountRef("user", "fund", "OKX"),
        Credentials(key, secret, phrase),
        symbols=("BTC/USDT",),
        base_url=server.url,
        rate_limit=False,
    )
    adapter = CcxtBroker(spec)
    try:
        balance = adapter.fetch_balance()
    finally:
        adapter.close()
    assert (balance.cash, balance.usd_cash, balance.usd_equity) == ({"USDT": 4.0}, 4.0, 4.0)
    assert balance.funding_usd == pytest.approx(500.0 + 0.01 * 60000.0)
    (note,) = balance.notes
    assert "0.01 BTC" in note and "500 USDT" in note and "transfer to trading to trade" in note
    assert server.requests_to("funding_balance")
