"""The lease fence: a node that has lost an account's lease stores, and so sends, nothing for it.

With several NIJA nodes on one PostgreSQL (``bot.cluster``) each account has a lease row:
its owner node, its epoch (one per tenure: every new owner takes epoch + 1) and its expiry,
decided by the database's clock. The venue cannot check NIJA's lease, so the last write NIJA
controls before a send must. A ``Store`` given a ``LeaseFence`` begins every write
transaction (the order insert is one) with ``FENCE_SQL``: the account's lease row, locked
``FOR KEY SHARE``, where it is still this node's, of this epoch, and unexpired by the
server's clock. No row: nothing is written, ``LeaseLostError``. The lock holds until the
commit, and a new owner takes a lease only through ``FOR UPDATE SKIP LOCKED``, which that
lock blocks: every order stored under epoch *e* was committed before epoch *e + 1* began.

That check is made when the order is stored; the send comes after it. A node paused
between the two (SIGSTOP, a long GC pause, a frozen VM) wakes holding an order stored under
a lease that may have passed to another node since. So the fence also carries a local
deadline on the node's monotonic clock, which keeps counting through such a pause: the
start of the last successful renewal plus the TTL minus a margin, always before the
database's expiry. ``check()`` (made just before each send, and before each write) refuses
once it has passed, or once the lease is known lost: the woken node sends nothing, not even
an order it had already stored. Once refused, a fence never holds again: a lease won back
is a new epoch with a new fence.
"""

from __future__ import annotations

import threading

from bot.clock import Clock
from bot.errors import LeaseLost
from bot.store.db import StoreError

__all__ = ["FENCE_SQL", "LeaseFence", "LeaseLostError"]

# The account's lease row, still this node's, of this epoch, unexpired by the server's clock
# (clock_timestamp: the moment of the check, not the transaction's start), locked until the
# commit. FOR KEY SHARE: the owner's renewal (an UPDATE of no key) never waits behind an
# order insert, while a takeover (FOR UPDATE) does, or skips the row. So the transaction
# may wait on its client no longer than the lease has left by this node's clock (the first
# parameter, e.g. '1500ms'; SET LOCAL: this transaction only): a node frozen inside it
# (SIGSTOP, a suspended VM) loses its session then, and the lock with it, instead of
# keeping every other node from taking the account over until it wakes.
FENCE_SQL = (
    "SELECT set_config('idle_in_transaction_session_timeout', ?, true) AS held FROM leases"
    " WHERE account_key = ? AND owner = ? AND epoch = ? AND expires_at > clock_timestamp()"
    " FOR KEY SHARE"
)


class LeaseLostError(StoreError, LeaseLost):
    """This node no longer holds the account's lease: nothing was stored, nothing may be sent.

    Not a failure of the account: its worker stops, and the lease's new owner trades it.
    """

    def __init__(self, operation: str, account_key: str, why: str) -> None:
        super().__init__(operation, f"lease lost: {why}", account_key=account_key)
        self.why = why


class LeaseFence:
    """One account's lease as this node holds it: (node, epoch) for the fenced writes, and
    the local deadline (monotonic seconds) past which nothing is sent.

    The lease keeper (``bot.cluster.keeper``) extends the deadline after each renewal and
    revokes the fence when the lease is lost or handed back; the account's thread checks it.
    """

    def __init__(
        self, account_key: str, node_id: str, epoch: int, deadline: float, clock: Clock
    ) -> None:
        self.account_key = account_key
        self.node_id = node_id
        self.epoch = epoch
        self._clock = clock
        self._deadline = deadline
        self._lock = threading.Lock()
        self._lost: str | None = None
        self.expired = False  # it refused because its local deadline passed (not revoked)

    def __repr__(self) -> str:
        return f"LeaseFence({self.account_key!r}, node={self.node_id!r}, epoch={self.epoch})"

    @property
    def deadline(self) -> float:
        """The monotonic time from which nothing is sent."""
        return self._deadline

    def remaining(self) -> float:
        """Seconds until the local deadline (0 once it has passed or the lease is lost)."""
        if self.lost() is not None:
            return 0.0
        return max(0.0, self._deadline - self._clock.monotonic())

    def extend(self, deadline: float) -> bool:
        """Move the deadline on after a renewal; False (nothing changed) once the fence has
        refused: a lease renewed after its local deadline is not trusted again."""
        with self._lock:
            if self._refused_locked() is not None:
                return False
            self._deadline = max(self._deadline, deadline)
            return True

    def revoke(self, why: str) -> None:
        """The lease is gone (lost, expired, handed back): refuse from now on."""
        with self._lock:
            if self._lost is None:
                self._lost = why

    def lost(self) -> str | None:
        """Why the fence refuses, or None while the lease holds."""
        with self._lock:
            return self._refused_locked()

    def _refused_locked(self) -> str | None:
        if self._lost is None and self._clock.monotonic() >= self._deadline:
            self._lost = "its local deadline passed without a renewal"
            self.expired = True
        return self._lost

    def idle_limit(self) -> str:
        """How long a write transaction under this lease may wait on its client, for
        ``FENCE_SQL``: the local time left (at least 1 ms), e.g. ``'1500ms'``."""
        return f"{max(1, int(self.remaining() * 1000))}ms"

    def check(self, operation: str = "send_order") -> None:
        """Raise ``LeaseLostError`` unless this node still holds the lease by its own clock."""
        why = self.lost()
        if why is not None:
            raise LeaseLostError(
                operation,
                self.account_key,
                f"node {self.node_id} no longer holds epoch {self.epoch} ({why})",
            )
