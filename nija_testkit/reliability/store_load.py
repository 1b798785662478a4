"""Simulated NIJA nodes loading one PostgreSQL with their accounts' store traffic.

Each node is a process of its own (as real nodes are), with what a real node has on the
database: a ``PostgresDatabase`` over one bounded pool (``NIJA_DATABASE_POOL_SIZE``), a real
``LeaseKeeper`` thread (heartbeat, renewal of all its leases in one statement every third
of the TTL, its fair share claimed with ``FOR UPDATE SKIP LOCKED``), and one thread per
account, each with its own fenced ``Store``: every write transaction begins by locking the
account's lease row, as in the daemon. An account thread does no broker work: each cycle it
replays the store calls of the real trader's cycle (``ReplayAccount``; the proportions of
order and stop-adjusting cycles come from ``store_profile``), on its interval, measured from
the cycle's start as the worker does. Phases are spread over the interval (``spread``) or
start together within ``burst_seconds`` (``burst``: the daemon's start, when the funded checks,
32 at a time, answer together).

Only what starts inside the measured window is counted: each write transaction's and each
read's latency as the account sees it (the wait for a pooled connection included), each
cycle's lag behind its schedule (a generator or a server that cannot keep up), failures
by name (``pool_exhausted``, ``connection_lost``, lease losses), the keeper's warnings, the
node's own CPU, and the pool's connections in use (sampled).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.clock import SYSTEM_CLOCK
from bot.cluster.keeper import LeaseKeeper, LeaseTimes
from bot.cluster.nodes import NodeIdentity
from bot.engine.orders import UNRESOLVED
from bot.model import OrderType, Side
from bot.store.pg import PostgresDatabase
from bot.store.writer import OrderPurpose, OrderRecord, Store, StoreError
from nija_testkit.clock import FakeClock
from nija_testkit.reliability.store_profile import CountingConnection, CycleMix, Tally

__all__ = ["NodePlan", "NodeResult", "ReplayAccount", "account_keys", "node_main", "replay_tally"]

SYMBOLS = ("BTC/USD", "ETH/USD", "SOL/USD")
READY_TIMEOUT_SECONDS = 120.0


def account_keys(nodes: int, accounts: int) -> list[str]:
    """Every account of the cluster: ``accounts`` per node."""
    return [f"user/bench{i:05d}/PAPER" for i in range(nodes * accounts)]


class ReplayAccount:
    """One simulated account: its fenced store and the real trader's cycle, replayed."""

    def __init__(self, store: Store, mix: CycleMix, rng: random.Random) -> None:
        self.store = store
        self.mix = mix
        self.n = 0
        self.position_id: int | None = None
        self.symbol = rng.choice(SYMBOLS)
        # Each account its own phase in the proportions: not every account at once.
        self._order_due = rng.random() * mix.order_every
        self._adjust_due = rng.random() * mix.adjust_every

    def cycle(self, timed: Callable[..., Any], wall: float) -> None:
        """One cycle's store calls, in the trader's order (``timed(kind, fn, *args)``)."""
        s = self.store
        self.n += 1
        timed("read", s.orders_with_status, *UNRESOLVED)
        timed("read", s.orders_with_status, *UNRESOLVED)
        timed("read", s.open_positions)
        self._adjust_due -= 1
        if self._adjust_due <= 0 and self.position_id is not None:
            self._adjust_due += self.mix.adjust_every
            timed("write", s.update_position, self.position_id, stop=90.0 + self.n % 7)
        timed("read", s.open_positions)
        day = datetime.fromtimestamp(wall, UTC).date().isoformat()
        if timed("read", s.day_start_equity, day) is None:
            timed("write", s.set_day_start_equity, day, 10_000.0)
        self._order_due -= 1
        if self._order_due <= 0:
            self._order_due += self.mix.order_every
            self._order(timed, wall)
        timed("read", s.orders_with_status, *UNRESOLVED)
        timed("read", s.open_positions)
        timed("read", s.dust)
        timed(
            "write", s.record_cycle, wall, 310.0, 3, 0, int(self.position_id is not None), {}, True
        )

    def _order(self, timed: Callable[..., Any], wall: float) -> None:
        s, entry = self.store, self.position_id is None
        coid = f"{s.account_key}-{self.n}"
        side, purpose = (Side.BUY, OrderPurpose.ENTRY) if entry else (Side.SELL, OrderPurpose.EXIT)
        rec = OrderRecord(
            coid, s.account_key, f"i{self.n}", self.symbol, side, OrderType.MARKET, 0.01, None,
            None, purpose, position_id=self.position_id,
        )  # fmt: skip
        timed("write", s.record_order, rec)
        timed("read", s.get_order, coid)
        timed("write", self._settle, coid, entry, wall)
        timed("read", s.get_order, coid)

    def _settle(self, coid: str, entry: bool, wall: float) -> None:
        s = self.store
        with s.transaction("settle"):
            s.update_order(coid, status="filled", filled=0.01, average_price=100.0, fee_usd=0.1)
            s.add_fill(coid, 0.01, 100.0, 0.1, wall)
            if entry:
                pos = s.open_position(self.symbol, 0.01, 100.0, 95.0, 110.0, 5.0, wall, coid)
                s.update_order(coid, position_id=pos.id)
                self.position_id = pos.id
            else:
                assert self.position_id is not None
                s.close_position(self.position_id, 101.0, "exit", wall, 0.01)
                self.position_id = None


