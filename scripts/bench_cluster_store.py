#!/usr/bin/env python3
"""How many accounts one PostgreSQL carries: N simulated nodes x M accounts, leases on.

1. The profile: the real trader's cycles (paper accounts on the demo's synthetic market,
   fenced stores, a real lease keeper; ``nija_testkit/reliability/store_profile.py``),
   counted: round trips, autocommit reads, write transactions (each begins with the lease
   fence's row lock), rows written, per account-cycle; and the keeper's statements per round.
   Then the replay those cycles are loaded with, counted the same way: the two must agree.
2. The load: for each accounts-per-node count, ``--nodes`` processes, each a node with one
   bounded pool (``--pool-size``, NIJA_DATABASE_POOL_SIZE), a real lease keeper, and one thread
   per account replaying the cycle every ``--interval`` seconds
   (``nija_testkit/reliability/store_load.py``), on a throwaway PostgreSQL with its durable
   defaults (fsync, synchronous commit) on 127.0.0.1, a fresh schema per run. Measured over
   ``--window`` seconds: each write transaction's latency as the account sees it (pool wait
   included), p50/p99/max; the cycles' lag behind schedule; failures; the server's CPU (its
   processes, from /proc), commits and WAL flushes per second, and what its backends were
   doing (``pg_stat_activity``, sampled); the machine's busy share (other work included);
   the nodes' own CPU. A count passes while the write p99 stays under ``--p99-ms`` with no
   failure, no cycle more than a second late, and the machine not saturated.

Usage: python3 scripts/bench_cluster_store.py [--nodes 3] [--accounts 100,300]
       [--interval 150] [--window S] [--start spread|burst] [--burst-seconds 5]
       [--pool-size 10] [--rounds 1] [--profile-cycles 600] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import multiprocessing as mp
import os
import platform
import socket
import statistics
import time
from datetime import date
from typing import Any

import structlog

from bot.cluster import nodes as cluster_nodes
from bot.cluster.nodes import NodeIdentity
from bot.store.pg import PostgresDatabase
from nija_testkit.postgres import PostgresServer, find_bin_dir, missing_reason
from nija_testkit.reliability.server_probe import ServerProbe
from nija_testkit.reliability.store_load import NodePlan, NodeResult, node_main, replay_tally
from nija_testkit.reliability.store_profile import CycleMix, profile_cycles

SETUP_TIMEOUT_SECONDS = 300.0
LATE_SECONDS = 1.0  # a cycle this late behind its schedule: the load is not being carried


def pct(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of ``values``, None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_point(
    server: PostgresServer, args: argparse.Namespace, accounts: int, mix: CycleMix
) -> dict[str, Any]:
    """One run: ``args.nodes`` nodes of ``accounts`` accounts each; what was measured."""
    schema, url = server.new_schema()
    try:
        db = PostgresDatabase(url, "paper")
        db.prepare()
        conn = db.connect(None, create=False)
        for i in range(args.nodes):  # every node live before any claims: each takes its share
            ident = NodeIdentity(f"bench-{i}", "setup", socket.gethostname(), os.getpid())
            cluster_nodes.register(conn, ident, args.ttl)
        conn.close()
        db.close()
        return _load(server, url, args, accounts, mix)
    finally:
        server.drop_schema(schema)


def _load(
    server: PostgresServer, url: str, args: argparse.Namespace, accounts: int, mix: CycleMix
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    ready, out = ctx.Queue(), ctx.Queue()
    gos = [ctx.Queue() for _ in range(args.nodes)]
    warmup = 0.0 if args.start == "burst" else 2.0
    window = args.window or max(args.interval, 30.0)
    procs = []
    for i in range(args.nodes):
        plan = NodePlan(
            url, i, args.nodes, accounts, args.interval, args.pool_size, mix, args.start,
            args.burst_seconds, warmup, window, ttl=args.ttl, seed=args.seed,
        )  # fmt: skip
        proc = ctx.Process(target=node_main, args=(plan, ready, gos[i], out), name=f"node-{i}")
        proc.start()
        procs.append(proc)
    try:
        for _ in procs:
            ready.get(timeout=SETUP_TIMEOUT_SECONDS)
        t0 = time.time() + 1.0
        for go in gos:
            go.put(t0)
        probe = ServerProbe(url, server._proc.pid if server._proc else None)
        time.sleep(max(0.0, t0 + warmup - time.time()))
        probe.start(time.monotonic())
        time.sleep(max(0.0, t0 + warmup + window - time.time()))
        seen = probe.stop(time.monotonic())
        results: list[NodeResult] = [out.get(timeout=SETUP_TIMEOUT_SECONDS) for _ in procs]
    finally:
        for proc in procs:
            proc.join(60)
            if proc.is_alive():
                proc.kill()  # this script's own child, by its handle
    return _summary(args, accounts, window, results, seen)


def _summary(args, accounts, window, results, seen) -> dict[str, Any]:
    writes = [ms for r in results for ms in r.write_ms]
    reads = [ms for r in results for ms in r.read_ms]
    lags = [s for r in results for s in r.lag_s]
    cycles = sum(r.cycles for r in results)
    failures: dict[str, int] = {}
    warnings: dict[str, int] = {}
    for r in results:
        for k, v in r.failures.items():
            failures[k] = failures.get(k, 0) + v
        for k, v in r.keeper_warnings.items():
            if k != "node_id_reused":  # the setup's registration taken over: expected
                warnings[k] = warnings.get(k, 0) + v
    all_cycles = max(1, sum(r.tally_cycles for r in results))
    trips = sum(r.tally["round_trips"] for r in results) / all_cycles
    write_txs = sum(r.tally["write_transactions"] for r in results) / all_cycles
    server_cpu = seen.server_cpu_seconds
    p99 = pct(writes, 0.99)
    late = sum(1 for s in lags if s > LATE_SECONDS)
    verdict = []
    if p99 is None or p99 > args.p99_ms:
        verdict.append(f"write p99 over {args.p99_ms:g} ms")
    if failures:
        verdict.append("failures")
    if late:
        verdict.append(f"{late} cycles late")
    # Not a verdict: on a shared machine, other work saturates it too (see load_average).
    saturated = seen.machine_busy > 0.95
    return {
        "nodes": args.nodes,
        "accounts_per_node": accounts,
        "accounts": args.nodes * accounts,
        "interval_s": args.interval,
        "start": args.start,
        "pool_size": args.pool_size,
        "window_s": round(seen.seconds, 1),
        "held": [r.held for r in results],
        "account_cycles_per_s": round(cycles / window, 1),
        "ttl_s": args.ttl,
        "write_tx_per_s_per_node": round(write_txs * cycles / window / args.nodes, 1),
        "round_trips_per_s_per_node": round(trips * cycles / window / args.nodes, 1),
        "write_ms": {"p50": _r(pct(writes, 0.5)), "p99": _r(p99), "max": _r(max(writes, default=None))},
        "read_ms": {"p50": _r(pct(reads, 0.5)), "p99": _r(pct(reads, 0.99))},
        "lag_s": {"p99": _r(pct(lags, 0.99)), "max": _r(max(lags, default=None)), "late": late},
        "failures": failures,
        "keeper_warnings": warnings,
        "pool_in_use": {"max": max(r.pool_in_use_max for r in results),
                        "mean": round(statistics.mean(r.pool_in_use_mean for r in results), 2)},
        "server_cores": None if server_cpu is None else round(server_cpu / seen.seconds, 2),
        "server_cpu_ms_per_account_cycle": None
        if server_cpu is None or not cycles else round(1000 * server_cpu / cycles, 2),
        "nodes_cores": round(sum(r.cpu_seconds for r in results) / seen.seconds, 2),
        "machine_busy": round(seen.machine_busy, 2),
        "machine_saturated": saturated,
        "commits_per_s": round(seen.commits_per_second, 1),
        "rows_inserted_per_s": round(seen.counters["tup_inserted"] / seen.seconds, 1),
        "rows_updated_per_s": round(seen.counters["tup_updated"] / seen.seconds, 1),
        "wal_flushes_per_s": round(seen.wal_flushes_per_second, 1),
        "backends": seen.backends,
        "load_average": [round(x, 1) for x in os.getloadavg()],
        "carried": not verdict,
        "limit": ", ".join(verdict) or None,
    }  # fmt: skip


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--accounts", default="100,300", help="accounts per node, comma-separated")
    parser.add_argument("--interval", type=float, default=150.0, help="cycle seconds")
    parser.add_argument("--window", type=float, default=0.0, help="default: max(interval, 30)")
    parser.add_argument("--start", choices=("spread", "burst"), default="spread")
    parser.add_argument("--burst-seconds", type=float, default=5.0)
    parser.add_argument("--pool-size", type=int, default=10)
    parser.add_argument("--ttl", type=float, default=30.0, help="lease TTL (renewed every third)")
    parser.add_argument("--p99-ms", type=float, default=100.0)
    parser.add_argument("--rounds", type=int, default=1, help="runs of each count")
    parser.add_argument("--profile-cycles", type=int, default=600, help="0: the last mix given")
    parser.add_argument("--order-every", type=float, default=12.0, help="without a profile")
    parser.add_argument("--adjust-every", type=float, default=4.2, help="without a profile")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    # The profiled traders' and keepers' own log lines are not the report.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise SystemExit(missing_reason())
    server = PostgresServer(bin_dir, durable=True).start()
    report: dict[str, Any] = {
        "date": date.today().isoformat(),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, {platform.system()}",
        "python": platform.python_version(),
    }
    try:
        with server.admin() as admin:
            report["postgresql"] = admin.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        mix = CycleMix(args.order_every, args.adjust_every)
        if args.profile_cycles:
            schema, url = server.new_schema()
            profile = profile_cycles(url, cycles=args.profile_cycles)
            server.drop_schema(schema)
            mix = profile.mix()
            schema, url = server.new_schema()
            report["replay"] = replay_tally(url, mix, cycles=args.profile_cycles)
            server.drop_schema(schema)
            report["profile"] = dataclasses.asdict(profile)
        report["mix"] = dataclasses.asdict(mix)
        report["runs"] = [
            run_point(server, args, int(n), mix)
            for _ in range(args.rounds)
            for n in args.accounts.split(",")
        ]
    finally:
        server.stop()
    print(json.dumps(report, indent=1) if args.json else _table(report))
    return 0


def _table(report: dict[str, Any]) -> str:
    lines = [f"{report['date']}, {report['machine']}, Python {report['python']},"
             f" PostgreSQL {report['postgresql']}"]  # fmt: skip
    if "profile" in report:
        p = report["profile"]
        lines.append(f"per account-cycle, real trader ({p['cycles']} cycles, {p['orders']} orders):"
                     f" {p['mean']}")  # fmt: skip
        lines.append(f"per account-cycle, replay: {report['replay']}")
        lines.append(f"keeper per round ({p['keeper_rounds_per_cycle']} rounds a cycle):"
                     f" {p['keeper_per_round']}")  # fmt: skip
    lines.append("nodes x accts  interval start  cyc/s  wtx/s/node  write p50/p99/max ms"
                 "  lag p99  srv cores  srv ms/cyc  nodes cores  busy  flush/s  pool max  limit")  # fmt: skip
    for r in report["runs"]:
        w = r["write_ms"]
        lines.append(
            f"{r['nodes']} x {r['accounts_per_node']:>5}  {r['interval_s']:>6g}s {r['start']:>6}"
            f"  {r['account_cycles_per_s']:>5}  {r['write_tx_per_s_per_node']:>10}"
            f"  {w['p50']}/{w['p99']}/{w['max']}  {r['lag_s']['p99']}  {r['server_cores']}"
            f"  {r['server_cpu_ms_per_account_cycle']}  {r['nodes_cores']}  {r['machine_busy']}"
            f"  {r['wal_flushes_per_s']}  {r['pool_in_use']['max']}  {r['limit'] or 'carried'}"
            f"{' (machine saturated)' if r['machine_saturated'] else ''}"
            f"  {r['failures'] or ''} {r['keeper_warnings'] or ''}"
        )
        lines.append(f"    backends: {r['backends']}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
