"""The paper broker, its synthetic market and its fault injection.

No emulator: the paper broker does no I/O of its own. Its market data comes from the
real ``SyntheticMarket`` or from ``StubMarket`` below, a stand-in for a real adapter's
public data whose prices the test sets. Clocks and sleeps are fakes, so nothing waits.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from decimal import Decimal

import numpy as np
import pytest

from bot.brokers.paper.broker import MarketData, PaperBroker
from bot.brokers.paper.rules import PAPER_AMOUNT_STEP, PAPER_MIN_NOTIONAL
from bot.brokers.paper.synthetic import DEFAULT_PRICES, SyntheticMarket, TrendShape
from bot.brokers.paper.wallet import FeeCurrency
from bot.brokers.venues import DuplicateClientIds
from bot.errors import (
    AuthRejected,
    InsufficientFunds,
    NetworkFailure,
    NetworkTimeout,
    OrderRejected,
    RateLimited,
    SimulatedApiError,
    SimulatedAuthError,
    SimulatedFault,
    SimulatedNetworkError,
    SimulatedRateLimit,
    SimulatedTimeout,
)
from bot.model import (
    AccountRef,
    AssetClass,
    BrokerSpec,
    Candles,
    Credentials,
    MarketRules,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    Ticker,
)
from nija_testkit.clock import FakeClock

FAKE_KEY = "FAKE-PAPER-KEY-7f3a"
FAKE_SECRET = "FAKE-PAPER-SECRET-c0ffee"
T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


class FakeSleep:
    """Records the sleeps asked for instead of sleeping."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class DataSourceDown(Exception):
    """What a real adapter's SDK might raise; must reach the caller unchanged."""


class StubMarket:
    """Public market data with prices set by the test (stand-in for a real adapter)."""

    def __init__(self, prices: dict[str, float]) -> None:
        self.prices = dict(prices)
        self.failure: Exception | None = None
        self.symbol_calls = 0

    def symbols(self) -> list[str]:
        self.symbol_calls += 1
        return list(self.prices)

    def fetch_ticker(self, symbol: str) -> Ticker:
        if self.failure is not None:
            raise self.failure
        last = self.prices[symbol]
        return Ticker(symbol, last * 0.9999, last * 1.0001, last)

    def fetch_candles(self, symbol: str, timeframe: str = "5m", limit: int = 200) -> Candles:
        last = self.prices[symbol]
        return Candles.from_rows([[i * 300_000, last, last, last, last, 1.0] for i in range(limit)])


def make_spec(broker: str = "PAPER", symbols: tuple[str, ...] = ()) -> BrokerSpec:
    return BrokerSpec(
        account=AccountRef("platform", "platform", broker),
        credentials=Credentials(FAKE_KEY, FAKE_SECRET),
        symbols=symbols,
        timeout_seconds=15.0,
    )


def make_broker(
    prices: dict[str, float] | None = None, **kwargs
) -> tuple[PaperBroker, StubMarket, FakeSleep, FakeClock]:
    market = StubMarket(prices or {"BTC/USD": 50_000.0, "ETH/USD": 2_000.0})
    sleep, clock = FakeSleep(), FakeClock(wall_start=T0)
    options = {"fee_rate": 0.001, "slippage_bps": 10.0, **kwargs}
    broker = PaperBroker(make_spec(), market, clock=clock, sleep=sleep, **options)
    return broker, market, sleep, clock


def market_order(cid: str, side: Side, amount=None, quote=None, symbol="BTC/USD") -> OrderRequest:
    return OrderRequest(symbol, side, OrderType.MARKET, cid, amount=amount, quote_amount=quote)


def limit_order(cid: str, side: Side, amount: float, price: float, symbol="BTC/USD"):
    return OrderRequest(symbol, side, OrderType.LIMIT, cid, amount=amount, limit_price=price)


def exact(value: str) -> float:
    """The float nearest an exact decimal: what exact wallet arithmetic must report."""
    return float(Decimal(value))


# --- fills, fees, slippage, wallet ------------------------------------------------------


def test_market_buy_pays_slippage_and_fee_exactly():
    broker, _, _, _ = make_broker()
    order = broker.place_order(market_order("b1", Side.BUY, amount=0.1))

    # 50 000 + 10 bps = 50 050; notional 5 005; fee 0.1% = 5.005
    assert order.status is OrderStatus.FILLED
    assert (order.filled, order.average_price, order.fee_usd) == (0.1, 50_050.0, 5.005)
    balance = broker.fetch_balance()
    assert balance.cash == {"USD": exact("4989.995"), "BTC": 0.1}
    assert balance.usd_cash == exact("4989.995")
    assert balance.usd_equity == exact("9989.995")  # BTC valued at last price, 50 000


