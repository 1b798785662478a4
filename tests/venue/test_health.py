"""VenueHealth: when a venue is down, how it is probed, and how its accounts resume."""

from __future__ import annotations

import itertools
import random

import pytest

from bot.errors import AuthRejected, NetworkFailure, RateLimited
from bot.isolation.failures import FailureType
from bot.model import VenueCondition, VenueStatus
from bot.venue.health import DownCause, HealthConfig, VenueHealth, VenueParked, VenueState
from nija_testkit.clock import FakeClock

NET, API = FailureType.NETWORK_ERROR, FailureType.API_ERROR
CONFIG = HealthConfig(probe_interval_seconds=30.0, resume_window_seconds=20.0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def venue(clock: FakeClock, accounts: int, **config) -> tuple[VenueHealth, list]:
    """A venue with ``accounts`` registered and a listener that keeps the transitions."""
    health = VenueHealth(
        "KRAKEN", clock, random.Random(7), HealthConfig(**config) if config else CONFIG
    )
    for i in range(accounts):
        health.register(f"user/a{i}/KRAKEN")
    moves: list = []
    health.add_listener(moves.append)
    return health, moves


def keys(n: int) -> list[str]:
    return [f"user/a{i}/KRAKEN" for i in range(n)]


def fail(health: VenueHealth, accounts: list[str], failure=NET) -> list[bool]:
    return [health.record_failure(k, failure, "NetworkFailure: 503") for k in accounts]


# -- down -----------------------------------------------------------------------------------


def test_half_the_accounts_failing_within_the_window_puts_the_venue_down(clock):
    health, moves = venue(clock, 10)
    assert fail(health, keys(4)) == [False] * 4
    assert health.state is VenueState.UP and not moves
    assert fail(health, keys(5)[4:]) == [True]  # the fifth of ten: half
    assert health.state is VenueState.DOWN and health.down_cause is DownCause.ACCOUNTS
    assert [(m.old, m.new) for m in moves] == [(VenueState.UP, VenueState.DOWN)]
    assert moves[0].reason == "5 of 10 accounts failed within 60s (NetworkFailure: 503)"
    assert fail(health, keys(10)) == [True] * 10  # later ones are the outage's
    assert len(moves) == 1  # one transition, said once


def test_one_account_alone_never_puts_its_venue_down(clock):
    health, moves = venue(clock, 1)
    assert fail(health, keys(1) * 20) == [False] * 20
    assert health.state is VenueState.UP and not moves
    health2, _ = venue(clock, 3)
    fail(health2, keys(1) * 5)  # one of three, however often
    assert health2.state is VenueState.UP


def test_failures_further_apart_than_the_window_do_not_add_up(clock):
    health, _ = venue(clock, 4)
    fail(health, keys(1))
    clock.advance(61)
    fail(health, keys(2)[1:])
    assert health.state is VenueState.UP
    fail(health, keys(3)[2:])  # two within the window now
    assert health.state is VenueState.DOWN


def test_an_accounts_answered_call_takes_back_its_failure(clock):
    health, _ = venue(clock, 4)
    fail(health, keys(1))
    health.record_success(keys(1)[0])
    fail(health, keys(2)[1:])
    assert health.state is VenueState.UP


@pytest.mark.parametrize(
    "own",
    [
        FailureType.AUTHENTICATION_ERROR,
        FailureType.RATE_LIMIT_ERROR,
        FailureType.BALANCE_ERROR,
        FailureType.EXECUTION_ERROR,
    ],
)
def test_an_accounts_own_failures_never_count(clock, own):
    health, moves = venue(clock, 4)
    assert fail(health, keys(4) * 3, own) == [False] * 12
    assert health.state is VenueState.UP and not moves


def test_public_fetches_failing_in_a_row_put_the_venue_down(clock):
    health, moves = venue(clock, 0)
    outage = NetworkFailure("KRAKEN: 503", status=503)
    health.public_failed(outage, "candles")
    health.public_failed(outage, "candles")
    health.public_ok("candles")  # the streak starts again
    health.public_failed(outage, "candles")
    health.public_failed(RateLimited("slow down"), "candles")  # the IP's limit: no outage
    health.public_failed(outage, "candles")
    assert health.state is VenueState.UP
    health.public_failed(outage, "ticker")
    assert health.state is VenueState.DOWN and health.down_cause is DownCause.PUBLIC
    assert moves[0].reason.startswith("3 public requests failed in a row (ticker: NetworkFailure")


# -- parked, probed, back -----------------------------------------------------------------------


def test_while_down_accounts_are_parked_and_one_jittered_probe_runs_per_interval(clock):
    health, _ = venue(clock, 4)
    fail(health, keys(2))
    wait = health.parked("user/a3/KRAKEN")
    assert 24 <= wait <= 36  # the first probe, 30 s +- 20%
    error = health.parked_error("user/a3/KRAKEN", wait)
    assert isinstance(error, VenueParked) and error.retry_in_seconds == wait
    assert error.reason.startswith("venue KRAKEN down: 2 of 4 accounts failed")
    assert not health.probe_due()
    clock.advance(wait)
    assert health.probe_due()
    intervals = []
    for _ in range(20):
        health.record_probe(False, "NetworkFailure: 503")
        assert not health.probe_due()
        left = health.parked("user/a0/KRAKEN")
        intervals.append(left)
        clock.advance(left)
        assert health.probe_due()
    assert all(24 <= i <= 36 for i in intervals) and len(set(intervals)) > 10  # jittered
    assert health.state is VenueState.DOWN
    assert health.snapshot()["last_probe"]["ok"] is False


def test_back_up_every_account_resumes_at_its_own_time_in_the_window(clock):
    n = 40
    health, moves = venue(clock, n)
    fail(health, keys(n // 2))
    clock.advance(40)
    health.record_probe(True, "SystemStatus online")
    assert (
        health.state is VenueState.UP and moves[-1].reason == "probe answered: SystemStatus online"
    )
    waits = sorted(health.parked(k) for k in keys(n))
    assert waits[0] == 0.0 and waits[-1] < 20.0
    gaps = [b - a for a, b in itertools.pairwise(waits)]
    assert min(gaps) == pytest.approx(20.0 / n)  # evenly spread: never all in one second
    assert sum(1 for w in waits if w < 1.0) == 2
    # the order is random: the first to resume is not simply the first registered
    order = sorted(keys(n), key=health.parked)
    assert order != keys(n) and order != sorted(keys(n))
    clock.advance(10)
    assert sum(1 for k in keys(n) if health.parked(k) == 0.0) == 21  # at 0, 0.5, ... 10 s
    clock.advance(10)
    assert all(health.parked(k) == 0.0 for k in keys(n))
    assert health.parked("user/new/KRAKEN") == 0.0


# -- the status check ----------------------------------------------------------------------------


def status(condition: VenueCondition, message: str = "") -> VenueStatus:
    return VenueStatus(condition, message or f"SystemStatus {condition.value}")


def test_the_status_check_puts_the_venue_down_and_brings_it_back(clock):
    health, moves = venue(clock, 3)
    health.record_status(status(VenueCondition.MAINTENANCE))
    assert health.state is VenueState.DOWN and health.down_cause is DownCause.STATUS
    assert moves[-1].reason == "status check: SystemStatus maintenance"
    health.record_status(status(VenueCondition.OK))
    assert health.state is VenueState.UP
    assert sorted(health.parked(k) for k in keys(3)) == pytest.approx([0.0, 20 / 3, 40 / 3])


def test_cancel_only_and_post_only_restrict_without_parking(clock):
    health, moves = venue(clock, 3)
    health.record_status(status(VenueCondition.CANCEL_ONLY))
    assert health.state is VenueState.CANCEL_ONLY and not health.state.takes_market_orders
    assert all(health.parked(k) == 0.0 for k in keys(3))
    health.record_status(status(VenueCondition.POST_ONLY))
    health.record_status(status(VenueCondition.UNKNOWN))  # says nothing: no change
    health.record_status(status(VenueCondition.OK))
    assert [m.new for m in moves] == [VenueState.CANCEL_ONLY, VenueState.POST_ONLY, VenueState.UP]
    assert all(health.parked(k) == 0.0 for k in keys(3))


def test_a_venue_its_accounts_put_down_comes_back_through_a_probe_only(clock):
    health, _ = venue(clock, 2)
    fail(health, keys(2))
    health.record_status(status(VenueCondition.OK))
    assert health.state is VenueState.DOWN
    health.record_probe(True, "SystemStatus online", VenueState.CANCEL_ONLY)
    assert health.state is VenueState.CANCEL_ONLY


def test_the_snapshot_is_status_json_s_venue_entry(clock):
    health, _ = venue(clock, 2)
    for _ in range(5):
        health.public_ok("candles")
    clock.advance(50)
    health.public_failed(AuthRejected("401"), "candles")
    assert health.snapshot()["public_requests_per_min"] == 6
    clock.advance(20)
    snap = health.snapshot()
    assert snap == {
        "state": "up",
        "since": "2026-01-01T00:00:00+00:00",
        "reason": "no outage seen",
        "last_probe": None,
        "public_requests_per_min": 1,
    }


def test_the_config_refuses_nonsense():
    with pytest.raises(ValueError):
        HealthConfig(failure_share=0)
    with pytest.raises(ValueError):
        HealthConfig(probe_interval_seconds=0)
    with pytest.raises(ValueError):
        HealthConfig(probe_jitter=1.0)
