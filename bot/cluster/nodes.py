"""The nodes sharing one PostgreSQL: each one's name, process and heartbeat (``nodes``).

A node registers at start (its name, ``NIJA_NODE_ID`` or ``<hostname>-<pid>``; a random
``incarnation`` naming this process; its TTL) and beats on every lease renewal
(``last_seen = now()``). The live nodes, those seen within their own TTL and not stopped,
give the fair share (``ceil(accounts / live nodes)``); a node whose ``last_seen`` is older
than its TTL has stopped renewing, which operators see (``check_independent_broker_status``).

A process that starts under a name a live process still uses takes the name over (a new
incarnation): the earlier process, if it still runs, finds at its next heartbeat that the
name is no longer its own and stops trading (``NodeSuperseded``). Its leases are taken over
at new epochs, so its writes are fenced out meanwhile (``bot.store.fence``).
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime

from bot.store.backend import Connection

__all__ = [
    "NodeIdentity",
    "NodeRow",
    "default_node_id",
    "heartbeat",
    "live_nodes",
    "nodes",
    "register",
    "stopped",
]

# Rows of nodes gone for this long, holding no lease, are forgotten at the next registration.
FORGET_AFTER = "1 day"


def default_node_id() -> str:
    """``<hostname>-<pid>``: unique on one machine, and says where to look."""
    host = socket.gethostname().split(".")[0] or "node"
    return f"{host}-{os.getpid()}"


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    """This process as a node: its name and the incarnation that tells it from a restart."""

    node_id: str
    incarnation: str
    host: str
    pid: int

    @classmethod
    def this_process(cls, node_id: str | None) -> NodeIdentity:
        """This process, named ``node_id`` (None: ``default_node_id()``)."""
        return cls(
            node_id or default_node_id(), secrets.token_hex(8), socket.gethostname(), os.getpid()
        )


@dataclass(frozen=True, slots=True)
class NodeRow:
    """One node as operators see it; ages by the database's clock."""

    node_id: str
    host: str
    pid: int
    ttl_seconds: float
    started_at: datetime
    last_seen_seconds_ago: float
    stopped: bool  # it stopped cleanly (its leases were handed back)
    leases: int  # leases it owns now (expired or not)

    @property
    def renewing(self) -> bool:
        """Seen within its TTL and not stopped: it holds its leases."""
        return not self.stopped and self.last_seen_seconds_ago <= self.ttl_seconds


_NODE_COLUMNS = (
    "n.node_id, n.host, n.pid, n.ttl_seconds, n.started_at, n.stopped_at IS NOT NULL AS stopped,"
    " extract(epoch FROM now() - n.last_seen)::float8 AS last_seen_seconds_ago,"
    " (SELECT count(*) FROM leases l WHERE l.owner = n.node_id) AS leases"
)


def _row(r) -> NodeRow:
    return NodeRow(
        r["node_id"],
        r["host"],
        int(r["pid"]),
        float(r["ttl_seconds"]),
        r["started_at"],
        float(r["last_seen_seconds_ago"]),
        bool(r["stopped"]),
        int(r["leases"]),
    )


def register(conn: Connection, node: NodeIdentity, ttl_seconds: float) -> NodeRow | None:
    """Make ``node`` the live holder of its name; the earlier process under that name when it
    was still renewing (it stops trading at its next heartbeat), else None."""
    conn.execute(
        f"DELETE FROM nodes WHERE COALESCE(stopped_at, last_seen) < now() - interval '{FORGET_AFTER}'"
        " AND NOT EXISTS (SELECT 1 FROM leases WHERE owner = nodes.node_id)"
    )
    earlier = conn.execute(
        f"SELECT {_NODE_COLUMNS} FROM nodes n WHERE n.node_id = ?", (node.node_id,)
    ).fetchall()
    conn.execute(
        "INSERT INTO nodes (node_id, incarnation, host, pid, ttl_seconds, started_at, last_seen)"
        " VALUES (?, ?, ?, ?, ?, now(), now()) ON CONFLICT (node_id) DO UPDATE SET"
        " incarnation = excluded.incarnation, host = excluded.host, pid = excluded.pid,"
        " ttl_seconds = excluded.ttl_seconds, started_at = now(), last_seen = now(),"
        " stopped_at = NULL",
        (node.node_id, node.incarnation, node.host, node.pid, ttl_seconds),
    )
    found = _row(earlier[0]) if earlier else None
    return found if found is not None and found.renewing else None


def heartbeat(conn: Connection, node: NodeIdentity) -> bool:
    """``last_seen = now()``; False when another process has taken this node's name."""
    rows = conn.execute(
        "UPDATE nodes SET last_seen = now() WHERE node_id = ? AND incarnation = ?"
        " AND stopped_at IS NULL RETURNING node_id",
        (node.node_id, node.incarnation),
    ).fetchall()
    return bool(rows)


def live_nodes(conn: Connection) -> int:
    """How many nodes are renewing now (seen within their TTL, not stopped)."""
    rows = conn.execute(
        "SELECT count(*) AS n FROM nodes WHERE stopped_at IS NULL"
        " AND last_seen > now() - ttl_seconds * interval '1 second'"
    ).fetchall()
    return int(rows[0]["n"])


def stopped(conn: Connection, node: NodeIdentity) -> None:
    """This node stopped cleanly: no longer counted among the live ones."""
    conn.execute(
        "UPDATE nodes SET stopped_at = now() WHERE node_id = ? AND incarnation = ?",
        (node.node_id, node.incarnation),
    )


def nodes(conn: Connection) -> list[NodeRow]:
    """Every node known, by name."""
    rows = conn.execute(f"SELECT {_NODE_COLUMNS} FROM nodes n ORDER BY n.node_id").fetchall()
    return [_row(r) for r in rows]
