"""What the check-script tests share: running a script as a user does, the daemon's files.

Each run gets an explicit environment (no inherited keys) and an ``--env-file`` in
``tmp_path``, so a developer's own ``.env`` never leaks in. status.json and the state store
are written here in the daemon's formats (design.md's schema, the real ``Store`` API).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bot.clock import iso_text
from bot.store.backend import Database
from bot.store.writer import OrderRecord, Store, db_path
from nija_testkit.emulator.server import EmulatorServer
from nija_testkit.secrets import assert_no_secret

REPO = Path(__file__).resolve().parents[2]
BROKER_STATUS = "check_broker_status.py"
INDEPENDENT = "check_independent_broker_status.py"
ACTIVE = "check_active_trading_per_broker.py"
SCRIPTS = (BROKER_STATUS, INDEPENDENT, ACTIVE)

KEY = "FAKE-KRAKEN-KEY-CLI-0123456789"
# Valid base64 (ccxt signs with it) and recognisable if it ever leaked.
SECRET = "FAKEKRAKENSECRETFAKEKRAKENSECRETCLIX"
OTHER_KEY = "FAKE-KRAKEN-KEY-BOB-9876543210"
BAD_SECRET = "FAKE-not-base64-secret!!"
ALL_SECRETS = (KEY, SECRET, OTHER_KEY, BAD_SECRET)
RUN_TIMEOUT = 60  # seconds: a hung script fails its test instead of hanging the suite
PLATFORM = "platform/platform/KRAKEN"
ALICE = "user/alice/COINBASE"


def base_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """A minimal environment: no broker keys unless given, state under ``data_dir``."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NIJA_DATA_DIR": str(data_dir)}
    env.update(extra)
    return env


def kraken_env(data_dir: Path, server: EmulatorServer, **extra: str) -> dict[str, str]:
    return base_env(
        data_dir, KRAKEN_API_KEY=KEY, KRAKEN_API_SECRET=SECRET, KRAKEN_BASE_URL=server.url, **extra
    )


def run(
    script: str, env: dict[str, str], *args: str, python: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Run a check script as a user would; its output must never carry a secret."""
    env_file = Path(env["NIJA_DATA_DIR"]).parent / ".env"
    proc = subprocess.run(
        [*(python or (sys.executable,)), script, "--env-file", str(env_file), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert_no_secret(proc.stdout, proc.stderr, secrets=ALL_SECRETS)
    return proc


def run_json(script: str, env: dict[str, str], *args: str) -> tuple[int, dict]:
    proc = run(script, env, "--json", *args)
    return proc.returncode, json.loads(proc.stdout)


def run_text_and_json(
    script: str, env: dict[str, str], *args: str
) -> tuple[subprocess.CompletedProcess[str], int, dict]:
    """The table and the JSON of one situation, both runs at once (each waits on the venue)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        text = pool.submit(run, script, env, *args)
        as_json = pool.submit(run_json, script, env, *args)
        code, report = as_json.result(timeout=RUN_TIMEOUT)
        return text.result(timeout=RUN_TIMEOUT), code, report


def line_of(text: str, prefix: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(prefix))


def account_status(key: str, **overrides) -> dict:
    """One account of status.json (a paper daemon's), healthy unless overridden."""
    account_type, account_id, broker = key.split("/")
    now = time.time()
    entry = {
        "account_type": account_type,
        "account_id": account_id,
        "broker": broker,
        "funded": True,
        "balance_usd": 10050.0,  # the trading equity: in paper mode the paper wallet's
        "venue_balance_usd": 1234.5,
        "paper_equity_usd": 10050.0,
        "thread": "running",
        "health": "healthy",
        "circuit": "closed",
        "cycles": 42,
        "last_cycle_at": iso_text(now - 30),
        "last_cycle_ms": 311.0,
        "last_error": None,
        "open_positions": 0,
        "next_cycle_at": iso_text(now + 120),
        "marks": {},
        "marks_at": None,
    }
    entry.update(overrides)
    return entry


def write_status(data_dir: Path, *, pid: int, age_seconds: float = 0.0, **extra) -> None:
    """status.json as design.md specifies it."""
    accounts = extra.pop(
        "accounts", {PLATFORM: account_status(PLATFORM), ALICE: account_status(ALICE)}
    )
    status = {
        "updated_at": iso_text(time.time() - age_seconds),
        "pid": pid,
        "mode": "paper",
        "accounts": accounts,
        "isolation_report": {"total_accounts": len(accounts), "isolation_guarantee": "ACTIVE"},
        **extra,
    }
    (data_dir / "status.json").write_text(json.dumps(status))


def dead_pid() -> int:
    """The pid of a process that has already exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=RUN_TIMEOUT)
    return proc.pid


def order(key: str, cid: str, created_at: float, status: str = "filled") -> OrderRecord:
    return OrderRecord(
        client_order_id=cid,
        account_key=key,
        intent_id=f"intent-{cid}",
        symbol="BTC/USD",
        side="buy",
        type="market",
        amount=0.01,
        quote_amount=None,
        limit_price=None,
        purpose="entry",
        status=status,
        filled=0.01 if status == "filled" else 0.0,
        created_at=created_at,
        updated_at=created_at,
    )


def fill_store(data_dir: Path, *, unknown: bool = False, database: Database | None = None) -> None:
    """Two brokers' accounts: positions, today's orders, one of two days ago; the platform
    account closed a position today (+$12.50) and two days ago (+$100), and paid fees on
    a fill today ($0.50) and two days ago ($9.99). In ``database`` when given, else in
    the paper SQLite file of ``data_dir``."""
    path = database or db_path(data_dir, "paper")
    now = time.time()
    before = now - 86400 * 2
    with Store(path, PLATFORM) as store:
        store.record_order(order(PLATFORM, "k-old", before))
        store.add_fill("k-old", 0.01, 50000.0, 9.99, before)
        store.record_order(order(PLATFORM, "k-today", now - 1))
        store.add_fill("k-today", 0.01, 50000.0, 0.5, now - 1)
        store.open_position("BTC/USD", 0.01, 50000.0, 49000.0, 52000.0, 1000.0, now - 1, "k-today")
        for opened, pnl in ((before, 100.0), (now - 3, 12.5)):
            sol = store.open_position("SOL/USD", 1.0, 150.0, 140.0, None, None, opened)
            store.close_position(sol.id, 150.0 + pnl, "target", opened + 1, pnl)
        if unknown:
            store.record_order(order(PLATFORM, "k-lost", now - 1, status="unknown"))
    with Store(path, ALICE) as store:
        store.record_order(order(ALICE, "a-today", now - 1, status="canceled"))
    with Store(path, "user/bob/KRAKEN") as store:
        store.open_position("ETH/USD", 0.5, 3000.0, 2900.0, None, None, now - 1)
