"""The three check scripts, run as users run them: subprocesses from the repository root.

Each run gets an explicit environment (no inherited keys) and an ``--env-file`` in
``tmp_path``, so a developer's own ``.env`` never leaks in. The broker is a Kraken
emulator on 127.0.0.1; status.json and the state store are written here in the
daemon's formats (design.md's schema, the real ``Store`` API).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.cli.commands import pid_alive, redact
from bot.config.settings import secret_values
from bot.store.writer import OrderRecord, Store, db_path
from nija_testkit.emulator.server import EmulatorServer, Fault
from nija_testkit.harness import wait_for
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


@pytest.fixture
def kraken(venue_server) -> EmulatorServer:
    """The run's Kraken emulator, fresh (tests/conftest.py): one account holding $10,000."""
    server = venue_server("KRAKEN")
    server.venue.add_account(KEY, SECRET, {"USD": 10000.0})
    return server


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


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


def run_json(script: str, env: dict[str, str]) -> tuple[int, dict]:
    proc = run(script, env, "--json")
    return proc.returncode, json.loads(proc.stdout)


def run_text_and_json(
    script: str, env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], int, dict]:
    """The table and the JSON of one situation, both runs at once (each waits on the venue)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        text = pool.submit(run, script, env)
        as_json = pool.submit(run_json, script, env)
        code, report = as_json.result(timeout=RUN_TIMEOUT)
        return text.result(timeout=RUN_TIMEOUT), code, report


def line_of(text: str, prefix: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(prefix))


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def account_status(key: str, **overrides) -> dict:
    """One account of status.json, healthy unless overridden."""
    account_type, account_id, broker = key.split("/")
    now = time.time()
    entry = {
        "account_type": account_type,
        "account_id": account_id,
        "broker": broker,
        "funded": True,
        "balance_usd": 1234.5,
        "thread": "running",
        "health": "healthy",
        "circuit": "closed",
        "cycles": 42,
        "last_cycle_at": iso(now - 30),
        "last_cycle_ms": 311.0,
        "last_error": None,
        "open_positions": 0,
        "next_cycle_at": iso(now + 120),
    }
    entry.update(overrides)
    return entry


def write_status(data_dir: Path, *, pid: int, age_seconds: float = 0.0, **extra) -> None:
    """status.json as design.md specifies it."""
    accounts = extra.pop(
        "accounts", {PLATFORM: account_status(PLATFORM), ALICE: account_status(ALICE)}
    )
    status = {
        "updated_at": iso(time.time() - age_seconds),
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


# -- every script --------------------------------------------------------------------------------


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_documents_the_exit_codes(script, data_dir):
    proc = run(script, base_env(data_dir), "--help")
    assert proc.returncode == 0
    assert "exit codes:" in proc.stdout
    for line in ("0  all well", "1  something needs attention", "2  configuration error"):
        assert line in proc.stdout


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_bad_setting_exits_2_naming_the_variable(script, data_dir, kraken):
    env = kraken_env(data_dir, kraken, NIJA_CYCLE_SECONDS="abc")
    proc = run(script, env)
    assert proc.returncode == 2
    assert "NIJA_CYCLE_SECONDS" in proc.stderr
    assert proc.stdout == ""
    code, report = run_json(script, env)
    assert code == 2 and report["exit_code"] == 2
    assert "NIJA_CYCLE_SECONDS" in report["error"]
    assert kraken.requests == []  # found before any broker is called


@pytest.mark.parametrize("script", SCRIPTS)
def test_no_accounts_and_no_daemon_exits_2_and_says_how_to_start(script, data_dir):
    proc = run(script, base_env(data_dir))
    assert proc.returncode == 2
    assert "KRAKEN_API_KEY" in proc.stderr
    assert "./start.sh" in proc.stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_python_without_the_dependencies_gets_a_hint(script, data_dir):
    # -S: no site-packages, like a system python3 on a VPS that never ran ./start.sh.
    proc = run(script, base_env(data_dir), python=(sys.executable, "-S"))
    assert proc.returncode == 2
    assert "run ./start.sh once, or use .venv/bin/python" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_dotenv_is_read_and_the_real_environment_wins(data_dir):
    (data_dir.parent / ".env").write_text(
        f"NIJA_MODE=live\nNIJA_CYCLE_SECONDS=abc\nKRAKEN_API_KEY={KEY}\nKRAKEN_API_SECRET={SECRET}\n"
    )
    # The file's bad NIJA_CYCLE_SECONDS is overridden by the real environment.
    proc = run(ACTIVE, base_env(data_dir, NIJA_CYCLE_SECONDS="150"))
    assert proc.returncode == 0, proc.stderr
    assert "Mode: LIVE" in proc.stdout
    assert "nija-live.db" in proc.stdout  # an account is configured; no store yet


# -- check_broker_status -------------------------------------------------------------------------


def test_broker_status_funded_account_exits_0(data_dir, kraken):
    proc, code, report = run_text_and_json(BROKER_STATUS, kraken_env(data_dir, kraken))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "Mode: PAPER" in out
    row = line_of(out, PLATFORM)
    assert re.search(r"present\s+ok\s+\$10,000\.00\s+yes", row), row
    header = line_of(out, "ACCOUNT")
    # Aligned: each cell starts where its column's header does.
    assert row.index("present") == header.index("CREDENTIALS")
    assert row.index("$10,000.00") == header.index("BALANCE")
    assert "isolation_guarantee: ACTIVE" in out
    assert "All well." in out
    assert kraken.requests_to("balance")  # a real connection test

    assert code == 0 and report["exit_code"] == 0
    assert report["mode"] == "paper"
    (account,) = report["accounts"]
    assert account["account"] == PLATFORM
    assert account["credentials"] == "present"
    assert account["connection"] == "ok"
    assert account["balance_usd"] == pytest.approx(10000.0)
    assert account["funded"] is True
    assert report["attention"] == [] and report["config_errors"] == []


def test_broker_status_names_a_missing_secret_and_still_checks_the_others(data_dir, kraken):
    env = kraken_env(data_dir, kraken, KRAKEN_USER_BOB_API_KEY=OTHER_KEY)
    proc, code, report = run_text_and_json(BROKER_STATUS, env)
    assert proc.returncode == 1
    bob = line_of(proc.stdout, "user/bob/KRAKEN")
    assert "incomplete: KRAKEN_USER_BOB_API_SECRET" in bob and "not tried" in bob
    assert "$10,000.00" in line_of(proc.stdout, PLATFORM)
    assert "user/bob/KRAKEN: credentials incomplete: KRAKEN_USER_BOB_API_SECRET" in proc.stdout

    assert code == 1
    by_key = {a["account"]: a for a in report["accounts"]}
    assert by_key[PLATFORM]["funded"] is True
    assert by_key["user/bob/KRAKEN"]["credentials"] == "incomplete: KRAKEN_USER_BOB_API_SECRET"
    assert report["config_errors"][0]["variables"] == ["KRAKEN_USER_BOB_API_SECRET"]


def test_broker_status_underfunded_account_needs_attention(data_dir, kraken):
    kraken.venue.accounts[KEY].balances["USD"] = 5.0
    code, report = run_json(BROKER_STATUS, kraken_env(data_dir, kraken))
    assert code == 1
    (account,) = report["accounts"]
    assert account["connection"] == "ok" and account["funded"] is False
    assert report["attention"] == [f"{PLATFORM}: not funded ($5.00 < $10.00)"]


def test_broker_status_a_bad_secret_fails_that_account_only_and_is_never_shown(data_dir, kraken):
    env = kraken_env(
        data_dir, kraken, KRAKEN_USER_BOB_API_KEY=OTHER_KEY, KRAKEN_USER_BOB_API_SECRET=BAD_SECRET
    )
    code, report = run_json(BROKER_STATUS, env)  # run() asserts no secret in the output
    assert code == 1
    by_key = {a["account"]: a for a in report["accounts"]}
    assert by_key[PLATFORM]["connection"] == "ok" and by_key[PLATFORM]["funded"] is True
    bob = by_key["user/bob/KRAKEN"]
    assert bob["credentials"] == "present" and bob["funded"] is False
    assert "BrokerConfigError" in bob["error"]
    assert report["attention"] == [f"user/bob/KRAKEN: no balance: {bob['error']}"]


def test_broker_status_returns_soon_when_the_venue_hangs(data_dir, kraken):
    kraken.inject("*", Fault("hang", seconds=30))
    env = kraken_env(data_dir, kraken, NIJA_CALL_TIMEOUT_SECONDS="1")
    started = time.monotonic()
    proc = run(BROKER_STATUS, env, "--json")
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr
    # 1 s call timeout + the funded check's 2 s grace + interpreter start-up.
    assert elapsed < 10, elapsed
    (account,) = json.loads(proc.stdout)["accounts"]
    assert account["funded"] is False
    assert account["connection"] in ("timeout", "network_error")


# -- check_independent_broker_status -------------------------------------------------------------


def test_independent_status_from_a_running_daemon_all_healthy(data_dir):
    write_status(data_dir, pid=os.getpid(), age_seconds=4)
    proc = run(INDEPENDENT, base_env(data_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    # Written 4 s before the script started; the script itself takes a second or two.
    assert re.search(rf"daemon running \(pid {os.getpid()}\), status [4-9] s old", out), out
    assert "Mode: PAPER" in out
    row = line_of(out, PLATFORM)
    assert re.search(r"yes\s+\$1,234\.50\s+yes\s+running\s+healthy\s+closed\s+42\s+3\d s ago", row)
    assert line_of(out, ALICE)
    assert "isolation_guarantee: ACTIVE" in out

    code, report = run_json(INDEPENDENT, base_env(data_dir))
    assert code == 0
    assert report["source"] == "daemon"
    assert report["daemon"]["running"] is True and report["daemon"]["pid"] == os.getpid()
    assert [a["account"] for a in report["accounts"]] == [PLATFORM, ALICE]
    assert report["accounts"][0]["ready"] is True


def test_independent_status_one_quarantined_account_exits_1(data_dir):
    accounts = {
        PLATFORM: account_status(PLATFORM),
        ALICE: account_status(
            ALICE, health="quarantined", circuit="open", last_error="ConnectionError: reset"
        ),
    }
    write_status(data_dir, pid=os.getpid(), accounts=accounts)
    proc = run(INDEPENDENT, base_env(data_dir))
    assert proc.returncode == 1
    alice = line_of(proc.stdout, ALICE)
    assert "quarantined" in alice and "open" in alice and "ConnectionError: reset" in alice
    code, report = run_json(INDEPENDENT, base_env(data_dir))
    assert code == 1
    assert report["attention"] == [f"{ALICE}: health quarantined (ConnectionError: reset)"]
    assert {a["account"]: a["ready"] for a in report["accounts"]} == {PLATFORM: True, ALICE: False}


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("thread", "stalled", "thread stalled"),
        ("thread", "dead", "thread dead"),
        ("funded", False, "not funded"),
    ],
)
def test_independent_status_flags_threads_and_funding(data_dir, field, value, reason):
    accounts = {PLATFORM: account_status(PLATFORM, **{field: value})}
    write_status(data_dir, pid=os.getpid(), accounts=accounts)
    code, report = run_json(INDEPENDENT, base_env(data_dir))
    assert code == 1
    assert f"{PLATFORM}: {reason}" in report["attention"]


def test_independent_status_stale_file_of_a_live_pid_needs_attention(data_dir):
    write_status(data_dir, pid=os.getpid(), age_seconds=3600)
    proc = run(INDEPENDENT, base_env(data_dir))
    assert proc.returncode == 1
    assert "daemon status stale: 60 min old" in proc.stdout


def test_independent_status_dead_pid_falls_back_to_a_live_check(data_dir, kraken):
    write_status(data_dir, pid=dead_pid(), age_seconds=600)
    proc, code, report = run_text_and_json(INDEPENDENT, kraken_env(data_dir, kraken))
    assert proc.returncode == 1  # the daemon is not running
    out = proc.stdout
    assert "daemon not running; last status from 10 min ago" in out
    row = line_of(out, PLATFORM)
    assert re.search(r"yes\s+\$10,000\.00\s+yes\s+not_started\s+healthy\s+closed\s+0", row), row
    assert ALICE not in out  # the dead daemon's accounts are not shown as current
    assert kraken.requests_to("balance")
    assert code == 1
    assert report["source"] == "live_check" and report["daemon"]["running"] is False


def test_independent_status_live_check_without_daemon_all_well(data_dir, kraken):
    code, report = run_json(INDEPENDENT, kraken_env(data_dir, kraken))
    assert code == 0, report
    assert report["source"] == "live_check"
    assert "no status.json" in report["daemon"]["summary"]
    (row,) = report["accounts"]
    assert row["thread"] == "not_started" and row["health"] == "healthy" and row["funded"]


def test_independent_status_shows_demo_and_live_modes(data_dir):
    write_status(data_dir, pid=os.getpid(), demo=True)
    proc = run(INDEPENDENT, base_env(data_dir))
    assert proc.returncode == 0
    assert "Mode: PAPER (DEMO" in proc.stdout
    write_status(data_dir, pid=os.getpid(), mode="live")
    proc = run(INDEPENDENT, base_env(data_dir))
    assert "Mode: LIVE" in proc.stdout


def test_independent_status_reports_a_violated_isolation(data_dir):
    write_status(data_dir, pid=os.getpid())
    status = json.loads((data_dir / "status.json").read_text())
    status["isolation_report"]["isolation_guarantee"] = "VIOLATED"
    (data_dir / "status.json").write_text(json.dumps(status))
    proc = run(INDEPENDENT, base_env(data_dir))
    assert proc.returncode == 1
    assert "isolation_guarantee: VIOLATED" in proc.stdout


# -- check_active_trading_per_broker -------------------------------------------------------------


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


def fill_store(data_dir: Path, *, unknown: bool = False) -> None:
    """Two brokers' accounts: positions, today's orders, one of yesterday's."""
    path = db_path(data_dir, "paper")
    now = time.time()
    yesterday = now - 86400 * 2
    with Store(path, PLATFORM) as store:
        store.record_order(order(PLATFORM, "k-old", yesterday))
        store.record_order(order(PLATFORM, "k-today", now - 1))
        store.open_position("BTC/USD", 0.01, 50000.0, 49000.0, 52000.0, 1000.0, now - 1, "k-today")
        if unknown:
            store.record_order(order(PLATFORM, "k-lost", now - 1, status="unknown"))
    with Store(path, ALICE) as store:
        store.record_order(order(ALICE, "a-today", now - 1, status="canceled"))
    with Store(path, "user/bob/KRAKEN") as store:
        store.open_position("ETH/USD", 0.5, 3000.0, 2900.0, None, None, now - 1)


