"""VenueMonitor over the real adapters and the loopback emulator: what it asks, and when."""

from __future__ import annotations

import random
import threading

import pytest

from bot.errors import NetworkFailure
from bot.isolation.failures import FailureType
from bot.venue.health import HealthConfig, VenueHealth, VenueState
from bot.venue.monitor import VenueMonitor
from nija_testkit.clock import FakeClock
from nija_testkit.emulator.server import Fault

CONFIG = HealthConfig(probe_interval_seconds=30.0, probe_jitter=0.0, resume_window_seconds=10.0)


def monitor(venue, clock: FakeClock, accounts: int = 2) -> VenueMonitor:
    health = VenueHealth(venue.broker, clock, random.Random(3), CONFIG)
    for i in range(accounts):
        health.register(f"user/a{i}/{venue.broker}")
    return VenueMonitor(
        health,
        venue.make_broker(),
        clock,
        probe_symbol=venue.kind.symbols[0],
        timeframe="1m",
        status_interval_seconds=60.0,
    )


def routes(venue) -> list[str | None]:
    taken = [r.route for r in venue.server.requests]
    venue.server.requests.clear()
    return taken


def test_while_up_the_status_check_runs_once_per_interval(venue_handle):
    venue, clock = venue_handle("KRAKEN"), FakeClock()
    mon = monitor(venue, clock)
    for _ in range(30):  # thirty steps of one second: one check
        mon.step()
        clock.advance(1)
    assert routes(venue) == ["system_status"]
    clock.advance(30)
    mon.step()
    assert routes(venue) == ["system_status"]
    assert mon.health.snapshot()["public_requests_per_min"] == 1


def test_maintenance_parks_the_venue_and_a_probe_brings_it_back(venue_handle):
    venue, clock = venue_handle("KRAKEN"), FakeClock()
    mon = monitor(venue, clock)
    venue.venue.set_status("maintenance")
    mon.step()
    assert mon.health.state is VenueState.DOWN
    for _ in range(29):  # no request between probes
        clock.advance(1)
        mon.step()
    assert routes(venue) == ["system_status"]
    clock.advance(1)
    mon.step()  # the probe: still maintenance
    assert routes(venue) == ["system_status"] and mon.health.state is VenueState.DOWN
    venue.venue.set_status("ok")
    clock.advance(30)
    mon.step()  # the status check put it down, so its answer alone brings it back
    assert routes(venue) == ["system_status"] and mon.health.state is VenueState.UP
    assert mon.health.snapshot()["last_probe"]["ok"] is True


def test_a_venue_wide_outage_costs_one_request_per_probe(venue_handle):
    venue, clock = venue_handle("KRAKEN"), FakeClock()
    mon = monitor(venue, clock)
    mon.step()  # the first status check
    routes(venue)
    for key in ("user/a0/KRAKEN", "user/a1/KRAKEN"):
        mon.health.record_failure(key, FailureType.NETWORK_ERROR, "NetworkFailure: 503")
    assert mon.health.state is VenueState.DOWN
    venue.server.inject("*", Fault("status", 503))
    for _ in range(300):  # five minutes of one-second steps
        clock.advance(1)
        mon.step()
    assert routes(venue) == ["system_status"] * 10  # one per 30 s probe interval
    venue.server.clear_faults()
    clock.advance(30)
    mon.step()  # status ok, and market data answers: back
    assert mon.health.state is VenueState.UP
    taken = routes(venue)
    assert taken[0] == "system_status" and taken[-1] == "candles"


def test_a_probe_asks_for_market_data_when_the_status_check_says_ok(venue_handle):
    """Candles failing for everyone, SystemStatus fine: the venue stays down."""
    venue, clock = venue_handle("KRAKEN"), FakeClock()
    mon = monitor(venue, clock, accounts=0)
    venue.server.inject("candles", Fault("status", 502))
    for _ in range(3):
        mon.health.public_failed(NetworkFailure("502", status=502), "candles")
    assert mon.health.state is VenueState.DOWN
    routes(venue)
    clock.advance(30)
    mon.step()
    assert mon.health.state is VenueState.DOWN and "candles" in routes(venue)
    venue.server.clear_faults()
    clock.advance(30)
    mon.step()
    assert mon.health.state is VenueState.UP


@pytest.mark.parametrize("broker", ["COINBASE", "ALPACA"])
def test_a_venue_without_a_status_check_is_probed_with_market_data_only(venue_handle, broker):
    venue, clock = venue_handle(broker), FakeClock()
    mon = monitor(venue, clock, accounts=0)
    for _ in range(90):
        mon.step()
        clock.advance(1)
    assert routes(venue) == []  # nothing to poll while up
    for _ in range(3):
        mon.health.public_failed(NetworkFailure("503", status=503), "candles")
    clock.advance(30)
    mon.step()
    assert mon.health.state is VenueState.UP
    assert "system_status" not in routes(venue)


def test_the_thread_runs_until_stopped(venue_handle):
    venue = venue_handle("KRAKEN")
    health = VenueHealth("KRAKEN", config=CONFIG)
    mon = VenueMonitor(health, venue.make_broker(), probe_symbol="BTC/USD")
    thread = mon.start()
    assert thread.name == "venue-KRAKEN" and thread.daemon
    done = threading.Event()
    for _ in range(50):  # bounded: up to 5 s for the first status check
        if venue.server.requests_to("system_status"):
            done.set()
            break
        done.wait(0.1)
    mon.stop()
    assert done.is_set() and not thread.is_alive()
