"""The Strategy interface: what every strategy is given and what it answers.

A strategy never places orders, reads the clock or keeps state between calls: the
caller passes closed candles, the position as it knows it and ``now``; the strategy
answers with at most one ``Intent``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from bot.model import Candles

IntentKind = Literal["enter", "exit", "adjust"]
T = TypeVar("T")


class Memo(Protocol):
    """Values derived from one set of candles, computed once and shared.

    The venue layer's candle snapshot is one: every account trading the symbol reads the
    same snapshot, so indicators computed by the first account serve all the others. A
    strategy keys what it stores by everything the values depend on besides the candles
    (its parameters); without a memo it computes them itself.
    """

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``, or the value stored under ``key`` by an earlier call."""
        ...


@dataclass(frozen=True, slots=True)
class Intent:
    """What a strategy wants done with one symbol.

    ``price`` is the reference price (the latest close). For ``enter``: the initial
    ``stop`` and ``target``. For ``adjust``: the position's new ``stop``, its unchanged
    ``target``, its new ``highest_close`` and whether break-even has now been done.
    ``intent_id`` is deterministic: ``SYMBOL:enter:<candle ms>`` for an entry,
    ``SYMBOL:exit:<opened_at>`` for an exit (one exit per position, whatever the reason)
    and ``SYMBOL:adjust:<opened_at>:<candle ms>`` for an adjustment.
    """

    kind: IntentKind
    symbol: str
    reason: str
    intent_id: str
    price: float
    stop: float | None = None
    target: float | None = None
    highest_close: float | None = None
    atr: float | None = None
    breakeven_done: bool = False


@dataclass(frozen=True, slots=True)
class PositionView:
    """What a strategy needs to know about an open long position.

    ``initial_risk`` is entry - initial stop, per unit; ``opened_at`` is epoch seconds.
    """

    symbol: str
    quantity: float
    entry_price: float
    stop: float
    target: float | None
    initial_risk: float
    highest_close: float
    opened_at: float
    breakeven_done: bool = False


class Strategy(Protocol):
    """A strategy: stateless, one instance per account."""

    @property
    def name(self) -> str:
        """The name ``get_strategy`` knows it by."""
        ...

    @property
    def timeframe(self) -> str:
        """The candle timeframe it decides on, e.g. ``"5m"``."""
        ...

    @property
    def history(self) -> int:
        """How many candles ``decide`` should be given."""
        ...

    def decide(
        self,
        symbol: str,
        candles: Candles,
        position: PositionView | None,
        now: float,
        memo: Memo | None = None,
    ) -> Intent | None:
        """The intent for ``symbol`` given closed ``candles`` (oldest first), or None.

        ``memo``: where values derived from ``candles`` may be shared with other accounts.
        """
        ...

    def protective_levels(self, candles: Candles, entry: float) -> tuple[float, float]:
        """``(stop, target)`` for a long entered at ``entry`` (entries and adopted holdings)."""
        ...

    def no_entry(self, candles: Candles, memo: Memo | None = None) -> NoEntry | None:
        """Why ``decide`` would not enter on ``candles`` with no position; None when it would."""
        ...


@dataclass(frozen=True, slots=True)
class NoEntry:
    """Why a strategy would not enter: ``reason`` in a few words, e.g. ``"adx 14<20"``.

    ``failing`` counts the entry checks that failed, so a caller can name the symbol
    nearest to an entry.
    """

    reason: str
    failing: int
