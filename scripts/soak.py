#!/usr/bin/env python3
"""Soak: the real daemon, 20 accounts, 1-second cycles, random faults on and off for N minutes.

The daemon (bot.py, live mode: real orders to the emulators) trades user accounts on the
loopback Alpaca and Coinbase emulators running in this process; a market driver
(``crash_market.CandleDriver``, ``NIJA_TIMEFRAME=1m``) gives every account an entry or an
exit at each candle close, so orders flow once a minute. A seeded RNG arms per-account
faults (``Fault(api_key=...)``: 500/503/429, HTML pages, bad JSON, dropped connections,
hangs past the call timeout, harmless latency) on the account's own routes (its balance,
asked every cycle, and its orders, sent at candle closes) and switches them off again.
Market data is the venue's, fetched once per close for every account (bot.venue): a fault
there is the venue's, never an account's, so the soak leaves it alone. Every request that hits a fault is counted from the fault's own
counter, so "faults injected" is exact; at the end it must equal, account by
account, the failures the daemon recorded (status.json ``failure_breakdown``).

Resident memory, threads and open files of the daemon are sampled from /proc.
The baseline is taken after the warm-up and the final sample at the end, both in a
quiet moment (every fault off, every account back to healthy), so they compare.

Promises (exit code 1 when one is broken): RSS growth ≤ 10 %, threads and file
descriptors unchanged, failures recorded == faults injected for every account,
isolation ACTIVE, every account healthy and cycling at the end, clean SIGTERM stop.

Usage: python3 scripts/soak.py [--minutes 5] [--accounts 20] [--seed 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.model import Credentials, timeframe_seconds
from nija_testkit.emulator.server import Fault
from nija_testkit.emulator.venues import VenueHandle, start_venue
from nija_testkit.harness import DaemonRun, account_env, clean_env, start_daemon, wait_for
from nija_testkit.process_stats import ProcStats, sample
from nija_testkit.reliability.crash_market import CandleDriver
from nija_testkit.secrets import new_pem

CALL_TIMEOUT = 2.0  # NIJA_CALL_TIMEOUT_SECONDS: a hang costs this much of a cycle
UNTIL_OFF = 1_000_000  # ``times`` of a fault that lasts until switched off
RSS_GROWTH_LIMIT = 0.10


@dataclass(frozen=True)
class Kind:
    """One sort of fault: how to make it and whether the daemon must record a failure."""

    name: str
    make: Callable[[], Fault]
    weight: int
    is_failure: bool = True
    max_times: int = 4  # a hang holds a cycle for CALL_TIMEOUT: one per cycle, or it stalls


KINDS = (
    Kind("http_500", lambda: Fault("status", 500), 3),
    Kind("http_503", lambda: Fault("status", 503), 2),
    Kind("http_429", lambda: Fault("status", 429, retry_after=1), 2),
    Kind("html_502", lambda: Fault("html", 502), 2),
    Kind("malformed_json", lambda: Fault("malformed_json"), 2),
    Kind("venue_error", lambda: Fault("venue_error", code="server"), 2),
    Kind("drop", lambda: Fault("drop"), 2),
    Kind("hang", lambda: Fault("hang", seconds=CALL_TIMEOUT + 1), 1, max_times=1),
    Kind("latency", lambda: Fault("latency", seconds=CALL_TIMEOUT * 0.3), 2, is_failure=False),
)
# The account's own calls: its balance every cycle, its orders at candle closes.
ROUTES = (("balance", 4), ("create_order", 1))
TIMEFRAME = "1m"  # NIJA_TIMEFRAME: the driver's signals come at its candle closes


@dataclass
class Account:
    key: str
    api_key: str
    handle: VenueHandle


@dataclass
class Armed:
    """One injected fault while it is on."""

    account: Account
    kind: Kind
    route: str
    fault: Fault
    times: int
    off_at: float

    def hits(self) -> int:
        """Requests that met this fault (the emulator counts ``times`` down on each)."""
        return self.times - max(0, self.fault.times or 0)


class FaultSchedule:
    """Switches per-account faults on and off at random (seeded), at most one per account."""

    def __init__(self, rng: random.Random, accounts: list[Account], p_on: float) -> None:
        self.rng, self.accounts, self.p_on = rng, accounts, p_on
        self.on: dict[str, Armed] = {}
        self.armed: Counter = Counter()  # by kind
        self.hits: Counter = Counter()  # by kind
        self.hits_by_route: Counter = Counter()
        self.failing_hits: Counter = Counter()  # by account: what the daemon must record

    def tick(self, now: float) -> None:
        for key, armed in list(self.on.items()):
            if now >= armed.off_at or (armed.fault.times or 0) <= 0:
                self._off(key)
        for acct in self.accounts:
            if acct.key not in self.on and self.rng.random() < self.p_on:
                self._arm(acct, now)

    def all_off(self) -> None:
        for key in list(self.on):
            self._off(key)

    def _arm(self, acct: Account, now: float) -> None:
        kind = self.rng.choices(KINDS, [k.weight for k in KINDS])[0]
        route = self.rng.choices([r for r, _ in ROUTES], [w for _, w in ROUTES])[0]
        if kind.max_times > 1 and self.rng.random() < 0.25:
            times, off_at = UNTIL_OFF, now + self.rng.uniform(2.0, 6.0)  # on, then off
        else:
            times, off_at = self.rng.randint(1, kind.max_times), now + 10.0
        fault = kind.make()
        fault.times, fault.api_key = times, acct.api_key
        acct.handle.server.inject(route, fault)
        self.on[acct.key] = Armed(acct, kind, route, fault, times, off_at)
        self.armed[kind.name] += 1

    def _off(self, key: str) -> None:
        armed = self.on.pop(key)
        armed.account.handle.server.remove_fault(armed.route, armed.fault)
        hits = armed.hits()
        self.hits[armed.kind.name] += hits
        self.hits_by_route[armed.route] += hits
        if armed.kind.is_failure:
            self.failing_hits[armed.account.key] += hits


# -- set-up -----------------------------------------------------------------------------
def make_accounts(venues: dict[str, VenueHandle], n: int) -> tuple[list[Account], dict]:
    """``n`` user accounts spread over the venues, each with its own key; their env vars."""
    accounts, env = [], {}
    brokers = sorted(venues)
    for i in range(n):
        broker = brokers[i % len(brokers)]
        handle = venues[broker]
        if broker == "COINBASE":
            creds = Credentials(f"organizations/FAKE-SOAK/apiKeys/FAKE-SOAK-{i:03d}", new_pem())
        else:
            creds = Credentials(f"FAKE-{broker}-SOAK-{i:03d}", f"FAKE-SECRET-SOAK-{i:03d}-x9")
        handle.venue.add_account(creds.api_key, creds.api_secret, {"USD": 10000.0})
        account_id = f"soak{i:03d}"
        env.update(account_env(broker, account_id, creds))
        accounts.append(Account(f"user/{account_id}/{broker}", creds.api_key, handle))
    for broker, handle in venues.items():
        env[f"{broker}_BASE_URL"] = handle.server.url
        env[f"{broker}_SYMBOLS"] = ",".join(handle.kind.symbols)  # the ones the driver feeds
    if "ALPACA" in venues:
        env["ALPACA_DATA_URL"] = venues["ALPACA"].server.url
    return accounts, env


def daemon_settings() -> dict[str, str]:
    return {
        "NIJA_MODE": "live",  # a paper account sends its venue no balance or order call
        "NIJA_CYCLE_SECONDS": "1",
        "NIJA_CALL_TIMEOUT_SECONDS": str(CALL_TIMEOUT),
        "NIJA_CB_FAILURE_THRESHOLD": "3",  # a cycle whose every symbol fails opens the circuit
        "NIJA_CB_TIMEOUT_SECONDS": "3",  # ...and it is tried again soon
        "NIJA_STATUS_LOG_SECONDS": "60",
        "NIJA_FUNDED_RECHECK_SECONDS": "60",
        # Cycles of a second on the emulator: far past any venue's limits, on purpose.
        "NIJA_REQUEST_BUDGETS": "false",
        "NIJA_TIMEFRAME": TIMEFRAME,
    }


def start_drivers(venues: dict[str, VenueHandle]) -> list[CandleDriver]:
    """A market driver per venue, following the clock: signals at every candle close."""
    drivers = []
    for handle in venues.values():
        tickers = tuple(s.split("/")[0] for s in handle.kind.symbols)  # each against USD
        driver = CandleDriver(handle.venue.market, tickers, timeframe_seconds(TIMEFRAME))
        driver.activate()
        driver.start()
        drivers.append(driver)
    return drivers


# -- measuring ------------------------------------------------------------------------
def cycles(run: DaemonRun) -> dict[str, int]:
    return {k: a.get("cycles", 0) for k, a in run.status().get("accounts", {}).items()}


def quiet_sample(run: DaemonRun, keys: list[str], timeout: float = 90.0) -> ProcStats:
    """With every fault off: wait until every account did 2 more cycles and is healthy again."""
    before = cycles(run)

    def settled() -> bool:
        accts = run.status().get("accounts", {})
        return all(
            accts.get(k, {}).get("cycles", 0) >= before.get(k, 0) + 2
            and accts[k].get("health") == "healthy"
            for k in keys
        )

    wait_for(settled, timeout, "every account healthy and cycling with faults off", 0.25)
    time.sleep(1.0)  # status.json is rewritten at most every 0.5 s
    # A request in flight holds a socket for a moment; a leak raises the floor, so keep the
    # sample with the fewest descriptors out of five taken over a second.
    taken = []
    for _ in range(5):
        taken.append(sample(run.proc.pid))
        time.sleep(0.2)
    return min(taken, key=lambda s: s.fds)


def recorded_failures(status: dict) -> dict[str, int]:
    return {
        k: sum(a.get("failure_breakdown", {}).values())
        for k, a in status.get("accounts", {}).items()
    }


@dataclass
class Measured:
    """What the driving loop saw."""

    startup_s: float
    baseline: ProcStats
    end: ProcStats
    samples: list[ProcStats]
    status: dict


def drive(run: DaemonRun, schedule: FaultSchedule, keys: list[str], args) -> Measured:
    """Wait for every first cycle, then switch faults for --minutes, sampling once a tick."""
    started = time.monotonic()
    wait_for(
        lambda: len(cycles(run)) == len(keys) and min(cycles(run).values()) >= 1,
        60,
        "every account's first cycle",
    )
    startup_s = time.monotonic() - started
    total = args.minutes * 60.0
    end_at = time.monotonic() + total
    warmup_end, baseline = time.monotonic() + warmup_seconds(args), None
    samples: list[ProcStats] = []
    while time.monotonic() < end_at:  # bounded by --minutes
        if not run.alive():
            raise RuntimeError(f"the daemon exited (code {run.proc.returncode})")
        if baseline is None and time.monotonic() >= warmup_end:
            schedule.all_off()
            baseline = quiet_sample(run, keys)
        else:
            schedule.tick(time.monotonic())
        samples.append(sample(run.proc.pid))
        time.sleep(args.switch_seconds)
    schedule.all_off()
    end = quiet_sample(run, keys)
    return Measured(startup_s, baseline or samples[0], end, samples, run.status())


def warmup_seconds(args) -> float:
    return min(60.0, args.minutes * 60.0 * 0.2)


def run_soak(args: argparse.Namespace, workdir: Path) -> dict:
    venues = {b: start_venue(b) for b in args.venues.split(",")}
    accounts, env = make_accounts(venues, args.accounts)
    keys = [a.key for a in accounts]
    schedule = FaultSchedule(random.Random(args.seed), accounts, args.p_on)
    drivers = start_drivers(venues)
    try:
        run = start_daemon(
            clean_env(**daemon_settings(), **env), workdir, output=workdir / "out.txt"
        )
        try:
            m = drive(run, schedule, keys, args)
        finally:
            schedule.all_off()
            stop_started = time.monotonic()
            exit_code = run.stop(timeout=20)
            stop_s = time.monotonic() - stop_started
    finally:
        for driver in drivers:
            driver.stop()
        for handle in venues.values():
            handle.stop()
    recorded = recorded_failures(m.status)
    injected = schedule.failing_hits
    mismatched = {
        k: {"injected": injected.get(k, 0), "recorded": recorded.get(k, 0)}
        for k in keys
        if injected.get(k, 0) != recorded.get(k, 0)
    }
    report = m.status.get("isolation_report", {})
    accts = m.status.get("accounts", {})
    breakdown: Counter = Counter()
    for a in accts.values():
        breakdown.update(a.get("failure_breakdown", {}))
    first = m.samples[0]
    result = {
        "accounts": len(keys),
        "venues": {b: sum(1 for a in accounts if a.handle is h) for b, h in venues.items()},
        "minutes": args.minutes,
        "warmup_seconds": warmup_seconds(args),
        "seed": args.seed,
        "startup_seconds": round(m.startup_s, 2),
        "cycles_total": sum(a.get("cycles", 0) for a in accts.values()),
        "rss_mb": {
            "warmup": m.baseline.rss_mb,
            "end": m.end.rss_mb,
            "max": max(s.rss_mb for s in m.samples),
        },
        "rss_growth_pct": round((m.end.rss_kb / m.baseline.rss_kb - 1) * 100, 2),
        "rss_mb_each_minute": each_minute(m.samples),
        "threads": _span(m, "threads"),
        "fds": _span(m, "fds"),
        "cpu_percent": round(
            100 * (m.end.cpu_seconds - first.cpu_seconds) / (m.end.at - first.at), 1
        ),
        "faults_armed": sum(schedule.armed.values()),
        "faults_armed_by_kind": dict(schedule.armed),
        "fault_hits_by_kind": dict(schedule.hits),
        "fault_hits_by_route": dict(schedule.hits_by_route),
        "faults_injected": sum(injected.values()),
        "failures_recorded": sum(recorded.values()),
        "failures_recorded_by_type": dict(breakdown),
        "isolation_report_total_failures": report.get("total_failures_across_all_accounts"),
        "quarantines": report.get("total_quarantines"),
        "isolation_guarantee": report.get("isolation_guarantee"),
        "mismatched_accounts": mismatched,
        "thread_restarts": sum(a.get("restarts", 0) for a in accts.values()),
        "unhealthy_at_end": [k for k, a in accts.items() if a["health"] != "healthy"],
        "stop_exit_code": exit_code,
        "stop_seconds": round(stop_s, 2),
    }
    result["checks"] = checks(result)
    return result


def each_minute(samples: list[ProcStats]) -> list[float]:
    """RSS at the first sample of every minute: a plateau, or a slope a longer soak would show."""
    firsts: dict[int, float] = {}
    for s in samples:
        firsts.setdefault(int((s.at - samples[0].at) // 60), round(s.rss_mb, 1))
    return list(firsts.values())


def _span(m: Measured, attr: str) -> dict:
    values = [getattr(s, attr) for s in m.samples]
    return {
        "warmup": getattr(m.baseline, attr),
        "end": getattr(m.end, attr),
        "min": min(values),
        "max": max(values),
    }


def checks(r: dict) -> dict[str, bool]:
    """Each promise and whether it held."""
    return {
        "rss growth <= 10%": r["rss_growth_pct"] <= RSS_GROWTH_LIMIT * 100,
        "threads constant": r["threads"]["end"] == r["threads"]["warmup"],
        # Fewer is no leak: idle HTTP connections may be closed (and collected) at any time.
        "fds constant (no growth)": r["fds"]["end"] <= r["fds"]["warmup"],
        "every fault accounted for": not r["mismatched_accounts"]
        and r["faults_injected"] == r["failures_recorded"] == r["isolation_report_total_failures"],
        "isolation ACTIVE": r["isolation_guarantee"] == "ACTIVE",
        "no thread restarts": r["thread_restarts"] == 0,
        "all healthy at end": not r["unhealthy_at_end"],
        "clean stop": r["stop_exit_code"] == 0,
    }


def render(r: dict) -> str:
    venues = ", ".join(f"{n} {b}" for b, n in r["venues"].items())
    rows = [
        f"NIJA soak: {r['accounts']} accounts ({venues}), 1 s cycles, live mode, "
        f"{r['minutes']} min (warm-up {r['warmup_seconds']:.0f} s), seed {r['seed']}",
        f"machine: {os.cpu_count()} cpus, Python {platform.python_version()}",
        "",
        f"{'figure':34} {'warm-up':>10} {'end':>10}  {'during (min-max)':>17}  aim",
        f"{'resident memory (MB)':34} {r['rss_mb']['warmup']:>10.1f} {r['rss_mb']['end']:>10.1f}"
        f"  {'max ' + format(r['rss_mb']['max'], '.1f'):>17}  growth <= 10% "
        f"(measured {r['rss_growth_pct']:+.2f}%)",
    ]
    rows.append(f"{'RSS each minute (MB)':34} {r['rss_mb_each_minute']}")
    for name in ("threads", "fds"):
        s = r[name]
        during = f"{s['min']}-{s['max']}"
        rows.append(f"{name:34} {s['warmup']:>10} {s['end']:>10}  {during:>17}  constant")
    rows.append("")
    for label, value in (
        ("start-up to every first cycle (s)", r["startup_seconds"]),
        ("account cycles completed", r["cycles_total"]),
        ("daemon CPU (% of one core)", r["cpu_percent"]),
        ("faults switched on", r["faults_armed"]),
        ("faults injected (failing hits)", r["faults_injected"]),
        ("failures recorded (status.json)", r["failures_recorded"]),
        ("failures in isolation report", r["isolation_report_total_failures"]),
        ("quarantines", r["quarantines"]),
        (f"stop after SIGTERM (s, exit {r['stop_exit_code']})", r["stop_seconds"]),
    ):
        rows.append(f"{label:34} {value:>10}")
    rows += [
        "",
        f"{'fault kind':16} {'switched on':>11} {'hits':>6}",
    ]
    for kind in KINDS:
        note = "" if kind.is_failure else "  (not a failure: below the call timeout)"
        rows.append(
            f"{kind.name:16} {r['faults_armed_by_kind'].get(kind.name, 0):>11}"
            f" {r['fault_hits_by_kind'].get(kind.name, 0):>6}{note}"
        )
    rows.append(f"hits by route: {r['fault_hits_by_route']}")
    rows.append(f"failures recorded by type: {r['failures_recorded_by_type']}")
    for key, m in r["mismatched_accounts"].items():
        rows.append(f"MISMATCH {key}: injected {m['injected']}, recorded {m['recorded']}")
    rows += ["", *(f"{'PASS' if ok else 'FAIL'}  {name}" for name, ok in r["checks"].items())]
    return "\n".join(rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=5.0, help="soak length after start-up")
    p.add_argument("--accounts", type=int, default=20)
    p.add_argument("--venues", default="ALPACA,COINBASE", help="comma-separated, non-ccxt")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--p-on", type=float, default=0.05, help="chance per account per tick")
    p.add_argument("--switch-seconds", type=float, default=1.0, help="tick of the fault switch")
    p.add_argument("--workdir", type=Path, help="keep data and nija.log here (default: temp)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = p.parse_args(argv)
    if args.minutes <= 0 or args.accounts < 1:
        p.error("--minutes and --accounts must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nija-soak-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        result = run_soak(args, workdir)
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0 if all(result["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
