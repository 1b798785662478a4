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

What a scrape costs the daemon is measured by scripts/bench_api.py and, in-process, by
scripts/profile_scrape.py (docs/OPERATIONS.md, "What it costs"). So that it stays small:
each account's and venue's label sets are made once and kept (``LabelSet``: the writer keeps
each series' text on them); the per-account and per-venue families are ``Rows`` (label sets
beside values, no ``Sample`` per value; the writer keeps a family's text while its values
stay the same), built as they are yielded; the isolation manager is read through
``account_counts`` (no status documents); each venue's histograms are its running totals
(``bot.isolation.latency``), not every account's counters added up at the scrape; the
``process_*`` metrics are ``bot.api.process``'s.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.api.exposition import LabelSet, Rows
from bot.api.process import ProcessMetrics
from bot.isolation.circuit import AccountHealthStatus, CircuitState
from bot.isolation.latency import CALL_BUCKETS, CYCLE_BUCKETS, Latency
from bot.isolation.manager import AccountCounts
from bot.store.reader import ReadOnlyStore
from bot.store.records import StoredOrderStatus
from bot.store.writer import StoreError
from bot.venue.health import VenueState

if TYPE_CHECKING:
    from bot.daemon.supervisor import IndependentBrokerTrader
    from bot.daemon.worker import AccountWorker

__all__ = ["NijaCollector", "VenueUp", "metrics_registry"]

STORE_TTL_SECONDS = 30.0
# ``store_due``'s default: a scrape told "not due" starts well within this, never reading.
STORE_DUE_MARGIN_SECONDS = 1.0
_ENDED = (StoredOrderStatus.FILLED, StoredOrderStatus.CANCELED, StoredOrderStatus.REJECTED)
_IN_FLIGHT = (StoredOrderStatus.PENDING, StoredOrderStatus.UNKNOWN, StoredOrderStatus.OPEN)
# Each circuit state's three values, in CircuitState's order (1 for the state it is in).
_STATE_VALUES = {now: tuple(float(s is now) for s in CircuitState) for now in CircuitState}

# Each venue's "is it up" (venue name -> up); by default the daemon's own venue layer's.
VenueUp = Callable[[], dict[str, bool]]


