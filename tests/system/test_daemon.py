"""The real bot.py in a subprocess against the emulators: five accounts, three of them broken.

Coinbase and Alpaca are healthy; Kraken's balance call hangs; Binance answers 500 on
candles (the venue's public data: its failure, never the account's); OKX has bad
credentials; a user account is half-configured. The healthy accounts must start at once
and keep their rhythm, every account's true state must show in status.json and nija.log,
and SIGTERM must stop it all within 10 s.
"""

from __future__ import annotations

import dataclasses
import itertools
import statistics
import time

import pytest

from nija_testkit.emulator.server import Fault
from nija_testkit.emulator.venues import VenueHandle
from nija_testkit.harness import account_env, clean_env, start_daemon, wait_for
from nija_testkit.secrets import assert_no_secret

HALF_SET_KEY = "FAKE-CAROL-KEY-HALF-SET"
WRONG_PASSPHRASE = "WRONG-PASSPHRASE-FAKE"


@pytest.fixture
def venues(venue_handle) -> dict[str, VenueHandle]:
    """The five emulators, fresh (the run shares the servers: tests/conftest.py)."""
    return {name: venue_handle(name) for name in ("COINBASE", "ALPACA", "KRAKEN", "BINANCE", "OKX")}


def daemon_env(venues: dict[str, VenueHandle]) -> dict[str, str]:
    """A platform account on each emulator (OKX's passphrase wrong) and a half-set user."""
    env = clean_env(
        NIJA_CYCLE_SECONDS="1",
        NIJA_CALL_TIMEOUT_SECONDS="2",
        NIJA_CB_FAILURE_THRESHOLD="3",
        NIJA_CB_TIMEOUT_SECONDS="3",
        NIJA_FUNDED_RECHECK_SECONDS="30",
        NIJA_STATUS_LOG_SECONDS="3",
        # 1 s cycles for a minute: past Alpaca's per-key budget (100 a minute) on purpose;
        # the rhythm measured here is the isolation's (budgets: test_funded_check.py).
        NIJA_REQUEST_BUDGETS="false",
        NIJA_VENUE_PROBE_SECONDS="2",  # a venue whose public data fails is probed every 2 s
        NIJA_VENUE_RESUME_SECONDS="1",
        KRAKEN_USER_CAROL_API_KEY=HALF_SET_KEY,
    )
    for name, handle in venues.items():
        creds = handle.credentials
        if name == "OKX":
            creds = dataclasses.replace(creds, passphrase=WRONG_PASSPHRASE)
        env |= account_env(name, None, creds)
        env[f"{name}_BASE_URL"] = handle.server.url
    env["ALPACA_DATA_URL"] = venues["ALPACA"].server.url
    return env


