"""check_active_trading_per_broker.py --pnl: realized P&L, fees, trades and win rate per account
and UTC day, as a table, JSON and CSV (the API's format), run as users run it."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from datetime import UTC, datetime, timedelta

import pytest

from bot.store.pnl import CSV_COLUMNS, day_start, utc_day
from bot.store.writer import Store, db_path
from tests.cli.scripts import (
    ACTIVE,
    KEY,
    SECRET,
    base_env,
    dead_pid,
    line_of,
    run,
    run_text_and_json,
    write_status,
)
from tests.store.trades import Desk

ALICE = "user/alice/BINANCE"
PLATFORM = "platform/platform/KRAKEN"  # configured by the environment below, never traded
HOUR = 3600.0
# The rows are two and one days old, and the script is asked for four days: should midnight
# (UTC) pass while it runs, its days shift by one and still hold both.
DAYS = "4"


@pytest.fixture
def traded(data_dir) -> dict[str, object]:
    """Alice won two days ago and lost yesterday, each fee taken in the coin bought."""
    today = utc_day(time.time())
    old, yesterday = today - timedelta(days=2), today - timedelta(days=1)
    with Store(db_path(data_dir, "paper"), ALICE) as store:
        alice = Desk(store)
        won = alice.round_trip(
            "BTC/USDT",
            0.01,
            60000,
            61000,
            (0.6, 0.61),
            day_start(old) + HOUR,
            day_start(old) + 2 * HOUR,
            fee_in_base=True,
        )
        lost = alice.round_trip("BTC/USDT", 0.01, 61000, 60500, (0.61, 0.605),
                                day_start(yesterday) + HOUR, day_start(yesterday) + 2 * HOUR,
                                fee_in_base=True)  # fmt: skip
    return {"old": old.isoformat(), "yesterday": yesterday.isoformat(), "won": won, "lost": lost}


def env(data_dir):
    return base_env(data_dir, KRAKEN_API_KEY=KEY, KRAKEN_API_SECRET=SECRET)


def by(rows: list[dict]) -> dict[tuple[str, str], dict]:
    return {(r["account"], r["day"]): r for r in rows}


def test_pnl_per_account_and_day_as_a_table_and_json(data_dir, traded):
    proc, code, report = run_text_and_json(ACTIVE, env(data_dir), "--pnl", "--days", DAYS)
    assert proc.returncode == code == 0, proc.stdout + proc.stderr
    assert report["days"] == 4 and len(report["rows"]) == 8  # two accounts, four days each
    rows = by(report["rows"])
    won = rows[ALICE, traded["old"]]
    assert won["realized_pnl_usd"] == pytest.approx(traded["won"])
    assert won["fees_usd"] == pytest.approx(1.21)  # the fee in BTC, at its USD value
    assert (won["trades"], won["wins"], won["losses"], won["win_rate"]) == (1, 1, 0, 1.0)
    lost = rows[ALICE, traded["yesterday"]]
    assert (lost["trades"], lost["losses"], lost["win_rate"]) == (1, 1, 0.0)
    # The configured account that never traded: every day zeros, no win rate.
    platform = [r for r in report["rows"] if r["account"] == PLATFORM]
    assert len(platform) == 4 and all(r["trades"] == 0 and r["win_rate"] is None for r in platform)
    (alice_total,) = [t for t in report["totals"] if t["account"] == ALICE]
    assert (alice_total["trades"], alice_total["win_rate"]) == (2, 0.5)

    out = proc.stdout
    assert "Realized P&L, fees, trades and win rate per UTC day" in out and "(4 days)" in out
    assert "== BINANCE ==" in out and "== KRAKEN ==" in out
    alice = out.split(f"{ALICE}:", 1)[1]
    header = line_of(alice, "    DAY (UTC)")
    row = line_of(alice, f"    {traded['old']}")
    for column, cell in (("REALIZED", "+$8.78"), ("FEES", "$1.21"), ("WIN RATE", "100%")):
        assert row.index(cell) == header.index(column), (column, row)
    assert line_of(alice, f"    {traded['yesterday']}").split()[-1] == "0%"
    assert line_of(alice, "    total").split()[-1] == "50%"
    platform_text = out.split(f"{PLATFORM}:", 1)[1]
    assert line_of(platform_text, "    total").split()[1:] == ["$0.00", "$0.00", "0", "0", "0", "-"]
    assert out.rstrip().endswith("All well.")


def test_csv_to_a_file_and_to_stdout_is_the_json_rows(data_dir, traded, tmp_path):
    target = tmp_path / "pnl.csv"
    proc = run(ACTIVE, env(data_dir), "--json", "--days", DAYS, "--csv", str(target))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["csv_file"] == str(target)
    stdout = run(ACTIVE, env(data_dir), "--days", DAYS, "--csv", "-")
    assert stdout.returncode == 0, stdout.stderr
    for text in (target.read_text(encoding="utf-8"), stdout.stdout):
        reader = csv.DictReader(io.StringIO(text))
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        parsed = list(reader)
        assert parsed == [
            {k: "" if v is None else str(v) for k, v in row.items()} for row in report["rows"]
        ]
    assert by(parsed)[ALICE, traded["yesterday"]]["losses"] == "1"


def test_a_store_that_cannot_be_read_is_an_error_never_zeros(data_dir, tmp_path):
    db_path(data_dir, "paper").write_bytes(b"not a database, whatever it once was" * 100)
    proc, code, report = run_text_and_json(ACTIVE, env(data_dir), "--pnl")
    assert proc.returncode == code == 1
    assert report["rows"] is None and report["totals"] is None
    (why,) = report["attention"]
    assert why.startswith("cannot read the state store") and "not a database" in why
    assert "Needs attention:" in proc.stdout and "$0.00" not in proc.stdout
    for target in ("-", str(tmp_path / "never.csv")):
        csv_run = run(ACTIVE, env(data_dir), "--csv", target)
        assert csv_run.returncode == 1 and csv_run.stdout == ""
        assert (
            "cannot read the state store" in csv_run.stderr and "no CSV written" in csv_run.stderr
        )
    assert not (tmp_path / "never.csv").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--days", "0"), "days must be a whole number of UTC days from 1 to 366"),
        (("--pnl", "--days", "a week"), "not 'a week'"),
        (("--csv", "-"), "--csv - and --json would both print on stdout"),
    ],
)
def test_bad_pnl_arguments_exit_2_naming_the_problem(data_dir, args, words):
    proc = run(ACTIVE, env(data_dir), "--json", *args)
    assert proc.returncode == 2
    error = json.loads(proc.stdout)
    assert words in error["error"] and error["exit_code"] == 2


@pytest.mark.parametrize("running", [True, False])
def test_a_demos_days_are_its_own_clocks(data_dir, running):
    """The demo's accounts trade and record on a clock 60 times faster than the system's:
    run near midnight, its trades are stamped tomorrow. Its P&L days follow that clock
    (status.json's ``trading_clock``), so today's report holds them."""
    now = time.time()
    demo_now = now + 30 * HOUR  # its clock a day and more ahead: another UTC day whenever run
    with Store(db_path(data_dir, "paper"), ALICE) as store:
        Desk(store).round_trip("BTC/USDT", 0.01, 60000, 61000, (0.6, 0.61),
                               demo_now - 2 * HOUR, demo_now - HOUR)  # fmt: skip
    clock = {"now": datetime.fromtimestamp(demo_now, UTC).isoformat(), "speed": 60.0}
    pid = os.getpid() if running else dead_pid()
    write_status(data_dir, pid=pid, demo=True, trading_clock=clock)
    proc = run(ACTIVE, env(data_dir), "--pnl", "--days", "1", "--json")
    report = json.loads(proc.stdout)
    demo_day = utc_day(demo_now).isoformat()  # the running demo's clock moved on a little
    assert report["to"] == demo_day and report["from"] == demo_day, report
    assert "demo's clock, which runs 60 times as fast" in report["clock_note"]
    text = run(ACTIVE, env(data_dir), "--pnl", "--days", "1").stdout
    assert "Days on the demo's clock" in text and f"{demo_day} to {demo_day}" in text
    (alice,) = [t for t in report["totals"] if t["account"] == ALICE]
    assert alice["trades"] == 1 and alice["wins"] == 1, alice
    # The report without --pnl: today's P&L and orders are the demo's today's too.
    report = json.loads(run(ACTIVE, env(data_dir), "--json").stdout)
    accounts = {a["account"]: a for b in report["brokers"] for a in b["accounts"]}
    assert accounts[ALICE]["today"]["realized_pnl_usd"] > 0, accounts[ALICE]
    assert len(accounts[ALICE]["orders_today"]) == 2
    # A real daemon's status (no trading_clock): the system's days, which hold no trade.
    write_status(data_dir, pid=pid)
    report = json.loads(run(ACTIVE, env(data_dir), "--pnl", "--days", "1", "--json").stdout)
    assert report["to"] == utc_day(time.time()).isoformat() and report["clock_note"] is None
    assert report["totals"] and all(t["trades"] == 0 for t in report["totals"]), report
