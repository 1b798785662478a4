"""What a fill does to one account's positions: an entry's opens its position, an exit's
closes or reduces it.

``Fills.settle`` brings the store in line with what the venue reports for one order (at its
send, or when ``bot.engine.orders`` looks it up), the order's row and what its fill does in
one transaction: a crash can never leave a filled order without its position. A fill is
applied once, however often the same answer is settled.

Fills settle net of fees charged in the base asset (``Order.base_received``): a position
holds what the account holds. An exit's P&L is net of its fee and of its share of the
entry's, and the parts of a position sold before count in it. A sale's remainder the venue's
minimums refuse is dust (``bot.engine.holdings``).
"""

from __future__ import annotations

from bot.clock import Clock
from bot.engine.holdings import NOISE, RulesBook, base_of, dust_refusal
from bot.model import Order, OrderStatus
from bot.store.writer import OrderPurpose, OrderRecord, PositionRecord, Store, StoredOrderStatus

__all__ = ["Fills"]


class Fills:
    """Settles one account's orders into its positions (module docstring).

    ``rules`` (when known) tells a sale's remainder that is dust.
    """

    def __init__(self, store: Store, clock: Clock, log, rules: RulesBook | None = None) -> None:
        self.store = store
        self.clock = clock
        self.log = log
        self.rules = rules

    def settle(self, rec: OrderRecord, order: Order) -> None:
        """Bring the store in line with what the venue reports for this order."""
        status = {
            OrderStatus.OPEN: StoredOrderStatus.OPEN,
            OrderStatus.FILLED: StoredOrderStatus.FILLED,
            OrderStatus.CANCELED: StoredOrderStatus.CANCELED,
            OrderStatus.REJECTED: StoredOrderStatus.REJECTED,
        }[order.status]
        if status == StoredOrderStatus.CANCELED and order.filled > 0:
            status = StoredOrderStatus.FILLED  # partly filled, then cancelled: what filled is ours
        already_applied = rec.status == StoredOrderStatus.FILLED
        # One transaction: a crash can never leave a filled order without its position.
        with self.store.transaction("settle"):
            self.store.update_order(
                rec.client_order_id,
                status=status,
                venue_order_id=order.venue_order_id,
                filled=order.filled,
                average_price=order.average_price,
                fee_usd=order.fee_usd,
                fee=order.fee,
                fee_currency=order.fee_currency,
                reason=order.reason or rec.reason,
            )
            if status != StoredOrderStatus.FILLED or already_applied or order.filled <= 0:
                return
            price = order.average_price or 0.0
            self.store.add_fill(
                rec.client_order_id, order.filled, price, order.fee_usd, self.clock.wall()
            )
            if rec.purpose == OrderPurpose.ENTRY:
                # What the account holds: a fee taken from the coin bought is not.
                self._open_from_fill(rec, order.base_received(base_of(rec.symbol)), price)
            else:
                self._close_from_fill(rec, order, price)

    def _open_from_fill(self, rec: OrderRecord, quantity: float, price: float) -> PositionRecord:
        risk = rec.initial_risk or 0.0
        stop = rec.stop if rec.stop is not None else price - risk
        pos = self.store.open_position(
            rec.symbol,
            quantity,
            price,
            stop,
            rec.target if rec.target is not None else price + 2 * risk,
            risk,
            self.clock.wall(),
            entry_client_order_id=rec.client_order_id,
        )
        self.store.update_order(rec.client_order_id, position_id=pos.id)
        self.log.info(
            "position_opened", symbol=rec.symbol, quantity=quantity, price=price, stop=stop
        )
        return pos

    def _close_from_fill(self, rec: OrderRecord, order: Order, price: float) -> None:
        pos = next((p for p in self.store.open_positions() if p.id == rec.position_id), None)
        if pos is None:
            self.log.warning("exit_fill_without_open_position", client_order_id=rec.client_order_id)
            return
        base = base_of(pos.symbol)
        sold = order.base_received(base)  # a fee taken in the base leaves the account too
        from_position = min(sold, pos.quantity)  # the rest was dust taken along
        part = (
            (price - pos.entry_price) * from_position
            - order.fee_usd
            - self._entry_fee(pos, from_position)
        )
        pnl = (pos.realized_pnl_usd or 0.0) + part  # the parts sold before this one count too
        dust = next((d.quantity for d in self.store.dust() if d.asset == base), 0.0)
        left = pos.quantity - sold
        if left > pos.quantity * NOISE:
            rules = self.rules.cached(pos.symbol) if self.rules else None
            why = dust_refusal(rules, left + dust, price) if rules else None
            if why is None:  # still sellable (or the rules are not known yet): a smaller position
                self.store.update_position(
                    pos.id, quantity=left, exit_attempts=0, exit_retry_at=None, realized_pnl_usd=pnl
                )
                self.log.info(
                    "position_reduced",
                    symbol=pos.symbol,
                    sold=sold,
                    left=left,
                    pnl_usd=round(part, 2),
                )
                return
            self.log.info("dust_left", asset=base, quantity=left + dust, why=why)
        self.store.set_dust(base, max(0.0, dust + left))  # a sale that took the dust spent it
        self.store.close_position(pos.id, price, rec.reason or "exit", self.clock.wall(), pnl)
        self.log.info("position_closed", symbol=pos.symbol, price=price, pnl_usd=round(pnl, 2))

    def _entry_fee(self, pos: PositionRecord, quantity: float) -> float:
        """The entry's fee (USD) for ``quantity`` of what it bought (net of a fee in base)."""
        entry = (
            self.store.get_order(pos.entry_client_order_id) if pos.entry_client_order_id else None
        )
        if entry is None or not entry.filled:
            return 0.0
        bought = entry.filled - (entry.fee if entry.fee_currency == base_of(pos.symbol) else 0.0)
        return entry.fee_usd * min(1.0, quantity / bought) if bought > 0 else entry.fee_usd