def test_active_trading_groups_by_broker_then_account(data_dir):
    fill_store(data_dir)
    proc = run(ACTIVE, base_env(data_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    # COINBASE before KRAKEN; within KRAKEN, platform before user/bob (sorted keys).
    order_of = [out.index(s) for s in ("== COINBASE ==", ALICE, "== KRAKEN ==", PLATFORM)]
    assert order_of == sorted(order_of)
    assert out.index(PLATFORM) < out.index("user/bob/KRAKEN")
    assert f"{PLATFORM}: 1 open position(s), 1 order(s) today (UTC)" in out
    assert f"{ALICE}: 0 open position(s), 1 order(s) today (UTC)" in out
    assert "user/bob/KRAKEN: 1 open position(s), 0 order(s) today (UTC)" in out
    assert "k-old" not in out

    code, report = run_json(ACTIVE, base_env(data_dir))
    assert code == 0
    brokers = {b["broker"]: b["accounts"] for b in report["brokers"]}
    assert list(brokers) == ["COINBASE", "KRAKEN"]
    platform = brokers["KRAKEN"][0]
    assert platform["account"] == PLATFORM
    assert [o["client_order_id"] for o in platform["orders_today"]] == ["k-today"]
    assert platform["open_positions"][0]["entry_price"] == 50000.0
    assert brokers["COINBASE"][0]["orders_today"][0]["status"] == "canceled"


def test_active_trading_an_unknown_order_needs_attention(data_dir):
    fill_store(data_dir, unknown=True)
    code, report = run_json(ACTIVE, base_env(data_dir))
    assert code == 1
    assert report["attention"] == [f"{PLATFORM}: order k-lost (BTC/USD) left unknown"]


def test_active_trading_shows_dust_and_blocked_exits(data_dir):
    fill_store(data_dir)
    with Store(db_path(data_dir, "paper"), PLATFORM) as store:
        store.set_dust("LTC", 0.0004)
        (pos,) = store.open_positions()
        store.update_position(pos.id, exit_attempts=3, exit_blocked="EOrder:Insufficient funds")
    code, report = run_json(ACTIVE, base_env(data_dir))
    assert code == 1  # a blocked exit needs attention; dust alone does not
    assert report["attention"] == [
        f"{PLATFORM}: exit of BTC/USD blocked (EOrder:Insufficient funds)"
    ]
    kraken = {a["account"]: a for b in report["brokers"] for a in b["accounts"]}
    assert kraken[PLATFORM]["dust"] == {"LTC": 0.0004}
    assert kraken[PLATFORM]["open_positions"][0]["exit_blocked"] == "EOrder:Insufficient funds"
    assert kraken["user/bob/KRAKEN"]["dust"] == {}
    out = run(ACTIVE, base_env(data_dir)).stdout
    assert "exit blocked: BTC/USD (EOrder:Insufficient funds)" in out
    assert "dust (too small to trade, never sent): 0.0004 LTC" in out


def test_active_trading_reads_without_writing(data_dir):
    fill_store(data_dir)
    path = db_path(data_dir, "paper")
    before = path.stat().st_mtime_ns, path.stat().st_size
    assert run(ACTIVE, base_env(data_dir)).returncode == 0
    assert (path.stat().st_mtime_ns, path.stat().st_size) == before


# -- the helpers behind the scripts --------------------------------------------------------------


def test_redact_hides_every_configured_secret_value():
    env = {"KRAKEN_API_SECRET": SECRET, "KRAKEN_API_KEY": KEY, "NIJA_MODE": "paper"}
    text = redact(f"signing with {SECRET} for {KEY} in paper mode", secret_values(env))
    assert text == "signing with *** for *** in paper mode"


def test_pid_alive_never_mistakes_a_process_group_for_the_daemon():
    assert pid_alive(os.getpid())
    assert not pid_alive(dead_pid())
    # kill(0, 0) and kill(-1, 0) succeed (they address groups): never "running".
    assert not pid_alive(0) and not pid_alive(-1) and not pid_alive(None)


# -- against the real daemon ---------------------------------------------------------------------


@pytest.mark.system  # starts bot.py
def test_independent_status_reads_the_real_daemons_demo_status(data_dir):
    """bot.py with no keys runs the demo; the script reads its status.json, then its absence."""
    env = base_env(data_dir, NIJA_LOG_FILE=str(data_dir / "nija.log"))
    env_file = str(data_dir.parent / ".env")
    daemon = subprocess.Popen(
        [sys.executable, "bot.py", "--env-file", env_file],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for((data_dir / "status.json").exists, 30, "the daemon's status.json")
        code, report = run_json(INDEPENDENT, env)
        assert report["source"] == "daemon" and report["demo"] is True
        assert report["daemon"]["running"] is True and report["daemon"]["pid"] == daemon.pid
        assert report["accounts"] and all(a["account"] for a in report["accounts"])
        assert code in (0, 1)  # the demo has a deliberately faulty account
        assert "(DEMO" in run(INDEPENDENT, env).stdout
    finally:
        daemon.terminate()
        daemon.wait(timeout=RUN_TIMEOUT)
    proc = run(INDEPENDENT, env)
    assert proc.returncode == 1
    assert "daemon not running; last status from" in proc.stdout