def test_market_sell_gets_less_and_pays_fee_exactly():
    broker, market, _, _ = make_broker()
    broker.place_order(market_order("b1", Side.BUY, amount=0.1))
    market.prices["BTC/USD"] = 60_000.0
    order = broker.place_order(market_order("s1", Side.SELL, amount=0.1))

    # 60 000 - 10 bps = 59 940; notional 5 994; fee 5.994
    assert (order.average_price, order.fee_usd) == (59_940.0, 5.994)
    balance = broker.fetch_balance()
    assert balance.cash == {"USD": exact("10978.001")}  # 4989.995 + 5994 - 5.994
    assert balance.usd_equity == exact("10978.001")
    assert broker.fetch_positions() == []


def test_quote_sized_buy_spends_exactly_the_notional_plus_fee():
    broker, _, _, _ = make_broker(slippage_bps=0.0)
    order = broker.place_order(market_order("q1", Side.BUY, quote=1_000.0))

    assert order.filled == 0.02
    assert order.fee_usd == 1.0
    assert broker.fetch_balance().usd_cash == 8_999.0


def test_positions_carry_average_entry_and_ignore_dust():
    broker, market, _, _ = make_broker(slippage_bps=0.0, fee_rate=0.0, starting_usd=20_000.0)
    broker.place_order(market_order("b1", Side.BUY, amount=0.1))
    market.prices["BTC/USD"] = 60_000.0
    broker.place_order(market_order("b2", Side.BUY, amount=0.1))
    broker.place_order(market_order("s1", Side.SELL, amount=0.05))  # keeps the average
    # $0.80 of ETH: below the $1 minimum order, so bought as $2 and sold down to it
    broker.place_order(market_order("e1", Side.BUY, amount=0.001, symbol="ETH/USD"))
    broker.place_order(market_order("e2", Side.SELL, amount=0.0006, symbol="ETH/USD"))

    (position,) = broker.fetch_positions()
    assert position.symbol == "BTC/USD"
    assert position.quantity == 0.15
    assert position.avg_entry_price == 55_000.0
    assert position.market_value_usd == 9_000.0
    balance = broker.fetch_balance()
    assert balance.cash["ETH"] == 0.0004  # dust is still cash, just not a position
    # 20000 - 5000 - 6000 + 3000 - 0.8 cash; holdings 0.15 x 60000 + 0.0004 x 2000
    assert balance.usd_cash == exact("11999.2")
    assert balance.usd_equity == exact("21000")


def test_insufficient_cash_is_rejected_and_changes_nothing():
    broker, _, _, _ = make_broker()
    with pytest.raises(InsufficientFunds):
        broker.place_order(market_order("big", Side.BUY, amount=1.0))

    assert broker.fetch_order("big") is None
    assert broker.fetch_balance().cash == {"USD": 10_000.0}


def test_a_refusing_last_look_books_nothing():
    broker, _, _, _ = make_broker()

    def refuse() -> None:
        raise RuntimeError("lease gone")

    request = dataclasses.replace(market_order("b1", Side.BUY, amount=0.1), last_look=refuse)
    with pytest.raises(RuntimeError, match="lease gone"):
        broker.place_order(request)
    assert broker.fetch_order("b1") is None
    assert broker.fetch_balance().cash == {"USD": 10_000.0}


def test_selling_more_than_held_is_rejected():
    broker, _, _, _ = make_broker()
    broker.place_order(market_order("b1", Side.BUY, amount=0.1))
    with pytest.raises(InsufficientFunds):
        broker.place_order(market_order("s1", Side.SELL, amount=0.2))

    assert broker.fetch_balance().cash["BTC"] == 0.1


def test_selling_the_reported_position_sells_all_of_it():
    # A quote-sized buy leaves a quantity with no exact float; selling the float back
    # (which may round up) must sell the whole holding, not be refused.
    broker, _, _, _ = make_broker(prices={"BTC/USD": 30_000.0})
    broker.place_order(market_order("b1", Side.BUY, quote=1_000.0))
    (position,) = broker.fetch_positions()
    broker.place_order(market_order("s1", Side.SELL, amount=position.quantity))

    assert broker.fetch_positions() == []
    assert "BTC" not in broker.fetch_balance().cash


def test_duplicate_client_order_id_is_rejected_like_a_venue():
    broker, _, _, _ = make_broker()
    first = broker.place_order(market_order("same", Side.BUY, amount=0.01))
    with pytest.raises(OrderRejected) as caught:
        broker.place_order(market_order("same", Side.BUY, amount=0.01))

    assert type(caught.value) is OrderRejected
    assert "duplicate" in caught.value.reason
    assert broker.fetch_order("same") == first
    assert broker.fetch_balance().cash["BTC"] == 0.01


def test_unknown_symbol_and_non_usd_quote_are_rejected():
    broker, _, _, _ = make_broker(prices={"BTC/USD": 50_000.0, "ETH/BTC": 0.05})
    with pytest.raises(OrderRejected, match="unknown symbol"):
        broker.place_order(market_order("x", Side.BUY, amount=1.0, symbol="DOGE/USD"))
    with pytest.raises(OrderRejected, match="USD only"):
        broker.place_order(market_order("y", Side.BUY, amount=1.0, symbol="ETH/BTC"))


# --- limit orders ---------------------------------------------------------------------


