"""``/metrics``: the daemon's state in the Prometheus text format (prometheus-client).

Nothing in the trading path calls Prometheus code: ``NijaCollector`` reads what the daemon
already keeps (the isolation manager's per-account counts and call durations, each
worker's snapshot and cycle durations, the operator's pauses) when Prometheus scrapes,
and the store's totals through one read-only connection per scrape.

Names follow resilience4j's circuit-breaker metrics where one exists. Two differ from a
first draft of the list, because a counter must never go down (``promtool check metrics``
refuses ``_total`` on anything else): realized P&L is the gauge ``nija_realized_pnl_usd``,
and orders still in flight are the gauge ``nija_orders_unresolved{status}`` beside the
counter ``nija_orders_total{status}`` of orders that ended (filled, canceled, rejected).

The two histograms are per venue (``broker``), not per account: 11 series each per
account would be 63 % of the series and of the scrape's cost at 500 accounts; each
account's last cycle duration is a gauge. The store's totals (P&L, fees, orders) are read
at most every ``STORE_TTL_SECONDS``: a query over every order is not worth doing every 5 s.
docs/OPERATIONS.md lists every metric and its cardinality.

What a scrape costs the daemon is measured by scripts/bench_api.py (docs/OPERATIONS.md,
"What it costs"). So that it stays small: each account's label sets are made once and kept
(``LabelSet``: the writer keeps each series' text on them); the per-account families get
their samples in one comprehension each (prometheus-client's ``Sample``), built as they are
yielded; the isolation manager is read through ``account_counts`` (no status documents).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from bot.api.exposition import LabelSet
from bot.api.process import ProcessMetrics
from bot.isolation.circuit import AccountHealthStatus, CircuitState
from bot.isolation.latency import Latency, LatencySnapshot
from bot.store.reader import ReadOnlyStore
from bot.store.records import StoredOrderStatus
from bot.store.writer import StoreError
from bot.venue.health import VenueState

if TYPE_CHECKING:
    from bot.daemon.supervisor import IndependentBrokerTrader

__all__ = ["NijaCollector", "VenueUp", "metrics_registry"]

ACCOUNT_LABELS = ["account", "broker"]
STORE_TTL_SECONDS = 30.0
_ENDED = (StoredOrderStatus.FILLED, StoredOrderStatus.CANCELED, StoredOrderStatus.REJECTED)
_IN_FLIGHT = (StoredOrderStatus.PENDING, StoredOrderStatus.UNKNOWN, StoredOrderStatus.OPEN)
# The per-account series' names (a counter's with the ``_total`` its samples carry).
_STATE, _PAUSED = "nija_circuitbreaker_state", "nija_account_paused"
_CALLS, _REFUSED = "nija_calls_total", "nija_not_permitted_calls_total"
_CYCLES, _DURATION = "nija_cycles_total", "nija_last_cycle_duration_seconds"
_LAST, _POSITIONS = "nija_last_cycle_timestamp_seconds", "nija_open_positions"
_EQUITY = "nija_equity_usd"

# Each venue's "is it up" (venue name -> up); by default the daemon's own venue layer's.
VenueUp = Callable[[], dict[str, bool]]


def _buckets(snap: LatencySnapshot) -> list[tuple[str, float]]:
    return [
        ("+Inf" if bound == float("inf") else repr(bound), count) for bound, count in snap.buckets
    ]


# prometheus-client's Sample made from its whole tuple (name, labels, value, timestamp,
# exemplar, native histogram): a quarter less CPU than its constructor's defaults, for the
# 1,200 samples of a scrape at 100 accounts; a Sample of another shape fails loudly here.
_sample = Sample._make


class _Labels:
    """One account's label sets, made once and given to its samples at every scrape (the
    text writer keeps each series' text on its unchangeable label set), and the samples
    whose values are few, made once too: its circuit state's three for each position, its
    pause's for paused or not (a scrape makes none of these 400 samples at 100 accounts)."""

    __slots__ = ("account", "broker", "failed", "paused", "states", "successful")

    def __init__(self, key: str, broker: str) -> None:
        self.broker = broker
        self.account = LabelSet({"account": key, "broker": broker})
        by_state = [(s, LabelSet({**self.account, "state": s.value})) for s in CircuitState]
        self.states = {
            now: tuple(
                _sample((_STATE, labels, 1.0 if s is now else 0.0, None, None, None))
                for s, labels in by_state
            )
            for now in CircuitState
        }
        self.paused = tuple(
            _sample((_PAUSED, self.account, value, None, None, None)) for value in (0.0, 1.0)
        )
        self.successful = LabelSet({**self.account, "kind": "successful"})
        self.failed = LabelSet({**self.account, "kind": "failed"})


def _with(family: Metric, samples: list[Sample]) -> Metric:
    """``family`` holding ``samples``: what its ``add_metric`` would have built, one call each
    instead of two and a label dict (the per-account families are most of a scrape)."""
    family.samples = samples
    return family


