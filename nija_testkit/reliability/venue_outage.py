"""A venue outage: one venue answers 503 to everything for minutes, a second one stays up.

The real bot.py (live mode, on the emulators) trades ``accounts`` user accounts on the loopback Kraken
emulator and ``healthy_accounts`` on the Binance emulator, all running in this process.
After a warm-up (every account cycling), every request to Kraken is answered 503 (the
emulator's fault injection on route ``*``) for ``outage_seconds``, then the fault is lifted.
Measured from the emulator's own request records, nija.log and status.json:

* the requests Kraken received during the outage: before the daemon declared it down
  (the accounts' own failing calls, at most about one cycle's worth of half the accounts),
  and after (the probes: aim one per probe interval, plus the calls already in flight);
* the Kraken accounts whose breaker moved: circuit opened (aim 0), or health degraded;
* from the end of the outage: the probe that found the venue back (``venue_up``), the
  first ok cycle of every Kraken account, and how those resumes were spread;
* the Binance accounts' cycles and missed cycles during the outage and the recovery
  (must be 0: a period over 1.5 x the interval, as in the fault matrix);
* ``venue_down`` and ``venue_up`` each logged once.

Used by scripts/venue_outage.py and its CI test (a short form).
"""

from __future__ import annotations

import base64
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bot.model import Credentials
from nija_testkit import candles as cs
from nija_testkit.emulator.server import Fault
from nija_testkit.emulator.venues import VenueHandle, start_venue
from nija_testkit.harness import DaemonRun, Event, account_env, clean_env, start_daemon, wait_for
from nija_testkit.reliability.fault_matrix import cycle_starts, rhythm

DOWN_VENUE, UP_VENUE = "KRAKEN", "BINANCE"
SYMBOLS = {DOWN_VENUE: ("BTC/USD", "ETH/USD"), UP_VENUE: ("BTC/USDT", "ETH/USDT")}
BALANCES = {DOWN_VENUE: {"USD": 10_000.0}, UP_VENUE: {"USDT": 10_000.0}}
OPENED = {"quarantined", "failing", "recovering"}  # circuit open or half-open


@dataclass(frozen=True)
class OutageConfig:
    """The run's size and timing (seconds)."""

    accounts: int = 100  # on the venue that goes down
    healthy_accounts: int = 10  # on the venue that stays up
    outage_seconds: float = 300.0
    interval: float = 10.0  # every account's cycle
    call_timeout: float = 10.0  # ccxt spaces Kraken's calls: a funded check takes ~4 s
    probe_seconds: float = 15.0  # NIJA_VENUE_PROBE_SECONDS
    resume_seconds: float = 10.0  # NIJA_VENUE_RESUME_SECONDS
    status_seconds: float = 60.0  # NIJA_VENUE_STATUS_SECONDS
    warmup_timeout: float = 240.0
    recovery_timeout: float = 120.0
    # Requests allowed after the venue was declared down, beyond one per probe interval:
    # the calls in flight at that moment (one per account at most) and the probe in flight.
    slack_per_account: float = 1.0


@dataclass
class OutageReport:
    """What the run measured; ``problems`` empty means every promise held."""

    config: OutageConfig
    detected_s: float | None  # outage on → venue_down
    requests_during: int
    requests_before_down: int
    requests_after_down: int
    probes_after_down: int  # status checks (the probe) after venue_down
    allowed_after_down: float
    routes_during: dict[str, int]
    circuits_opened: list[str]  # Kraken accounts whose circuit opened at any time
    degraded: int  # Kraken accounts whose health went degraded (circuit closed)
    up_after_s: float | None  # outage lifted → venue_up
    all_back_after_s: float | None  # outage lifted → the last Kraken account's first ok cycle
    resumes: list[float] = field(repr=False)  # each account's first ok cycle - venue_up
    busiest_second: int = 0  # most Kraken accounts resuming within one second
    not_back: list[str] = field(default_factory=list)
    healthy_cycles: int = 0
    healthy_missed: int = 0
    venue_down_lines: int = 0
    venue_up_lines: int = 0
    isolation: str = "unknown"
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def resume_spread(self) -> dict[str, float | None]:
        """First, median and last resume after venue_up (seconds)."""
        if not self.resumes:
            return {"first": None, "median": None, "last": None}
        ordered = sorted(self.resumes)
        return {
            "first": round(ordered[0], 2),
            "median": round(statistics.median(ordered), 2),
            "last": round(ordered[-1], 2),
        }


def _credentials(broker: str, i: int) -> Credentials:
    if broker == DOWN_VENUE:  # Kraken secrets are base64
        secret = base64.b64encode(f"FAKE-KRAKEN-SECRET-{i}".encode()).decode()
        return Credentials(f"FAKE-KRAKEN-KEY-O{i:04d}", secret)
    return Credentials(f"FAKE-BINANCE-KEY-H{i:04d}", f"FAKE-BINANCE-SECRET-{i}")


