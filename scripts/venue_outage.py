#!/usr/bin/env python3
"""A venue outage: does NIJA park the down venue's accounts, and leave the other venue alone?

Runs the real bot.py (live mode) over the loopback emulators: ``--accounts`` accounts on
Kraken, which answers 503 to every request for ``--outage-seconds``, and
``--healthy-accounts`` on Binance, which stays up (nija_testkit/reliability/venue_outage.py
has the measuring). Prints the requests Kraken received during the outage (before and after
the daemon declared it down), the breakers that moved, how long after the outage every
Kraken account traded again and how the resumes were spread, and the Binance accounts'
missed cycles.

Exit status 1 when a promise is broken: the venue not declared down (or up again), more
requests after venue_down than one per probe interval plus the calls in flight, a circuit
opened, an account not trading again, a missed cycle on Binance, venue_down / venue_up not
logged exactly once.

Usage: python3 scripts/venue_outage.py [--accounts 100] [--outage-seconds 300] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from nija_testkit.reliability.venue_outage import OutageConfig, OutageReport, run_outage


def summary(r: OutageReport, load0: float) -> dict:
    """The report as one JSON-able document, with the machine it ran on."""
    doc = asdict(r)
    doc.pop("resumes")
    doc["resume_spread_s"] = r.resume_spread()
    doc["ok"] = r.ok
    doc["machine"] = {
        "date": datetime.now(UTC).date().isoformat(),
        "nproc": os.cpu_count(),
        "load_1m": [load0, round(os.getloadavg()[0], 2)],  # other work shows in the timings
        "python": platform.python_version(),
    }
    return doc


def text(doc: dict) -> str:
    cfg = doc["config"]
    spread = doc["resume_spread_s"]
    lines = [
        f"{cfg['accounts']} accounts on KRAKEN (503 to everything for {cfg['outage_seconds']:g} s),"
        f" {cfg['healthy_accounts']} on BINANCE; cycles {cfg['interval']:g} s, probe every"
        f" {cfg['probe_seconds']:g} s, resumes spread over {cfg['resume_seconds']:g} s",
        f"declared down after      {doc['detected_s']} s (venue_down x{doc['venue_down_lines']})",
        f"requests to KRAKEN       {doc['requests_during']} during the outage: "
        f"{doc['requests_before_down']} before venue_down, {doc['requests_after_down']} after "
        f"({doc['probes_after_down']} probes; allowed {doc['allowed_after_down']})",
        f"  by route               {doc['routes_during']}",
        f"breakers moved           circuits opened {len(doc['circuits_opened'])},"
        f" health degraded (circuit closed) {doc['degraded']}",
        f"back up after            {doc['up_after_s']} s (venue_up x{doc['venue_up_lines']})",
        f"every account trading    {doc['all_back_after_s']} s after the outage;"
        f" resumes after venue_up: first {spread['first']} s, median {spread['median']} s,"
        f" last {spread['last']} s; at most {doc['busiest_second']} in one second;"
        f" not back: {len(doc['not_back'])}",
        f"BINANCE accounts         {doc['healthy_cycles']} cycles, {doc['healthy_missed']} missed",
        f"isolation_guarantee      {doc['isolation']}",
        f"{doc['seconds']} s in all; {doc['machine']['nproc']} CPUs, 1-min load"
        f" {doc['machine']['load_1m']}, {doc['machine']['date']}",
    ]
    lines.append(
        "FAILED: " + "; ".join(doc["problems"]) if doc["problems"] else "all promises held"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100, help="accounts on the down venue")
    parser.add_argument("--healthy-accounts", type=int, default=10, help="on the other venue")
    parser.add_argument("--outage-seconds", type=float, default=300.0)
    parser.add_argument("--interval", type=float, default=10.0, help="cycle interval (s)")
    parser.add_argument("--probe-seconds", type=float, default=15.0)
    parser.add_argument("--resume-seconds", type=float, default=10.0)
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument("--workdir", type=Path, help="keep the data dir and nija.log here")
    args = parser.parse_args(argv)
    cfg = OutageConfig(
        accounts=args.accounts,
        healthy_accounts=args.healthy_accounts,
        outage_seconds=args.outage_seconds,
        interval=args.interval,
        probe_seconds=args.probe_seconds,
        resume_seconds=args.resume_seconds,
    )
    load0 = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="nija-venue-outage-") as tmp:
        report = run_outage(cfg, args.workdir or Path(tmp))
    doc = summary(report, load0)
    print(json.dumps(doc, indent=2) if args.json else text(doc))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
