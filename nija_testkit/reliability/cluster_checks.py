"""The cluster chaos run's measurements, made afterwards from the database, the logs and
the venues' request logs.

* ``gaps``: how long each account went untraded when its lease changed hands: from the end
  of the last tenure that traded it (its release, or its expiry by the database's clock) to
  the moment the next tenure's owner logged ``reconciled`` for it (its worker's first
  reconciliation, after which it trades). Each gap has its bound: the TTL, the lock delay
  and a reconciliation (``RECONCILE_SECONDS``; plus the venue's proof of absence when that
  reconciliation waited on an ambiguous order, ``reconcile_waiting``), plus any database
  outage inside it.
* ``moves``: for each node SIGKILLed or SIGSTOPped, the time from the signal to each of the
  accounts it held being reconciled by another process.
* ``held_through``: accounts of a killed or frozen node that no other node took over before
  it came back (a lease row a frozen node kept locked, say).
* ``send_window``: from each order's last look at the lease to its arrival at the venue.
* ``zombie_sends``: orders stored by a SIGSTOPped node under the epochs it held when
  frozen that reached the venue after it woke (its leases gone by then).
* ``unclean_removals``: a node SIGTERMed that did not exit 0 or did not hand back (release)
  every lease it held.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import psycopg

from bot.brokers.venues import VENUES
from nija_testkit.reliability.cluster_nodes import NodeLine
from nija_testkit.reliability.lease_audit import SentOrder, Tenure

# A reconciliation's allowance in a gap's bound: the worker's start (funded check), its
# first cycle's order look-ups and position check, on a loaded 2-core machine.
RECONCILE_SECONDS = 10.0


@dataclass
class FaultRecord:
    """One fault and what the run saw of it (walls are epoch seconds)."""

    index: int
    kind: str  # a FAULT_KINDS entry
    node: str | None = None  # the node hit (kill, stop, remove) or added
    run: int = 0  # that node's process (its start number) when hit
    at: float = 0.0  # the signal / the database stop / the start
    back_at: float | None = None  # SIGCONT, the database up again, the killed node restarted
    held: dict[str, int] = field(default_factory=dict)  # its leases then: account → epoch
    detail: str = ""  # the in-order flavour, the stop or outage length, ...
    account: str | None = None  # in order: the account whose order was in flight
    client_order_id: str | None = None  # in order: that order
    in_flight: bool | None = None  # in order: its answer was not yet due at the signal
    exit_code: int | None = None  # remove: bot.py's exit status (None: it had to be killed)
    settled_s: float | None = None  # the fault → every account settled again (None: never)
    outcome: str | None = None  # in order: how that order ended (``outcomes``)


@dataclass(frozen=True, slots=True)
class BalanceSample:
    """The leases per running node at a quiet moment (before a fault)."""

    before_fault: int
    shares: dict[str, int]
    fair: float
    off: tuple[str, ...]  # nodes more than one account from fair


@dataclass(frozen=True, slots=True)
class Gap:
    """An account untraded between two owners."""

    account: str
    ended: float  # the last trading tenure's end (release or expiry)
    how: str  # released | expired
    claimed: float  # the claim of the tenure that traded it next
    reconciled: float  # its owner's `reconciled` line
    node: str
    waited: bool  # that reconciliation waited on an ambiguous order
    bound: float

    @property
    def seconds(self) -> float:
        return self.reconciled - self.ended


@dataclass(frozen=True, slots=True)
class Move:
    """One account of a killed or frozen node, traded again by another process; or, for a
    frozen node, taken over while it was frozen and won back once it woke (``returned``)."""

    fault: int
    account: str
    seconds: float | None  # None: never traded again by another process
    by: str | None
    returned: bool = False  # taken over by another node, then traded by the woken node


def released_tenures(url: str) -> set[tuple[str, int]]:
    """The (account, epoch) tenures that ended by a release."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT account_key, epoch FROM lease_events WHERE event = 'released'"
        ).fetchall()
    return {(str(a), int(e)) for a, e in rows}


def releases(url: str) -> list[tuple[str, str, float]]:
    """Every release: (account, node, wall)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT account_key, node_id, at FROM lease_events WHERE event = 'released'"
        ).fetchall()
    return [(str(a), str(n), at.timestamp()) for a, n, at in rows]


@dataclass(frozen=True, slots=True)
class StoredOrder:
    """An order row: who stored it, under which epoch, and its status now."""

    node: str
    epoch: int | None
    status: str


Stored = dict[tuple[str, str], StoredOrder]  # by (account, client id)


def stored_orders(url: str) -> Stored:
    """Every stored order."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT account_key, client_order_id, node_id, lease_epoch, status FROM orders"
        ).fetchall()
    return {(str(a), str(c)): StoredOrder(str(n), e, str(s)) for a, c, n, e, s in rows}


