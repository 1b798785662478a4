"""The ccxt adapter against the OKX emulator: real ccxt, real HTTP on 127.0.0.1, no mocks.

Each test gets a fresh emulated venue (``okx`` fixture) so faults and balances never leak.
"""

from __future__ import annotations

import time
from functools import partial

import ccxt
import pytest

from bot.brokers.ccxt.broker import CcxtBroker
from bot.errors import (
    AuthRejected,
    BadResponse,
    BrokerError,
    InsufficientFunds,
    NetworkFailure,
    NetworkTimeout,
    VenueRefused,
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
from nija_testkit.emulator.okx import OkxVenue
from nija_testkit.emulator.server import EmulatorServer, Fault
from nija_testkit.secrets import assert_no_secret as _assert_no_secret

KEY = "FAKE-OKX-KEY-0123456789"
SECRET = "FAKE-OKX-SECRET-abcdef0123456789"
PASSPHRASE = "FAKE-OKX-PASSPHRASE-42"
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
BTC = 60000.0


class Okx:
    """One test's venue (a fresh one on the run's shared server), and brokers against it."""

    def __init__(self, server: EmulatorServer) -> None:
        self.server = server
        self.venue: OkxVenue = server.venue
        self.market = self.venue.market
        self.ledger = self.venue.add_account(
            KEY, SECRET, {"USDT": 10000.0, "BTC": 0.5}, passphrase=PASSPHRASE
        )

    def broker(
        self,
        *,
        key: str = KEY,
        secret: str = SECRET,
        passphrase: str = PASSPHRASE,
        symbols: tuple[str, ...] = SYMBOLS,
        timeout: float = 5.0,
    ) -> CcxtBroker:
        spec = BrokerSpec(
            AccountRef("platform", "platform", "OKX"),
            Credentials(key, secret, passphrase),
            symbols=symbols,
            base_url=self.server.url,
            timeout_seconds=timeout,
            rate_limit=False,
        )
        return CcxtBroker(spec)

    def account(self, key: str, balances: dict[str, float]) -> CcxtBroker:
        """A second account on the same venue, with these balances."""
        self.venue.add_account(key, SECRET, balances, passphrase=PASSPHRASE)
        return self.broker(key=key)


@pytest.fixture
def okx(venue_server) -> Okx:
    """The run's OKX emulator, fresh for this test (tests/conftest.py), with one account."""
    return Okx(venue_server("OKX"))


assert_no_secret = partial(_assert_no_secret, secrets=(KEY, SECRET, PASSPHRASE), markers=("FAKE-",))


def order_body(okx: Okx, client_id: str) -> dict:
    """The JSON the venue received for the order with this client id."""
    for rec in okx.server.requests_to("create_order"):
        body = rec.json()
        for item in body if isinstance(body, list) else [body]:
            if item.get("clOrdId") == client_id:
                return item
    raise AssertionError(f"no create_order request carried clOrdId {client_id}")


# -- construction, markets, base URL ------------------------------------------------


def test_constructor_is_offline_and_names_the_account(okx):
    broker = okx.broker()
    assert okx.server.requests == []
    assert broker.name == "OKX"
    assert broker.asset_class is AssetClass.CRYPTO
    assert broker.account == AccountRef("platform", "platform", "OKX")
    assert_no_secret(repr(broker), str(broker))


def test_symbols_are_configured_ones_the_venue_lists_in_order_loaded_once(okx):
    broker = okx.broker(symbols=("SOL/USDT", "DOGE/USDT", "BTC/USDT"))
    assert broker.symbols() == ["SOL/USDT", "BTC/USDT"]
    assert broker.symbols() == ["SOL/USDT", "BTC/USDT"]
    broker.fetch_ticker("BTC/USDT")
    markets = okx.server.requests_to("markets")
    assert len(markets) == 1
    # Only spot instruments are asked for: futures/swaps/options are not NIJA's business.
    assert markets[0].query["instType"] == ["SPOT"]


def test_every_call_reaches_the_emulator_on_a_known_route(okx):
    broker = okx.broker()
    broker.fetch_balance()
    broker.fetch_candles("BTC/USDT", "5m", 10)
    broker.fetch_ticker("ETH/USDT")
    broker.fetch_positions()
    broker.place_order(OrderRequest("BTC/USDT", Side.BUY, OrderType.MARKET, "route1", amount=0.01))
    broker.fetch_order("route1", "BTC/USDT")
    broker.fetch_open_orders("BTC/USDT")
    assert okx.server.requests
    unknown = [(r.method, r.path) for r in okx.server.requests if r.route is None]
    assert unknown == []


# -- balance and positions ------------------------------------------------------------


def test_balance_counts_usd_like_cash_and_values_holdings(okx):
    broker = okx.account("K-MIX", {"USDT": 1000.0, "USDC": 500.0, "BTC": 0.01, "XYZ": 7.0})
    balance = broker.fetch_balance()
    assert balance.cash["USDT"] == pytest.approx(1000.0)
    assert balance.cash["USDC"] == pytest.approx(500.0)
    assert balance.cash["BTC"] == pytest.approx(0.01)
    assert balance.usd_cash == pytest.approx(1500.0)
    # BTC valued at its last price; XYZ has no market here, so it counts 0.
    assert balance.usd_equity == pytest.approx(1500.0 + 0.01 * BTC, rel=1e-3)


def test_balance_of_crypto_only_account_is_funded(okx):
    broker = okx.account("K-BTC", {"BTC": 500.0 / BTC})
    balance = broker.fetch_balance()
    assert balance.usd_cash == 0.0
    assert balance.usd_equity == pytest.approx(500.0, rel=1e-3)


def test_balance_pricing_failure_propagates(okx):
    broker = okx.account("K-BTC2", {"BTC": 0.01})
    broker.symbols()  # markets loaded; now every pricing route fails
    for route in ("ticker", "tickers", "candles"):
        okx.server.inject(route, Fault("status", status=500))
    with pytest.raises(NetworkFailure) as info:
        broker.fetch_balance()
    assert type(info.value.__cause__) is ccxt.ExchangeNotAvailable


def test_positions_are_holdings_above_dust(okx):
    broker = okx.account("K-POS", {"USDT": 50.0, "BTC": 0.01, "SOL": 0.001})  # SOL: $0.15
    positions = {p.symbol: p for p in broker.fetch_positions()}
    assert set(positions) == {"BTC/USDT"}
    assert positions["BTC/USDT"].quantity == pytest.approx(0.01)
    assert positions["BTC/USDT"].market_value_usd == pytest.approx(0.01 * BTC, rel=1e-3)


# -- market data ----------------------------------------------------------------------


def test_candles_oldest_first_in_utc_ms(okx):
    broker = okx.broker()
    candles = broker.fetch_candles("BTC/USDT", "5m", 50)
    assert len(candles) == 50
    steps = set((candles.timestamp_ms[1:] - candles.timestamp_ms[:-1]).tolist())
    assert steps == {300_000}
    assert candles.timestamp_ms[0] % 300_000 == 0
    assert abs(int(candles.timestamp_ms[-1]) - time.time() * 1000) < 600_000
    assert candles.close[-1] == pytest.approx(BTC)
    assert (candles.high >= candles.low).all()
    assert okx.server.requests_to("candles")[-1].query["bar"] == ["5m"]


def test_candles_exact_rows(okx):
    rows = [
        [1_700_000_000_000 + i * 3_600_000, 10 + i, 12 + i, 9 + i, 11 + i, 5 + i] for i in range(4)
    ]
    okx.market.set_candles("ETH/USDT", rows)
    candles = okx.broker().fetch_candles("ETH/USDT", "1h", 4)
    assert candles.timestamp_ms.tolist() == [r[0] for r in rows]
    assert candles.open.tolist() == [r[1] for r in rows]
    assert candles.close.tolist() == [r[4] for r in rows]
    assert candles.volume.tolist() == [r[5] for r in rows]
    assert okx.server.requests_to("candles")[-1].query["bar"] == ["1H"]


def test_ticker(okx):
    okx.market.set_price("SOL/USDT", 151.5)
    ticker = okx.broker().fetch_ticker("SOL/USDT")
    bid, ask = okx.market.bid_ask("SOL/USDT")
    assert ticker.symbol == "SOL/USDT"
    assert ticker.last == pytest.approx(151.5)
    assert ticker.bid == pytest.approx(bid)
    assert ticker.ask == pytest.approx(ask)


# -- orders ---------------------------------------------------------------------------


def test_market_buy_by_amount_fills_and_moves_balances(okx):
    broker = okx.broker()
    before = okx.ledger.snapshot()
    order = broker.place_order(
        OrderRequest("BTC/USDT", Side.BUY, OrderType.MARKET, "nijaBuy1", amount=0.01)
    )
    assert order.client_order_id == "nijaBuy1"
    assert order.symbol == "BTC/USDT"
    assert order.side is Side.BUY
    assert order_body(okx, "nijaBuy1")["sz"] == "0.01"
    emu = okx.ledger.find(client_order_id="nijaBuy1")
    assert emu is not None and emu.status == "filled"
    assert order.venue_order_id == emu.order_id
    after = okx.ledger.snapshot()
    # OKX takes a spot buy's fee from the coin bought: 0.1% of 0.01 BTC.
    assert after["BTC"] == pytest.approx(before["BTC"] + 0.01 * 0.999)
    assert after["USDT"] == pytest.approx(before["USDT"] - emu.amount * emu.average_price)

    fetched = broker.fetch_order("nijaBuy1", "BTC/USDT")
    assert fetched is not None
    assert fetched.status is OrderStatus.FILLED
    assert fetched.filled == pytest.approx(0.01)
    assert fetched.average_price == pytest.approx(emu.average_price)
    assert fetched.venue_order_id == emu.order_id
    assert (fetched.fee, fetched.fee_currency) == (pytest.approx(0.00001), "BTC")
    assert fetched.base_received("BTC") == pytest.approx(0.01 * 0.999)


def test_market_buy_by_quote_notional(okx):
    broker = okx.broker()
    before = okx.ledger.snapshot()
    broker.place_order(
        OrderRequest("ETH/USDT", Side.BUY, OrderType.MARKET, "nijaQuote1", quote_amount=100.0)
    )
    body = order_body(okx, "nijaQuote1")
    assert body["tgtCcy"] == "quote_ccy"
    assert float(body["sz"]) == pytest.approx(100.0)
    after = okx.ledger.snapshot()
    assert before["USDT"] - after["USDT"] == pytest.approx(100.0)
    bought = 100.0 / okx.market.bid_ask("ETH/USDT")[1]
    assert after["ETH"] == pytest.approx(bought * 0.999)
    fetched = okx.broker().fetch_order("nijaQuote1", "ETH/USDT")
    assert fetched is not None and fetched.status is OrderStatus.FILLED
    assert fetched.filled == pytest.approx(bought)
    assert fetched.base_received("ETH") == pytest.approx(after["ETH"])


def test_market_sell(okx):
    broker = okx.broker()
    broker.place_order(
        OrderRequest("BTC/USDT", Side.SELL, OrderType.MARKET, "nijaSell1", amount=0.1)
    )
    assert okx.ledger.balance("BTC") == pytest.approx(0.4)
    assert okx.ledger.balance("USDT") > 10000.0 + 0.1 * BTC * 0.99
    fetched = broker.fetch_order("nijaSell1", "BTC/USDT")
    assert fetched is not None and fetched.side is Side.SELL
    assert fetched.status is OrderStatus.FILLED


def test_limit_order_open_listed_then_cancelled_by_client_id(okx):
    broker = okx.broker()
    request = OrderRequest(
        "BTC/USDT", Side.BUY, OrderType.LIMIT, "nijaLim1", amount=0.01, limit_price=50000.0
    )
    placed = broker.place_order(request)
    assert placed.client_order_id == "nijaLim1"
    assert order_body(okx, "nijaLim1")["px"] == "50000"
    open_orders = broker.fetch_open_orders("BTC/USDT")
    assert [o.client_order_id for o in open_orders] == ["nijaLim1"]
    assert open_orders[0].status is OrderStatus.OPEN
    assert open_orders[0].type is OrderType.LIMIT
    assert [o.client_order_id for o in broker.fetch_open_orders()] == ["nijaLim1"]

    cancelled = broker.cancel_order("nijaLim1", "BTC/USDT")
    assert cancelled is not None and cancelled.status is OrderStatus.CANCELED
    assert okx.server.requests_to("cancel_order")[-1].json()["clOrdId"] == "nijaLim1"
    assert okx.ledger.find(client_order_id="nijaLim1").status == "canceled"
    assert broker.fetch_open_orders("BTC/USDT") == []
    again = broker.fetch_order("nijaLim1", "BTC/USDT")
    assert again is not None and again.status is OrderStatus.CANCELED


def test_cancel_of_filled_order_reports_it_filled(okx):
    broker = okx.broker()
    broker.place_order(
        OrderRequest("BTC/USDT", Side.BUY, OrderType.MARKET, "nijaDone", amount=0.01)
    )
    result = broker.cancel_order("nijaDone", "BTC/USDT")
    assert result is not None and result.status is OrderStatus.FILLED


def test_cancel_of_unknown_order_is_none(okx):
    assert okx.broker().cancel_order("nijaNever", "BTC/USDT") is None


def test_fetch_order_without_symbol_finds_it(okx):
    broker = okx.broker()
    broker.place_order(OrderRequest("SOL/USDT", Side.BUY, OrderType.MARKET, "nijaSol", amount=1.0))
    found = broker.fetch_order("nijaSol")
    assert found is not None and found.symbol == "SOL/USDT"


def test_fetch_order_of_unknown_client_id_is_none(okx):
    broker = okx.broker()
    assert broker.fetch_order("nijaUnknown", "BTC/USDT") is None
    assert broker.fetch_order("nijaUnknown") is None
    queried = okx.server.requests_to("fetch_order")
    assert queried and all(r.query["clOrdId"] == ["nijaUnknown"] for r in queried)


def test_fetch_order_failure_raises_never_none(okx):
    broker = okx.broker()
    broker.symbols()
    okx.server.inject("fetch_order", Fault("status", status=503))
    with pytest.raises(NetworkFailure):
        broker.fetch_order("nijaX", "BTC/USDT")
    okx.server.clear_faults()
    okx.server.inject("fetch_order", Fault("malformed_json"))
    with pytest.raises(BadResponse):
        broker.fetch_order("nijaX", "BTC/USDT")


def test_insufficient_funds_is_a_balance_failure(okx):
    broker = okx.broker()
    with pytest.raises(InsufficientFunds) as info:
        broker.place_order(
            OrderRequest("BTC/USDT", Side.BUY, OrderType.MARKET, "nijaBig", amount=5.0)
        )
    assert classify(info.value) is FailureType.BALANCE_ERROR
    assert okx.ledger.find(client_order_id="nijaBig") is None
    assert okx.ledger.balance("USDT") == 10000.0


# -- faults -----------------------------------------------------------------------------

FAULTS = [
    (Fault("status", status=401), ccxt.AuthenticationError, FailureType.AUTHENTICATION_ERROR),
    (Fault("status", status=403), ccxt.PermissionDenied, FailureType.AUTHENTICATION_ERROR),
    (Fault("status", status=418), ccxt.RateLimitExceeded, FailureType.RATE_LIMIT_ERROR),
    (
        Fault("status", status=429, retry_after=2),
        ccxt.RateLimitExceeded,
        FailureType.RATE_LIMIT_ERROR,
    ),
    (Fault("status", status=500), ccxt.ExchangeNotAvailable, FailureType.NETWORK_ERROR),
    (Fault("status", status=502), ccxt.ExchangeNotAvailable, FailureType.NETWORK_ERROR),
    (Fault("status", status=503), ccxt.OnMaintenance, FailureType.NETWORK_ERROR),
    (Fault("status", status=504), ccxt.RequestTimeout, FailureType.NETWORK_ERROR),
    (Fault("venue_error", code="auth"), ccxt.AuthenticationError, FailureType.AUTHENTICATION_ERROR),
    (
        Fault("venue_error", code="rate_limit"),
        ccxt.RateLimitExceeded,
        FailureType.RATE_LIMIT_ERROR,
    ),
    (Fault("venue_error", code="server"), ccxt.OnMaintenance, FailureType.NETWORK_ERROR),
    (Fault("malformed_json"), BadResponse, FailureType.API_ERROR),
    (Fault("html", status=502), ccxt.ExchangeNotAvailable, FailureType.NETWORK_ERROR),
    (Fault("drop"), ccxt.NetworkError, FailureType.NETWORK_ERROR),
]


@pytest.mark.parametrize(
    ("fault", "exc_type", "failure"),
    FAULTS,
    ids=[f"{f.kind}-{f.status}-{f.code}" for f, _, _ in FAULTS],
)
def test_balance_fault_is_translated_from_the_exact_type(okx, fault, exc_type, failure):
    broker = okx.broker()
    broker.symbols()
    okx.server.inject("balance", fault)
    with pytest.raises(BrokerError) as info:  # no ccxt exception leaves the adapter
        broker.fetch_balance()
    assert_translated_from(info.value, exc_type)
    assert classify(info.value) is failure
    assert_no_secret(str(info.value), repr(info.value))


ORDER_FAULTS = [
    (
        Fault("venue_error", code="insufficient_funds"),
        ccxt.InsufficientFunds,
        FailureType.BALANCE_ERROR,
    ),
    (Fault("venue_error", code="invalid_order"), ccxt.InvalidOrder, FailureType.EXECUTION_ERROR),
    (
        Fault("venue_error", code="duplicate_client_id"),
        ccxt.InvalidOrder,
        FailureType.EXECUTION_ERROR,
    ),
    (Fault("status", status=504), ccxt.RequestTimeout, FailureType.NETWORK_ERROR),
]


@pytest.mark.parametrize(
    ("fault", "exc_type", "failure"),
    ORDER_FAULTS,
    ids=[f.code or str(f.status) for f, _, _ in ORDER_FAULTS],
)
def test_order_fault_is_translated_from_the_exact_type(okx, fault, exc_type, failure):
    broker = okx.broker()
    broker.symbols()
    okx.server.inject("create_order", fault)
    request = OrderRequest("BTC/USDT", Side.BUY, OrderType.MARKET, "nijaFault", amount=0.01)
    with pytest.raises(BrokerError) as info:
        broker.place_order(request)
    assert_translated_from(info.value, exc_type)
    assert classify(info.value, "order") is failure
    assert okx.ledger.find(client_order_id="nijaFault") is None


def test_hung_call_returns_within_timeout(okx):
    broker = okx.broker(timeout=1.0)
    broker.symbols()
    okx.server.inject("balance", Fault("hang", seconds=10))
    started = time.monotonic()
    with pytest.raises(NetworkTimeout) as info:
        broker.fetch_balance()
    assert time.monotonic() - started < 2.0
    assert classify(info.value) is FailureType.NETWORK_ERROR


def test_hung_market_load_returns_within_timeout(okx):
    broker = okx.broker(timeout=1.0)
    okx.server.inject("markets", Fault("hang", seconds=10))
    started = time.monotonic()
    with pytest.raises(NetworkTimeout):
        broker.fetch_ticker("BTC/USDT")
    assert time.monotonic() - started < 2.0


# -- credentials ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "creds",
    [
        {"key": "FAKE-OKX-KEY-UNKNOWN"},
        {"secret": "FAKE-OKX-SECRET-WRONG-000000"},
        {"passphrase": "FAKE-OKX-PASSPHRASE-WRONG"},
    ],
    ids=["key", "secret", "passphrase"],
)
def test_bad_credentials_are_authentication_errors_without_secrets(okx, creds):
    broker = okx.broker(**creds)
    with pytest.raises(AuthRejected) as info:
        broker.fetch_balance()
    assert classify(info.value) is FailureType.AUTHENTICATION_ERROR
    secrets = [SECRET, PASSPHRASE, *(v for k, v in creds.items() if k != "key")]
    for text in (str(info.value), repr(info.value), repr(broker)):
        for secret in secrets:
            assert secret not in text


