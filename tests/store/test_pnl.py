"""P&L per account and UTC day (bot.store.pnl), over a real SQLite store written through the
``Store`` API as the engine writes it: orders, fills (fees in USD, a buy's fee taken in the
coin bought included) and positions closed with their P&L net of both fees."""

from __future__ import annotations

import csv
import io
import sqlite3
from datetime import date, timedelta

import pytest

from bot.store import pnl
from bot.store.backend import Database
from bot.store.pnl import PnlFigures, day_start, last_days, parse_days, pnl_csv, pnl_rows
from bot.store.writer import ReadOnlyStore, Store, StoreError
from tests.store.trades import Desk

ALICE = "user/alice/BINANCE"  # pays a buy's fee in the coin bought
BOB = "platform/platform/KRAKEN"  # pays fees in USD
CAROL = "user/carol/OKX"  # configured, never traded
D1, D2, D3 = date(2024, 5, 1), date(2024, 5, 2), date(2024, 5, 3)
HOUR = 3600.0


@pytest.fixture
def path(database: Database) -> Database:
    """The state store on each backend (tests/conftest.py's ``database``)."""
    return database


SQLITE_ONLY = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


@pytest.fixture
def trades(path: Database) -> dict[str, float]:
    """Two accounts over two UTC days (and a trade either side of them); the P&L of each."""
    t1, t2 = day_start(D1), day_start(D2)
    out: dict[str, float] = {}
    with Store(path, ALICE) as a, Store(path, BOB) as b:
        alice, bob = Desk(a), Desk(b)
        # Before D1 and after D3: outside every report below.
        alice.round_trip("ETH/USDT", 1.0, 3000, 3100, (3.0, 3.1), t1 - 2 * HOUR, t1 - 1.0)
        bob.round_trip("SOL/USD", 1.0, 150, 140, (0.15, 0.14), t1 + 3 * 86400, t1 + 3 * 86400 + 1)
        # Alice, D1: a win closed a microsecond before midnight; fees taken in BTC (0.1 %).
        out["a1"] = alice.round_trip("BTC/USDT", 0.01, 60000, 61000, (0.6, 0.6093906),
                                     t1 + 10 * HOUR, t2 - 1e-6, fee_in_base=True)  # fmt: skip
        # Alice, D2: entry filled at midnight exactly (D2's), a loss; an entry left open.
        out["a2"] = alice.round_trip("BTC/USDT", 0.01, 62000, 61000, (0.62, 0.6093906),
                                     t2, t2 + 12 * HOUR, fee_in_base=True)  # fmt: skip
        alice.buy("BTC/USDT", 0.01, 63000, 0.63, t2 + 13 * HOUR, fee_in_base=True)
        # Bob: entered on D1, closed on D2 at exactly zero after fees; a win on D2.
        out["b0"] = bob.round_trip("ETH/USD", 1.0, 3000, 3003, (1.5, 1.5), t1 + HOUR, t2 + 9 * HOUR)
        out["b2"] = bob.round_trip("SOL/USD", 10.0, 150, 160, (0.75, 0.8), t2 + 10 * HOUR,
                                   t2 + 11 * HOUR)  # fmt: skip
    assert out["b0"] == 0.0 and out["a1"] > 0 > out["a2"]
    return out


def test_per_day_figures_of_two_accounts(path, trades):
    with ReadOnlyStore(path) as store:
        report = store.pnl_report(D1, D3, accounts=[CAROL])
    assert (report.first_day, report.last_day, report.days) == (D1, D3, 3)
    by = {(a.account_key, day): f for a in report.accounts for day, f in a.days.items()}
    assert [a.account_key for a in report.accounts] == [BOB, ALICE, CAROL]  # sorted keys
    # The fee taken in BTC counts at its USD value, on the day of its fill.
    assert by[ALICE, D1] == PnlFigures(
        pytest.approx(trades["a1"]), pytest.approx(0.6 + 0.6093906), 1, 1, 0
    )
    assert by[ALICE, D1].win_rate == 1.0
    # D2: the loss, its two fees and the fee of the entry still open; a win rate of 0 is a
    # real one (a trade closed and lost).
    assert by[ALICE, D2] == PnlFigures(
        pytest.approx(trades["a2"]), pytest.approx(0.62 + 0.6093906 + 0.63), 1, 0, 1
    )
    assert by[ALICE, D2].win_rate == 0.0
    # Bob's entry fee is D1's; the trade itself (zero after fees: neither won nor lost) is D2's.
    assert by[BOB, D1] == PnlFigures(0.0, pytest.approx(1.5), 0, 0, 0)
    assert by[BOB, D1].win_rate is None
    assert by[BOB, D2] == PnlFigures(pytest.approx(trades["b2"]), pytest.approx(3.05), 2, 1, 0)
    assert by[BOB, D2].win_rate == 0.5
    # Empty days, and an account that never traded: zeros, and no win rate.
    for key in (ALICE, BOB, CAROL):
        assert by[key, D3] == PnlFigures() and by[key, D3].win_rate is None
    assert by[CAROL, D1] == by[CAROL, D2] == PnlFigures()
    totals = {a.account_key: a.total for a in report.accounts}
    assert totals[ALICE].trades == 2 and totals[ALICE].win_rate == 0.5
    assert totals[ALICE].realized_pnl_usd == pytest.approx(trades["a1"] + trades["a2"])
    assert totals[BOB].win_rate == 0.5 and totals[CAROL].win_rate is None