def _account_keys(broker: str, n: int) -> list[str]:
    prefix = "o" if broker == DOWN_VENUE else "h"
    return [f"user/{prefix}{i:04d}/{broker}" for i in range(n)]


class Outage:
    """The two emulators and one bot.py over them."""

    def __init__(self, cfg: OutageConfig, workdir: Path) -> None:
        self.cfg = cfg
        self.venues: dict[str, VenueHandle] = {}
        env = clean_env(
            # Live on the emulator: every cycle asks the venue for the account's balance, as
            # real accounts do (paper accounts ask it nothing between two candle closes).
            NIJA_MODE="live",
            NIJA_CYCLE_SECONDS=str(cfg.interval),
            NIJA_CALL_TIMEOUT_SECONDS=str(cfg.call_timeout),
            NIJA_STATUS_LOG_SECONDS="3600",
            NIJA_FUNDED_RECHECK_SECONDS="30",
            NIJA_TIMEFRAME="1m",
            NIJA_VENUE_PROBE_SECONDS=str(cfg.probe_seconds),
            NIJA_VENUE_RESUME_SECONDS=str(cfg.resume_seconds),
            NIJA_VENUE_STATUS_SECONDS=str(cfg.status_seconds),
            # 100 accounts on 10 s cycles ask far more of the emulator than Kraken's budgets
            # allow one IP and key; what is measured here is the venue layer, not the budgets.
            NIJA_REQUEST_BUDGETS="false",
        )
        for broker, n in ((DOWN_VENUE, cfg.accounts), (UP_VENUE, cfg.healthy_accounts)):
            handle = start_venue(broker)
            self.venues[broker] = handle
            for symbol in SYMBOLS[broker]:  # candles that never move: the same work each cycle
                handle.venue.market.set_candles(symbol, cs.rows(cs.flat(price=100.0)))
            prefix = "O" if broker == DOWN_VENUE else "H"
            for i in range(n):
                creds = _credentials(broker, i)
                handle.venue.add_account(creds.api_key, creds.api_secret, BALANCES[broker])
                env.update(account_env(broker, f"{prefix}{i:04d}", creds))
            env[f"{broker}_BASE_URL"] = handle.server.url
            env[f"{broker}_SYMBOLS"] = ",".join(SYMBOLS[broker])
        self.down_keys = _account_keys(DOWN_VENUE, cfg.accounts)
        self.up_keys = _account_keys(UP_VENUE, cfg.healthy_accounts)
        workdir.mkdir(parents=True, exist_ok=True)
        self.run: DaemonRun = start_daemon(env, workdir, output=workdir / "daemon.out")

    @property
    def server(self):
        return self.venues[DOWN_VENUE].server

    def warm(self) -> None:
        """Every account has cycled twice (bounded by ``warmup_timeout``)."""

        def cycled() -> bool:
            accounts = self.run.status().get("accounts", {})
            keys = [*self.down_keys, *self.up_keys]
            return all(accounts.get(k, {}).get("cycles", 0) >= 2 for k in keys)

        wait_for(cycled, self.cfg.warmup_timeout, "two cycles of every account", interval=0.5)

    def close(self) -> None:
        try:
            if self.run.alive():
                self.run.stop(timeout=30)
        finally:
            for handle in self.venues.values():
                handle.stop()


def run_outage(cfg: OutageConfig, workdir: Path) -> OutageReport:
    """Warm up, take the venue down for ``outage_seconds``, bring it back, measure."""
    started = time.monotonic()
    outage = Outage(cfg, workdir)
    try:
        outage.warm()
        mark = len(outage.server.requests)
        wall_on, mono_on = time.time(), time.monotonic()
        outage.server.inject("*", Fault("status", 503))
        time.sleep(cfg.outage_seconds)  # the outage itself: nothing to do but wait
        outage.server.clear_faults()
        wall_off, mono_off = time.time(), time.monotonic()
        _await_recovery(outage, wall_off)
        time.sleep(cfg.interval + 0.5)  # the last cycles reach the log
        status = outage.run.status()
        wall_end = time.time()
        outage.run.stop(timeout=30)
        events = outage.run.events()
        during = [r for r in outage.server.requests[mark:] if mono_on <= r.at <= mono_off]
        report = measure(
            cfg, outage, events, status, during, (wall_on, mono_on), wall_off, wall_end
        )
    finally:
        outage.close()
    report.seconds = round(time.monotonic() - started, 1)
    return report


def _await_recovery(outage: Outage, wall_off: float) -> None:
    """Until every Kraken account has had an ok cycle after the outage (bounded)."""

    def back() -> bool:
        waiting = set(outage.down_keys)
        for e in outage.run.events():
            if _ok_cycle(e, wall_off):
                waiting.discard(e.account or "")
        return not waiting

    try:
        wait_for(back, outage.cfg.recovery_timeout, "every account trading again", interval=1.0)
    except AssertionError:
        return  # reported by measure(): not_back


