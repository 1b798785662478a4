"""``GET /metrics`` answered in front of the Starlette app: on the event loop, except a scrape
that reads the state database, which runs in a worker thread (a slow database never stalls
the server)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from prometheus_client.metrics_core import Metric

from bot.api.metrics import STORE_TTL_SECONDS
from bot.api.scrape import CONTENT_TYPE, MetricsFirst, MetricsText
from tests.api.conftest import ApiDaemon


def _metrics_text(daemon: ApiDaemon) -> MetricsText:
    assert daemon.api is not None
    app = daemon.api._server.config.app
    assert isinstance(app, MetricsFirst)
    return app.text


class _SlowStore:
    """Stands in for the collector's database read: records the thread it ran in, and waits
    for ``release`` (a database that is slow to answer)."""

    def __init__(self, text: MetricsText) -> None:
        self.read = text.collector._read_store
        self.threads: list[str] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        text.collector._read_store = self  # type: ignore[method-assign]

    def __call__(self, labels: dict) -> Iterator[Metric]:
        self.threads.append(threading.current_thread().name)
        self.entered.set()
        assert self.release.wait(10), "the test never released the database"
        return self.read(labels)


def test_a_slow_database_read_runs_in_a_worker_thread_and_stalls_nothing(daemon):
    slow = _SlowStore(_metrics_text(daemon))
    slow.release.set()  # the first scrape (nothing read yet): its read is due
    first = daemon.get("/metrics")
    assert first.status_code == 200 and first.headers["content-type"].startswith(CONTENT_TYPE)
    assert b"nija_state_database_readable 1.0" in first.content
    assert len(slow.threads) == 1 and slow.threads[0] != "http-api"  # not the server's loop
    assert daemon.get("/metrics").status_code == 200 and len(slow.threads) == 1  # kept 30 s
    slow.release.clear()
    slow.entered.clear()
    daemon.clock.advance(STORE_TTL_SECONDS)  # due again: read in a worker thread again
    scraped: list[int] = []
    scraper = threading.Thread(target=lambda: scraped.append(daemon.get("/metrics").status_code))
    scraper.start()
    try:
        assert slow.entered.wait(5)
        # While the database keeps that scrape waiting, the server answers (the liveness
        # probe says "down": the fake clock moved 30 s past the supervisor's last tick).
        assert daemon.get("/healthz", token=None).json()["status"] in ("ok", "down")
        assert daemon.get("/api/v1/venues").status_code == 200
        assert scraped == []  # still waiting
    finally:
        slow.release.set()
        scraper.join(10)
    assert scraped == [200] and len(slow.threads) == 2 and "http-api" not in slow.threads


def test_a_scrape_just_before_the_database_is_due_runs_in_a_worker_thread(daemon):
    text = _metrics_text(daemon)
    slow = _SlowStore(text)
    slow.release.set()
    daemon.get("/metrics")
    daemon.clock.advance(STORE_TTL_SECONDS - 0.5)  # not due yet, but within the margin
    assert text.may_wait() and not text.collector.store_due(within=0.0)
    assert daemon.get("/metrics").status_code == 200 and len(slow.threads) == 1
    daemon.clock.advance(0.5)
    assert daemon.get("/metrics").status_code == 200 and len(slow.threads) == 2


def test_other_methods_on_metrics_are_the_apps_answers(daemon):
    head = daemon.request("HEAD", "/metrics")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"].startswith(CONTENT_TYPE)
    get = daemon.get("/metrics")  # answered in front of the app, with the app's headers
    assert get.headers["content-type"] == head.headers["content-type"]
    assert int(get.headers["content-length"]) == len(get.content) > 0
    post = daemon.post("/metrics")
    assert post.status_code == 405 and post.json()["status"] == 405
    assert daemon.get("/metrics/").status_code in (200, 307)  # the app's own redirect
    assert daemon.request("HEAD", "/metrics", token=None).status_code == 401
