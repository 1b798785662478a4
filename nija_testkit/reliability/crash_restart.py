"""Crash and restart: SIGKILL the live daemon again and again, and check nothing is lost.

The real bot.py runs in live mode against one venue's emulator with a few accounts on
it: Alpaca (the default; a client id is refused for ever) or Kraken (``venue="KRAKEN"``:
with the faithful emulator a client id is refused only while its order is open, so a
filled order sent again would be a second order: only proof of absence prevents it).
Crafted candles on the real clock's candle grid make orders flow (``crash_market``): at
every candle close of ``NIJA_TIMEFRAME`` (1m) each symbol takes its turn, a fresh entry
signal (a new intent) or its exit (the target hit). The daemon is killed with SIGKILL at
seeded random moments, some of them while a ``create_order`` request is in flight (the
venue acting only after a ``latency`` fault's delay, or acting and then holding its
answer with an ``after=True`` hang). Each kill is followed by a restart in a quiet market
(no new signals; the next ones come at the first close after the check); once every
account has reconciled and the killed process's requests have landed, the venue's
orders and holdings are compared with the store (``crash_compare``: duplicates, orders
the store never saw, lost positions, unresolved orders, wrong settlements, fills without
their position).

Every wait is bounded; the whole run stops at ``max_seconds``.
"""

from __future__ import annotations

import base64
import json
import math
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

from bot.model import Credentials, timeframe_seconds
from bot.store.writer import Store, db_path
from nija_testkit.emulator.server import Fault
from nija_testkit.emulator.venues import VenueHandle, start_venue
from nija_testkit.harness import DaemonRun, account_env, clean_env, parse_log, start_daemon
from nija_testkit.reliability.crash_compare import VIOLATIONS, compare
from nija_testkit.reliability.crash_market import CandleDriver

USERS = ("u1", "u2")  # user accounts next to the platform account, all on one venue
KINDS = ("in_order", "random", "startup")
# How the venue treats the create_order a kill lands in; in_order kills take them in turn.
# latency_long: it acts only after the restarted daemon has looked the order up (not
# found; it may be sent again only once the venue has proven it absent); latency_short: it
# acts before the restart; hang_after: it acts at once and holds its answer back.
FAULTS = {"latency_long": (4.0, 8.0), "hang_after": (8.0, 8.0), "latency_short": (0.5, 1.5)}
# The Kraken daemon restarts more slowly (ccxt's rate limiter spaces its private calls):
# its late order lands 20-26 s on, after the restarted daemon's first lookup, before the
# proof of absence is complete (two "no such order" answers 15 s apart, from 15 s on).
KRAKEN_FAULTS = {**FAULTS, "latency_long": (20.0, 26.0)}


def _json_client_id(body: bytes) -> str | None:
    try:
        data = json.loads(body or b"null")
    except ValueError:
        return None
    return data.get("client_order_id") if isinstance(data, dict) else None


def _form_client_id(body: bytes) -> str | None:
    values = parse_qs(body.decode(errors="replace")).get("cl_ord_id")
    return values[0] if values else None


@dataclass(frozen=True)
class CrashVenue:
    """What differs between the venues a run can use."""

    broker: str
    tickers: tuple[str, ...]  # the assets traded, each against USD on the emulator's market
    symbols: str  # <BROKER>_SYMBOLS
    key_header: str  # the request header that carries the API key
    user_credentials: Callable[[int], Credentials]
    client_id: Callable[[bytes], str | None]  # the client id a create-order body carried
    data_url: bool = False  # <BROKER>_DATA_URL too (Alpaca's market data)
    faults: dict[str, tuple[float, float]] = field(default_factory=lambda: FAULTS)


CRASH_VENUES = {
    "ALPACA": CrashVenue(
        "ALPACA",
        ("SPY", "AAPL", "MSFT"),
        "SPY,AAPL,MSFT",
        "apca-api-key-id",
        lambda i: Credentials(f"FAKE-ALPACA-KEY-ID-U{i:03d}", f"FAKE-ALPACA-SECRET-u{i}"),
        _json_client_id,
        data_url=True,
    ),
    "KRAKEN": CrashVenue(
        "KRAKEN",
        ("BTC", "ETH", "SOL"),
        "BTC/USD,ETH/USD,SOL/USD",
        "api-key",
        lambda i: Credentials(
            f"FAKE-KRAKEN-KEY-U{i:03d}",
            base64.b64encode(f"FAKE-KRAKEN-SECRET-{i}".encode()).decode(),
        ),
        _form_client_id,
        faults=KRAKEN_FAULTS,
    ),
}


