"""check_active_trading_per_broker.py: positions at the daemon's marks, today's P&L and fees,
prices to a sensible precision, paper equity and venue balance labelled (run as users run it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest

from bot.cli.trading import price, signed_usd
from bot.clock import iso_text
from bot.store.writer import Store, db_path
from nija_testkit.harness import ROOT, clean_env, start_daemon, wait_for
from tests.cli.scripts import (
    ACTIVE,
    PLATFORM,
    account_status,
    base_env,
    dead_pid,
    fill_store,
    line_of,
    run_json,
    run_text_and_json,
    write_status,
)

BOB = "user/bob/KRAKEN"


def by_account(report: dict) -> dict[str, dict]:
    return {a["account"]: a for b in report["brokers"] for a in b["accounts"]}


def test_positions_are_valued_at_the_running_daemons_marks(data_dir):
    fill_store(data_dir)
    marked = account_status(
        PLATFORM, marks={"BTC/USD": 50512.3456, "ETH/USD": 1.0}, marks_at=iso_text(time.time() - 7)
    )
    write_status(data_dir, pid=os.getpid(), accounts={PLATFORM: marked})
    proc, code, report = run_text_and_json(ACTIVE, base_env(data_dir))
    assert proc.returncode == code == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert f"Marks: the running daemon's last prices (pid {os.getpid()})." in out
    # Mark 50,512.35 against entry 50,000: (512.3456 x 0.01) = +$5.12, before fees.
    row = line_of(out, "    BTC/USD  0.01")
    header = line_of(out, "    SYMBOL")
    for column, cell in (("ENTRY", "50,000.00"), ("MARK", "50,512.35"), ("UNREALIZED", "+$5.12")):
        assert row.index(cell) == header.index(column), (column, row)
    assert "open: unrealized P&L +$5.12, at marks " in out
    age = re.search(r"at marks (\d+) s old", out)
    assert age and 7 <= int(age[1]) <= 60, out  # marked 7 s before the script ran

    platform = by_account(report)[PLATFORM]
    (position,) = platform["open_positions"]
    assert position["mark_price"] == 50512.3456 and position["mark_unknown"] is None
    assert position["unrealized_pnl_usd"] == pytest.approx(5.123456)
    assert platform["unrealized_pnl_usd"] == pytest.approx(5.123456)
    assert platform["marks_at"] == marked["marks_at"]

    # Bob's account is in the store but not in this daemon's status: no mark is invented.
    bob = by_account(report)[BOB]
    (position,) = bob["open_positions"]
    assert position["mark_price"] is None and position["unrealized_pnl_usd"] is None
    assert position["mark_unknown"] == "not traded by the running daemon"
    assert bob["unrealized_pnl_usd"] is None
    assert "mark unknown (not traded by the running daemon)" in line_of(out, "    ETH/USD")


def test_a_symbol_the_daemon_has_not_priced_has_no_mark(data_dir):
    fill_store(data_dir)
    accounts = {PLATFORM: account_status(PLATFORM, marks={"ETH/USD": 3000.0})}
    write_status(data_dir, pid=os.getpid(), accounts=accounts)
    code, report = run_json(ACTIVE, base_env(data_dir))
    assert code == 0
    (position,) = by_account(report)[PLATFORM]["open_positions"]
    assert position["mark_price"] is None
    assert position["mark_unknown"] == "not priced by the daemon yet"


@pytest.mark.parametrize("daemon", ["none", "dead"])
def test_without_a_running_daemon_the_mark_is_unknown_not_guessed(data_dir, daemon):
    fill_store(data_dir)
    if daemon == "dead":  # its last status still holds marks: they are not today's
        accounts = {PLATFORM: account_status(PLATFORM, marks={"BTC/USD": 50512.0})}
        write_status(data_dir, pid=dead_pid(), accounts=accounts, age_seconds=600)
    proc, code, report = run_text_and_json(ACTIVE, base_env(data_dir))
    assert proc.returncode == code == 0
    out = proc.stdout
    assert "Marks unknown: the daemon is not running" in out
    row = line_of(out, "    BTC/USD  0.01")
    assert "mark unknown (daemon not running)" in row
    assert "open: unrealized P&L unknown (mark unknown: daemon not running)" in out
    for acct in (by_account(report)[PLATFORM], by_account(report)[BOB]):
        (position,) = acct["open_positions"]
        assert position["mark_price"] is None and position["unrealized_pnl_usd"] is None
        assert position["mark_unknown"] == "daemon not running"
        assert acct["paper_equity_usd"] is None and acct["venue_balance_usd"] is None
    # The store's own figures do not need the daemon.
    assert by_account(report)[PLATFORM]["today"]["realized_pnl_usd"] == pytest.approx(12.5)


def test_todays_realized_pnl_and_fees_per_account(data_dir):
    """Today's (UTC) closes and fills only: the ones two days ago are not today's."""
    fill_store(data_dir)
    proc, code, report = run_text_and_json(ACTIVE, base_env(data_dir))
    assert proc.returncode == code == 0
    accounts = by_account(report)
    assert accounts[PLATFORM]["today"] == {
        "realized_pnl_usd": pytest.approx(12.5),
        "fees_usd": pytest.approx(0.5),
        "closed_positions": 1,
        "fills": 1,
    }
    assert accounts[BOB]["today"] == {
        "realized_pnl_usd": 0.0,
        "fees_usd": 0.0,
        "closed_positions": 0,
        "fills": 0,
    }
    platform = proc.stdout.split(f"{PLATFORM}: ", 1)[1]
    assert "today (UTC): realized P&L +$12.50 (net of fees), fees paid $0.50" in platform
    assert "today (UTC): realized P&L $0.00 (net of fees), fees paid $0.00" in proc.stdout


def test_paper_equity_and_venue_balance_are_labelled(data_dir):
    fill_store(data_dir)
    write_status(data_dir, pid=os.getpid(), accounts={PLATFORM: account_status(PLATFORM)})
    proc, code, report = run_text_and_json(ACTIVE, base_env(data_dir))
    assert proc.returncode == code == 0
    assert "Paper mode: paper equity is the simulated wallet's worth, venue balance" in proc.stdout
    platform = proc.stdout.split(f"{PLATFORM}: ", 1)[1]
    assert "paper equity $10,050.00, venue balance $1,234.50" in platform
    acct = by_account(report)[PLATFORM]
    assert (acct["paper_equity_usd"], acct["venue_balance_usd"]) == (10050.0, 1234.5)

    # Live: the account trades at the venue; there is no paper equity to show.
    with Store(db_path(data_dir, "live"), PLATFORM) as store:
        store.open_position("BTC/USD", 0.01, 50000.0, 49000.0, None, None, time.time())
    live = account_status(PLATFORM, paper_equity_usd=None)
    write_status(data_dir, pid=os.getpid(), accounts={PLATFORM: live}, mode="live")
    proc, code, report = run_text_and_json(ACTIVE, base_env(data_dir, NIJA_MODE="live"))
    assert proc.returncode == code == 0
    assert "paper equity" not in proc.stdout.lower() and "Paper mode" not in proc.stdout
    assert "    venue balance $1,234.50" in proc.stdout
    acct = by_account(report)[PLATFORM]
    assert (acct["paper_equity_usd"], acct["venue_balance_usd"]) == (None, 1234.5)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (61234.5, "61,234.50"),  # at least two decimals
        (50512.3456, "50,512.35"),
        (3000.0, "3,000.00"),
        (150.25, "150.25"),
        (25.12, "25.12"),  # no trailing zero past the second decimal
        (15.12345, "15.123"),  # five significant digits
        (1.23456, "1.2346"),
        (0.5, "0.50"),
        (0.512341, "0.51234"),
        (0.0000123456, "0.00001235"),  # at most eight decimals
        (None, None),
    ],
)
def test_prices_are_shown_to_five_significant_digits(value, text):
    assert price(value) == text


def test_pnl_is_signed_and_zero_is_not():
    assert (signed_usd(5.123), signed_usd(-3.4), signed_usd(0.001), signed_usd(None)) == (
        "+$5.12",
        "-$3.40",
        "$0.00",
        None,
    )


@pytest.mark.system  # starts bot.py: the demo trades within its first minute
def test_the_real_daemons_marks_value_its_open_positions(tmp_path):
    daemon = start_daemon(clean_env(), tmp_path)
    env = clean_env(NIJA_DATA_DIR=str(daemon.data_dir))

    def an_open_position() -> dict | None:
        proc = subprocess.run(
            [sys.executable, ACTIVE, "--json", "--env-file", str(tmp_path / "no.env")],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        report = json.loads(proc.stdout)  # no accounts listed before the first order
        positions = [p for a in by_account(report).values() for p in a["open_positions"]]
        return positions[0] if positions else None

    try:
        wait_for((daemon.data_dir / "status.json").exists, 30, "the daemon's status.json")
        position = wait_for(an_open_position, timeout=100, what="an open position in the demo")
        assert daemon.alive(), "the daemon exited"
        # Valued at the daemon's last price of that symbol, which status.json carries.
        assert position["mark_unknown"] is None and position["mark_price"] > 0
        unrealized = (position["mark_price"] - position["entry_price"]) * position["quantity"]
        assert position["unrealized_pnl_usd"] == pytest.approx(unrealized)
    finally:
        assert daemon.stop() == 0


def test_with_a_database_url_the_store_is_read_from_postgresql(data_dir, postgres_url):
    """NIJA_DATABASE_URL: the script reads PostgreSQL (read-only) and names the server and
    database, never the password; no SQLite file is looked for or made."""
    from bot.store.pg import PostgresDatabase
    from nija_testkit.postgres import USER

    db = PostgresDatabase(postgres_url, "paper")
    try:
        fill_store(data_dir, database=db)
    finally:
        db.close()
    env = base_env(data_dir, NIJA_DATABASE_URL=postgres_url)
    proc, code, report = run_text_and_json(ACTIVE, env)
    assert proc.returncode == code == 0, proc.stdout + proc.stderr
    assert report["db"].startswith('PostgreSQL database "nija" on 127.0.0.1:')
    assert by_account(report)[PLATFORM]["today"]["realized_pnl_usd"] == pytest.approx(12.5)
    assert [p["symbol"] for p in by_account(report)[BOB]["open_positions"]] == ["ETH/USD"]
    password = postgres_url.split(f"{USER}:", 1)[1].split("@", 1)[0]
    assert password not in proc.stdout + proc.stderr + json.dumps(report)
    assert not list(data_dir.glob("*.db"))