def test_limit_buy_holds_funds_and_fills_at_limit_when_price_crosses():
    broker, market, _, _ = make_broker()
    order = broker.place_order(limit_order("l1", Side.BUY, 0.1, 49_000.0))
    assert order.status is OrderStatus.OPEN

    # 0.1 x 49 000 x 1.001 = 4 904.9 is held: only 5 095.1 can still be spent.
    with pytest.raises(InsufficientFunds):
        broker.place_order(market_order("m1", Side.BUY, quote=5_100.0))
    assert broker.fetch_balance().usd_cash == 10_000.0  # held, not spent

    market.prices["BTC/USD"] = 49_500.0
    assert [o.client_order_id for o in broker.fetch_open_orders()] == ["l1"]

    market.prices["BTC/USD"] = 48_900.0
    filled = broker.fetch_order("l1")
    assert filled.status is OrderStatus.FILLED
    assert (filled.filled, filled.average_price, filled.fee_usd) == (0.1, 49_000.0, 4.9)
    assert broker.fetch_open_orders() == []
    assert broker.fetch_balance().usd_cash == exact("5095.1")


def test_limit_sell_holds_the_base_and_fills_when_balance_is_asked():
    broker, market, _, _ = make_broker(slippage_bps=0.0)
    broker.place_order(market_order("b1", Side.BUY, amount=0.1))  # cash 4995
    broker.place_order(limit_order("l1", Side.SELL, 0.1, 55_000.0))
    with pytest.raises(OrderRejected):
        broker.place_order(market_order("s1", Side.SELL, amount=0.05))  # all of it is held

    market.prices["BTC/USD"] = 56_000.0
    balance = broker.fetch_balance()
    assert balance.cash == {"USD": exact("10489.5")}  # 4995 + 5500 - 5.5
    assert broker.fetch_order("l1").average_price == 55_000.0


def test_marketable_limit_fills_at_once_at_its_limit_price():
    broker, _, _, _ = make_broker()
    order = broker.place_order(limit_order("l1", Side.BUY, 0.1, 51_000.0))
    assert order.status is OrderStatus.FILLED
    assert order.average_price == 51_000.0


def test_cancel_releases_funds_and_reports_the_final_order():
    broker, market, _, _ = make_broker()
    broker.place_order(limit_order("l1", Side.BUY, 0.19, 49_000.0))
    canceled = broker.cancel_order("l1")
    assert canceled.status is OrderStatus.CANCELED
    assert broker.fetch_open_orders() == []
    # All the cash is free again: a buy that needs most of it now fills.
    broker.place_order(market_order("m1", Side.BUY, quote=9_900.0))

    market.prices["BTC/USD"] = 40_000.0  # a canceled order never fills later
    assert broker.fetch_order("l1").status is OrderStatus.CANCELED
    assert broker.cancel_order("m1").status is OrderStatus.FILLED
    assert broker.cancel_order("nope") is None
    assert broker.fetch_order("nope") is None


