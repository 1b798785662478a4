"""The running daemon as an operator handles it: resetting one account with nija_ctl.py,
and the state database going missing under it, or being new in live mode."""

from __future__ import annotations

import os

from nija_testkit.emulator.server import Fault
from nija_testkit.harness import (
    DaemonRun,
    account_env,
    clean_env,
    run_ctl,
    start_daemon,
    wait_for,
)

PLATFORM = "platform/platform/KRAKEN"
BOB = "user/bob/KRAKEN"
# A second Kraken account on the same emulator (Kraken secrets are base64).
BOB_KEY, BOB_SECRET = "FAKE-KRAKEN-KEY-BOB-0002", "RkFLRUJPQlNFQ1JFVDAyRkFLRUJPQlNFQ1I="


def started(run: DaemonRun) -> None:
    wait_for(lambda: run.status().get("pid") == run.proc.pid, 20, "the daemon's status.json")


def test_nija_ctl_resets_one_account_of_the_running_daemon(venue_handle, tmp_path):
    kraken = venue_handle("KRAKEN")
    kraken.venue.add_account(BOB_KEY, BOB_SECRET, {"USD": 10_000.0})
    # The platform key is refused (as if its permissions were revoked): FAILING at start.
    refused = Fault("status", 401, api_key=kraken.credentials.api_key)
    kraken.server.inject("balance", refused)
    env = clean_env(NIJA_CYCLE_SECONDS="1", NIJA_FUNDED_RECHECK_SECONDS="600")
    env |= account_env("KRAKEN", None, kraken.credentials) | {"KRAKEN_BASE_URL": kraken.server.url}
    env |= {"KRAKEN_USER_BOB_API_KEY": BOB_KEY, "KRAKEN_USER_BOB_API_SECRET": BOB_SECRET}
    run = start_daemon(env, tmp_path)
    try:
        wait_for(lambda: run.account(PLATFORM).get("health") == "failing", 30, "failing")
        wait_for(lambda: run.account(BOB).get("cycles", 0) >= 1, 30, "bob trading")

        # The key works again; the reset brings the account back without a restart.
        kraken.server.clear_faults()
        code, report = run_ctl(tmp_path, run.data_dir, "reset", PLATFORM)
        assert code == 0, report
        assert (report["outcome"], report["before"], report["after"]) == (
            "done",
            "failing",
            "healthy",
        )
        assert report["daemon_pid"] == run.proc.pid
        # Its funds are checked at once (the periodic re-check is 10 minutes away).
        wait_for(lambda: run.account(PLATFORM).get("cycles", 0) >= 1, 30, "platform trading")
        (audit,) = [e for e in run.events() if e.event == "control_request"]
        assert audit.account == PLATFORM and audit.fields["outcome"] == "done"
        # The other account was never touched.
        bob = run.account(BOB)
        assert bob["restarts"] == 0 and bob["thread"] == "running" and bob["health"] == "healthy"

        code, report = run_ctl(tmp_path, run.data_dir, "reset", "user/nobody/KRAKEN")
        assert code == 2 and report["outcome"] == "unknown_account"
        assert PLATFORM in report["message"] and BOB in report["message"]
        code, report = run_ctl(tmp_path, run.data_dir, "reset", "not-an-account")
        assert code == 2 and "type/id/BROKER" in report["message"]
    finally:
        assert run.stop() == 0
    code, report = run_ctl(tmp_path, run.data_dir, "reset", PLATFORM)
    assert code == 1 and "no NIJA daemon is running" in report["message"]


def test_a_vanished_database_holds_new_positions_until_it_is_back(tmp_path):
    run = start_daemon(clean_env(), tmp_path)  # no keys: the demo, in paper mode
    try:
        started(run)
        db = run.data_dir / "nija-paper.db"
        aside = db.with_name("moved-aside.db")
        os.rename(db, aside)
        wait_for(lambda: run.status().get("entries_held"), 30, "entries held")
        assert "is missing" in run.status()["entries_held"]
        (missing,) = [e for e in run.events() if e.event == "state_database_missing"]
        assert missing.level == "error" and missing.fields["path"] == str(db)
        os.rename(aside, db)
        wait_for(lambda: any(e.event == "state_database_back" for e in run.events()), 30, "back")
        # status.json follows the log line within a tick and a write (a race under load).
        wait_for(lambda: run.status().get("entries_held", "") is None, 10, "entries released")
        assert run.alive()
    finally:
        assert run.stop() == 0


def test_a_new_or_empty_database_in_live_mode_is_a_warning(venue_handle, tmp_path):
    kraken = venue_handle("KRAKEN")
    db = tmp_path / "data" / "nija-live.db"
    db.parent.mkdir()
    db.touch()  # 0 bytes: SQLite would silently take it for a new database
    env = clean_env(NIJA_MODE="live", NIJA_DATA_DIR=str(db.parent))
    env |= account_env("KRAKEN", None, kraken.credentials) | {"KRAKEN_BASE_URL": kraken.server.url}
    run = start_daemon(env, tmp_path)
    try:
        wait_for(lambda: any(e.event == "nija_starting" for e in run.events()), 20, "the start")
    finally:
        assert run.stop() == 0
    (new,) = [e for e in run.events() if e.event == "state_database_new"]
    assert new.level == "warning" and new.fields["path"] == str(db)
    assert "empty" in new.fields["found"] and "reconciliation" in new.fields["note"]
