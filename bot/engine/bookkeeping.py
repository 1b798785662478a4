"""One cycle's bookkeeping: the failures no guarded call counted, and the cycle's closing record.

A broker call's failure is counted by its guard (``bot.engine.guarded``). What fails
outside one (the strategy, the store, the cycle's own code) is charged here, once, to this
account only (``record_unguarded``).

Whatever ended the cycle, ``close`` then fills the ``CycleResult`` in with the store's truth
(open positions, blocked exits, dust, orders of unknown outcome: a count is never left at
0), brings the process-wide position cap in line with it, and stores the cycle's row. A
store failure there joins what ended the cycle (the cycle line shows both) and is one
store failure of the cycle, not a second; a lease lost there ends the account's worker, as
anywhere in the cycle.
"""

from __future__ import annotations

from bot.engine.cycle import CycleResult
from bot.engine.guarded import GuardedBroker
from bot.engine.orders import AMBIGUOUS, OrderDesk
from bot.engine.risk import GlobalPositionCap
from bot.errors import describe, is_disk_full
from bot.isolation.manager import ACCOUNT_TAG, AccountIsolationManager, FailureType
from bot.model import AccountRef
from bot.store.writer import LeaseLostError, OrderPurpose, Store, StoreError

__all__ = ["CycleBook"]


class CycleBook:
    """The bookkeeping of one account's cycles (module docstring). Not shared between threads."""

    def __init__(
        self,
        account: AccountRef,
        isolation: AccountIsolationManager,
        broker: GuardedBroker,
        store: Store,
        desk: OrderDesk,
        global_cap: GlobalPositionCap,
    ) -> None:
        self.account = account
        self.isolation = isolation
        self.broker = broker  # its guard counts the cycle's failures by type (``errors``)
        self.store = store
        self.desk = desk
        self.global_cap = global_cap

    def record_unguarded(self, exc: Exception, operation: str) -> None:
        """Record a failure the guard did not see (strategy, store); guarded ones are counted."""
        if getattr(exc, ACCOUNT_TAG, None) is not None:
            return
        acct = self.account
        failure = self.isolation.record_failure(
            acct.account_type, acct.account_id, acct.broker, exc, operation=operation
        )
        self.broker.errors[failure.value] += 1

    def close(self, result: CycleResult) -> None:
        """The cycle's closing record (module docstring); never raises for the store."""
        try:
            unresolved = self.desk.unresolved()
            positions = self.store.open_positions()
            # The store's truth, whatever ended the cycle: a count is never left at 0.
            result.positions_open = len(positions)
            result.exit_blocked = {p.symbol: p.exit_blocked for p in positions if p.exit_blocked}
            result.dust = {d.asset: d.quantity for d in self.store.dust()}
            result.orders_unknown = [r.client_order_id for r in unresolved if r.status in AMBIGUOUS]
            open_entries = sum(1 for r in unresolved if r.purpose == OrderPurpose.ENTRY)
            self.global_cap.sync(self.account.key, len(positions) + open_entries)
            self.store.record_cycle(
                result.started_at,
                result.duration_ms,
                result.broker_calls,
                result.orders_placed,
                result.positions_open,
                result.errors,
                result.ok,
            )
        except LeaseLostError as lost:
            result.ok, result.lease_lost = False, lost.why
        except StoreError as exc:
            # Kept after what ended the cycle, if something did: the cycle line shows both.
            shown = describe(exc, redactor=self.isolation.redactor)
            error = "; then ".join(e for e in (result.error, shown) if e)
            result.ok, result.error = False, error[:300]
            result.disk_full = result.disk_full or is_disk_full(exc)
            if not self.broker.errors.get(FailureType.STORE_ERROR.value):
                # One store failure per cycle: a store out of reach fails the cycle's reads
                # and then its closing count, and that is one failure, not two.
                self.record_unguarded(exc, "store")
            result.errors = dict(self.broker.errors)
