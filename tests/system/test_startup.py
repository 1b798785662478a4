"""bot.py's start and stop as an operator meets them.

One daemon per data directory; single-account mode that would trade nothing; start-up
errors as one line and exit 2 (never a traceback, never a restart loop); SIGHUP and a
second Ctrl-C; the word after an unclean stop. With no keys set bot.py runs the demo.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nija_testkit.emulator.server import Fault
from nija_testkit.harness import (
    ROOT,
    DaemonRun,
    account_env,
    clean_env,
    parse_log,
    script_env,
    start_daemon,
    wait_for,
)


def run_bot(tmp_path: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """``bot.py`` with no keys (the demo), data and log under ``tmp_path`` unless given."""
    paths = {"NIJA_DATA_DIR": str(tmp_path / "data"), "NIJA_LOG_FILE": str(tmp_path / "nija.log")}
    env = clean_env(**(paths | settings))
    return subprocess.run(
        [sys.executable, "bot.py", "--env-file", str(tmp_path / "none"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=15,
    )


def started(run: DaemonRun) -> None:
    """Wait until the daemon has written its first status.json."""
    wait_for(lambda: run.status().get("pid") == run.proc.pid, 20, "the daemon's status.json")


def events(tmp_path: Path, name: str) -> list:
    return [e for e in parse_log(tmp_path / "nija.log") if e.event == name]


def test_a_second_daemon_on_the_same_data_dir_exits_2_naming_the_first(tmp_path):
    first = start_daemon(clean_env(), tmp_path)
    try:
        started(first)
        second = run_bot(tmp_path)
        assert second.returncode == 2, second.stderr[-2000:]
        assert f"pid {first.proc.pid}" in second.stderr and "NIJA_DATA_DIR" in second.stderr
        assert second.stderr.count("\n") == 1 and "Traceback" not in second.stderr
        assert (first.data_dir / "nija.lock").read_text().strip() == str(first.proc.pid)
        # Only the first one runs: one banner in the shared log, and its pid in status.json.
        assert len([e for e in first.events() if e.event == "nija_starting"]) == 1
        assert first.alive() and first.status()["pid"] == first.proc.pid
        # The check scripts never take the lock: they read the running daemon's status.
        no_env = str(tmp_path / "none")
        check = subprocess.run(
            [sys.executable, "check_independent_broker_status.py", "--json", "--env-file", no_env],
            cwd=ROOT,
            env=script_env(clean_env(NIJA_DATA_DIR=str(first.data_dir))),
            capture_output=True,
            text=True,
            timeout=30,
        )
        report = json.loads(check.stdout)
        assert check.returncode in (0, 1) and report["daemon"]["running"] is True
        assert report["daemon"]["pid"] == first.proc.pid
    finally:
        assert first.stop() == 0


def test_single_account_mode_without_an_account_of_the_primary_broker_exits_2(tmp_path):
    done = run_bot(tmp_path, "--once", MULTI_BROKER_INDEPENDENT="false", NIJA_PRIMARY_BROKER="OKX")
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    for name in ("MULTI_BROKER_INDEPENDENT", "NIJA_PRIMARY_BROKER=OKX"):
        assert name in done.stderr
    (failed,) = events(tmp_path, "startup_failed")
    assert "NIJA_PRIMARY_BROKER=OKX" in failed.fields["error"]
    assert not (tmp_path / "data" / "status.json").exists()  # nothing ran


def test_single_account_mode_says_which_account_it_chose_and_why(tmp_path):
    done = run_bot(tmp_path, "--once", MULTI_BROKER_INDEPENDENT="false")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (chosen,) = events(tmp_path, "single_account_chosen")
    assert "NIJA_PRIMARY_BROKER not set" in chosen.fields["reason"]
    status = json.loads((tmp_path / "data" / "status.json").read_text())
    traded = [key for key, acct in status["accounts"].items() if acct["cycles"]]
    assert traded == [chosen.account]


def _corrupt_database(tmp_path: Path) -> tuple[dict[str, str], Path, str]:
    db = tmp_path / "data" / "nija-paper.db"
    db.parent.mkdir()
    db.write_bytes(b"this was never a SQLite database\n" * 64)
    return {}, db, "move the file aside"


def _data_dir_is_a_file(tmp_path: Path) -> tuple[dict[str, str], Path, str]:
    path = tmp_path / "data"
    path.write_text("not a directory")
    return {}, path, "NIJA_DATA_DIR"


def _data_dir_read_only(tmp_path: Path) -> tuple[dict[str, str], Path, str]:
    if os.geteuid() == 0:
        pytest.skip("root writes into a read-only directory")
    path = tmp_path / "data"
    path.mkdir(mode=0o555)
    return {}, path, "NIJA_DATA_DIR"


def _log_path_unwritable(tmp_path: Path) -> tuple[dict[str, str], Path, str]:
    path = tmp_path / "logs-are-a-directory"
    path.mkdir()
    return {"NIJA_LOG_FILE": str(path)}, path, "NIJA_LOG_FILE"


@pytest.mark.parametrize(
    "make", [_corrupt_database, _data_dir_is_a_file, _data_dir_read_only, _log_path_unwritable]
)
def test_a_fatal_start_up_error_is_one_line_and_exit_2(tmp_path, make):
    settings, path, fix = make(tmp_path)
    done = run_bot(tmp_path, "--once", **settings)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Traceback" not in done.stdout + done.stderr
    (line,) = done.stderr.splitlines()
    assert str(path) in line and fix in line, line
    if "NIJA_LOG_FILE" not in settings:  # where the log can be written, the line is there too
        (failed,) = events(tmp_path, "startup_failed")
        assert str(path) in failed.fields["error"] and fix in failed.fields["error"]


def test_sighup_stops_the_daemon_gracefully_and_says_so(tmp_path):
    run = start_daemon(clean_env(), tmp_path)
    started(run)
    run.proc.send_signal(signal.SIGHUP)
    assert run.proc.wait(timeout=15) == 0
    (received,) = [e for e in run.events() if e.event == "signal_received"]
    assert received.fields == {"signal": "SIGHUP", "action": "stopping"}
    assert run.events()[-1].event == "stopped"
    assert (run.data_dir / "nija.lock").read_text() == ""  # a clean stop leaves no pid


def test_after_an_unclean_stop_the_next_start_says_so(tmp_path):
    killed = start_daemon(clean_env(), tmp_path)
    started(killed)
    killed.kill()
    assert run_bot(tmp_path, "--once").returncode == 0
    (unclean,) = events(tmp_path, "unclean_previous_stop")
    assert unclean.level == "warning" and unclean.fields["previous_pid"] == str(killed.proc.pid)
    message = f"previous run (pid {killed.proc.pid}) did not stop cleanly; reconciling"
    assert unclean.fields["message"] == message
    # That run stopped cleanly: the next one has nothing to say.
    assert run_bot(tmp_path, "--once").returncode == 0
    assert len(events(tmp_path, "unclean_previous_stop")) == 1


def test_a_second_ctrl_c_during_the_stop_forces_the_exit_and_says_so(venue_handle, tmp_path):
    kraken = venue_handle("KRAKEN")
    # Live: every cycle asks the venue for the account's balance (candles are the venue's,
    # asked once per candle close, not by every cycle).
    env = clean_env(NIJA_MODE="live", NIJA_CYCLE_SECONDS="1", NIJA_CALL_TIMEOUT_SECONDS="20")
    env |= account_env("KRAKEN", None, kraken.credentials) | {"KRAKEN_BASE_URL": kraken.server.url}
    run = start_daemon(env, tmp_path)
    try:
        wait_for(lambda: run.account("platform/platform/KRAKEN").get("cycles"), 20, "a cycle")
        asked = len(kraken.server.requests_to("balance"))
        kraken.server.inject("balance", Fault("hang", seconds=20))
        wait_for(lambda: len(kraken.server.requests_to("balance")) > asked, 10, "a hung call")
        run.proc.send_signal(signal.SIGINT)  # the stop waits for the thread in its call...
        wait_for(lambda: any(e.event == "signal_received" for e in run.events()), 5, "stop")
        run.proc.send_signal(signal.SIGINT)  # ...unless Ctrl-C comes again
        assert run.proc.wait(timeout=10) == 130  # at once; 10 s for a loaded machine
    finally:
        if run.alive():
            run.kill()
    (forced,) = [e for e in run.events() if e.event == "forced_exit"]
    assert forced.level == "warning" and forced.fields["signal"] == "SIGINT"
    assert (run.data_dir / "nija.lock").read_text().strip() == str(run.proc.pid)