def test_concurrent_orders_and_readers_keep_the_wallet_exact():
    broker, _, _, _ = make_broker(slippage_bps=0.0)
    errors: list[BaseException] = []

    def buy(prefix: str) -> None:
        try:
            for i in range(100):
                broker.place_order(market_order(f"{prefix}{i}", Side.BUY, quote=10.0))
                broker.fetch_balance()
        except BaseException as exc:  # reported below, so a failing thread fails the test
            errors.append(exc)

    threads = [threading.Thread(target=buy, args=(p,)) for p in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(t.is_alive() for t in threads) and errors == []
    balance = broker.fetch_balance()
    assert balance.usd_cash == exact("7998")  # 10000 - 200 x (10 + 0.01)
    assert balance.cash["BTC"] == 0.04  # 200 x 10 / 50000


# --- identity, symbols, data source -----------------------------------------------------


def test_paper_on_a_real_account_takes_the_account_broker_name_and_hides_secrets():
    market = StubMarket({"BTC/USD": 50_000.0})
    broker = PaperBroker(make_spec("kraken"), market, asset_class=AssetClass.STOCKS)
    assert broker.name == "KRAKEN"
    assert broker.account.key == "platform/platform/KRAKEN"
    assert broker.asset_class is AssetClass.STOCKS
    assert PaperBroker(make_spec(), market).name == "PAPER"
    assert PaperBroker(make_spec(), market).asset_class is AssetClass.CRYPTO

    with pytest.raises(OrderRejected) as caught:
        broker.place_order(market_order("big", Side.BUY, amount=10.0))
    texts = [repr(broker), str(caught.value), repr(caught.value), repr(broker.spec)]
    for text in texts:
        assert FAKE_KEY not in text and FAKE_SECRET not in text


def test_symbols_are_the_configured_ones_listed_in_configured_order():
    market = StubMarket({"BTC/USD": 1.0, "ETH/USD": 1.0, "SOL/USD": 1.0})
    spec = make_spec(symbols=("SOL/USD", "DOGE/USD", "BTC/USD"))
    broker = PaperBroker(spec, market)
    assert broker.symbols() == ["SOL/USD", "BTC/USD"]
    assert broker.symbols() == ["SOL/USD", "BTC/USD"]
    assert market.symbol_calls == 1  # listed once, then remembered
    assert PaperBroker(make_spec(), market).symbols() == ["BTC/USD", "ETH/USD", "SOL/USD"]


def test_market_data_is_passed_through_and_its_failures_propagate_unchanged():
    broker, market, _, _ = make_broker()
    assert isinstance(market, MarketData)
    assert broker.fetch_ticker("BTC/USD").last == 50_000.0
    assert len(broker.fetch_candles("BTC/USD", "5m", 7)) == 7
    broker.place_order(market_order("b1", Side.BUY, amount=0.1))
    assert broker.fetch_open_orders() == []

    failure = DataSourceDown("venue unreachable")
    market.failure = failure
    for call in (broker.fetch_balance, broker.fetch_positions):
        with pytest.raises(DataSourceDown) as caught:
            call()
        assert caught.value is failure  # never an empty or partial answer
    with pytest.raises(DataSourceDown):
        broker.place_order(market_order("b2", Side.BUY, amount=0.1))
    # With no open order, order queries need no price and still answer.
    assert broker.fetch_open_orders() == []
    assert broker.fetch_order("b2") is None
    assert broker.fetch_order("b1").status is OrderStatus.FILLED

    market.failure = None
    broker.place_order(limit_order("l1", Side.BUY, 0.01, 40_000.0))
    market.failure = failure
    for call in (broker.fetch_open_orders, lambda: broker.fetch_order("l1")):
        with pytest.raises(DataSourceDown):
            call()


# --- fault injection --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("timeout", SimulatedTimeout),
        ("network", SimulatedNetworkError),
        ("auth", SimulatedAuthError),
        ("rate_limit", SimulatedRateLimit),
        ("api_error", SimulatedApiError),
    ],
)
def test_each_fault_kind_raises_its_type_the_given_number_of_times(kind, error):
    broker, _, sleep, _ = make_broker()
    broker.faults.inject("fetch_balance", kind, times=2, retry_after=7.0)

    for _ in range(2):
        with pytest.raises(error) as caught:
            broker.fetch_balance()
        assert type(caught.value) is error
        assert "fetch_balance" in str(caught.value)
    assert broker.fetch_balance().usd_cash == 10_000.0  # exhausted: the third call works
    assert broker.fetch_ticker("BTC/USD").last == 50_000.0  # other operations untouched
    assert broker.faults.rules() == []
    assert sleep.calls == []
    if error is SimulatedRateLimit:
        assert caught.value.retry_after == 7.0


@pytest.mark.parametrize(
    ("kind", "project_type"),
    [
        ("network", NetworkFailure),
        ("timeout", NetworkTimeout),
        ("auth", AuthRejected),
        ("rate_limit", RateLimited),
    ],
)
def test_injected_faults_are_the_project_types_a_real_adapter_raises(kind, project_type):
    broker, _, _, _ = make_broker()
    broker.faults.inject("*", kind, times=1)
    with pytest.raises(project_type):
        broker.fetch_positions()


def test_wildcard_fault_hits_every_operation_until_cleared():
    broker, _, _, _ = make_broker()
    broker.faults.inject("*", "api_error")
    calls = [
        broker.fetch_balance,
        broker.fetch_positions,
        broker.fetch_open_orders,
        broker.symbols,
        lambda: broker.fetch_ticker("BTC/USD"),
        lambda: broker.fetch_candles("BTC/USD"),
        lambda: broker.fetch_order("x"),
        lambda: broker.cancel_order("x"),
        lambda: broker.place_order(market_order("x", Side.BUY, amount=0.01)),
    ]
    for call in calls:
        with pytest.raises(SimulatedApiError):
            call()
    broker.faults.clear()
    assert broker.fetch_order("x") is None
    assert broker.fetch_balance().cash == {"USD": 10_000.0}  # the failed order never happened


def test_latency_sleeps_then_answers_and_beyond_the_timeout_times_out():
    broker, _, sleep, _ = make_broker()
    broker.faults.inject("fetch_ticker", "latency", times=1, seconds=2.5)
    assert broker.fetch_ticker("BTC/USD").last == 50_000.0
    assert sleep.calls == [2.5]

    broker.faults.inject("fetch_ticker", "latency", times=1, seconds=60.0)
    with pytest.raises(SimulatedTimeout):
        broker.fetch_ticker("BTC/USD")
    assert sleep.calls == [2.5, 15.0]  # cut at spec.timeout_seconds


def test_hang_sleeps_then_times_out():
    broker, _, sleep, _ = make_broker()
    broker.faults.inject("fetch_balance", "hang", times=1)
    broker.faults.inject("fetch_positions", "hang", times=1, seconds=90.0)
    with pytest.raises(SimulatedTimeout):
        broker.fetch_balance()
    with pytest.raises(SimulatedTimeout):
        broker.fetch_positions()
    assert sleep.calls == [15.0, 90.0]  # default: the call timeout; a longer hang is kept