def test_one_account_and_one_day(path, trades):
    with ReadOnlyStore(path) as store:
        (alice,) = store.pnl_report(D2, D2, account_key=ALICE).accounts
        today = store.daily_pnl(D2, D2)
    assert alice.account_key == ALICE and list(alice.days) == [D2]
    assert alice.days[D2].trades == 1
    # Only accounts with a close or a fill that day; neither D1's nor D3's rows.
    assert set(today) == {(ALICE, D2), (BOB, D2)}
    assert today[BOB, D2].fees_usd == pytest.approx(3.05)


def test_the_days_around_the_trades_hold_what_is_outside_the_report(path, trades):
    """The trade closed a second before D1 and the one on D4 exist, just not in D1..D3."""
    with ReadOnlyStore(path) as store:
        before = store.daily_pnl(D1 - timedelta(days=1), D1 - timedelta(days=1))
        after = store.daily_pnl(D3 + timedelta(days=1), D3 + timedelta(days=1))
    assert before[ALICE, D1 - timedelta(days=1)].trades == 1
    assert after[BOB, D3 + timedelta(days=1)].losses == 1


@SQLITE_ONLY  # PostgreSQL runs its own rounding CAST in every other test here
def test_a_rounding_cast_buckets_the_same_days(path, trades):
    """PostgreSQL's CAST to an integer rounds where SQLite's truncates: the day computed
    with a rounding cast (run here as ROUND) is the same."""
    truncating = pnl._per_day(pnl._CLOSED_ROWS)
    rounding = truncating.replace(
        "CAST(at / 86400.0 AS BIGINT)", "CAST(ROUND(at / 86400.0) AS BIGINT)"
    )
    assert rounding != truncating
    span = (day_start(D1) - 86400, day_start(D3) + 2 * 86400)
    conn = sqlite3.connect(path.path)
    try:
        days = [sorted(conn.execute(sql, span).fetchall()) for sql in (truncating, rounding)]
    finally:
        conn.close()
    assert days[0] == days[1]
    epoch_day = (D1 - date(1970, 1, 1)).days
    assert sorted({day for _, _, day in days[0]}) == [epoch_day - 1, epoch_day, epoch_day + 1,
                                                       epoch_day + 3]  # fmt: skip


def test_rows_and_csv_are_one_format(path, trades):
    with ReadOnlyStore(path) as store:
        report = store.pnl_report(D1, D3, accounts=[CAROL])
    rows = pnl_rows(report)
    assert len(rows) == 9 and rows[0]["account"] == BOB and rows[0]["day"] == "2024-05-01"
    parsed = list(csv.DictReader(io.StringIO(pnl_csv(report))))
    assert list(parsed[0]) == list(pnl.CSV_COLUMNS)
    assert len(parsed) == len(rows)
    alice_d1 = next(r for r in parsed if r["account"] == ALICE and r["day"] == "2024-05-01")
    assert alice_d1["broker"] == "BINANCE" and alice_d1["trades"] == "1"
    assert float(alice_d1["realized_pnl_usd"]) == pytest.approx(trades["a1"])
    assert float(alice_d1["win_rate"]) == 1.0
    carol_d3 = next(r for r in parsed if r["account"] == CAROL and r["day"] == "2024-05-03")
    assert carol_d3["win_rate"] == "" and carol_d3["realized_pnl_usd"] == "0.0"
    # Floats are rounded past any fee's size: no 12.499999999999998 in an export.
    bob_d2 = next(r for r in rows if r["account"] == BOB and r["day"] == "2024-05-02")
    assert bob_d2["fees_usd"] == 3.05


@SQLITE_ONLY
def test_a_store_that_cannot_be_read_is_an_error_never_zeros(path, trades):
    conn = sqlite3.connect(path.path, isolation_level=None)
    conn.execute("DROP TABLE fills")
    conn.close()
    with ReadOnlyStore(path) as store, pytest.raises(StoreError, match="daily_pnl"):
        store.pnl_report(D1, D3)


def test_an_empty_store_reports_zeros_for_the_accounts_asked(path):
    Store(path, ALICE).close()
    with ReadOnlyStore(path) as store:
        report = store.pnl_report(D1, D2, accounts=[ALICE])
    (alice,) = report.accounts
    assert alice.days == {D1: PnlFigures(), D2: PnlFigures()}
    with ReadOnlyStore(path) as store, pytest.raises(ValueError, match="before it starts"):
        store.pnl_report(D2, D1)


@pytest.mark.parametrize("text", ["0", "-1", "367", "abc", "1.5", "", "٣", "+3"])
def test_days_must_be_a_whole_number_in_range(text):
    with pytest.raises(ValueError, match=r"days must be a whole number .* not"):
        parse_days(text)


def test_days_and_their_bounds():
    assert parse_days(None) == pnl.DEFAULT_DAYS and parse_days(" 30 ") == 30
    assert parse_days("366") == 366
    noon = day_start(D2) + 12 * HOUR
    assert last_days(noon, 1) == (D2, D2) and last_days(noon, 7) == (D2 - timedelta(6), D2)
    assert last_days(day_start(D2), 2) == (D1, D2)  # midnight is the new day's