def outcomes(faults: list[FaultRecord], sent: list[SentOrder], stored: Stored) -> None:
    """Each in-order fault's order as it ended: its status, who stored it under which epoch,
    how many times it reached the venue (``FaultRecord.outcome``)."""
    times = Counter((s.account_key, s.client_order_id) for s in sent)
    for f in faults:
        if f.account is None or f.client_order_id is None:
            continue
        key = (f.account, f.client_order_id)
        row = stored.get(key)
        where = "not stored" if row is None else f"{row.status}, stored by {row.node}/{row.epoch}"
        f.outcome = f"{where}, reached the venue {times[key]}x"


def proof_seconds(account: str, call_timeout: float) -> float:
    """The longest a reconciliation may wait to prove an order absent on the account's venue."""
    venue = VENUES[account.rsplit("/", 1)[-1]]
    return venue.absence_lookups * venue.absence_spacing_seconds + 2 * call_timeout


def gaps(
    tenures: dict[tuple[str, int], Tenure],
    released: set[tuple[str, int]],
    lines: list[NodeLine],
    *,
    ttl: float,
    lock_delay: float,
    call_timeout: float,
    outages: list[tuple[float, float]],
) -> list[Gap]:
    """Every gap between two owners' trading (module docstring)."""
    by_node: dict[tuple[str, str], list[NodeLine]] = defaultdict(list)
    for line in lines:
        if line.event.account and line.event.event in ("reconciled", "reconcile_waiting"):
            by_node[(line.node, line.event.account)].append(line)
    out: list[Gap] = []
    accounts = sorted({a for a, _ in tenures})
    for account in accounts:
        mine = sorted((t for t in tenures.values() if t.account_key == account), key=_epoch)
        down: tuple[float, str] | None = None  # the last trading tenure's end and how
        waiting = False  # a tenure in the gap so far waited on an ambiguous order
        for t in mine:
            end = t.end if t.end is not None else float("inf")
            seen = [x for x in by_node[(t.node_id, account)] if t.start <= x.wall <= end]
            done = next((x for x in seen if x.event.event == "reconciled"), None)
            waiting = waiting or any(
                x.event.event == "reconcile_waiting" for x in seen if x is not done
            )
            if done is None:
                continue  # never traded in this tenure (handed back, or ended while it waited)
            waited, waiting = waiting, False
            if down is not None:
                bound = ttl + lock_delay + RECONCILE_SECONDS
                bound += proof_seconds(account, call_timeout) if waited else 0.0
                bound += sum(
                    up - down_at + 1.0
                    for down_at, up in outages
                    if down_at < done.wall and up > down[0]
                )
                out.append(
                    Gap(account, down[0], down[1], t.start, done.wall, t.node_id, waited, bound)
                )
            if t.end is not None:
                down = (t.end, "released" if (account, t.epoch) in released else "expired")
    return out


def _epoch(t: Tenure) -> int:
    return t.epoch


def moves(
    faults: list[FaultRecord],
    lines: list[NodeLine],
    tenures: dict[tuple[str, int], Tenure] | None = None,
) -> list[Move]:
    """For each SIGKILL and SIGSTOP: each account the node held, to its next reconciliation
    by another process (module docstring). An account of a frozen node that another node took
    over while it was frozen (``tenures``), then handed back by the fair share before it had
    reconciled, and traded again by the woken node, is ``returned``: no move time, no miss."""
    reconciled = [x for x in lines if x.event.event == "reconciled" and x.event.account]
    out = []
    for f in faults:
        if not f.kind.startswith(("kill", "stop")):
            continue
        for account in sorted(f.held):
            first = next(
                (
                    x
                    for x in reconciled
                    if x.event.account == account
                    and x.wall > f.at
                    and (x.node, x.run) != (f.node, f.run)
                ),
                None,
            )
            if first is None and _won_back(f, account, reconciled, tenures or {}):
                out.append(Move(f.index, account, None, f.node, returned=True))
                continue
            seconds = None if first is None else round(first.wall - f.at, 2)
            out.append(Move(f.index, account, seconds, None if first is None else first.node))
    return out