@dataclass(frozen=True)
class NodePlan:
    """One simulated node's part of a run."""

    url: str
    index: int
    nodes: int
    accounts: int  # this node's share
    interval: float
    pool_size: int
    mix: CycleMix
    start: str  # spread | burst
    burst_seconds: float
    warmup: float
    window: float
    ttl: float = 30.0
    seed: int = 0


@dataclass
class NodeResult:
    """What one node measured in the window."""

    index: int
    held: int
    cycles: int
    write_ms: list[float] = field(default_factory=list)
    read_ms: list[float] = field(default_factory=list)
    lag_s: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    keeper_warnings: dict[str, int] = field(default_factory=dict)
    cpu_seconds: float = 0.0
    pool_in_use_max: int = 0
    pool_in_use_mean: float = 0.0
    tally: dict[str, int] = field(default_factory=dict)  # the whole run's, all accounts
    tally_cycles: int = 0  # the whole run's cycles, for tally


class _Log:
    """The keeper's logger: counts its warnings and errors by event, prints nothing."""

    def __init__(self) -> None:
        self.warnings: Counter[str] = Counter()

    def info(self, event: str, **kw: Any) -> None:
        pass

    def warning(self, event: str, **kw: Any) -> None:
        self.warnings[event] += 1

    error = warning


def node_main(plan: NodePlan, ready: Any, go: Any, out: Any) -> None:
    """A node process: claim its share, open its stores, say ready, wait for ``go``'s start
    time (wall seconds), run the accounts, put its ``NodeResult`` on ``out``."""
    db = PostgresDatabase(plan.url, "paper", max_connections=plan.pool_size)
    log = _Log()
    keys = account_keys(plan.nodes, plan.accounts)
    keeper = LeaseKeeper(
        db, NodeIdentity.this_process(f"bench-{plan.index}"), keys,
        times=LeaseTimes(plan.ttl, plan.ttl / 6), clock=SYSTEM_CLOCK, log=log,
    )  # fmt: skip
    keeper.start()
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while len(keeper.held()) < plan.accounts and time.monotonic() < deadline:
        time.sleep(0.2)  # the fair share is claimed at the keeper's next round
    held = sorted(keeper.held())
    rng = random.Random(plan.seed * 1000 + plan.index)
    tallies = [Tally() for _ in held]
    accounts = []
    today = datetime.now(UTC).date().isoformat()
    for key, tally in zip(held, tallies, strict=True):
        lease = keeper.lease(key)
        assert lease is not None
        store = Store(db, key, create=False, fence=lease.fence)
        store.set_day_start_equity(today, 10_000.0)  # as after its first cycle of the day
        store._conn = CountingConnection(store._conn, tally)
        accounts.append(ReplayAccount(store, plan.mix, rng))
    node_run = _NodeRun(plan, accounts, db, rng)
    ready.put(plan.index)
    result = node_run.run(float(go.get(timeout=READY_TIMEOUT_SECONDS)))
    result.held = len(held)
    total = Tally()
    for t in tallies:
        total.add(t)
    result.tally = vars(total)
    result.tally_cycles = sum(a.n for a in accounts)
    result.keeper_warnings = dict(log.warnings)
    for account in accounts:
        account.store.close()
    keeper.stop()
    db.close()
    out.put(result)


