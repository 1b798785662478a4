"""Durations counted into buckets, and the circuit's counts the metrics read."""

from __future__ import annotations

import threading

import pytest

from bot.isolation.circuit import AccountCircuit, CircuitBreakerConfig
from bot.isolation.failures import FailureType
from bot.isolation.latency import Latency
from bot.isolation.policy import Weight


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