def test_fault_after_the_call_leaves_an_ambiguous_but_real_order():
    broker, _, _, _ = make_broker()
    broker.faults.inject("place_order", "timeout", times=1, after=True)
    with pytest.raises(SimulatedTimeout):
        broker.place_order(market_order("amb", Side.BUY, amount=0.1))
    # The caller must look the order up rather than send it again.
    assert broker.fetch_order("amb").status is OrderStatus.FILLED
    with pytest.raises(OrderRejected, match="duplicate"):
        broker.place_order(market_order("amb", Side.BUY, amount=0.1))


def test_intermittent_faults_are_repeatable_for_a_seed():
    def pattern(seed: int) -> list[bool]:
        broker, _, _, _ = make_broker(fault_seed=seed)
        broker.faults.inject("*", "timeout", probability=0.3)
        out = []
        for _ in range(300):
            try:
                broker.fetch_ticker("BTC/USD")
                out.append(False)
            except SimulatedTimeout:
                out.append(True)
        return out

    first = pattern(7)
    assert first == pattern(7)
    assert first != pattern(8)
    assert 60 <= sum(first) <= 120  # about 30% of 300


def test_fault_schedules_run_on_the_monotonic_clock():
    broker, _, _, clock = make_broker()
    broker.faults.inject("*", "auth", start=40.0)
    clock.set_wall(clock.wall() + 3600)  # the wall clock jumps: no time passed for the schedule
    assert broker.fetch_balance().usd_cash == 10_000.0
    clock.advance(40.0)
    with pytest.raises(SimulatedAuthError):
        broker.fetch_balance()


def test_scripted_plan_timeouts_then_bad_credentials():
    broker, _, _, clock = make_broker()
    broker.faults.inject("*", "timeout", stop=40.0)
    broker.faults.inject("*", "auth", start=40.0)
    with pytest.raises(SimulatedTimeout):
        broker.fetch_balance()
    clock.advance(39.9)
    with pytest.raises(SimulatedTimeout):
        broker.fetch_balance()
    clock.advance(0.1)
    with pytest.raises(SimulatedAuthError):
        broker.fetch_balance()
    broker.faults.clear()
    assert broker.fetch_balance().usd_cash == 10_000.0


def test_injected_faults_never_carry_secrets_and_bad_rules_are_refused():
    broker, _, _, _ = make_broker()
    broker.faults.inject("*", "auth", times=1)
    with pytest.raises(SimulatedFault) as caught:
        broker.fetch_balance()
    assert FAKE_SECRET not in str(caught.value) and FAKE_KEY not in repr(caught.value)
    with pytest.raises(ValueError):
        broker.faults.inject("*", "explode")
    with pytest.raises(ValueError):
        broker.faults.inject("*", "timeout", times=0)
    with pytest.raises(ValueError):
        broker.faults.inject("*", "timeout", probability=0.0)


# --- the synthetic market ---------------------------------------------------------------


def candles_equal(a: Candles, b: Candles) -> bool:
    fields = ("timestamp_ms", "open", "high", "low", "close", "volume")
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in fields)


def test_synthetic_market_is_deterministic_for_a_seed():
    clock = FakeClock(wall_start=T0)
    a = SyntheticMarket(seed=1, clock=clock).fetch_candles("BTC/USD", "5m", 200)
    b = SyntheticMarket(seed=1, clock=clock).fetch_candles("BTC/USD", "5m", 200)
    c = SyntheticMarket(seed=2, clock=clock).fetch_candles("BTC/USD", "5m", 200)
    assert candles_equal(a, b)
    assert not np.allclose(a.close, c.close)
    eth = SyntheticMarket(seed=1, clock=clock).fetch_candles("ETH/USD", "5m", 200)
    assert not np.allclose(a.close / a.close[0], eth.close / eth.close[0])


def test_a_closed_candle_is_the_same_however_and_whenever_it_is_asked_for():
    clock = FakeClock(wall_start=T0)
    market = SyntheticMarket(clock=clock)
    late_first = market.fetch_candles("SOL/USD", "5m", 20)
    full = SyntheticMarket(clock=clock).fetch_candles("SOL/USD", "5m", 200)
    # The 19 closed candles of the short request are the tail of the long one.
    assert np.array_equal(late_first.close[:-1], full.close[-20:-1])
    assert np.array_equal(late_first.high[:-1], full.high[-20:-1])

    clock.advance(3 * 3600 + 17)  # 3 hours later, the same buckets are unchanged
    later = market.fetch_candles("SOL/USD", "5m", 200)
    shift = 36  # 3 h of 5-minute candles
    assert np.array_equal(later.timestamp_ms[: 200 - shift], full.timestamp_ms[shift:])
    assert np.array_equal(later.close[: 200 - shift - 1], full.close[shift:-1])
    assert np.array_equal(later.volume[: 200 - shift - 1], full.volume[shift:-1])


