"""The three check scripts, run as users run them: subprocesses from the repository root.

The broker is a Kraken emulator on 127.0.0.1; status.json and the state store are written
in the daemon's formats (``tests/cli/scripts.py``). Positions, marks and P&L are in
``test_trading.py``; errors and ``--json`` in ``test_errors.py``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest

from bot.cli.statusfile import pid_alive
from bot.clock import iso_text
from bot.config.secrets import secret_values
from bot.redact import Redactor
from bot.store.writer import Store, db_path
from nija_testkit.emulator.server import Fault
from nija_testkit.harness import wait_for
from tests.cli.scripts import (
    ACTIVE,
    ALICE,
    BAD_SECRET,
    BROKER_STATUS,
    INDEPENDENT,
    KEY,
    OTHER_KEY,
    PLATFORM,
    REPO,
    RUN_TIMEOUT,
    SCRIPTS,
    SECRET,
    account_status,
    base_env,
    dead_pid,
    fill_store,
    kraken_env,
    line_of,
    run,
    run_json,
    run_text_and_json,
    write_status,
)

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
    assert row.index("$10,000.00") == header.index("VENUE BALANCE")
    # The balance is the real account's; paper trading starts from its own paper wallet.
    assert "Paper mode: each account trades a paper wallet of $10,000.00" in out
    assert "isolation_guarantee: ACTIVE" in out
    assert "All well." in out
    assert kraken.requests_to("balance")  # a real connection test

    assert code == 0 and report["exit_code"] == 0
    assert report["mode"] == "paper"
    (account,) = report["accounts"]
    assert account["account"] == PLATFORM
    assert account["credentials"] == "present"
    assert account["connection"] == "ok"
    assert account["venue_balance_usd"] == pytest.approx(10000.0)
    assert report["paper_balance_usd"] == 10000
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


def test_broker_status_names_unknown_variables_and_absurd_settings_never_values(data_dir, kraken):
    # A user's key under a misspelt name: today that account silently does not exist.
    env = kraken_env(data_dir, kraken, KRAKEN_USER_BOB_APIKEY=OTHER_KEY, NIJA_CYCLE_SECONDS="0.1")
    proc, code, report = run_text_and_json(BROKER_STATUS, env)
    typo = (
        "unknown variable KRAKEN_USER_BOB_APIKEY (did you mean KRAKEN_USER_BOB_API_KEY?):"
        " NIJA does not read it"
    )
    cycle = "NIJA_CYCLE_SECONDS=0.1 is under 1 s (a faster cycle only hammers the venue)"
    assert proc.returncode == 1 and code == 1
    assert typo in proc.stdout and cycle in proc.stdout
    assert report["attention"] == [typo, f"{cycle}: raised to 1 s"]
    assert [a["account"] for a in report["accounts"]] == [PLATFORM]  # checked all the same
    assert report["accounts"][0]["funded"] is True


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
    cells = r"yes\s+\$1,234\.50\s+\$10,050\.00\s+yes\s+running\s+healthy\s+closed\s+42\s+3\d s ago"
    assert re.search(cells, row), row
    # In paper mode the account's equity is the paper wallet's; the venue's balance is real.
    header = line_of(out, "ACCOUNT")
    assert row.index("$1,234.50") == header.index("VENUE BALANCE")
    assert row.index("$10,050.00") == header.index("PAPER EQUITY")
    assert "paper equity is the simulated wallet's worth, venue balance what the account" in out
    assert line_of(out, ALICE)
    assert "isolation_guarantee: ACTIVE" in out

    code, report = run_json(INDEPENDENT, base_env(data_dir))
    assert code == 0
    assert report["source"] == "daemon"
    assert report["daemon"]["running"] is True and report["daemon"]["pid"] == os.getpid()
    assert [a["account"] for a in report["accounts"]] == [PLATFORM, ALICE]
    assert report["accounts"][0]["ready"] is True
    assert report["accounts"][0]["venue_balance_usd"] == 1234.5
    assert report["accounts"][0]["paper_equity_usd"] == 10050.0
    assert "balance_usd" not in report["accounts"][0]  # never unlabelled


def test_independent_status_in_live_mode_shows_the_venue_balance_only(data_dir):
    accounts = {PLATFORM: account_status(PLATFORM, paper_equity_usd=None, balance_usd=1234.5)}
    write_status(data_dir, pid=os.getpid(), mode="live", accounts=accounts)
    proc, code, report = run_text_and_json(INDEPENDENT, base_env(data_dir))
    assert proc.returncode == code == 0
    assert "PAPER EQUITY" not in proc.stdout and "Paper mode" not in proc.stdout
    row, header = line_of(proc.stdout, PLATFORM), line_of(proc.stdout, "ACCOUNT")
    assert row.index("$1,234.50") == header.index("VENUE BALANCE")
    assert report["accounts"][0]["venue_balance_usd"] == 1234.5
    assert report["accounts"][0]["paper_equity_usd"] is None


def test_independent_status_says_why_a_balance_is_unknown(data_dir):
    why = "equity unknown: the venue's price of a holding is not to be had"
    accounts = {
        PLATFORM: account_status(
            PLATFORM, balance_usd=None, venue_balance_usd=None, balance_unknown_reason=why
        ),
        ALICE: account_status(ALICE),
    }
    write_status(data_dir, pid=os.getpid(), mode="live", accounts=accounts)
    _code, report = run_json(INDEPENDENT, base_env(data_dir))
    rows = {a["account"]: a for a in report["accounts"]}
    assert rows[PLATFORM]["venue_balance_usd"] is None  # unknown, never $0
    assert rows[PLATFORM]["balance_unknown_reason"] == why
    assert rows[ALICE]["balance_unknown_reason"] is None


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


def test_independent_status_an_account_whose_funds_check_waits_is_not_called_unfunded(data_dir):
    """The daemon parked its funds check (its venue down): status.json's "funded" is false,
    but the funds are unknown, and the script says that, never "not funded"."""
    waits = "funds check waits: venue KRAKEN down: 2 of 2 accounts failed within 60s"
    accounts = {
        PLATFORM: account_status(PLATFORM),
        ALICE: account_status(
            ALICE,
            funded=False,
            funds_check="waits",
            funds_check_reason=waits,
            thread="not_started",
            cycles=0,
            last_cycle_at=None,
            venue_state="down",
        ),
    }
    write_status(data_dir, pid=os.getpid(), accounts=accounts)
    proc, code, report = run_text_and_json(INDEPENDENT, base_env(data_dir))
    assert proc.returncode == code == 1
    row, header = line_of(proc.stdout, ALICE), line_of(proc.stdout, "ACCOUNT")
    assert row[header.index("FUNDED") :].startswith("waits ")
    assert line_of(proc.stdout, PLATFORM)[header.index("FUNDED") :].startswith("yes ")
    assert f"{ALICE}: funds unknown: {waits}" in proc.stdout
    assert "not funded" not in proc.stdout
    assert report["attention"] == [f"{ALICE}: funds unknown: {waits}"]
    alice = next(a for a in report["accounts"] if a["account"] == ALICE)
    assert alice["funded"] is False and alice["funds_check"] == "waits"


def test_independent_status_shows_each_venues_state_and_why(data_dir):
    now = time.time()
    down = "2 of 2 accounts failed within 60s (NetworkFailure: KRAKEN 503)"
    venues = {
        "KRAKEN": {
            "state": "down",
            "since": iso_text(now - 90),
            "reason": down,
            "last_probe": {"at": iso_text(now - 12), "ok": False, "reason": "NetworkFailure: 503"},
            "public_requests_per_min": 2,
        }
    }
    accounts = {
        PLATFORM: account_status(PLATFORM, venue_state="down"),
        ALICE: account_status(ALICE, venue_state="down"),
    }
    write_status(data_dir, pid=os.getpid(), accounts=accounts, venues=venues)
    proc, code, report = run_text_and_json(INDEPENDENT, base_env(data_dir))
    assert proc.returncode == code == 1  # a venue down needs attention
    row, header = line_of(proc.stdout, PLATFORM), line_of(proc.stdout, "ACCOUNT")
    assert row[header.index("VENUE", header.index("LAST CYCLE")) :].startswith("down")
    venue = line_of(proc.stdout, "KRAKEN  ")
    assert re.search(r"KRAKEN\s+down\s+(9\d|1\d\d) s ago\s+2 of 2 accounts failed", venue), venue
    assert re.search(r"failed 1\d s ago\s+2$", venue), venue
    assert line_of(proc.stdout, "VENUE  ").split()[:3] == ["VENUE", "STATE", "SINCE"]
    assert f"venue KRAKEN down: {down}" in report["attention"]
    (kraken,) = report["venues"]
    assert kraken["venue"] == "KRAKEN" and kraken["state"] == "down"
    assert kraken["last_probe"]["ok"] is False and kraken["public_requests_per_min"] == 2
    assert {a["venue_state"] for a in report["accounts"]} == {"down"}


def test_independent_status_stale_file_of_a_live_pid_needs_attention(data_dir):
    write_status(data_dir, pid=os.getpid(), age_seconds=3600)
    proc = run(INDEPENDENT, base_env(data_dir))
    assert proc.returncode == 1
    assert "daemon status stale: 60 min old" in proc.stdout


def test_independent_status_stale_after_three_refreshes_or_the_longest_cycle(data_dir):
    """The daemon rewrites status.json every second and after each cycle: with 5 s cycles,
    a file 30 s old means its writer is stuck (a full disk?), though its pid is alive."""
    accounts = {key: account_status(key, interval_seconds=5.0) for key in (PLATFORM, ALICE)}
    write_status(data_dir, pid=os.getpid(), age_seconds=30, accounts=accounts)
    proc = run(INDEPENDENT, base_env(data_dir))
    assert proc.returncode == 1
    assert re.search(
        r"daemon status stale: 3\d s old .*stuck after 5 s: is its disk full", proc.stdout
    )
    code, report = run_json(INDEPENDENT, base_env(data_dir))
    assert code == 1 and report["daemon"]["stale_after_seconds"] == 5.0

    # Slower cycles than refreshes: the longest interval of any account is the bound.
    accounts[ALICE]["interval_seconds"] = 150.0
    write_status(data_dir, pid=os.getpid(), age_seconds=30, accounts=accounts)
    code, report = run_json(INDEPENDENT, base_env(data_dir))
    assert code == 0 and report["daemon"]["stale_after_seconds"] == 150.0


def test_independent_status_dead_pid_falls_back_to_a_live_check(data_dir, kraken):
    write_status(data_dir, pid=dead_pid(), age_seconds=600)
    proc, code, report = run_text_and_json(INDEPENDENT, kraken_env(data_dir, kraken))
    assert proc.returncode == 1  # the daemon is not running
    out = proc.stdout
    assert "daemon not running; last status from 10 min ago" in out
    row = line_of(out, PLATFORM)
    # The live check asks the venue: no paper equity without a running daemon.
    assert re.search(r"yes\s+\$10,000\.00\s+-\s+yes\s+not_started\s+healthy\s+closed\s+0", row)
    assert ALICE not in out  # the dead daemon's accounts are not shown as current
    assert kraken.requests_to("balance")
    assert code == 1
    assert report["source"] == "live_check" and report["daemon"]["running"] is False
    assert report["accounts"][0]["venue_balance_usd"] == pytest.approx(10000.0)
    assert report["accounts"][0]["paper_equity_usd"] is None


def test_independent_status_live_check_without_daemon_all_well(data_dir, kraken):
    code, report = run_json(INDEPENDENT, kraken_env(data_dir, kraken))
    assert code == 0, report
    assert report["source"] == "live_check"
    assert "no status.json" in report["daemon"]["summary"]
    (row,) = report["accounts"]
    assert row["thread"] == "not_started" and row["health"] == "healthy" and row["funded"]


def test_the_live_check_values_coins_held_at_one_shared_ticker_per_venue(data_dir, kraken):
    """Without a daemon the check asks each account's balance itself, and values the coins
    held at its venue's shared price, as the daemon does: one ticker for three accounts
    holding BTC, since the check shares the daemon's address and so its per-IP limits."""
    secret = "RkFLRUtSQUtFTlNFQ1JFVEJPQg=="
    extra = {}
    for i in range(3):
        key = f"FAKE-KRAKEN-KEY-HOLDS-{i}"
        kraken.venue.add_account(key, secret, {"BTC": 0.01})
        extra |= {f"KRAKEN_USER_H{i}_API_KEY": key, f"KRAKEN_USER_H{i}_API_SECRET": secret}
    code, report = run_json(INDEPENDENT, kraken_env(data_dir, kraken, **extra))
    holders = [a for a in report["accounts"] if a["account"].startswith("user/h")]
    assert code == 0 and len(holders) == 3 and all(a["funded"] for a in holders), report
    worth = holders[0]["venue_balance_usd"]
    assert worth > 10 and all(a["venue_balance_usd"] == worth for a in holders), holders
    assert len(kraken.requests_to("ticker")) == 1  # not one per account
    assert len(kraken.requests_to("balance")) == 4  # each account's own, the platform's too


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
    text = Redactor(tuple(secret_values(env))).mask_values(
        f"signing with {SECRET} for {KEY} in paper mode"
    )
    assert text == "signing with *** for *** in paper mode"


