"""The real bot.py in a subprocess against the emulators: five accounts, three of them broken.

Coinbase and Alpaca are healthy; Kraken's balance call hangs; Binance answers 500 on
candles; OKX has bad credentials; a user account is half-configured. The healthy
accounts must start at once and keep their rhythm, every account's true state must
show in status.json and nija.log, and SIGTERM must stop it all within 10 s.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from nija_testkit.emulator.server import Fault
from nija_testkit.emulator.venues import start_venue

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^(\S+) level=(\w+)(?: account=(\S+))? event=(\S+)(.*)$")


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    """Poll ``predicate`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def events(log: Path) -> list[tuple[datetime, str, str | None, str, str]]:
    """(time, level, account, event, rest) for every line of nija.log."""
    found = []
    for raw in log.read_text().splitlines() if log.exists() else []:
        m = LINE.match(raw)
        if m:
            ts, level, account, event, rest = m.groups()
            found.append(
                (datetime.fromisoformat(ts.replace("Z", "+00:00")), level, account, event, rest)
            )
    return found


def status(data: Path) -> dict:
    try:
        return json.loads((data / "status.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def account(data: Path, key: str) -> dict:
    return status(data).get("accounts", {}).get(key, {})


@pytest.fixture(scope="module")
def venues():
    handles = {
        name: start_venue(name) for name in ("COINBASE", "ALPACA", "KRAKEN", "BINANCE", "OKX")
    }
    yield handles
    for handle in handles.values():
        handle.stop()


def daemon_env(venues, tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NIJA_", "COINBASE", "KRAKEN", "OKX", "BINANCE", "ALPACA", "MULTI_"))
    }
    env.update(
        NIJA_DATA_DIR=str(tmp_path / "data"),
        NIJA_LOG_FILE=str(tmp_path / "nija.log"),
        NIJA_CYCLE_SECONDS="1",
        NIJA_CALL_TIMEOUT_SECONDS="2",
        NIJA_CB_FAILURE_THRESHOLD="3",
        NIJA_CB_TIMEOUT_SECONDS="3",
        NIJA_FUNDED_RECHECK_SECONDS="30",
        NIJA_STATUS_LOG_SECONDS="3",
        KRAKEN_USER_CAROL_API_KEY="FAKE-CAROL-KEY-HALF-SET",
    )
    for name, handle in venues.items():
        creds = handle.credentials
        env[f"{name}_API_KEY"] = creds.api_key
        env[f"{name}_API_SECRET"] = creds.api_secret
        env[f"{name}_BASE_URL"] = handle.server.url
        if creds.passphrase:
            env[f"{name}_PASSPHRASE"] = (
                "WRONG-PASSPHRASE-FAKE" if name == "OKX" else creds.passphrase
            )
    env["ALPACA_DATA_URL"] = venues["ALPACA"].server.url
    return env


def test_broken_accounts_never_hold_up_the_healthy_ones(venues, tmp_path):
    for handle in venues.values():
        handle.reset()
    venues["KRAKEN"].server.inject("balance", Fault("hang", seconds=30))
    venues["BINANCE"].server.inject("candles", Fault("status", 500))
    env = daemon_env(venues, tmp_path)
    data, log = tmp_path / "data", tmp_path / "nija.log"
    proc = subprocess.Popen(
        [sys.executable, "bot.py", "--env-file", str(tmp_path / "no.env")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        healthy = ("platform/platform/COINBASE", "platform/platform/ALPACA")
        wait_for(
            lambda: all(account(data, k).get("cycles", 0) >= 3 for k in healthy),
            20,
            "healthy cycles",
        )

        # The healthy accounts started at once, not after Kraken's hung balance call.
        evs = events(log)
        t0 = next(t for t, _, _, e, _ in evs if e == "nija_starting")
        for key in healthy:
            started = next(t for t, _, a, e, _ in evs if e == "trader_started" and a == key)
            assert (started - t0).total_seconds() < 2.0, key

        # Bad credentials: FAILING at once. 500s: quarantined.
        okx = wait_for(
            lambda: (
                account(data, "platform/platform/OKX").get("health") == "failing"
                and account(data, "platform/platform/OKX")
            ),
            15,
            "OKX failing",
        )
        assert okx["circuit"] == "open" and okx["thread"] == "not_started" and not okx["funded"]
        wait_for(
            lambda: account(data, "platform/platform/BINANCE").get("health") == "quarantined",
            15,
            "Binance quarantined",
        )
        kraken = wait_for(
            lambda: account(data, "platform/platform/KRAKEN").get("last_error"),
            15,
            "Kraken timeout",
        )
        assert "Timeout" in kraken and not account(data, "platform/platform/KRAKEN")["funded"]

        # Lift Binance's fault: after the wait it recovers, through half-open trials.
        venues["BINANCE"].server.clear_faults()
        wait_for(
            lambda: account(data, "platform/platform/BINANCE").get("health") == "healthy",
            20,
            "Binance healthy",
        )
        binance = [
            r
            for _, _, a, e, r in events(log)
            if e == "health_changed" and a == "platform/platform/BINANCE"
        ]
        assert any("new=quarantined" in r for r in binance)
        assert any("new=recovering" in r for r in binance)

        # Every account's true state, and the half-set account named by its missing variable.
        doc = status(data)
        assert doc["mode"] == "paper" and doc["pid"] == proc.pid and doc["demo"] is False
        (carol,) = doc["config_errors"]
        assert (
            carol["account"] == "user/carol/KRAKEN"
            and "KRAKEN_USER_CAROL_API_SECRET" in carol["error"]
        )
        for key in healthy:
            assert doc["accounts"][key]["health"] == "healthy"
            assert doc["accounts"][key]["thread"] == "running"
        assert doc["isolation_report"]["isolation_guarantee"] == "ACTIVE"

        # The healthy accounts kept their rhythm: cycles every 1 s (±10%), measured from nija.log.
        for key in healthy:
            times = [t for t, _, a, e, _ in events(log) if e == "cycle" and a == key]
            periods = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
            assert len(periods) >= 4, key
            assert abs(statistics.median(periods) - 1.0) <= 0.1, (key, periods)

        # Paper mode (the default) never sent an order to any venue.
        for handle in venues.values():
            assert handle.server.requests_to("create_order") == []
    finally:
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)
        took = time.monotonic() - sent
        output = proc.stdout.read().decode()
    assert code == 0 and took < 10.0, (code, took, output[-2000:])
    assert events(log)[-1][3] == "stopped"
    final = status(data)
    assert final["accounts"]["platform/platform/COINBASE"]["cycles"] >= 3

    # No secret of the suite reached the log, status.json or the console.
    everything = log.read_text() + (data / "status.json").read_text() + output
    for handle in venues.values():
        creds = handle.credentials
        for secret in (creds.api_key, creds.api_secret, creds.passphrase):
            if secret:
                for line in secret.splitlines():
                    if len(line) >= 8:
                        assert line not in everything
    assert "FAKE-CAROL-KEY-HALF-SET" not in everything
    assert "WRONG-PASSPHRASE-FAKE" not in everything


def test_a_thread_killed_by_an_unexpected_exception_is_restarted(venues, tmp_path):
    from nija_testkit.harness import account_env, clean_env, start_daemon, wait_for

    alpaca = venues["ALPACA"]
    alpaca.reset()
    env = clean_env(NIJA_CYCLE_SECONDS="0.5", NIJA_CALL_TIMEOUT_SECONDS="2")
    env |= account_env("ALPACA", None, alpaca.credentials)
    env |= {"ALPACA_BASE_URL": alpaca.server.url, "ALPACA_DATA_URL": alpaca.server.url}
    run = start_daemon(env, tmp_path, chaos=True)
    key = "platform/platform/ALPACA"
    try:
        wait_for(lambda: run.account(key).get("cycles", 0) >= 1, 20, "first cycle")
        run.chaos(thread_crash=[key])
        wait_for(lambda: any(e.event == "trader_thread_died" for e in run.events()), 10, "death")
        run.chaos()
        wait_for(lambda: run.account(key).get("restarts", 0) >= 1, 15, "restart")
        before = run.account(key)["cycles"]
        wait_for(lambda: run.account(key).get("cycles", 0) > before, 10, "cycles after restart")
        assert run.account(key)["thread"] == "running"
        died = [e for e in run.events() if e.event == "trader_thread_crashed"]
        assert died and "unexpected exception kills the thread" in died[0].fields["error"]
        assert run.account(key)["failure_breakdown"].get("unknown_error", 0) >= 1
    finally:
        assert run.stop() == 0
