"""The fault matrix: one real bot.py, five accounts, one of them broken in each way in turn.

For every row a fault is switched on for the faulty account only (an emulator fault
limited to its API key, or a chaos hook), held for ``seconds_per_row``, then lifted.
Measured per row, from nija.log and status.json:

* the four healthy accounts: missed cycles (a start-to-start period over 1.5 x the
  interval) and the deviation of their period from the interval, |period - i| / i;
* the faulty account: the failure types it recorded (the delta of
  ``failure_breakdown``), the worst health it reached, when it was quarantined
  and how long after the fault was lifted it was healthy again.

Periods are measured between cycle *starts* (log time minus the cycle's ``ms``),
which is what the worker schedules; end-to-end times add the jitter of the cycle's
own length. The market is ``crash_market.CandleDriver`` on the grid of the daemon's
timeframe (``NIJA_TIMEFRAME=1m``): at every candle close each symbol gets a fresh entry
signal or its exit, so every account places orders once a minute (accounts read candles
only at a close). An order row (``@ create_order``) therefore waits for the next close,
arms its fault just before it and holds it ``seconds_per_row`` past it (longer, within
``ORDER_GRACE_SECONDS``, until the faulty account has sent an order): up to a minute of
waiting per order row. Sessions: rows that leave the account able to recover share one
daemon; order rows share another (the bad-credential order row last), the bad-credential
balance row (FAILING waits an hour by design), the connection-refused row (its own venue) and
the venue rows (a fault on every account of a second venue, OKX: taken for the venue's
outage, no circuit opened; nija_testkit/reliability/venue_rows.py) each get a fresh
daemon. Used by scripts/fault_matrix.py and its CI test.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bot.model import Credentials, timeframe_seconds
from nija_testkit import candles as cs
from nija_testkit.emulator.server import EmulatorServer, Fault
from nija_testkit.emulator.venues import VenueHandle, start_venue
from nija_testkit.harness import DaemonRun, Event, account_env, clean_env, start_daemon, wait_for
from nija_testkit.reliability.crash_market import CandleDriver
from nija_testkit.reliability.venue_rows import VenueAccounts, venue_problems, venue_state

HEALTHY_IDS = ("h1", "h2", "h3", "h4")
FAULTY_ID = "fx"
SYMBOLS = ("SPY", "AAPL", "MSFT")
# The faulty account's own calls. Candles are not among them: they are the venue's shared
# data (bot.venue), asked once per candle close for every account, never charged to one.
ROUTES = ("balance", "create_order")
TIMEFRAME = "1m"  # NIJA_TIMEFRAME: the driver's signals come at its candle closes
TIMEFRAME_S = timeframe_seconds(TIMEFRAME)
ORDER_LEAD_SECONDS = 0.5  # an order row's fault goes on this long before the close
ORDER_GRACE_SECONDS = 10.0  # and stays on past seconds_per_row until an order was sent
# ... or through the next close: after a refused exit the account may hold just the symbols
# that enter at a close (nothing to send then); its exit is retried a minute later.
ORDER_CLOSES = 2
HANG_SECONDS = 3.0  # the emulator holds a hung request this long (past the call timeout)
# FailureType values
NET, RATE, AUTH = "network_error", "rate_limit_error", "authentication_error"
API, BAL, UNKNOWN, STORE = "api_error", "balance_error", "unknown_error", "store_error"
SEVERITY = {"healthy": 0, "degraded": 1, "recovering": 2, "quarantined": 3, "failing": 4}


@dataclass(frozen=True)
class Row:
    """One fault on one call of the faulty account, and the failure type it must record."""

    kind: str
    target: str  # a route name, "strategy", "store", "all calls" or "baseline" (no fault)
    expected: str | None  # FailureType value; None: no failure may be recorded
    fault: Callable[[str], Fault] | None = None  # API key → emulator fault
    chaos: str | None = None  # chaos launcher fault kind
    recovers: bool = True  # False: FAILING by design (bad credentials wait an hour)
    refused: bool = False  # the faulty account's venue goes away (its own session)
    venue_wide: bool = False  # every account of a second venue (venue_rows.py; own session)

    @property
    def name(self) -> str:
        return f"{self.kind} @ {self.target}"

    @property
    def orders(self) -> bool:
        """An order row: its fault must span a candle close, when orders are sent."""
        return self.target == "create_order"

    @property
    def at_close(self) -> bool:
        """The fault only meets requests at a candle close: orders, and the venue's candles."""
        return self.orders or (self.venue_wide and self.target == "candles")

    @property
    def session(self) -> str | None:
        """Rows with the same key share a daemon; None: a daemon of its own."""
        if self.refused or self.venue_wide:
            return None
        if self.orders:
            return "orders"  # a 401 too, run last: FAILING ends the session's usefulness
        return "shared" if self.recovers else None


