"""Reconciliation at start: make the store agree with the venue before trading.

Orders the store holds as open or ambiguous are looked up and settled; holdings the
venue reports that the store does not know are adopted and managed with the
default stop; positions the store holds that the venue no longer has are closed (with the
P&L of the parts of them already sold: the rest's exit price is unknown).
A stored position takes the venue's quantity at any drift, however small (a fee taken
in the coin, a rounding remainder): what the account holds is what is sold later. What
the venue's minimums refuse to take is dust: recorded, never adopted. Exits flagged
blocked are unblocked (a restart is the operator's word that they have looked).
A failed venue query raises and leaves everything as it was: it is never read as
"no orders" or "flat", and trading waits until a later attempt succeeds. An order whose
absence can no longer be proven does not hold the others up: its symbol is left as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.clock import Clock
from bot.engine.guarded import GuardedBroker
from bot.engine.holdings import NOISE, RulesBook, base_of, dust_refusal
from bot.engine.orders import AMBIGUOUS, OrderDesk
from bot.errors import VenueDataError, VenueRefused
from bot.model import DUST_USD, Balance, MarketRules, Position
from bot.store.writer import PositionRecord, Store
from bot.strategy.base import Strategy
from bot.venue.market import VenueMarket


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
    dust: dict[str, float] = field(default_factory=dict)  # asset → remainder recorded
    left_unknown: list[str] = field(default_factory=list)  # symbols of unprovable orders


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
        *,
        market: VenueMarket,
        rules: RulesBook | None = None,
    ) -> None:
        self.broker = broker
        self.market = market  # the venue's shared candles, for the levels of adopted holdings
        self.desk = desk
        self.store = store
        self.strategy = strategy
        self.symbols = symbols
        self.clock = clock
        self.log = log
        self.rules = rules

    def run(self, balance: Balance | None = None) -> ReconcileReport:
        """One attempt (``balance``: the cycle's, else asked for). Raises when a venue query
        fails (nothing is changed by that failure)."""
        report = ReconcileReport()
        for rec in self.desk.unresolved():
            if self.desk.resolve(rec):
                report.settled_orders += 1
        now = self.clock.wall()
        ambiguous = [r for r in self.desk.unresolved() if r.status in AMBIGUOUS]
        waiting = [r for r in ambiguous if not self.desk.unprovable(r, now)]
        report.left_unknown = sorted({r.symbol for r in ambiguous} - {r.symbol for r in waiting})
        report.unresolved_orders = len(ambiguous)
        if waiting:
            # Until they are settled we cannot know what we hold.
            self.log.warning("reconcile_waiting", ambiguous_orders=len(waiting))
            return report
        untouchable = set(report.left_unknown)
        balance = balance or self.broker.fetch_balance()
        held = {p.symbol: p for p in self.broker.fetch_positions() if p.quantity > 0}
        stored = {p.symbol: p for p in self.store.open_positions()}
        dust = {d.asset: d.quantity for d in self.store.dust()}
        for symbol, pos in stored.items():
            if symbol not in untouchable:
                price = _venue_price(held, symbol, pos.entry_price)
                self._check(pos, _venue_quantity(held, balance, symbol), price, dust, report)
        for symbol, venue in held.items():
            if symbol in stored or symbol in untouchable or _is_dust(venue):
                continue
            if symbol not in self.symbols:
                # Not ours to manage: NIJA never sells what it was not told to trade.
                report.ignored_holdings.append(symbol)
                continue
            self._adopt(venue, dust, report)
        for asset in list(dust):  # what is left of each recorded remainder, as the venue has it
            if all(base_of(p.symbol) != asset for p in self.store.open_positions()):
                dust[asset] = _venue_quantity(held, balance, f"{asset}/")
        for asset, quantity in dust.items():
            self.store.set_dust(asset, quantity)
        report.dust = {a: q for a, q in dust.items() if q > 0}
        report.done = True
        self.log.info(
            "reconciled",
            settled_orders=report.settled_orders,
            adopted=report.adopted,
            closed=report.closed,
            resized=report.resized,
            not_managed=report.ignored_holdings,
            dust=report.dust or None,
            left_unknown=report.left_unknown or None,
        )
        return report

    def _check(
        self,
        pos: PositionRecord,
        quantity: float,
        price: float,
        dust: dict[str, float],
        report: ReconcileReport,
    ) -> None:
        """Bring one stored position in line with what the venue holds of its asset."""
        base = base_of(pos.symbol)
        sold = pos.realized_pnl_usd or 0.0  # of its parts sold before: the rest's price is unknown
        if pos.exit_attempts or pos.exit_blocked:
            self.store.update_position(
                pos.id, exit_attempts=0, exit_retry_at=None, exit_blocked=None
            )
        if quantity <= 0:
            self.store.close_position(
                pos.id,
                pos.entry_price,
                "not held at the venue at reconciliation (exit price unknown)",
                self.clock.wall(),
                sold,
            )
            report.closed.append(pos.symbol)
            dust[base] = 0.0
            return
        rules = self._rules(pos.symbol)
        why = dust_refusal(rules, quantity, price) if rules else None
        if why is not None:
            self.store.close_position(
                pos.id, price, f"only dust left at the venue: {why}", self.clock.wall(), sold
            )
            report.closed.append(pos.symbol)
            dust[base] = quantity
            return
        if abs(quantity - (pos.quantity + dust.get(base, 0.0))) > NOISE * quantity:
            # Any drift: the position becomes what the account holds (its dust included).
            self.store.update_position(pos.id, quantity=quantity)
            report.resized.append(pos.symbol)
            dust[base] = 0.0

    def _rules(self, symbol: str) -> MarketRules | None:
        """The venue's rules for ``symbol``; None when it no longer lists it (a failed call raises)."""
        if self.rules is None:
            return None
        try:
            return self.rules.get(symbol)
        except VenueRefused:
            return None

    def _adopt(self, venue: Position, dust: dict[str, float], report: ReconcileReport) -> None:
        # The key every account's cycle reads: the same snapshot, no request of its own.
        snap = self.market.candles(venue.symbol, self.strategy.timeframe, self.strategy.history + 1)
        if snap.last_price is None:
            raise VenueDataError(f"no {venue.symbol} candles to price it", operation="candles")
        candles, price = snap.candles, snap.last_price
        base = base_of(venue.symbol)
        rules = self._rules(venue.symbol)
        if rules is not None and dust_refusal(rules, venue.quantity, price) is not None:
            dust[base] = venue.quantity  # too small to sell: never adopted
            return
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
        dust[base] = 0.0  # the holding includes it
        report.adopted.append(venue.symbol)
        self.log.warning(
            "external_position_adopted", symbol=venue.symbol, quantity=venue.quantity, stop=stop
        )


def _venue_quantity(held: dict[str, Position], balance: Balance, symbol: str) -> float:
    """What the venue holds of ``symbol``'s asset: its position (any quote), else the balance's
    amount of the asset (small holdings are in the balance only), else nothing."""
    base = base_of(symbol)
    for pos in held.values():
        if base_of(pos.symbol) == base:
            return pos.quantity
    return balance.cash.get(base, 0.0)


def _venue_price(held: dict[str, Position], symbol: str, fallback: float) -> float:
    """The venue's valuation of one unit of ``symbol``'s asset, else ``fallback``."""
    base = base_of(symbol)
    for pos in held.values():
        if base_of(pos.symbol) == base and pos.market_value_usd and pos.quantity > 0:
            return pos.market_value_usd / pos.quantity
    return fallback
