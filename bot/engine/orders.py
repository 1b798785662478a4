"""The life of one order: stored before it is sent, never sent twice, settled by lookup.

An order's client id is derived from (account, symbol, side, intent id), so the same
intent always gets the same id, and the store refuses a second row with it. When
the venue's answer is ambiguous (timeout, 5xx, dropped connection, garbled body)
the order is left ``unknown`` and later looked up by its client id; it is never
re-sent blindly.

Venues do not stand behind a re-send: Kraken, Binance and OKX refuse a repeated client id
only while the first order is open, so re-sending a filled market order makes a second
one. An unknown order is sent again only once the venue has PROVEN it absent: its lookup by
client id (open and closed orders) answered "no such order" ``absence_lookups`` times, each
at least ``absence_spacing_seconds`` after the send or the lookup before it (the venue's
consistency delay), within ``lookup_retention_seconds`` of the send (the venue's registry
entry, docs/VENUES.md "## Resends"). An order whose absence cannot be proven stays unknown:
nothing is re-sent, and the operator is told once. Nor is one re-sent while its venue takes
no market order (cancel-only, post-only: ``bot.venue.health``): it would be refused, and the
proof would start over; it stays unknown, its proof kept, and goes out once the venue takes
market orders again, if its signal is still fresh then (else it is settled as never arrived).

With several nodes (a lease fence on the store, ``bot.store.fence``) nothing is sent once
this node's lease is lost or its local deadline has passed, and an order stored under
another tenure of the account's lease (an earlier epoch, maybe by another node that could
still send it as a zombie) is only ever looked up: found, it is settled; proven absent, it
is given up (cancelled), never sent by a later owner. What the earlier owner did anyway is
found by reconciliation: positions are what the account really holds.

What a fill does to the account's positions is ``bot.engine.fills``'s: every answer the venue
gives for an order (at its send, or at a look-up) is settled there.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import structlog

from bot.brokers.venues import Venue
from bot.clock import Clock
from bot.engine.fills import Fills
from bot.engine.guarded import GuardedBroker
from bot.engine.holdings import RulesBook
from bot.isolation.failures import is_definitive_refusal
from bot.isolation.manager import AccountBlockedError, classify_failure
from bot.model import OrderRequest, OrderType, Side
from bot.store.writer import (
    LeaseLostError,
    OrderPurpose,
    OrderRecord,
    Store,
    StoredOrderStatus,
    StoreError,
)

# Not sent yet, or sent with an outcome NIJA does not know: looked up, never re-sent blindly.
AMBIGUOUS = (StoredOrderStatus.PENDING, StoredOrderStatus.UNKNOWN)
UNRESOLVED = (*AMBIGUOUS, StoredOrderStatus.OPEN)
# An order proven never to have arrived is sent late only while its signal is fresh.
RESEND_WINDOW_SECONDS = 300.0


def client_order_id(account_key: str, symbol: str, side: str, intent_id: str) -> str:
    """32 lowercase hex characters: accepted by every venue's client-id field."""
    raw = "|".join((account_key, symbol, side, intent_id)).encode()
    return hashlib.sha256(raw).hexdigest()[:32]


@dataclass(frozen=True)
class PlannedOrder:
    """What the engine wants: an entry with its stop and target, or an exit of a position."""

    intent_id: str
    symbol: str
    side: Side
    quantity: float
    purpose: OrderPurpose
    stop: float | None = None
    target: float | None = None
    initial_risk: float | None = None
    position_id: int | None = None
    reason: str | None = None  # why: the strategy's words, kept as the close reason