@dataclass
class Options:
    """One run's settings."""

    kills: int = 50
    seed: int = 1
    max_seconds: float = 2700.0
    cycle_seconds: float = 0.5
    timeframe: str = "1m"  # NIJA_TIMEFRAME: signals come at its candle closes
    workdir: Path | None = None
    venue: str = "ALPACA"  # a CRASH_VENUES key


@dataclass
class Kill:
    """One SIGKILL and what came of the restart after it."""

    index: int
    kind: str  # in_order | random | startup (killed soon after a restart)
    fault: str | None = None  # a FAULTS key, for in_order kills
    alive_s: float = 0.0  # how long the killed process ran
    in_flight: bool = False  # a create_order request was unanswered when it died
    orders_sent: int = 0  # create_order requests the killed process had sent
    reconciling: bool = False  # killed before every account had reconciled
    reconciled_s: float | None = None  # restart → every account reconciled (None: not checked)
    violations: int = 0  # found by the check after the restart


@dataclass
class Report:
    """Everything a run measured."""

    options: Options
    kills: list[Kill] = field(default_factory=list)
    checks: int = 0
    violations: dict[str, set[str]] = field(default_factory=dict)
    venue_orders: int = 0
    filled_orders: int = 0
    store_orders: int = 0
    resent_client_ids: int = 0  # client ids that reached the venue in more than one request
    events: Counter[str] = field(default_factory=Counter)  # recovery events from every nija.log
    elapsed_s: float = 0.0
    finished: bool = False  # all kills done and the final check made within max_seconds
    error: str | None = None

    def counts(self) -> dict[str, int]:
        return {k: len(self.violations.get(k, ())) for k in VIOLATIONS}

    @property
    def ok(self) -> bool:
        return self.finished and not any(self.counts().values()) and self.error is None


# nija.log events that show recovery at work, counted over every run of the daemon.
RECOVERY_EVENTS = frozenset({
    "reconciled", "reconcile_waiting", "order_never_arrived_sending_now", "order_outcome_unknown",
    "order_already_exists", "order_not_at_venue", "external_position_adopted",
    "exit_fill_without_open_position"})  # fmt: skip


def expect_dead_clients(handle: VenueHandle) -> None:
    """A SIGKILLed daemon leaves the emulator writing to closed sockets: expected, not news.

    Only those two errors are left out of the server's stderr report; any other still prints.
    """
    httpd = handle.server._httpd
    report = httpd.handle_error

    def handle_error(request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], BrokenPipeError | ConnectionResetError):
            report(request, client_address)

    httpd.handle_error = handle_error


