"""The daemon with its state store on PostgreSQL (NIJA_DATABASE_URL): the account threads
write there, the API reads there, an operator's pause is audited there; sessions killed
under the running daemon cost no thread; the password reaches no output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bot.store.operator import OperatorStore
from nija_testkit.postgres import PostgresServer
from tests.api.conftest import ALICE, BOB, TOKEN, ApiDaemon, wait_for


@pytest.fixture
def pg_daemon(tmp_path: Path, postgres_url: str) -> Iterator[ApiDaemon]:
    d = ApiDaemon(tmp_path, NIJA_HTTP_TOKEN=TOKEN, NIJA_DATABASE_URL=postgres_url).start()
    try:
        wait_for(lambda: d.worker(ALICE).cycles >= 1 and d.worker(BOB).cycles >= 1, what="cycles")
        yield d
    finally:
        d.stop()
        d.sup.db.close()


def rows(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def test_the_accounts_store_on_postgresql_and_the_api_reads_it(
    pg_daemon: ApiDaemon, postgres_url: str, tmp_path: Path
) -> None:
    assert pg_daemon.sup.db.kind == "postgresql"
    assert not list(tmp_path.glob("*.db"))  # no SQLite file beside it
    wait_for(lambda: pg_daemon.worker(ALICE).cycles >= 2, what="a second cycle")
    counts = dict(rows(postgres_url, "SELECT account_key, count(*) FROM cycles GROUP BY 1"))
    assert set(counts) == {ALICE, BOB} and all(n >= 1 for n in counts.values())
    doc = pg_daemon.get(f"/api/v1/accounts/{ALICE}").json()
    assert doc["positions"] == [] and doc.get("store_error") is None
    assert pg_daemon.post(f"/api/v1/accounts/{ALICE}/pause").json()["outcome"] == "done"
    (row,) = OperatorStore(pg_daemon.sup.db).actions(ALICE)
    assert (row.action, row.outcome) == ("pause", "done")
    assert rows(postgres_url, "SELECT account_key FROM account_pauses") == [(ALICE,)]


def test_killed_sessions_cost_no_thread_and_no_account_a_cycle(
    pg_daemon: ApiDaemon, postgres_url: str, postgres_server: PostgresServer
) -> None:
    app = rows(postgres_url, "SELECT current_schema()")[0][0]
    for _ in range(3):
        before = {k: pg_daemon.worker(k).cycles for k in (ALICE, BOB)}
        postgres_server.terminate(str(app))
        wait_for(
            lambda b=before: all(pg_daemon.worker(k).cycles >= b[k] + 2 for k in (ALICE, BOB)),
            what="two more cycles of each account",
        )
    for key in (ALICE, BOB):
        worker = pg_daemon.worker(key)
        assert worker.alive() and worker.restarts == 0
    doc = pg_daemon.get(f"/api/v1/accounts/{BOB}").json()
    assert doc["positions"] == [] and doc.get("store_error") is None


def test_the_password_reaches_no_output(pg_daemon: ApiDaemon, postgres_server) -> None:
    password = postgres_server.password
    seen = [
        json.dumps(pg_daemon.sup.get_multi_broker_status()),
        pg_daemon.get("/api/v1/accounts").text,
        pg_daemon.get(f"/api/v1/accounts/{ALICE}").text,
        pg_daemon.get("/metrics").text,
        repr(pg_daemon.sup.db),
        pg_daemon.sup.database.path,
    ]
    assert "127.0.0.1" in pg_daemon.sup.database.path
    for text in seen:
        assert password not in text
