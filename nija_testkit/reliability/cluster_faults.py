"""The cluster chaos run's faults, one at a time, and the waits between them.

``FaultLoop`` holds the run's parts (the database server, the venues, the cluster of nodes)
and does one fault of each kind (``cluster_chaos`` explains them), each followed by a
bounded wait until every account is settled again; ``_sample`` notes the balance of the
leases before each fault. Inside order placement: a latency or held-answer fault on one of
the node's accounts' next create_order (the venue's ``CRASH_VENUES`` flavours, in turn),
the signal once that request is unanswered at the venue.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from bot.model import timeframe_seconds
from nija_testkit.emulator.server import Fault, Recorded
from nija_testkit.harness import wait_for
from nija_testkit.postgres import PostgresServer
from nija_testkit.reliability import cluster_checks as checks
from nija_testkit.reliability.cluster_checks import BalanceSample, FaultRecord
from nija_testkit.reliability.cluster_nodes import Cluster, Node, unbalanced
from nija_testkit.reliability.cluster_venues import ChaosVenue

if TYPE_CHECKING:
    from nija_testkit.reliability.cluster_chaos import Options, Report

SETTLE_SECONDS = 120.0  # a fault → settled again (a Kraken order's proof of absence included)
# An order caught in flight: its request, the fault's seconds, whether the venue acted first.
Armed = tuple[Recorded, float, bool]


class FaultLoop:
    """The run's parts and its faults (module docstring)."""

    def __init__(self, options: Options, report: Report, workdir: Path, progress=None) -> None:
        self.o = options
        self.workdir = workdir
        self.rng = random.Random(options.seed)
        self.progress: Callable[[str], None] = progress or (lambda _msg: None)
        self.report = report
        self.deadline = time.monotonic() + options.max_seconds
        self.timeframe_s = timeframe_seconds(options.timeframe)
        self.pg: PostgresServer | None = None
        self.venues: list[ChaosVenue] = []
        self.cluster: Cluster | None = None
        self.outages: list[tuple[float, float]] = []  # database stop → up again (walls)
        self.settle_at = 0.0  # monotonic: when orders held back by latency faults have landed
        self.in_orders = 0

    # -- waiting ----------------------------------------------------------------------
    def _remaining(self, cap: float) -> float:
        return max(0.1, min(cap, self.deadline - time.monotonic()))

    def _wait(self, pred, timeout: float, what: str, every: float = 0.25):
        """``wait_for`` within the run's own deadline; TimeoutError when it passes."""
        return wait_for(pred, self._remaining(timeout), what, every, error=TimeoutError)

    def _settle(self, rec: FaultRecord | None, timeout: float = SETTLE_SECONDS) -> None:
        """Wait until every account is settled (``Cluster.unsettled``); a timeout is a
        violation, named, and the run goes on."""
        assert self.cluster is not None
        began = time.monotonic()
        try:
            self._wait(lambda: self.cluster.unsettled() is None, timeout, "settled accounts")
        except TimeoutError:
            what = f"fault {rec.index + 1} {rec.kind}" if rec else "the end"
            why = f"{what}: {self.cluster.unsettled()} after {timeout:g}s"
            self.report.violations.setdefault("not_settled", []).append(why)
            self.progress(f"  NOT SETTLED {why}")
            return
        if rec is not None and rec.settled_s is None:
            rec.settled_s = round(time.monotonic() - began, 2)

    def _sample(self, index: int) -> None:
        """The balance before a fault: the leases table's count per running node."""
        assert self.cluster is not None
        try:
            shares = self.cluster.shares()
        except psycopg.Error as exc:  # a sample that cannot be read is noted, not a crash
            self.progress(f"  balance sample {index + 1} unreadable: {exc!r}")
            return
        fair = self.o.accounts / max(1, len(shares))
        off = tuple(unbalanced(Counter(shares), list(shares), self.o.accounts))
        self.report.balance.append(BalanceSample(index, shares, round(fair, 2), off))
        if off:
            self.report.violations.setdefault("unbalanced", []).append(
                f"before fault {index + 1}: {'; '.join(off)}"
            )

    def _pause(self, scale: float = 1.0) -> None:
        """A random moment: ``Options.pause_seconds`` (times ``scale``) from now."""
        low, high = self.o.pause_seconds
        time.sleep(self._remaining(self.rng.uniform(low, high) * scale))

    # -- faults -----------------------------------------------------------------------
    def _victim(self) -> Node:
        assert self.cluster is not None
        return self.rng.choice(sorted(self.cluster.up(), key=lambda n: n.name))

    def _hit(self, rec: FaultRecord, node: Node) -> None:
        """Note the node and its leases just before the signal."""
        assert self.pg is not None
        rec.node, rec.run = node.name, node.runs
        try:
            rec.held = checks.held_epochs(self.pg.url(), node.name)
        except psycopg.Error as exc:  # the fault goes ahead; its moves stay unknown
            rec.detail += f" leases unreadable ({type(exc).__name__})"
        rec.at = time.time()

    def _arm(self, rec: FaultRecord, node: Node) -> Armed | None:
        """Slow the next create_order of one of ``node``'s accounts and wait until it is
        unanswered at the venue: (the request, the fault's seconds, answer held after the
        venue acted); None when no order came in time."""
        venue = self.venues[self.in_orders % len(self.venues)]
        mine = sorted(node.trading())
        candidates = [a for a in mine if a in venue.ledgers] or mine
        if not candidates:
            rec.detail = "no account to catch an order of"
            return None
        account = self.rng.choice(candidates)
        venue = next(v for v in self.venues if account in v.ledgers)
        flavours = list(venue.spec.faults)
        flavour = flavours[(self.in_orders // len(self.venues)) % len(flavours)]
        self.in_orders += 1
        seconds = self.rng.uniform(*venue.spec.faults[flavour])
        after = flavour == "hang_after"
        api_key = venue.api_key(account)
        fault = Fault("hang" if after else "latency", seconds=seconds, after=after, times=1,
                      api_key=api_key)  # fmt: skip
        server, header = venue.handle.server, venue.spec.key_header
        seen = len(server.requests)
        server.inject("create_order", fault)
        rec.account, rec.detail = account, f"{flavour} {seconds:.1f}s"
        try:
            sent = self._wait(
                lambda: next(
                    (
                        r
                        for r in server.requests[seen:]
                        if r.route == "create_order" and r.headers.get(header) == api_key
                    ),
                    None,
                ),
                2 * self.timeframe_s + 45.0,  # the next close may find nothing to do
                "a create_order request",
                every=0.02,
            )
        except TimeoutError:
            rec.detail += ", no order came"
            return None
        finally:
            server.remove_fault("create_order", fault)
        rec.client_order_id = venue.spec.client_id(sent.body)
        time.sleep(self.rng.uniform(0.05, min(seconds - 0.3, 1.0)))
        return sent, seconds, after

    def _catch(self, rec: FaultRecord, node: Node, in_order: bool) -> Armed | None:
        """The moment to signal ``node``: inside order placement, or a random one."""
        if in_order:
            return self._arm(rec, node)
        self._pause()
        return None

    def _landed(self, rec: FaultRecord, armed: Armed | None, in_order: bool) -> None:
        """After the signal: was the order still unanswered, and when will it have landed."""
        if not in_order:
            return
        if armed is None:
            rec.in_flight = False
            return
        sent, seconds, after = armed
        rec.in_flight = time.monotonic() < sent.at + seconds
        if not after:  # the venue acts on it only after the delay
            self.settle_at = max(self.settle_at, sent.at + seconds + 0.2)

    def _kill(self, rec: FaultRecord, in_order: bool) -> None:
        node = self._victim()
        armed = self._catch(rec, node, in_order)
        self._hit(rec, node)
        node.kill()
        self._landed(rec, armed, in_order)
        self._settle(rec)  # the other nodes trade its accounts
        self._pause(0.5)  # restarted later
        node.start()
        rec.back_at = time.time()
        self._settle(rec)

    def _stop(self, rec: FaultRecord, in_order: bool) -> None:
        node = self._victim()
        armed = self._catch(rec, node, in_order)
        self._hit(rec, node)
        node.pause()
        self._landed(rec, armed, in_order)
        frozen = self.rng.uniform(2.0, 6.0) + self.o.ttl_seconds + self.o.lock_delay_seconds
        time.sleep(frozen)
        node.resume()
        rec.back_at = time.time()
        rec.detail = f"{rec.detail} frozen {frozen:.1f}s".strip()
        self._settle(rec)

    def _db_restart(self, rec: FaultRecord, in_order: bool) -> None:
        assert self.pg is not None
        if in_order:  # as the next close's orders are being stored
            requests = [v.handle.server for v in self.venues]
            seen = [len(s.requests) for s in requests]
            try:
                self._wait(
                    lambda: any(
                        r.route == "create_order"
                        for s, n in zip(requests, seen, strict=True)
                        for r in s.requests[n:]
                    ),
                    self.timeframe_s + 30.0,
                    "a create_order request",
                    every=0.02,
                )
            except TimeoutError:
                rec.detail = "no order came; "
        else:
            self._pause()
        down = self.rng.uniform(0.0, 2 * self.o.ttl_seconds)
        rec.at = time.time()
        self.pg.restart(down)
        rec.back_at = time.time()
        self.outages.append((rec.at, rec.back_at))
        rec.detail += f"down {down:.1f}s (restart {rec.back_at - rec.at:.1f}s)"
        self._settle(rec)

    def _add(self, rec: FaultRecord, in_order: bool) -> None:
        assert self.cluster is not None
        self._pause()
        name = f"n{len(self.cluster.nodes) + 1}"
        rec.node, rec.run, rec.at = name, 1, time.time()
        self.cluster.add(name)
        self._settle(rec)

    def _remove(self, rec: FaultRecord, in_order: bool) -> None:
        self._pause()
        node = self._victim()
        self._hit(rec, node)
        rec.exit_code = node.terminate(30.0)
        self._settle(rec)

    def _fault(self, rec: FaultRecord) -> None:
        in_order = rec.kind.endswith("_in_order")
        act = getattr(self, "_" + rec.kind.removesuffix("_in_order"))
        act(rec, in_order)
        self.report.faults.append(rec)
        flight = "" if rec.in_flight is None else f" in_flight={rec.in_flight}"
        settled = "not settled" if rec.settled_s is None else f"settled in {rec.settled_s}s"
        self.progress(
            f"fault {rec.index + 1}: {rec.kind} {rec.node or ''} {rec.detail}{flight} {settled}"
        )
