"""The Prometheus text format (0.0.4) of a registry: prometheus-client's output, written faster.

prometheus-client's ``generate_latest`` checks and escapes every label *name* of every
sample for UTF-8 metric names (0.21 and later): at 100 accounts (1,440 samples) that is
about 70 % of a scrape's CPU. A series' name and labels are the same at every scrape, so here
their text is worked out once and kept, and each scrape formats only the values. NIJA's own
per-account and per-venue families are ``Rows``: kept label sets beside their values, no
``Sample`` per value, and the whole family's text kept while none of its values changes
(most of them do not between two scrapes: circuit states, pauses, refusals, positions, the
store's totals; measured in scripts/profile_scrape.py), its values formatted in C.
Everything else (the registry and the collectors) is the library's, and so is the output,
byte for byte, but for one thing: in a ``Rows`` family a positive value from 1e6 up (a
timestamp, a large balance) is written as Python writes it, without the library's Go-style
exponent, which costs Python code per value; Prometheus reads the same number.
tests/api/test_exposition.py compares the two on the daemon's real registry.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Mapping
from math import copysign, isfinite
from operator import attrgetter
from typing import Any, NoReturn

from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import escape_label_name, escape_metric_name
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

__all__ = ["LabelSet", "Rows", "TextWriter", "generate_text"]

_LEGACY_METRIC = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LEGACY_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# OpenMetrics-only samples, which the text format puts in gauges of their own at the end.
_OM_SUFFIXES = ("_created", "_gsum", "_gcount")
_NAME = attrgetter("name")
_TEXT_TYPES = {"info": "gauge", "stateset": "gauge", "gaugehistogram": "histogram"}


class LabelSet(dict[str, str]):
    """A sample's labels that never change: a dict that refuses every change.

    A collector that gives the same label set to a series at every scrape (``bot.api.metrics``
    does, per account, in ``Rows``) lets the writer keep the series' text on it (``texts``:
    sample name to ``name{labels} `` in UTF-8), found without building a key from the labels.
    Anything that reads a dict reads it (prometheus-client's own exposition too).
    """

    __slots__ = ("texts",)

    def __init__(self, labels: Mapping[str, str]) -> None:
        super().__init__(labels)
        self.texts: dict[str, bytes] = {}

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("a LabelSet never changes: make a new one")

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse


class Rows(Metric):
    """A family whose series keep their label sets from scrape to scrape: ``values[i]`` is
    the value of the series ``sample_names[i]`` labelled ``label_sets[i]``.

    A gauge's or a counter's samples all have one name (a counter's with ``_total``); a
    histogram's rows name theirs (``_bucket``, ``_count``, ``_sum``, in the library's order).
    The writer reads the rows side by side (no ``Sample`` per value) and keeps the family's
    text while its rows stay the same; prometheus-client's exposition reads ``samples``,
    made on demand, as from any family.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        typ: str,
        label_sets: Iterable[LabelSet],
        values: Iterable[float],
        sample_names: Iterable[str] | None = None,
    ) -> None:
        if typ not in ("gauge", "counter", "histogram"):
            raise ValueError(f"Rows are a gauge, a counter or a histogram, not a {typ}")
        super().__init__(name, documentation, typ)
        self.label_sets: tuple[LabelSet, ...] = tuple(label_sets)
        self.values: tuple[float, ...] = tuple(values)
        if sample_names is not None:
            self.sample_names: tuple[str, ...] = tuple(sample_names)
        elif typ == "histogram":
            raise ValueError(f"{name}: a histogram's rows name their samples")
        else:
            self.sample_names = (name + "_total" if typ == "counter" else name,) * len(self.values)
        if not len(self.label_sets) == len(self.values) == len(self.sample_names):
            raise ValueError(
                f"{name}: {len(self.label_sets)} label sets, {len(self.values)} values, "
                f"{len(self.sample_names)} sample names"
            )

    @property
    def samples(self) -> list[Sample]:
        """The family's samples, as prometheus-client's exposition reads them."""
        rows = zip(self.sample_names, self.label_sets, self.values, strict=True)
        return [Sample(name, labels, value) for name, labels, value in rows]

    @samples.setter
    def samples(self, samples: list[Sample]) -> None:
        if samples:  # Metric's constructor sets none; nothing else may
            raise TypeError("Rows hold label sets and values: give them to the constructor")


