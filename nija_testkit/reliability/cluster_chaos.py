"""Cluster chaos: NIJA nodes sharing accounts by leases, hit by faults, and nothing doubled.

A real PostgreSQL server on loopback (``nija_testkit.postgres``, started here), real bot.py
nodes (``cluster_nodes``: ``NIJA_DATABASE_URL``, each its own ``NIJA_NODE_ID`` and data
directory), live accounts on loopback emulators of Alpaca and Kraken (``cluster_venues``:
the venues' own duplicate rules), orders at every close of the real clock's 1-minute candle
grid (``crash_market``). Short leases (TTL 3 s, lock delay 1 s) make the moves quick.

Faults come one after another at seeded random moments, each followed by a wait until the
accounts are settled again (every account held and traded by a running node, each node
within one account of the fair share); a balance sample is taken before each fault:

* ``kill``: SIGKILL of a node (restarted a few seconds after its accounts have moved);
* ``stop``: SIGSTOP of a node for longer than the lease (TTL + lock delay + 2-6 s), then
  SIGCONT: a zombie that must send nothing;
* ``db_restart``: PostgreSQL stopped and started again under the nodes (down 0-2 TTLs);
* ``add``: a new node; ``remove``: SIGTERM of a node (it hands its leases back).

The ``_in_order`` kinds land inside order placement: a kill or stop while a create_order of
one of the node's accounts is unanswered (a venue latency or an answer held after the
venue acted, as in ``crash_restart``), the database restarted as a close's orders are
being stored. At the end the market goes quiet, every order is settled and every account
has cycled, the nodes are stopped, and ``cluster_checks`` measures everything.
Every wait is bounded; the whole run stops at ``max_seconds``.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bot.store.pg import PostgresDatabase
from nija_testkit.harness import clean_env
from nija_testkit.postgres import PostgresServer, find_bin_dir, missing_reason
from nija_testkit.reliability import cluster_checks as checks
from nija_testkit.reliability.cluster_checks import BalanceSample, FaultRecord, Gap, Move
from nija_testkit.reliability.cluster_faults import FaultLoop
from nija_testkit.reliability.cluster_nodes import Cluster
from nija_testkit.reliability.cluster_venues import start_venue_accounts
from nija_testkit.reliability.crash_compare import VIOLATIONS as COMPARED
from nija_testkit.reliability.lease_audit import audit, tenures

FAULT_KINDS = ("kill", "kill_in_order", "stop", "stop_in_order", "db_restart",
               "db_restart_in_order", "add", "remove")  # fmt: skip
# The seeded plan cycles through this (``member``: add and remove in turn, from add).
CYCLE = ("kill", "kill_in_order", "stop", "stop_in_order", "db_restart", "member",
         "kill", "stop", "kill_in_order", "stop_in_order", "db_restart_in_order", "member")  # fmt: skip
VIOLATIONS = (*COMPARED, "orders_outside_lease", "zombie_sends", "slow_takeovers",
              "accounts_not_moved", "held_through_faults", "unbalanced", "not_settled",
              "unclean_removals", "leases_left_owned")  # fmt: skip
START_SECONDS = 180.0  # the first nodes up and sharing every account
NEAR_CLOSE_SECONDS = 25.0  # an in-order fault is taken when the next close is this near
LOG_EVENTS = frozenset({
    "lease_claimed", "lease_taken_over", "lease_released", "lease_handback", "lease_expired",
    "lease_lost", "lease_renewal_failed", "lease_lost_worker_stopped", "node_superseded",
    "order_given_up_other_lease", "order_never_arrived_sending_now", "order_outcome_unknown",
    "order_already_exists", "reconcile_waiting", "reconciled", "order_sending"})  # fmt: skip


@dataclass
class Options:
    """One run's settings."""

    accounts: int = 60
    nodes: int = 3
    faults: int = 24
    seed: int = 1
    max_seconds: float = 2700.0
    kinds: tuple[str, ...] | None = None  # the fault plan as given (else seeded, ``faults``)
    venues: tuple[str, ...] = ("ALPACA", "KRAKEN")
    ttl_seconds: float = 3.0
    lock_delay_seconds: float = 1.0
    cycle_seconds: float = 1.0
    call_timeout_seconds: float = 5.0
    timeframe: str = "1m"
    pause_seconds: tuple[float, float] = (0.5, 8.0)  # a random moment: this long after settling
    workdir: Path | None = None