def test_requests_are_signed_with_the_okx_headers(okx):
    okx.broker().fetch_balance()
    rec = okx.server.requests_to("balance")[-1]
    assert rec.headers["ok-access-key"] == KEY
    assert rec.headers["ok-access-passphrase"] == PASSPHRASE
    assert rec.headers["ok-access-sign"]
    assert rec.headers["ok-access-timestamp"].endswith("Z")


def test_market_load_is_public_and_spot_only(okx):
    okx.broker().symbols()
    assert okx.server.requests_to("currencies") == []  # private endpoint, not needed for spot
    assert [r.query["instType"] for r in okx.server.requests_to("markets")] == [["SPOT"]]
    assert {r.route for r in okx.server.requests} == {"markets"}


def test_failed_call_is_not_retried_by_the_sdk(okx):
    broker = okx.broker()
    broker.symbols()
    okx.server.inject("balance", Fault("status", status=503))
    with pytest.raises(NetworkFailure) as info:
        broker.fetch_balance()
    assert type(info.value.__cause__) is ccxt.OnMaintenance
    assert len(okx.server.requests_to("balance")) == 1


def test_proxy_environment_is_ignored_for_loopback(okx, monkeypatch):
    # A proxy on a closed loopback port: any request sent through it would fail.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    ticker = okx.broker().fetch_ticker("BTC/USDT")
    assert ticker.last == pytest.approx(BTC)


def test_client_id_okx_cannot_take_is_refused_loudly(okx):
    # OKX takes 1-32 alphanumerics in clOrdId; anything else is refused, never renamed.
    request = OrderRequest("BTC/USDT", Side.BUY, OrderType.MARKET, "nija-with-dash", amount=0.01)
    with pytest.raises(VenueRefused) as info:
        okx.broker().place_order(request)
    assert type(info.value.__cause__) is ccxt.BadRequest
    assert order_body(okx, "nija-with-dash")["clOrdId"] == "nija-with-dash"
    assert okx.ledger.all_orders() == []
