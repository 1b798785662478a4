"""The report of ``check_independent_broker_status.py``: each account's trading thread.

Read from the running daemon's status.json (each account's thread, health, circuit and
cycles, each venue's state), else from a live balance check (``bot.cli.live``); with
``NIJA_DATABASE_URL`` also which node holds each account's lease (``bot.cli.cluster``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.cli import render as cli_render
from bot.cli import rows as cli_rows
from bot.cli.cluster import cluster_report, render_cluster
from bot.cli.live import live_check
from bot.cli.statusfile import stale_after_seconds
from bot.store.backend import open_database

if TYPE_CHECKING:
    from bot.cli.commands import Context

__all__ = ["independent_report", "render_independent"]


def independent_report(ctx: Context) -> dict[str, Any] | None:
    """The report, or None when there is nothing to report on (no account configured, and
    no daemon or demo status to show)."""
    now = ctx.clock.wall()
    status, problem = ctx.status_or_note()
    attention = [problem] if problem else []
    daemon: dict[str, Any] = {"running": False, "pid": None, "status_age_seconds": None}
    if status is not None:
        daemon.update(pid=status.pid, status_age_seconds=round(status.age_seconds or 0.0, 1))
    if status is not None and status.running:
        age = cli_render.age(status.age_seconds)
        stale_after = stale_after_seconds(status, ctx.settings)
        daemon.update(running=True, summary=f"daemon running (pid {status.pid}), status {age} old")
        daemon["stale_after_seconds"] = stale_after
        if (status.age_seconds or 0.0) > stale_after:
            attention.append(
                f"daemon status stale: {age} old (the daemon rewrites it about every second;"
                f" stuck after {stale_after:g} s: is its disk full? see nija.log)"
            )
        rows = cli_rows.status_rows(status.data, now)
        venues = cli_rows.venue_rows(status.data, now)
        report_iso = status.data.get("isolation_report") or {}
        guarantee = report_iso.get("isolation_guarantee", "unknown")
        source = "daemon"
    else:
        nothing = not ctx.accounts.specs and not ctx.accounts.errors
        if nothing and not (status and status.demo) and problem is None:
            return None
        if problem is not None:
            summary = "daemon status unreadable (see below). Live check instead:"
        elif status is not None:
            summary = (
                f"daemon not running; last status from {cli_render.age(status.age_seconds)}"
                f" ago (pid {status.pid} is gone). Live check instead:"
            )
            attention.append("daemon not running (its last status.json is stale)")
        else:
            summary = "daemon not running (no status.json yet). Live check instead:"
        daemon["summary"] = summary
        results, isolation = live_check(ctx)
        rows = cli_rows.live_rows(results, isolation.get_all_account_statuses())
        venues = []
        guarantee = isolation.get_isolation_report()["isolation_guarantee"]
        source = "live_check"
    if guarantee == "VIOLATED":
        attention.append("isolation_guarantee VIOLATED: an error crossed accounts")
    cluster = None
    if ctx.settings.database_url:  # several nodes: who holds each account's lease
        s = ctx.settings
        database = open_database(s.data_dir, s.mode, s.database_url, max_connections=1)
        try:
            cluster, more = cluster_report(database, status.data.get("node_id") if status else None)
        finally:
            database.close()
        attention += more
    return {
        "command": "check_independent_broker_status",
        "mode": str((status.data.get("mode") if status else None) or ctx.settings.mode),
        "demo": bool(status and status.demo),
        "source": source,
        "daemon": daemon,
        "accounts": rows,
        "venues": venues,
        "isolation_guarantee": guarantee,
        "cluster": cluster,
        "config_errors": ctx.config_errors(),
        "attention": attention
        + cli_rows.venue_attention(venues)
        + cli_rows.account_attention(rows),
    }


def render_independent(report: dict[str, Any]) -> str:
    """The report's text: the accounts and venues, then the cluster's leases if any."""
    cluster = [render_cluster(report["cluster"])] if report.get("cluster") else []
    return cli_render.render_independent_status(report, cluster)
