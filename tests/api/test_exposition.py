"""NIJA's text writer gives prometheus-client's ``generate_latest`` output byte for byte, but
for one allowed difference: in a ``Rows`` family a positive value from 1e6 up is written as
Python writes it (``1795971036.6234``), where the library writes Go's exponent
(``1.7959710366234e+09``); both are the same number to Prometheus."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    Summary,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.samples import Sample

from bot.api.exposition import LabelSet, Rows, TextWriter, generate_text
from bot.api.metrics import NijaCollector, metrics_registry
from tests.api.conftest import ALICE, BOB, wait_for


def test_the_daemons_registry_is_written_as_the_library_writes_it(daemon):
    daemon.post(f"/api/v1/accounts/{BOB}/pause")
    wait_for(lambda: daemon.worker(BOB).cycles >= 2, what="a second cycle")
    for key in (ALICE, BOB):  # no cycle between the two collections compared
        daemon.worker(key).request_stop()
    wait_for(lambda: not any(daemon.worker(k).alive() for k in (ALICE, BOB)), what="stopped")
    registry = metrics_registry(NijaCollector(daemon.sup))
    text, library = generate_text(registry), generate_latest(registry)
    assert text.count(b"\n") > 30
    assert_same(_steady(text), _steady(library))
    # A kept writer, the next scrape: alice's circuit opened since, her series' texts kept.
    writer = TextWriter()
    assert_same(_steady(writer.write(registry)), _steady(generate_latest(registry)))
    for _ in range(5):
        daemon.isolation.record_failure("user", "alice", "KRAKEN", ConnectionError("down"))
    text, library = writer.write(registry), generate_latest(registry)
    assert (
        f'nija_circuitbreaker_state{{account="{ALICE}",broker="KRAKEN",state="open"}} 1.0'.encode()
        in text
    )
    assert_same(_steady(text), _steady(library))


def _steady(text: bytes) -> bytes:
    """The lines but the process collector's, whose figures move between two collections."""
    return b"\n".join(line for line in text.splitlines() if b"process_" not in line)


def assert_same(text: bytes, library: bytes) -> None:
    """``text`` is ``library`` line for line: the same bytes, but where a sample's value is a
    positive number from 1e6 up, which may be written without the exponent (the same
    float)."""
    ours, theirs = text.splitlines(), library.splitlines()
    assert len(ours) == len(theirs)
    for mine, lib in zip(ours, theirs, strict=True):
        if mine == lib:
            continue
        series, _, value = mine.rpartition(b" ")
        lib_series, _, lib_value = lib.rpartition(b" ")
        assert (series, float(value)) == (lib_series, float(lib_value)), (mine, lib)
        assert float(value) >= 1e6 and b"e" not in value, (mine, lib)


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


def test_a_label_set_refuses_every_change():
    labels = LabelSet({"account": "user/alice/KRAKEN", "broker": "KRAKEN"})
    changes = [
        lambda: labels.__setitem__("broker", "OKX"),
        lambda: labels.__delitem__("broker"),
        lambda: labels.update(broker="OKX"),
        lambda: labels.setdefault("kind", "failed"),
        lambda: labels.pop("broker"),
        labels.popitem,
        labels.clear,
    ]
    for change in changes:
        with pytest.raises(TypeError, match="never changes"):
            change()
    with pytest.raises(TypeError):
        labels |= {"broker": "OKX"}
    assert labels == {"account": "user/alice/KRAKEN", "broker": "KRAKEN"}
    assert {**labels, "kind": "failed"} == {  # read as any dict is
        "account": "user/alice/KRAKEN", "broker": "KRAKEN", "kind": "failed"
    }  # fmt: skip


class _Shared:
    """A collector of ``Rows`` whose series keep their label sets from scrape to scrape, as
    NIJA's per-account families do."""

    def __init__(self) -> None:
        self.sets = [
            LabelSet({"account": 'user/a"b/KRAKEN', "broker": "KRAKEN"}),
            LabelSet({"account": "back\\slash\nline", "broker": "ünïcode ✓"}),
            LabelSet({"account": "100%s %d %%", "broker": "KRAKEN"}),  # the writer formats with %
        ]
        self.values = [1.0, 2.0, 0.5]

    def collect(self) -> Iterator[Metric]:
        yield Rows("nija_demo_up", "Up.", "gauge", self.sets, self.values)
        yield Rows("nija_demo_calls", "Calls.", "counter", self.sets, [v * 3 for v in self.values])


def _shared_registry() -> tuple[_Shared, CollectorRegistry, TextWriter]:
    shared = _Shared()
    registry = CollectorRegistry()
    registry.register(shared)
    return shared, registry, TextWriter()


def test_rows_are_written_as_the_library_writes_them():
    shared, registry, writer = _shared_registry()
    first = writer.write(registry)
    assert_same(first, generate_latest(registry))
    assert b'nija_demo_calls_total{account="user/a\\"b/KRAKEN",broker="KRAKEN"} 3.0\n' in first
    assert shared.sets[0].texts["nija_demo_up"] == (
        b'nija_demo_up{account="user/a\\"b/KRAKEN",broker="KRAKEN"} '
    )
    shared.values = [-0.0, 7, 0.25]  # new values, the kept texts; and a series with a new label set
    shared.sets.append(LabelSet({"account": "user/carol/OKX", "broker": "OKX"}))
    shared.values.append(float("nan"))
    text = writer.write(registry)
    assert text != first
    assert_same(text, generate_latest(registry))
    assert_same(TextWriter().write(registry), generate_latest(registry))  # another writer too


