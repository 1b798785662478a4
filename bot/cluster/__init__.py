"""Several NIJA nodes on one PostgreSQL: accounts move between nodes by fenced leases.

* ``leases``: the SQL of the ``leases`` table and its history ``lease_events``: claim
  (``FOR UPDATE SKIP LOCKED``), renew, release, and what operators read. Every expiry is
  decided by the database's clock (``now()``), never a node's.
* ``nodes``: each node's heartbeat in ``nodes`` (the live nodes give the fair share; a node
  that stopped renewing is shown to operators), and its name (``NIJA_NODE_ID``).
* ``keeper``: ``LeaseKeeper``, the thread that renews this node's leases, hands back its
  surplus over the fair share and claims free or expired ones up to it.

The write that makes a lost lease harmless is the store's: ``bot.store.fence``. The daemon
uses this package (``bot.daemon.leasing``); SQLite never runs it (one daemon per data
directory).
"""
