"""The venue outage, short form: 20 accounts on a Kraken that answers 503 for 20 s, 5 on Binance.

One real bot.py (nija_testkit/reliability/venue_outage.py): Kraken must be declared down
once and probed (not hammered), no account's circuit may open, every Kraken account must
trade again, their resumes spread, and the Binance accounts must not miss a cycle.
scripts/venue_outage.py runs the full form (100 accounts, 5 minutes).
"""

from __future__ import annotations

import pytest

from nija_testkit.reliability.venue_outage import OutageConfig, OutageReport, run_outage

# One report for the module (its fixture takes ~36 s): its tests run together.
pytestmark = pytest.mark.long(36)

CFG = OutageConfig(
    accounts=20,
    healthy_accounts=5,
    outage_seconds=20.0,  # about 50 s in all: warm-up ~12 s, recovery ~10 s, stop ~3 s
    interval=3.0,
    probe_seconds=2.0,
    resume_seconds=3.0,
    warmup_timeout=60.0,
    recovery_timeout=30.0,
)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> OutageReport:
    return run_outage(CFG, tmp_path_factory.mktemp("venue-outage"))


def test_every_promise_held(report):
    assert report.ok, report.problems


def test_the_down_venue_is_probed_not_hammered(report):
    assert report.detected_s is not None and report.detected_s < CFG.interval * 2
    # Before: at most a cycle's worth of the accounts' own calls (two candles each).
    assert report.requests_before_down <= 2 * CFG.accounts
    probes = report.probes_after_down
    # Probed all along (a loaded machine stretches the jittered intervals: a loose floor),
    # and never more often than one probe per jittered interval.
    assert CFG.outage_seconds / (CFG.probe_seconds * 2) - 1 <= probes
    assert probes <= CFG.outage_seconds / (CFG.probe_seconds * 0.8) + 1
    assert report.requests_after_down <= probes + CFG.accounts  # plus the calls in flight
    assert report.venue_down_lines == report.venue_up_lines == 1


def test_no_breaker_opened_and_every_account_resumed_spread_out(report):
    assert report.circuits_opened == []
    assert report.not_back == []
    spread = report.resume_spread()
    assert spread["last"] - spread["first"] >= CFG.resume_seconds / 2  # not all at once
    assert report.busiest_second < CFG.accounts


def test_the_other_venue_missed_nothing(report):
    assert report.healthy_missed == 0
    assert report.healthy_cycles >= CFG.healthy_accounts * CFG.outage_seconds / CFG.interval / 2
