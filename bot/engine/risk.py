"""Position sizing and the limits that keep one account's losses bounded.

``RiskManager`` is per account and holds no mutable state of its own: the numbers it
judges (equity, open positions, the day's starting equity) are passed in, so the
same inputs always give the same answer. ``GlobalPositionCap`` is the one piece
shared between accounts: a counter whose lock is held only for an increment,
never across a broker call, so a slow account cannot hold up another.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, fields

from bot.engine.holdings import smallest_entry
from bot.model import MarketRules


@dataclass(frozen=True)
class RiskParams:
    """Per-account limits; fractions are of the account's USD equity."""

    risk_per_trade: float = 0.01
    max_position_fraction: float = 0.10
    max_open_positions: int = 5
    max_total_exposure: float = 0.80
    max_entries_per_cycle: int = 1
    daily_loss_limit: float = 0.05
    min_order_usd: float = 10.0  # the venue's minimum order notional
    min_balance_usd: float = 10.0  # below this equity the account only manages exits

    def __post_init__(self) -> None:
        # The type first: the limits below would take 2.5 positions, True, or a NaN floor.
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{f.name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{f.name} must be finite, got {value!r}")
            if f.type in ("int", int) and not isinstance(value, int):
                raise ValueError(f"{f.name} must be a whole number, got {value!r}")
        for name in (
            "risk_per_trade",
            "max_position_fraction",
            "max_total_exposure",
            "daily_loss_limit",
        ):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {value!r}")
        for name in ("max_open_positions", "max_entries_per_cycle"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        for name in ("min_order_usd", "min_balance_usd"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class AccountState:
    """What the risk check needs to know about an account right now."""

    equity_usd: float
    open_positions: int
    exposure_usd: float  # market value of open positions
    entries_this_cycle: int
    day_start_equity_usd: float | None


@dataclass(frozen=True)
class Sizing:
    """An entry size in base units, or zero with the reason a person can read."""

    quantity: float
    reason: str

    @property
    def ok(self) -> bool:
        return self.quantity > 0


class RiskManager:
    """Sizing and limits for one account."""

    def __init__(self, params: RiskParams | None = None, *, held: str | None = None) -> None:
        """``held``: why this account opens no new position at all (e.g. its per-account
        overrides could not be applied); exits are never held."""
        self.params = params or RiskParams()
        self.held = held

    def daily_loss_halted(self, state: AccountState) -> bool:
        """True when the day's loss reached the limit: no new entries until the next UTC day."""
        start = state.day_start_equity_usd
        if not start or start <= 0:
            return False
        return (start - state.equity_usd) / start >= self.params.daily_loss_limit

    def daily_loss(self, state: AccountState) -> dict[str, float]:
        """The day's loss so far, for a log line: percent lost, the limit, both equities."""
        start = state.day_start_equity_usd or 0.0
        lost = (start - state.equity_usd) / start if start > 0 else 0.0
        return {
            "loss_pct": round(100 * lost, 2),
            "limit_pct": round(100 * self.params.daily_loss_limit, 2),
            "equity_usd": round(state.equity_usd, 2),
            "day_start_equity_usd": round(start, 2),
        }

    def entry_block(self, state: AccountState) -> str | None:
        """Why no new entry may be opened now, or None when entries are allowed."""
        p = self.params
        if self.held:
            return self.held
        if state.equity_usd < p.min_balance_usd:
            return f"equity ${state.equity_usd:.2f} below the funded minimum: exits only"
        if self.daily_loss_halted(state):
            return "daily loss limit reached: no new entries until the next UTC day"
        if state.open_positions >= p.max_open_positions:
            return f"{state.open_positions} positions open (at most {p.max_open_positions})"
        if state.entries_this_cycle >= p.max_entries_per_cycle:
            return "already entered this cycle"
        if state.exposure_usd >= p.max_total_exposure * state.equity_usd:
            return "total exposure limit reached"
        return None

    def size_entry(
        self, state: AccountState, price: float, stop: float, rules: MarketRules | None = None
    ) -> Sizing:
        """Quantity to buy at ``price`` with a stop at ``stop``, within every limit.

        With the venue's ``rules`` the quantity is a whole number of lot steps the venue
        takes (its minimum amount and notional); an account too small for them gets none.
        """
        blocked = self.entry_block(state)
        if blocked:
            return Sizing(0.0, blocked)
        if not (math.isfinite(price) and math.isfinite(stop)) or not 0 < stop < price:
            return Sizing(0.0, f"invalid stop {stop!r} for price {price!r}")
        p = self.params
        risk_qty = p.risk_per_trade * state.equity_usd / (price - stop)
        cap_usd = min(
            p.max_position_fraction * state.equity_usd,
            p.max_total_exposure * state.equity_usd - state.exposure_usd,
        )
        qty = min(risk_qty, cap_usd / price)
        reason = "risk-sized" if qty == risk_qty else "capped"
        minimum = max(p.min_order_usd / price, smallest_entry(rules, price) if rules else 0.0)
        if qty < minimum:
            if minimum * price > cap_usd:
                return Sizing(
                    0.0,
                    f"account too small: the venue minimum ${minimum * price:.2f}"
                    f" exceeds the caps (${max(cap_usd, 0.0):.2f})",
                )
            qty, reason = minimum, "raised to the venue minimum"
        if rules is not None:
            qty = rules.floor_amount(qty)
            refused = rules.refusal(qty, price)
            if refused:
                return Sizing(0.0, f"account too small: {refused}")
        return Sizing(qty, reason)


class GlobalPositionCap:
    """``NIJA_MAX_TOTAL_POSITIONS`` across all accounts, or no cap when ``limit`` is None.

    Each account reserves a slot before it sends an entry, and after every cycle
    reports its true count (open positions plus entries still unresolved), which
    replaces its reservations. The lock guards a dict update, never a broker call.
    The daemon can also hold every entry (``hold``), e.g. while its database file is missing,
    or one account's (``hold_account``: an operator paused it). Exits are never held.
    """

    def __init__(self, limit: int | None = None) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"NIJA_MAX_TOTAL_POSITIONS must be at least 1, got {limit!r}")
        self.limit = limit
        self._counts: dict[str, int] = {}
        self._total = 0
        self._lock = threading.Lock()
        self._held: str | None = None
        self._accounts_held: dict[str, str] = {}

    @property
    def used(self) -> int:
        return self._total

    @property
    def held(self) -> str | None:
        """Why no account may open a position now (``hold``), or None."""
        return self._held

    def hold(self, reason: str | None) -> None:
        """Refuse every new position while ``reason`` is set; None lifts it. Exits are not held."""
        self._held = reason

    def hold_account(self, account_key: str, reason: str | None) -> None:
        """Refuse this account's new positions while ``reason`` is set; None lifts it."""
        with self._lock:
            if reason is None:
                self._accounts_held.pop(account_key, None)
            else:
                self._accounts_held[account_key] = reason

    def held_for(self, account_key: str) -> str | None:
        """Why ``account_key`` may open no position now (a process-wide or its own hold)."""
        return self._held or self._accounts_held.get(account_key)

    def try_reserve(self, account_key: str) -> bool:
        """Take a slot for ``account_key`` if one is free and no hold is set."""
        with self._lock:
            if self._held is not None or account_key in self._accounts_held:
                return False
            if self.limit is not None and self._total >= self.limit:
                return False
            self._counts[account_key] = self._counts.get(account_key, 0) + 1
            self._total += 1
            return True

    def sync(self, account_key: str, count: int) -> None:
        """Set this account's true count (found at start, or after a cycle)."""
        with self._lock:
            self._total += count - self._counts.get(account_key, 0)
            self._counts[account_key] = count
