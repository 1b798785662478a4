"""The daemon's core: one isolated thread per funded account, and a watchdog over them.

Start-up asks every account for its balance at once and starts each funded account's
thread the moment its own answer arrives, so a hung account delays no one. The
watchdog (the main thread) restarts dead threads with a growing delay, shows
stalled ones, re-checks unfunded accounts, and writes the periodic status summary. When each
account's funds are checked, and which answers start a thread, is ``bot.daemon.admission``'s.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import structlog

from bot.alerts.notifier import Notifier
from bot.brokers.base import Broker
from bot.clock import SYSTEM_CLOCK, Clock
from bot.config.accounts import AccountConfigError
from bot.config.settings import Settings
from bot.daemon.admission import Admission
from bot.daemon.control import ControlResult, reset_circuit
from bot.daemon.dbwatch import DatabaseWatch
from bot.daemon.diskfull import DiskFullNotice
from bot.daemon.funded import FundedChecker, FundedResult
from bot.daemon.leasing import Leasing
from bot.daemon.operator import operator_desk
from bot.daemon.status import STATUS_FILE, STATUS_REFRESH_SECONDS, StatusWriter, write_interval
from bot.daemon.status_document import daemon_document, log_cycle, log_summary
from bot.daemon.threadwatch import ThreadWatch
from bot.daemon.tunings import AccountTunings
from bot.daemon.venue_watch import VenueWatch
from bot.daemon.wiring import (
    BrokerFactories,
    TraderFactory,
    build_hub,
    default_factories,
    interval_for,
)
from bot.daemon.worker import AccountWorker, ThreadState
from bot.engine.risk import GlobalPositionCap
from bot.engine.trader import CycleResult
from bot.errors import describe, is_disk_full
from bot.isolation.latency import CYCLE_BUCKETS, VenueLatencies
from bot.isolation.manager import AccountIsolationManager
from bot.model import BrokerSpec
from bot.redact import Redactor
from bot.store.backend import open_database
from bot.store.writer import Store, StoreError


class IndependentBrokerTrader:
    """Trades every funded account in its own thread, isolated from the others."""

    def __init__(
        self,
        settings: Settings,
        specs: list[BrokerSpec],
        isolation: AccountIsolationManager,
        *,
        trader_factory: TraderFactory,
        factories: BrokerFactories | None = None,
        config_errors: list[AccountConfigError] | None = None,
        demo: bool = False,
        once: bool = False,
        clock: Clock = SYSTEM_CLOCK,
        log=None,
        redactor: Redactor | None = None,
        read_env: Callable[[], Mapping[str, str]] | None = None,
    ) -> None:
        self.settings = settings
        # The daemon's one redactor (bot.py's): status.json, the stores and the workers' error
        # texts mask with it. By default the isolation manager's, which masks last_error.
        self.redactor = redactor or isolation.redactor
        self.specs = {s.account.key: s for s in specs}
        self.isolation = isolation
        self.trader_factory = trader_factory  # bot.daemon.wiring.make_trader, or a test's wrapper
        self.factories = factories or default_factories(settings, clock)
        # What the accounts on one venue share (its market data): built once, here.
        self.hub = build_hub(settings, specs, self.factories, clock)
        self.config_errors = config_errors or []
        self.demo = demo
        self.once = once
        self.clock = clock
        # The clock the accounts trade and record on: the system's, but in the demo, whose
        # market runs faster (its store rows are stamped on that clock too).
        self.trading_clock: Clock = self.factories.market_clock or clock
        self.log = log or structlog.get_logger()
        self.data_dir = Path(settings.data_dir)
        # The state store: the SQLite file in data_dir, or PostgreSQL (NIJA_DATABASE_URL) over
        # a bounded pool (NIJA_DATABASE_POOL_SIZE), whatever the number of accounts.
        self.db = open_database(
            self.data_dir,
            settings.mode,
            settings.database_url,
            max_connections=settings.database_pool_size,
        )
        self.database = DatabaseWatch(self.db, live=settings.live, log=self.log)
        self.global_cap = GlobalPositionCap(settings.max_total_positions)
        self.workers: dict[str, AccountWorker] = {}
        # Each venue's accounts' cycle durations, added up as cycles end (for the metrics).
        self.cycle_times = VenueLatencies(CYCLE_BUCKETS)
        # A worker is published and started as one step (the funds-check thread starts
        # workers): the watchdog never finds one unstarted and calls it dead.
        self._starting = threading.Lock()
        # Each account's risk and strategy settings: the per-account overrides file's.
        self.tunings = AccountTunings(settings, self.specs, clock=clock, log=self.log)
        self.started_at: float | None = None  # monotonic end of start-up (readiness)
        self.alerts: Notifier | None = None  # bot.py's, when alerts are on (its counts: /metrics)
        self.last_tick: float | None = None  # monotonic time of the last watchdog tick (liveness)
        self.funded: dict[str, FundedResult] = {}
        # Each account's client is the factories' own (one per account, across re-checks).
        self.funded_checks = FundedChecker(
            self.factories.venue,
            isolation,
            min_balance_usd=settings.min_balance_usd,
            timeout_seconds=settings.call_timeout_seconds,
            waited=self.factories.waited,
            # Each check passes its venue's gate, as the account's trading calls do.
            venue_health=lambda spec: self.venues.for_account(spec),
            clock=clock,
        )
        self.stopping = threading.Event()
        self.disk = DiskFullNotice(self.log, clock)
        self.status = StatusWriter(
            self.data_dir / STATUS_FILE,
            self.get_multi_broker_status,
            min_interval=write_interval(len(specs)),
            on_error=self._status_write_failed,
            on_written=lambda: self.disk.wrote(STATUS_FILE),
            redactor=self.redactor,
        )
        # One health per venue, shared by its accounts; one monitor thread per venue.
        self.venues = VenueWatch(
            settings,
            specs,
            self._monitor_client,
            wake=self._wake_venue,
            changed=self.status.mark_dirty,
            clock=clock,
            log=self.log,
        )
        for venue in self.hub.venues():  # the shared market's failures are the venue's
            venue.market.observer = self.venues.health.get(venue.name)
        # Several nodes on PostgreSQL: the accounts whose leases this node holds (SQLite: all).
        self.leases = Leasing(
            settings, self.db, list(self.specs), self.workers, clock=clock, log=self.log,
            changed=self.status.mark_dirty,
        )  # fmt: skip
        self.threads = ThreadWatch(
            isolation, settings.call_timeout_seconds, once=once, log=self.log
        )
        # When each account's funds are checked, and which answers start its thread.
        self.admission = Admission(
            settings, self.specs, self.funded_checks, self.leases, self.workers, self.funded,
            start=self._start_worker, stopping=self.stopping, clock=clock, log=self.log,
            changed=self.status.mark_dirty,
        )  # fmt: skip
        # Operator actions, one at a time through the control desk, for nija_ctl.py and the
        # HTTP API alike; ``read_env`` re-reads the environment and .env for a reload.
        self.operator, self.control = operator_desk(self, read_env)
        self._next_status_log = 0.0
        for spec in specs:
            isolation.register_account(
                spec.account.account_type, spec.account.account_id, spec.account.broker
            )
        isolation.add_listener(self._on_health_change)

    def _monitor_client(self, spec: BrokerSpec) -> Broker:
        """The venue monitor's own client: never an account's, nor the shared market's (an SDK
        client serves one thread at a time); without a key where the venue allows it."""
        source = self.factories.public([spec]) if self.factories.public else None
        return source if isinstance(source, Broker) else self.factories.venue(spec)

    def _on_health_change(self, key: str, change) -> None:
        log = self.log.warning if change.new.value != "healthy" else self.log.info
        spec, error = self.specs.get(key), None
        if spec is not None and change.new.value in ("failing", "quarantined"):
            # What opened the circuit (masked by the isolation manager): its alert says it.
            a = spec.account
            error = self.isolation.get_account_status(a.account_type, a.account_id, a.broker)[1]
        log(
            "INDEPENDENT_health_changed",
            account=key,
            old=change.old.value,
            new=change.new.value,
            reason=change.reason,
            error=None if error is None else error["last_error"],
        )
        worker = self.workers.get(key)
        if worker is not None:  # its own thread writes it to its own store
            worker.health_events.append(
                (self.clock.wall(), change.old.value, change.new.value, change.reason)
            )
        self.status.mark_dirty()

    # -- start ------------------------------------------------------------------------
    def start_independent_multi_broker_trading(self) -> None:
        """Check every account's funds at once; start each funded account as its answer lands.

        Raises ``StartupError`` (before any thread starts) when the database cannot be used.
        """
        self.database.open()
        self.leases.start()  # registers this node and takes its share of the leases
        self.operator.restore()  # stored pauses hold before any thread can enter a position
        self.tunings.load()  # and each account's overrides are in force at its first cycle
        self.status.write_now()
        self.status.start()
        self.venues.start()
        self.admission.first_round()
        now = self.clock.monotonic()
        self._next_status_log = now + self.settings.status_log_seconds
        self.started_at = now

    def _open_store(self, key: str) -> Store:
        # Never a new, empty database in place of a missing one: that thread waits instead.
        if self.database.problem is not None:
            raise StoreError("open", self.database.problem, account_key=key)
        fence = self.leases.fence(key)  # several nodes: every write fenced by the lease
        return Store(
            self.db, key, clock=self.clock, redactor=self.redactor, create=False, fence=fence
        )

    def _start_worker(self, spec: BrokerSpec) -> None:
        key = spec.account.key
        log = self.log.bind(account=key)
        venue = self.hub.get(spec.account.broker)
        worker = AccountWorker(
            spec,
            interval_for(self.settings, spec),
            # The spec of the moment: a reload replaces it (bot.daemon.operator).
            build=lambda store: self.trader_factory(
                self.specs[key],
                self.settings,
                self.factories.trading(self.specs[key], venue.market),
                store,
                self.isolation,
                self.global_cap,
                log=log,
                should_stop=worker.stop_event.is_set,
                clock=self.trading_clock,
                venue=venue,
                venue_health=self.venues.for_account(spec),
            ),
            open_store=self._open_store,
            on_cycle=self._on_cycle,
            clock=self.clock,  # the watchdog compares the worker's times with its own
            max_cycles=1 if self.once else None,
            log=log,
            redactor=self.redactor,
            tuning=lambda: self.tunings.get(key),
            cycle_times=self.cycle_times.account(spec.account.broker),
        )
        with self._starting:
            self.workers[key] = worker
            thread = worker.start()
        log.info("INDEPENDENT_thread_started", thread=thread.name, interval_s=worker.interval)

    def _on_cycle(self, worker: AccountWorker, result: CycleResult) -> None:
        """The cycle's one log line: a warning when a failure ended it, else info."""
        if result.ok:
            self.threads.healthy_cycle(worker.key)  # a healthy cycle resets the backoff
        if result.disk_full:
            self.disk.failed("store", result.error or "disk full")
        elif result.ok:
            self.disk.wrote("store")
        log_cycle(self.log, worker.key, result)
        self.status.mark_dirty()

    def _wake_venue(self, venue: str) -> None:
        """Its venue is back: each of its workers waits only for its own resume time."""
        for worker in list(self.workers.values()):
            if worker.spec.account.broker == venue:
                worker.wake()

    def _status_write_failed(self, error: Exception) -> None:
        if is_disk_full(error):
            self.disk.failed(STATUS_FILE, describe(error))
        else:
            self.log.error("status_write_failed", error=str(error))

    # -- the watchdog (main thread) ----------------------------------------------------------
    def watchdog_tick(self) -> None:
        """Restart dead threads, mark stalled ones, re-check funds, log the summary; perform
        operator requests; hold new positions while the database file is missing."""
        self.global_cap.hold(self.database.check())
        self.control.poll()
        now = self.last_tick = self.clock.monotonic()
        with self._starting:
            workers = list(self.workers.values())
        for worker in workers:
            self.threads.watch(worker, now)
        self.admission.tick(now)
        if now >= self._next_status_log:
            self._next_status_log = now + self.settings.status_log_seconds
            self.log_multi_broker_status()
        self.status.mark_dirty()

    def run_until(self, stop: threading.Event, tick: float = STATUS_REFRESH_SECONDS) -> None:
        """Watch over the threads until ``stop`` is set (with ``once``: until all finished)."""
        done = (ThreadState.FINISHED, ThreadState.DEAD)
        while not stop.is_set():
            self.watchdog_tick()
            finished = all(w.state in done for w in self.workers.values())
            if self.once and finished and not self.leases.waiting():
                return
            stop.wait(tick)

    # -- operator requests ----------------------------------------------------------------------
    def reset_account(self, key: str) -> ControlResult:
        """Close one account's circuit (``nija_ctl.py reset``); the other accounts are untouched.

        A running thread reconciles with the venue and trades at its next cycle, as after a
        restart (so a position flagged ``exit_blocked`` gets a fresh exit); an account
        without a thread (its funds check failed) is checked again at once.
        """
        worker = self.workers.get(key)
        note = (
            "it reconciles and trades at its next cycle"
            if worker
            else "its funds are checked again now"
        )
        result = reset_circuit(self.isolation, self.specs, key, note)
        if result.ok and worker is not None:
            worker.reconcile_next_cycle()
            worker.wake()  # out of the wait the open circuit had set
        elif result.ok:
            self.admission.recheck_now()
        return result

    # -- stop ---------------------------------------------------------------------------------
    def stop_independent_trading(self, timeout: float = 8.0) -> list[str]:
        """Let every thread finish its step and close its store; the keys still busy at the end.

        Threads stuck in a broker call past ``timeout`` are left behind (they are daemon
        threads): their orders were stored before sending and are settled at the next start.
        """
        self.stopping.set()
        for worker in self.workers.values():
            worker.request_stop()
        deadline = self.clock.monotonic() + timeout
        for worker in self.workers.values():
            if worker.thread is not None:
                worker.thread.join(max(0.0, deadline - self.clock.monotonic()))
        stuck = [w.key for w in self.workers.values() if w.alive()]
        for key in stuck:
            self.log.warning("INDEPENDENT_thread_still_in_broker_call", account=key)
        self.leases.stop()  # every lease handed back; a stuck thread's fence is revoked first
        self.venues.stop()
        self.status.stop()
        if not stuck:  # a thread still in a call may yet read its venue's client
            self.hub.close()
        self.log.info("stopped", accounts=len(self.workers), still_in_broker_calls=len(stuck))
        return stuck

    # -- status -----------------------------------------------------------------------------
    def get_multi_broker_status(self) -> dict[str, Any]:
        """The status.json document (schema in design.md)."""
        return daemon_document(self)

    def log_multi_broker_status(self) -> None:
        """The periodic status summary: one line per account, then the isolation report."""
        mode = ("DEMO " if self.demo else "") + self.settings.mode.upper()
        log_summary(self.log, self.get_multi_broker_status(), mode)


__all__ = ["IndependentBrokerTrader"]
