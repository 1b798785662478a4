"""Reconciliation at start: make the store agree with the venue before trading.

Orders the store holds as open or ambiguous are looked up and settled; holdings the
venue reports that the store does not know are adopted and managed with the
default stop; positions the store holds that the venue no longer has are closed.
A failed venue query raises and leaves everything as it was: it is never read as
"no orders" or "flat", and trading waits until a later attempt succeeds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.clock import Clock
from bot.engine.guarded import GuardedBroker
from bot.engine.orders import AMBIGUOUS, OrderDesk
from bot.model import DUST_USD, Position
from bot.store.writer import Store
from bot.strategy.trend_pullback import Strategy

# A holding within this fraction of the stored quantity counts as the same.
QUANTITY_TOLERANCE = 0.01


@dataclass
class ReconcileReport:
    """What reconciliation did; ``done`` is False while orders are still ambiguous."""

    done: bool = False
    settled_orders: int = 0
    unresolved_orders: int = 0
    adopted: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    resized: list[str] = field(default_factory=list)
    ignored_holdings: list[str] = field(default_factory=list)


def _is_dust(holding: Position) -> bool:
    """Too small to trade or to protect: a rounding remainder, never a position.

    Adopting one would try to sell a size the venue refuses, again and again.
    """
    if holding.quantity <= 0:
        return True
    value = holding.market_value_usd
    if value is None and holding.avg_entry_price is not None:
        value = holding.quantity * holding.avg_entry_price
    return value is not None and value < DUST_USD


class Reconciler:
    """Brings one account's store in line with its venue."""

    def __init__(
        self,
        broker: GuardedBroker,
        desk: OrderDesk,
        store: Store,
        strategy: Strategy,
        symbols: list[str],
        clock: Clock,
        log,
    ) -> None:
        self.broker = broker
        self.desk = desk
        self.store = store
        self.strategy = strategy
        self.symbols = symbols
        self.clock = clock
        self.log = log

    def run(self) -> ReconcileReport:
        """One attempt. Raises when a venue query fails (nothing is changed by that failure)."""
        report = ReconcileReport()
        for rec in self.desk.unresolved():
            if self.desk.resolve(rec):
                report.settled_orders += 1
        ambiguous = [r for r in self.desk.unresolved() if r.status in AMBIGUOUS]
        report.unresolved_orders = len(ambiguous)
        if ambiguous:
            # Until they are settled we cannot know what we hold.
            self.log.warning("reconcile_waiting", ambiguous_orders=len(ambiguous))
            return report
        held = {p.symbol: p for p in self.broker.fetch_positions() if not _is_dust(p)}
        stored = {p.symbol: p for p in self.store.open_positions()}
        for symbol, pos in stored.items():
            venue = held.get(symbol)
            if venue is None:
                self.store.close_position(
                    pos.id,
                    pos.entry_price,
                    "not held at the venue at reconciliation (exit price unknown)",
                    self.clock.wall(),
                    0.0,
                )
                report.closed.append(symbol)
            elif abs(venue.quantity - pos.quantity) > QUANTITY_TOLERANCE * pos.quantity:
                self.store.update_position(pos.id, quantity=venue.quantity)
                report.resized.append(symbol)
        for symbol, venue in held.items():
            if symbol in stored:
                continue
            if symbol not in self.symbols:
                # Not ours to manage: NIJA never sells what it was not told to trade.
                report.ignored_holdings.append(symbol)
                continue
            self._adopt(venue)
            report.adopted.append(symbol)
        report.done = True
        self.log.info(
            "reconciled",
            settled_orders=report.settled_orders,
            adopted=report.adopted,
            closed=report.closed,
            resized=report.resized,
            not_managed=report.ignored_holdings,
        )
        return report

    def _adopt(self, venue: Position) -> None:
        candles = self.broker.fetch_candles(
            venue.symbol, self.strategy.timeframe, self.strategy.history
        )
        price = float(candles.close[-1])
        entry = venue.avg_entry_price or price
        stop, target = self.strategy.protective_levels(candles, entry)
        self.store.open_position(
            venue.symbol,
            venue.quantity,
            entry,
            stop,
            target,
            entry - stop,
            self.clock.wall(),
            external=True,
        )
        self.log.warning(
            "external_position_adopted", symbol=venue.symbol, quantity=venue.quantity, stop=stop
        )
