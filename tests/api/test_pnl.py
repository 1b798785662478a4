"""P&L per account and UTC day over real HTTP: ``/api/v1/pnl``, one account's, as JSON and CSV,
and today's in ``/api/v1/accounts``; the rows written into the daemon's own store."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
import requests

from bot.store.pnl import CSV_COLUMNS, day_start
from bot.store.writer import Store
from nija_testkit.clock import FakeClock
from tests.api.conftest import ALICE, BOB, TOKEN, ApiDaemon
from tests.store.trades import Desk

CAROL = "user/carol/KRAKEN"  # in the store, not traded by this daemon
# The daemon's fake clock starts at 2026-01-01T00:00Z, and any trade of its first cycles is
# stamped then; the report's days are the two after it.
YESTERDAY, TODAY = date(2026, 1, 2), date(2026, 1, 3)
HOUR = 3600.0


@pytest.fixture
def traded(daemon) -> dict[str, float]:
    """Alice won yesterday and lost today (a fee in BTC each time); Carol won today."""
    y, t = day_start(YESTERDAY), day_start(TODAY)
    with Store(daemon.sup.db, ALICE) as a, Store(daemon.sup.db, CAROL) as c:
        alice, carol = Desk(a), Desk(c)
        pnl = {
            "alice_y": alice.round_trip("BTC/USD", 0.01, 60000, 61000, (0.6, 0.61), y + HOUR,
                                        y + 2 * HOUR, fee_in_base=True),
            "alice_t": alice.round_trip("BTC/USD", 0.01, 61000, 60500, (0.61, 0.605), t + HOUR,
                                        t + 2 * HOUR, fee_in_base=True),
            "carol_t": carol.round_trip("ETH/USD", 1.0, 3000, 3100, (3.0, 3.1), t, t + HOUR),
        }  # fmt: skip
    daemon.clock.set_wall(t + 12 * HOUR)
    return pnl


def get_accepting(daemon: ApiDaemon, path: str, accept: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": accept}
    return requests.get(daemon.url + path, headers=headers, timeout=10)


def by(rows: list[dict]) -> dict[tuple[str, str], dict]:
    return {(r["account"], r["day"]): r for r in rows}


def test_every_accounts_pnl_per_day_as_json(daemon, traded):
    answer = daemon.get("/api/v1/pnl?days=2")
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert (doc["from"], doc["to"], doc["days"]) == ("2026-01-02", "2026-01-03", 2)
    rows = by(doc["rows"])
    assert sorted({k for k, _ in rows}) == [ALICE, BOB, CAROL]  # the daemon's and the store's
    alice_y = rows[ALICE, "2026-01-02"]
    assert alice_y["broker"] == "KRAKEN"
    assert alice_y["realized_pnl_usd"] == pytest.approx(traded["alice_y"])
    assert alice_y["fees_usd"] == pytest.approx(1.21)
    assert (alice_y["trades"], alice_y["wins"], alice_y["losses"], alice_y["win_rate"]) == (
        1, 1, 0, 1.0
    )  # fmt: skip
    alice_t = rows[ALICE, "2026-01-03"]
    assert (alice_t["trades"], alice_t["losses"], alice_t["win_rate"]) == (1, 1, 0.0)
    assert alice_t["realized_pnl_usd"] == pytest.approx(traded["alice_t"]) and traded["alice_t"] < 0
    for day in ("2026-01-02", "2026-01-03"):  # Bob never traded in these days
        assert rows[BOB, day] | {"day": None} == {
            "account": BOB, "broker": "KRAKEN", "day": None, "realized_pnl_usd": 0.0,
            "fees_usd": 0.0, "trades": 0, "wins": 0, "losses": 0, "win_rate": None,
        }  # fmt: skip
    totals = {t["account"]: t for t in doc["totals"]}
    assert totals[ALICE]["trades"] == 2 and totals[ALICE]["win_rate"] == 0.5
    assert totals[ALICE]["realized_pnl_usd"] == pytest.approx(traded["alice_y"] + traded["alice_t"])
    assert totals[BOB]["win_rate"] is None


def test_csv_export_parses_back_to_the_json_rows(daemon, traded):
    as_json = daemon.get("/api/v1/pnl?days=2").json()["rows"]
    for answer in (
        daemon.get("/api/v1/pnl?days=2&format=csv"),
        get_accepting(daemon, "/api/v1/pnl?days=2", "text/csv"),
    ):
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/csv")
        assert answer.headers["content-disposition"] == (
            'attachment; filename="nija-pnl-2026-01-02-to-2026-01-03.csv"'
        )
        reader = csv.DictReader(io.StringIO(answer.text))
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        parsed = list(reader)
        assert len(parsed) == len(as_json) == 6
        for row, expected in zip(parsed, as_json, strict=True):
            assert row == {k: "" if v is None else str(v) for k, v in expected.items()}
        carol = by(parsed)[CAROL, "2026-01-03"]
        assert float(carol["realized_pnl_usd"]) == pytest.approx(traded["carol_t"])
        assert float(carol["fees_usd"]) == pytest.approx(6.1) and carol["win_rate"] == "1.0"
    # ?format=json wins over the Accept header.
    forced = get_accepting(daemon, "/api/v1/pnl?days=2&format=json", "text/csv")
    assert forced.json()["rows"] == as_json


def test_one_accounts_pnl(daemon, traded):
    doc = daemon.get(f"/api/v1/accounts/{ALICE}/pnl?days=2").json()
    assert {r["account"] for r in doc["rows"]} == {ALICE} and len(doc["rows"]) == 2
    assert by(doc["rows"])[ALICE, "2026-01-02"]["wins"] == 1
    answer = daemon.get("/api/v1/accounts/User/Alice/kraken/pnl?days=1&format=csv")
    assert (
        'filename="nija-pnl-user-alice-KRAKEN-2026-01-03-to-2026-01-03.csv"'
        in (answer.headers["content-disposition"])
    )
    (row,) = csv.DictReader(io.StringIO(answer.text))
    assert (row["account"], row["day"], row["losses"], row["win_rate"]) == (
        ALICE, "2026-01-03", "1", "0.0"
    )  # fmt: skip
    # Without ?days: the last 7 days, today included.
    week = daemon.get(f"/api/v1/accounts/{BOB}/pnl").json()
    assert (week["from"], week["to"], len(week["rows"])) == ("2025-12-28", "2026-01-03", 7)


def test_todays_pnl_is_in_the_accounts_document(daemon, traded):
    listed = daemon.get("/api/v1/accounts").json()["accounts"]
    alice = listed[ALICE]["pnl_today"]
    assert alice["day"] == "2026-01-03" and alice["trades"] == 1 and alice["win_rate"] == 0.0
    assert alice["realized_pnl_usd"] == pytest.approx(traded["alice_t"])
    assert alice["fees_usd"] == pytest.approx(1.215)
    assert listed[BOB]["pnl_today"] == {
        "day": "2026-01-03", "realized_pnl_usd": 0.0, "fees_usd": 0.0, "trades": 0, "wins": 0,
        "losses": 0, "win_rate": None,
    }  # fmt: skip
    assert daemon.get(f"/api/v1/accounts/{ALICE}").json()["pnl_today"] == alice


def test_a_demos_pnl_days_are_its_trading_clocks(daemon, traded):
    """In the demo the accounts trade and record on a faster clock than the daemon's own: the
    P&L days, today's included, and status.json's ``trading_clock`` follow it."""
    assert daemon.sup.get_multi_broker_status()["trading_clock"] is None  # a real daemon
    demo = FakeClock(wall_start=daemon.clock.wall() - 2 * 86400.0)  # two days behind
    daemon.sup.trading_clock = demo
    doc = daemon.get("/api/v1/pnl?days=1").json()
    assert (doc["from"], doc["to"]) == ("2026-01-01", "2026-01-01"), doc
    listed = daemon.get("/api/v1/accounts").json()["accounts"]
    assert listed[ALICE]["pnl_today"]["day"] == "2026-01-01"
    demo.set_wall(day_start(YESTERDAY) + 3 * HOUR)  # the day of alice's win
    alice = daemon.get("/api/v1/accounts").json()["accounts"][ALICE]["pnl_today"]
    assert (alice["day"], alice["trades"], alice["wins"]) == ("2026-01-02", 1, 1)
    status = daemon.sup.get_multi_broker_status()["trading_clock"]
    assert status == {"now": "2026-01-02T03:00:00+00:00", "speed": 1.0}


BAD_REQUESTS = [
    ("/api/v1/pnl?days=0", 400, "days must be a whole number of UTC days from 1 to 366"),
    ("/api/v1/pnl?days=abc", 400, "not 'abc'"),
    ("/api/v1/pnl?days=400", 400, "from 1 to 366"),
    ("/api/v1/pnl?format=xml", 400, "format must be json or csv, not 'xml'"),
    (f"/api/v1/accounts/{ALICE}/pnl?days=-2", 400, "not '-2'"),
    ("/api/v1/accounts/user/zed/KRAKEN/pnl", 404, "this daemon has no account user/zed"),
    ("/api/v1/accounts/user/ /KRAKEN/pnl", 400, "malformed account key"),
]


def test_bad_pnl_requests_name_the_problem(daemon):
    for path, status, words in BAD_REQUESTS:  # one daemon for all: each start takes a second
        answer = daemon.get(path)
        assert answer.status_code == status, (path, answer.text)
        assert words in answer.json()["error"] and answer.json()["status"] == status, path
    for path in ("/api/v1/pnl", f"/api/v1/accounts/{ALICE}/pnl"):
        assert daemon.get(path, token=None).status_code == 401, path


def test_a_store_that_cannot_be_read_is_an_error_never_a_report_of_zeros(daemon):
    daemon.sup.db.path.rename(daemon.sup.db.path.with_name("aside.db"))
    for path in ("/api/v1/pnl", f"/api/v1/accounts/{ALICE}/pnl?format=csv"):
        answer = daemon.get(path)
        assert answer.status_code == 503, answer.text
        assert "cannot read the state store" in answer.json()["error"]
        assert "no database" in answer.json()["error"]
    listed = daemon.get("/api/v1/accounts").json()
    assert listed["accounts"][ALICE]["pnl_today"] is None and listed["store_error"]
    assert daemon.get(f"/api/v1/accounts/{ALICE}").json()["pnl_today"] is None
