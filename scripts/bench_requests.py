#!/usr/bin/env python3
"""Requests to one venue per cycle, by route: N accounts on the Kraken emulator, one daemon.

For each count the real bot.py trades that many Kraken user accounts (paper mode by
default), all on the same symbols (``BTC/USD``, ``ETH/USD``), against the Kraken emulator
running in this process. The emulator records every request with its route and time.
After every account has cycled once and a warm-up, the script measures a window and
reports, per route:

* requests per venue cycle (window ÷ cycle interval) and per account-cycle (``cycle``
  lines of nija.log in the window);
* public (``/0/public``) and private (``/0/private``) totals;
* candle requests per candle close: the OHLC requests of each whole candle period inside
  the window, summed over symbols. The venue's market data needs one request per
  distinct (symbol, timeframe) pair per close: 2 here.

With ``--hold SOL=1`` every account also holds 1 SOL at the venue, so its balance values a
holding (a ``SOL/USD`` ticker): in live mode every cycle's balance, and the funded check in
both modes. ``tickers_per_minute`` is then what valuing it costs the venue. Hold a coin the
accounts do not trade: one they trade (BTC here) is adopted at reconciliation and soon sold
by the strategy's exits, after which there is nothing left to value.

The default timeframe is 1m (``NIJA_TIMEFRAME``) so a window of a few minutes holds
whole candle periods: the window starts a second before a candle closes (default: two
periods and two seconds). The cycle interval grows with the count (default
max(5, 0.06 x N) s) so the emulator, which shares the machine with the daemon, keeps up.

Aim (exit code 1 when missed, ``--check``): candle requests per candle close equal the
distinct (symbol, timeframe) pairs at every count; with ``--hold``, the held coin's ticker
is asked at most once per valuation age (30 s) in the window, whatever the count.

Usage: python3 scripts/bench_requests.py [--counts 1,10,100,500] [--mode paper|live]
       [--hold ASSET=Q] [--timeframe 1m] [--interval S] [--window S] [--check] [--json]
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bot.model import Credentials, timeframe_seconds
from bot.venue.market import DEFAULT_VALUATION_AGE_SECONDS
from nija_testkit.emulator.server import Recorded
from nija_testkit.emulator.venues import VenueHandle, start_venue
from nija_testkit.harness import (
    DaemonRun,
    account_env,
    clean_env,
    parse_log,
    start_daemon,
    wait_for,
)

SYMBOLS = ("BTC/USD", "ETH/USD")


def call_timeout(n: int) -> float:
    """NIJA_CALL_TIMEOUT_SECONDS: the funded check's deadline covers every account's first
    balance answer (32 at a time, seconds each on Kraken with ccxt's request spacing), and
    an account whose check timed out would not trade in the window."""
    return max(10.0, round(0.3 * n))


@dataclass
class RequestRun:
    """The figures of one daemon run with ``accounts`` accounts."""

    accounts: int
    mode: str
    timeframe: str
    interval_s: float
    hold: str = ""  # what each account holds at the venue beside its USD, e.g. SOL=1
    stopped: bool = True  # False: the daemon did not stop within 60 s of SIGTERM (killed)
    trading: int = 0  # accounts whose thread had cycled when the window began
    window_s: float = 0.0
    account_cycles: int = 0
    venue_cycles: float = 0.0  # window / interval
    load_1min: float = 0.0  # the machine's load average at the end of the window
    routes: dict[str, int] = field(default_factory=dict)  # route -> requests in the window
    public: int = 0
    private: int = 0
    candle_closes: int = 0  # whole candle periods inside the window
    candles_per_close: float | None = None  # candle requests per candle period (all symbols)
    candles_per_close_max: int | None = None
    pairs: int = len(SYMBOLS)

    def per_venue_cycle(self, n: int) -> float:
        return round(n / self.venue_cycles, 2) if self.venue_cycles else 0.0

    def per_account_cycle(self, n: int) -> float:
        return round(n / self.account_cycles, 3) if self.account_cycles else 0.0


def default_interval(n: int) -> float:
    return max(5.0, round(0.06 * n, 1))


def holding(spec: str) -> dict[str, float]:
    """``SOL=1`` as balances (empty: USD only)."""
    if not spec:
        return {}
    asset, _, qty = spec.partition("=")
    return {asset.strip().upper(): float(qty)}


def kraken_credentials(i: int) -> Credentials:
    """Recognisable fakes; Kraken secrets are base64."""
    secret = base64.b64encode(f"FAKE-KRAKEN-BENCH-SECRET-{i:05d}".encode()).decode()
    return Credentials(f"FAKE-KRAKEN-BENCH-{i:05d}", secret)


def is_public(req: Recorded) -> bool:
    return req.path.startswith("/0/public/")


def run_once(n: int, args: argparse.Namespace, workdir: Path) -> RequestRun:
    """Start a daemon with ``n`` Kraken accounts and count the venue's requests in a window."""
    interval = args.interval or default_interval(n)
    tf = timeframe_seconds(args.timeframe)
    window = args.window or 2 * tf + 2
    run = RequestRun(n, args.mode, args.timeframe, interval, args.hold)
    handle: VenueHandle = start_venue("KRAKEN")
    env = clean_env(
        NIJA_MODE=args.mode,
        NIJA_TIMEFRAME=args.timeframe,
        NIJA_CYCLE_SECONDS=str(interval),
        NIJA_CALL_TIMEOUT_SECONDS=str(call_timeout(n)),
        NIJA_STATUS_LOG_SECONDS="3600",
        NIJA_FUNDED_RECHECK_SECONDS="3600",
        KRAKEN_BASE_URL=handle.server.url,
        KRAKEN_SYMBOLS=",".join(SYMBOLS),
    )
    keys = []
    for i in range(n):
        creds = kraken_credentials(i)
        held = holding(args.hold)
        handle.venue.add_account(creds.api_key, creds.api_secret, {"USD": 10_000.0, **held})
        env.update(account_env("KRAKEN", f"b{i:04d}", creds))
        keys.append(f"user/b{i:04d}/KRAKEN")
    workdir.mkdir(parents=True, exist_ok=True)
    daemon = start_daemon(env, workdir, output=workdir / "out.txt")
    try:
        try:
            wait_for(lambda: _started(daemon, keys), 120 + n * 0.5, f"first cycles of {n}")
        except AssertionError:  # measured with the accounts that trade; the count says so
            print(f"... not every one of {n} accounts started", file=sys.stderr, flush=True)
        time.sleep(interval)  # past the start-up burst (funded checks, market metadata)
        accts = daemon.status().get("accounts", {})
        run.trading = sum(1 for k in keys if accts.get(k, {}).get("cycles", 0) >= 1)
        measure(daemon, handle, run, window, tf)
        if not daemon.alive():
            raise RuntimeError(f"the daemon with {n} accounts exited ({daemon.proc.returncode})")
    finally:
        try:
            daemon.stop(timeout=60)
        except subprocess.TimeoutExpired:  # killed: what was measured stands
            run.stopped = False
            print(f"... the daemon of {n} did not stop in 60 s: killed", file=sys.stderr)
        handle.stop()
    return run


def _started(daemon: DaemonRun, keys: list[str]) -> bool:
    if not daemon.alive():
        raise RuntimeError(f"the daemon exited early (code {daemon.proc.returncode})")
    accts = daemon.status().get("accounts", {})
    return all(accts.get(k, {}).get("cycles", 0) >= 1 for k in keys)


def measure(daemon: DaemonRun, handle: VenueHandle, run: RequestRun, window: float, tf: int):
    """Count the requests and cycles of ``window`` seconds from a second before a close."""
    wall_of_mono = time.time() - time.monotonic()
    time.sleep((-time.time() - 1) % tf)  # candles close on the emulator's (wall) grid
    start = time.monotonic()
    start_wall = datetime.now(UTC)
    time.sleep(window)
    end = time.monotonic()
    end_wall = datetime.now(UTC)
    run.load_1min = round(os.getloadavg()[0], 2)
    with handle.server._lock:  # the server appends from its request threads
        reqs = [r for r in handle.server.requests if start <= r.at < end]
    run.window_s = round(end - start, 1)
    run.venue_cycles = round(run.window_s / run.interval_s, 2)
    run.account_cycles = sum(
        1
        for e in parse_log(daemon.log_path)
        if e.event == "cycle" and start_wall <= e.at <= end_wall
    )
    run.routes = dict(sorted(Counter(r.route or r.path for r in reqs).items()))
    run.public = sum(1 for r in reqs if is_public(r))
    run.private = len(reqs) - run.public
    # Candle requests per whole candle period inside the window (periods of the venue's
    # clock: the emulator's candles are aligned to multiples of the timeframe).
    first = math.ceil((start + wall_of_mono) / tf)
    last = math.floor((end + wall_of_mono) / tf)  # periods [first, last) are whole
    per_period = Counter(
        math.floor((r.at + wall_of_mono) / tf) for r in reqs if r.route == "candles"
    )
    whole = [per_period.get(p, 0) for p in range(first, last)]
    run.candle_closes = len(whole)
    if whole:
        run.candles_per_close = round(sum(whole) / len(whole), 2)
        run.candles_per_close_max = max(whole)


def bench(args: argparse.Namespace, workdir: Path) -> dict:
    counts = [int(c) for c in args.counts.split(",")]
    runs = []
    for n in counts:
        runs.append(run_once(n, args, workdir / f"n{n}"))
        # Each count's figures as soon as they are known (a later count may take long).
        print(f"... {n} accounts done: {json.dumps(asdict(runs[-1]))}", file=sys.stderr, flush=True)
    checks = {
        f"{r.accounts} accounts: candle requests per candle close == {r.pairs} pairs": (
            r.candles_per_close_max == r.pairs and r.candles_per_close == r.pairs
        )
        for r in runs
    }
    for r in runs if args.hold else ():
        most = math.ceil(r.window_s / DEFAULT_VALUATION_AGE_SECONDS) + 1  # + one at an edge
        name = f"{r.accounts} accounts: ticker requests <= {most} (one per held symbol per 30 s)"
        checks[name] = r.routes.get("ticker", 0) <= most
    return {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "symbols": list(SYMBOLS),
        "hold": args.hold,
        "runs": [
            {
                **asdict(r),
                "public_per_venue_cycle": r.per_venue_cycle(r.public),
                "private_per_venue_cycle": r.per_venue_cycle(r.private),
                "per_account_cycle": r.per_account_cycle(r.public + r.private),
                "candles_per_account_cycle": r.per_account_cycle(r.routes.get("candles", 0)),
                "private_per_account_cycle": r.per_account_cycle(r.private),
                "routes_per_venue_cycle": {k: r.per_venue_cycle(v) for k, v in r.routes.items()},
                "tickers_per_minute": round(60 * r.routes.get("ticker", 0) / r.window_s, 2)
                if r.window_s
                else 0.0,
            }
            for r in runs
        ],
        "checks": checks,
    }


def render(r: dict) -> str:
    m = r["machine"]
    held = f", each holding {r['hold']}" if r["hold"] else ""
    rows = [
        f"NIJA requests: Kraken user accounts on the emulator, symbols {', '.join(r['symbols'])}"
        f"{held}, "
        f"{m['cpus']} cpus, Python {m['python']}, {r['date']}",
        "",
        f"{'accounts':>8} {'trading':>7} {'mode':>5} {'tf':>3} {'interval':>8} {'acct-cyc':>8}"
        f" {'load':>5}"
        f" {'public/':>8} {'private/':>8} {'req/':>7} {'candles/':>8} {'candles per':>11}",
        f"{'':>8} {'':>7} {'':>5} {'':>3} {'s':>8} {'window':>8} {'1min':>5} {'cycle':>8}"
        f" {'cycle':>8}"
        f" {'acct-cyc':>7} {'acct-cyc':>8} {'close (max)':>11}",
    ]
    for x in r["runs"]:
        per_close = (
            f"{x['candles_per_close']:g} ({x['candles_per_close_max']})"
            if x["candles_per_close"] is not None
            else "-"
        )
        rows.append(
            f"{x['accounts']:>8} {x['trading']:>7} {x['mode']:>5} {x['timeframe']:>3}"
            f" {x['interval_s']:>8g}"
            f" {x['account_cycles']:>8} {x['load_1min']:>5.2f}"
            f" {x['public_per_venue_cycle']:>8.2f} {x['private_per_venue_cycle']:>8.2f}"
            f" {x['per_account_cycle']:>7.3f} {x['candles_per_account_cycle']:>8.3f}"
            f" {per_close:>11}"
        )
    rows.append("")
    rows.append("requests per venue cycle, by route:")
    for x in r["runs"]:
        routes = ", ".join(f"{k} {v:g}" for k, v in x["routes_per_venue_cycle"].items())
        rows.append(f"{x['accounts']:>8}: {routes}; tickers/minute {x['tickers_per_minute']:g}")
    rows.append("")
    rows += [f"{'PASS' if ok else 'FAIL'}  {name}" for name, ok in r["checks"].items()]
    return "\n".join(rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--counts", default="1,10,100,500", help="comma-separated account counts")
    p.add_argument("--mode", choices=("paper", "live"), default="paper")
    p.add_argument("--hold", default="", help="ASSET=QTY each account holds, e.g. SOL=1")
    p.add_argument("--timeframe", default="1m", help="NIJA_TIMEFRAME (default 1m)")
    p.add_argument("--interval", type=float, help="cycle seconds for every count")
    p.add_argument("--window", type=float, help="measured seconds (default >= 2 candles)")
    p.add_argument("--workdir", type=Path, help="keep data and logs here (default: temp)")
    p.add_argument("--check", action="store_true", help="exit 1 unless every check passes")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.workdir:
        result = bench(args, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="nija-requests-") as tmp:
            result = bench(args, Path(tmp))
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0 if not args.check or all(result["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
