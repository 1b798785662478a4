"""The plain types every layer speaks: accounts, candles, balances, orders, positions.

Adapters return these and nothing else: SDK objects never leave an adapter.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

# Currencies counted as US dollars when valuing an account.
USD_LIKE = frozenset({"USD", "ZUSD", "USDC", "USDT", "FDUSD"})
# Holdings worth less than this (USD) are dust, not positions.
DUST_USD = 1.0


class AssetClass(StrEnum):
    CRYPTO = "crypto"
    STOCKS = "stocks"


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"


class OrderStatus(StrEnum):
    OPEN = "open"  # accepted, not (fully) filled yet
    FILLED = "filled"
    CANCELED = "canceled"  # includes expired; ``filled`` may be > 0
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class AccountRef:
    """Which account a broker object trades: ``platform/platform/KRAKEN``, ``user/alice/COINBASE``."""

    account_type: str
    account_id: str
    broker: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "account_type", self.account_type.lower())
        object.__setattr__(self, "account_id", self.account_id.lower())
        object.__setattr__(self, "broker", self.broker.upper())

    @property
    def key(self) -> str:
        return f"{self.account_type}/{self.account_id}/{self.broker}"

    def __str__(self) -> str:
        return self.key


@dataclass(frozen=True, slots=True)
class Balance:
    """Cash per currency, and the account's worth in USD.

    ``usd_equity`` is cash plus holdings valued at last price; funded detection uses it.
    ``funding_usd`` is what the venue holds for the account where orders cannot spend it
    (OKX's funding account): never part of ``usd_equity``. ``notes`` tell the operator
    such things ("held in funding; transfer to trading to trade").
    ``free`` is what orders may spend now per currency (less what open orders hold), where
    the adapter reports it apart from ``cash``; ``free_amount`` reads either.
    """

    cash: dict[str, float]
    usd_cash: float
    usd_equity: float
    funding_usd: float = 0.0
    notes: tuple[str, ...] = ()
    free: dict[str, float] | None = None

    def free_amount(self, currency: str) -> float | None:
        """What an order may spend of ``currency`` now: from ``free`` when the adapter reports
        it, else from ``cash``; None when the balance does not list the currency at all
        (a stock broker's cash lists dollars only)."""
        amounts = self.free if self.free is not None else self.cash
        return amounts.get(currency)


@dataclass(frozen=True, slots=True)
class Candles:
    """OHLCV, oldest first; ``timestamp_ms`` is the candle's open time in UTC milliseconds."""

    timestamp_ms: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.close)

    @classmethod
    def from_rows(cls, rows: list[list[float]] | list[tuple[float, ...]]) -> Candles:
        """Build from ``[timestamp_ms, open, high, low, close, volume]`` rows, sorting oldest first."""
        arr = np.asarray(sorted(rows, key=lambda r: r[0]), dtype=float).reshape(-1, 6)
        return cls(
            timestamp_ms=arr[:, 0].astype(np.int64),
            open=arr[:, 1].copy(),
            high=arr[:, 2].copy(),
            low=arr[:, 3].copy(),
            close=arr[:, 4].copy(),
            volume=arr[:, 5].copy(),
        )

    def closed_by(self, now_seconds: float, timeframe: str) -> Candles:
        """Only the candles that had closed at ``now`` (venues also return the one forming)."""
        step_ms = timeframe_seconds(timeframe) * 1000
        keep = int(np.searchsorted(self.timestamp_ms + step_ms, now_seconds * 1000, side="right"))
        if keep == len(self):
            return self
        return Candles(
            self.timestamp_ms[:keep],
            self.open[:keep],
            self.high[:keep],
            self.low[:keep],
            self.close[:keep],
            self.volume[:keep],
        )


@dataclass(frozen=True, slots=True)
class Ticker:
    symbol: str
    bid: float
    ask: float
    last: float


class VenueCondition(StrEnum):
    """What a venue's own public status check says about trading there."""

    OK = "ok"  # trading normally
    MAINTENANCE = "maintenance"  # offline: no orders placed or cancelled
    CANCEL_ONLY = "cancel_only"  # orders may be cancelled, none placed
    POST_ONLY = "post_only"  # only post-only limit orders (and cancels): no market orders
    UNKNOWN = "unknown"  # the venue has no status check, or its answer was not understood


@dataclass(frozen=True, slots=True)
class VenueStatus:
    """One answer of a venue's public status check (``Broker.fetch_status``)."""

    condition: VenueCondition
    message: str = ""  # the venue's own words, or why the condition is unknown


@dataclass(frozen=True, slots=True)
class Position:
    """A spot holding above dust, or a broker-side position (Alpaca)."""

    symbol: str
    quantity: float
    avg_entry_price: float | None = None
    market_value_usd: float | None = None


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What to send. Exactly one of ``amount`` (base units) or ``quote_amount`` (notional).

    ``last_look``, when given, is run by the adapter's transport just before the order's
    request leaves (after any request-budget wait), and may raise to withdraw it: with
    leases, the check that this node still holds the account's lease (``bot.store.fence``).
    """

    symbol: str
    side: Side
    type: OrderType
    client_order_id: str
    amount: float | None = None
    quote_amount: float | None = None
    limit_price: float | None = None
    last_look: Callable[[], None] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.client_order_id:
            raise ValueError("client_order_id is required on every order")
        if (self.amount is None) == (self.quote_amount is None):
            raise ValueError("exactly one of amount or quote_amount must be given")
        size = self.amount if self.amount is not None else self.quote_amount
        if not (isinstance(size, int | float) and math.isfinite(size) and size > 0):
            raise ValueError("order size must be a positive finite number")
        if self.type is OrderType.LIMIT:
            if self.limit_price is None or not self.limit_price > 0:
                raise ValueError("a limit order needs a positive limit_price")
            if self.amount is None:
                raise ValueError("a limit order is sized in base units (amount)")


@dataclass(frozen=True, slots=True)
class Order:
    """An order as the venue reports it."""

    client_order_id: str
    venue_order_id: str
    symbol: str
    side: Side
    type: OrderType
    status: OrderStatus
    amount: float | None  # requested base units, when known
    filled: float = 0.0  # base units filled so far
    average_price: float | None = None
    fee_usd: float = 0.0
    reason: str | None = None  # the venue's words for a rejection or cancel
    extra: dict[str, str] = field(default_factory=dict)
    # The fee as the venue charged it: Binance and OKX take a spot buy's fee in the coin
    # bought, so what the account holds after a buy is ``filled`` less this fee.
    fee: float = 0.0
    fee_currency: str | None = None

    def base_received(self, base: str) -> float:
        """Base units this fill added to (a buy) or took from (a sell) the account, net of a
        fee charged in ``base``."""
        fee_in_base = self.fee if self.fee_currency == base else 0.0
        if self.side is Side.BUY:
            return max(0.0, self.filled - fee_in_base)
        return self.filled + fee_in_base


@dataclass(frozen=True, slots=True)
class MarketRules:
    """What a venue accepts for one symbol, from its own market metadata.

    ``None`` means the venue publishes no such limit. Amounts are in base units,
    notionals in the quote currency.
    """

    symbol: str
    base: str
    quote: str
    amount_step: float | None = None  # lot size: an order's amount is a multiple of this
    min_amount: float | None = None
    min_notional: float | None = None  # amount × price
    price_step: float | None = None
    fractionable: bool = True  # False: whole units only (Alpaca's non-fractionable stocks)

    def floor_amount(self, amount: float) -> float:
        """``amount`` rounded down to what the venue accepts (its lot step; whole units)."""
        step = self.amount_step
        if not self.fractionable:
            step = max(step or 1.0, 1.0)
        if not step:
            return amount
        # A tiny tolerance keeps 0.3 / 0.1 = 2.9999999999999996 from losing a whole step; it
        # grows with the count of steps (6.630369857 / 1e-9 = 6630369856.999999).
        units = amount / step
        return min(amount, math.floor(units + max(1e-9, abs(units) * 1e-12)) * step)

    def refusal(self, amount: float, price: float) -> str | None:
        """Why the venue's published rules would refuse ``amount`` at ``price``, or None."""
        if amount <= 0:
            return "amount is zero after rounding to the lot step"
        if self.min_amount is not None and amount < self.min_amount:
            return f"amount {amount:g} below the minimum {self.min_amount:g} {self.base}"
        if self.min_notional is not None and amount * price < self.min_notional:
            return (
                f"notional {amount * price:.2f} below the minimum "
                f"{self.min_notional:g} {self.quote}"
            )
        if not self.fractionable and amount != int(amount):
            return f"{self.symbol} trades in whole units only"
        return None


@dataclass(frozen=True, slots=True)
class Credentials:
    """API credentials. Values never appear in a repr, a log or an exception message."""

    api_key: str = field(default="", repr=False)
    api_secret: str = field(default="", repr=False)
    passphrase: str = field(default="", repr=False)

    def secrets(self) -> list[str]:
        """Every non-empty value, for the log redactor."""
        return [v for v in (self.api_key, self.api_secret, self.passphrase) if v]


@dataclass(frozen=True, slots=True)
class BrokerSpec:
    """Everything an adapter needs to build its client for one account."""

    account: AccountRef
    credentials: Credentials = field(default_factory=Credentials)
    symbols: tuple[str, ...] = ()
    base_url: str | None = None  # every REST call goes here (sandbox, emulator)
    data_url: str | None = None  # Alpaca market data
    paper_endpoint: bool = True  # Alpaca: paper API unless ALPACA_PAPER=false
    timeout_seconds: float = 15.0
    rate_limit: bool = True  # spend the request budgets; tests against the emulator turn it off


def timeframe_seconds(timeframe: str) -> int:
    """``"5m"`` → 300. Supports m, h, d."""
    units = {"m": 60, "h": 3600, "d": 86400}
    try:
        return int(timeframe[:-1]) * units[timeframe[-1]]
    except (KeyError, ValueError):
        raise ValueError(f"unsupported timeframe {timeframe!r} (use e.g. 1m, 5m, 1h, 1d)") from None