@pytest.mark.parametrize(
    ("timeframe", "limit"), [("1m", 200), ("5m", 200), ("1h", 200), ("1d", 30)]
)
def test_candles_are_well_formed(timeframe, limit):
    clock = FakeClock(wall_start=T0 + 123.4)
    market = SyntheticMarket(clock=clock)
    candles = market.fetch_candles("ETH/USD", timeframe, limit)
    step = {"1m": 60, "5m": 300, "1h": 3600, "1d": 86400}[timeframe] * 1000

    assert len(candles) == limit
    assert np.all(candles.timestamp_ms % step == 0)
    assert np.all(np.diff(candles.timestamp_ms) == step)
    assert candles.timestamp_ms[-1] <= clock.wall() * 1000 < candles.timestamp_ms[-1] + step
    assert np.all(candles.high >= np.maximum(candles.open, candles.close))
    assert np.all(candles.low <= np.minimum(candles.open, candles.close))
    assert np.all(candles.low > 0) and np.all(candles.volume > 0)
    np.testing.assert_allclose(candles.open[1:], candles.close[:-1], rtol=1e-12)
    ticker = market.fetch_ticker("ETH/USD")
    assert ticker.last == candles.close[-1]
    assert ticker.bid < ticker.last < ticker.ask


def test_synthetic_prices_trend_both_ways_with_changing_volatility():
    market = SyntheticMarket(
        clock=FakeClock(wall_start=T0 + 30 * 86400), start_prices={"BTC/USD": 100.0}
    )
    hourly = market.fetch_candles("BTC/USD", "1h", 24 * 30)
    moves = np.log(hourly.close[12:] / hourly.close[:-12])  # 12-hour moves
    assert moves.max() > 0.02 and moves.min() < -0.02  # rallies and sell-offs
    assert hourly.close.min() > 50 and hourly.close.max() < 200  # around the start price

    minutes = market.fetch_candles("BTC/USD", "1m", 6 * 24 * 60 + 1)
    returns = np.diff(np.log(minutes.close)).reshape(-1, 240)  # 4-hour windows
    spread = returns.std(axis=1)
    assert spread.max() > 2.5 * spread.min()  # calm and wild regimes


def test_synthetic_market_is_fast_enough_for_the_demo():
    clock = FakeClock(wall_start=T0)
    market = SyntheticMarket(clock=clock)
    started = time.perf_counter()
    for _ in range(3):  # 3 accounts x 3 symbols x 200 candles, twice over (5 s later)
        for symbol in market.symbols():
            market.fetch_candles(symbol, "5m", 200)
            market.fetch_ticker(symbol)
    clock.advance(5)
    for symbol in market.symbols():
        market.fetch_candles(symbol, "5m", 200)
    assert time.perf_counter() - started < 1.0


