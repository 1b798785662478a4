"""/metrics (checked by promtool), /healthz and /readyz, over real HTTP."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.api.probes import LIVENESS_SECONDS, readiness
from bot.api.server import OS_THREAD_NAME
from bot.isolation.failures import FailureType
from nija_testkit.process_stats import thread_cpu_seconds
from tests.api.conftest import ALICE, BOB, TOKEN, ApiDaemon, wait_for

PROMTOOL_PACKAGE = "prometheus"  # Debian's package ships promtool
PER_ACCOUNT_SERIES = 14  # see docs/OPERATIONS.md, "Cardinality"
PER_VENUE_SERIES = 23  # two histograms (8 buckets, +Inf, _sum, _count each) and venue up
DAEMON_SERIES = 12  # 5 health states, 3 ended and 3 unresolved order statuses, 1 database
KRAKEN = (("broker", "KRAKEN"),)


def scrape(daemon: ApiDaemon) -> dict[str, dict[tuple, float]]:
    """Every sample of one scrape: name -> {sorted label pairs: value}."""
    answer = daemon.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(answer.text):
        for s in family.samples:
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return samples


def acct(key: str, broker: str = "KRAKEN", **more: str) -> tuple:
    return tuple(sorted({"account": key, "broker": broker, **more}.items()))


def test_metrics_read_the_daemon_at_scrape_time(daemon):
    for _ in range(5):
        daemon.isolation.record_failure("user", "bob", "KRAKEN", ConnectionError("venue down"))
    daemon.post(f"/api/v1/accounts/{ALICE}/pause")
    wait_for(lambda: daemon.isolation.get_all_account_statuses()[BOB]["not_permitted_calls"] > 0,
             what="bob refused by his open circuit")  # fmt: skip
    # ...and that blocked cycle ended (its result replaces the one with his equity).
    wait_for(lambda: (r := daemon.worker(BOB).last_result) and r.blocked_reason,
             what="bob's blocked cycle ended")  # fmt: skip
    m = scrape(daemon)
    state = m["nija_circuitbreaker_state"]
    assert state[acct(BOB, state="open")] == 1 and state[acct(BOB, state="closed")] == 0
    assert state[acct(ALICE, state="closed")] == 1
    assert m["nija_calls_total"][acct(BOB, kind="failed")] == 5
    assert m["nija_calls_total"][acct(ALICE, kind="successful")] > 0
    assert m["nija_not_permitted_calls_total"][acct(BOB)] >= 1
    assert m["nija_not_permitted_calls_total"][acct(ALICE)] == 0
    assert m["nija_account_health"][(("state", "quarantined"),)] == 1
    assert m["nija_account_health"][(("state", "healthy"),)] == 1
    assert m["nija_account_paused"] == {acct(ALICE): 1, acct(BOB): 0}
    assert m["nija_cycles_total"][acct(ALICE)] >= 1
    # The histograms are per venue: every cycle and call of its accounts.
    assert m["nija_cycle_seconds_count"][KRAKEN] >= m["nija_cycles_total"][acct(ALICE)] + 1
    assert (
        m["nija_cycle_seconds_bucket"][(("broker", "KRAKEN"), ("le", "+Inf"))]
        == m["nija_cycle_seconds_count"][KRAKEN]
    )
    assert KRAKEN in m["nija_call_seconds_count"]  # 0 here: a fake clock times nothing
    assert m["nija_last_cycle_duration_seconds"][acct(ALICE)] == 0.0  # the fake clock stood
    assert m["nija_last_cycle_timestamp_seconds"][acct(ALICE)] == daemon.clock.wall()
    assert m["nija_open_positions"][acct(ALICE)] == 0
    assert m["nija_equity_usd"][acct(ALICE)] == 10_000.0
    assert m["nija_realized_pnl_usd"][acct(ALICE)] == 0 and m["nija_fees_usd_total"][acct(BOB)] == 0
    assert m["nija_state_database_readable"][()] == 1
    assert set(m["nija_orders_total"]) == {(("status", s),) for s in ("filled", "canceled",
                                                                        "rejected")}  # fmt: skip
    assert m["nija_venue_up"] == {(("venue", "KRAKEN"),): 1}  # the daemon's venue layer
    assert "process_cpu_seconds_total" in m
    # docs/OPERATIONS.md's cardinality: at most 14 series per account, 23 per venue, 12 more.
    per_account = sum(1 for samples in m.values() for labels in samples
                      if ("account", ALICE) in labels)  # fmt: skip
    nija = {name: samples for name, samples in m.items() if name.startswith("nija_")}
    assert per_account == PER_ACCOUNT_SERIES
    assert acct(BOB) not in m["nija_equity_usd"]  # unknown: his open circuit blocked the cycle
    total = 2 * PER_ACCOUNT_SERIES + PER_VENUE_SERIES + DAEMON_SERIES - 1
    assert sum(map(len, nija.values())) == total


def test_a_value_that_changed_since_the_last_scrape_is_in_the_next(daemon):
    first = scrape(daemon)  # the writer keeps each family's text for the next scrape
    assert first["nija_account_paused"][acct(BOB)] == 0
    assert first["nija_calls_total"][acct(ALICE, kind="failed")] == 0
    daemon.post(f"/api/v1/accounts/{BOB}/pause")
    daemon.isolation.record_failure("user", "alice", "KRAKEN", ConnectionError("venue down"))
    second = scrape(daemon)
    assert second["nija_account_paused"] == {acct(ALICE): 0, acct(BOB): 1}
    assert second["nija_calls_total"][acct(ALICE, kind="failed")] == 1
    assert second["nija_account_health"][(("state", "degraded"),)] == 1
    daemon.post(f"/api/v1/accounts/{BOB}/resume")
    assert scrape(daemon)["nija_account_paused"][acct(BOB)] == 0


def test_a_venues_histograms_count_each_call_and_cycle_by_the_next_scrape(daemon):
    before = scrape(daemon)
    le_half = (("broker", "KRAKEN"), ("le", "0.5"))
    daemon.isolation.record_success("user", "alice", "KRAKEN", 300.0)  # a 300 ms call
    daemon.isolation.record_success("user", "bob", "KRAKEN", 7000.0)  # a 7 s call
    after = scrape(daemon)
    assert after["nija_call_seconds_count"][KRAKEN] == before["nija_call_seconds_count"][KRAKEN] + 2
    assert (
        after["nija_call_seconds_bucket"][le_half]
        == before["nija_call_seconds_bucket"][le_half] + 1
    )
    assert after["nija_call_seconds_sum"][KRAKEN] == pytest.approx(
        before["nija_call_seconds_sum"][KRAKEN] + 7.3
    )
    cycles = after["nija_cycle_seconds_count"][KRAKEN]
    wait_for(lambda: daemon.worker(ALICE).cycles + daemon.worker(BOB).cycles > cycles + 1,
             what="two more cycles")  # fmt: skip
    assert scrape(daemon)["nija_cycle_seconds_count"][KRAKEN] >= cycles + 2


def test_a_database_that_cannot_be_read_is_a_metric_not_a_failed_scrape(daemon):
    daemon.sup.db.path.rename(daemon.sup.db.path.with_name("aside.db"))
    m = scrape(daemon)
    assert m["nija_state_database_readable"][()] == 0
    assert "nija_fees_usd_total" not in m and "nija_cycles_total" in m


def test_the_exposition_passes_promtool_check_metrics(daemon):
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"promtool is missing in CI: install the Debian package {PROMTOOL_PACKAGE}")
        pytest.skip(f"promtool not installed (Debian package: {PROMTOOL_PACKAGE})")
    daemon.post(f"/api/v1/accounts/{BOB}/pause")
    text = daemon.get("/metrics").text
    done = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "nija_call_seconds_bucket" in text and "nija_cycle_seconds_bucket" in text


# -- probes ------------------------------------------------------------------------------------


def test_healthz_is_live_while_the_supervisor_loop_runs(tmp_path):
    d = ApiDaemon(tmp_path, NIJA_HTTP_TOKEN=TOKEN).start()
    try:
        first = d.get("/healthz", token=None)
        assert first.status_code == 200 and first.json()["reason"] == "starting"
        d.sup.watchdog_tick()
        assert d.get("/healthz", token=None).json()["reason"] == "alive"
        d.clock.advance(LIVENESS_SECONDS + 1)  # the loop stopped running
        stale = d.get("/healthz", token=None)
        assert stale.status_code == 503 and "last ran 11s ago" in stale.json()["reason"]
        d.sup.watchdog_tick()
        assert d.get("/healthz", token=None).status_code == 200
    finally:
        d.stop()


def test_readyz_waits_for_start_up_and_reconciliation_but_not_for_an_open_circuit(tmp_path):
    d = ApiDaemon(tmp_path, NIJA_HTTP_TOKEN=TOKEN)
    assert readiness(d.sup).reason.startswith("starting")  # the funds check has not run
    try:
        d.start()
        wait_for(lambda: d.worker(ALICE).reconciled and d.worker(BOB).reconciled, what="both")
        ready = d.get("/readyz", token=None)
        assert ready.status_code == 200 and ready.json()["trading"] == 2
        d.worker(BOB).reconciled = False  # as after a reload: reconciling again
        d.worker(BOB).request_stop()  # so no cycle reconciles it under the test
        wait_for(lambda: not d.worker(BOB).alive(), what="bob's thread ended")
        d.worker(BOB).reconciled = False
        waiting = d.get("/readyz", token=None)
        assert waiting.status_code == 503 and waiting.json()["reconciling"] == 1
        assert BOB not in waiting.text  # counts only: this probe needs no token
        d.isolation.record_failure(
            "user", "bob", "KRAKEN", PermissionError("revoked"), FailureType.AUTHENTICATION_ERROR
        )
        blocked = d.get("/readyz", token=None).json()
        assert blocked["status"] == "ready" and blocked["circuit_open"] == 1
    finally:
        d.stop()


def test_the_api_threads_carry_their_own_os_name(daemon):
    """top -H shows them apart, and bench_api.py counts their CPU as the API's."""
    assert daemon.get("/metrics").status_code == 200  # a handler thread has run
    names = [name for name, _cpu in thread_cpu_seconds(os.getpid()).values()]
    assert names.count(OS_THREAD_NAME) >= 2  # the server's loop and its handler threads


def test_an_unknown_position_count_has_no_sample_rather_than_zero(daemon):
    daemon.post(f"/api/v1/accounts/{ALICE}/pause")  # no more cycles replace her last result
    worker = daemon.worker(ALICE)
    wait_for(lambda: worker.last_result is not None, what="alice's first cycle")
    assert acct(ALICE) in scrape(daemon)["nija_open_positions"]
    # Her last cycle could not read the store: the count is unknown.
    worker.last_result = dataclasses.replace(worker.last_result, positions_open=None)
    positions = scrape(daemon)["nija_open_positions"]
    assert acct(ALICE) not in positions and acct(BOB) in positions
