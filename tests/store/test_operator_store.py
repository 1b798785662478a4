"""The operator's rows: the audit trail and the pauses, written from any thread (both backends)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from bot.redact import Redactor
from bot.store.backend import Database
from bot.store.operator import OperatorStore
from bot.store.writer import StoreError


@pytest.fixture
def store(database: Database) -> OperatorStore:
    database.prepare()
    return OperatorStore(database, redactor=Redactor(("SECRET-VALUE-1234",)))


def test_actions_are_kept_newest_first_per_account_and_masked(store):
    store.record_action(1.0, "ctl:pid-1", "pause", "user/a/PAPER", "done", "paused")
    store.record_action(2.0, "http:token-ab", "reload", "user/b/PAPER", "refused",
                        "key SECRET-VALUE-1234 incomplete")  # fmt: skip
    store.record_action(3.0, "http:token-ab", "resume", "user/a/PAPER", "done", "resumed")
    assert [a.action for a in store.actions()] == ["resume", "reload", "pause"]
    (b,) = store.actions("user/b/PAPER")
    assert b.actor == "http:token-ab" and b.outcome == "refused" and "SECRET" not in b.message
    assert [a.at for a in store.actions("user/a/PAPER", limit=1)] == [3.0]


def test_a_pause_is_kept_once_and_lifted(store):
    first = store.pause("user/a/PAPER", 10.0, "ctl:pid-1")
    again = store.pause("user/a/PAPER", 20.0, "http:token-ab")
    assert again == first and first.paused_by == "ctl:pid-1"
    assert set(store.pauses()) == {"user/a/PAPER"}
    assert store.resume("user/a/PAPER") is True and store.resume("user/a/PAPER") is False
    assert store.pauses() == {}


def test_writes_from_several_threads_all_land(store):
    def work(n: int) -> None:
        for i in range(20):
            store.record_action(float(i), f"t{n}", "pause", f"user/{n}/PAPER", "done", "")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len(store.actions(limit=1000)) == 80


def test_a_missing_database_is_an_error_not_a_new_file_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "gone.db"
    with pytest.raises(StoreError):
        OperatorStore(path).pauses()
    assert not path.exists()


def test_a_database_without_tables_is_an_error_not_new_tables(database: Database) -> None:
    with pytest.raises(StoreError) as info:
        OperatorStore(database).pauses()
    assert info.value.operation == "open"
    with pytest.raises(StoreError):  # still nothing there: the failed read created nothing
        OperatorStore(database).actions()
