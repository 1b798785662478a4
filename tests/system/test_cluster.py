"""Two real bot.py nodes on one PostgreSQL, live against the Alpaca emulator: accounts move
between them by leases, and no order is ever placed twice.

Orders flow at the real clock's 1-minute candle closes (``crash_market``). Node a starts
alone and trades all four accounts; node b joins and takes its share (a hands two back,
workers first); a is SIGKILLed right after one of its orders reached the venue; b takes a's
accounts over within the TTL, the lock delay and a reconciliation, and trades them at the
next close. The venue's request log is then audited against the lease history: every order
arrived within the tenure that stored it, and no client order id arrived twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg
import pytest

from bot.store.pg import PostgresDatabase
from nija_testkit.emulator.venues import start_venue
from nija_testkit.harness import DaemonRun, account_env, clean_env, start_daemon, wait_for
from nija_testkit.reliability.crash_compare import VIOLATIONS, compare
from nija_testkit.reliability.crash_market import CandleDriver
from nija_testkit.reliability.crash_restart import CRASH_VENUES
from nija_testkit.reliability.lease_audit import SentOrder, audit

TTL, LOCK_DELAY = 3.0, 1.0
VENUE = CRASH_VENUES["ALPACA"]
USERS = ("u1", "u2", "u3")


@pytest.fixture
def alpaca():
    handle = start_venue("ALPACA", timeout_seconds=5.0)
    yield handle
    handle.stop()


def held_by(run: DaemonRun) -> set[str]:
    """The accounts this node's status.json says it holds and trades."""
    accounts = run.status().get("accounts", {})
    return {
        k
        for k, a in accounts.items()
        if (a.get("lease") or {}).get("held") and a.get("thread") == "running"
    }


@pytest.mark.long(40)
def test_a_killed_node_s_accounts_move_to_the_other_and_no_order_is_placed_twice(
    tmp_path, alpaca, postgres_url
):
    venue = alpaca.venue
    keys = {alpaca.credentials.api_key: "platform/platform/ALPACA"}
    ledgers = {"platform/platform/ALPACA": alpaca.ledger}
    env = clean_env(
        NIJA_MODE="live",
        NIJA_CYCLE_SECONDS="0.5",
        NIJA_CALL_TIMEOUT_SECONDS="5",
        NIJA_REQUEST_BUDGETS="false",
        NIJA_TIMEFRAME="1m",
        NIJA_STATUS_LOG_SECONDS="600",
        NIJA_DATABASE_URL=postgres_url,
        NIJA_LEASE_TTL_SECONDS=str(TTL),
        NIJA_LEASE_LOCK_DELAY_SECONDS=str(LOCK_DELAY),
        ALPACA_BASE_URL=alpaca.server.url,
        ALPACA_DATA_URL=alpaca.server.url,
        ALPACA_SYMBOLS=VENUE.symbols,
        **account_env("ALPACA", None, alpaca.credentials),
    )
    for i, user in enumerate(USERS):
        creds = VENUE.user_credentials(i + 1)
        ledgers[f"user/{user}/ALPACA"] = venue.add_account(
            creds.api_key, creds.api_secret, {"USD": 10_000.0}
        )
        keys[creds.api_key] = f"user/{user}/ALPACA"
        env.update(account_env("ALPACA", user, creds))
    driver = CandleDriver(venue.market, VENUE.tickers, 60)
    driver.start()
    driver.activate()

    def node(name: str) -> DaemonRun:
        (tmp_path / name).mkdir()
        return start_daemon(
            env | {"NIJA_NODE_ID": name, "NIJA_DATA_DIR": str(tmp_path / name / "data")},
            tmp_path / name,
            output=tmp_path / name / "console.log",
        )

    def orders_from(accounts: set[str], since: int) -> Callable[[], bool]:
        def sent() -> bool:
            requests = alpaca.server.requests_to("create_order")[since:]
            return any(keys.get(r.headers.get(VENUE.key_header)) in accounts for r in requests)

        return sent

    a = b = None
    try:
        a = node("a")
        wait_for(lambda: held_by(a) == set(ledgers), 30, "a trading all four accounts")
        b = node("b")
        wait_for(lambda: len(held_by(a)) == len(held_by(b)) == 2, 30, "two accounts each")
        on_a, on_b = held_by(a), held_by(b)
        assert not on_a & on_b
        # Kill a right after one of its orders reached the venue (the next candle close).
        seen = len(alpaca.server.requests_to("create_order"))
        wait_for(orders_from(on_a, seen), 75, "an order from an account of a")
        a.kill()
        killed = time.monotonic()
        wait_for(lambda: held_by(b) == set(ledgers), 30, "b holding every account")

        def reconciled() -> set[str]:
            return {e.account for e in b.events() if e.event == "reconciled"}

        # Held, then after the lock delay reconciled with the venue, before any trading.
        wait_for(lambda: on_a <= reconciled(), 30, "b reconciling a's accounts")
        took = time.monotonic() - killed
        # Within the TTL, the lock delay and a reconciliation (and this test's 0.1 s polls).
        assert took <= TTL + LOCK_DELAY + 10.0, took
        taken = {e.account for e in b.events() if e.event == "lease_taken_over"}
        assert taken == on_a
        # b trades a's accounts at the next close.
        seen = len(alpaca.server.requests_to("create_order"))
        wait_for(orders_from(on_a, seen), 75, "an order from a's accounts, sent by b")
        time.sleep(3.0)  # that close's orders all placed and settled
        assert b.stop() == 0
    finally:
        driver.stop()
        for run in (a, b):
            if run is not None and run.alive():
                run.kill()

    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM leases WHERE owner IS NOT NULL").fetchone() == (
            0,
        )
        moved = conn.execute(
            "SELECT DISTINCT node_id FROM orders WHERE account_key = ANY(%s) AND lease_epoch > 1",
            (sorted(on_a),),
        ).fetchall()
    assert ("b",) in moved  # orders of a's accounts stored by b, at the epochs it took over
    sent = [
        SentOrder(keys[r.headers[VENUE.key_header]], VENUE.client_id(r.body) or "", r.wall)
        for r in alpaca.server.requests_to("create_order")
    ]
    assert len(sent) >= 4
    # Every order arrived within the tenure that stored it; no client order id twice.
    assert audit(postgres_url, sent) == []
    db = PostgresDatabase(postgres_url, "live")
    try:
        found = compare(ledgers, db, venue.market, VENUE.tickers)
    finally:
        db.close()
    assert found == {k: set() for k in VIOLATIONS}, found
