"""Which accounts this node trades: all of them (SQLite), or those whose lease it holds.

On SQLite one daemon owns the data directory (its lock file) and trades every account: no
lease is needed, and ``Leasing`` says yes to everything. With ``NIJA_DATABASE_URL`` several
nodes share the accounts through leases (``bot.cluster``); the supervisor then asks it:

* ``holds(key)`` before it checks an account's funds, ``may_trade(key)`` before it starts
  the account's thread (the lease is held, and the lock delay after a takeover has passed);
* ``fence(key)`` for the thread's store: every write, the order insert first, is fenced
  by the lease (``bot.store.fence``);
* ``tick()`` on every watchdog tick: the accounts to hand back have their workers stopped
  first, then their leases released (a worker stuck in a broker call past a bound has its
  fence revoked and is released anyway: it can neither write nor send); workers whose lease
  is gone are forgotten once their thread has ended; it answers the accounts held and ready
  that have no worker (the supervisor checks their funds and starts them);
* a lease lost (keeper's thread) stops its account's worker at once (``lease_lost``);
* ``stop()`` at SIGTERM, once the workers have stopped: every lease handed back at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bot.clock import Clock
from bot.cluster.keeper import LeaseKeeper, LeaseTimes
from bot.cluster.nodes import NodeIdentity
from bot.config.settings import Settings
from bot.daemon.worker import AccountWorker
from bot.errors import StartupError
from bot.store.backend import Database
from bot.store.fence import LeaseFence, LeaseLostError
from bot.store.writer import StoreError

__all__ = ["Leasing"]


class Leasing:
    """This node's leases as the supervisor uses them (module docstring)."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        keys: Sequence[str],
        workers: dict[str, AccountWorker],
        *,
        clock: Clock,
        log: Any,
        changed: Callable[[], None] = lambda: None,
    ) -> None:
        self.database = database
        self.workers = workers  # the supervisor's, read here (and from the keeper's thread)
        self.clock = clock
        self.log = log
        self.changed = changed
        self.keeper: LeaseKeeper | None = None
        self.node_id: str | None = None
        # How long a worker handing back may take to finish its step before it is cut off.
        self.stop_bound = 2 * settings.call_timeout_seconds + 5.0
        self._stopping: dict[str, float] = {}  # account → when its worker was asked to stop
        if database.kind == "postgresql":
            node = NodeIdentity.this_process(settings.node_id)
            self.node_id = node.node_id
            self.keeper = LeaseKeeper(
                database,
                node,
                keys,
                times=LeaseTimes(settings.lease_ttl_seconds, settings.lease_lock_delay_seconds),
                max_accounts=settings.max_accounts_per_node,
                clock=clock,
                log=log,
                on_lost=self._lost,
            )

    def start(self) -> None:
        """Register this node and take its first share (no-op on SQLite); ``StartupError``
        when the database's lease tables cannot be used."""
        if self.keeper is None:
            return
        try:
            self.keeper.start()
        except StoreError as exc:
            raise StartupError(
                f"the leases in {self.database.describe()} cannot be used: {exc}"
            ) from exc

    def holds(self, key: str) -> bool:
        """This node is responsible for the account (always, on SQLite)."""
        return self.keeper is None or self.keeper.lease(key) is not None

    def may_trade(self, key: str) -> bool:
        """The account's thread may run: no leases, or a held lease past its lock delay."""
        if self.keeper is None:
            return True
        held = self.keeper.lease(key)
        return held is not None and held.ready(self.clock.monotonic())

    def waiting(self) -> bool:
        """Some lease held is still in its lock delay (``--once`` waits for it)."""
        if self.keeper is None:
            return False
        now = self.clock.monotonic()
        return any(not h.ready(now) and not h.handing_back for h in self.keeper.held().values())

    def fence(self, key: str) -> LeaseFence | None:
        """The fence for the account's store: None on SQLite; ``LeaseLostError`` when this
        node no longer holds the lease (the thread then opens no store at all)."""
        if self.keeper is None:
            return None
        held = self.keeper.lease(key)
        if held is None:
            raise LeaseLostError("open", key, f"node {self.node_id} holds no lease for it")
        return held.fence

    def _lost(self, key: str, why: str) -> None:
        """From the keeper's thread: stop the account's worker now (it may be mid-cycle; its
        fence already refuses every write and send)."""
        worker = self.workers.get(key)
        if worker is not None:
            worker.request_stop()
            self.log.warning("lease_lost_worker_stopped", account=key, why=why)
        self.changed()

    def tick(self) -> list[str]:
        """Hand back, forget, and the accounts ready to start (module docstring)."""
        if self.keeper is None:
            return []
        now = self.clock.monotonic()
        for key in self.keeper.handing_back():
            worker = self.workers.get(key)
            asked = self._stopping.setdefault(key, now)
            if worker is not None and worker.alive() and now - asked < self.stop_bound:
                worker.request_stop()  # its step finishes under the lease, then it ends
                continue
            stuck = worker is not None and worker.alive()
            why = "its worker is still in a broker call: fenced off" if stuck else "worker stopped"
            self.keeper.request_release(key, why)
            self._stopping.pop(key, None)
        held = self.keeper.held()
        workers = dict(self.workers)
        for key, worker in workers.items():
            lease = held.get(key)
            if (
                worker.stop_event.is_set()
                and not worker.alive()
                and (lease is None or lease.ready(now))
            ):
                del self.workers[key]
                self.changed()
        return sorted(k for k, h in held.items() if h.ready(now) and k not in self.workers)

    def stop(self) -> None:
        """Every lease handed back (the workers have stopped, or their fences are revoked)."""
        if self.keeper is not None:
            self.keeper.stop()

    def document(self, key: str) -> dict[str, Any] | None:
        """status.json's ``lease`` of one account (None on SQLite)."""
        if self.keeper is None:
            return None
        held = self.keeper.lease(key)
        if held is None:
            return {"held": False, "node_id": self.node_id}
        now = self.clock.monotonic()
        return {
            "held": True,
            "node_id": self.node_id,
            "epoch": held.epoch,
            "previous_owner": held.previous_owner,
            "trading": held.ready(now),
            "handing_back": held.handing_back,
            "deadline_in_seconds": round(held.fence.remaining(), 1),
        }
