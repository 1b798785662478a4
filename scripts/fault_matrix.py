#!/usr/bin/env python3
"""The fault matrix: does a fault in one account ever touch the other four?

Runs the real bot.py against the loopback emulator with five accounts and breaks one
of them in each way in turn (nija_testkit/reliability/fault_matrix.py has the rows and the measuring).
Prints one table: per row, the faulty account's recorded failure type, worst health,
time to quarantine and time to recover after the fault is lifted, and the four
healthy accounts' cycles, missed cycles and period deviation (p50 / p99 / max).

Exit status 1 when a healthy account missed a cycle or recorded a failure, a fault
was classified wrongly, a route was not exercised or an account did not recover.

Usage: python3 scripts/fault_matrix.py [--rows 500,hang] [--seconds-per-row 4] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from nija_testkit.reliability.fault_matrix import (
    MatrixConfig,
    RowResult,
    all_rows,
    percentile,
    run_matrix,
    select,
)

COLUMNS = (
    ("row", 30),
    ("hits", 4),
    ("expected", 20),
    ("recorded", 24),
    ("worst", 11),
    ("quar s", 6),
    ("recov s", 7),
    ("cycles", 6),
    ("missed", 6),
    ("p50 %", 6),
    ("p99 %", 6),
    ("max %", 6),
    ("verdict", 7),
)

LEGEND = """
hits: requests of the faulty account to the faulted route while the fault was on.
recorded: failures the faulty account recorded in the row, by type (status.json).
quar s: fault on -> quarantined (failing, for 401); recov s: fault lifted -> healthy
  (0.0: it was healthy again when the fault was lifted; -: it never left healthy).
cycles / missed / p50 p99 max %: the four healthy accounts' cycles in the row, periods over
  1.5 x interval, and |period - interval| / interval between cycle starts.
"""


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def cells(r: RowResult) -> list[str]:
    recorded = ",".join(f"{k}:{n}" for k, n in sorted(r.recorded.items())) or "none"
    recovered = "-" if r.worst_health == "healthy" else _secs(r.recovered_s)
    return [
        r.name,
        "-" if r.hits is None else str(r.hits),
        r.expected or "none",
        recorded,
        r.worst_health,
        _secs(r.quarantined_s),
        recovered,
        str(r.healthy_cycles),
        str(r.missed),
        _pct(r.p50),
        _pct(r.p99),
        _pct(max(r.deviations, default=None)),
        "ok" if r.ok else "FAIL",
    ]


def line(values: list[str]) -> str:
    return "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, (_, w)) in enumerate(
        zip(values, COLUMNS, strict=True)))  # fmt: skip


def summary(results: list[RowResult], cfg: MatrixConfig, took: float, load0: list) -> dict:
    every = [d for r in results for d in r.deviations]
    return {
        "rows": len(results),
        "failed_rows": [r.name for r in results if not r.ok],
        "healthy_cycles": sum(r.healthy_cycles for r in results),
        "missed_cycles": sum(r.missed for r in results),
        "period_deviation_p50": percentile(every, 50),
        "period_deviation_p99": percentile(every, 99),
        "period_deviation_max": max(every, default=None),
        "seconds": round(took, 1),
        "config": asdict(cfg),
        "machine": {
            "nproc": os.cpu_count(),
            # Other work on the machine shows in the periods: 1-minute load at start and end.
            "load_1m": [load0[0], round(os.getloadavg()[0], 2)],
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", help="comma-separated substrings of row names to run")
    parser.add_argument("--seconds-per-row", type=float, default=4.0, help="fault held (s)")
    parser.add_argument("--recovery-timeout", type=float, default=15.0, help="wait for healthy")
    parser.add_argument("--interval", type=float, default=1.0, help="cycle interval (s)")
    parser.add_argument("--list", action="store_true", help="list the rows and exit")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument("--workdir", type=Path, help="keep data dirs and logs here")
    args = parser.parse_args(argv)

    rows = select(all_rows(), args.rows)
    if args.list:
        for row in rows:
            print(f"{row.name:32} expected {row.expected or 'no failure'}")
        return 0
    if not rows:
        print(f"no row matches {args.rows!r} (see --list)", file=sys.stderr)
        return 2
    cfg = MatrixConfig(
        interval=args.interval,
        seconds_per_row=args.seconds_per_row,
        recovery_timeout=args.recovery_timeout,
    )

    def progress(r: RowResult) -> None:
        if not args.json:
            print(line(cells(r)), flush=True)
            for problem in r.problems:
                print(f"    ! {problem}", flush=True)

    if not args.json:
        print(line([name for name, _ in COLUMNS]))
    started, load0 = time.monotonic(), [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="nija-fault-matrix-") as tmp:
        results = run_matrix(rows, cfg, args.workdir or Path(tmp), progress)
    doc = summary(results, cfg, time.monotonic() - started, load0)
    if args.json:
        rows_out = [
            {
                **asdict(r),
                "ok": r.ok,
                "p50": r.p50,
                "p99": r.p99,
                "max": max(r.deviations, default=None),
            }
            for r in results
        ]
        for row in rows_out:
            row.pop("deviations")
        print(json.dumps({"results": rows_out, "summary": doc}, indent=2))
    else:
        print(LEGEND)
        print(
            f"{doc['rows']} rows in {doc['seconds']} s; healthy accounts: "
            f"{doc['healthy_cycles']} cycles, {doc['missed_cycles']} missed; period deviation "
            f"p50 {_pct(doc['period_deviation_p50'])}%, p99 {_pct(doc['period_deviation_p99'])}%, "
            f"max {_pct(doc['period_deviation_max'])}% (interval {cfg.interval:g} s); "
            f"{doc['machine']['nproc']} CPUs, 1-min load {doc['machine']['load_1m']}"
        )
        print("FAILED: " + "; ".join(doc["failed_rows"]) if doc["failed_rows"] else "all rows ok")
    return 1 if doc["failed_rows"] else 0


if __name__ == "__main__":
    sys.exit(main())
