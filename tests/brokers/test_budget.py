"""bot.brokers.budget: token buckets on an injected clock, never a real sleep."""

from __future__ import annotations

import threading

import pytest

from bot.brokers.budget import NIJA_SHARE, Budgets, RateLimit, RequestBudget
from bot.brokers.venues import VENUES, env_venues
from nija_testkit.clock import FakeClock


def budget(rate: float, burst: float, clock: FakeClock) -> tuple[RequestBudget, list[float]]:
    """A budget whose waits move ``clock`` (as a real wait would) and are recorded."""
    waits: list[float] = []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)

    return RequestBudget(rate, burst, clock=clock, wait=wait), waits


def test_a_full_bucket_lets_the_burst_through_then_spaces_requests_at_the_rate():
    clock = FakeClock()
    b, waits = budget(2.0, 3.0, clock)
    assert [b.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.acquire() == pytest.approx(0.5)
    assert b.acquire() == pytest.approx(0.5)
    assert waits == pytest.approx([0.5, 0.5])
    clock.advance(60.0)  # idle time refills to the burst, never beyond it
    assert [b.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.acquire() == pytest.approx(0.5)
    assert b.acquired == 9 and b.spent == 9.0 and b.waited_seconds == pytest.approx(1.5)


def test_a_request_spends_its_cost_and_one_above_the_burst_just_waits_longer():
    clock = FakeClock()
    b, _ = budget(2.0, 3.0, clock)
    assert b.acquire(2.5) == 0.0
    assert b.acquire(1.0) == pytest.approx(0.25)  # 0.5 left, 0.5 short at 2 per second
    clock.advance(10.0)
    assert b.acquire(5.0) == pytest.approx(1.0)  # 3 saved up, 2 more at 2 per second
    assert b.acquire(0.0) == 0.0 and b.acquired == 3  # a free request spends nothing
    with pytest.raises(ValueError):
        b.acquire(-1.0)


def test_concurrent_acquirers_each_get_their_own_slot_in_the_order_they_asked():
    clock = FakeClock()  # never moves: every caller reserves at the same instant
    waits: list[float] = []
    b = RequestBudget(10.0, 1.0, clock=clock, wait=waits.append)
    start = threading.Barrier(20)
    got: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        start.wait(5)
        delay = b.acquire()
        with lock:
            got.append(delay)

    threads = [threading.Thread(target=take) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    # One free token, then one every 0.1 s: twenty distinct slots, none shared, none lost.
    assert sorted(got) == pytest.approx([i / 10 for i in range(20)])
    assert sorted(waits) == pytest.approx([i / 10 for i in range(1, 20)])
    assert b.available() == pytest.approx(-19.0)


def test_budgets_wait_for_the_later_of_both_sides_and_count_what_the_account_waited():
    clock = FakeClock()
    public, _ = budget(1.0, 1.0, clock)
    private, _ = budget(4.0, 2.0, clock)
    account = Budgets(public=public, private=private)
    assert account.spend(public=1.0, private=1.0) == 0.0
    # Public short by 1 (1 s), private short by 0 (1 token left): the wait is the later one.
    assert account.spend(public=1.0, private=1.0) == pytest.approx(1.0)
    assert account.waited_seconds == pytest.approx(1.0)
    assert public.acquired == 2 and private.acquired == 2
    assert account.spend(private=0.0, public=0.0) == 0.0  # costs nothing: no budget touched
    assert Budgets().spend(public=5.0, private=5.0) == 0.0  # no budgets: not throttled
    other = Budgets(public=public)  # a second account shares the venue's public budget
    other.spend(public=1.0)
    assert public.acquired == 3 and other.waited_seconds > 0 and private.acquired == 2


def test_nija_takes_its_share_of_a_documented_limit_and_a_burst_of_at_least_one():
    clock = FakeClock()
    weight = RateLimit(6000, 60.0, 6000, unit="weight").budget(clock=clock)
    assert weight.rate == NIJA_SHARE * 100.0 and weight.burst == NIJA_SHARE * 6000
    one_a_second = RateLimit(1, 1.0, 1).budget(clock=clock)
    assert one_a_second.rate == NIJA_SHARE and one_a_second.burst == 1.0
    with pytest.raises(ValueError):
        RateLimit(0, 1.0, 1)


def test_every_venue_with_accounts_has_its_documented_limits_in_the_registry():
    for entry in env_venues():
        assert entry.private_limit is not None, entry.name
    assert VENUES["ALPACA"].public_limit is None  # market data needs a key: counted per key
    assert all(VENUES[n].public_limit for n in ("COINBASE", "KRAKEN", "OKX", "BINANCE"))
    kraken = VENUES["KRAKEN"].private_limit
    assert kraken is not None and (kraken.burst, kraken.rate) == (15, 0.33)
    assert VENUES["PAPER"].public_limit is None and VENUES["PAPER"].private_limit is None