def _ok_cycle(e: Event, since: float) -> bool:
    """An ok cycle line at or after ``since`` (epoch)."""
    return (
        e.event == "cycle" and e.fields.get("ok") in ("true", "True") and e.at.timestamp() >= since
    )


def measure(
    cfg: OutageConfig,
    outage: Outage,
    events: list[Event],
    status: dict,
    during: list,
    on: tuple[float, float],
    wall_off: float,
    wall_end: float,
) -> OutageReport:
    """The report of one run from what the emulator, the log and status.json hold."""
    wall_on, mono_on = on
    venue_events = [e for e in events if e.fields.get("venue") == DOWN_VENUE]
    downs = [e for e in venue_events if e.event == "venue_down" and e.at.timestamp() >= wall_on]
    ups = [e for e in venue_events if e.event == "venue_up" and e.at.timestamp() >= wall_on]
    t_down = downs[0].at.timestamp() if downs else None
    t_up = next((e.at.timestamp() for e in ups if e.at.timestamp() >= wall_off), None)
    mono_down = None if t_down is None else mono_on + (t_down - wall_on)
    before = [r for r in during if mono_down is None or r.at < mono_down]
    after = [r for r in during if mono_down is not None and r.at >= mono_down]
    probes = sum(1 for r in after if r.route == "system_status")
    down_for = cfg.outage_seconds - (0.0 if t_down is None else t_down - wall_on)
    allowed = down_for / cfg.probe_seconds + 1 + cfg.slack_per_account * cfg.accounts
    opened, degraded = [], 0
    for key in outage.down_keys:
        healths = {
            e.fields.get("new")
            for e in events
            if e.event == "INDEPENDENT_health_changed" and e.account == key
        }
        if healths & OPENED:
            opened.append(key)
        degraded += "degraded" in healths
    resumes, not_back = [], []
    for key in outage.down_keys:
        first_ok = next(
            (e.at.timestamp() for e in events if e.account == key and _ok_cycle(e, wall_off)),
            None,
        )
        if first_ok is None:
            not_back.append(key)
        elif t_up is not None:
            resumes.append(first_ok - t_up)
    healthy_cycles = missed = 0
    for key in outage.up_keys:
        _, m, c = rhythm(cycle_starts(events, key), wall_on, wall_end, wall_end, cfg.interval)
        healthy_cycles, missed = healthy_cycles + c, missed + m
    per_second = Counter(int(r) for r in resumes)
    report = OutageReport(
        config=cfg,
        detected_s=None if t_down is None else round(t_down - wall_on, 2),
        requests_during=len(during),
        requests_before_down=len(before),
        requests_after_down=len(after),
        probes_after_down=probes,
        allowed_after_down=round(allowed, 1),
        routes_during=dict(Counter(r.route or "?" for r in during)),
        circuits_opened=opened,
        degraded=degraded,
        up_after_s=None if t_up is None else round(t_up - wall_off, 2),
        all_back_after_s=None
        if not_back or t_up is None
        else round(max(resumes) + t_up - wall_off, 2),
        resumes=resumes,
        busiest_second=max(per_second.values(), default=0),
        not_back=not_back,
        healthy_cycles=healthy_cycles,
        healthy_missed=missed,
        venue_down_lines=len(downs),
        venue_up_lines=len(ups),
        isolation=status.get("isolation_report", {}).get("isolation_guarantee", "unknown"),
    )
    report.problems = _problems(report)
    return report


def _problems(r: OutageReport) -> list[str]:
    out = []
    if r.detected_s is None:
        out.append("the venue was never declared down")
    if r.requests_after_down > r.allowed_after_down:
        out.append(
            f"{r.requests_after_down} requests after venue_down (allowed {r.allowed_after_down})"
        )
    if r.circuits_opened:
        out.append(f"{len(r.circuits_opened)} account circuit(s) opened: {r.circuits_opened[:5]}")
    if r.up_after_s is None:
        out.append("the venue was never declared up again")
    if r.not_back:
        out.append(f"{len(r.not_back)} account(s) never traded again: {r.not_back[:5]}")
    if r.healthy_missed:
        out.append(f"the healthy venue's accounts missed {r.healthy_missed} cycle(s)")
    if r.venue_down_lines != 1 or r.venue_up_lines != 1:
        out.append(f"venue_down logged {r.venue_down_lines}x, venue_up {r.venue_up_lines}x")
    if r.isolation != "ACTIVE":
        out.append(f"isolation_guarantee is {r.isolation}")
    # Spread over the resume window: about n / window a second (cycle lengths blur it).
    expected = len(r.resumes) / max(1.0, r.config.resume_seconds)
    if r.resumes and r.busiest_second > 2 * expected + 2:
        out.append(f"{r.busiest_second} accounts resumed within one second")
    return out
