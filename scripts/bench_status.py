#!/usr/bin/env python3
"""What one status.json write costs in-process: the figures behind docs/RELIABILITY.md
"CPU and memory at 500 accounts".

For each count in ``--counts``, a supervisor of that many paper accounts on five venues
(``scripts/profile_scrape.py``'s, without its API, masking every account's key and secret
as bot.py's does; one cycle each, then idle) is started,
and ``StatusWriter.write_now`` (build the document, mask it, encode it, write and rename the
file) is timed with ``time.thread_time`` (this thread's CPU, not wall time) over ``--writes``
writes, in two ways:

* **idle**: between two writes the clock moves by the daemon's write interval and nothing
  else changes (an idle daemon; a cycling one changes about one entry in 150 per second);
* **churn**: every account "cycles" between two writes (``Daemon.churn``): every entry
  changes, the worst case.

Figures, each the median of ``--batches`` batches: ms per write, and the share of one core
at the daemon's write rate (``write_interval``: every 0.5 s up to 50 accounts, every N/100 s
above). ``--profile MODE`` prints cProfile's top functions of ``write_now`` at the largest
count instead.

Usage: PYTHONPATH=. python3 scripts/bench_status.py [--counts 100 500] [--writes 40]
[--batches 3] [--profile MODE] (from the checkout's root, as profile_scrape.py).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import structlog
from profile_scrape import Daemon  # this folder is the script's, so on sys.path

from bot.daemon.status import write_interval
from nija_testkit.harness import wait_for

MODES = ("idle", "churn")


def started(accounts: int, data_dir: Path) -> Daemon:
    """A supervisor of ``accounts`` paper accounts, each after its first cycle."""
    daemon = Daemon(accounts, data_dir)
    sup = daemon.sup
    # What bot.py's redactor masks: every account's key and secret (masking costs per secret).
    sup.redactor.learn(
        value for spec in sup.specs.values() for value in spec.credentials.secrets()[:2]
    )
    sup.start_independent_multi_broker_trading()
    wait_for(
        lambda: len(sup.workers) == len(sup.specs) and all(w.cycles for w in sup.workers.values()),
        120,
        "every account's first cycle",
    )
    return daemon


def batch(daemon: Daemon, mode: str, writes: int, profile: cProfile.Profile | None = None) -> float:
    """ms of this thread's CPU per ``write_now`` over ``writes`` writes."""
    interval = write_interval(len(daemon.sup.specs))
    used = 0
    for step in range(writes):
        if mode == "churn":
            daemon.churn(step)
        else:
            daemon.clock.advance(interval)
        if profile is not None:
            profile.enable()
        began = time.thread_time_ns()
        daemon.sup.status.write_now()
        used += time.thread_time_ns() - began
        if profile is not None:
            profile.disable()
    return used / writes / 1e6


def measure(accounts: int, writes: int, batches: int) -> dict[str, object]:
    """The figures of one count."""
    with tempfile.TemporaryDirectory(prefix="nija-bench-status-") as tmp:
        daemon = started(accounts, Path(tmp))
        try:
            interval = write_interval(accounts)
            figures: dict[str, object] = {"write_interval_s": interval}
            for mode in MODES:
                batch(daemon, mode, 2)  # caches as a running daemon has them
                ms = statistics.median(batch(daemon, mode, writes) for _ in range(batches))
                figures[mode] = {
                    "ms_per_write": round(ms, 2),
                    "core_percent": round(ms / (interval * 1000) * 100, 2),
                }
                print(accounts, mode, figures[mode], file=sys.stderr)
            figures["status_bytes"] = (Path(tmp) / "status.json").stat().st_size
        finally:
            daemon.stop()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--writes", type=int, default=40)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--profile", choices=MODES)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    if args.profile:
        with tempfile.TemporaryDirectory(prefix="nija-bench-status-") as tmp:
            daemon = started(max(args.counts), Path(tmp))
            try:
                batch(daemon, args.profile, 2)
                profile = cProfile.Profile()
                batch(daemon, args.profile, args.writes, profile)
            finally:
                daemon.stop()
        pstats.Stats(profile, stream=sys.stdout).sort_stats("tottime").print_stats(25)
        return 0
    result = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average": os.getloadavg()[0],
        "writes": args.writes,
        "batches": args.batches,
        "accounts": {n: measure(n, args.writes, args.batches) for n in args.counts},
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
