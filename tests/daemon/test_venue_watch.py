"""The daemon's venues: transitions logged once, workers woken on recovery, status.json's
``venues`` section and each account's ``venue_state``; in-process against the Kraken emulator."""

from __future__ import annotations

import base64
import random
import time
from functools import partial

from structlog.testing import capture_logs

from bot.config.settings import load_settings
from bot.daemon.supervisor import IndependentBrokerTrader
from bot.daemon.venue_watch import VenueWatch
from bot.daemon.wiring import default_factories, make_trader
from bot.daemon.worker import AccountWorker
from bot.engine.trader import CycleResult
from bot.isolation.failures import FailureType
from bot.isolation.manager import AccountIsolationManager
from bot.model import AccountRef, BrokerSpec, Credentials, VenueCondition, VenueStatus
from nija_testkit import harness
from nija_testkit.candles import flat, rows
from nija_testkit.clock import FakeClock
from nija_testkit.emulator.server import Fault

wait_for = partial(harness.wait_for, timeout=15.0, interval=0.05)


def kraken_spec(ident: str, url: str = "http://127.0.0.1:1") -> BrokerSpec:
    secret = base64.b64encode(f"FAKE-KRAKEN-SECRET-{ident}".encode()).decode()
    return BrokerSpec(
        AccountRef("user", ident, "KRAKEN"),
        Credentials(f"FAKE-KRAKEN-KEY-{ident.upper()}-01", secret),
        symbols=("BTC/USD",),
        base_url=url,
        timeout_seconds=1.0,
        rate_limit=False,
    )


# -- the watch on its own ---------------------------------------------------------------------


def test_transitions_are_logged_once_and_a_recovery_wakes_the_venues_workers():
    woken: list[str] = []
    specs = [kraken_spec("a"), kraken_spec("b"), kraken_spec("c")]
    specs.append(BrokerSpec(AccountRef("user", "d", "OKX")))
    watch = VenueWatch(
        load_settings({}), specs, lambda s: None, wake=woken.append, clock=FakeClock()
    )
    assert sorted(watch.health) == ["KRAKEN", "OKX"]
    kraken = watch.health["KRAKEN"]
    with capture_logs() as logs:
        accounts = ("user/a/KRAKEN", "user/b/KRAKEN", "user/c/KRAKEN")
        for key in accounts:
            kraken.register(key)
        for key in accounts:
            kraken.record_failure(key, FailureType.NETWORK_ERROR, "NetworkFailure: 503")
        kraken.record_probe(False, "NetworkFailure: 503")
        kraken.record_probe(True, "SystemStatus online")
        kraken.record_status(VenueStatus(VenueCondition.CANCEL_ONLY, "SystemStatus cancel_only"))
    events = [(e["event"], e["venue"], e["state"]) for e in logs if e["event"].startswith("venue")]
    assert events == [
        ("venue_down", "KRAKEN", "down"),
        ("venue_up", "KRAKEN", "up"),
        ("venue_restricted", "KRAKEN", "cancel_only"),
    ]
    assert logs[0]["reason"] == "2 of 3 accounts failed within 60s (NetworkFailure: 503)"
    assert woken == ["KRAKEN"]  # once, on leaving DOWN
    assert watch.state_of("KRAKEN") == "cancel_only" and watch.state_of("OKX") == "up"
    assert watch.state_of("ALPACA") is None
    assert set(watch.snapshot()) == {"KRAKEN", "OKX"}


# -- the daemon in-process ----------------------------------------------------------------------


def test_a_venue_outage_parks_its_accounts_and_they_resume_one_by_one(venue_server, tmp_path):
    server = venue_server("KRAKEN")
    server.venue.market.set_candles("BTC/USD", rows(flat(price=100.0)))
    specs = [kraken_spec(i, server.url) for i in ("a", "b", "c", "d")]
    for s in specs:
        server.venue.add_account(s.credentials.api_key, s.credentials.api_secret, {"USD": 1e4})
    settings = load_settings(
        {
            "NIJA_DATA_DIR": str(tmp_path),
            # Live: each cycle asks the venue for the account's balance. (Paper accounts ask it
            # nothing between two candle closes: the shared candles are cached till then.)
            "NIJA_MODE": "live",
            "NIJA_CYCLE_SECONDS": "0.3",
            "NIJA_CALL_TIMEOUT_SECONDS": "1",
            "NIJA_VENUE_PROBE_SECONDS": "1",
            "NIJA_VENUE_RESUME_SECONDS": "1",
        }
    )
    isolation = AccountIsolationManager()
    daemon = IndependentBrokerTrader(
        settings,
        specs,
        isolation,
        trader_factory=make_trader,
        factories=default_factories(settings),
    )
    daemon.venues.health["KRAKEN"]._rng = random.Random(1)  # a known resume order
    keys = [s.account.key for s in specs]

    def venue() -> dict:
        return daemon.get_multi_broker_status()["venues"]["KRAKEN"]

    with capture_logs() as logs:
        daemon.start_independent_multi_broker_trading()
        try:
            wait_for(lambda: all(daemon.workers[k].cycles >= 2 for k in keys), what="cycles")
            server.inject("*", Fault("status", 503))
            wait_for(lambda: venue()["state"] == "down", what="venue down")
            status = daemon.get_multi_broker_status()
            assert {status["accounts"][k]["venue_state"] for k in keys} == {"down"}
            time.sleep(0.5)  # parked: every account's cycle blocked, nothing sent but probes
            mark = len(server.requests)
            time.sleep(2.0)  # a probe every 1 s +- 20%
            during = [r.route for r in server.requests[mark:]]
            assert len(during) <= 3 and set(during) <= {"system_status"}, during
            server.clear_faults()
            wait_for(lambda: venue()["state"] == "up", what="venue up")
            back = time.monotonic()
            cycles = {k: daemon.workers[k].cycles for k in keys}
            wait_for(lambda: all(daemon.workers[k].cycles > cycles[k] for k in keys), what="resume")
            assert time.monotonic() - back < 5.0
        finally:
            daemon.stop_independent_trading(timeout=3)
    venue_lines = [e for e in logs if e["event"] in ("venue_down", "venue_up")]
    assert [e["event"] for e in venue_lines] == ["venue_down", "venue_up"]
    assert venue_lines[1]["reason"].startswith("probe answered: SystemStatus online")
    for key in keys:  # no breaker moved
        m = isolation.get_all_account_statuses()[key]
        assert m["circuit_state"] == "closed" and m["quarantine_count"] == 0, (key, m)
    snap = venue()
    assert snap["last_probe"]["ok"] is True and snap["public_requests_per_min"] >= 1


def test_a_worker_waits_exactly_until_its_resume_time_but_a_whole_interval_while_down():
    clock = FakeClock()
    worker = AccountWorker(
        kraken_spec("a"), 100.0, build=lambda store: None, open_store=lambda key: None, clock=clock
    )
    worker._started = clock.monotonic()
    worker._wake.set()  # the wait returns at once; the worker's plan is what is checked
    back = CycleResult("user/a/KRAKEN", clock.wall(), ok=False, blocked_reason="venue back")
    back.retry_in_seconds = back.resume_in_seconds = 2.5
    worker.last_result = back
    worker._sleep_until_next()
    assert worker.next_cycle_wall == clock.wall() + 2.5
    down = CycleResult("user/a/KRAKEN", clock.wall(), ok=False, blocked_reason="venue down")
    down.retry_in_seconds = 30.0
    worker.last_result = down
    worker._wake.set()
    worker._sleep_until_next()
    assert worker.next_cycle_wall == clock.wall() + 100.0  # woken when the venue is back