def shows_a_piece_of(text: str, secret: str) -> bool:
    """True when ``text`` holds the secret's first or last 8 characters, in any case."""
    low = text.lower()
    return secret[:8].lower() in low or secret[-8:].lower() in low


def test_independent_status_masks_a_key_in_last_error_before_cutting_the_cell(data_dir):
    # The table cuts cells at 60 characters: this one would end in "FAKE-KRAKEN-...".
    error = 'ExchangeError: kraken {"error":["EAPI:Invalid key ' + KEY + '"]}'
    accounts = {PLATFORM: account_status(PLATFORM, health="failing", last_error=error)}
    write_status(data_dir, pid=os.getpid(), accounts=accounts)
    env = base_env(data_dir, KRAKEN_API_KEY=KEY, KRAKEN_API_SECRET=SECRET)
    proc, code, report = run_text_and_json(INDEPENDENT, env)
    assert code == proc.returncode == 1
    assert "EAPI:Invalid key ***" in line_of(proc.stdout, PLATFORM)
    assert report["accounts"][0]["last_error"] == error.replace(KEY, "***")
    for out in (proc.stdout, json.dumps(report)):
        assert not shows_a_piece_of(out, KEY)


@pytest.mark.parametrize("where", ["json", "html", "header"])
def test_broker_status_masks_a_key_the_venue_echoes(data_dir, kraken, where):
    kraken.inject("balance", Fault("echo_key", where=where))
    proc, code, report = run_text_and_json(BROKER_STATUS, kraken_env(data_dir, kraken))
    assert code == proc.returncode == 1
    assert KEY in kraken.echoed  # the venue did quote it
    assert report["accounts"][0]["venue_balance_usd"] is None
    for out in (proc.stdout, proc.stderr, json.dumps(report)):
        assert not shows_a_piece_of(out, KEY)
    if where != "header":  # no SDK puts a header into its error message
        assert "***" in report["accounts"][0]["error"]


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