@dataclass
class Report:
    """Everything a run measured."""

    options: Options
    faults: list[FaultRecord] = field(default_factory=list)
    final_stops: list[FaultRecord] = field(default_factory=list)  # SIGTERM of every node
    balance: list[BalanceSample] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)
    violations: dict[str, list[str]] = field(default_factory=dict)
    venue_orders: int = 0
    filled_orders: int = 0
    store_orders: int = 0
    send_window: list[float] = field(default_factory=list)  # last look → at the venue, s
    client_ids_sent_twice: int = 0  # reached the venue twice (the venue kept one: no dup)
    events: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    finished: bool = False
    error: str | None = None

    def counts(self) -> dict[str, int]:
        return {k: len(self.violations.get(k, ())) for k in VIOLATIONS}

    def move_seconds(self) -> tuple[float | None, float | None]:
        """Median and max of the dead or frozen nodes' accounts' move times."""
        done = sorted(m.seconds for m in self.moves if m.seconds is not None)
        return (statistics.median(done), done[-1]) if done else (None, None)

    @property
    def ok(self) -> bool:
        return self.finished and self.error is None and not any(self.counts().values())


def plan(options: Options, rng: random.Random) -> list[str]:
    """The fault kinds in order: as given, or ``faults`` of them cycled from ``CYCLE`` and
    shuffled (adds and removes alternate, from an add, so 3 nodes become 4 and 3 again)."""
    if options.kinds is not None:
        unknown = set(options.kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)} (one of {FAULT_KINDS})")
        return list(options.kinds)
    kinds = [CYCLE[i % len(CYCLE)] for i in range(options.faults)]
    rng.shuffle(kinds)
    members = iter(["add", "remove"] * options.faults)
    return [next(members) if k == "member" else k for k in kinds]


