"""NIJA's text writer gives prometheus-client's ``generate_latest`` output byte for byte."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    Summary,
    generate_latest,
)

from bot.api.exposition import TextWriter, generate_text
from bot.api.metrics import metrics_registry
from tests.api.conftest import BOB, wait_for


def test_the_daemons_registry_is_written_as_the_library_writes_it(daemon):
    daemon.post(f"/api/v1/accounts/{BOB}/pause")
    wait_for(lambda: daemon.worker(BOB).cycles >= 2, what="a second cycle")
    registry = metrics_registry(daemon.sup, None)
    text, library = generate_text(registry), generate_latest(registry)
    assert text.count(b"\n") > 30 and _steady(text) == _steady(library)


def _steady(text: bytes) -> list[bytes]:
    """The lines but the process collector's, whose figures move between two collections."""
    return [line for line in text.splitlines() if b"process_" not in line]


def test_every_family_type_and_awkward_label_values_match_the_library():
    registry = CollectorRegistry()
    counter = Counter("nija_demo_events", "Events.\nSecond line \\ here.", ["account", "kind"],
                      registry=registry)  # fmt: skip
    counter.labels('user/a"b/KRAKEN', "line\nbreak").inc(3)
    counter.labels("back\\slash", "ünïcode ✓").inc(0.1)
    Gauge("nija_demo_gauge", "A gauge.", registry=registry).set(1e21)
    negative = Gauge("nija_demo_neg", "Negative.", ["x"], registry=registry)
    negative.labels("y").set(-float("inf"))
    negative.labels("zero").set(0.0)
    negative.labels("minus zero").set(-0.0)
    negative.labels("nan").set(float("nan"))
    Histogram("nija_demo_seconds", "A histogram.", registry=registry).observe(0.3)
    Summary("nija_demo_summary", "A summary.", registry=registry).observe(2.5)
    Info("nija_demo_build", "Build info.", registry=registry).info({"version": "1.2"})
    writer = TextWriter()
    assert writer.write(registry) == generate_latest(registry)
    # The second scrape reuses each series' kept text: new values, a new series, all right.
    counter.labels("back\\slash", "ünïcode ✓").inc(41)
    counter.labels("user/carol/OKX", "failed").inc()
    assert writer.write(registry) == generate_latest(registry)