def test_a_time_shift_shows_the_same_path_under_the_clocks_times():
    shift = 86_400 * 40 + 1_234.5  # any amount, not a whole number of candles
    shifted = SyntheticMarket(seed=3, clock=FakeClock(wall_start=T0 + 77.0), time_shift=shift)
    plain = SyntheticMarket(seed=3, clock=FakeClock(wall_start=T0 + 77.0 + shift))
    a, b = shifted.fetch_candles("ETH/USD", "5m", 50), plain.fetch_candles("ETH/USD", "5m", 50)
    assert np.array_equal(a.timestamp_ms, b.timestamp_ms - round(shift * 1000))
    for field in ("open", "high", "low", "close", "volume"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    assert shifted.fetch_ticker("ETH/USD") == plain.fetch_ticker("ETH/USD")
    assert shifted.price_at("ETH/USD", T0) == plain.price_at("ETH/USD", T0 + shift)
    # The newest candle is the one forming at the clock's time.
    assert a.timestamp_ms[-1] <= (T0 + 77.0) * 1000 < a.timestamp_ms[-1] + 300_000


def test_the_trend_shape_rallies_in_legs_with_pullbacks_then_slides_back():
    shape = TrendShape()
    leg, period = shape.leg_minutes, shape.period_minutes
    assert period == shape.legs * leg + shape.slide_minutes
    net = shape.rise - shape.drop + shape.rebound
    minutes = np.arange(3 * period, dtype=np.int64)
    level = shape.log_level(minutes)
    assert level[0] == 0 and level[period] == 0 and level[2 * period] == 0  # bounded
    top = (shape.legs - 1) * net + shape.rise  # the last leg's rise
    assert level.min() >= 0 and level.max() == pytest.approx(top)
    one_leg = level[:leg]
    assert one_leg[shape.rise_minutes] == pytest.approx(shape.rise)  # the rise...
    pause_end = shape.rise_minutes + shape.pause_minutes
    assert np.all(one_leg[shape.rise_minutes : pause_end + 1] == one_leg[shape.rise_minutes])
    dropped = pause_end + shape.drop_minutes  # ...the sharp drop, then the rebound
    assert one_leg[dropped] == pytest.approx(shape.rise - shape.drop)
    assert level[leg] == pytest.approx(net)
    slide = level[shape.legs * leg : period + 1]
    assert np.all(np.diff(slide) < 0)


def test_a_shaped_market_follows_its_shape_staggered_by_symbol_and_stays_near_its_prices():
    shape = TrendShape(noise=0.0)
    start = 1_767_225_600.0
    market = SyntheticMarket(clock=FakeClock(wall_start=start), shape=shape)
    minutes = np.arange(int(start // 60) - 600, int(start // 60) + 1, dtype=np.int64)
    for i, symbol in enumerate(market.symbols()):
        closes = market.fetch_candles(symbol, "1m", 601).close[:-1]
        lead = i * shape.stagger_minutes
        expected = DEFAULT_PRICES[symbol] * np.exp(shape.log_level(minutes + lead))
        np.testing.assert_allclose(closes, expected[1:], rtol=1e-12)
    noisy = SyntheticMarket(clock=FakeClock(wall_start=start + 30 * 86400), shape=TrendShape())
    hourly = noisy.fetch_candles("BTC/USD", "1h", 24 * 30)
    assert hourly.close.min() / 60_000 > 0.85 and hourly.close.max() / 60_000 < 1.25


@pytest.mark.parametrize(
    "changes",
    [
        {"legs": 0},
        {"rise_minutes": 0},
        {"slide_minutes": 1.5},
        {"drop": -0.01},
        {"stagger_minutes": -5},
    ],
)
def test_a_trend_shape_refuses_what_it_cannot_draw(changes):
    with pytest.raises(ValueError):
        TrendShape(**changes)


def test_synthetic_market_refuses_what_it_cannot_serve():
    market = SyntheticMarket(clock=FakeClock(wall_start=T0))
    with pytest.raises(ValueError):
        market.fetch_ticker("DOGE/USD")
    with pytest.raises(ValueError):
        market.fetch_candles("BTC/USD", "5m", 0)
    with pytest.raises(ValueError):
        market.fetch_candles("BTC/USD", "5s", 10)


def test_paper_over_synthetic_market_fills_a_limit_when_the_walk_crosses_it():
    clock = FakeClock(wall_start=T0)
    market = SyntheticMarket(clock=clock)
    broker = PaperBroker(make_spec(), market, clock=clock, fee_rate=0.0, slippage_bps=0.0)
    start = market.fetch_ticker("BTC/USD").last
    # Find, from the deterministic path, the lowest price of the next 6 hours.
    ahead = SyntheticMarket(clock=FakeClock(wall_start=T0 + 6 * 3600)).fetch_candles(
        "BTC/USD", "1m", 360
    )
    low_at = int(np.argmin(ahead.close[:-1]))  # a closed minute: its close is a fixed price
    low = float(ahead.close[low_at])
    assert low < start * 0.999
    limit = (start + low) / 2

    broker.place_order(limit_order("dip", Side.BUY, 0.01, limit))
    assert broker.fetch_order("dip").status is OrderStatus.OPEN
    clock.set_wall(ahead.timestamp_ms[low_at] / 1000 + 60)  # the close of that minute
    assert math.isclose(market.fetch_ticker("BTC/USD").last, low, rel_tol=1e-12)

    (position,) = broker.fetch_positions()
    assert position.quantity == 0.01 and position.avg_entry_price == limit
    assert broker.fetch_order("dip").status is OrderStatus.FILLED
    assert broker.fetch_balance().usd_cash == pytest.approx(10_000 - 0.01 * limit, rel=1e-15)


def test_restore_starts_from_a_saved_wallet():
    broker, _market, _sleep, _clock = make_broker()
    broker.restore(4_000.0, [("BTC/USD", 0.1, 45_000.0), ("ETH/USD", 0.0, 1.0)])
    balance = broker.fetch_balance()
    assert balance.usd_cash == pytest.approx(4_000.0)
    assert balance.usd_equity == pytest.approx(4_000.0 + 0.1 * 50_000.0)
    (pos,) = broker.fetch_positions()
    assert (pos.symbol, pos.quantity, pos.avg_entry_price) == ("BTC/USD", 0.1, 45_000.0)


# --- venues as they really are: fee currency, repeated client ids, market rules ---------


class RulesMarket(StubMarket):
    """A stand-in for a real adapter that publishes its venue's market rules."""

    def __init__(self, prices: dict[str, float], rules: dict[str, MarketRules]) -> None:
        super().__init__(prices)
        self.rules = rules
        self.rule_calls = 0

    def market_rules(self, symbol: str) -> MarketRules:
        self.rule_calls += 1
        return self.rules[symbol]


def test_fees_in_the_coin_bought_leave_the_account_holding_less_than_it_bought():
    broker, _, _, _ = make_broker(
        prices={"LTC/USD": 80.0}, slippage_bps=0.0, fee_currency=FeeCurrency.RECEIVED
    )
    buy = broker.place_order(market_order("b1", Side.BUY, amount=0.1, symbol="LTC/USD"))
    # Binance/OKX style: 0.1 LTC bought, 0.0001 LTC of it taken as the fee.
    assert (buy.filled, buy.fee, buy.fee_currency) == (0.1, exact("0.0001"), "LTC")
    assert buy.fee_usd == exact("0.008") and buy.base_received("LTC") == exact("0.0999")
    balance = broker.fetch_balance()
    assert balance.cash["LTC"] == exact("0.0999") and balance.usd_cash == exact("9992")
    with pytest.raises(InsufficientFunds):  # the bought 0.1 is not all there to sell
        broker.place_order(market_order("s0", Side.SELL, amount=0.1, symbol="LTC/USD"))
    sell = broker.place_order(market_order("s1", Side.SELL, amount=0.0999, symbol="LTC/USD"))
    assert (sell.fee, sell.fee_currency) == (exact("0.007992"), "USD")  # a sell pays in quote
    assert "LTC" not in broker.fetch_balance().cash


def test_fees_in_the_quote_are_reported_with_their_currency():
    broker, _, _, _ = make_broker(slippage_bps=0.0)
    buy = broker.place_order(market_order("b1", Side.BUY, amount=0.1))
    assert (buy.fee, buy.fee_currency, buy.fee_usd) == (5.0, "USD", 5.0)
    assert buy.base_received("BTC") == 0.1


def test_open_only_client_ids_take_a_closed_orders_id_again():
    broker, _, _, _ = make_broker(duplicate_client_ids=DuplicateClientIds.OPEN_ONLY)
    broker.place_order(limit_order("same", Side.BUY, 0.01, 40_000.0))  # rests open
    with pytest.raises(OrderRejected, match="duplicate"):
        broker.place_order(market_order("same", Side.BUY, amount=0.01))
    broker.cancel_order("same")
    first = broker.place_order(market_order("again", Side.BUY, amount=0.01))
    second = broker.place_order(market_order("again", Side.BUY, amount=0.01))  # first is filled
    assert second.venue_order_id != first.venue_order_id
    assert broker.fetch_order("again") == second  # the newest with that id
    assert [o.client_order_id for o in broker.all_orders()] == ["same", "again", "again"]
    assert broker.fetch_balance().cash["BTC"] == 0.02  # two real orders


def test_synthetic_or_silent_sources_give_the_documented_paper_rules():
    broker, _, _, _ = make_broker()
    rules = broker.market_rules("BTC/USD")
    assert (rules.base, rules.quote) == ("BTC", "USD")
    assert (rules.amount_step, rules.min_amount, rules.min_notional) == (
        PAPER_AMOUNT_STEP, None, PAPER_MIN_NOTIONAL,
    )  # fmt: skip
    synthetic = PaperBroker(make_spec(), SyntheticMarket(("ETH/USD",), seed=1))
    assert synthetic.market_rules("ETH/USD").amount_step == PAPER_AMOUNT_STEP


def test_over_a_real_venue_the_rules_are_the_venues_and_are_enforced():
    venue_rules = MarketRules("LTC/USDT", "LTC", "USDT", 0.001, 0.01, 5.0, 0.01)
    market = RulesMarket({"LTC/USDT": 80.0}, {"LTC/USDT": venue_rules})
    broker = PaperBroker(make_spec(), market, clock=FakeClock(wall_start=T0), slippage_bps=0.0)
    assert broker.market_rules("LTC/USDT") == venue_rules
    broker.market_rules("LTC/USDT")
    assert market.rule_calls == 1  # asked once, then kept
    refused = {
        "e1": (0.005, "below the minimum 0.01 LTC"),
        "e2": (0.0125, "not a multiple of the lot step"),
        "e3": (0.05, "notional 4.00 below the minimum 5"),
    }
    for cid, (amount, why) in refused.items():
        with pytest.raises(OrderRejected, match=why):
            broker.place_order(market_order(cid, Side.BUY, amount=amount, symbol="LTC/USDT"))
    assert broker.all_orders() == [] and broker.fetch_balance().usd_cash == 10_000.0
    ok = broker.place_order(market_order("ok", Side.BUY, amount=0.07, symbol="LTC/USDT"))
    assert ok.status is OrderStatus.FILLED


def test_a_quote_sized_buy_is_sized_down_to_the_lot_step():
    broker, _, _, _ = make_broker(prices={"BTC/USD": 30_000.0}, slippage_bps=0.0)
    order = broker.place_order(market_order("q1", Side.BUY, quote=1_000.0))
    assert order.filled == exact("0.03333333")  # 1e-8 steps, never more than asked for
    assert order.filled * 30_000.0 <= 1_000.0


def test_free_balances_leave_out_what_open_orders_hold():
    broker, _, _, _ = make_broker(slippage_bps=0.0, fee_rate=0.0)
    broker.place_order(market_order("b1", Side.BUY, amount=0.1))
    broker.place_order(limit_order("l1", Side.SELL, 0.04, 60_000.0))  # holds 0.04 BTC
    balance = broker.fetch_balance()
    assert balance.cash["BTC"] == 0.1 and balance.free["BTC"] == exact("0.06")
    assert balance.free_amount("BTC") == exact("0.06") and balance.free_amount("ETH") is None
    assert balance.free["USD"] == balance.cash["USD"] == 5_000.0
