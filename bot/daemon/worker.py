"""One account's thread: its cycle on its interval, its own store connection, its own state.

The worker owns everything mutable about its account (trader, broker client, store
connection). Others only read its plain attributes (a snapshot for status.json),
so nothing a slow account does can hold up another.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import structlog

from bot.clock import SYSTEM_CLOCK, Clock, IsoText
from bot.daemon.equity_history import EquityHistory
from bot.daemon.tuning import Tuning, apply_tuning
from bot.engine.trader import AccountTrader, CycleResult
from bot.errors import describe
from bot.isolation.latency import CYCLE_BUCKETS, Latency
from bot.model import BrokerSpec
from bot.redact import Redactor
from bot.store.writer import Store, StoreError


class ThreadState(StrEnum):
    """An account thread's state, as status.json's ``thread`` shows it."""

    NOT_STARTED = "not_started"
    RUNNING = "running"
    STALLED = "stalled"  # a cycle has run far past its interval
    DEAD = "dead"  # killed by an exception; the watchdog restarts it
    FINISHED = "finished"  # --once: the one cycle is done


@dataclass
class WorkerSnapshot:
    """What status.json and the log show about one account's thread."""

    thread: ThreadState
    cycles: int
    last_cycle_at: str | None
    last_cycle_ms: float | None
    last_error: str | None
    open_positions: int | None  # None: unknown (the last cycle could not read the store)
    next_cycle_at: str | None
    interval_seconds: float
    restarts: int
    equity_usd: float | None
    marks: dict[str, float]  # the last prices a cycle got (CycleResult.marks), by symbol
    marks_at: str | None  # when that cycle ended
    dust: dict[str, float] = field(default_factory=dict)  # asset → remainder too small to trade
    exit_blocked: dict[str, str] = field(default_factory=dict)  # symbol → the venue's reason
    orders_unknown: list[str] = field(default_factory=list)  # client ids of ambiguous orders
    # Why the last cycle has no equity (its venue parked, its circuit open, a holding's price
    # not to be had...): None when it has one, or before any cycle.
    equity_unknown_reason: str | None = None


