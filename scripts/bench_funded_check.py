#!/usr/bin/env python3
"""The funded check of one Kraken account on the loopback emulator: how long it takes.

The daemon's own objects, in this process: ``default_factories`` (one client per account,
the request budgets on, the venue's markets loaded once by a keyless client) and
``FundedChecker``, with ``NIJA_CALL_TIMEOUT_SECONDS`` 2 and 15. For each, the account is
checked four times (the start-up check, then three re-checks), once holding USD only and
once holding BTC as well (valuing it takes one ticker request more). Reported: each
check's seconds (``FundedResult.seconds``: client, metadata, balance), whether it answered,
and how many times the venue's markets were loaded (AssetPairs requests).

Aim (exit code 1 when missed): with a 2 s call timeout every check answers funded.

Usage: python3 scripts/bench_funded_check.py [--checks 4] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import UTC, datetime

from bot.brokers.factory import load_adapters
from bot.config.settings import Settings
from bot.daemon.funded import FundedChecker
from bot.daemon.wiring import default_factories
from bot.isolation.manager import AccountIsolationManager
from bot.model import AccountRef, BrokerSpec
from nija_testkit.emulator.venues import start_venue

HOLDINGS = {"USD": {"USD": 10_000.0}, "USD+BTC": {"USD": 10_000.0, "BTC": 0.1}}


def measure(holding: str, timeout: float, checks: int) -> dict:
    """One account, ``checks`` funded checks through the daemon's factories."""
    handle = start_venue("KRAKEN", balances=HOLDINGS[holding])
    try:
        settings = Settings(call_timeout_seconds=timeout)
        spec = BrokerSpec(
            AccountRef("platform", "platform", "KRAKEN"),
            handle.credentials,
            symbols=("BTC/USD", "ETH/USD"),
            base_url=handle.server.url,
            timeout_seconds=timeout,  # rate_limit stays True: the budgets are on
        )
        load_adapters([spec])
        factories = default_factories(settings)
        checker = FundedChecker(
            factories.venue,
            AccountIsolationManager(),
            min_balance_usd=settings.min_balance_usd,
            timeout_seconds=timeout,
            waited=factories.waited,
        )
        rows = []
        for _ in range(checks):
            (result,) = checker.check([spec])
            rows.append({"seconds": round(result.seconds, 2), "funded": result.funded})
        return {
            "holding": holding,
            "timeout_s": timeout,
            "checks": rows,
            "markets_loads": len(handle.server.requests_to("markets")),
        }
    finally:
        handle.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=4)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    runs = [measure(h, t, max(1, min(args.checks, 20))) for h in HOLDINGS for t in (2.0, 15.0)]
    report = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, load {os.getloadavg()[0]:.2f}",
        "runs": runs,
    }
    ok = all(c["funded"] for r in runs if r["timeout_s"] == 2.0 for c in r["checks"])
    if args.json:
        print(json.dumps(report | {"ok": ok}, indent=2))
    else:
        print(f"{report['date']}  {report['machine']}")
        print("holding   timeout  markets loads  checks (seconds, answered funded?)")
        for r in runs:
            cells = "  ".join(
                f"{c['seconds']:.2f}{'' if c['funded'] else ' (no)'}" for c in r["checks"]
            )
            print(f"{r['holding']:<9} {r['timeout_s']:>5.0f} s  {r['markets_loads']:>13}  {cells}")
        print("aim met" if ok else "AIM MISSED: a check with a 2 s timeout did not answer")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