class _Kept:
    """A ``Rows`` family's text, what it was written from (its series, and its values' exact
    bits: ``0.0`` and ``-0.0`` are equal, yet written apart), and its template: every line's
    series text with ``%r`` where its value goes, one bytes object to format."""

    __slots__ = ("bits", "label_sets", "names", "template", "text")

    def __init__(self, rows: Rows, bits: bytes, text: bytes, template: bytes) -> None:
        self.names, self.label_sets = rows.sample_names, rows.label_sets
        self.bits, self.text, self.template = bits, text, template

    def same_series(self, rows: Rows) -> bool:
        """Whether ``rows`` has this family's series, in this order (label sets are compared
        by identity first: a collector gives a series the same one at every scrape)."""
        return self.label_sets == rows.label_sets and self.names == rows.sample_names


class TextWriter:
    """Writes a registry's text exposition; keeps what it worked out for the next scrape.

    A series' text up to its value (``name{labels} ``) is the same at every scrape: it is
    kept (UTF-8), on its ``LabelSet`` (``Rows``) or else keyed by the sample's name and
    labels; so is
    each value's text with its line's end, keyed by the value (a float key: ``0`` and ``0.0``
    are one key and one text, as the library writes both). A line is then two kept pieces,
    joined once for the whole scrape. A ``Rows`` family's whole text is kept too, and written
    again while its label sets and values stay the same. Each cache is dropped whole when
    full (``MAX_SERIES`` series: accounts come and go rarely; ``MAX_VALUES`` values).
    """

    MAX_SERIES = 100_000
    # Most values change from scrape to scrape (timestamps, durations, totals): a small
    # cache keeps the ones that repeat (1, a count, a balance) without growing for the rest.
    MAX_VALUES = 4096

    def __init__(self) -> None:
        self._prefixes: dict[tuple[str, tuple[tuple[str, str], ...]], bytes] = {}
        self._names: dict[str, str] = {}
        self._values: dict[float, bytes] = {}  # most values repeat: 0, 1, a balance
        # (name, type, help) -> the family's HELP and TYPE lines, its OpenMetrics-only names
        self._heads: dict[tuple[str, str, str], tuple[bytes, frozenset[str]]] = {}
        self._kept: dict[str, _Kept] = {}  # by a Rows family's name

    def _metric(self, name: str) -> str:
        known = self._names.get(name)
        if known is None:
            known = name if _LEGACY_METRIC.match(name) else escape_metric_name(name)
            self._names[name] = known
        return known

    def _head(self, metric: Metric) -> tuple[bytes, frozenset[str]]:
        """A family's HELP and TYPE lines, and the names of its OpenMetrics-only samples."""
        family = metric.name + "_total" if metric.type == "counter" else metric.name
        if metric.type == "info":
            family = metric.name + "_info"
        kind = _TEXT_TYPES.get(metric.type, "untyped" if metric.type == "unknown" else metric.type)
        extra = frozenset(metric.name + suffix for suffix in _OM_SUFFIXES)
        if len(self._heads) >= self.MAX_SERIES:
            self._heads.clear()
        return _head(self._metric(family), metric.documentation, kind), extra

    def _series(self, name: str, labels: Mapping[str, str]) -> bytes:
        """``name{labels} ``: a series' text up to its value."""
        text = ""
        if labels:
            pairs = ",".join(f'{_label(k)}="{_value(v)}"' for k, v in sorted(labels.items()))
            text = "{" + pairs + "}"
        return f"{self._metric(name)}{text} ".encode()

    def _new_prefix(self, key: tuple[str, tuple[tuple[str, str], ...]]) -> bytes:
        known = self._series(key[0], dict(key[1]))
        if len(self._prefixes) >= self.MAX_SERIES:
            self._prefixes.clear()
        self._prefixes[key] = known
        return known

    def _new_value(self, value: float) -> bytes:
        text = repr(float(value))
        if "n" in text or "e" in text or (value > 0 and text.find(".") > 6):
            text = floatToGoString(value)  # inf, NaN, exponents: the library's own rules
        known = f"{text}\n".encode()
        if value == value:  # NaN is never found again: not kept
            if len(self._values) >= self.MAX_VALUES:
                self._values.clear()
            self._values[value] = known
        return known

    def _lines(self, samples: list[Sample], out: list[bytes]) -> None:
        """Each sample's line onto ``out`` (the families that are not ``Rows``)."""
        prefixes, append = self._prefixes, out.append
        for sample in samples:
            key = (sample.name, tuple(sample.labels.items()))
            prefix = prefixes.get(key)
            append(prefix if prefix is not None else self._new_prefix(key))
            if sample.timestamp is not None:  # never in NIJA's metrics
                stamp = int(float(sample.timestamp) * 1000)
                append(f"{floatToGoString(sample.value)} {stamp:d}\n".encode())
            else:
                append(self._value_text(sample.value))

    def _value_text(self, value: float) -> bytes:
        """A value's text and its line's end."""
        if value == 0:  # 0.0 and -0.0 are one key but two texts
            return b"-0.0\n" if copysign(1.0, value) < 0 else b"0.0\n"
        known = self._values.get(value)
        return known if known is not None else self._new_value(value)

    def _rows(self, rows: Rows) -> bytes:
        """A ``Rows`` family's lines: the kept text while nothing changed, else its kept
        template formatted with one ``%`` over the values (the hot path of a scrape: no
        Python code per value). ``%r`` writes a float as Python's ``repr``, which is the
        library's text but for NaN and the infinities (written by the library's rules,
        line by line) and for positive values from 1e6 up (the library writes those with an
        exponent, as Go does: ``1.7e+09`` for ``1700000000.0``; Prometheus reads both as the
        same number, ``tests/api/test_exposition.py``)."""
        values = tuple(map(float, rows.values))
        bits = struct.pack(f"{len(values)}d", *values)
        kept = self._kept.get(rows.name)
        if kept is not None and kept.same_series(rows):
            if kept.bits == bits:
                return kept.text
            template = kept.template
        else:
            template = self._template(rows)
        # Every value finite (an infinity or a NaN in it makes the sum not): one ``%``.
        finite = isfinite(sum(values))
        text = template % values if finite else self._rows_line_by_line(rows, values)
        self._kept[rows.name] = _Kept(rows, bits, text, template)
        return text

    def _rows_line_by_line(self, rows: Rows, values: tuple[float, ...]) -> bytes:
        """The lines of a family with a value that is not finite, each value as the library
        writes it."""
        lines = zip(rows.sample_names, rows.label_sets, values, strict=True)
        return b"".join(
            self._prefix(name, labels) + self._value_text(value) for name, labels, value in lines
        )

    def _prefix(self, name: str, labels: LabelSet) -> bytes:
        """``name{labels} ``, kept on the label set."""
        prefix = labels.texts.get(name)
        if prefix is None:
            prefix = labels.texts[name] = self._series(name, labels)
        return prefix

    def _template(self, rows: Rows) -> bytes:
        """Each of the family's series texts (kept on its label set) and ``%r`` for its value."""
        out: list[bytes] = []
        for name, labels in zip(rows.sample_names, rows.label_sets, strict=True):
            out.append(self._prefix(name, labels).replace(b"%", b"%%"))
            out.append(b"%r\n")
        return b"".join(out)

    def write(self, registry: Collector) -> bytes:
        """What ``prometheus_client.generate_latest(registry)`` returns, for less CPU."""
        out: list[bytes] = []
        heads = self._heads
        for metric in registry.collect():
            key = (metric.name, metric.type, metric.documentation)
            head = heads.get(key)
            if head is None:
                head = heads[key] = self._head(metric)
            out.append(head[0])
            if type(metric) is Rows:
                out.append(self._rows(metric))
                continue
            samples: list[Sample] = metric.samples
            extra: dict[str, list[Sample]] = {}
            if not head[1].isdisjoint(map(_NAME, samples)):
                samples, extra = _split(metric.name, samples)
            self._lines(samples, out)
            for suffix, more in sorted(extra.items()):
                out.append(_head(self._metric(metric.name + suffix), metric.documentation, "gauge"))
                self._lines(more, out)
        return b"".join(out)


def _split(name: str, samples: list[Sample]) -> tuple[list[Sample], dict[str, list[Sample]]]:
    """A family's samples, and apart from them its OpenMetrics-only ones by suffix."""
    kept: list[Sample] = []
    extra: dict[str, list[Sample]] = {}
    for sample in samples:
        suffix = sample.name[len(name) :]
        if suffix in _OM_SUFFIXES and sample.name.startswith(name):
            extra.setdefault(suffix, []).append(sample)
        else:
            kept.append(sample)
    return kept, extra


def _label(name: str) -> str:
    return name if _LEGACY_LABEL.match(name) else escape_label_name(name)


def _value(text: str) -> str:
    if "\\" in text or "\n" in text or '"' in text:
        return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return text


def _head(name: str, documentation: str, kind: str) -> bytes:
    doc = documentation.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {name} {doc}\n# TYPE {name} {kind}\n".encode()


def generate_text(registry: Collector) -> bytes:
    """One scrape's text without a kept writer (``TextWriter().write``)."""
    return TextWriter().write(registry)