class OrderDesk:
    """Sends, resolves and settles one account's orders against its store.

    ``venue`` is the registry entry whose resend policy applies; ``rules`` (when known)
    tells a sale's remainder that is dust (``bot.engine.fills``).
    """

    def __init__(
        self,
        broker: GuardedBroker,
        store: Store,
        clock: Clock,
        log=None,
        *,
        venue: Venue,
        rules: RulesBook | None = None,
    ) -> None:
        self.broker = broker
        self.store = store
        self.clock = clock
        self.log = log or structlog.get_logger().bind(account=store.account_key)
        self.venue = venue
        self.fills = Fills(store, clock, self.log, rules)
        self._told: set[str] = set()  # orders whose unprovable absence the operator was told of
        self._held: set[str] = set()  # proven absent, held while the venue takes no market order

    def client_id(self, plan: PlannedOrder) -> str:
        """The client order id ``plan`` is sent with."""
        return client_order_id(self.store.account_key, plan.symbol, plan.side.value, plan.intent_id)

    # -- sending ----------------------------------------------------------------
    def submit(self, plan: PlannedOrder) -> OrderRecord | None:
        """Store, then send, a market order; the stored record afterwards.

        None when this intent already has an order (nothing is sent again). Raises
        AccountBlockedError when the gate refused (the order is then marked never sent).
        """
        coid = self.client_id(plan)
        now = self.clock.wall()
        rec = OrderRecord(
            client_order_id=coid,
            account_key=self.store.account_key,
            intent_id=plan.intent_id,
            symbol=plan.symbol,
            side=plan.side,
            type=OrderType.MARKET,
            amount=plan.quantity,
            quote_amount=None,
            limit_price=None,
            purpose=plan.purpose,
            status=StoredOrderStatus.PENDING,
            venue_order_id=None,
            filled=0.0,
            average_price=None,
            fee_usd=0.0,
            reason=plan.reason,
            position_id=plan.position_id,
            created_at=now,
            updated_at=now,
            attempts=0,
            stop=plan.stop,
            target=plan.target,
            initial_risk=plan.initial_risk,
            sent_at=now,
        )
        if not self.store.record_order(rec):  # written before it is sent, or not at all
            self.log.warning("order_already_exists", client_order_id=coid, intent=plan.intent_id)
            return None
        return self._send(rec, first=True)

    def _send(self, rec: OrderRecord, *, first: bool) -> OrderRecord:
        """Send a stored order; classify what happens; the stored record afterwards.

        A refusal of a late send (``first=False``) is not believed: the venue may refuse
        it as a duplicate because the first send did arrive, so it is looked up again, and
        the proof of absence starts over from this send.
        """
        coid = rec.client_order_id
        self.store.check_lease()  # LeaseLostError: this node may no longer send for the account
        if not first:
            self.store.update_order(
                coid, sent_at=self.clock.wall(), absent_checks=0, absent_at=None
            )
        # The same check once more in the adapter's transport, as the request leaves: the
        # budget's wait, the SDK's signing and the GIL all come between here and there.
        last_look = self.store.check_lease if self.store.fence is not None else None
        request = OrderRequest(
            rec.symbol,
            Side(rec.side),
            OrderType.MARKET,
            coid,
            amount=rec.amount,
            last_look=last_look,
        )
        self.log.info(
            "order_sending",
            client_order_id=coid,
            symbol=rec.symbol,
            side=rec.side,
            quantity=rec.amount,
            purpose=rec.purpose,
        )
        try:
            order = self.broker.place_order(request)
        except AccountBlockedError as blocked:
            self.store.update_order(
                coid, status=StoredOrderStatus.CANCELED, reason=f"not sent: {blocked.reason}"
            )
            raise
        except LeaseLostError:
            # Withdrawn at the last look: nothing left. The order stays as stored, under this
            # tenure; the lease's next holder proves it absent and gives it up.
            raise
        except Exception as exc:
            failure = classify_failure(exc, "order")
            if first and is_definitive_refusal(exc):
                reason = self.store.redactor.shorten(f"{failure.value}: {exc}", 300)
                self.store.update_order(coid, status=StoredOrderStatus.REJECTED, reason=reason)
                self.log.warning("order_rejected", client_order_id=coid, reason=reason)
            else:
                self.store.update_order(coid, status=StoredOrderStatus.UNKNOWN)
                self.log.warning(
                    "order_outcome_unknown",
                    client_order_id=coid,
                    failure=failure.value,
                    next_step="look it up by client id; never re-send blindly",
                )
            raise
        self.fills.settle(self._stored(coid), order)
        return self._stored(coid)

    # -- resolving ----------------------------------------------------------------
    def unresolved(self) -> list[OrderRecord]:
        return self.store.orders_with_status(*UNRESOLVED)

    def resolve(self, rec: OrderRecord) -> bool:
        """Look an unresolved order up by client id and settle it; True when it is final.

        A failed lookup raises (the caller records it); it is never read as "not found".
        An unknown order is sent again, with the same client id, only once the venue has
        proven it absent and while its signal is fresh (module docstring).
        """
        final = self._look_up(rec)
        if final:  # settled: nothing more is held back or told of it
            self._held.discard(rec.client_order_id)
            self._told.discard(rec.client_order_id)
        return final

    def _look_up(self, rec: OrderRecord) -> bool:
        """``resolve``'s lookup and what follows from it; True when the order is final."""
        order = self.broker.fetch_order(rec.client_order_id, rec.symbol)
        coid = rec.client_order_id
        self.store.update_order(coid, attempts=rec.attempts + 1)
        if order is not None:
            self.fills.settle(self._stored(coid), order)
            return self._stored(coid).status not in UNRESOLVED
        now = self.clock.wall()
        if rec.status in AMBIGUOUS and not self._proven_absent(rec, now):
            if self.unprovable(rec, now):
                self._tell_unprovable(rec, now)
            return False
        assert rec.created_at is not None  # NOT NULL in the store, which rec comes from
        age = now - rec.created_at
        other_tenure = self._other_tenure(rec)
        if rec.status in AMBIGUOUS and age <= RESEND_WINDOW_SECONDS and not other_tenure:
            venue = self.broker.venue_state
            if not venue.takes_market_orders:  # refused, its proof would start over: it waits
                self._tell_held(rec, venue.value, age)
                return False
            self._held.discard(coid)
            self.log.warning("order_never_arrived_sending_now", client_order_id=coid, age_s=age)
            return self._send(self._stored(coid), first=False).status not in UNRESOLVED
        reason = "the venue has no such order (never arrived or expired)"
        if other_tenure and rec.status in AMBIGUOUS:
            reason = (
                f"given up: stored by node {rec.node_id} under lease epoch {rec.lease_epoch}"
                " and proven absent; a later lease holder never sends it"
            )
            self.log.warning(
                "order_given_up_other_lease",
                client_order_id=coid,
                node=rec.node_id,
                epoch=rec.lease_epoch,
            )
        self.store.update_order(coid, status=StoredOrderStatus.CANCELED, reason=reason)
        self.log.warning("order_not_at_venue", client_order_id=coid, age_s=round(age))
        return True

    def _other_tenure(self, rec: OrderRecord) -> bool:
        """True when ``rec`` was stored under another tenure of the account's lease than
        this node's current one (or before leases): this node never sends it."""
        fence = self.store.fence
        return fence is not None and rec.lease_epoch != fence.epoch

    def _proven_absent(self, rec: OrderRecord, now: float) -> bool:
        """Count this "no such order" when it comes a spacing after the send or the last one
        counted, within the venue's retention window; True once there are enough of them."""
        venue, checks = self.venue, rec.absent_checks
        since = rec.absent_at if rec.absent_at is not None else self._sent_at(rec)
        in_memory = (
            venue.lookup_retention_seconds is None
            or now - self._sent_at(rec) <= venue.lookup_retention_seconds
        )
        spaced = now - since >= venue.absence_spacing_seconds
        if checks < venue.absence_lookups and in_memory and spaced:
            checks += 1
            self.store.update_order(rec.client_order_id, absent_checks=checks, absent_at=now)
        return checks >= venue.absence_lookups

    def unprovable(self, rec: OrderRecord, now: float) -> bool:
        """True when ``rec``'s absence can no longer be proven: the venue's lookup forgets
        orders older than its retention window, and the proof was not complete within it."""
        retention = self.venue.lookup_retention_seconds
        return (
            rec.status in AMBIGUOUS
            and rec.absent_checks < self.venue.absence_lookups
            and retention is not None
            and now - self._sent_at(rec) > retention
        )

    def _tell_unprovable(self, rec: OrderRecord, now: float) -> None:
        """Tell the operator, once, of an order that stays unknown for good."""
        if rec.client_order_id in self._told:
            return
        self._told.add(rec.client_order_id)
        self.log.error(
            "order_absence_unprovable",
            client_order_id=rec.client_order_id,
            symbol=rec.symbol,
            side=rec.side,
            quantity=rec.amount,
            age_s=round(now - self._sent_at(rec)),
            next_step="nothing is re-sent: check the order at the venue by hand",
        )

    def _tell_held(self, rec: OrderRecord, venue_state: str, age: float) -> None:
        """Log, once while it waits, a proven-absent order held back by its venue's mode."""
        if rec.client_order_id in self._held:
            return
        self._held.add(rec.client_order_id)
        self.log.warning(
            "order_resend_waits",
            client_order_id=rec.client_order_id,
            symbol=rec.symbol,
            venue_state=venue_state,
            age_s=round(age),
            next_step="sent once the venue takes market orders again, while its signal is fresh",
        )

    @staticmethod
    def _sent_at(rec: OrderRecord) -> float:
        sent = rec.sent_at if rec.sent_at is not None else rec.created_at
        assert sent is not None  # created_at is NOT NULL in the store
        return sent

    def _stored(self, coid: str) -> OrderRecord:
        """The stored record of an order this desk stored; StoreError if it is gone."""
        rec = self.store.get_order(coid)
        if rec is None:
            raise StoreError(
                "get_order", f"no such order ({coid!r})", account_key=self.store.account_key
            )
        return rec
