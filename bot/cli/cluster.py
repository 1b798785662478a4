"""The cluster view of ``check_independent_broker_status.py``: several nodes on one PostgreSQL.

With ``NIJA_DATABASE_URL`` the check also reads, read-only, from the store: which node owns
each account's lease, at which epoch, for how long, when it was last renewed and when it
expires; and every node's heartbeat (a node seen longer ago than its own TTL, and not
stopped cleanly, has stopped renewing: its leases are taken over once they expire). Every
age is by the database's clock, as the leases themselves are. status.json stays per node:
its table shows the accounts this node trades.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.cli.render import age, table
from bot.cluster import leases, nodes
from bot.store.backend import Database
from bot.store.writer import StoreError

__all__ = ["cluster_report", "render_cluster"]


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def cluster_report(database: Database, node_id: str | None) -> tuple[dict[str, Any], list[str]]:
    """The leases and nodes of ``database`` (``node_id``: the node whose status.json this
    check read), and what needs attention: a node that stopped renewing while it still owns
    leases, an account no live node holds, or the tables unreadable."""
    report: dict[str, Any] = {
        "database": database.describe(),
        "node_id": node_id,
        "leases": [],
        "nodes": [],
        "error": None,
    }
    try:
        conn = database.connect_readonly()
        try:
            lease_rows, node_rows = leases.leases(conn), nodes.nodes(conn)
        finally:
            conn.close()
    except StoreError as exc:
        report["error"] = str(exc)
        return report, [f"cannot read the leases: {exc}"]
    renewing = {n.node_id for n in node_rows if n.renewing}
    attention: list[str] = []
    for n in node_rows:
        state = "renewing" if n.renewing else "stopped" if n.stopped else "stopped renewing"
        report["nodes"].append(
            {
                "node_id": n.node_id,
                "host": n.host,
                "pid": n.pid,
                "state": state,
                "last_seen_seconds_ago": _seconds(n.last_seen_seconds_ago),
                "ttl_seconds": n.ttl_seconds,
                "leases": n.leases,
            }
        )
        if state == "stopped renewing" and n.leases:
            attention.append(
                f"node {n.node_id} ({n.host}, pid {n.pid}) stopped renewing"
                f" {age(n.last_seen_seconds_ago)} ago and still owns {n.leases} lease(s):"
                " the other nodes take them over once they expire"
            )
    for lease in lease_rows:
        expired = lease.owner is not None and lease.expires_in_seconds <= 0
        report["leases"].append(
            {
                "account": lease.account_key,
                "owner": lease.owner,
                "epoch": lease.epoch,
                "held_seconds": _seconds(lease.held_seconds),
                "renewed_seconds_ago": _seconds(lease.renewed_seconds_ago),
                "expires_in_seconds": None
                if lease.owner is None
                else _seconds(lease.expires_in_seconds),
                "expired": expired,
                "owner_renewing": lease.owner in renewing,
            }
        )
        if lease.owner is None:
            attention.append(f"{lease.account_key}: no node holds its lease (free)")
        elif expired:
            attention.append(
                f"{lease.account_key}: its lease (node {lease.owner}, epoch {lease.epoch})"
                f" expired {age(-lease.expires_in_seconds)} ago and no node has taken it over"
            )
    return report, attention


def render_cluster(cluster: Mapping[str, Any]) -> str:
    """The leases table and the nodes table."""
    head = f"Cluster: leases in {cluster['database']}"
    if cluster.get("node_id"):
        head += f" (this node: {cluster['node_id']})"
    if cluster.get("error"):
        return f"{head}\n  cannot read them: {cluster['error']}"
    lease_rows = [
        (
            lease["account"],
            lease["owner"] or "free",
            lease["epoch"],
            age(lease["held_seconds"]),
            None
            if lease["renewed_seconds_ago"] is None
            else f"{age(lease['renewed_seconds_ago'])} ago",
            _expiry(lease),
        )
        for lease in cluster["leases"]
    ]
    node_rows = [
        (
            n["node_id"],
            n["host"],
            n["pid"],
            f"{age(n['last_seen_seconds_ago'])} ago",
            age(n["ttl_seconds"]),
            n["state"],
            n["leases"],
        )
        for n in cluster["nodes"]
    ]
    parts = [head]
    if lease_rows:
        headers = ("ACCOUNT", "OWNER", "EPOCH", "HELD FOR", "RENEWED", "EXPIRES")
        parts.append(table(headers, lease_rows))
    if node_rows:
        node_headers = ("NODE", "HOST", "PID", "LAST SEEN", "TTL", "STATE", "LEASES")
        parts.append(table(node_headers, node_rows))
    return "\n\n".join(parts)


def _expiry(lease: Mapping[str, Any]) -> str | None:
    seconds = lease["expires_in_seconds"]
    if seconds is None:
        return None
    if lease["expired"]:
        return f"expired {age(-seconds)} ago"
    return f"in {age(seconds)}"