def test_a_changed_value_is_in_the_next_scrape_and_an_unchanged_family_is_written_again():
    shared, registry, writer = _shared_registry()
    first = writer.write(registry)
    assert writer.write(registry) == first  # nothing changed: the kept text
    steps: list[tuple[list[float], bytes]] = [
        ([1.0, 2.5, 0.5], b"2.5\n"),  # one value of three
        ([1.0, 0.0, 0.5], b"} 0.0\n"),
        ([1.0, -0.0, 0.5], b"} -0.0\n"),  # equal to 0.0, yet written apart
        ([1.0, 0.0, 0.5], b"} 0.0\n"),
        ([1, 0, 0.5], b"} 0.0\n"),  # ints, as the collector passes counts
        ([1.0, 1e21, 0.5], b"1e+21\n"),
        ([1.0, float("nan"), 0.5], b"NaN\n"),
        ([1.0, float("nan"), 0.5], b"NaN\n"),
    ]
    for values, line_end in steps:
        shared.values = values
        text = writer.write(registry)
        assert_same(text, generate_latest(registry))
        assert text.split(b"\n")[3].endswith(line_end.rstrip(b"\n")), values
    # The same values under other label sets (an account replaced by another): new lines.
    dave = LabelSet({"account": "user/dave/OKX", "broker": "OKX"})
    shared.sets = [shared.sets[0], dave, shared.sets[2]]
    text = writer.write(registry)
    assert_same(text, generate_latest(registry))
    assert b"user/dave/OKX" in text


def test_rows_hold_label_sets_and_values_one_for_one():
    one = [LabelSet({"account": "user/a/KRAKEN"})]
    with pytest.raises(ValueError, match="1 label sets, 2 values, 2 sample names"):
        Rows("nija_demo", "Demo.", "gauge", one, [1.0, 2.0])
    with pytest.raises(ValueError, match="not a summary"):
        Rows("nija_demo", "Demo.", "summary", one, [1.0])
    with pytest.raises(ValueError, match="a histogram's rows name their samples"):
        Rows("nija_demo", "Demo.", "histogram", one, [1.0])
    rows = Rows("nija_demo", "Demo.", "counter", one, [4])
    assert rows.samples == [Sample("nija_demo_total", one[0], 4)]
    with pytest.raises(TypeError, match="constructor"):
        rows.samples = [Sample("nija_demo_total", one[0], 5)]


def test_every_kind_of_value_is_written_as_the_library_writes_it():
    registry = CollectorRegistry()
    gauge = Gauge("nija_demo_values", "Values.", ["v"], registry=registry)
    values = [1234567.0, 999999.5, 1e6, 10**6, 123456, 1e-05, 0.1 + 0.2, -1234567.0, 1e16,
              1795971036.6234, 2.5e-300, float("inf"), float("nan"), 7, -3, 1e300]  # fmt: skip
    for i, value in enumerate(values):
        gauge.labels(str(i)).set(value)
    ints = GaugeMetricFamily(
        "nija_demo_ints", "Ints, as the collector passes counts.", labels=["v"]
    )
    for n in (10**6, 1234567, 123456, 7, 0, -3, -(10**17)):
        ints.add_metric([str(n)], n)
    registry.register(type("Ints", (), {"collect": lambda self: [ints]})())
    writer = TextWriter()
    writer.MAX_VALUES = 4  # full, dropped and filled again within one scrape
    assert writer.write(registry) == generate_latest(registry)
    assert writer.write(registry) == generate_latest(registry)
    assert len(writer._values) <= 4


def test_rows_values_are_written_in_c_and_read_back_as_the_same_numbers():
    values = [1234567.0, 999999.5, 1e6, 10**6, 123456, 1e-05, 0.1 + 0.2, -1234567.0, 1e16,
              1795971036.6234, 2.5e-300, 7, -3, 1e300, 0.0, -0.0, 5e15 + 0.5]  # fmt: skip
    sets = [LabelSet({"v": str(i)}) for i in range(len(values))]
    shared = _Shared()
    shared.sets, shared.values = sets, values
    registry = CollectorRegistry()
    registry.register(shared)
    text = TextWriter().write(registry)
    assert_same(text, generate_latest(registry))
    lines = text.decode().splitlines()
    assert 'nija_demo_up{v="9"} 1795971036.6234' in lines  # a timestamp: no exponent
    assert 'nija_demo_up{v="3"} 1000000.0' in lines  # an int, as a float
    assert 'nija_demo_up{v="15"} -0.0' in lines and 'nija_demo_up{v="14"} 0.0' in lines
    assert 'nija_demo_up{v="13"} 1e+300' in lines
    # A value that is not finite: that family's values as the library writes them.
    shared.values = [*values[:-1], float("inf")]
    text = TextWriter().write(registry)
    assert 'nija_demo_up{v="16"} +Inf' in text.decode().splitlines()
    assert 'nija_demo_up{v="9"} 1.7959710366234e+09' in text.decode().splitlines()
    assert text == generate_latest(registry)