class AccountWorker:
    """Runs ``AccountTrader.run_cycle`` every ``interval`` seconds in thread ``trader-<key>``.

    ``build(store)`` makes the account's trader inside the thread, so the broker
    client and the SQLite connection belong to that thread alone. ``tuning()`` is the
    account's current risk and strategy settings (its overrides), applied by this thread
    before the next cycle whenever the daemon swaps in a new one.
    """

    def __init__(
        self,
        spec: BrokerSpec,
        interval: float,
        build: Callable[[Store], AccountTrader],
        open_store: Callable[[str], Store],
        *,
        on_cycle: Callable[[AccountWorker, CycleResult], None] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        max_cycles: int | None = None,
        log=None,
        redactor: Redactor | None = None,
        tuning: Callable[[], Tuning | None] | None = None,
        cycle_times: Latency | None = None,
    ) -> None:
        self.spec = spec
        self.key = spec.account.key
        self.interval = interval
        self._build = build
        self._open_store = open_store
        self._on_cycle = on_cycle
        self._clock = clock
        self.log = log or structlog.get_logger().bind(account=self.key)
        self.redactor = redactor or Redactor()  # masks the secrets in ``crash``
        self.max_cycles = max_cycles  # ``bot.py --once``: one cycle, then the thread ends
        self.stop_event = threading.Event()
        self._wake = threading.Event()  # ends the wait between cycles early (stop, reset)
        # Set by an operator's reset: the next cycle reconciles again, as after a restart.
        self._reconcile = threading.Event()
        self.thread: threading.Thread | None = None
        self.state = ThreadState.NOT_STARTED
        self.cycles = 0
        self.restarts = 0
        self.busy_since: float | None = None  # monotonic start of the cycle in progress
        self.last_result: CycleResult | None = None
        self.last_cycle_wall: float | None = None
        self.next_cycle_wall: float | None = None
        self.crash: str | None = None  # why the thread died, if it did
        # The last cycle that priced anything: a cycle that failed before pricing keeps them.
        self.marks: dict[str, float] = {}
        self.marks_wall: float | None = None
        # The snapshot's times as text, each formatted once per change (status.json reads
        # them every second).
        self._times_text = (IsoText(), IsoText(), IsoText())
        self.equity_history = EquityHistory()  # each cycle's equity, for the dashboard
        # Health changes recorded by any thread; written to the store by this one.
        self.health_events: deque[tuple[float, str, str, str]] = deque(maxlen=1000)
        self._rebuild = threading.Event()  # an operator reloaded its credentials
        self.reconciled = False  # its trader has reconciled with the venue (readiness)
        # For the metrics: its cycles' durations (the supervisor's feed its venue's total).
        self.cycle_times = cycle_times or Latency(CYCLE_BUCKETS)
        self._tuning = tuning
        self._tuned: Tuning | None = None  # applied to this thread's trader; None: built anew

    # -- control (main thread) -----------------------------------------------------
    def start(self) -> threading.Thread:
        """Start the thread and return it; never a second one while the first is alive."""
        if self.thread is not None and self.thread.is_alive():
            raise RuntimeError(f"{self.key}: a trader thread is already running")
        if self.thread is not None:
            self.restarts += 1
        self.crash = None
        self.busy_since = None
        self._rebuild.clear()  # a new thread builds its trader from the current spec anyway
        self.state = ThreadState.RUNNING
        self.thread = threading.Thread(target=self._main, name=f"trader-{self.key}", daemon=True)
        self.thread.start()
        return self.thread

    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def request_stop(self) -> None:
        self.stop_event.set()
        self._wake.set()

    def wake(self) -> None:
        """Start the next cycle now, not after the wait (its open circuit was reset, or its
        venue is back)."""
        self._wake.set()

    def reconcile_next_cycle(self) -> None:
        """Reconcile with the venue again at the next cycle, as a restart would: blocked exits
        get a fresh try and the store takes what the venue holds now."""
        self._reconcile.set()

    def request_rebuild(self) -> None:
        """Build a new trader (a new broker client) before the next cycle, which starts now."""
        self._rebuild.set()
        self._wake.set()

    # -- the thread --------------------------------------------------------------
    def _main(self) -> None:
        store = None
        try:
            store = self._open_store(self.key)
            trader = self._build(store)
            self._tuned = None
            while not self.stop_event.is_set():
                if self._rebuild.is_set():
                    trader = self._rebuilt(trader, store)
                self._retune(trader)
                self._one_cycle(trader)
                if self.last_result is not None and self.last_result.lease_lost:
                    self.stop_event.set()  # its lease is another node's now: never restarted
                    break
                self._write_health_events(store)
                if self.max_cycles is not None and self.cycles >= self.max_cycles:
                    self.state = ThreadState.FINISHED
                    break
                self._sleep_until_next()
            done = "cycles done" if self.state == ThreadState.FINISHED else "stop requested"
            if self.last_result is not None and self.last_result.lease_lost:
                done = f"lease lost: {self.last_result.lease_lost}"
            self.log.info("INDEPENDENT_thread_stopped", reason=done, cycles=self.cycles)
        except Exception as exc:  # the watchdog records the death and restarts the thread
            self.crash = describe(exc, redactor=self.redactor)
            self.state = ThreadState.DEAD
            # Through the redacting logger, not threading.excepthook's raw stderr.
            self.log.exception("INDEPENDENT_thread_crashed", error=self.crash)
        finally:
            self.busy_since = None
            if store is not None:
                store.close()

    def _rebuilt(self, trader: AccountTrader, store: Store) -> AccountTrader:
        """A new trader from the current spec; the old one when it cannot be built."""
        self._rebuild.clear()
        try:
            new = self._build(store)
        except Exception as exc:  # the working client stays; the operator reads why
            error = describe(exc, redactor=self.redactor)
            self.log.error("account_reload_failed", error=error, kept="the previous client")
            return trader
        try:
            trader.broker.broker.close()
        except Exception as exc:  # the old client is dropped either way
            self.log.warning("broker_close_failed", error=describe(exc, redactor=self.redactor))
        self.reconciled = False
        self._tuned = None  # built with the global settings: its tuning is applied again
        self.log.info("account_reloaded", note="new broker client; reconciling at this cycle")
        return new

    def _retune(self, trader: AccountTrader) -> None:
        """Apply the account's tuning when the daemon has swapped in a new one (between two
        cycles: the cycle that starts next is the first to use it)."""
        tuning = self._tuning() if self._tuning is not None else None
        if tuning is None or tuning is self._tuned:
            return
        built = self._tuned is None  # a new trader has the global settings already
        self._tuned = tuning
        if built and tuning.is_base:
            return
        apply_tuning(trader, tuning)
        overrides = tuning.override.document() if tuning.override else None
        self.log.info("overrides_applied", overrides=overrides, entries_held=tuning.held)

    def _one_cycle(self, trader: AccountTrader) -> None:
        self._started = self._clock.monotonic()
        self.busy_since = self._started
        if self._reconcile.is_set():
            self._reconcile.clear()
            trader.reconciled = False
        result = trader.run_cycle()
        self.busy_since = None
        self.cycles += 1
        self.cycle_times.observe(result.duration_ms / 1000.0)
        self.reconciled = trader.reconciled
        self.last_result = result
        self.last_cycle_wall = self._clock.wall()
        if result.marks:
            self.marks, self.marks_wall = dict(result.marks), self.last_cycle_wall
        if result.equity_usd is not None:
            self.equity_history.add(self.last_cycle_wall, result.equity_usd)
        if self.state == ThreadState.STALLED:
            self.state = ThreadState.RUNNING
        if self._on_cycle is not None:
            self._on_cycle(self, result)

    def _write_health_events(self, store: Store) -> None:
        while self.health_events:
            at, old, new, reason = self.health_events[0]
            try:
                store.record_health_event(at, old, new, reason)
            except StoreError as exc:  # kept for the next cycle; the log has the event anyway
                self.log.warning("health_event_not_stored", error=str(exc))
                return
            self.health_events.popleft()

    def _sleep_until_next(self) -> None:
        # Measured from the cycle's start, so the period does not drift.
        wait = self.interval - (self._clock.monotonic() - self._started)
        blocked_for = self._blocked_for()
        resume = self.last_result.resume_in_seconds if self.last_result else None
        if resume is not None:
            wait = resume  # its venue is back: this account's own staggered resume time
        elif blocked_for is not None:
            wait = max(wait, blocked_for)  # no broker calls until the gate's wait is over
        wait = max(0.0, wait)
        self.next_cycle_wall = self._clock.wall() + wait
        self._wake.wait(wait)
        self._wake.clear()

    def _blocked_for(self) -> float | None:
        result = self.last_result
        if result is None or result.blocked_reason is None:
            return None
        return result.retry_in_seconds

    # -- reading (any thread) ------------------------------------------------------------
    def snapshot(self) -> WorkerSnapshot:
        result = self.last_result
        last_cycle, next_cycle, marks = self._times_text
        return WorkerSnapshot(
            thread=self.state,
            cycles=self.cycles,
            last_cycle_at=last_cycle(self.last_cycle_wall),
            last_cycle_ms=round(result.duration_ms, 1) if result else None,
            last_error=self.crash or (result.error or result.blocked_reason if result else None),
            open_positions=result.positions_open if result else 0,
            next_cycle_at=next_cycle(self.next_cycle_wall),
            interval_seconds=self.interval,
            restarts=self.restarts,
            equity_usd=result.equity_usd if result else None,
            marks=dict(self.marks),
            marks_at=marks(self.marks_wall),
            dust=dict(result.dust) if result else {},
            exit_blocked=dict(result.exit_blocked) if result else {},
            orders_unknown=list(result.orders_unknown) if result else [],
            equity_unknown_reason=why_equity_unknown(result),
        )


def why_equity_unknown(result: CycleResult | None) -> str | None:
    """Why ``result`` holds no equity, in the cycle's own words (None when it holds one)."""
    if result is None or result.equity_usd is not None:
        return None
    return (
        result.blocked_reason
        or result.error
        or next(iter(result.notes), None)
        or result.no_signal
        or "the cycle read no balance"
    )