class _Histogram:
    """One per-venue histogram family: each venue's label sets (its buckets', then its count's
    and sum's) made once and kept, and its rows read from the venue's running total."""

    __slots__ = ("documentation", "les", "name", "names", "venues")

    def __init__(self, name: str, documentation: str, bounds: tuple[float, ...]) -> None:
        self.name, self.documentation = name, documentation
        self.les = (*map(repr, bounds), "+Inf")  # the bucket labels, as the library writes
        self.names = (name + "_bucket",) * len(self.les) + (name + "_count", name + "_sum")
        self.venues: dict[str, tuple[LabelSet, ...]] = {}

    def rows(self, totals: dict[str, Latency], venues: frozenset[str]) -> Rows:
        """The venues' histograms in the library's order (by venue; buckets, count, sum)."""
        label_sets: list[LabelSet] = []
        values: list[float] = []
        for broker, total in sorted(totals.items()):
            if broker not in venues:  # no configured account on it
                continue
            snap = total.snapshot()
            kept = self.venues.get(broker)
            if kept is None:
                kept = self.venues[broker] = self._labels(broker)
            label_sets += kept
            values += [count for _le, count in snap.buckets]
            values += (snap.count, snap.sum_seconds)
        names = self.names * (len(label_sets) // len(self.names))
        return Rows(self.name, self.documentation, "histogram", label_sets, values, names)

    def _labels(self, broker: str) -> tuple[LabelSet, ...]:
        by_venue = LabelSet({"broker": broker})
        return (*(LabelSet({"broker": broker, "le": le}) for le in self.les), by_venue, by_venue)


class _Labels:
    """One account's label sets, made once and given to its series at every scrape (the
    text writer keeps each series' text on its unchangeable label set)."""

    __slots__ = ("account", "broker", "failed", "states", "successful")

    def __init__(self, key: str, broker: str) -> None:
        self.broker = broker
        self.account = LabelSet({"account": key, "broker": broker})
        # In CircuitState's order, as _STATE_VALUES.
        self.states = tuple(LabelSet({**self.account, "state": s.value}) for s in CircuitState)
        self.successful = LabelSet({**self.account, "kind": "successful"})
        self.failed = LabelSet({**self.account, "kind": "failed"})


class _CircuitSets:
    """The label sets of the circuit families, in the accounts' order, as one tuple each."""

    __slots__ = ("accounts", "calls", "keys", "states")

    def __init__(self, keys: list[str], labels: list[_Labels]) -> None:
        self.keys = keys
        self.states = tuple(chain.from_iterable(lab.states for lab in labels))
        self.calls = tuple(chain.from_iterable((lab.successful, lab.failed) for lab in labels))
        self.accounts = tuple(lab.account for lab in labels)


class NijaCollector(Collector):
    """Reads the running daemon at scrape time; see the module docstring."""

    def __init__(self, sup: IndependentBrokerTrader, venue_up: VenueUp | None = None) -> None:
        self.sup = sup
        self.venue_up = venue_up or self._watched_venues
        self._store_read: tuple[float, list[Metric]] | None = None  # (monotonic, families)
        self._labels: dict[str, _Labels] = {}  # by account key: the last scrape's accounts
        self._brokers: frozenset[str] = frozenset()  # their venues
        self._circuit_kept: _CircuitSets | None = None
        self._health_sets = tuple(LabelSet({"state": s.value}) for s in AccountHealthStatus)
        # The workers' label sets, with the labels and the worker keys they were made for.
        self._worker_kept: tuple[dict[str, _Labels], list[str], tuple[LabelSet, ...]] | None = None
        # The per-venue histograms: each venue's accounts' durations, added up as observed.
        self._call_seconds = _Histogram(
            "nija_call_seconds",
            "Duration of the successful broker calls of each venue's accounts.",
            CALL_BUCKETS,
        )
        self._cycle_seconds = _Histogram(
            "nija_cycle_seconds", "Duration of the cycles of each venue's accounts.", CYCLE_BUCKETS
        )

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

    # Each per-account family is built as it is yielded (its label sets beside its values,
    # no Sample per value: ``Rows``), so the writer has written and dropped one family before
    # the next exists (fewer garbage collections started by the API's thread).
    def _circuits(self, labels: dict[str, _Labels]) -> Iterator[Metric]:
        found = {row.key: row for row in self.sup.isolation.account_counts()}
        rows = [row for key in labels if (row := found.get(key)) is not None]
        sets = self._circuit_sets(labels, rows)
        yield Rows(
            "nija_circuitbreaker_state",
            "1 for the state each account's circuit breaker is in, 0 for the others.",
            "gauge",
            sets.states,
            chain.from_iterable([_STATE_VALUES[row.circuit] for row in rows]),
        )
        yield Rows(
            "nija_calls",
            "Operations through each account's circuit breaker, by outcome.",
            "counter",
            sets.calls,
            chain.from_iterable([(row.successes, row.failures) for row in rows]),
        )
        yield Rows(
            "nija_not_permitted_calls",
            "Operations each account's circuit breaker refused (open, trial in flight, "
            "or a venue's Retry-After).",
            "counter",
            sets.accounts,
            [row.not_permitted for row in rows],
        )
        yield self._call_seconds.rows(self.sup.isolation.venue_call_times(), self._brokers)
        counts = Counter([row.status for row in rows])
        yield Rows("nija_account_health", "Accounts in each health state.", "gauge",
                   self._health_sets, [counts[status] for status in AccountHealthStatus])  # fmt: skip
        paused = self.sup.operator.paused
        yield Rows(
            "nija_account_paused",
            "1 while an operator has paused the account.",
            "gauge",
            [lab.account for lab in labels.values()],
            [1.0 if key in paused else 0.0 for key in labels],
        )

    def _circuit_sets(self, labels: dict[str, _Labels], rows: list[AccountCounts]) -> _CircuitSets:
        """The circuit families' label sets for these accounts: the last scrape's while the
        accounts are the same (they nearly always are), so a scrape builds none."""
        keys = [row.key for row in rows]
        kept = self._circuit_kept
        if kept is None or kept.keys != keys:
            kept = self._circuit_kept = _CircuitSets(keys, [labels[key] for key in keys])
        return kept

    def _cycles(self, labels: dict[str, _Labels]) -> Iterator[Metric]:
        # Each worker read once (its thread replaces its result and counts on); an unknown
        # value (no cycle ended yet, a store it could not read) has no sample.
        workers = list(self.sup.workers.items())
        accounts = self._worker_sets(labels, workers)
        reads = [(w.cycles, w.last_cycle_wall, w.last_result) for _key, w in workers]
        yield Rows("nija_cycles", "Trading cycles each account has run.", "counter",
                   accounts, [n for n, _wall, _result in reads])  # fmt: skip
        yield self._cycle_seconds.rows(self.sup.cycle_times.totals(), self._brokers)
        done = [(a, r) for a, (_n, _wall, r) in zip(accounts, reads, strict=True) if r is not None]
        yield Rows("nija_last_cycle_duration_seconds", "How long each account's last cycle took.",
                   "gauge", [a for a, _r in done], [r.duration_ms / 1000.0 for _a, r in done])  # fmt: skip
        yield _per_account(
            "nija_last_cycle_timestamp_seconds",
            "When each account's last cycle ended (Unix time).",
            "gauge",
            zip(accounts, [wall for _n, wall, _r in reads], strict=True),
        )
        yield _per_account("nija_open_positions", "Open positions of each account.", "gauge",
                           [(a, r.positions_open) for a, r in done])  # fmt: skip
        yield _per_account(
            "nija_equity_usd",
            "Each account's equity in USD at its last cycle (paper mode: the paper wallet).",
            "gauge",
            [(a, r.equity_usd) for a, r in done],
        )

    def _worker_sets(
        self, labels: dict[str, _Labels], workers: list[tuple[str, AccountWorker]]
    ) -> tuple[LabelSet, ...]:
        """The workers' accounts' label sets, in the workers' order: the last scrape's while
        the workers and the configured accounts are the same."""
        keys = [key for key, _w in workers]
        kept = self._worker_kept
        if kept is None or kept[0] is not labels or kept[1] != keys:
            sets = tuple(  # a worker not configured (any more) gets its own series
                (labels.get(key) or _Labels(key, w.spec.account.broker)).account
                for key, w in workers
            )
            kept = self._worker_kept = (labels, keys, sets)
        return kept[2]

    def store_due(self, within: float = STORE_DUE_MARGIN_SECONDS) -> bool:
        """Whether a collection ``within`` seconds from now reads the state database (the
        totals it keeps are that old by then, or were never read): a read that may wait."""
        read = self._store_read
        return read is None or self.sup.clock.monotonic() + within - read[0] >= STORE_TTL_SECONDS

    def _store(self, labels: dict[str, _Labels]) -> Iterator[Metric]:
        if self.store_due(within=0.0):
            self._store_read = (self.sup.clock.monotonic(), list(self._read_store(labels)))
        assert self._store_read is not None
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
        accounts = [(lab.account, totals.get(key)) for key, lab in labels.items()]
        pnl = _per_account(
            "nija_realized_pnl_usd",
            "Realized P&L of each account's closed positions, net of fees, in USD (lifetime).",
            "gauge",
            [(account, t.realized_pnl_usd if t else 0.0) for account, t in accounts],
        )
        fees = _per_account(
            "nija_fees_usd",
            "Fees each account has paid, in USD (lifetime).",
            "counter",
            [(account, t.fees_usd if t else 0.0) for account, t in accounts],
        )
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


def metrics_registry(collector: NijaCollector) -> CollectorRegistry:
    """A registry of NIJA's collector and the process's own metrics (CPU, memory, files)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    registry.register(ProcessMetrics())
    return registry


def _per_account(
    name: str, documentation: str, typ: str, pairs: Iterable[tuple[LabelSet, float | None]]
) -> Rows:
    """One series per account that has a value; an account whose value is unknown (None)
    has no sample, never a made-up 0."""
    known = [(labels, value) for labels, value in pairs if value is not None]
    return Rows(name, documentation, typ, [labels for labels, _v in known], [v for _l, v in known])
