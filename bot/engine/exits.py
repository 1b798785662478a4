"""Selling a position: what the venue will take, and what happens when it refuses.

A refused exit is that position's problem, not the cycle's: the cycle goes on with the
other symbols. The exit is tried again after a growing wait, at most ``MAX_EXIT_ATTEMPTS``
times; then the position is flagged ``exit_blocked`` with the venue's reason (status.json,
check_active_trading_per_broker.py, an error line in the log) and no more exits are sent
for it until the daemon restarts (reconciliation clears the flag: the operator has looked).

What is sold is the position (and any dust of the same asset) up to the venue's free
balance, rounded down to its lot step (``bot.engine.holdings.sale``): a sale of part of it
leaves a smaller position, whose rest a later exit (a new client id) sells. A position the
venue's minimums refuse to take at all is dust: closed and recorded, never sent.
"""

from __future__ import annotations

import math

from bot.clock import Clock
from bot.engine.holdings import RulesBook, base_of, dust_refusal, sale
from bot.engine.orders import OrderDesk, PlannedOrder
from bot.errors import describe
from bot.isolation.manager import AccountBlockedError, classify_failure
from bot.model import Balance, Side
from bot.store.writer import (
    LeaseLostError,
    OrderPurpose,
    PositionRecord,
    Store,
    StoredOrderStatus,
    StoreError,
)

MAX_EXIT_ATTEMPTS = 3
EXIT_RETRY_SECONDS = 60.0  # the wait after the first refusal...
EXIT_RETRY_GROWTH = 4.0  # ...times this after each further one (60 s, 240 s)


