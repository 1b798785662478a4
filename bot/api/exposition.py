"""The Prometheus text format (0.0.4) of a registry: prometheus-client's output, written faster.

prometheus-client's ``generate_latest`` checks and escapes every label *name* of every
sample for UTF-8 metric names (0.21 and later): at 100 accounts (1,440 samples) that is
about 70 % of a scrape's CPU. A series' name and labels are the same at every scrape, so here
their text is worked out once and kept, and each scrape formats only the values. Everything else (the families, the registry, the
collectors, the value format) is the library's, and the output is the library's byte for
byte: tests/api/test_exposition.py compares the two on the daemon's real registry.
"""

from __future__ import annotations

import math
import re

from prometheus_client.openmetrics.exposition import escape_label_name, escape_metric_name
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

__all__ = ["TextWriter", "generate_text"]

_LEGACY_METRIC = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LEGACY_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# OpenMetrics-only samples, which the text format puts in gauges of their own at the end.
_OM_SUFFIXES = ("_created", "_gsum", "_gcount")
_TEXT_TYPES = {"info": "gauge", "stateset": "gauge", "gaugehistogram": "histogram"}


class TextWriter:
    """Writes a registry's text exposition; keeps what it worked out for the next scrape.

    A series' text up to its value (``name{labels} ``) is the same at every scrape: it is
    kept, keyed by the sample's name and labels; so is each value's text, keyed by the value
    (a float key: ``0`` and ``0.0`` are one key and one text, as the library writes both).
    Each cache is dropped whole past ``MAX_SERIES`` entries (accounts come and go rarely).
    """

    MAX_SERIES = 100_000

    def __init__(self) -> None:
        self._prefixes: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
        self._names: dict[str, str] = {}
        self._values: dict[float, str] = {}  # most values repeat: 0, 1, a balance

    def _metric(self, name: str) -> str:
        known = self._names.get(name)
        if known is None:
            known = name if _LEGACY_METRIC.match(name) else escape_metric_name(name)
            self._names[name] = known
        return known

    def _prefix(self, sample: Sample) -> str:
        key = (sample.name, tuple(sample.labels.items()))
        known = self._prefixes.get(key)
        if known is None:
            labels = ""
            if sample.labels:
                pairs = ",".join(
                    f'{_label(k)}="{_value(v)}"' for k, v in sorted(sample.labels.items())
                )
                labels = "{" + pairs + "}"
            known = f"{self._metric(sample.name)}{labels} "
            if len(self._prefixes) >= self.MAX_SERIES:
                self._prefixes.clear()
            self._prefixes[key] = known
        return known

    def _value(self, value: float) -> str:
        if value == 0:  # 0.0 and -0.0 are one key but two texts
            return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
        known = self._values.get(value)
        if known is None:
            known = floatToGoString(value)
            if value == value:  # NaN is never found again: not kept
                if len(self._values) >= self.MAX_SERIES:
                    self._values.clear()
                self._values[value] = known
        return known

    def _line(self, sample: Sample) -> str:
        stamp = "" if sample.timestamp is None else f" {int(float(sample.timestamp) * 1000):d}"
        return f"{self._prefix(sample)}{self._value(sample.value)}{stamp}\n"

    def write(self, registry: Collector) -> bytes:
        """What ``prometheus_client.generate_latest(registry)`` returns, for less CPU."""
        out: list[str] = []
        for metric in registry.collect():
            family = metric.name + "_total" if metric.type == "counter" else metric.name
            if metric.type == "info":
                family = metric.name + "_info"
            kind = _TEXT_TYPES.get(
                metric.type, "untyped" if metric.type == "unknown" else metric.type
            )
            out.append(_head(self._metric(family), metric.documentation, kind))
            extra: dict[str, list[str]] = {}
            for sample in metric.samples:
                suffix = sample.name[len(metric.name) :]
                if suffix in _OM_SUFFIXES and sample.name.startswith(metric.name):
                    extra.setdefault(suffix, []).append(self._line(sample))
                else:
                    out.append(self._line(sample))
            for suffix, lines in sorted(extra.items()):
                name = self._metric(metric.name + suffix)
                out.append(_head(name, metric.documentation, "gauge"))
                out.extend(lines)
        return "".join(out).encode("utf-8")


def _label(name: str) -> str:
    return name if _LEGACY_LABEL.match(name) else escape_label_name(name)


def _value(text: str) -> str:
    if "\\" in text or "\n" in text or '"' in text:
        return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return text


def _head(name: str, documentation: str, kind: str) -> str:
    doc = documentation.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {name} {doc}\n# TYPE {name} {kind}\n"


def generate_text(registry: Collector) -> bytes:
    """One scrape's text without a kept writer (``TextWriter().write``)."""
    return TextWriter().write(registry)
