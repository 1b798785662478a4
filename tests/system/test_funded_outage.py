"""The real bot.py starting while Kraken answers 503 to everything, for two funded accounts.

The funded checks pass the venue's gate: their failures put the venue down (``venue_down``),
no account's circuit opens, the checks wait for the venue (``funded_check_waits``) instead of
asking it again, and once it is back both accounts start (the periodic re-check is an hour
off: it is the venue's word that brings them in).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from nija_testkit.emulator.server import Fault
from nija_testkit.harness import ROOT, account_env, clean_env, script_env, start_daemon, wait_for
from nija_testkit.secrets import assert_no_secret

pytestmark = pytest.mark.long(25)

PLATFORM = "platform/platform/KRAKEN"
BOB = "user/bob/KRAKEN"


def test_a_venue_down_at_start_up_opens_no_breaker_and_both_accounts_start_once_back(
    venue_handle, tmp_path
):
    kraken = venue_handle("KRAKEN")
    bob = type(kraken.credentials)("FAKE-KRAKEN-KEY-BOB-0001", "RkFLRUtSQUtFTlNFQ1JFVEJPQg==")
    kraken.venue.add_account(bob.api_key, bob.api_secret, {"USD": 5_000.0})
    kraken.server.inject("*", Fault("status", 503))
    env = clean_env(
        NIJA_CALL_TIMEOUT_SECONDS="3",
        NIJA_CYCLE_SECONDS="30",
        NIJA_FUNDED_RECHECK_SECONDS="3600",
        NIJA_VENUE_PROBE_SECONDS="2",
        NIJA_VENUE_RESUME_SECONDS="2",
        KRAKEN_BASE_URL=kraken.server.url,
        KRAKEN_SYMBOLS="BTC/USD",
    )
    env |= account_env("KRAKEN", None, kraken.credentials) | account_env("KRAKEN", "bob", bob)
    run = start_daemon(env, tmp_path)
    try:
        wait_for(
            lambda: run.status().get("venues", {}).get("KRAKEN", {}).get("state") == "down",
            30,
            "Kraken declared down",
        )
        # Both checks wait for the venue: asked again at its probes, without a request.
        wait_for(
            lambda: (
                {e.account for e in run.events() if e.event == "funded_check_waits"}
                == {PLATFORM, BOB}
            ),
            20,
            "both funded checks waiting for the venue",
        )
        for key in (PLATFORM, BOB):
            # Not funded as far as status.json's boolean goes, but unknown, and it says so.
            wait_for(lambda k=key: run.account(k).get("funds_check") == "waits", 10, "waits")
            entry = run.account(key)
            assert entry["thread"] == "not_started" and not entry["funded"]
            assert entry["circuit"] == "closed" and entry["venue_state"] == "down"
            assert entry["funds_check_reason"].startswith("funds check waits: venue KRAKEN down")
        check = subprocess.run(
            [
                sys.executable,
                "check_independent_broker_status.py",
                "--env-file",
                str(tmp_path / "no"),
            ],
            cwd=ROOT,
            env=script_env(clean_env(NIJA_DATA_DIR=str(run.data_dir))),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert check.returncode == 1, check.stderr
        for key in (PLATFORM, BOB):
            assert f"{key}: funds unknown: funds check waits: venue KRAKEN down" in check.stdout
        assert "not funded" not in check.stdout
        kraken.server.clear_faults()
        for key in (PLATFORM, BOB):
            wait_for(lambda k=key: run.account(k).get("cycles", 0) >= 1, 30, f"{key} trading")
        evs = run.events()
        opened = [
            e
            for e in evs
            if e.event == "INDEPENDENT_health_changed"
            and e.fields.get("new") in ("quarantined", "failing")
        ]
        assert opened == []
        assert [e.event for e in evs if e.event in ("venue_down", "venue_up")] == [
            "venue_down",
            "venue_up",
        ]
        for key in (PLATFORM, BOB):
            entry = run.account(key)
            assert entry["funded"] and entry["thread"] == "running"
            assert entry["circuit"] == "closed" and entry["venue_state"] == "up"
    finally:
        code = run.stop()
    assert code == 0
    everything = run.log_path.read_text() + (run.data_dir / "status.json").read_text()
    assert_no_secret(everything, secrets=[*kraken.credentials.secrets(), *bob.secrets()])