# -- one run ---------------------------------------------------------------------------
class CrashRestart:
    """The venue, the market driver, the daemon, and the loop of kills and checks."""

    def __init__(self, options: Options, workdir: Path, progress=None) -> None:
        self.o = options
        self.workdir = workdir
        self.rng = random.Random(options.seed)
        self.progress = progress or (lambda _msg: None)
        self.report = Report(options)
        self.deadline = time.monotonic() + options.max_seconds
        self.venue = v = CRASH_VENUES[options.venue.upper()]
        self.handle: VenueHandle = start_venue(v.broker, timeout_seconds=5.0)
        expect_dead_clients(self.handle)
        venue = self.handle.venue
        self.ledgers = {f"platform/platform/{v.broker}": self.handle.ledger}
        urls = {f"{v.broker}_BASE_URL": self.handle.server.url}
        if v.data_url:
            urls[f"{v.broker}_DATA_URL"] = self.handle.server.url
        self.env = clean_env(
            NIJA_MODE="live",
            NIJA_CYCLE_SECONDS=str(options.cycle_seconds),
            NIJA_CALL_TIMEOUT_SECONDS="5",
            NIJA_STATUS_LOG_SECONDS="600",
            # Half-second cycles on the emulator: far past any venue's limits, on purpose.
            NIJA_REQUEST_BUDGETS="false",
            NIJA_TIMEFRAME=options.timeframe,
            NIJA_DATA_DIR=str(workdir / "data"),
            **urls,
            **{f"{v.broker}_SYMBOLS": v.symbols},
            **account_env(v.broker, None, self.handle.credentials),
        )
        for i, user in enumerate(USERS):
            creds = v.user_credentials(i + 1)
            self.ledgers[f"user/{user}/{v.broker}"] = venue.add_account(
                creds.api_key, creds.api_secret, {"USD": 10_000.0}
            )
            self.env.update(account_env(v.broker, user, creds))
        self.timeframe_s = timeframe_seconds(options.timeframe)
        self.driver = CandleDriver(venue.market, v.tickers, self.timeframe_s)
        self.db = db_path(workdir / "data", "live")
        self.runs = 0
        self.run_requests = 0  # the venue's request count when the current run started
        self.settle_at = 0.0  # monotonic: when the killed process's requests have all landed

    # -- daemon lifecycle ----------------------------------------------------------------
    def _remaining(self, cap: float) -> float:
        return max(0.1, min(cap, self.deadline - time.monotonic()))

    def _start(self) -> DaemonRun:
        self.runs += 1
        self.run_requests = len(self.handle.server.requests)
        env = dict(self.env, NIJA_LOG_FILE=str(self.workdir / f"run-{self.runs:03d}.log"))
        return start_daemon(env, self.workdir, output=self.workdir / "daemon.out")

    def _wait(self, run: DaemonRun, pred, timeout: float, what: str):
        """Poll until ``pred()`` is truthy; TimeoutError at the timeout, or if the daemon died."""
        end = time.monotonic() + self._remaining(timeout)
        while time.monotonic() < end:
            value = pred()
            if value:
                return value
            if not run.alive():
                raise TimeoutError(f"run {self.runs}: the daemon exited by itself ({what})")
            time.sleep(0.02)
        raise TimeoutError(f"run {self.runs}: timed out after {timeout:g}s waiting for {what}")

    def _reconciled(self, run: DaemonRun) -> int:
        """How many accounts have reconciled in this run."""
        return len({e.account for e in run.events() if e.event == "reconciled"})

    def _cycled_since(self, run: DaemonRun, wall: float) -> bool:
        """Every account finished a cycle that started after ``wall`` (epoch seconds)."""
        started = {}
        for e in run.events():
            if e.event == "cycle" and e.account and e.fields.get("ms"):
                begin = e.at.timestamp() - float(e.fields["ms"]) / 1000.0
                started[e.account] = max(started.get(e.account, 0.0), begin)
        return all(started.get(k, 0.0) > wall for k in self.ledgers)

    def _check(self, run: DaemonRun, kill: Kill | None) -> None:
        """Wait for reconciliation and for the dead process's requests to land, then compare."""
        every = len(self.ledgers)
        try:
            # 60 s: an unknown order is sent again only once the venue has proven it absent
            # (Kraken: two "no such order" answers 15 s apart, the first 15 s after the send).
            self._wait(run, lambda: self._reconciled(run) == every, 60.0, "reconciliation")
        except TimeoutError:
            # Show what held it up (orders still ambiguous count as unresolved), then stop.
            self._record(self._compare())
            raise
        if kill is not None:
            kill.reconciled_s = round(time.monotonic() - run.started, 2)
        time.sleep(max(0.0, self.settle_at - time.monotonic()))
        wall = time.time() + 0.05
        self._wait(run, lambda: self._cycled_since(run, wall), 20.0, "a cycle after settling")
        found = self._compare()
        self.report.checks += 1
        if kill is not None:
            kill.violations = sum(len(v) for v in found.values())
        self._record(found)
        return True

    def _compare(self) -> dict[str, set[str]]:
        return compare(self.ledgers, self.db, self.handle.venue.market, self.venue.tickers)

    def _record(self, found: dict[str, set[str]]) -> None:
        for kind, items in found.items():
            known = self.report.violations.setdefault(kind, set())
            for item in sorted(items - known)[:5]:  # each one once, when first seen
                self.progress(f"  VIOLATION {kind}: {item}")
            known |= items

    # -- kills -----------------------------------------------------------------------------
    def _kill_in_order(self, run: DaemonRun, kill: Kill) -> None:
        """Slow the next create_order down, wait until it is in flight, and kill inside it."""
        server = self.handle.server
        seen = len(server.requests)
        done = sum(k.kind == "in_order" for k in self.report.kills)
        faults = self.venue.faults
        kill.fault = list(faults)[done % len(faults)]
        seconds = self.rng.uniform(*faults[kill.fault])
        after = kill.fault == "hang_after"
        fault = Fault("hang" if after else "latency", seconds=seconds, after=after, times=1)
        server.inject("create_order", fault)
        sent = self._wait(
            run,
            lambda: next((r for r in server.requests[seen:] if r.route == "create_order"), None),
            # Signals come at candle closes: the next close may find nothing to do (every
            # account holds what enters and none what exits), the one after it always does;
            # Kraken's spaced private calls put its orders up to ~30 s after the close.
            2 * self.timeframe_s + 45.0,
            "a create_order request",
        )
        time.sleep(self.rng.uniform(0.05, min(seconds - 0.3, 1.0)))
        self._kill(run, kill)
        server.clear_faults()
        # In flight: sent, and its answer not yet due when the process died.
        kill.in_flight = time.monotonic() < sent.at + seconds
        if not after:  # the venue will still act on it, after the delay
            self.settle_at = max(self.settle_at, sent.at + seconds + 0.2)

    def _kill(self, run: DaemonRun, kill: Kill) -> None:
        kill.reconciling = self._reconciled(run) < len(self.ledgers)
        run.kill()
        sent = self.handle.server.requests[self.run_requests :]
        kill.orders_sent = sum(r.route == "create_order" for r in sent)

    def _one(self, index: int, kind: str) -> None:
        kill = Kill(index, kind)
        run = self._start()
        started = time.monotonic()
        try:
            if kind != "startup":
                self._check(run, self.report.kills[-1] if self.report.kills else None)
            self.driver.activate()
            if kind == "in_order":
                self._kill_in_order(run, kill)
            else:
                low, high = (0.2, 3.0) if kind == "startup" else (0.5, 6.0)
                time.sleep(self._remaining(self.rng.uniform(low, high)))
                self._kill(run, kill)
        finally:
            if run.alive():
                run.kill()
            self.driver.quiet()
        kill.alive_s = round(time.monotonic() - started, 2)
        self.report.kills.append(kill)
        self.progress(
            f"kill {index + 1}/{self.o.kills}: {kind} {kill.fault or ''} "
            f"in_flight={kill.in_flight} alive={kill.alive_s}s"
        )

    def plan(self) -> list[str]:
        """Kill kinds, seeded: at least 40 % (and 3) inside order placement, ~15 % at start-up."""
        n = self.o.kills
        in_order = max(min(3, n), math.ceil(0.4 * n))
        startup = min(n - in_order, n // 7)
        kinds = ["in_order"] * in_order + ["startup"] * startup
        kinds += ["random"] * (n - len(kinds))
        self.rng.shuffle(kinds)
        return kinds

    def run(self) -> Report:
        began = time.monotonic()
        self.driver.start()
        try:
            for i, kind in enumerate(self.plan()):
                if time.monotonic() > self.deadline:
                    self.report.error = f"time budget of {self.o.max_seconds:g}s used up"
                    break
                self._one(i, kind)
            else:
                final = self._start()
                try:
                    self._check(final, self.report.kills[-1])
                    self.report.finished = True
                finally:
                    final.stop()
        except TimeoutError as exc:
            self.report.error = str(exc)
        finally:
            self.driver.stop()
            self._totals()
            self.handle.stop()
            self.report.elapsed_s = round(time.monotonic() - began, 1)
        return self.report

    def _totals(self) -> None:
        venue = [o for ledger in self.ledgers.values() for o in ledger.all_orders()]
        self.report.venue_orders = len(venue)
        self.report.filled_orders = sum(o.status == "filled" for o in venue)
        sent = Counter(
            (r.headers.get(self.venue.key_header), coid)
            for r in self.handle.server.requests_to("create_order")
            if (coid := self.venue.client_id(r.body)) is not None
        )
        self.report.resent_client_ids = sum(n > 1 for n in sent.values())
        if self.db.exists():
            with Store.open_readonly(self.db) as ro:
                self.report.store_orders = sum(
                    len(ro.orders_since(k, 0.0)) for k in ro.account_keys()
                )
        for log in sorted(self.workdir.glob("run-*.log*")):
            self.report.events.update(e.event for e in parse_log(log) if e.event in RECOVERY_EVENTS)


def run(options: Options, progress=None) -> Report:
    """One crash-and-restart run in ``options.workdir`` (a temporary directory by default)."""
    if options.workdir is not None:
        options.workdir.mkdir(parents=True, exist_ok=True)
        return CrashRestart(options, options.workdir, progress).run()
    with tempfile.TemporaryDirectory(prefix="nija-crash-") as tmp:
        return CrashRestart(options, Path(tmp), progress).run()
