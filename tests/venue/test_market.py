"""VenueMarket: the venue's public data fetched once and shared, on a fake clock.

The source is a counting fake with the ``MarketData`` shape: 5-minute candles on the
clock's grid up to the one forming now, minus ``missing`` of the newest (2: the venue has
not published the candle that just closed). Real threads where the sharing is the point.
"""

from __future__ import annotations

import threading
from collections import Counter

import numpy as np
import pytest

from bot.errors import NetworkFailure, NotFound, VenueDataError
from bot.model import Candles, MarketRules, Ticker
from bot.venue.market import VenueMarket
from bot.venue.snapshot import CandleSnapshot
from nija_testkit.clock import FakeClock
from nija_testkit.harness import wait_for

STEP = 300
B = 1_767_225_600  # a candle boundary (2026-01-01T00:00Z)


class Source:
    """A venue's public data that counts what it is asked."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: Counter[str] = Counter()
        self.missing = 0  # the newest candles the venue has not published
        self.fail: Exception | None = None
        self.gate: threading.Event | None = None  # the answer waits for it
        self.entered = threading.Event()
        self.price = 100.0
        self.listed = ["BTC/USD", "ETH/USD"]
        self.refreshed = 0

    def fetch_candles(self, symbol: str, timeframe: str = "5m", limit: int = 200) -> Candles:
        self.calls["candles"] += 1
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(10)
        if self.fail is not None:
            raise self.fail
        forming = int(self.clock.wall()) // STEP * STEP
        newest = forming - self.missing * STEP
        opens = np.arange(newest - (limit - 1) * STEP, newest + 1, STEP) * 1000
        closes = np.linspace(90.0, self.price, len(opens))
        return Candles(opens, closes, closes + 1, closes - 1, closes, np.full(len(opens), 5.0))

    def fetch_ticker(self, symbol: str) -> Ticker:
        self.calls["ticker"] += 1
        if self.fail is not None:
            raise self.fail
        return Ticker(symbol, self.price - 0.5, self.price + 0.5, self.price)

    def symbols(self) -> list[str]:
        self.calls["symbols"] += 1
        if self.fail is not None:
            raise self.fail
        return list(self.listed)

    def market_rules(self, symbol: str) -> MarketRules:
        self.calls["rules"] += 1
        if symbol == "NOPE/USD":
            raise NotFound("no such market")
        base, _, quote = symbol.partition("/")
        return MarketRules(symbol, base, quote, amount_step=0.001 * (1 + self.refreshed))

    def refresh_markets(self) -> None:
        self.refreshed += 1


class Observer:
    def __init__(self) -> None:
        self.failed: list[tuple[str, str]] = []
        self.ok: Counter[str] = Counter()

    def public_failed(self, error: BaseException, operation: str) -> None:
        self.failed.append((operation, type(error).__name__))

    def public_ok(self, operation: str) -> None:
        self.ok[operation] += 1


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(wall_start=B + 10)


@pytest.fixture
def source(clock) -> Source:
    return Source(clock)


@pytest.fixture
def observer() -> Observer:
    return Observer()


@pytest.fixture
def market(source, clock, observer) -> VenueMarket:
    return VenueMarket(
        "KRAKEN",
        source,
        clock=clock,
        timeout_seconds=5.0,
        settle_seconds=2.0,
        refresh_attempts=3,
        refresh_spacing_seconds=5.0,
        failure_retry_seconds=10.0,
        metadata_refresh_seconds=3600.0,
        ticker_ttl_seconds=2.0,
        observer=observer,
    )


# -- candles ----------------------------------------------------------------------------


def test_a_snapshot_holds_the_closed_candles_the_last_price_and_the_next_close(market, clock):
    snap = market.candles("BTC/USD", "5m", 50)
    assert len(snap.candles) == 49  # the forming candle is dropped...
    assert snap.last_price == 100.0  # ...but its price is the last price
    assert snap.fetched_at == B + 10 and snap.newest_close == B and snap.next_close == B + STEP
    assert snap.complete and not snap.stale(B + STEP) and snap.stale(B + STEP + 1)


def test_candles_are_fetched_once_per_candle_close(market, source, clock):
    first = market.candles("BTC/USD", "5m", 50)
    for _ in range(3):
        clock.advance(95)  # B + 295: the same candle
        assert market.candles("BTC/USD", "5m", 50) is first
    clock.advance(6)  # B + 301: closed, but inside the settle delay
    assert market.candles("BTC/USD", "5m", 50) is first
    clock.advance(1.5)  # B + 302.5: settled
    second = market.candles("BTC/USD", "5m", 50)
    assert second is not first and second.newest_close == B + STEP
    assert source.calls["candles"] == 2
    market.candles("ETH/USD", "5m", 50)  # another key: its own fetch
    assert source.calls["candles"] == 3 and market.public_requests == 3


def test_concurrent_requests_for_one_key_make_one_request(market, source):
    source.gate = threading.Event()
    results: list[CandleSnapshot] = []
    threads = [
        threading.Thread(target=lambda: results.append(market.candles("BTC/USD", "5m", 50)))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    wait_for(lambda: market._flight.waiting() == 7, 10, "seven callers waiting for the first")
    source.gate.set()
    for t in threads:
        t.join(10)
    assert source.calls["candles"] == 1
    assert len(results) == 8 and all(r is results[0] for r in results)


def test_a_waiter_gives_up_at_the_call_timeout_with_the_venues_error(source, clock):
    market = VenueMarket("KRAKEN", source, clock=clock, timeout_seconds=0.2)
    source.gate = threading.Event()
    leader = threading.Thread(target=market.candles, args=("BTC/USD", "5m", 50))
    leader.start()
    try:
        assert source.entered.wait(10)
        with pytest.raises(VenueDataError, match=r"no answer within 0\.2s"):
            market.candles("BTC/USD", "5m", 50)
    finally:
        source.gate.set()
        leader.join(10)
    assert source.calls["candles"] == 1


def test_an_unpublished_candle_is_refreshed_a_bounded_number_of_times(market, source, clock):
    source.missing = 2  # B + 10: the candle that closed at B is not out yet
    snap = market.candles("BTC/USD", "5m", 50)
    assert snap.newest_close == B - STEP and snap.one_behind and not snap.complete
    assert market.candles("BTC/USD", "5m", 50) is snap  # not before the spacing
    for attempt in range(3):
        clock.advance(5)
        market.candles("BTC/USD", "5m", 50)
        assert source.calls["candles"] == 2 + attempt
    clock.advance(60)  # the refreshes are spent: nothing more until the next close
    market.candles("BTC/USD", "5m", 50)
    assert source.calls["candles"] == 4
    clock.advance(B + STEP + 2 - clock.wall())  # the next close, settled
    source.missing = 0
    assert market.candles("BTC/USD", "5m", 50).complete and source.calls["candles"] == 5


def test_a_refresh_stops_once_the_candle_is_published(market, source, clock):
    source.missing = 2
    market.candles("BTC/USD", "5m", 50)
    source.missing = 0
    clock.advance(5)
    snap = market.candles("BTC/USD", "5m", 50)
    assert snap.complete and snap.newest_close == B
    clock.advance(100)
    assert market.candles("BTC/USD", "5m", 50) is snap and source.calls["candles"] == 2


def test_a_market_closed_for_hours_is_not_refreshed(market, source, clock):
    source.missing = 30  # nothing since 2.5 hours ago: no refresh will find a new candle
    snap = market.candles("BTC/USD", "5m", 50)
    assert not snap.one_behind and snap.stale(clock.wall())
    clock.advance(60)
    assert market.candles("BTC/USD", "5m", 50) is snap and source.calls["candles"] == 1


def test_a_public_failure_is_the_venues_and_is_not_retried_by_every_caller(
    market, source, clock, observer
):
    source.fail = NetworkFailure("503 from the venue", status=503)
    with pytest.raises(VenueDataError) as failed:
        market.candles("BTC/USD", "5m", 50)
    assert isinstance(failed.value.__cause__, NetworkFailure)
    assert failed.value.operation == "candles"
    assert observer.failed == [("candles", "NetworkFailure")]
    for _ in range(5):  # every other account asking within the back-off: no request
        with pytest.raises(VenueDataError, match="next try in"):
            market.candles("BTC/USD", "5m", 50)
    assert source.calls["candles"] == 1 and len(observer.failed) == 1
    source.fail = None
    clock.advance(10)
    assert market.candles("BTC/USD", "5m", 50).complete
    assert source.calls["candles"] == 2 and observer.ok["candles"] == 1


def test_a_failed_refresh_keeps_the_snapshot_of_the_current_candle(market, source, clock):
    source.missing = 2
    snap = market.candles("BTC/USD", "5m", 50)
    source.fail = NetworkFailure("timeout")
    clock.advance(5)
    assert market.candles("BTC/USD", "5m", 50) is snap
    assert source.calls["candles"] == 2


def test_an_observer_that_raises_never_reaches_the_caller(market, source):
    class Broken:
        def public_ok(self, operation: str) -> None:
            raise RuntimeError("bug in the health code")

        def public_failed(self, error: BaseException, operation: str) -> None:
            raise RuntimeError("bug in the health code")

    market.observer = Broken()
    assert market.candles("BTC/USD", "5m", 50).complete


# -- market metadata ---------------------------------------------------------------------


def test_metadata_is_loaded_once_and_reloaded_on_a_slow_timer(market, source, clock):
    assert market.listed(["ETH/USD", "DOGE/USD", "BTC/USD"]) == ["ETH/USD", "BTC/USD"]
    assert market.listed() == ["BTC/USD", "ETH/USD"]
    assert market.rules("BTC/USD").amount_step == 0.001
    assert market.cached_rules("ETH/USD") is not None
    assert source.calls["symbols"] == 1 and source.calls["rules"] == 2  # both, at the load
    clock.advance(3599)
    market.rules("BTC/USD")
    assert source.calls["symbols"] == 1
    clock.advance(2)
    assert market.rules("BTC/USD").amount_step == 0.002  # reloaded: the adapter forgot its own
    assert source.refreshed == 1 and source.calls["symbols"] == 2


def test_a_failed_reload_keeps_the_last_good_metadata_and_tries_again_later(
    market, source, clock, observer
):
    market.listed()
    source.fail = NetworkFailure("down")
    clock.advance(3601)
    assert market.listed() == ["BTC/USD", "ETH/USD"]  # the old answer serves
    assert observer.failed == [("markets", "NetworkFailure")]
    market.listed()
    assert source.calls["symbols"] == 2  # not again before the back-off
    source.fail = None
    clock.advance(10)
    market.listed()
    assert source.calls["symbols"] == 3


def test_metadata_never_loaded_is_the_venues_error(market, source):
    source.fail = NetworkFailure("down")
    with pytest.raises(VenueDataError, match="markets failed"):
        market.listed()
    with pytest.raises(VenueDataError, match="next try in"):
        market.rules("BTC/USD")
    assert source.calls["symbols"] == 1


def test_a_symbol_the_venue_refuses_is_its_answer_not_a_failure(market, source, observer):
    with pytest.raises(NotFound):
        market.rules("NOPE/USD")
    assert observer.failed == []


# -- the paper broker's MarketData ------------------------------------------------------------


def test_tickers_are_shared_for_a_moment_and_failures_come_as_the_adapter_raised_them(
    market, source, clock
):
    assert market.fetch_ticker("BTC/USD").last == 100.0
    source.price = 101.0
    assert market.fetch_ticker("BTC/USD").last == 100.0  # within the 2 s
    clock.advance(2)
    assert market.fetch_ticker("BTC/USD").last == 101.0
    assert source.calls["ticker"] == 2
    source.fail = NetworkFailure("down")
    clock.advance(2)
    for _ in range(3):
        with pytest.raises(NetworkFailure):
            market.fetch_ticker("BTC/USD")
    assert source.calls["ticker"] == 3


def test_a_holding_is_valued_at_one_shared_ticker_per_valuation_age(market, source, clock):
    market.valuation_age_seconds = 30.0
    assert market.valuation_price("BTC/USD") == 100.0
    source.price = 101.0
    clock.advance(29)  # past the fills' 2 s, inside the valuation's 30 s
    assert market.valuation_price("BTC/USD") == 100.0
    assert market.fetch_ticker("BTC/USD").last == 101.0  # a fill asks anew...
    assert market.valuation_price("BTC/USD") == 101.0  # ...and the valuation reads it too
    assert source.calls["ticker"] == 2
    clock.advance(30)
    assert market.valuation_price("BTC/USD") == 101.0
    assert source.calls["ticker"] == 3
    assert market.requests_by_operation["ticker"] == 3  # counted as the venue's requests


def test_a_failed_valuation_price_is_the_venues_failure_and_never_a_zero(
    market, source, clock, observer
):
    market.valuation_age_seconds = 30.0
    assert market.valuation_price("BTC/USD") == 100.0
    source.fail = NetworkFailure("down")
    clock.advance(20)
    with pytest.raises(NetworkFailure):  # a fill's fresh ticker fails...
        market.fetch_ticker("BTC/USD")
    assert market.valuation_price("BTC/USD") == 100.0  # ...the 20 s old one still values
    clock.advance(11)  # 31 s old: too old to value, and the failed fetch is due again
    with pytest.raises(VenueDataError, match="ticker failed") as info:
        market.valuation_price("BTC/USD")
    assert type(info.value.__cause__) is NetworkFailure
    for _ in range(3):  # the venue gets one request per retry interval, not one per account
        with pytest.raises(VenueDataError, match="next try in 10s"):
            market.valuation_price("BTC/USD")
    assert source.calls["ticker"] == 3
    assert observer.failed == [("ticker", "NetworkFailure")] * 2
    source.fail = None
    clock.advance(10)
    assert market.valuation_price("BTC/USD") == 100.0


def test_the_market_data_protocol_reads_the_shared_data(market, source):
    assert market.symbols() == ["BTC/USD", "ETH/USD"]
    assert len(market.fetch_candles("BTC/USD", "5m", 50)) == 49
    assert market.market_rules("ETH/USD").base == "ETH"
    assert market.client is source
    assert market.requests_by_operation == {"markets": 1, "candles": 1}
    assert market.public_request_rate() == pytest.approx(2 / 60)


# -- the indicator memo -------------------------------------------------------------------------


def test_the_memo_computes_once_per_snapshot_and_key_across_threads(market):
    snap = market.candles("BTC/USD", "5m", 50)
    computed = Counter()
    gate = threading.Barrier(6)

    def compute(key: str) -> str:
        computed[key] += 1
        return f"value of {key}"

    def ask() -> None:
        gate.wait(10)
        for key in ("a", "b"):
            assert snap.memo(key, lambda key=key: compute(key)) == f"value of {key}"

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert computed == {"a": 1, "b": 1}


def test_a_call_on_the_client_is_one_of_the_venues_public_requests(market, source, observer):
    assert market.call("status", lambda client: client.symbols()) == ["BTC/USD", "ETH/USD"]
    assert market.requests_by_operation["status"] == 1 and observer.ok["status"] == 1
    source.fail = NetworkFailure("down")
    with pytest.raises(VenueDataError, match="status failed"):
        market.call("status", lambda client: client.symbols())
    assert observer.failed == [("status", "NetworkFailure")]