def _won_back(
    f: FaultRecord,
    account: str,
    reconciled: list[NodeLine],
    tenures: dict[tuple[str, int], Tenure],
) -> bool:
    """Did another node take ``account`` over while ``f``'s node was frozen, and the woken
    node reconcile it afterwards (in a tenure of its own, begun after it woke)?"""
    if f.back_at is None or not f.kind.startswith("stop"):
        return False
    back_at = f.back_at
    taken = any(
        t.account_key == account and t.node_id != f.node and f.at < t.start < back_at
        for t in tenures.values()
    )
    return taken and any(
        x.event.account == account and (x.node, x.run) == (f.node, f.run) and x.wall > back_at
        for x in reconciled
    )


def held_through(faults: list[FaultRecord], tenures: dict[tuple[str, int], Tenure]) -> list[str]:
    """Accounts of a SIGKILLed or SIGSTOPped node that no other node took over before the
    node came back (restarted, or woken: ``back_at``). Every fault waits long enough for that:
    a stop lasts the TTL, the lock delay and 2 s more; a killed node restarts once settled."""
    out = []
    for f in faults:
        if not f.kind.startswith(("kill", "stop")) or f.back_at is None:
            continue
        for account in sorted(f.held):
            if not any(
                t.account_key == account and t.node_id != f.node and f.at < t.start < f.back_at
                for t in tenures.values()
            ):
                out.append(f"fault {f.index + 1} {f.kind} {f.node}: {account} never taken over")
    return out


def send_window(lines: list[NodeLine], sent: list[SentOrder]) -> list[float]:
    """For each order, seconds from its ``order_sending`` line (logged just after the last
    look at the lease) to its arrival at the venue: the window a freeze can fall into."""
    logged: dict[tuple[str, str], float] = {}
    for x in lines:
        coid = x.event.fields.get("client_order_id")
        if x.event.event == "order_sending" and x.event.account and coid:
            logged.setdefault((x.event.account, coid), x.wall)
    arrived: dict[tuple[str, str], float] = {}
    for order in sorted(sent, key=lambda o: o.wall):
        arrived.setdefault((order.account_key, order.client_order_id), order.wall)
    return [arrived[k] - w for k, w in logged.items() if k in arrived]


def zombie_sends(
    faults: list[FaultRecord],
    sent: list[SentOrder],
    stored: Stored,
) -> list[str]:
    """Orders a woken zombie's old epochs put on the venue after SIGCONT (module docstring)."""
    out = []
    for f in faults:
        if not f.kind.startswith("stop") or f.back_at is None:
            continue
        for order in sent:
            row = stored.get((order.account_key, order.client_order_id))
            if row is None or row.node != f.node or order.wall <= f.back_at:
                continue
            node, epoch = row.node, row.epoch
            if f.held.get(order.account_key) == epoch:
                out.append(
                    f"{order.account_key} {order.client_order_id}: stored by {node} under epoch"
                    f" {epoch}, reached the venue {order.wall - f.back_at:.2f}s after it woke"
                )
    return out


def unclean_removals(
    faults: list[FaultRecord], released: list[tuple[str, str, float]]
) -> list[str]:
    """Nodes SIGTERMed that did not exit 0 or left a lease to expire."""
    out = []
    for f in faults:
        if f.kind != "remove":
            continue
        if f.exit_code != 0:
            out.append(f"{f.node}: exit status {f.exit_code} after SIGTERM")
        handed = {a for a, n, at in released if n == f.node and at >= f.at - 1.0}
        if missing := sorted(set(f.held) - handed):
            out.append(f"{f.node}: {len(missing)} lease(s) not handed back, e.g. {missing[0]}")
    return out


def leases_owned(url: str) -> list[str]:
    """The leases still owned (after every node has stopped: none)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT account_key, owner FROM leases WHERE owner IS NOT NULL"
        ).fetchall()
    return [f"{a} still owned by {o}" for a, o in rows]


def held_epochs(url: str, node: str) -> dict[str, int]:
    """The leases ``node`` holds now (unexpired): account → epoch."""
    with psycopg.connect(url, connect_timeout=2) as conn:
        rows = conn.execute(
            "SELECT account_key, epoch FROM leases WHERE owner = %s AND expires_at > now()",
            (node,),
        ).fetchall()
    return {str(a): int(e) for a, e in rows}


def unresolved_count(url: str) -> int:
    """Stored orders still pending or unknown."""
    with psycopg.connect(url, connect_timeout=2) as conn:
        row = conn.execute(
            "SELECT count(*) FROM orders WHERE status IN ('pending', 'unknown')"
        ).fetchone()
    return int(row[0]) if row else 0