def test_broken_accounts_never_hold_up_the_healthy_ones(venues, tmp_path):
    for handle in venues.values():
        handle.reset()
    venues["KRAKEN"].server.inject("balance", Fault("hang", seconds=30))
    venues["BINANCE"].server.inject("candles", Fault("status", 500))
    console = tmp_path / "console.log"
    run = start_daemon(daemon_env(venues), tmp_path, output=console)
    try:
        healthy = ("platform/platform/COINBASE", "platform/platform/ALPACA")
        wait_for(
            lambda: all(run.account(k).get("cycles", 0) >= 3 for k in healthy),
            20,
            "healthy cycles",
        )

        # The healthy accounts started at once, not after Kraken's hung balance call.
        evs = run.events()
        t0 = next(e.at for e in evs if e.event == "nija_starting")
        for key in healthy:
            started = next(
                e.at for e in evs if e.event == "INDEPENDENT_thread_started" and e.account == key
            )
            assert (started - t0).total_seconds() < 2.0, key

        # Bad credentials: FAILING at once.
        okx = wait_for(
            lambda: (
                run.account("platform/platform/OKX").get("health") == "failing"
                and run.account("platform/platform/OKX")
            ),
            15,
            "OKX failing",
        )
        assert okx["circuit"] == "open" and okx["thread"] == "not_started" and not okx["funded"]
        # 500s on Binance's candles: the venue's failure. Its public data fails a few times
        # in a row, so the venue is down and its account parked: healthy, nothing charged to
        # it, and no candle request of its own to retry (the venue's probe asks instead).
        wait_for(
            lambda: run.status().get("venues", {}).get("BINANCE", {}).get("state") == "down",
            15,
            "Binance down",
        )
        binance = run.account("platform/platform/BINANCE")
        assert binance["health"] == "healthy" and binance["failure_breakdown"] == {}
        assert binance["venue_state"] == "down"
        failed = venues["BINANCE"].server.requests_to("candles")
        assert 0 < len(failed) <= 3 * 2 + 2  # one per symbol and back-off, not one per cycle
        kraken = wait_for(
            lambda: run.account("platform/platform/KRAKEN").get("last_error"),
            15,
            "Kraken timeout",
        )
        assert "Timeout" in kraken and not run.account("platform/platform/KRAKEN")["funded"]

        # Lift Binance's fault: the probe finds its candles back, the account trades again.
        venues["BINANCE"].server.clear_faults()
        wait_for(
            lambda: run.account("platform/platform/BINANCE").get("marks"),
            20,
            "Binance priced again",
        )
        assert not [
            e
            for e in run.events()
            if e.event == "INDEPENDENT_health_changed" and e.account == "platform/platform/BINANCE"
        ]

        # Every account's true state, and the half-set account named by its missing variable.
        doc = run.status()
        assert doc["mode"] == "paper" and doc["pid"] == run.proc.pid and doc["demo"] is False
        (carol,) = doc["config_errors"]
        assert (
            carol["account"] == "user/carol/KRAKEN"
            and "KRAKEN_USER_CAROL_API_SECRET" in carol["error"]
        )
        for key in healthy:
            assert doc["accounts"][key]["health"] == "healthy"
            assert doc["accounts"][key]["thread"] == "running"
        assert doc["isolation_report"]["isolation_guarantee"] == "ACTIVE"

        # The healthy accounts kept their rhythm: cycles every 1 s (±10%), measured from nija.log
        # over at least five cycles (the broken accounts' states above may all show sooner).
        wait_for(
            lambda: all(run.account(k).get("cycles", 0) >= 5 for k in healthy),
            20,
            "five cycles of each healthy account",
        )
        for key in healthy:
            times = [e.at for e in run.events() if e.event == "cycle" and e.account == key]
            periods = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
            assert len(periods) >= 4, key
            assert abs(statistics.median(periods) - 1.0) <= 0.1, (key, periods)

        # Paper mode (the default) never sent an order to any venue.
        for handle in venues.values():
            assert handle.server.requests_to("create_order") == []
    finally:
        sent = time.monotonic()
        code = run.stop(timeout=15)
        took = time.monotonic() - sent
    output = console.read_text(errors="replace")
    assert code == 0 and took < 10.0, (code, took, output[-2000:])
    assert run.events()[-1].event == "stopped"
    final = run.status()
    assert final["accounts"]["platform/platform/COINBASE"]["cycles"] >= 3

    # No secret of the suite reached the log, status.json or the console.
    everything = run.log_path.read_text() + (run.data_dir / "status.json").read_text() + output
    secrets = [s for handle in venues.values() for s in handle.credentials.secrets()]
    assert_no_secret(everything, secrets=[*secrets, HALF_SET_KEY, WRONG_PASSPHRASE])


def test_a_thread_killed_by_an_unexpected_exception_is_restarted(venues, tmp_path):
    alpaca = venues["ALPACA"]
    alpaca.reset()
    env = clean_env(NIJA_CYCLE_SECONDS="1", NIJA_CALL_TIMEOUT_SECONDS="2")
    env |= account_env("ALPACA", None, alpaca.credentials)
    env |= {"ALPACA_BASE_URL": alpaca.server.url, "ALPACA_DATA_URL": alpaca.server.url}
    run = start_daemon(env, tmp_path, chaos=True)
    key = "platform/platform/ALPACA"
    try:
        wait_for(lambda: run.account(key).get("cycles", 0) >= 1, 20, "first cycle")
        run.chaos(thread_crash=[key])
        wait_for(
            lambda: any(e.event == "INDEPENDENT_thread_died" for e in run.events()), 10, "death"
        )
        run.chaos()
        wait_for(lambda: run.account(key).get("restarts", 0) >= 1, 15, "restart")
        before = run.account(key)["cycles"]
        wait_for(lambda: run.account(key).get("cycles", 0) > before, 10, "cycles after restart")
        assert run.account(key)["thread"] == "running"
        died = [e for e in run.events() if e.event == "INDEPENDENT_thread_crashed"]
        assert died and "unexpected exception kills the thread" in died[0].fields["error"]
        assert run.account(key)["failure_breakdown"].get("unknown_error", 0) >= 1
    finally:
        assert run.stop() == 0