class _NodeRun:
    """The account threads of one node: started before the start time is known (thousands
    of threads take a while to start), each waiting for it; then measured."""

    def __init__(
        self,
        plan: NodePlan,
        accounts: list[ReplayAccount],
        db: PostgresDatabase,
        rng: random.Random,
    ) -> None:
        self.plan = plan
        self.db = db
        self.result = NodeResult(plan.index, len(accounts), 0)
        self.failures: Counter[str] = Counter()
        self.stop = threading.Event()
        self.go = threading.Event()
        self.lock = threading.Lock()
        self.t0 = self.begin = self.end = 0.0
        spread = plan.interval if plan.start == "spread" else plan.burst_seconds
        threading.stack_size(512 * 1024)  # thousands of account threads: small stacks suffice
        self.threads = [
            threading.Thread(target=self._account, args=(a, rng.random() * spread), daemon=True)
            for a in accounts
        ]
        for t in self.threads:
            t.start()

    def _timed(self, kind: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        started = time.time()
        began = time.perf_counter()
        value = fn(*args, **kw)
        if self.begin <= started < self.end:
            ms = (time.perf_counter() - began) * 1000.0
            (self.result.write_ms if kind == "write" else self.result.read_ms).append(ms)
        return value

    def _account(self, acct: ReplayAccount, phase: float) -> None:
        self.go.wait()
        due = self.t0 + phase
        while not self.stop.is_set() and due < self.end:
            self.stop.wait(max(0.0, due - time.time()))
            started = time.time()
            try:
                acct.cycle(self._timed, started)
            except StoreError as exc:
                with self.lock:
                    self.failures[exc.error_name or type(exc).__name__] += 1
            if self.begin <= started < self.end:
                with self.lock:
                    self.result.cycles += 1
                    self.result.lag_s.append(started - due)
            # The worker's rhythm: the next cycle an interval after this one's start (a cycle
            # that started late pushes the next one back, and its lag shows it).
            due = started + self.plan.interval

    def run(self, t0: float) -> NodeResult:
        """Start the accounts' cycles at ``t0`` (wall seconds); measure the window."""
        self.t0, self.begin = t0, t0 + self.plan.warmup
        self.end = self.begin + self.plan.window
        self.go.set()
        in_use: list[int] = []
        cpu0 = None
        while time.time() < self.end:  # the pool's connections in use, sampled; the CPU
            if time.time() >= self.begin:
                cpu0 = time.process_time() if cpu0 is None else cpu0
                in_use.append(self.db.pool_in_use())
            time.sleep(0.02)
        result = self.result
        result.cpu_seconds = time.process_time() - (cpu0 or time.process_time())
        self.stop.set()
        for t in self.threads:
            t.join(60)
        result.failures = dict(self.failures)
        result.pool_in_use_max = max(in_use, default=0)
        result.pool_in_use_mean = sum(in_use) / max(1, len(in_use))
        return result


def replay_tally(
    url: str, mix: CycleMix, *, accounts: int = 2, cycles: int = 300
) -> dict[str, float]:
    """Per account-cycle, what ``ReplayAccount`` sends (to compare with ``store_profile``'s
    real trader): ``cycles`` cycles of ``accounts`` fenced accounts, one after another."""
    db = PostgresDatabase(url, "paper", max_connections=2)
    db.prepare()
    keys = [f"user/replay{i}/PAPER" for i in range(accounts)]
    keeper = LeaseKeeper(
        db, NodeIdentity.this_process("replay"), keys, times=LeaseTimes(), clock=FakeClock()
    )
    keeper.start(thread=False)
    tally, replays, wall = Tally(), [], datetime(2026, 1, 1, 3, tzinfo=UTC).timestamp()
    try:
        for i, key in enumerate(keys):
            lease = keeper.lease(key)
            assert lease is not None
            store = Store(db, key, create=False, fence=lease.fence)
            store._conn = CountingConnection(store._conn, tally)
            replays.append(ReplayAccount(store, mix, random.Random(i)))
        for n in range(cycles):
            for replay in replays:
                replay.cycle(lambda kind, fn, *args, **kw: fn(*args, **kw), wall + 150.0 * n)
    finally:
        for replay in replays:
            replay.store.close()
        keeper.stop()
        db.close()
    return {k: round(v / (accounts * cycles), 2) for k, v in vars(tally).items()}
