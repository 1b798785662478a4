"""A full disk is said once, then at most once a minute while it lasts, and once when it is over."""

from __future__ import annotations

import threading

import structlog
from structlog.testing import capture_logs

from bot.daemon.diskfull import DiskFullNotice
from nija_testkit.clock import FakeClock

FULL = "StoreError: store record_cycle failed: database or disk is full"


def events(logs: list[dict]) -> list[tuple[str, str | None, int | None]]:
    return [(e["event"], e.get("where"), e.get("not_logged")) for e in logs]


def test_said_once_then_at_most_once_a_minute_while_it_lasts():
    clock = FakeClock()
    with capture_logs() as logs:
        notice = DiskFullNotice(structlog.get_logger(), clock)
        for _ in range(59):  # a status write every second, and a cycle's store write
            notice.failed("status.json", "OSError: [Errno 28] No space left on device")
            notice.failed("store", FULL)
            clock.advance(1.0)
        assert events(logs) == [("disk_full", "status.json", None)]
        assert logs[0]["log_level"] == "error" and "free space" in logs[0]["fix"]
        clock.advance(1.0)
        notice.failed("store", FULL)
        assert events(logs)[1] == ("disk_full", "store", 117)  # 59 * 2 - 1 not logged


def test_over_once_every_source_that_failed_has_written_again():
    clock = FakeClock()
    with capture_logs() as logs:
        notice = DiskFullNotice(structlog.get_logger(), clock)
        notice.wrote("status.json")  # all well: nothing to say
        notice.failed("status.json", "ENOSPC")
        notice.failed("store", FULL)
        notice.wrote("status.json")
        assert [e["event"] for e in logs] == ["disk_full"]  # the store still fails
        notice.wrote("store")
        notice.wrote("store")
    assert events(logs) == [("disk_full", "status.json", None), ("disk_full_over", None, 1)]
    assert logs[1]["log_level"] == "info"


def test_a_disk_that_fills_again_within_the_minute_is_not_said_again_until_it_is_up():
    clock = FakeClock()
    with capture_logs() as logs:
        notice = DiskFullNotice(structlog.get_logger(), clock)
        for _ in range(30):  # flapping: full, then a write gets through, every second
            notice.failed("store", FULL)
            notice.wrote("store")
            clock.advance(1.0)
    assert [e["event"] for e in logs] == ["disk_full", "disk_full_over"]


def test_failures_from_many_threads_are_said_once():
    clock = FakeClock()
    with capture_logs() as logs:
        notice = DiskFullNotice(structlog.get_logger(), clock)
        threads = [
            threading.Thread(target=lambda: [notice.failed("store", FULL) for _ in range(200)])
            for _ in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert [e["event"] for e in logs] == ["disk_full"]