def _status(code: int, **kw) -> Callable[[str], Fault]:
    return lambda key: Fault("status", code, api_key=key, **kw)


def _fault(kind: str, **kw) -> Callable[[str], Fault]:
    return lambda key: Fault(kind, api_key=key, **kw)


# (kind, expected failure type, fault): each applied to every route in ROUTES, except:
KINDS: tuple[tuple[str, str | None, Callable[[str], Fault]], ...] = (
    ("hang", NET, _fault("hang", seconds=HANG_SECONDS)),
    ("slow 0.3s", None, _fault("latency", seconds=0.3)),  # under the call timeout: no failure
    ("429+Retry-After", RATE, _status(429, retry_after=1)),
    ("418", RATE, _status(418)),
    ("500", NET, _status(500)),
    ("502", NET, _status(502)),
    ("503", NET, _status(503)),
    ("504", NET, _status(504)),
    ("401", AUTH, _status(401)),
    ("venue 429 body", RATE, _fault("venue_error", code="rate_limit")),
    ("venue no-funds body", BAL, _fault("venue_error", code="insufficient_funds")),
    ("malformed JSON", API, _fault("malformed_json")),
    ("HTML 502", NET, _fault("html", status=502)),
    ("drop", NET, _fault("drop")),
)
ORDERS_ONLY = {"venue no-funds body"}  # Alpaca's 403 "insufficient buying power": an order answer
NO_RECOVERY = {"401"}  # FAILING waits an hour by design: the operator fixes the keys


def all_rows() -> list[Row]:
    """Every row; those that share one daemon first, then the order rows (the one that
    does not recover last), then those that need their own."""
    rows = [Row("no fault", "baseline", None)]  # the noise floor of the healthy accounts' rhythm
    rows += [
        Row(kind, route, expected, fault, recovers=kind not in NO_RECOVERY)
        for route in ROUTES
        for kind, expected, fault in KINDS
        if route == "create_order" or kind not in ORDERS_ONLY
    ]
    rows += [
        Row("exception", "strategy", UNKNOWN, chaos="strategy_error"),
        Row("db locked", "store", STORE, chaos="store_locked"),
        Row("conn refused", "all calls", NET, refused=True),
        # The whole OKX venue (two accounts): parked as the venue's outage, no breaker opened.
        Row("venue outage 503", "all calls", NET, lambda _: Fault("status", 503), venue_wide=True),
        # The venue's public data failing is the venue's: recorded against no account.
        Row("public data 503", "candles", None, lambda _: Fault("status", 503), venue_wide=True),
    ]
    rank = {"shared": 0, "orders": 1, None: 2}
    return sorted(rows, key=lambda r: (rank[r.session], not r.recovers))  # stable otherwise


def select(rows: list[Row], patterns: str | None) -> list[Row]:
    """Rows whose name contains one of the comma-separated ``patterns`` (case-insensitive)."""
    if not patterns:
        return rows
    wanted = [p.strip().lower() for p in patterns.split(",") if p.strip()]
    return [r for r in rows if any(p in r.name.lower() for p in wanted)]


@dataclass(frozen=True)
class MatrixConfig:
    """Timing of the daemon and of each row (seconds)."""

    interval: float = 1.0
    call_timeout: float = 1.0
    cb_timeout: float = 2.0
    cb_threshold: int = 3
    seconds_per_row: float = 4.0
    recovery_timeout: float = 15.0


