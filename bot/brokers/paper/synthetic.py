"""A synthetic, deterministic crypto market: the data source of the no-keys demo.

The log price of a symbol, sampled at every whole UTC minute, is the sum of

* trend legs: straight lines between random levels at knots 6 hours, 2, 10 and 40
  days apart, so the drift changes sign and size from leg to leg (trends, pullbacks);
* an hour-by-hour random walk inside each UTC day, pinned to zero at midnight
  (a Brownian bridge), scaled by that day's volatility regime;
* a minute-by-minute random walk inside each hour, pinned to zero on the hour,
  scaled by the volatility regime of its 4-hour window (calm, normal or wild);
* optionally (the demo's), a ``TrendShape``: a regular rally of rising legs, each ended
  by a pause, a sharp drop and a rebound, then a slide back to where the rally began,
  with the random parts above scaled down so that the shape shows through.

Every random number is a pure hash of (seed, symbol, stream, index), so any minute can
be computed without the minutes before it: the candle for (symbol, timeframe, bucket)
is the same however often and in whatever order it is asked for, and any clock works.
``time_shift`` relabels time: at clock time ``t`` the market shows the path's moment
``t + time_shift`` (the demo replays the same scene whenever it is started).
Everything is vectorised with numpy; closed candles are cached.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from bot.clock import SYSTEM_CLOCK, Clock
from bot.model import Candles, Ticker, timeframe_seconds

DEFAULT_SYMBOLS = ("BTC/USD", "ETH/USD", "SOL/USD")
DEFAULT_PRICES = {"BTC/USD": 60000.0, "ETH/USD": 3000.0, "SOL/USD": 150.0}
FALLBACK_PRICE = 100.0

# (knot spacing in minutes, amplitude in log price) of the trend legs.
_TREND_SCALES = ((360, 0.008), (2880, 0.03), (14400, 0.07), (57600, 0.15))
_HOUR_SIGMA = 0.003  # log-price step per hour inside a day
_MINUTE_SIGMA = 0.0007  # log-price step per minute inside an hour
_REGIMES = ((0.25, 0.5), (0.80, 1.0), (1.01, 2.2))  # (cumulative probability, volatility)
_USD_PER_MINUTE = 200_000.0  # typical traded value, for volumes

_U64 = np.uint64
_GOLDEN = _U64(0x9E3779B97F4A7C15)


@dataclass(frozen=True, slots=True)
class TrendShape:
    """A regular shape added to each symbol's log price: the demo's rallies and pullbacks.

    One period is ``legs`` legs, then a slide. A leg rises by ``rise`` over ``rise_minutes``,
    pauses (flat) for ``pause_minutes``, drops by ``drop`` over ``drop_minutes`` and
    rebounds by ``rebound`` over ``rebound_minutes``; the slide falls back to the period's
    starting level over ``slide_minutes``, so prices stay near their start prices.
    ``noise`` scales the random parts (trend legs and both walks); volumes are not scaled.
    The i-th symbol's shape runs ``stagger_minutes`` x i ahead, so symbols take turns.
    Amounts are in log price; durations in whole minutes, each at least 1.
    """

    legs: int = 8
    rise: float = 0.02
    rise_minutes: int = 60
    pause_minutes: int = 20
    drop: float = 0.02
    drop_minutes: int = 10
    rebound: float = 0.012
    rebound_minutes: int = 5
    slide_minutes: int = 60
    noise: float = 0.3
    stagger_minutes: int = 270  # a third of a period: while one symbol slides, two rally

    def __post_init__(self) -> None:
        counts = (
            self.legs,
            self.rise_minutes,
            self.pause_minutes,
            self.drop_minutes,
            self.rebound_minutes,
            self.slide_minutes,
            self.stagger_minutes + 1,
        )
        if any(not isinstance(n, int) or n < 1 for n in counts):
            raise ValueError("TrendShape: legs and durations must be whole numbers >= 1")
        amounts = (self.rise, self.drop, self.rebound, self.noise)
        if not all(math.isfinite(a) and a >= 0 for a in amounts):
            raise ValueError("TrendShape: amounts and noise must be finite and >= 0")

    @property
    def leg_minutes(self) -> int:
        """The length of one leg."""
        return self.rise_minutes + self.pause_minutes + self.drop_minutes + self.rebound_minutes

    @property
    def period_minutes(self) -> int:
        """The length of one period: the legs and the slide."""
        return self.legs * self.leg_minutes + self.slide_minutes

    def log_level(self, minutes: np.ndarray) -> np.ndarray:
        """The shape's log-price level at each whole minute (0 where each period begins)."""
        net = self.rise - self.drop + self.rebound  # what one leg gains
        top = self.legs * net
        pos = np.mod(minutes, self.period_minutes)
        leg = np.minimum(pos // self.leg_minutes, self.legs)
        knots = np.cumsum([0, self.rise_minutes, self.pause_minutes, self.drop_minutes])
        knots = np.append(knots, self.leg_minutes)
        levels = [0.0, self.rise, self.rise, self.rise - self.drop, net]
        in_leg = leg * net + np.interp(pos - leg * self.leg_minutes, knots, levels)
        sliding = pos - self.legs * self.leg_minutes
        slide = top * (1.0 - sliding / self.slide_minutes)
        return np.where(sliding >= 0, slide, in_leg)


def _splitmix(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: a well-mixed 64-bit hash of each element."""
    x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def _uniform(key: int, idx: np.ndarray) -> np.ndarray:
    """Uniforms in (0, 1): element i of the splitmix64 sequence seeded with ``key``."""
    with np.errstate(over="ignore"):
        state = _U64(key) + (idx.astype(np.uint64) + _U64(1)) * _GOLDEN
        bits = _splitmix(state) >> _U64(11)
    return (bits.astype(np.float64) + 0.5) * 2.0**-53


def _normal(key: int, idx: np.ndarray) -> np.ndarray:
    """Standard normals, one per index (Box-Muller on two hashed uniforms)."""
    idx = np.asarray(idx, dtype=np.int64)
    u1 = _uniform(key, 2 * idx)
    u2 = _uniform(key, 2 * idx + 1)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * math.pi * u2)


def _stream_key(seed: int, symbol: str, stream: str) -> int:
    """A stable 64-bit key per (seed, symbol, stream): stable across processes, unlike hash()."""
    digest = hashlib.blake2b(f"{seed}|{symbol}|{stream}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _regime(key: int, window: np.ndarray) -> np.ndarray:
    """Volatility multiplier of each window: calm, normal or wild."""
    u = _uniform(key, window)
    out = np.full(u.shape, _REGIMES[-1][1])
    for threshold, vol in reversed(_REGIMES[:-1]):
        out = np.where(u < threshold, vol, out)
    return out


def _bridge(key: int, minutes: np.ndarray, block: int, step: int, scale: np.ndarray) -> np.ndarray:
    """A random walk with ``block // step`` steps per block, pinned to 0 at block edges.

    ``scale`` is the volatility of each block from ``minutes[0] // block`` on. Whole blocks
    are always generated, so a minute's value never depends on which range was asked for.
    """
    n = block // step
    blocks = minutes // block
    first = blocks[0]
    count = int(blocks[-1] - first) + 1
    idx = (first + np.arange(count))[:, None] * n + np.arange(n)[None, :]
    walk = np.zeros((count, n + 1))
    walk[:, 1:] = np.cumsum(_normal(key, idx), axis=1)
    bridge = (walk - np.linspace(0.0, 1.0, n + 1)[None, :] * walk[:, -1:]) * scale[:, None]
    row = blocks - first
    pos = (minutes % block) / step
    i = np.floor(pos).astype(np.int64)
    frac = pos - i
    upper = np.minimum(i + 1, n)
    return bridge[row, i] * (1.0 - frac) + bridge[row, upper] * frac


class _SymbolPath:
    """The deterministic minute path of one symbol (log price relative to its start price)."""

    def __init__(
        self,
        seed: int,
        symbol: str,
        start_price: float,
        shape: TrendShape | None = None,
        shape_lead: int = 0,
    ) -> None:
        self.symbol = symbol
        self.start_price = start_price
        self.shape = shape
        self.shape_lead = shape_lead  # minutes this symbol's shape runs ahead
        self.noise = shape.noise if shape is not None else 1.0
        self.keys = {
            name: _stream_key(seed, symbol, name)
            for name in ("hour", "minute", "day_regime", "regime", "wick_hi", "wick_lo", "volume")
        }
        self.trend_keys = [_stream_key(seed, symbol, f"trend{s}") for s, _ in _TREND_SCALES]

    def log_prices(self, minutes: np.ndarray) -> np.ndarray:
        """Log price (relative to the start price) at each whole minute (contiguous, ascending)."""
        out = np.zeros(len(minutes))
        for key, (spacing, amplitude) in zip(self.trend_keys, _TREND_SCALES, strict=True):
            knot = minutes // spacing
            level = _normal(key, np.arange(knot[0], knot[-1] + 2))  # each knot's level, once
            i = knot - knot[0]
            frac = (minutes % spacing) / spacing
            out += amplitude * (level[i] * (1.0 - frac) + level[i + 1] * frac)
        days = np.arange(minutes[0] // 1440, minutes[-1] // 1440 + 1)
        day_vol = _HOUR_SIGMA * _regime(self.keys["day_regime"], days)
        out += _bridge(self.keys["hour"], minutes, 1440, 60, day_vol)
        hours = np.arange(minutes[0] // 60, minutes[-1] // 60 + 1)
        out += _bridge(self.keys["minute"], minutes, 60, 1, self.minute_vol(hours * 60))
        out *= self.noise
        if self.shape is not None:
            out += self.shape.log_level(minutes + self.shape_lead)
        return out

    def minute_vol(self, minutes: np.ndarray) -> np.ndarray:
        """Per-minute volatility of the random walk: the regime of the minute's 4-hour window."""
        return _MINUTE_SIGMA * _regime(self.keys["regime"], minutes // 240)

    def minute_bars(self, m0: int, m1: int) -> tuple[np.ndarray, ...]:
        """Prices at minutes m0..m1 (inclusive), and high, low, volume of minutes m0..m1-1."""
        nodes = np.arange(m0, m1 + 1, dtype=np.int64)
        log_p = self.log_prices(nodes)
        inner = nodes[:-1]
        vol = self.minute_vol(inner)
        wick = 0.5 * self.noise * vol
        high = np.maximum(log_p[:-1], log_p[1:]) + wick * np.abs(
            _normal(self.keys["wick_hi"], inner)
        )
        low = np.minimum(log_p[:-1], log_p[1:]) - wick * np.abs(
            _normal(self.keys["wick_lo"], inner)
        )
        noise = np.exp(0.5 * _normal(self.keys["volume"], inner))
        volume = _USD_PER_MINUTE / self.start_price * (vol / _MINUTE_SIGMA) * noise
        p0 = self.start_price
        return p0 * np.exp(log_p), p0 * np.exp(high), p0 * np.exp(low), volume


def _closed_candles(path: _SymbolPath, per_candle: int, first: int, count: int) -> tuple:
    """OHLCV of ``count`` whole candles of ``per_candle`` minutes from bucket ``first`` on."""
    m0 = first * per_candle
    prices, high, low, volume = path.minute_bars(m0, m0 + count * per_candle)
    out = (
        prices[:-1:per_candle],
        high.reshape(count, per_candle).max(axis=1),
        low.reshape(count, per_candle).min(axis=1),
        prices[per_candle::per_candle],
        volume.reshape(count, per_candle).sum(axis=1),
    )
    for arr in out:
        arr.flags.writeable = False  # shared by every caller through the cache
    return out


class SyntheticMarket:
    """Deterministic prices and candles for a few symbols; implements ``MarketData``.

    ``shape`` adds a ``TrendShape`` (the demo's); ``time_shift`` (seconds) makes the market
    show, at clock time ``t``, the path's moment ``t + time_shift``: candles and prices are
    those of that moment, candle timestamps are in clock time.
    """

    def __init__(
        self,
        symbols: Sequence[str] = DEFAULT_SYMBOLS,
        seed: int = 0,
        clock: Clock = SYSTEM_CLOCK,
        start_prices: dict[str, float] | None = None,
        spread_bps: float = 2.0,
        shape: TrendShape | None = None,
        time_shift: float = 0.0,
    ) -> None:
        prices = {**DEFAULT_PRICES, **(start_prices or {})}
        self.seed = seed
        self.spread_bps = spread_bps
        self.shape = shape
        self._clock = clock
        # Whole milliseconds, so candle timestamps (in clock time) stay exact integers.
        self._shift_ms = round(time_shift * 1000)
        self._symbols = list(symbols)
        lead = shape.stagger_minutes if shape is not None else 0
        self._paths = {
            s: _SymbolPath(seed, s, float(prices.get(s, FALLBACK_PRICE)), shape, i * lead)
            for i, s in enumerate(self._symbols)
        }
        # Closed candles never change; the demo asks for the same ones every few seconds.
        self._closed = lru_cache(maxsize=64)(_closed_candles)

    def __repr__(self) -> str:
        return f"SyntheticMarket(symbols={self._symbols!r}, seed={self.seed}, shape={self.shape})"

    def symbols(self) -> list[str]:
        """The symbols this market lists."""
        return list(self._symbols)

    def price_at(self, symbol: str, t: float) -> float:
        """Last price at clock time ``t`` (seconds): interpolated between whole minutes."""
        return _last(self._path(symbol), t + self._shift_ms / 1000)

    def fetch_ticker(self, symbol: str) -> Ticker:
        """Bid and ask ``spread_bps`` apart around the last price now."""
        last = _last(self._path(symbol), self._now())
        half = last * self.spread_bps / 20_000.0
        return Ticker(symbol=symbol, bid=last - half, ask=last + half, last=last)

    def fetch_candles(self, symbol: str, timeframe: str = "5m", limit: int = 200) -> Candles:
        """The last ``limit`` candles, oldest first, the newest being the one still open now."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        tf = timeframe_seconds(timeframe)
        if tf % 60:
            raise ValueError(f"timeframe {timeframe!r} is not a whole number of minutes")
        path = self._path(symbol)
        per_candle = tf // 60
        now = self._now()
        current = math.floor(now / tf)
        first = current - limit + 1
        closed = self._closed(path, per_candle, first, limit - 1) if limit > 1 else None
        o, h, lo, c, v = self._current_candle(path, per_candle, current, now)
        cols = [np.array([x]) for x in (o, h, lo, c, v)]
        if closed is not None:
            cols = [np.concatenate([a, b]) for a, b in zip(closed, cols, strict=True)]
        stamps = (np.arange(first, current + 1, dtype=np.int64)) * tf * 1000 - self._shift_ms
        return Candles(stamps, cols[0], cols[1], cols[2], cols[3], cols[4])

    def _current_candle(
        self, path: _SymbolPath, per_candle: int, bucket: int, now: float
    ) -> tuple[float, ...]:
        """The still-open candle: whole minutes so far plus the running minute up to ``now``."""
        m0 = bucket * per_candle
        minute = math.floor(now / 60.0)
        prices, high, low, volume = path.minute_bars(m0, minute + 1)
        frac = now / 60.0 - minute
        last = _last(path, now)
        # Whole minutes [m0, minute) plus the running one, which reached from its open to ``last``.
        done = minute - m0
        hi = max(float(high[:done].max()) if done else -math.inf, prices[done], last)
        lo = min(float(low[:done].min()) if done else math.inf, prices[done], last)
        vol = float(volume[:done].sum()) + frac * float(volume[done])
        return float(prices[0]), hi, lo, last, vol

    def _path(self, symbol: str) -> _SymbolPath:
        try:
            return self._paths[symbol]
        except KeyError:
            raise ValueError(f"SyntheticMarket does not list {symbol!r}") from None

    def _now(self) -> float:
        """The path's moment now: the clock's time plus the shift."""
        now = float(self._clock.wall()) + self._shift_ms / 1000
        if now < 0:
            raise ValueError("the clock is before 1970")
        return now


def _last(path: _SymbolPath, t: float) -> float:
    """The path's price at moment ``t`` (seconds): interpolated between whole minutes."""
    minute = math.floor(t / 60.0)
    frac = t / 60.0 - minute
    log_p = path.log_prices(np.array([minute, minute + 1], dtype=np.int64))
    return path.start_price * math.exp(log_p[0] * (1 - frac) + log_p[1] * frac)
