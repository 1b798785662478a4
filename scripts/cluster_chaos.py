#!/usr/bin/env python3
"""Cluster chaos: NIJA nodes on one PostgreSQL, SIGKILLed, frozen, added, removed, and the
database restarted under them; nothing may be placed twice or by a node without the lease.

Usage: python3 scripts/cluster_chaos.py [--accounts 60] [--nodes 3] [--faults 24] [--seed N]
                                         [--max-seconds 2700] [--workdir DIR] [--json]

Starts a throwaway PostgreSQL (the system's binaries), loopback emulators of Alpaca and
Kraken with the accounts split between them, and the nodes (real bot.py, live mode,
NIJA_LEASE_TTL_SECONDS=3, lock delay 1 s); orders flow at every close of the real clock's
1-minute candle grid. Faults at seeded random moments, some inside order placement:
SIGKILL (restarted later), SIGSTOP past the lease then SIGCONT (a zombie), PostgreSQL
restarted, a node added, a node removed (SIGTERM). Then: duplicate orders, orders outside
their lease (the venue's request log against lease_events), lost positions, unresolved
orders, time untraded at each change of owner, the balance, and how long a dead node's
accounts took to move. Orders wait for candle closes: 24 faults take about 20-30 minutes.
Exit status 0 when every count is 0 and the run finished in time; 1 otherwise.
See nija_testkit/reliability/cluster_chaos.py for how.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
from collections import Counter
from pathlib import Path

from nija_testkit.reliability.cluster_chaos import VIOLATIONS, Options, Report, run
from nija_testkit.reliability.script_output import print_summary, stamp, verdict


def _spread(values: list[float]) -> dict[str, float | int | None]:
    done = sorted(values)
    if not done:
        return {"n": 0, "median": None, "max": None}
    return {"n": len(done), "median": round(statistics.median(done), 2), "max": round(done[-1], 2)}


def _window_ms(seconds: list[float]) -> dict[str, int | None]:
    """The send windows in ms: median, 99th percentile, max, and how many over 100 ms."""
    done = sorted(seconds)
    if not done:
        return {"n": 0, "median": None, "p99": None, "max": None, "over_100ms": 0}
    at = [done[len(done) // 2], done[min(len(done) - 1, int(0.99 * len(done)))], done[-1]]
    median, p99, most = (round(1000 * x) for x in at)
    over = sum(x > 0.1 for x in done)
    return {"n": len(done), "median": median, "p99": p99, "max": most, "over_100ms": over}


def summary(report: Report) -> dict:
    """The report as plain JSON-ready data."""
    o = report.options
    faults = report.faults
    moves = [m.seconds for m in report.moves if m.seconds is not None]
    kinds = {f.index: f.kind.removesuffix("_in_order") for f in faults}
    moves_by = {
        k: _spread(
            [m.seconds for m in report.moves if m.seconds is not None and kinds[m.fault] == k]
        )
        for k in ("kill", "stop")
    }
    longest = sorted(report.gaps, key=lambda g: -g.seconds)[:5]
    by_how: dict[str, list[float]] = {"released": [], "expired": []}
    for g in report.gaps:
        by_how[g.how].append(g.seconds)
    balance = report.balance
    return {
        **stamp(),
        "seed": o.seed,
        "accounts": o.accounts,
        "venues": list(o.venues),
        "nodes": o.nodes,
        "ttl_s": o.ttl_seconds,
        "lock_delay_s": o.lock_delay_seconds,
        "faults": len(faults),
        "faults_by_kind": dict(Counter(f.kind for f in faults)),
        "in_order_in_flight": sum(bool(f.in_flight) for f in faults),
        "in_order_flavours": dict(
            Counter(f.detail.split()[0] for f in faults if f.in_flight and f.detail)
        ),
        "settled_s": _spread([f.settled_s for f in faults if f.settled_s is not None]),
        "move_s": _spread(moves),
        "move_s_by_kind": moves_by,
        "accounts_moved": len(moves),
        "accounts_won_back": sum(m.returned for m in report.moves),
        "longest_gaps": [
            f"{g.account} {g.seconds:.1f}s after {g.how}, to {g.node}"
            f"{' (waited on an order)' if g.waited else ''}, bound {g.bound:.1f}s"
            for g in longest
        ],
        "in_order": [
            f"{f.index + 1} {f.kind} {f.node} {f.detail}: {f.account} {f.outcome}"
            for f in faults
            if f.account is not None
        ],
        "gap_s": {how: _spread(v) for how, v in by_how.items()},
        "gap_bound_s": _spread([g.bound for g in report.gaps]),
        "gaps_waiting_on_an_order": sum(g.waited for g in report.gaps),
        "balance_samples": len(balance),
        "balance_worst_off_fair": max(
            (abs(c - b.fair) for b in balance for c in b.shares.values()), default=None
        ),
        "send_window_ms": _window_ms(report.send_window),
        "venue_orders": report.venue_orders,
        "filled_orders": report.filled_orders,
        "store_orders": report.store_orders,
        "client_ids_sent_twice": report.client_ids_sent_twice,
        "violations": report.counts(),
        "violation_examples": {k: v[:10] for k, v in report.violations.items() if v},
        "log_events": dict(sorted(report.events.items())),
        "elapsed_s": report.elapsed_s,
        "finished": report.finished,
        "error": report.error,
        "ok": report.ok,
        "fault_log": [dataclasses.asdict(f) | {"held": len(f.held)} for f in faults],
        "balance_log": [dataclasses.asdict(b) for b in balance],
    }


def table(s: dict) -> str:
    """One table: the figures, then every promise with its count."""
    gap = s["gap_s"]
    rows = [
        ("seed", s["seed"]),
        ("accounts / venues / nodes", f"{s['accounts']} / {'+'.join(s['venues'])} / {s['nodes']}"),
        ("lease TTL / lock delay s", f"{s['ttl_s']:g} / {s['lock_delay_s']:g}"),
        ("faults", s["faults"]),
        *((f"  {kind}", n) for kind, n in sorted(s["faults_by_kind"].items())),
        ("  create_order in flight at the signal", s["in_order_in_flight"]),
        ("fault → settled s, median / max", f"{s['settled_s']['median']} / {s['settled_s']['max']}"),
        ("dead/frozen node's account moved, n", s["accounts_moved"]),
        ("taken over, then won back by the woken node", s["accounts_won_back"]),
        ("  signal → reconciled elsewhere s, median / max",
         f"{s['move_s']['median']} / {s['move_s']['max']}"),
        *((f"    after {k}, n / median / max", f"{v['n']} / {v['median']} / {v['max']}")
          for k, v in s["move_s_by_kind"].items()),
        ("untraded after a release s, n / median / max",
         f"{gap['released']['n']} / {gap['released']['median']} / {gap['released']['max']}"),
        ("untraded after an expiry s, n / median / max",
         f"{gap['expired']['n']} / {gap['expired']['median']} / {gap['expired']['max']}"),
        ("balance samples (worst |held - fair|)",
         f"{s['balance_samples']} ({s['balance_worst_off_fair']})"),
        ("last look → at the venue ms, median / p99 / max",
         f"{s['send_window_ms']['median']} / {s['send_window_ms']['p99']} / "
         f"{s['send_window_ms']['max']} ({s['send_window_ms']['over_100ms']} over 100 ms)"),
        ("venue orders (filled) / store orders",
         f"{s['venue_orders']} ({s['filled_orders']}) / {s['store_orders']}"),
        ("client ids sent twice (venue kept one)", s["client_ids_sent_twice"]),
        *((f"event {k}", n) for k, n in s["log_events"].items()),
        ("elapsed s", s["elapsed_s"]),
    ]  # fmt: skip
    width = max(len(str(r[0])) for r in rows + [(v, 0) for v in VIOLATIONS]) + 2
    lines = [f"{'figure':<{width}}value", "-" * (width + 12)]
    lines += [f"{name:<{width}}{value}" for name, value in rows]
    lines += ["-" * (width + 12), f"{'promise (must be 0)':<{width}}count"]
    lines += [f"{name:<{width}}{n}" for name, n in s["violations"].items()]
    lines.append("-" * (width + 12))
    lines += ["orders in flight at the faults:", *(f"  {x}" for x in s["in_order"])]
    lines += ["longest untraded gaps:", *(f"  {x}" for x in s["longest_gaps"])]
    lines.append("-" * (width + 12))
    lines.append(verdict(s, width))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=60, help="accounts (default 60)")
    parser.add_argument("--nodes", type=int, default=3, help="nodes at the start (default 3)")
    parser.add_argument("--faults", type=int, default=24, help="fault events (default 24)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--max-seconds", type=float, default=2700.0, help="time budget (2700)")
    parser.add_argument("--workdir", type=Path, help="keep the nodes' logs here")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args(argv)
    if args.faults < 1 or args.nodes < 2 or args.accounts < 2:
        parser.error("--faults must be at least 1, --nodes and --accounts at least 2")
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    print(
        f"cluster_chaos: seed {seed}, {args.accounts} accounts, {args.nodes} nodes,"
        f" {args.faults} faults",
        file=sys.stderr,
    )
    options = Options(
        accounts=args.accounts,
        nodes=args.nodes,
        faults=args.faults,
        seed=seed,
        max_seconds=args.max_seconds,
        workdir=args.workdir,
    )
    report = run(options, progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    print_summary(summary(report), table, as_json=args.json)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