@dataclass
class RowResult:
    """What one row measured; ``problems`` empty means the promise held."""

    name: str
    expected: str | None
    recorded: dict[str, int]
    hits: int | None  # requests of the faulty account to the faulted route (None: not a route)
    worst_health: str
    quarantined_s: float | None  # fault on → quarantined/failing
    recovered_s: float | None  # fault lifted → healthy (None: did not, or not expected)
    healthy_cycles: int
    missed: int
    healthy_failures: int
    seconds: float
    deviations: list[float] = field(repr=False)  # |period - interval| / interval, healthy ones
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def p50(self) -> float | None:
        return percentile(self.deviations, 50)

    @property
    def p99(self) -> float | None:
        return percentile(self.deviations, 99)


# -- measuring -------------------------------------------------------------------------
def percentile(values: Iterable[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def cycle_starts(events: list[Event], key: str) -> list[float]:
    """Epoch start of every cycle of ``key``: the log time minus the cycle's own length."""
    return sorted(
        e.at.timestamp() - float(e.fields.get("ms", 0)) / 1000.0
        for e in events
        if e.event == "cycle" and e.account == key
    )


def rhythm(
    starts: list[float], t_on: float, t_end: float, read_at: float, interval: float
) -> tuple[list[float], int, int]:
    """(periods touching the window, missed cycles, cycles started in it) of one account.

    A period over 1.5 x interval misses round(period / interval) - 1 cycles; an account
    with no cycle between ``t_end`` and ``read_at`` misses the ones it owes up to then.
    """
    periods = [b - a for a, b in itertools.pairwise(starts) if b > t_on and a < t_end]
    missed = sum(round(p / interval) - 1 for p in periods if p > 1.5 * interval)
    last = max((s for s in starts if s <= read_at), default=t_on)
    if last < t_end and read_at - last > 1.5 * interval:
        missed += round((read_at - last) / interval) - 1
    return periods, missed, sum(1 for s in starts if t_on <= s <= t_end)


def health_times(events: list[Event], key: str, since: float) -> list[tuple[float, str]]:
    """(epoch, new health) of every health change of ``key`` at or after ``since``."""
    return [
        (e.at.timestamp(), e.fields.get("new", ""))
        for e in events
        if e.event == "INDEPENDENT_health_changed"
        and e.account == key
        and e.at.timestamp() >= since
    ]


# -- a daemon over five accounts ---------------------------------------------------------
def _creds(account_id: str) -> Credentials:
    return Credentials(
        f"FAKE-ALPACA-KEY-{account_id.upper()}-0001", f"FAKE-ALPACA-SECRET-{account_id}-9f8e7d"
    )


class Session:
    """bot.py (through the chaos launcher) on a fresh venue state and a fresh data dir.

    Four healthy Alpaca user accounts; the faulty one is a fifth Alpaca user, or, for
    the connection-refused row, Coinbase's platform account on a venue of its own
    (a base URL is per broker, so only another broker can point at a dead port).
    """

    def __init__(
        self,
        cfg: MatrixConfig,
        alpaca: VenueHandle,
        workdir: Path,
        refused: bool = False,
        venue_wide: bool = False,
    ) -> None:
        self.cfg, self.alpaca, self.refused = cfg, alpaca, refused
        self.coinbase: VenueHandle | None = None
        self.okx: VenueAccounts | None = None
        self.windows: list[Window] = []
        self.isolation = "unknown"
        alpaca.reset()
        ids = HEALTHY_IDS if refused or venue_wide else (*HEALTHY_IDS, FAULTY_ID)
        env = clean_env(
            NIJA_MODE="live",  # real orders to the emulator: the order rows need them
            NIJA_CYCLE_SECONDS=str(cfg.interval),
            NIJA_CALL_TIMEOUT_SECONDS=str(cfg.call_timeout),
            NIJA_CB_TIMEOUT_SECONDS=str(cfg.cb_timeout),
            NIJA_CB_FAILURE_THRESHOLD=str(cfg.cb_threshold),
            NIJA_STATUS_LOG_SECONDS="3600",
            NIJA_TIMEFRAME=TIMEFRAME,
            # Cycles of a second on the emulator: far past any venue's limits, on purpose.
            NIJA_REQUEST_BUDGETS="false",
            ALPACA_BASE_URL=alpaca.server.url,
            ALPACA_DATA_URL=alpaca.server.url,
            ALPACA_SYMBOLS=",".join(SYMBOLS),
            # A down venue is probed every second and its accounts resume within a second.
            NIJA_VENUE_PROBE_SECONDS="1",
            NIJA_VENUE_RESUME_SECONDS="1",
        )
        for account_id in ids:
            creds = _creds(account_id)
            alpaca.venue.add_account(creds.api_key, creds.api_secret, {"USD": 10_000.0})
            env.update(account_env("ALPACA", account_id, creds))
        # Signals at every candle close for every Alpaca account (the order rows need them).
        self.driver = CandleDriver(alpaca.venue.market, SYMBOLS, TIMEFRAME_S)
        self.driver.activate()
        self.driver.start()
        self.healthy = [f"user/{i}/ALPACA" for i in HEALTHY_IDS]
        self.faulty = f"user/{FAULTY_ID}/ALPACA"
        self.faulty_api_key = _creds(FAULTY_ID).api_key
        if refused:
            self.coinbase = start_venue("COINBASE")
            self.flat(self.coinbase, self.coinbase.kind.symbols)
            self.faulty, self.faulty_api_key = "platform/platform/COINBASE", ""
            env.update(account_env("COINBASE", None, self.coinbase.credentials))
            env.update(
                COINBASE_BASE_URL=self.coinbase.server.url,
                COINBASE_SYMBOLS=",".join(self.coinbase.kind.symbols),
            )
        self.faulty_ones = [self.faulty]
        if venue_wide:
            self.okx = VenueAccounts(env)
            self.faulty_ones = self.okx.keys
            self.faulty, self.faulty_api_key = self.okx.keys[0], ""
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            self.run: DaemonRun = start_daemon(
                env, workdir, chaos=True, output=workdir / "daemon.out"
            )
        except BaseException:
            self.driver.stop()
            raise
        try:  # warm-up: every account reconciled and in its rhythm
            wait_for(self._warm, 30, "two cycles of every account", interval=0.2)
        except AssertionError:
            self.close()
            raise

    def _warm(self) -> bool:
        keys = [*self.healthy, *self.faulty_ones]
        return all(self.run.account(k).get("cycles", 0) >= 2 for k in keys)

    @staticmethod
    def flat(venue: VenueHandle, symbols: Iterable[str]) -> None:
        """Candles that never move, up to the one that closed last: no entry, no exit (the
        connection-refused row's venue, a session shorter than a few candles)."""
        step_ms = TIMEFRAME_S * 1000
        series = cs.from_closes(
            np.full(200, 100.0), upper_wick=0.0, lower_wick=0.0, step_ms=step_ms
        )
        rows = cs.rows(cs.closing_by(series, time.time(), step_ms=step_ms))
        for symbol in symbols:
            canonical = symbol if "/" in symbol else f"{symbol}/USD"
            venue.venue.market.set_candles(canonical, rows)

    def snapshot(self) -> dict[str, dict[str, int]]:
        """Failure counts by type of every account, from one read of status.json."""
        accounts = self.run.status().get("accounts", {})
        return {
            k: dict(accounts.get(k, {}).get("failure_breakdown") or {})
            for k in [*self.healthy, self.faulty]
        }

    def finish(self) -> tuple[list[Event], float]:
        """Let the last cycles reach the log, take the last snapshot, stop; (events, read_at)."""
        time.sleep(1.5 * self.cfg.interval + 0.3)
        if self.windows:
            self.windows[-1].after = self.snapshot()
        report = self.run.status().get("isolation_report", {})
        self.isolation = report.get("isolation_guarantee", "unknown")
        read_at = time.time()
        self.run.stop()
        return self.run.events(), read_at

    # -- switching the fault ------------------------------------------------------------
    def apply(self, row: Row) -> None:
        if row.venue_wide and self.okx is not None and row.fault is not None:
            self.okx.apply(row.target, row.fault(""))
        elif row.fault is not None:
            self.alpaca.server.inject(row.target, row.fault(self.faulty_api_key))
        elif row.chaos is not None:
            self.run.chaos(**{row.chaos: [self.faulty]})
        elif row.refused and self.coinbase is not None:
            # Open keep-alive connections would still be served: drop them, then close the port.
            self.coinbase.server.inject("*", Fault("drop"))
            self.coinbase.server.stop()

    def lift(self, row: Row) -> None:
        if row.venue_wide and self.okx is not None:
            self.okx.lift()
        elif row.fault is not None:
            self.alpaca.server.clear_faults()
        elif row.chaos is not None:
            self.run.chaos()
        elif row.refused and self.coinbase is not None:
            old = self.coinbase.server
            self.coinbase.server = EmulatorServer(old.venue, port=old.port).start()

    def close(self) -> None:
        try:
            if self.run.alive():
                self.run.stop()
        finally:
            self.driver.stop()
            if self.coinbase is not None:
                self.coinbase.stop()
            if self.okx is not None:
                self.okx.stop()
            self.alpaca.server.clear_faults()


@dataclass
class Window:
    """When one row's fault was on, and the failure counts at its edges (from status.json)."""

    row: Row
    t_on: float
    t_off: float
    t_end: float  # recovered (or gave up waiting)
    back: bool  # reached the health expected after lifting
    hits: int | None
    before: dict[str, dict[str, int]]
    after: dict[str, dict[str, int]] = field(default_factory=dict)  # at the next row's start


def _hits(session: Session, row: Row, mono_on: float, mono_off: float) -> int | None:
    """Requests of the faulty account(s) to the faulted route while the fault was on."""
    if row.venue_wide and session.okx is not None:
        return session.okx.hits(row.target, mono_on, mono_off)
    if row.fault is None:
        return None
    return sum(
        1
        for r in session.alpaca.server.requests_to(row.target)
        if mono_on <= r.at <= mono_off
        and r.headers.get("apca-api-key-id") == session.faulty_api_key
    )


def run_row(session: Session, row: Row) -> Window:
    """Fault on for ``seconds_per_row``, lifted, recovery awaited (bounded in time).

    A row whose requests come at candle closes (``Row.at_close``) first waits for the next
    close (at most one timeframe), arms the fault ``ORDER_LEAD_SECONDS`` before it and holds
    it ``seconds_per_row`` past it, or until the faulty account sent the request (at most
    ``ORDER_GRACE_SECONDS`` more); if it sent none, through the next close as well (at most
    ``ORDER_CLOSES`` closes).
    """
    cfg, run = session.cfg, session.run
    hold = cfg.seconds_per_row
    if row.at_close:
        time.sleep(max(0.0, session.driver.seconds_to_close() - ORDER_LEAD_SECONDS))
        hold += session.driver.seconds_to_close()
    before = session.snapshot()
    if session.windows:  # late failures of the previous row still count for that row
        session.windows[-1].after = before
    t_on, mono_on = time.time(), time.monotonic()
    session.apply(row)
    time.sleep(max(0.0, hold - (time.monotonic() - mono_on)))
    for close in range(ORDER_CLOSES if row.at_close else 0):  # bounded by ORDER_CLOSES
        end = time.monotonic() + ORDER_GRACE_SECONDS  # a busy machine's orders come late
        while not _hits(session, row, mono_on, time.monotonic()) and time.monotonic() < end:
            time.sleep(0.1)
        if close == ORDER_CLOSES - 1 or _hits(session, row, mono_on, time.monotonic()):
            break
        time.sleep(session.driver.seconds_to_close() + cfg.seconds_per_row)  # the next close
    t_off, mono_off = time.time(), time.monotonic()
    session.lift(row)
    hits = _hits(session, row, mono_on, mono_off)
    want = "healthy" if row.recovers else "failing"

    def is_back() -> bool:  # a venue row: its venue up again, too
        status = run.status()
        health = status.get("accounts", {}).get(session.faulty, {}).get("health")
        return health == want and (not row.venue_wide or venue_state(status) == "up")

    try:
        wait_for(is_back, cfg.recovery_timeout, f"{session.faulty} {want}")
        back = True
    except AssertionError:
        back = False  # reported as a problem by measure()
    window = Window(row, t_on, t_off, time.time(), back, hits, before)
    session.windows.append(window)
    return window


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: n - before.get(k, 0) for k, n in after.items() if n > before.get(k, 0)}


def measure(session: Session, w: Window, events: list[Event], read_at: float) -> RowResult:
    """The row's figures from the whole session's log and the window's snapshots."""
    row, interval = w.row, session.cfg.interval
    recorded = _delta(w.before[session.faulty], w.after[session.faulty])
    changes = [c for c in health_times(events, session.faulty, w.t_on) if c[0] <= w.t_end]
    worst = max((h for _, h in changes), key=lambda h: SEVERITY.get(h, 0), default="healthy")
    quarantined = next((t - w.t_on for t, h in changes if h in ("quarantined", "failing")), None)
    healed = [t for t, h in changes if h == "healthy" and t >= w.t_off]
    recovered = None
    if w.back and row.recovers:
        recovered = max(0.0, healed[-1] - w.t_off) if healed else 0.0
    deviations, missed, cycles = [], 0, 0
    for key in session.healthy:
        periods, m, c = rhythm(cycle_starts(events, key), w.t_on, w.t_end, read_at, interval)
        deviations += [abs(p - interval) / interval for p in periods]
        missed, cycles = missed + m, cycles + c
    result = RowResult(
        name=row.name,
        expected=row.expected,
        recorded=recorded,
        hits=w.hits,
        worst_health=worst,
        quarantined_s=quarantined,
        recovered_s=recovered,
        healthy_cycles=cycles,
        missed=missed,
        healthy_failures=sum(
            sum(_delta(w.before[k], w.after[k]).values()) for k in session.healthy
        ),
        seconds=w.t_end - w.t_on,
        deviations=deviations,
    )
    result.problems = _problems(row, result, w.back)
    if row.venue_wide:
        result.problems += venue_problems(events, session.faulty_ones, w.t_on, w.t_end)
    if session.isolation != "ACTIVE":
        result.problems.append(f"isolation_guarantee is {session.isolation}")
    return result


def _problems(row: Row, r: RowResult, back: bool) -> list[str]:
    out = []
    if r.missed:
        out.append(f"healthy accounts missed {r.missed} cycle(s)")
    if r.healthy_failures:
        out.append(f"healthy accounts recorded {r.healthy_failures} failure(s)")
    if r.hits == 0:
        out.append(f"route {row.target} was not exercised")
    if row.expected is None and r.recorded:
        out.append(f"expected no failure, recorded {r.recorded}")
    elif row.expected is not None and set(r.recorded) != {row.expected}:
        out.append(f"expected {row.expected}, recorded {r.recorded or 'nothing'}")
    if not back:
        out.append("did not recover" if row.recovers else "was not FAILING")
    return out


def run_matrix(
    rows: list[Row],
    cfg: MatrixConfig,
    workdir: Path,
    progress: Callable[[RowResult], None] = lambda r: None,
) -> list[RowResult]:
    """Run ``rows`` in order: consecutive rows of one session key on one daemon, the
    others alone."""
    alpaca = start_venue("ALPACA")
    results: list[RowResult] = []
    pending, sessions = list(rows), 0
    try:
        while pending:  # every pass takes at least one row: bounded by len(rows)
            group = [pending.pop(0)]
            while group[0].session and pending and pending[0].session == group[0].session:
                group.append(pending.pop(0))
            session = Session(
                cfg,
                alpaca,
                workdir / f"session-{sessions:02d}",
                group[0].refused,
                group[0].venue_wide,
            )
            sessions += 1
            try:
                for i, row in enumerate(group):
                    window = run_row(session, row)
                    if row.recovers and not window.back:
                        # A stuck account would spoil the next rows: they get a fresh daemon.
                        pending[:0] = group[i + 1 :]
                        break
                events, read_at = session.finish()
            finally:
                session.close()
            for window in session.windows:
                results.append(measure(session, window, events, read_at))
                progress(results[-1])
    finally:
        alpaca.stop()
    return results
