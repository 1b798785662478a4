#!/usr/bin/env python3
"""Store writes per second on each backend: SQLite (the file) and PostgreSQL.

Each of N threads is one account with its own ``Store``, as in the daemon, and runs
order cycles: ``record_order`` (a new client id, stored before sending) then
``update_order`` (the venue's answer: filled). Two committed writes per cycle, each its
own transaction. Wall time from a common start to the last thread's end; writes per
second are all threads' committed writes over that time. A write that fails (SQLite's
busy timeout, 2 s, running out under many writers) is counted and reported, not retried:
in the daemon it is that account's failed cycle.

SQLite runs as the daemon runs it (WAL, ``synchronous=FULL``) in a temporary directory.
PostgreSQL runs on a throwaway server (``nija_testkit.postgres``) with its durable
defaults (fsync, synchronous commit) on 127.0.0.1, or on ``--database-url``. Every
figure is the best of ``--rounds`` runs, the backends interleaved, so that a busy
machine slows them alike.

Usage: python3 scripts/bench_store.py [--threads 1,4,16] [--cycles 300] [--rounds 3]
       [--backend both|sqlite|postgresql] [--database-url URL] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from bot.store.backend import Database
from bot.store.pg import PostgresDatabase
from bot.store.sqlite import SqliteDatabase
from bot.store.writer import OrderRecord, Store, StoreError
from nija_testkit.postgres import PostgresServer, find_bin_dir, missing_reason

WRITES_PER_CYCLE = 2
RUN_TIMEOUT_SECONDS = 600.0


def _order(key: str, n: int) -> OrderRecord:
    return OrderRecord(
        f"bench-{n}", key, f"intent-{n}", "BTC/USD", "buy", "market", 0.001, None, None, "entry"
    )


def run(database: Database, threads: int, cycles: int) -> tuple[float, int]:
    """Committed writes per second of ``threads`` accounts doing ``cycles`` order cycles
    each, and how many writes failed."""
    database.prepare()
    barrier = threading.Barrier(threads + 1)
    errors: list[BaseException] = []
    failed = [0] * threads
    run_id = f"{time.monotonic_ns()}"

    def account(i: int) -> None:
        key = f"user/bench{i}-{run_id}/KRAKEN"
        try:
            with Store(database, key, create=False) as store:
                barrier.wait()
                for n in range(cycles):
                    try:
                        store.record_order(_order(key, n))
                    except StoreError:
                        failed[i] += WRITES_PER_CYCLE  # its update has nothing to update
                        continue
                    try:
                        store.update_order(f"bench-{n}", status="filled", filled=0.001)
                    except StoreError:
                        failed[i] += 1
        except BaseException as exc:  # reported after the run
            errors.append(exc)
            barrier.abort()

    workers = [threading.Thread(target=account, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    started = time.perf_counter()
    for w in workers:
        w.join(RUN_TIMEOUT_SECONDS)
    elapsed = time.perf_counter() - started
    if errors or any(w.is_alive() for w in workers):
        raise SystemExit(f"the run failed: {errors[:1] or 'a thread did not finish'}")
    return (threads * cycles * WRITES_PER_CYCLE - sum(failed)) / elapsed, sum(failed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,4,16", help="thread counts, comma-separated")
    parser.add_argument("--cycles", type=int, default=300, help="order cycles per thread")
    parser.add_argument("--rounds", type=int, default=3, help="runs per figure; best kept")
    parser.add_argument("--backend", choices=("both", "sqlite", "postgresql"), default="both")
    parser.add_argument("--database-url", help="an existing PostgreSQL (default: a throwaway)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.threads.split(",")]

    server: PostgresServer | None = None
    makers: dict[str, Callable[[int], Database]] = {}
    with tempfile.TemporaryDirectory(prefix="nija-bench-store-") as tmp:
        if args.backend in ("both", "sqlite"):
            makers["sqlite"] = lambda i: SqliteDatabase(Path(tmp) / f"bench-{i}.db")
        if args.backend in ("both", "postgresql"):
            url = args.database_url
            if url is None:
                bin_dir = find_bin_dir()
                if bin_dir is None:
                    raise SystemExit(missing_reason())
                server = PostgresServer(bin_dir, durable=True).start()
                url = server.url()
            pg_url = url
            makers["postgresql"] = lambda i: PostgresDatabase(
                pg_url, "paper", max_connections=max(counts) + 4
            )
        try:
            best: dict[str, dict[int, float]] = {name: {} for name in makers}
            failures: dict[str, dict[int, int]] = {name: {} for name in makers}
            run_no = 0
            for _ in range(args.rounds):
                for threads in counts:
                    for name, make in makers.items():
                        run_no += 1
                        database = make(run_no)
                        try:
                            rate, failed = run(database, threads, args.cycles)
                        finally:
                            database.close()
                        best[name][threads] = max(rate, best[name].get(threads, 0.0))
                        failures[name][threads] = failures[name].get(threads, 0) + failed
        finally:
            if server is not None:
                server.stop()

    report = {
        "date": date.today().isoformat(),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, {platform.system()}",
        "python": platform.python_version(),
        "load_average": [round(x, 1) for x in os.getloadavg()],
        "cycles_per_thread": args.cycles,
        "rounds": args.rounds,
        "writes_per_second": {n: {str(t): round(r) for t, r in b.items()} for n, b in best.items()},
        "failed_writes_all_rounds": {
            n: {str(t): f for t, f in b.items()} for n, b in failures.items()
        },
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['date']}, {report['machine']}, Python {report['python']},"
          f" load {report['load_average']}")  # fmt: skip
    print(f"writes/s (record_order + update_order per cycle, {args.cycles} cycles per thread,"
          f" best of {args.rounds})")  # fmt: skip
    print("threads  " + "  ".join(f"{name:>10} {'failed':>7}" for name in best))
    for threads in counts:
        cells = (f"{best[n][threads]:>10,.0f} {failures[n][threads]:>7}" for n in best)
        print(f"{threads:>7}  " + "  ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
