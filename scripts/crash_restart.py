#!/usr/bin/env python3
"""Crash and restart: SIGKILL the live daemon N times and compare venue and store each time.

Usage: python3 scripts/crash_restart.py [--kills 50] [--seed N] [--max-seconds 2700]
                                        [--venue ALPACA|KRAKEN] [--json]

Runs the real bot.py in live mode against a loopback venue emulator (three accounts;
Alpaca, or Kraken whose client ids are unique among open orders only), kills it at
seeded random moments (some inside order placement), restarts it, and after each restart
checks: duplicate orders, orders the store never saw, lost positions, orders left
unresolved, orders settled wrongly, fills that never became (or closed) a stored position.
Signals come at the real clock's 1-minute candle closes, so a kill inside order placement
takes about a minute: 50 kills take 25-40 minutes.
Exit status 0 when every count is 0 and all kills were done in time; 1 otherwise.
See nija_testkit/reliability/crash_restart.py for how.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from nija_testkit.reliability.crash_restart import (
    CRASH_VENUES,
    FAULTS,
    KINDS,
    VIOLATIONS,
    Options,
    Report,
    run,
)
from nija_testkit.reliability.script_output import print_summary, stamp, verdict


def summary(report: Report) -> dict:
    """The report as plain JSON-ready data."""
    kills = report.kills
    reconciled = sorted(k.reconciled_s for k in kills if k.reconciled_s is not None)
    return {
        **stamp(),
        "venue": report.options.venue,
        "seed": report.options.seed,
        "kills_requested": report.options.kills,
        "kills": len(kills),
        "kills_by_kind": {kind: sum(k.kind == kind for k in kills) for kind in KINDS},
        "in_order_in_flight": sum(k.in_flight for k in kills),
        "killed_before_all_reconciled": sum(k.reconciling for k in kills),
        "killed_after_orders_sent": {
            kind: sum(k.kind == kind and k.orders_sent > 0 for k in kills) for kind in KINDS
        },
        "in_order_faults": {f: sum(k.fault == f and k.in_flight for k in kills) for f in FAULTS},
        "checks": report.checks,
        "reconciled_s": {
            "median": reconciled[len(reconciled) // 2] if reconciled else None,
            "max": reconciled[-1] if reconciled else None,
        },
        "venue_orders": report.venue_orders,
        "filled_orders": report.filled_orders,
        "store_orders": report.store_orders,
        "client_ids_sent_twice": report.resent_client_ids,
        "violations": report.counts(),
        "violation_examples": {k: sorted(v)[:10] for k, v in report.violations.items() if v},
        "recovery_events": dict(sorted(report.events.items())),
        "elapsed_s": report.elapsed_s,
        "finished": report.finished,
        "error": report.error,
        "ok": report.ok,
        "kill_log": [dataclasses.asdict(k) for k in kills],
    }


def table(s: dict) -> str:
    """One table: the figures, then every promise with its count."""
    rows = [
        ("venue", s["venue"]),
        ("seed", s["seed"]),
        ("kills (SIGKILL)", f"{s['kills']} of {s['kills_requested']}"),
        *((f"  {kind}", n) for kind, n in s["kills_by_kind"].items()),
        ("  create_order in flight at the kill", s["in_order_in_flight"]),
        *((f"    {f}", n) for f, n in s["in_order_faults"].items()),
        ("  before every account reconciled", s["killed_before_all_reconciled"]),
        ("  after the process sent an order", " / ".join(
            f"{kind} {n}" for kind, n in s["killed_after_orders_sent"].items())),
        ("checks after restart", s["checks"]),
        ("restart → reconciled, median / max s", f"{s['reconciled_s']['median']} / "
         f"{s['reconciled_s']['max']}"),
        ("venue orders (filled)", f"{s['venue_orders']} ({s['filled_orders']})"),
        ("store orders", s["store_orders"]),
        ("client ids sent twice (venue kept one)", s["client_ids_sent_twice"]),
        *((f"event {k}", n) for k, n in s["recovery_events"].items()),
        ("elapsed s", s["elapsed_s"]),
    ]  # fmt: skip
    width = max(len(r[0]) for r in rows + [(v, 0) for v in VIOLATIONS]) + 2
    lines = [f"{'figure':<{width}}value", "-" * (width + 12)]
    lines += [f"{name:<{width}}{value}" for name, value in rows]
    lines += ["-" * (width + 12), f"{'promise (must be 0)':<{width}}count"]
    lines += [f"{name:<{width}}{n}" for name, n in s["violations"].items()]
    lines.append("-" * (width + 12))
    lines.append(verdict(s, width))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50, help="SIGKILLs to do (default 50)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--max-seconds", type=float, default=2700.0, help="time budget (2700)")
    parser.add_argument("--workdir", type=Path, help="keep logs and the database here")
    parser.add_argument(
        "--venue", choices=sorted(CRASH_VENUES), default="ALPACA", help="the emulated venue"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args(argv)
    if args.kills < 1:
        parser.error("--kills must be at least 1")
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    print(f"crash_restart: {args.venue}, seed {seed}, {args.kills} kills", file=sys.stderr)
    options = Options(
        kills=args.kills,
        seed=seed,
        max_seconds=args.max_seconds,
        workdir=args.workdir,
        venue=args.venue,
    )
    report = run(options, progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    print_summary(summary(report), table, as_json=args.json)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
