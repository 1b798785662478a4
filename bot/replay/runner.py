"""Replay: run the real engine over a recorded candle series, fast-forwarded.

The series (``load_candles``; ``bot.replay.candles_csv`` documents the CSV format) drives a
``ReplayClock`` that the driver moves to the close of one candle per cycle. ``ReplayMarket`` serves the series to the ``PaperBroker``
and reveals only candles closed at or before that clock, so neither the strategy nor
the paper fills can see the future. The real ``AccountTrader``, ``PaperBroker``,
``Store`` (SQLite in a temporary directory unless a path is given) and
``AccountIsolationManager`` do the work; ``run_replay`` then reads the trades back
from the store and reports them with the equity curve's figures.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bot.brokers.paper.broker import PaperBroker
from bot.brokers.venues import PAPER
from bot.engine.risk import RiskManager, RiskParams
from bot.engine.trader import AccountTrader
from bot.isolation.manager import AccountIsolationManager
from bot.model import USD_LIKE, AccountRef, BrokerSpec, Candles, Ticker, timeframe_seconds
from bot.replay.candles_csv import HEADER, CandleFileError, iso_utc, load_candles, series_step_ms
from bot.store.writer import OrderPurpose, PositionRecord, Store, StoredOrderStatus
from bot.strategy.trend_pullback import StrategyParams, get_strategy

__all__ = [
    "HEADER",
    "REPLAY_ACCOUNT",
    "CandleFileError",
    "ReplayClock",
    "ReplayMarket",
    "ReplayReport",
    "ReplaySettings",
    "Trade",
    "check_settings",
    "load_candles",
    "max_drawdown",
    "run_replay",
    "series_step_ms",
]

REPLAY_ACCOUNT = AccountRef("user", "replay", PAPER.name)


# -- the replayed world -------------------------------------------------------------
class ReplayClock:
    """The replay's time, in whole milliseconds: a ``bot.clock.Clock`` whose wall and
    monotonic times are the same replayed instant (in seconds); replay time never goes back."""

    def __init__(self, start_ms: int) -> None:
        self.now_ms = int(start_ms)

    def wall(self) -> float:
        return self.now_ms / 1000.0

    def monotonic(self) -> float:
        return self.now_ms / 1000.0

    def utc_now(self) -> datetime:
        return datetime.fromtimestamp(self.wall(), UTC)

    def advance_to(self, ms: int) -> None:
        """Move forward to ``ms``; a replay never goes back in time."""
        if ms < self.now_ms:
            raise ValueError("the replay clock does not go back")
        self.now_ms = int(ms)


class ReplayMarket:
    """``MarketData`` over one symbol's series, showing only what had closed by ``clock``.

    A candle opening at ``t`` is closed at ``t + step_ms``; until then it does not
    exist for the caller, and the ticker is the last revealed close.
    """

    def __init__(self, symbol: str, candles: Candles, clock: ReplayClock, step_ms: int) -> None:
        self.symbol = symbol
        self._candles = candles
        self._clock = clock
        self.step_ms = step_ms
        self._closes_at = np.asarray(candles.timestamp_ms, dtype=np.int64) + step_ms

    def revealed(self) -> int:
        """How many candles had closed by the clock."""
        return int(np.searchsorted(self._closes_at, self._clock.now_ms, side="right"))

    def symbols(self) -> list[str]:
        """The one replayed symbol."""
        return [self.symbol]

    def fetch_candles(self, symbol: str, timeframe: str = "5m", limit: int = 200) -> Candles:
        """The last ``limit`` closed candles, oldest first (in the series' own interval)."""
        self._check(symbol)
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if timeframe_seconds(timeframe) * 1000 != self.step_ms:
            raise ValueError(f"the series has {_timeframe(self.step_ms)} candles, not {timeframe}")
        end = self.revealed()
        c, start = self._candles, max(0, end - limit)
        return Candles(*(np.array(a[start:end]) for a in _columns(c)))

    def fetch_ticker(self, symbol: str) -> Ticker:
        """The last revealed close as bid, ask and last (the paper broker adds slippage)."""
        self._check(symbol)
        end = self.revealed()
        if end == 0:
            raise ValueError(f"no {symbol} candle has closed yet")
        last = float(self._candles.close[end - 1])
        return Ticker(symbol=symbol, bid=last, ask=last, last=last)

    def _check(self, symbol: str) -> None:
        if symbol != self.symbol:
            raise ValueError(f"the replay has no {symbol!r}, only {self.symbol!r}")


def _columns(c: Candles) -> tuple[np.ndarray, ...]:
    return (c.timestamp_ms, c.open, c.high, c.low, c.close, c.volume)


def _timeframe(step_ms: int) -> str:
    return f"{step_ms // 60_000}m"


# -- the report -----------------------------------------------------------------------
@dataclass
class Trade:
    """One closed position. ``pnl_usd`` is net of both the entry and the exit fee."""

    symbol: str
    entry_time: str
    exit_time: str
    entry_price: float
    exit_price: float
    quantity: float
    pnl_usd: float
    fees_usd: float
    reason: str


@dataclass
class ReplayReport:
    """What a replay did. Percentages are of the starting equity; ``win_rate`` is 0..1."""

    symbol: str
    strategy: str
    timeframe: str
    candles: int
    cycles: int
    first_candle: str
    last_candle: str
    trades: list[Trade]
    trade_count: int
    wins: int
    losses: int
    win_rate: float | None  # None when there was no trade
    starting_equity_usd: float
    final_equity_usd: float
    pnl_usd: float
    pnl_pct: float
    max_drawdown_usd: float
    max_drawdown_pct: float
    open_positions: list[dict] = field(default_factory=list)  # still open at the end
    failed_cycles: int = 0
    cycle_errors: list[str] = field(default_factory=list)  # the first few, for the reader

    def to_dict(self) -> dict:
        """Plain JSON-ready data."""
        return asdict(self)


@dataclass(frozen=True)
class ReplaySettings:
    """How to replay: the symbol, strategy, money and where to keep the database."""

    symbol: str = "BTC/USD"
    strategy: str = "default"
    starting_usd: float = 10_000.0
    fee_rate: float = 0.001
    slippage_bps: float = 5.0
    db_path: Path | None = None  # None: a temporary directory, removed afterwards
    risk: RiskParams = field(default_factory=RiskParams)


def run_replay(candles: Candles, settings: ReplaySettings | None = None, log=None) -> ReplayReport:
    """Run the real engine once per candle over ``candles``; the report after the last.

    Raises ValueError when ``check_settings`` refuses ``settings``, and
    ``CandleFileError`` when the candles' interval is not whole minutes.
    """
    s = settings or ReplaySettings()
    check_settings(s)
    if s.db_path is not None:
        return _run(candles, s, Path(s.db_path), log)
    with tempfile.TemporaryDirectory(prefix="nija-replay-") as tmp:
        return _run(candles, s, Path(tmp) / "nija-replay.db", log)


def check_settings(s: ReplaySettings) -> None:
    """ValueError, in words for the user, when ``s`` cannot be replayed."""
    if "/" not in s.symbol or s.symbol.split("/")[-1] not in USD_LIKE:
        raise ValueError(
            f"the paper broker settles in USD: use a symbol like BTC/USD, not {s.symbol!r}"
        )
    get_strategy(s.strategy)  # ValueError naming the known strategies
    for name in ("starting_usd", "fee_rate", "slippage_bps"):
        value = getattr(s, name)
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if s.db_path is not None and Path(s.db_path).exists():
        raise ValueError(f"{s.db_path} already exists: a replay needs a fresh database")


def _run(candles: Candles, s: ReplaySettings, db: Path, log) -> ReplayReport:
    step = series_step_ms(candles)
    timeframe = _timeframe(step)
    strategy = get_strategy(s.strategy, StrategyParams(timeframe=timeframe))
    stamps = np.asarray(candles.timestamp_ms, dtype=np.int64)
    clock = ReplayClock(int(stamps[0]))
    market = ReplayMarket(s.symbol, candles, clock, step)
    spec = BrokerSpec(REPLAY_ACCOUNT, symbols=(s.symbol,))
    broker = PaperBroker(
        spec,
        market,
        starting_usd=s.starting_usd,
        fee_rate=s.fee_rate,
        slippage_bps=s.slippage_bps,
        clock=clock,
        sleep=_never_sleep,
    )
    isolation = AccountIsolationManager(clock=clock)
    equity = [s.starting_usd]
    failed = 0
    errors: list[str] = []  # the first few, for the report
    with Store(db, REPLAY_ACCOUNT.key, clock=clock) as store:
        trader = AccountTrader(
            REPLAY_ACCOUNT, broker, strategy, RiskManager(s.risk), store, isolation, clock, log=log
        )
        for opened_ms in stamps:  # the only loop: one cycle per candle, at its close
            clock.advance_to(int(opened_ms) + step)
            result = trader.run_cycle()
            if not result.ok:
                failed += 1
                if len(errors) < 5:
                    when = iso_utc(clock.wall())
                    errors.append(f"{when}: {result.error or result.blocked_reason}")
            # Read straight from the paper wallet: the harness is not the account's trader.
            equity.append(broker.fetch_balance().usd_equity)
        trades = [_trade(store, p) for p in store.closed_positions_since(0.0)]
        last_close = float(candles.close[-1])
        still_open = [_open_view(p, last_close) for p in store.open_positions()]
    return _report(candles, s, strategy.name, timeframe, trades, still_open, equity, failed, errors)


def _never_sleep(seconds: float) -> None:
    # Fault injection is off in a replay; a sleep would only slow the fast-forward.
    raise RuntimeError(f"the replay never sleeps (asked for {seconds} s)")


def _trade(store: Store, pos: PositionRecord) -> Trade:
    """A closed position with its fees; the store's P&L is already net of both."""
    entry = store.get_order(pos.entry_client_order_id) if pos.entry_client_order_id else None
    entry_fee = entry.fee_usd if entry else 0.0
    assert pos.exit_price is not None  # close_position always stores one
    exit_fee = sum(
        o.fee_usd
        for o in store.orders_with_status(StoredOrderStatus.FILLED)
        if o.position_id == pos.id and o.purpose == OrderPurpose.EXIT
    )
    return Trade(
        symbol=pos.symbol,
        entry_time=iso_utc(pos.opened_at),
        exit_time=iso_utc(pos.closed_at),
        entry_price=pos.entry_price,
        exit_price=pos.exit_price,
        quantity=pos.quantity,
        pnl_usd=pos.realized_pnl_usd or 0.0,
        fees_usd=entry_fee + exit_fee,
        reason=pos.close_reason or "",
    )


def _open_view(pos: PositionRecord, mark: float) -> dict:
    return {
        "symbol": pos.symbol,
        "entry_time": iso_utc(pos.opened_at),
        "entry_price": pos.entry_price,
        "quantity": pos.quantity,
        "mark_price": mark,
        "unrealized_pnl_usd": (mark - pos.entry_price) * pos.quantity,
    }


def max_drawdown(equity: list[float]) -> tuple[float, float]:
    """The largest fall from a running peak: ``(USD, fraction of that peak)``."""
    peak, worst_usd, worst_frac = -math.inf, 0.0, 0.0
    for value in equity:
        peak = max(peak, value)
        drop = peak - value
        if drop > worst_usd:
            worst_usd, worst_frac = drop, (drop / peak if peak > 0 else 0.0)
    return worst_usd, worst_frac


def _report(
    candles: Candles,
    s: ReplaySettings,
    name: str,
    timeframe: str,
    trades: list[Trade],
    still_open: list[dict],
    equity: list[float],
    failed: int,
    errors: list[str],
) -> ReplayReport:
    start, final = s.starting_usd, equity[-1]
    wins = sum(1 for t in trades if t.pnl_usd > 0)
    dd_usd, dd_frac = max_drawdown(equity)
    return ReplayReport(
        symbol=s.symbol,
        strategy=name,
        timeframe=timeframe,
        candles=len(candles),
        cycles=len(equity) - 1,
        first_candle=iso_utc(int(candles.timestamp_ms[0]) / 1000),
        last_candle=iso_utc(int(candles.timestamp_ms[-1]) / 1000),
        trades=trades,
        trade_count=len(trades),
        wins=wins,
        losses=len(trades) - wins,
        win_rate=wins / len(trades) if trades else None,
        starting_equity_usd=start,
        final_equity_usd=final,
        pnl_usd=final - start,
        pnl_pct=(final - start) / start * 100 if start > 0 else 0.0,
        max_drawdown_usd=dd_usd,
        max_drawdown_pct=dd_frac * 100,
        open_positions=still_open,
        failed_cycles=failed,
        cycle_errors=errors,
    )
