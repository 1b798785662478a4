"""The lease audit: did any order reach the venue from a node not holding its account's lease?

Several NIJA nodes on one PostgreSQL record enough to answer it after the fact:

* ``lease_events``: every tenure of every account's lease. A tenure ``(account, epoch)``
  begins at its ``claimed``/``taken_over`` row (``at``, ``node_id``), and ends at its own
  ``released`` row (``at``) or, when its owner let it expire (killed, paused, cut off),
  at the expiry recorded by the next tenure's acquisition (``previous_epoch_ended_at`` of
  ``epoch + 1``). Still running: no end yet.
* ``orders``: every order row names the node that stored it and the epoch it held then
  (``node_id``, ``lease_epoch``), written by the fenced insert (``bot.store.fence``). Only
  that node, under that epoch, ever sends it (a later owner looks it up, never sends it).

So each create-order request the venue received (its account, client order id and arrival
wall time: ``Recorded.wall``) maps to one order row, hence to one tenure, and must have
arrived within it: after it began, and before it ended plus ``tolerance_seconds`` (the time
an order may spend in flight: NIJA stops sending a margin before the database's expiry, a
tenth of the TTL). Anything else is a violation, named.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import psycopg

__all__ = ["SentOrder", "Tenure", "audit", "tenures"]


@dataclass(frozen=True, slots=True)
class SentOrder:
    """One create-order request as the venue received it."""

    account_key: str
    client_order_id: str
    wall: float  # arrival, epoch seconds


@dataclass(frozen=True, slots=True)
class Tenure:
    """One node's holding of one account's lease, by the database's clock (epoch seconds)."""

    account_key: str
    epoch: int
    node_id: str
    start: float
    end: float | None  # None: still held


def tenures(url: str) -> dict[tuple[str, int], Tenure]:
    """Every tenure in the lease history of the store at ``url``, by (account, epoch)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT account_key, node_id, epoch, event, at, previous_epoch_ended_at"
            " FROM lease_events ORDER BY id"
        ).fetchall()
    begun: dict[tuple[str, int], tuple[str, float]] = {}
    ended: dict[tuple[str, int], float] = {}
    for account, node, epoch, event, at, previous_ended in rows:
        if event in ("claimed", "taken_over"):
            begun[(account, epoch)] = (node, at.timestamp())
            if previous_ended is not None:
                ended.setdefault((account, epoch - 1), previous_ended.timestamp())
        elif event == "released":
            ended[(account, epoch)] = at.timestamp()
    return {
        key: Tenure(key[0], key[1], node, start, ended.get(key))
        for key, (node, start) in begun.items()
    }


def audit(url: str, sent: Iterable[SentOrder], tolerance_seconds: float = 0.0) -> list[str]:
    """Every order the venue received outside its tenure, or that no tenure explains; and
    every client order id received more than once. Empty: none."""
    sent = list(sent)
    held = tenures(url)
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT account_key, client_order_id, node_id, lease_epoch FROM orders"
        ).fetchall()
    stored = {(a, c): (n, e) for a, c, n, e in rows}
    found: list[str] = []
    counts = Counter((s.account_key, s.client_order_id) for s in sent)
    found += [f"{a} {c}: received {n} times" for (a, c), n in sorted(counts.items()) if n > 1]
    for order in sent:
        name = f"{order.account_key} {order.client_order_id}"
        if (order.account_key, order.client_order_id) not in stored:
            found.append(f"{name}: no stored order")
            continue
        node, epoch = stored[(order.account_key, order.client_order_id)]
        tenure = held.get((order.account_key, epoch)) if epoch is not None else None
        if tenure is None:
            found.append(f"{name}: stored by {node} under epoch {epoch}, no such tenure")
        elif tenure.node_id != node:
            found.append(f"{name}: stored by {node}, but epoch {epoch} was {tenure.node_id}'s")
        elif order.wall < tenure.start:
            found.append(f"{name}: arrived {tenure.start - order.wall:.3f}s before epoch {epoch}")
        elif tenure.end is not None and order.wall > tenure.end + tolerance_seconds:
            late = order.wall - tenure.end
            found.append(f"{name}: arrived {late:.3f}s after {node}'s epoch {epoch} ended")
    return found
