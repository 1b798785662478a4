"""What an account-cycle asks of PostgreSQL: the real trader's statements, counted.

``profile_cycles`` runs the real ``AccountTrader`` (``bot.daemon.wiring.make_trader``) of a
few paper accounts on the demo's synthetic market (rallies and pullbacks: the default
strategy enters and exits every few hours, more often than a real market gives it), each
over a fenced ``Store`` on PostgreSQL, with a real ``LeaseKeeper`` ticked every third of the
TTL. The clock is a ``FakeClock`` moved by the default cycle (150 s) per cycle, so a day of
market time runs in seconds. ``CountingConnection`` counts what each cycle sends to the server:
the round trips (every statement, ``BEGIN`` and ``COMMIT`` included), the reads made outside a
transaction (each its own autocommit transaction on the server), the write transactions, the
lease fence's row lock that begins each of them, and the rows written. The keeper's rounds
(heartbeat, renewal, live nodes) are counted apart: they are the node's, not an account's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any

from bot.brokers.paper.broker import PaperBroker
from bot.brokers.paper.synthetic import SyntheticMarket, TrendShape
from bot.brokers.venues import PAPER
from bot.cluster.keeper import LeaseKeeper, LeaseTimes
from bot.cluster.nodes import NodeIdentity
from bot.config.settings import load_settings
from bot.daemon.wiring import BrokerFactories, build_hub, make_trader
from bot.engine.risk import GlobalPositionCap
from bot.isolation.manager import AccountIsolationManager
from bot.model import AccountRef, BrokerSpec
from bot.store.backend import Connection, Cursor
from bot.store.fence import FENCE_SQL
from bot.store.pg import PostgresDatabase
from bot.store.writer import Store
from bot.venue.market import VenueMarket
from nija_testkit.clock import FakeClock

__all__ = ["CountingConnection", "CycleMix", "CycleProfile", "Tally", "profile_cycles"]

# The demo's scene (bot.daemon.demo): seed 7's path from 2026-01-01T03:05Z enters at once.
SCENE_START = 1_767_236_700.0
SEED = 7


@dataclass(frozen=True)
class CycleMix:
    """How often an account-cycle places an order (entries and exits alternate) or moves a
    stop, in account-cycles per event: the proportions ``profile_cycles`` measured."""

    order_every: float
    adjust_every: float


@dataclass
class Tally:
    """What a connection sent to the server."""

    round_trips: int = 0  # every statement, BEGIN and COMMIT included
    reads: int = 0  # SELECTs outside a transaction: each an autocommit transaction
    write_transactions: int = 0  # BEGIN ... COMMIT (or ROLLBACK)
    fence_locks: int = 0  # the lease row locked FOR KEY SHARE at a write's start
    writes: int = 0  # INSERT / UPDATE / DELETE statements
    reads_in_transactions: int = 0  # SELECTs inside a write transaction (fence excluded)

    def minus(self, other: Tally) -> Tally:
        return Tally(*(getattr(self, f.name) - getattr(other, f.name) for f in fields(self)))

    def copy(self) -> Tally:
        return self.minus(Tally())

    def add(self, other: Tally) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


def _writes(sql: str) -> bool:
    """An INSERT, UPDATE or DELETE, or a ``WITH`` around one (the keeper's renewal)."""
    words = sql.upper().split()
    return bool(words) and (
        words[0] in _WRITE_VERBS or (words[0] == "WITH" and bool(_WRITE_VERBS & set(words)))
    )


_WRITE_VERBS = frozenset({"INSERT", "UPDATE", "DELETE"})


class CountingConnection:
    """A backend ``Connection`` that counts what it sends (``Tally``) and passes it on."""

    def __init__(self, inner: Connection, tally: Tally) -> None:
        self.inner = inner
        self.tally = tally

    @property
    def in_transaction(self) -> bool:
        return self.inner.in_transaction

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Cursor:
        t = self.tally
        t.round_trips += 1
        if sql == FENCE_SQL:
            t.fence_locks += 1
        elif _writes(sql):
            t.writes += 1
        elif self.inner.in_transaction:
            t.reads_in_transactions += 1
        else:
            t.reads += 1
        return self.inner.execute(sql, params)

    def begin_write(self) -> None:
        self.tally.round_trips += 1
        self.tally.write_transactions += 1
        self.inner.begin_write()

    def commit(self) -> None:
        self.tally.round_trips += 1
        self.inner.commit()

    def rollback(self) -> None:
        if self.inner.in_transaction:
            self.tally.round_trips += 1
        self.inner.rollback()

    def close(self) -> None:
        self.inner.close()


@dataclass
class CycleProfile:
    """Per account-cycle, over ``cycles`` cycles of ``accounts`` accounts."""

    accounts: int
    cycles: int  # account-cycles
    cycle_seconds: float
    mean: dict[str, float]  # Tally field → per account-cycle
    quiet: dict[str, float]  # the same over the cycles that placed no order
    busiest: dict[str, int]  # the cycle with the most round trips
    orders: int  # orders placed in all
    order_cycles: int  # cycles that placed one
    keeper_per_round: dict[str, float]  # one keeper round (the node's, whatever its accounts)
    keeper_rounds_per_cycle: float
    calls: dict[str, int]  # the store's write calls in all, by method

    def mix(self) -> CycleMix:
        """The proportions to replay (``store_load.ReplayAccount``)."""
        return CycleMix(
            order_every=self.cycles / max(1, self.orders),
            adjust_every=self.cycles / max(1, self.calls.get("update_position", 0)),
        )


def _per(tallies: list[Tally]) -> dict[str, float]:
    total = Tally()
    for t in tallies:
        total.add(t)
    n = max(1, len(tallies))
    return {f.name: round(getattr(total, f.name) / n, 2) for f in fields(total)}


@contextmanager
def _keeper(db: PostgresDatabase, keys: list[str], clock: FakeClock) -> Iterator[LeaseKeeper]:
    keeper = LeaseKeeper(
        db, NodeIdentity.this_process("profile"), keys, times=LeaseTimes(), clock=clock
    )
    keeper.start(thread=False)
    try:
        yield keeper
    finally:
        keeper.stop()


def profile_cycles(url: str, *, accounts: int = 3, cycles: int = 600) -> CycleProfile:
    """Run ``cycles`` default cycles of ``accounts`` paper accounts (module docstring)."""
    settings = load_settings({})  # the defaults: a 150 s cycle, 5 m candles, the default strategy
    interval = settings.cycle_seconds
    clock = FakeClock(wall_start=SCENE_START)
    db = PostgresDatabase(url, settings.mode, max_connections=4)
    db.prepare()
    specs = [
        BrokerSpec(AccountRef("user", f"profile{i}", PAPER.name), symbols=PAPER.default_symbols)
        for i in range(accounts)
    ]
    market = SyntheticMarket(PAPER.default_symbols, seed=SEED, clock=clock, shape=TrendShape())
    factories = BrokerFactories(
        venue=lambda spec: PaperBroker(spec, market, clock=clock),
        trading=lambda spec, venue_market: _paper(spec, venue_market, settings, clock),
        public=lambda group: market,
        market_clock=clock,
        settle_seconds=0.0,
    )
    hub = build_hub(settings, specs, factories, clock)
    isolation = AccountIsolationManager(clock=clock)
    cap = GlobalPositionCap(None)
    keys = [s.account.key for s in specs]
    per_cycle: list[Tally] = []
    quiet: list[Tally] = []
    keeper_tally = Tally()
    calls: Counter[str] = Counter()
    orders = order_cycles = rounds = 0
    stores: list[Store] = []
    try:
        with _keeper(db, keys, clock) as keeper:
            assert keeper._conn is not None
            keeper._conn = CountingConnection(keeper._conn, keeper_tally)
            traders = []
            tallies = []
            for spec in specs:
                store = Store(
                    db, spec.account.key, clock=clock, create=False, fence=_fence(keeper, spec)
                )
                stores.append(store)
                tally = Tally()
                store._conn = CountingConnection(store._conn, tally)
                _count_calls(store, calls)
                venue = hub.get(spec.account.broker)
                broker = factories.trading(spec, venue.market)
                trader = make_trader(
                    spec, settings, broker, store, isolation, cap, clock=clock, venue=venue
                )
                traders.append(trader)
                tallies.append(tally)
            for _ in range(cycles):
                for trader, tally in zip(traders, tallies, strict=True):
                    before = tally.copy()
                    result = trader.run_cycle()
                    if not result.ok:
                        raise RuntimeError(f"a profiled cycle failed: {result.error}")
                    spent = tally.minus(before)
                    per_cycle.append(spent)
                    orders += result.orders_placed
                    order_cycles += result.orders_placed > 0
                    if result.orders_placed == 0:
                        quiet.append(spent)
                for _ in range(round(interval / keeper.times.renew_every)):
                    clock.advance(keeper.times.renew_every)
                    keeper.tick()
                    rounds += 1
    finally:
        for store in stores:
            store.close()
        hub.close()
        db.close()
    busiest = max(per_cycle, key=lambda t: t.round_trips)
    return CycleProfile(
        accounts=accounts,
        cycles=len(per_cycle),
        cycle_seconds=interval,
        mean=_per(per_cycle),
        quiet=_per(quiet),
        busiest={f.name: getattr(busiest, f.name) for f in fields(busiest)},
        orders=orders,
        order_cycles=order_cycles,
        keeper_per_round={k: round(v / max(1, rounds), 2) for k, v in _per([keeper_tally]).items()},
        keeper_rounds_per_cycle=round(rounds / max(1, cycles), 2),
        calls=dict(calls),
    )


_WRITE_CALLS = (
    "record_order", "update_order", "add_fill", "open_position", "update_position",
    "close_position", "set_dust", "set_day_start_equity", "record_cycle", "record_health_event",
)  # fmt: skip


def _count_calls(store: Store, calls: Counter[str]) -> None:
    """Count ``store``'s write calls by method (on the instance: the class is untouched)."""
    for name in _WRITE_CALLS:
        method = getattr(store, name)

        def counted(*args: Any, _name: str = name, _method: Any = method, **kw: Any) -> Any:
            calls[_name] += 1
            return _method(*args, **kw)

        setattr(store, name, counted)


def _paper(spec: BrokerSpec, market: VenueMarket, settings: Any, clock: FakeClock) -> PaperBroker:
    return PaperBroker(spec, market, starting_usd=settings.paper_balance_usd, clock=clock)


def _fence(keeper: LeaseKeeper, spec: BrokerSpec):
    held = keeper.lease(spec.account.key)
    if held is None:
        raise RuntimeError(f"the profile's keeper holds no lease for {spec.account.key}")
    return held.fence
