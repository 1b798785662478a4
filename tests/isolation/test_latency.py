"""Durations counted into buckets, and the circuit's counts the metrics read."""

from __future__ import annotations

import threading

import pytest

from bot.isolation.circuit import AccountCircuit, CircuitBreakerConfig
from bot.isolation.failures import FailureType
from bot.isolation.latency import Latency, VenueLatencies
from bot.isolation.manager import AccountIsolationManager
from bot.isolation.policy import Weight
from tests.isolation.conftest import ALICE, BOB


def test_buckets_are_cumulative_and_a_value_on_a_bound_falls_in_it():
    lat = Latency((0.1, 1.0))
    for seconds in (0.05, 0.1, 0.5, 3.0):
        lat.observe(seconds)
    snap = lat.snapshot()
    assert snap.buckets == ((0.1, 2), (1.0, 3), (float("inf"), 4))
    assert snap.count == 4 and snap.sum_seconds == pytest.approx(3.65)


def test_bounds_must_ascend():
    with pytest.raises(ValueError):
        Latency((1.0, 0.5))


def test_observations_from_many_threads_are_all_counted():
    lat = Latency((0.5,))

    def work() -> None:
        for _ in range(2000):
            lat.observe(0.25)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert lat.snapshot().count == 8000


def test_the_circuit_counts_refusals_and_times_successes():
    c = AccountCircuit(CircuitBreakerConfig(failure_threshold=1, timeout_seconds=60))
    c.success(1.0, 250.0, "balance")
    assert c.call_times.snapshot().count == 1
    c.failure(0.0, 1.0, FailureType.NETWORK_ERROR, Weight.COUNTED, "down", "balance")
    assert [c.allow(1.0)[0], c.allow(2.0)[0]] == [False, False]
    assert c.not_permitted == 2


def test_a_venues_total_counts_every_duration_of_its_accounts_as_it_is_observed():
    venues = VenueLatencies((0.1, 1.0))
    a, b, other = venues.account("KRAKEN"), venues.account("KRAKEN"), venues.account("OKX")
    for seconds in (0.05, 0.5):
        a.observe(seconds)
    b.observe(3.0)
    other.observe(0.2)
    totals = venues.totals()
    assert set(totals) == {"KRAKEN", "OKX"}
    kraken = totals["KRAKEN"].snapshot()
    assert kraken.buckets == ((0.1, 1), (1.0, 2), (float("inf"), 3))
    assert kraken.count == 3 and kraken.sum_seconds == pytest.approx(3.55)
    assert a.snapshot().count == 2 and b.snapshot().count == 1  # each account's own, too
    assert totals["OKX"].snapshot().buckets == ((0.1, 0), (1.0, 1), (float("inf"), 1))
    b.observe(0.07)  # the next read sees it at once
    assert venues.totals()["KRAKEN"].snapshot().buckets[0] == (0.1, 2)
    with pytest.raises(ValueError, match="cannot count"):
        Latency((0.5,), totals["KRAKEN"])


def test_a_venues_total_loses_no_observation_of_many_threads():
    venues = VenueLatencies((0.5,))
    accounts = [venues.account("KRAKEN") for _ in range(4)]

    def work(lat: Latency) -> None:
        for _ in range(2000):
            lat.observe(0.25)

    threads = [threading.Thread(target=work, args=(lat,)) for lat in accounts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert venues.totals()["KRAKEN"].snapshot().count == 8000


def test_account_counts_are_what_the_full_status_says(mgr: AccountIsolationManager, clock):
    for _ in range(5):
        mgr.record_failure(*ALICE, ConnectionError("venue down"), FailureType.NETWORK_ERROR)
    assert mgr.can_execute_operation(*ALICE)[0] is False  # refused: counted
    with mgr.guard(*BOB, "balance"):
        clock.advance(0.25)  # the call took 250 ms
    rows = {row.key: row for row in mgr.account_counts()}
    statuses = mgr.get_all_account_statuses()
    assert set(rows) == set(statuses) == {"user/alice/KRAKEN", "user/bob/KRAKEN"}
    for key, row in rows.items():
        full = statuses[key]
        assert row.status.value == full["status"] and row.circuit.value == full["circuit_state"]
        assert (row.successes, row.failures, row.not_permitted) == (
            full["total_successes"], full["total_failures"], full["not_permitted_calls"]
        )  # fmt: skip
    assert rows["user/alice/KRAKEN"].circuit.value == "open"
    assert (rows["user/alice/KRAKEN"].failures, rows["user/alice/KRAKEN"].not_permitted) == (5, 1)
    assert rows["user/bob/KRAKEN"].call_times.snapshot().buckets[3] == (0.5, 1)
    # The venue's total has bob's call (alice's calls all failed: no duration counted).
    kraken = mgr.venue_call_times()["KRAKEN"].snapshot()
    assert (kraken.count, kraken.buckets[3]) == (1, (0.5, 1))