class ClusterChaos(FaultLoop):
    """The database, the venues, the nodes, and the loop of faults (module docstring)."""

    def __init__(self, options: Options, workdir: Path, progress=None) -> None:
        super().__init__(options, Report(options), workdir, progress)

    # -- set-up -----------------------------------------------------------------------
    def _setup(self) -> Cluster:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise RuntimeError(missing_reason())
        self.pg = PostgresServer(bin_dir).start()
        per = -(-self.o.accounts // len(self.o.venues))  # ceil: the first venues take more
        left = self.o.accounts
        for broker in self.o.venues:
            n = min(per, left)
            left -= n
            self.venues.append(start_venue_accounts(broker, n, self.timeframe_s))
        env = clean_env(
            NIJA_MODE="live",
            NIJA_DATABASE_URL=self.pg.url(),
            NIJA_LEASE_TTL_SECONDS=str(self.o.ttl_seconds),
            NIJA_LEASE_LOCK_DELAY_SECONDS=str(self.o.lock_delay_seconds),
            NIJA_CYCLE_SECONDS=str(self.o.cycle_seconds),
            NIJA_CALL_TIMEOUT_SECONDS=str(self.o.call_timeout_seconds),
            NIJA_STATUS_LOG_SECONDS="600",
            NIJA_REQUEST_BUDGETS="false",  # one machine plays every node: not the venues' IPs
            NIJA_TIMEFRAME=self.o.timeframe,
        )
        for venue in self.venues:
            env |= venue.env
        accounts = [a for v in self.venues for a in v.ledgers]
        return Cluster(self.workdir / "nodes", env, self.pg.url(), accounts)

    # -- the run ----------------------------------------------------------------------
    def run(self) -> Report:
        began = time.monotonic()
        try:
            self.cluster = self._setup()
            for i in range(self.o.nodes):
                self.cluster.add(f"n{i + 1}")
            self._settle(None, START_SECONDS)
            self.progress(f"{self.o.nodes} nodes share {self.o.accounts} accounts")
            for venue in self.venues:
                venue.driver.activate()
            kinds = plan(self.o, self.rng)
            for i in range(len(kinds)):
                if time.monotonic() > self.deadline:
                    self.report.error = f"time budget of {self.o.max_seconds:g}s used up"
                    break
                self._sample(i)
                self._fault(FaultRecord(i, self._next(kinds)))
            else:
                self._final()
                self.report.finished = True
        except (TimeoutError, RuntimeError) as exc:
            self.report.error = str(exc)
        finally:
            if self.cluster is not None:
                self.cluster.close()
            try:
                if self.pg is not None and self.cluster is not None:
                    self._measure()
            finally:
                for venue in self.venues:
                    venue.stop()
                if self.pg is not None:
                    self.pg.stop()
                self.report.elapsed_s = round(time.monotonic() - began, 1)
        return self.report

    def _next(self, kinds: list[str]) -> str:
        """The next fault, taken from ``kinds``: one inside order placement when orders are
        due soon (the next candle close within ``NEAR_CLOSE_SECONDS``) or nothing else is
        left; else the first of the others (no minute spent waiting for a close)."""
        near = self.venues[0].driver.seconds_to_close() <= NEAR_CLOSE_SECONDS
        in_order = [k for k in kinds if k.endswith("_in_order")]
        others = [k for k in kinds if not k.endswith("_in_order")]
        kind = in_order[0] if in_order and (near or not others) else others[0]
        kinds.remove(kind)
        return kind

    def _final(self) -> None:
        """Quiet market; every order settled and every account cycled after; stop the nodes."""
        cluster, pg = self.cluster, self.pg
        assert cluster is not None and pg is not None
        for venue in self.venues:
            venue.driver.quiet()
        time.sleep(max(0.0, self.settle_at - time.monotonic()))
        self._settle(None)
        self._sample(len(self.report.faults))
        url = pg.url()
        try:
            self._wait(lambda: checks.unresolved_count(url) == 0, 90.0, "every order settled", 1.0)
        except TimeoutError:
            self.progress("  orders still unresolved after 90 s of quiet")
        mark = time.time()
        started: dict[str, float] = {}

        def cycled() -> bool:
            for line in cluster.poll():
                e = line.event
                if e.event == "cycle" and e.account and e.fields.get("ms"):
                    begin = line.wall - float(e.fields["ms"]) / 1000.0
                    started[e.account] = max(started.get(e.account, 0.0), begin)
            return all(started.get(a, 0.0) > mark for a in cluster.accounts)

        try:
            self._wait(cycled, 60.0, "a cycle of every account after the orders settled", 1.0)
        except TimeoutError:
            self.progress("  some account did not cycle after the quiet period")
        for node in cluster.up():
            rec = FaultRecord(len(self.report.faults), "remove", detail="final stop")
            self._hit(rec, node)
            rec.exit_code = node.terminate(30.0)
            self.report.final_stops.append(rec)
        self.report.violations["leases_left_owned"] = checks.leases_owned(url)

    def _measure(self) -> None:
        """Every check of the run (``cluster_checks``), into the report."""
        assert self.cluster is not None and self.pg is not None
        r, url, o = self.report, self.pg.url(), self.o
        found: dict[str, set[str]] = {k: set() for k in COMPARED}
        db = PostgresDatabase(url, "live")
        try:
            for venue in self.venues:
                for kind, items in venue.compare(db).items():
                    found[kind] |= items
        finally:
            db.close()
        for kind, items in found.items():
            r.violations[kind] = sorted(items)
        sent = [s for v in self.venues for s in v.sent()]
        margin = min(o.ttl_seconds / 10, o.lock_delay_seconds)  # LeaseTimes.margin
        lines = audit(url, sent, margin)
        r.client_ids_sent_twice = sum(" received " in x for x in lines)
        r.violations["orders_outside_lease"] = [x for x in lines if " received " not in x]
        every = self.cluster.lines()
        held = tenures(url)
        r.violations["held_through_faults"] = checks.held_through(r.faults, held)
        r.send_window = checks.send_window(every, sent)
        r.gaps = checks.gaps(
            held,
            checks.released_tenures(url),
            every,
            ttl=o.ttl_seconds,
            lock_delay=o.lock_delay_seconds,
            call_timeout=o.call_timeout_seconds,
            outages=self.outages,
        )
        r.violations["slow_takeovers"] = [
            f"{g.account}: {g.seconds:.1f}s untraded after {g.how} (bound {g.bound:.1f}s)"
            for g in r.gaps
            if g.seconds > g.bound
        ]
        r.moves = checks.moves(r.faults, every, held)
        r.violations["accounts_not_moved"] = [
            f"fault {m.fault + 1}: {m.account}"
            for m in r.moves
            if m.seconds is None and not m.returned
        ]
        stored = checks.stored_orders(url)
        r.violations["zombie_sends"] = checks.zombie_sends(r.faults, sent, stored)
        checks.outcomes(r.faults, sent, stored)
        r.violations["unclean_removals"] = checks.unclean_removals(
            r.faults + r.final_stops, checks.releases(url)
        )
        for venue in self.venues:
            orders, filled = venue.orders()
            r.venue_orders += orders
            r.filled_orders += filled
        r.store_orders = len(stored)
        r.events.update(x.event.event for x in every if x.event.event in LOG_EVENTS)


def run(options: Options, progress=None) -> Report:
    """One cluster chaos run in ``options.workdir`` (a temporary directory by default)."""
    if options.workdir is not None:
        options.workdir.mkdir(parents=True, exist_ok=True)
        return ClusterChaos(options, options.workdir, progress).run()
    with tempfile.TemporaryDirectory(prefix="nija-cluster-chaos-") as tmp:
        return ClusterChaos(options, Path(tmp), progress).run()
