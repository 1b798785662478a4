#!/usr/bin/env python3
"""Cost of the isolation gate: microseconds per gate + record pair, and bytes per account.

Measures, in one run:
  * ``can_execute_operation`` + ``record_success`` single-threaded and with 32 threads
    on distinct accounts (wall time per pair across all threads);
  * the ``guard`` context manager (gate + timing + record) the daemon actually uses;
  * pybreaker's ``CircuitBreaker.call`` on a no-op, the same way, for a ratio;
  * tracemalloc bytes per registered account at 10,000 accounts.

Usage: python3 scripts/bench_isolation.py [--pairs N] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import threading
import time
import tracemalloc

from bot.isolation.manager import AccountIsolationManager

THREADS = 32


def _per_call_us(fn, n: int) -> float:
    started = time.perf_counter()
    fn(n)
    return (time.perf_counter() - started) / n * 1e6


def _threaded_us(make_worker, n_per_thread: int) -> float:
    """Wall-clock µs per operation with THREADS threads each doing n_per_thread."""
    barrier = threading.Barrier(THREADS + 1)
    workers = [make_worker(i) for i in range(THREADS)]

    def run(work):
        barrier.wait()
        work(n_per_thread)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join(timeout=600)
    return (time.perf_counter() - started) / (n_per_thread * THREADS) * 1e6


def bench_pair(n: int) -> dict[str, float]:
    mgr = AccountIsolationManager()
    mgr.register_account("user", "bench", "KRAKEN")
    for i in range(THREADS):
        mgr.register_account("user", f"t{i}", "KRAKEN")
    gate, ok = mgr.can_execute_operation, mgr.record_success

    def pair_worker(acct_id: str):
        def work(count: int) -> None:
            for _ in range(count):
                gate("user", acct_id, "KRAKEN")
                ok("user", acct_id, "KRAKEN", 1.0)

        return work

    def guard_worker(acct_id: str):
        def work(count: int) -> None:
            guard = mgr.guard
            for _ in range(count):
                with guard("user", acct_id, "KRAKEN", "ticker"):
                    pass

        return work

    pair_worker("bench")(1000)  # warm-up
    return {
        "pair_us_1_thread": _per_call_us(pair_worker("bench"), n),
        "pair_us_32_threads": _threaded_us(lambda i: pair_worker(f"t{i}"), n // THREADS),
        "guard_us_1_thread": _per_call_us(guard_worker("bench"), n),
        "guard_us_32_threads": _threaded_us(lambda i: guard_worker(f"t{i}"), n // THREADS),
    }


def bench_pybreaker(n: int) -> dict[str, float] | None:
    try:
        import pybreaker
    except ImportError:
        return None
    breakers = [pybreaker.CircuitBreaker(fail_max=5, reset_timeout=300) for _ in range(THREADS)]
    single = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=300)

    def noop() -> None:
        return None

    def worker(breaker):
        def work(count: int) -> None:
            call = breaker.call
            for _ in range(count):
                call(noop)

        return work

    worker(single)(1000)
    return {
        "pybreaker_us_1_thread": _per_call_us(worker(single), n),
        "pybreaker_us_32_threads": _threaded_us(lambda i: worker(breakers[i]), n // THREADS),
    }


def bench_memory(accounts: int = 10_000) -> float:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    mgr = AccountIsolationManager()
    for i in range(accounts):
        mgr.register_account("user", f"user{i:05d}", "KRAKEN")
        # Each account as it looks after some use: a failure type seen, a success timed.
        mgr.record_failure("user", f"user{i:05d}", "KRAKEN", TimeoutError("t"))
        mgr.record_success("user", f"user{i:05d}", "KRAKEN", 2.0)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert len(mgr.get_all_account_statuses()) == accounts
    return grown / accounts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=200_000, help="operations per measurement")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()

    figures: dict[str, float | str | None] = {}
    figures.update(bench_pair(args.pairs))
    figures.update(bench_pybreaker(args.pairs) or {})
    figures["bytes_per_account_at_10000"] = bench_memory()
    if "pybreaker_us_1_thread" in figures:
        figures["ratio_pair_vs_pybreaker_1_thread"] = (
            figures["pair_us_1_thread"] / figures["pybreaker_us_1_thread"]
        )
        figures["ratio_pair_vs_pybreaker_32_threads"] = (
            figures["pair_us_32_threads"] / figures["pybreaker_us_32_threads"]
        )
    figures["machine"] = f"{os.cpu_count()} cores, Python {platform.python_version()}"

    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"isolation benchmark ({figures['machine']}, {args.pairs} operations each)")
    for key, value in figures.items():
        if isinstance(value, float):
            print(f"  {key:<38} {value:10.2f}")
    ok = figures["pair_us_1_thread"] <= 5.0 and figures["bytes_per_account_at_10000"] <= 2048
    print(f"  target (≤ 5 µs per pair, ≤ 2 KB per account): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
