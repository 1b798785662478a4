"""The dead-man's switch against a loopback monitor that answers 200, 500, or hangs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import structlog
from structlog.testing import capture_logs

from bot.api.heartbeat import Heartbeat
from tests.api.conftest import wait_for


class Monitor:
    """A healthchecks-style ping endpoint on 127.0.0.1: counts pings, answers ``status``."""

    def __init__(self) -> None:
        self.pings: list[str] = []
        self.status = 200
        self.hang = threading.Event()  # set: the next pings get no answer until released
        self.release = threading.Event()
        monitor = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                monitor.pings.append(self.path)
                if monitor.hang.is_set():
                    monitor.release.wait(5)
                self.send_response(monitor.status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/ping/0b5e-secret-uuid"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def monitor() -> Iterator[Monitor]:
    m = Monitor()
    yield m
    m.close()


def test_pings_while_alive_and_a_failing_streak_is_said_once_each_way(monitor):
    alive = {"yes": True}
    beat = Heartbeat(monitor.url, 1.0, alive=lambda: alive["yes"], log=structlog.get_logger())
    with capture_logs() as logs:
        beat.beat()
        monitor.status = 500
        beat.beat()
        beat.beat()
        monitor.status = 200
        beat.beat()
        alive["yes"] = False  # the supervisor loop is stuck: the monitor must hear nothing
        beat.beat()
        beat.beat()
    assert len(monitor.pings) == 4 and monitor.pings[0] == "/ping/0b5e-secret-uuid"
    assert beat.sent == 2
    events = [(e["event"], e.get("error"), e.get("failed")) for e in logs]
    assert events == [
        ("heartbeat_failed", "HTTP 500", None),
        ("heartbeat_recovered", None, 2),
        ("heartbeat_skipped", None, None),
    ]
    assert "secret-uuid" not in str(logs) and logs[0]["host"] == "127.0.0.1"


def test_a_hanging_monitor_costs_one_bounded_ping_in_the_heartbeats_own_thread(monitor):
    monitor.hang.set()
    beat = Heartbeat(monitor.url, 0.4, alive=lambda: True, log=structlog.get_logger())
    assert beat.timeout == 0.2  # under the period, so pings never pile up
    with capture_logs() as logs:
        beat.start()
        wait_for(lambda: beat.failed_streak >= 2, what="two timed-out pings")
        beat.stop()
    assert [e["event"] for e in logs].count("heartbeat_failed") == 1
    assert "Timeout" in next(e["error"] for e in logs if e["event"] == "heartbeat_failed")
    assert not beat._thread.is_alive()


def test_an_unreachable_monitor_is_a_failure_not_a_crash(monitor):
    url = monitor.url
    monitor.close()  # nothing listens there now
    beat = Heartbeat(url, 1.0, alive=lambda: True, log=structlog.get_logger())
    with capture_logs() as logs:
        beat.beat()
    assert beat.failed_streak == 1 and logs[0]["error"] == "ConnectionError"
