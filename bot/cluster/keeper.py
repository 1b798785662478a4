"""``LeaseKeeper``: the thread that keeps this node's leases, and takes its fair share.

Every renew interval (a third of the TTL) one ``tick``:

1. drops the leases whose fence refuses (its local deadline passed: ``lease_expired``; or
   the store found the lease gone: classified at once as ``lost``/``renewed_failed``),
   telling the daemon (``on_lost``) so that the account's worker stops at once;
2. beats this node's heartbeat (``nodes``); a heartbeat refused means another process took
   this node's name: every lease is dropped and nothing more is claimed (``node_superseded``);
3. writes what the database could not be told before (``expired`` events), and releases
   the leases the daemon has finished handing back (their workers stopped);
4. renews every lease it holds in one statement; each fence's local deadline becomes the
   renewal's start (this node's monotonic clock) + TTL - margin, before the database's
   expiry; a lease the renewal missed is ``lost`` (another owner or epoch) or
   ``renewed_failed`` (still ours, expired: a node paused past it) and dropped;
5. balances: the fair share is ``ceil(accounts / live nodes)``, capped by
   ``NIJA_MAX_ACCOUNTS_PER_NODE``. Over it, the most recently acquired leases are marked to
   hand back (the daemon stops their workers, then asks for the release). Under it, free or
   expired leases are claimed (``FOR UPDATE SKIP LOCKED``); one acquired from an earlier
   tenure (epoch > 1) is traded only after the lock delay (``HeldLease.ready``).

A failed round (the database unreachable, restarting) is logged (``lease_renewal_failed``)
and tried again within a second; the leases stay held until their local deadlines pass.
``stop()`` revokes every fence and hands every lease back in one statement.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from bot.clock import SYSTEM_CLOCK, Clock
from bot.cluster import leases, nodes
from bot.cluster.nodes import NodeIdentity
from bot.store.backend import Connection, Database
from bot.store.db import StoreError, guarded
from bot.store.fence import LeaseFence

__all__ = ["HeldLease", "LeaseKeeper", "LeaseTimes"]

RETRY_SECONDS = 1.0  # after a failed round


@dataclass(frozen=True, slots=True)
class LeaseTimes:
    """The lease timings (``NIJA_LEASE_TTL_SECONDS``, ``NIJA_LEASE_LOCK_DELAY_SECONDS``).

    ``margin``: how long before the database's expiry this node stops sending (a tenth of
    the TTL, never more than the lock delay): an order sent just before it has that long to
    reach the venue before another node can take the lease, and the new owner waits the
    lock delay on top before it trades.
    """

    ttl: float = 30.0
    lock_delay: float = 5.0

    @property
    def renew_every(self) -> float:
        return self.ttl / 3

    @property
    def margin(self) -> float:
        return min(self.ttl / 10, self.lock_delay)


@dataclass
class HeldLease:
    """A lease this node holds: its epoch, its fence, and when its account may trade."""

    account_key: str
    epoch: int
    fence: LeaseFence
    acquired: float  # monotonic
    trade_from: float  # monotonic: acquired + the lock delay when an earlier tenure existed
    previous_owner: str | None
    handing_back: bool = False

    def ready(self, now: float) -> bool:
        """May its account trade now (past the lock delay, not being handed back)?"""
        return not self.handing_back and now >= self.trade_from and self.fence.lost() is None


class LeaseKeeper:
    """Keeps this node's leases of ``accounts`` on ``database`` (PostgreSQL)."""

    def __init__(
        self,
        database: Database,
        node: NodeIdentity,
        accounts: Sequence[str],
        *,
        times: LeaseTimes,
        max_accounts: int | None = None,
        clock: Clock = SYSTEM_CLOCK,
        log: Any = None,
        on_lost: Callable[[str, str], None] = lambda key, why: None,
    ) -> None:
        self.database = database
        self.node = node
        self.accounts = sorted(set(accounts))
        self.times = times
        self.max_accounts = max_accounts
        self.clock = clock
        self.log = log or structlog.get_logger()
        self.on_lost = on_lost  # called from the keeper's thread: must only signal
        self.share: int | None = None  # this node's target, once known
        self.live_nodes: int | None = None
        self.superseded = False
        self.last_renewal: float | None = None  # monotonic start of the last good round
        self._held: dict[str, HeldLease] = {}
        self._lock = threading.Lock()
        self._releases: dict[str, str] = {}  # account → why, once its worker has stopped
        self._expired: dict[str, int] = {}  # expired locally, not yet in the history
        self._refused: dict[str, int] = {}  # refused by the store, not yet classified
        self._conn: Connection | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # -- reading (any thread) ---------------------------------------------------------
    def held(self) -> dict[str, HeldLease]:
        """The leases held now, by account."""
        with self._lock:
            return dict(self._held)

    def lease(self, key: str) -> HeldLease | None:
        with self._lock:
            return self._held.get(key)

    def handing_back(self) -> list[str]:
        """The accounts whose leases are to be handed back (their workers stopped first)."""
        with self._lock:
            return sorted(k for k, h in self._held.items() if h.handing_back)

    # -- life ---------------------------------------------------------------------------
    def start(self, *, thread: bool = True) -> None:
        """Register this node, make the accounts' lease rows, take a first share now; then
        keep them in a thread (``thread``; tests call ``tick`` themselves).

        ``StoreError`` when the database cannot be used for it.
        """
        # A connection of its own: its renewals never wait behind the accounts' transactions.
        self._conn = self.database.connect(None, create=False, dedicated=True)
        with guarded("lease_start", None):
            earlier = nodes.register(self._conn, self.node, self.times.ttl)
            leases.ensure_accounts(self._conn, self.accounts)
        if earlier is not None:
            self.log.warning(
                "node_id_reused",
                node=self.node.node_id,
                earlier_pid=earlier.pid,
                earlier_host=earlier.host,
                seen_s_ago=round(earlier.last_seen_seconds_ago, 1),
                note="the earlier process stops trading at its next heartbeat; its leases"
                " are taken over at new epochs",
            )
        self.log.info(
            "node_registered",
            node=self.node.node_id,
            accounts=len(self.accounts),
            ttl_s=self.times.ttl,
            lock_delay_s=self.times.lock_delay,
            max_accounts=self.max_accounts,
        )
        self.tick()
        if thread:
            self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set() and not self.superseded:
            ok = self.tick()
            self._wake.wait(self.times.renew_every if ok else RETRY_SECONDS)
            self._wake.clear()

    def request_release(self, key: str, why: str) -> None:
        """Release ``key``'s lease at once (its worker has stopped): from the keeper's thread."""
        with self._lock:
            if key in self._held:
                self._releases[key] = why
        self._wake.set()

    def stop(self, why: str = "node stopping", timeout: float = 5.0) -> None:
        """Stop the thread, revoke every fence, hand every lease back in one statement."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            mine = {k: h.epoch for k, h in self._held.items()}
            for h in self._held.values():
                h.fence.revoke(why)
            self._held.clear()
        if self._conn is None:
            return
        try:
            with guarded("lease_release", None):
                released = leases.release(self._conn, self.node.node_id, mine, why)
                if not self.superseded:
                    nodes.stopped(self._conn, self.node)
            self.log.info("lease_released", leases=len(released), why=why)
        except StoreError as exc:
            self.log.warning(
                "lease_release_failed",
                leases=len(mine),
                error=str(exc),
                note=f"they expire within {self.times.ttl:g}s and are taken over then",
            )
        finally:
            self._conn.close()
            self._conn = None

    # -- one round --------------------------------------------------------------------------
    def tick(self) -> bool:
        """One round (module docstring); False when the database could not be reached."""
        started = self.clock.monotonic()
        self._drop_refused()
        if self._conn is None or self.superseded:
            return True
        try:
            with guarded("lease_renew", None):
                if not nodes.heartbeat(self._conn, self.node):
                    self._superseded()
                    return True
                self._tell_history()
                self._renew(started)
                self._balance(started)
        except StoreError as exc:
            with self._lock:
                left = [h.fence.remaining() for h in self._held.values()]
            self.log.warning(
                "lease_renewal_failed",
                error=str(exc),
                leases=len(left),
                deadline_in_s=round(min(left), 1) if left else None,
            )
            return False
        self.last_renewal = started
        return True

    def _drop(self, key: str, why: str) -> HeldLease | None:
        """Forget a lease, revoke its fence, tell the daemon."""
        with self._lock:
            held = self._held.pop(key, None)
            self._releases.pop(key, None)
        if held is not None:
            held.fence.revoke(why)
            self.on_lost(key, why)
        return held

    def _drop_refused(self) -> None:
        """Leases whose fence refuses: past its local deadline, or refused by the store."""
        for key, held in self.held().items():
            why = held.fence.lost()
            if why is None:
                continue
            self._drop(key, why)
            if held.fence.expired:
                self._expired[key] = held.epoch
                self.log.warning("lease_expired", account=key, epoch=held.epoch, why=why)
            else:
                self._refused[key] = held.epoch  # the history says lost or renewed_failed

    def _superseded(self) -> None:
        self.superseded = True
        self.log.error(
            "node_superseded",
            node=self.node.node_id,
            leases=len(self._held),
            note="another process took this node's name (NIJA_NODE_ID): this one stops"
            " trading; give each node its own name",
        )
        for key in list(self.held()):
            self._drop(key, "another process took this node's name")

    def _tell_history(self) -> None:
        """What could not be written before: expiries, the store's refusals, releases."""
        assert self._conn is not None
        node = self.node.node_id
        if self._expired:
            detail = "its local deadline passed without a renewal"
            leases.record(self._conn, node, "expired", self._expired, detail)
            self._expired.clear()
        if self._refused:
            for loss in leases.find_out(self._conn, node, self._refused):
                self._log_loss(loss)
            self._refused.clear()
        with self._lock:
            asked = {k: self._held[k] for k in self._releases if k in self._held}
            whys = dict(self._releases)
            self._releases.clear()
            for key in asked:
                del self._held[key]
        for key, held in asked.items():
            held.fence.revoke(f"handed back: {whys[key]}")
        if asked:
            mine = {k: h.epoch for k, h in asked.items()}
            released = leases.release(self._conn, node, mine, "handed back to share the accounts")
            for key in sorted(asked):
                self.log.info(
                    "lease_released",
                    account=key,
                    epoch=asked[key].epoch,
                    why=whys[key],
                    released=key in released,
                )

    def _log_loss(self, loss: leases.Loss) -> None:
        self.log.warning(
            "lease_lost",
            account=loss.account_key,
            epoch=loss.epoch,
            kind=loss.event,
            owner_now=loss.owner,
            owner_epoch=loss.owner_epoch,
        )

    def _renew(self, started: float) -> None:
        assert self._conn is not None
        with self._lock:
            mine = {k: h.epoch for k, h in self._held.items()}
        renewed = leases.renew(self._conn, self.node.node_id, mine, self.times.ttl)
        deadline = started + self.times.ttl - self.times.margin
        missed: dict[str, int] = {}
        for key, epoch in mine.items():
            held = self.lease(key)
            if held is None or held.epoch != epoch:
                continue  # released or dropped meanwhile
            if key not in renewed:
                missed[key] = epoch
            elif not held.fence.extend(deadline):
                # Renewed in the database, but past its local deadline already here: never
                # trusted again; handed back so that any node (this one too) takes it anew.
                self._drop(key, held.fence.lost() or "refused")
                leases.release(self._conn, self.node.node_id, {key: epoch}, "renewed too late")
        for loss in leases.find_out(self._conn, self.node.node_id, missed):
            self._drop(loss.account_key, f"{loss.event}: now {loss.owner or 'free'}")
            self._log_loss(loss)

    def _balance(self, started: float) -> None:
        assert self._conn is not None
        live = max(1, nodes.live_nodes(self._conn))
        share = math.ceil(len(self.accounts) / live)
        if self.max_accounts is not None:
            share = min(share, self.max_accounts)
        if (live, share) != (self.live_nodes, self.share):
            self.log.info(
                "lease_fair_share", live_nodes=live, accounts=len(self.accounts), share=share
            )
        self.live_nodes, self.share = live, share
        with self._lock:
            active = [h for h in self._held.values() if not h.handing_back]
            surplus = len(active) - share
            newest = sorted(active, key=lambda h: (-h.acquired, h.account_key))
            for held in newest[: max(0, surplus)]:
                held.handing_back = True
                self.log.info(
                    "lease_handback", account=held.account_key, epoch=held.epoch, share=share
                )
            holding = list(self._held)
        if surplus >= 0:
            return
        got = leases.claim(
            self._conn, self.node.node_id, self.accounts, holding, -surplus, self.times.ttl
        )
        deadline = started + self.times.ttl - self.times.margin
        for lease in got:
            fence = LeaseFence(
                lease.account_key, self.node.node_id, lease.epoch, deadline, self.clock
            )
            wait = self.times.lock_delay if lease.epoch > 1 else 0.0
            held = HeldLease(
                lease.account_key, lease.epoch, fence, started, started + wait, lease.previous_owner
            )
            with self._lock:
                self._held[lease.account_key] = held
            self.log.info(
                "lease_taken_over" if lease.took_over else "lease_claimed",
                account=lease.account_key,
                epoch=lease.epoch,
                previous_owner=lease.previous_owner,
                trades_in_s=round(wait, 1),
            )
