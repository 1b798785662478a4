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
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from bot.isolation.circuit import AccountHealthStatus, CircuitState
from bot.isolation.latency import LatencySnapshot, merged
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

# Each venue's "is it up" (venue name -> up); by default the daemon's own venue layer's.
VenueUp = Callable[[], dict[str, bool]]


def _buckets(snap: LatencySnapshot) -> list[tuple[str, float]]:
    return [
        ("+Inf" if bound == float("inf") else repr(bound), count) for bound, count in snap.buckets
    ]


class NijaCollector(Collector):
    """Reads the running daemon at scrape time; see the module docstring."""

    def __init__(self, sup: IndependentBrokerTrader, venue_up: VenueUp | None = None) -> None:
        self.sup = sup
        self.venue_up = venue_up or self._watched_venues
        self._store_read: tuple[float, list[Metric]] | None = None  # (monotonic, families)

    def collect(self) -> Iterator[Metric]:
        sup = self.sup
        health = sup.isolation.get_all_account_statuses()
        latencies = sup.isolation.call_latencies()
        accounts = {key: spec.account.broker for key, spec in sup.specs.items()}
        yield from self._circuits(accounts, health, latencies)
        yield from self._cycles(accounts)
        yield from self._store(accounts)
        yield from self._venues()
        yield from self._alerts()

    def _circuits(
        self,
        accounts: dict[str, str],
        health: dict[str, dict[str, Any]],
        latencies: dict[str, LatencySnapshot],
    ) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "nija_circuitbreaker_state",
            "1 for the state each account's circuit breaker is in, 0 for the others.",
            labels=[*ACCOUNT_LABELS, "state"],
        )
        calls = CounterMetricFamily(
            "nija_calls",
            "Operations through each account's circuit breaker, by outcome.",
            labels=[*ACCOUNT_LABELS, "kind"],
        )
        refused = CounterMetricFamily(
            "nija_not_permitted_calls",
            "Operations each account's circuit breaker refused (open, trial in flight, "
            "or a venue's Retry-After).",
            labels=ACCOUNT_LABELS,
        )
        seconds = HistogramMetricFamily(
            "nija_call_seconds",
            "Duration of the successful broker calls of each venue's accounts.",
            labels=["broker"],
        )
        paused = GaugeMetricFamily(
            "nija_account_paused",
            "1 while an operator has paused the account.",
            labels=ACCOUNT_LABELS,
        )
        counts = {s.value: 0 for s in AccountHealthStatus}
        for key, broker in accounts.items():
            m = health.get(key)
            labels = [key, broker]
            paused.add_metric(labels, 1.0 if key in self.sup.operator.paused else 0.0)
            if m is None:
                continue
            counts[m["status"]] += 1
            for s in CircuitState:
                state.add_metric([*labels, s.value], 1.0 if m["circuit_state"] == s.value else 0.0)
            calls.add_metric([*labels, "successful"], m["total_successes"])
            calls.add_metric([*labels, "failed"], m["total_failures"])
            refused.add_metric(labels, m["not_permitted_calls"])
        for broker, snap in _by_broker(accounts, latencies).items():
            seconds.add_metric([broker], _buckets(snap), snap.sum_seconds)
        by_state = GaugeMetricFamily(
            "nija_account_health", "Accounts in each health state.", labels=["state"]
        )
        for name, n in counts.items():
            by_state.add_metric([name], n)
        yield from (state, calls, refused, seconds, by_state, paused)

    def _cycles(self, accounts: dict[str, str]) -> Iterator[Metric]:
        cycles = CounterMetricFamily(
            "nija_cycles", "Trading cycles each account has run.", labels=ACCOUNT_LABELS
        )
        seconds = HistogramMetricFamily(
            "nija_cycle_seconds",
            "Duration of the cycles of each venue's accounts.",
            labels=["broker"],
        )
        duration = GaugeMetricFamily(
            "nija_last_cycle_duration_seconds",
            "How long each account's last cycle took.",
            labels=ACCOUNT_LABELS,
        )
        last = GaugeMetricFamily(
            "nija_last_cycle_timestamp_seconds",
            "When each account's last cycle ended (Unix time).",
            labels=ACCOUNT_LABELS,
        )
        positions = GaugeMetricFamily(
            "nija_open_positions", "Open positions of each account.", labels=ACCOUNT_LABELS
        )
        equity = GaugeMetricFamily(
            "nija_equity_usd",
            "Each account's equity in USD at its last cycle (paper mode: the paper wallet).",
            labels=ACCOUNT_LABELS,
        )
        times: dict[str, LatencySnapshot] = {}
        for key, worker in list(self.sup.workers.items()):
            labels = [key, accounts.get(key, worker.spec.account.broker)]
            result = worker.last_result  # read once: the worker's thread replaces it
            cycles.add_metric(labels, worker.cycles)
            times[key] = worker.cycle_times.snapshot()
            if result is not None:
                positions.add_metric(labels, result.positions_open)
                duration.add_metric(labels, result.duration_ms / 1000.0)
                if result.equity_usd is not None:
                    equity.add_metric(labels, result.equity_usd)
            if worker.last_cycle_wall is not None:
                last.add_metric(labels, worker.last_cycle_wall)
        for broker, snap in _by_broker(accounts, times).items():
            seconds.add_metric([broker], _buckets(snap), snap.sum_seconds)
        yield from (cycles, seconds, duration, last, positions, equity)

    def _store(self, accounts: dict[str, str]) -> Iterator[Metric]:
        now = self.sup.clock.monotonic()
        if self._store_read is None or now - self._store_read[0] >= STORE_TTL_SECONDS:
            self._store_read = (now, list(self._read_store(accounts)))
        yield from self._store_read[1]

    def _read_store(self, accounts: dict[str, str]) -> Iterator[Metric]:
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
        for key, broker in accounts.items():
            t = totals.get(key)
            pnl.add_metric([key, broker], t.realized_pnl_usd if t else 0.0)
            fees.add_metric([key, broker], t.fees_usd if t else 0.0)
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


def _by_broker(
    accounts: dict[str, str], snapshots: dict[str, LatencySnapshot]
) -> dict[str, LatencySnapshot]:
    groups: dict[str, list[LatencySnapshot]] = {}
    for key, snap in snapshots.items():
        if key in accounts:
            groups.setdefault(accounts[key], []).append(snap)
    return {broker: m for broker, group in sorted(groups.items()) if (m := merged(group))}


def metrics_registry(
    sup: IndependentBrokerTrader, venue_up: VenueUp | None = None
) -> CollectorRegistry:
    """A registry of NIJA's collector and the process's own metrics (CPU, memory, files)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NijaCollector(sup, venue_up))
    ProcessCollector(registry=registry)
    return registry