class Exits:
    """Sends one account's exits and keeps count of the venue's refusals."""

    def __init__(self, desk: OrderDesk, store: Store, rules: RulesBook, clock: Clock, log) -> None:
        self.desk = desk
        self.store = store
        self.rules = rules
        self.clock = clock
        self.log = log

    def attempt(
        self, pos: PositionRecord, reason: str, price: float, balance: Balance, notes: list[str]
    ) -> int:
        """``exit``, except that a failure to read the venue's rules is a note: the exit waits
        for the next cycle (a refused gate or a failing store still ends the cycle)."""
        try:
            return self.exit(pos, reason, price, balance, notes)
        except (AccountBlockedError, StoreError):
            raise
        except Exception as exc:  # the venue's rules could not be read: next cycle
            notes.append(f"{pos.symbol}: exit waits ({describe(exc)})")
            return 0

    def protect(
        self, pos: PositionRecord, balance: Balance, notes: list[str], marks: dict[str, float]
    ) -> int:
        """Without fresh candles: the position's stop and target against the account's own
        ticker, the freshest price it can get (a guarded call); the orders placed."""
        try:
            price = self.desk.broker.fetch_ticker(pos.symbol).last
        except AccountBlockedError:
            raise
        except Exception as exc:  # recorded by the guard; the position waits a cycle
            kind = classify_failure(exc, "ticker").value
            notes.append(f"{pos.symbol}: no fresh price to check its stop ({kind})")
            return 0
        marks[pos.symbol] = price
        if price <= pos.stop:
            return self.attempt(pos, "stop hit", price, balance, notes)
        if pos.target is not None and price >= pos.target:
            return self.attempt(pos, "target hit", price, balance, notes)
        notes.append(f"{pos.symbol}: market data stale; stop and target held at {price:g}")
        return 0

    def exit(
        self,
        pos: PositionRecord,
        reason: str | None,
        price: float,
        balance: Balance,
        notes: list[str],
    ) -> int:
        """Sell ``pos`` at about ``price`` (1 when an order was placed); notes say why not."""
        now = self.clock.wall()
        if pos.exit_blocked:
            notes.append(f"{pos.symbol}: exit blocked ({pos.exit_blocked})")
            return 0
        if pos.exit_retry_at is not None and now < pos.exit_retry_at:
            wait = pos.exit_retry_at - now
            notes.append(f"{pos.symbol}: exit refused before; next try in {wait:.0f}s")
            return 0
        rules = self.rules.get(pos.symbol)
        base = base_of(pos.symbol)
        dust = self.dust_of(base)
        sell = sale(rules, pos.quantity, dust, balance.free_amount(base), price)
        if sell.refusal:
            if sell.short_of_free and dust_refusal(rules, pos.quantity, price) is None:
                held = f"only {sell.free:g} {base} free of {pos.quantity:g} held"
                self.refused(pos, f"{held}: {sell.refusal}", notes)
            else:
                free = math.inf if sell.free is None else sell.free
                self._to_dust(pos, min(pos.quantity + dust, free), sell.refusal, price, notes)
            return 0
        plan = PlannedOrder(
            intent_id=f"position-{pos.id}:exit:{self._finished_exits(pos)}",
            symbol=pos.symbol,
            side=Side.SELL,
            quantity=sell.amount,
            purpose=OrderPurpose.EXIT,
            position_id=pos.id,
            reason=reason,
        )
        self.log.info("exit_signal", symbol=pos.symbol, reason=reason, quantity=sell.amount)
        try:
            placed = self.desk.submit(plan)
        except (AccountBlockedError, LeaseLostError):
            raise
        except Exception as exc:  # recorded by the guard; this position's problem only
            stored = self.store.get_order(self.desk.client_id(plan))
            if stored is not None and stored.status == StoredOrderStatus.REJECTED:
                self.refused(pos, stored.reason or "refused", notes)
            else:
                failure = classify_failure(exc, "order").value
                notes.append(f"{pos.symbol}: exit outcome unknown ({failure}); looked up next")
            return 0
        return 0 if placed is None else 1

    def refused(self, pos: PositionRecord, reason: str, notes: list[str]) -> None:
        """Count a refused exit; flag the position ``exit_blocked`` at the last attempt."""
        attempts = pos.exit_attempts + 1
        if attempts >= MAX_EXIT_ATTEMPTS:
            self.store.update_position(
                pos.id, exit_attempts=attempts, exit_retry_at=None, exit_blocked=reason
            )
            self.log.error(
                "exit_blocked",
                symbol=pos.symbol,
                attempts=attempts,
                reason=reason,
                next_step="no more exits are sent for it: see to it at the venue, then restart",
            )
            notes.append(f"{pos.symbol}: exit blocked after {attempts} refusals ({reason})")
            return
        wait = EXIT_RETRY_SECONDS * EXIT_RETRY_GROWTH ** (attempts - 1)
        self.store.update_position(
            pos.id, exit_attempts=attempts, exit_retry_at=self.clock.wall() + wait
        )
        self.log.warning(
            "exit_refused", symbol=pos.symbol, attempt=attempts, reason=reason, retry_in_s=wait
        )
        notes.append(
            f"{pos.symbol}: exit refused ({reason}); attempt {attempts + 1} of "
            f"{MAX_EXIT_ATTEMPTS} in {wait:.0f}s"
        )

    def dust_of(self, asset: str) -> float:
        """The dust of ``asset`` recorded for this account."""
        return next((d.quantity for d in self.store.dust() if d.asset == asset), 0.0)

    def _to_dust(
        self, pos: PositionRecord, quantity: float, why: str, price: float, notes: list[str]
    ) -> None:
        """Close a position the venue will not take at all; what is left of it is dust."""
        with self.store.transaction("dust"):
            self.store.set_dust(base_of(pos.symbol), quantity)
            pnl = (price - pos.entry_price) * pos.quantity  # marked, not sold: still held as dust
            pnl += pos.realized_pnl_usd or 0.0  # the parts of it sold before
            self.store.close_position(pos.id, price, f"dust: {why}", self.clock.wall(), pnl)
        self.log.warning("position_is_dust", symbol=pos.symbol, quantity=quantity, why=why)
        notes.append(f"{pos.symbol}: {quantity:g} {base_of(pos.symbol)} is dust ({why})")

    def _finished_exits(self, pos: PositionRecord) -> int:
        """Exits of ``pos`` that are over: each later one needs a new intent (client) id, after
        a failure and after a sale of part of it alike (the rest is sold by another order)."""
        done = self.store.orders_with_status(
            StoredOrderStatus.REJECTED, StoredOrderStatus.CANCELED, StoredOrderStatus.FILLED
        )
        return sum(1 for r in done if r.position_id == pos.id and r.purpose == OrderPurpose.EXIT)
