"""The state database under watch: new at start, unusable at start, gone or replaced later
(a SQLite file); on PostgreSQL, new or unreachable at start."""

from __future__ import annotations

import os

import pytest
import structlog
from structlog.testing import capture_logs

from bot.daemon.dbwatch import DatabaseWatch
from bot.errors import StartupError
from bot.store.pg import PostgresDatabase, Retry
from bot.store.sqlite import SqliteDatabase
from bot.store.writer import prepare_database


def watch(tmp_path, live: bool = True) -> DatabaseWatch:
    database = SqliteDatabase(tmp_path / "nija-live.db")
    return DatabaseWatch(database, live=live, log=structlog.get_logger())


@pytest.mark.parametrize(("empty_file", "found"), [(False, "no database"), (True, "empty")])
def test_a_new_database_in_live_mode_is_a_warning(tmp_path, empty_file, found):
    w = watch(tmp_path)
    if empty_file:
        w.database.path.touch()
    with capture_logs() as logs:
        w.open()
    (new,) = logs
    assert new["event"] == "state_database_new" and new["log_level"] == "warning"
    assert found in new["found"] and "reconciliation" in new["note"]


def test_an_existing_database_and_paper_mode_are_no_warning(tmp_path):
    prepare_database(tmp_path / "nija-live.db")
    with capture_logs() as logs:
        watch(tmp_path).open()
    assert logs == []
    with capture_logs() as logs:
        watch(tmp_path / "paper", live=False).open()
    assert [e["log_level"] for e in logs] == ["info"]


def test_an_unusable_database_is_a_start_up_error_naming_file_and_fix(tmp_path):
    w = watch(tmp_path)
    w.database.path.write_bytes(b"not SQLite at all\n" * 100)
    with pytest.raises(StartupError) as bad:
        w.open()
    assert str(w.path) in str(bad.value) and "move the file aside" in str(bad.value)


def test_a_vanished_file_holds_entries_until_the_same_file_is_back(tmp_path):
    w = watch(tmp_path)
    w.open()
    assert w.check() is None
    aside = tmp_path / "aside.db"
    os.rename(w.database.path, aside)
    with capture_logs() as logs:
        assert "missing" in (w.check() or "")
        assert "missing" in (w.check() or "")  # logged once, held every tick
    assert [e["event"] for e in logs] == ["state_database_missing"]
    assert logs[0]["log_level"] == "error"
    os.rename(aside, w.database.path)
    with capture_logs() as logs:
        assert w.check() is None and w.problem is None
    assert [e["event"] for e in logs] == ["state_database_back"]


def test_another_file_at_the_path_is_not_the_database_back(tmp_path):
    w = watch(tmp_path)
    w.open()
    os.rename(w.database.path, tmp_path / "aside.db")
    prepare_database(w.database.path)  # a new file where the old one was
    with capture_logs() as logs:
        assert "replaced" in (w.check() or "")
    assert [e["event"] for e in logs] == ["state_database_replaced"]


def test_on_postgresql_a_new_schema_is_told_and_an_unreachable_server_stops_the_start(
    postgres_url, postgres_server
):
    db = PostgresDatabase(postgres_url, "live", retry=Retry(attempts=1))
    try:
        w = DatabaseWatch(db, live=True, log=structlog.get_logger())
        with capture_logs() as logs:
            w.open()
        (new,) = logs
        assert new["event"] == "state_database_new" and "no NIJA tables" in new["found"]
        assert w.check() is None  # no file to move away
    finally:
        db.close()
    down = PostgresDatabase(
        postgres_url.replace(f":{postgres_server.port}/", ":1/"),
        "live",
        retry=Retry(attempts=1),
        connect_timeout_seconds=0.5,
    )
    try:
        with pytest.raises(StartupError) as bad:
            DatabaseWatch(down, live=True, log=structlog.get_logger()).open()
    finally:
        down.close()
    text = str(bad.value)
    assert 'PostgreSQL database "nija" on 127.0.0.1:1' in text and "NIJA_DATABASE_URL" in text
    assert postgres_server.password not in text
