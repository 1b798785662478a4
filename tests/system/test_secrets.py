"""The real bot.py and check scripts keep the keys secret: venues that echo them, file modes, .env.

Some venues quote the API key in an error ("Invalid key ABC..."). Here the emulators do it
in a JSON error body, an HTML error page and a response header, on balance calls, candles and
orders; no form of any key may then appear in nija.log, the daemon's output, status.json,
the state database's bytes, or what the three check scripts print (text and --json). Candles
are the venue's shared data, asked without a key: Coinbase's echo there has none to quote.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest

from bot.model import Credentials
from bot.store.writer import Store, db_path
from nija_testkit import candles as cs
from nija_testkit.emulator.server import EmulatorServer, Fault
from nija_testkit.emulator.venues import KINDS, VenueHandle, new_pem
from nija_testkit.harness import DaemonRun, account_env, clean_env, start_daemon, wait_for

ROOT = Path(__file__).resolve().parents[2]
CHECKS = (
    "check_independent_broker_status.py",
    "check_broker_status.py",
    "check_active_trading_per_broker.py",
)
# Keys no other text could contain by chance, so that any piece of one is a leak.
CREDENTIALS = {
    "KRAKEN": Credentials(
        "kRk7Qm2ZpX9vT4wN8yB3cL6dF1gH5jS0aE",
        base64.b64encode(b"kraken echo test secret 0123456789").decode(),
    ),
    "BINANCE": Credentials("bN4xQ8mZ2pW7vK3tR9yL5cD1fG6hJ0sA", "bNsEcReT7Qm2ZpX9vT4wN8yB3cL6dF1g"),
    "OKX": Credentials(
        "7f3c9a2e-4b1d-4e8f-9a6c-2d5b8e1f0c3a", "9A8B7C6D5E4F3A2B1C0D9E8F7A6B5C4D", "Ok-Pass-77x"
    ),
    "ALPACA": Credentials("PKQ7M2ZX9VT4WN8YB3CL", "aLpSeC7Qm2ZpX9vT4wN8yB3cL6dF1gH5jS0aE1x"),
    "COINBASE": Credentials(
        "organizations/3f9c2a7e-5b1d-4c8f-9e6a-1d2b3c4d5e6f/apiKeys/8a7b6c5d-4e3f-4a1b-9c8d-7e6f",
        new_pem(),
    ),
}
PIECE = 8  # bot.redact_patterns.MIN_PIECE_LENGTH: the shortest leading or trailing piece it masks


def start(broker: str, creds: Credentials) -> VenueHandle:
    kind = KINDS[broker]
    server = EmulatorServer(kind.new_venue(creds, dict(kind.balances))).start()
    return VenueHandle(kind, server, creds, dict(kind.balances), 3.0)


def entry_candles() -> list[list[float]]:
    """SPY candles on which the default strategy enters at the last one, which closes in the
    next 10 s at the latest (fresh for the next 5 minutes)."""
    c = cs.closing_by(cs.uptrend_with_pullback(), time.time() + 10)
    return np.column_stack([c.timestamp_ms, c.open, c.high, c.low, c.close, c.volume]).tolist()


def leaks(text: str, key: str) -> list[str]:
    """The forms of ``key`` found in ``text``: whole, URL-encoded, its first or last 8
    characters; in any letter case."""
    low = text.lower()
    forms = {key, quote(key, safe=""), key[:PIECE], key[-PIECE:]}
    return sorted(form for form in forms if form.lower() in low)


def run_check(script: str, env: dict[str, str], workdir: Path, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, script, "--env-file", str(workdir / "no.env"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode in (0, 1), proc.stderr  # 1: accounts need attention, as they do
    if "--json" in args:
        json.loads(proc.stdout)
    return proc.stdout + proc.stderr


@pytest.fixture
def venues():
    handles = {broker: start(broker, creds) for broker, creds in CREDENTIALS.items()}
    yield handles
    for handle in handles.values():
        handle.stop()


# Coinbase echoes on candles (the daemon's cycle) or on balance (also the live check of
# check_broker_status.py, where the SDK's own logger quotes the error body).
@pytest.mark.parametrize("coinbase_route", ["candles", "balance"])
def test_a_key_echoed_by_the_venues_shows_nowhere(venues, tmp_path, coinbase_route):
    venues["KRAKEN"].server.inject("balance", Fault("echo_key", where="json"))
    venues["OKX"].server.inject("balance", Fault("echo_key", where="html"))
    venues["BINANCE"].server.inject("balance", Fault("echo_key", where="header"))
    venues["COINBASE"].server.inject(coinbase_route, Fault("echo_key", where="json", code="server"))
    venues["ALPACA"].venue.market.set_candles("SPY/USD", entry_candles())
    venues["ALPACA"].server.inject("create_order", Fault("echo_key", code="invalid_order"))
    env = clean_env(
        NIJA_MODE="live",  # orders go to the (emulated) venue, which refuses them
        NIJA_CYCLE_SECONDS="1",
        NIJA_CALL_TIMEOUT_SECONDS="3",
        NIJA_CB_FAILURE_THRESHOLD="3",
        NIJA_CB_TIMEOUT_SECONDS="2",
        NIJA_FUNDED_RECHECK_SECONDS="2",
        NIJA_STATUS_LOG_SECONDS="2",
        NIJA_DATA_DIR=str(tmp_path / "data"),
        NIJA_LOG_FILE=str(tmp_path / "nija.log"),
        ALPACA_DATA_URL=venues["ALPACA"].server.url,
        ALPACA_SYMBOLS="SPY",
    )
    for broker, handle in venues.items():
        env.update(account_env(broker, None, handle.credentials))
        env[f"{broker}_BASE_URL"] = handle.server.url
    run: DaemonRun = start_daemon(env, tmp_path, output=tmp_path / "daemon.out")
    try:
        keyed = {b: h for b, h in venues.items() if b != "COINBASE"}

        def errors_shown() -> bool:
            accounts = run.status().get("accounts", {})
            echoed = all(h.credentials.api_key in h.server.echoed for h in keyed.values())
            # Candles come from the venue's keyless client; the balance from the account's own.
            coinbase = venues["COINBASE"]
            quoted = (
                "(unknown key)" if coinbase_route == "candles" else coinbase.credentials.api_key
            )
            errors = [a["last_error"] for k, a in accounts.items() if not k.endswith("/COINBASE")]
            return (
                echoed and quoted in coinbase.server.echoed and len(accounts) == 5 and all(errors)
            )

        # Each venue has quoted its key, where the test asked it to, and shows an error.
        wait_for(errors_shown, 60, "every venue's echo, and every account's error in status.json")
        outputs = {
            f"{script} {' '.join(args)}": run_check(script, env, tmp_path, *args)
            for script in CHECKS
            for args in ((), ("--json",))
        }
        wait_for(lambda: "status_summary" in run.log_path.read_text(), 30, "a status summary")
    finally:
        assert run.stop() == 0
    db = db_path(tmp_path / "data", "live")
    outputs["nija.log"] = run.log_path.read_text()
    outputs["daemon output"] = (tmp_path / "daemon.out").read_text()
    outputs["status.json"] = (tmp_path / "data" / "status.json").read_text()
    outputs["database"] = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*")).decode(
        "utf-8", "replace"
    )
    found = {
        (where, broker): leaks(text, creds.api_key)
        for where, text in outputs.items()
        for broker, creds in CREDENTIALS.items()
    }
    assert {k: v for k, v in found.items() if v} == {}
    # Masked, not lost: the errors still say what happened.
    status = json.loads(outputs["status.json"])["accounts"]
    for key in ("platform/platform/KRAKEN", "platform/platform/ALPACA"):
        assert "***" in status[key]["last_error"], key
    with Store.open_readonly(db) as store:
        orders = store.account("platform/platform/ALPACA").orders_since(0.0)
    assert [(o.status, "***" in (o.reason or "")) for o in orders] == [("rejected", True)]


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_are_private_and_env_values_literal_whatever_the_umask(tmp_path):
    """nija.log, status.json and the database files are 0600 under umask 000; a .env that
    others can read is warned about, without a word from inside it; ``$`` and ``${X}`` in a
    .env value reach the venue unchanged (OKX checks the passphrase)."""
    creds = Credentials(
        "8c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f", "FAKE-OKX-SECRET-literal-0001", "pa$$w0rd${X}"
    )
    okx = start("OKX", creds)
    env_file = tmp_path / "my.env"
    lines = [f"{name}={value}" for name, value in account_env("OKX", None, creds).items()]
    env_file.write_text(
        "\n".join([*lines, f"OKX_BASE_URL={okx.server.url}", "OKX_SYMBOLS=BTC/USDT"])
    )
    os.chmod(env_file, 0o644)
    env = clean_env(
        X="expanded",
        NIJA_CYCLE_SECONDS="1",
        NIJA_CALL_TIMEOUT_SECONDS="3",
        NIJA_REQUEST_BUDGETS="false",  # 1 s cycles: faster than OKX's budgets allow
    )
    old = os.umask(0)
    try:
        run = start_daemon(env, tmp_path, args=("--env-file", str(env_file)))
    finally:
        os.umask(old)
    try:
        key = "platform/platform/OKX"
        account = lambda: run.account(key)  # noqa: E731
        wait_for(lambda: account().get("cycles") or account().get("last_error"), 40, "OKX's turn")
        # Authenticated: the passphrase reached OKX as .env spells it.
        assert (account()["last_error"], account()["funded"]) == (None, True)
        db = db_path(tmp_path / "data", "paper")
        files = [run.log_path, run.data_dir / "status.json", *db.parent.glob(db.name + "*")]
        assert sorted(p.name for p in files[2:]) == [db.name, f"{db.name}-shm", f"{db.name}-wal"]
        assert {p.name: mode_of(p) for p in files} == {p.name: 0o600 for p in files}
    finally:
        assert run.stop() == 0
        okx.stop()
    [warning] = [e for e in run.events() if e.event == "env_file_readable_by_others"]
    assert warning.level == "warning"
    assert warning.fields == {"path": str(env_file), "mode": "0644", "fix": f"chmod 600 {env_file}"}

    os.chmod(env_file, 0o600)
    again = start_daemon(env, tmp_path / "again", args=("--env-file", str(env_file), "--once"))
    assert again.proc.wait(timeout=60) == 0
    assert not [e for e in again.events() if e.event == "env_file_readable_by_others"]