class NijaCollector(Collector):
    """Reads the running daemon at scrape time; see the module docstring."""

    def __init__(self, sup: IndependentBrokerTrader, venue_up: VenueUp | None = None) -> None:
        self.sup = sup
        self.venue_up = venue_up or self._watched_venues
        self._store_read: tuple[float, list[Metric]] | None = None  # (monotonic, families)
        self._labels: dict[str, _Labels] = {}  # by account key: the last scrape's accounts
        self._brokers: frozenset[str] = frozenset()  # their venues

    def collect(self) -> Iterator[Metric]:
        labels = self._account_labels()
        yield from self._circuits(labels)
        yield from self._cycles(labels)
        yield from self._store(labels)
        yield from self._venues()
        yield from self._alerts()

    def _account_labels(self) -> dict[str, _Labels]:
        """Each configured account's label sets, kept while the account and its venue stay."""
        kept, specs = self._labels, self.sup.specs
        if list(kept) == list(specs):  # the usual scrape (a key names its broker too)
            return kept
        labels = {}
        for key, spec in specs.items():
            found = kept.get(key)
            broker = spec.account.broker
            labels[key] = (
                found if found is not None and found.broker == broker else _Labels(key, broker)
            )
        self._labels = labels
        self._brokers = frozenset(lab.broker for lab in labels.values())
        return labels

    # Each per-account family's samples are built as it is yielded, so the writer has written
    # and dropped one family before the next exists: a few hundred samples alive at a time,
    # not the scrape's 1,400 (fewer garbage collections started by the API's thread).
    def _circuits(self, labels: dict[str, _Labels]) -> Iterator[Metric]:
        rows = self.sup.isolation.account_counts()
        found = {row.key: row for row in rows}
        known = [(lab, row) for key, lab in labels.items() if (row := found.get(key)) is not None]
        yield _with(
            GaugeMetricFamily(
                _STATE,
                "1 for the state each account's circuit breaker is in, 0 for the others.",
                labels=[*ACCOUNT_LABELS, "state"],
            ),
            [sample for lab, row in known for sample in lab.states[row.circuit]],
        )
        yield _with(
            CounterMetricFamily(
                _CALLS,
                "Operations through each account's circuit breaker, by outcome.",
                labels=[*ACCOUNT_LABELS, "kind"],
            ),
            [
                sample
                for lab, row in known
                for sample in (
                    _sample((_CALLS, lab.successful, row.successes, None, None, None)),
                    _sample((_CALLS, lab.failed, row.failures, None, None, None)),
                )
            ],
        )
        yield _with(
            CounterMetricFamily(
                _REFUSED,
                "Operations each account's circuit breaker refused (open, trial in flight, "
                "or a venue's Retry-After).",
                labels=ACCOUNT_LABELS,
            ),
            [
                _sample((_REFUSED, lab.account, row.not_permitted, None, None, None))
                for lab, row in known
            ],
        )
        seconds = HistogramMetricFamily(
            "nija_call_seconds",
            "Duration of the successful broker calls of each venue's accounts.",
            labels=["broker"],
        )
        _add_histograms(seconds, self.sup.isolation.venue_call_times(), self._brokers)
        yield seconds
        by_state = GaugeMetricFamily(
            "nija_account_health", "Accounts in each health state.", labels=["state"]
        )
        counts = dict.fromkeys(AccountHealthStatus, 0)
        for _lab, row in known:
            counts[row.status] += 1
        for status, n in counts.items():
            by_state.add_metric([status.value], n)
        yield by_state
        paused = self.sup.operator.paused
        yield _with(
            GaugeMetricFamily(
                _PAUSED, "1 while an operator has paused the account.", labels=ACCOUNT_LABELS
            ),
            [lab.paused[key in paused] for key, lab in labels.items()],
        )

    def _cycles(self, labels: dict[str, _Labels]) -> Iterator[Metric]:
        # Each worker read once: its thread replaces its result and counts on.
        rows = []
        for key, w in list(self.sup.workers.items()):
            lab = labels.get(key)
            if lab is None:  # not configured (any more): its own series
                lab = _Labels(key, w.spec.account.broker)
            rows.append((lab, w.cycles, w.last_result, w.last_cycle_wall))
        yield _with(
            CounterMetricFamily(
                _CYCLES, "Trading cycles each account has run.", labels=ACCOUNT_LABELS
            ),
            [
                _sample((_CYCLES, lab.account, cycles, None, None, None))
                for lab, cycles, _r, _t in rows
            ],
        )
        seconds = HistogramMetricFamily(
            "nija_cycle_seconds",
            "Duration of the cycles of each venue's accounts.",
            labels=["broker"],
        )
        _add_histograms(seconds, self.sup.cycle_times.totals(), self._brokers)
        yield seconds
        ended = [(lab.account, result) for lab, _c, result, _t in rows if result is not None]
        yield _with(
            GaugeMetricFamily(
                _DURATION, "How long each account's last cycle took.", labels=ACCOUNT_LABELS
            ),
            [
                _sample((_DURATION, account, result.duration_ms / 1000.0, None, None, None))
                for account, result in ended
            ],
        )
        yield _with(
            GaugeMetricFamily(
                _LAST,
                "When each account's last cycle ended (Unix time).",
                labels=ACCOUNT_LABELS,
            ),
            [
                _sample((_LAST, lab.account, wall, None, None, None))
                for lab, _c, _r, wall in rows
                if wall is not None
            ],
        )
        yield _with(
            GaugeMetricFamily(_POSITIONS, "Open positions of each account.", labels=ACCOUNT_LABELS),
            [
                _sample((_POSITIONS, account, result.positions_open, None, None, None))
                for account, result in ended
            ],
        )
        yield _with(
            GaugeMetricFamily(
                _EQUITY,
                "Each account's equity in USD at its last cycle (paper mode: the paper wallet).",
                labels=ACCOUNT_LABELS,
            ),
            [
                _sample((_EQUITY, account, result.equity_usd, None, None, None))
                for account, result in ended
                if result.equity_usd is not None
            ],
        )

    def _store(self, labels: dict[str, _Labels]) -> Iterator[Metric]:
        now = self.sup.clock.monotonic()
        if self._store_read is None or now - self._store_read[0] >= STORE_TTL_SECONDS:
            self._store_read = (now, list(self._read_store(labels)))
        yield from self._store_read[1]

    def _read_store(self, labels: dict[str, _Labels]) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "nija_state_database_readable",
            "1 when the last read of the state database (at most 30 s ago) worked (the P&L, fee and order "
            "metrics come from it).",
        )
        try:
            with ReadOnlyStore(self.sup.db) as store:
                totals = store.lifetime_totals()
                orders = store.order_counts()
        except StoreError:
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        pnl = GaugeMetricFamily(
            "nija_realized_pnl_usd",
            "Realized P&L of each account's closed positions, net of fees, in USD (lifetime).",
            labels=ACCOUNT_LABELS,
        )
        fees = CounterMetricFamily(
            "nija_fees_usd", "Fees each account has paid, in USD (lifetime).", labels=ACCOUNT_LABELS
        )
        for key, lab in labels.items():
            t = totals.get(key)
            pnl.add_metric([key, lab.broker], t.realized_pnl_usd if t else 0.0)
            fees.add_metric([key, lab.broker], t.fees_usd if t else 0.0)
        ended = CounterMetricFamily(
            "nija_orders", "Orders that ended, by final status (all accounts).", labels=["status"]
        )
        unresolved = GaugeMetricFamily(
            "nija_orders_unresolved",
            "Orders not ended yet, by status (all accounts): pending (stored, not sent), "
            "unknown (outcome ambiguous, being looked up), open (resting at the venue).",
            labels=["status"],
        )
        for status in _ENDED:
            ended.add_metric([status.value], orders.get(status.value, 0))
        for status in _IN_FLIGHT:
            unresolved.add_metric([status.value], orders.get(status.value, 0))
        yield from (up, pnl, fees, ended, unresolved)

    def _watched_venues(self) -> dict[str, bool]:
        """The daemon's own venue layer: up only in state ``up`` (``cancel_only``, ``post_only``
        and ``down`` take no market orders; status.json's ``venues`` says which)."""
        return {name: h.state is VenueState.UP for name, h in self.sup.venues.health.items()}

    def _venues(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("nija_venue_up", "1 while the venue is up.", labels=["venue"])
        for name, is_up in sorted(self.venue_up().items()):
            up.add_metric([name], 1.0 if is_up else 0.0)
        yield up

    def _alerts(self) -> Iterator[Metric]:
        """What became of the alerts (bot.alerts); nothing while alerts are off."""
        notifier = self.sup.alerts
        if notifier is None:
            return
        counts = notifier.counts()
        sent = CounterMetricFamily(
            "nija_alerts",
            "Alerts per channel: sent, failed (after every attempt), dropped (its queue full).",
            labels=["channel", "outcome"],
        )
        for channel, outcomes in counts.channels.items():
            for outcome, n in outcomes.items():
                sent.add_metric([channel, outcome], n)
        held = CounterMetricFamily(
            "nija_alerts_suppressed",
            "Alerts not sent: duplicate (a repeat within the dedupe window), rate_limited, "
            "queue_full (the notifier's queue).",
            labels=["reason"],
        )
        for reason, n in counts.suppressed.items():
            held.add_metric([reason], n)
        yield from (sent, held)


def _add_histograms(
    family: HistogramMetricFamily, totals: dict[str, Latency], venues: frozenset[str]
) -> None:
    """One histogram per venue of the configured accounts: its accounts' durations, added up
    as they were observed (``bot.isolation.latency``), one counter read per venue."""
    for broker, total in sorted(totals.items()):
        if broker in venues:
            snap = total.snapshot()
            family.add_metric([broker], _buckets(snap), snap.sum_seconds)


def metrics_registry(
    sup: IndependentBrokerTrader, venue_up: VenueUp | None = None
) -> CollectorRegistry:
    """A registry of NIJA's collector and the process's own metrics (CPU, memory, files)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NijaCollector(sup, venue_up))
    registry.register(ProcessMetrics())
    return registry
