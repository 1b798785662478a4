"""The leases' SQL: claim, renew, release, and the history a checker can replay.

One row per account in ``leases`` (``bot.store.schema``, PostgreSQL only): its owner node
(NULL: free), its epoch and its expiry. Every change of a lease is one statement that
also writes its ``lease_events`` row, so the history never disagrees with the leases:

* ``claimed``: a free lease (never held, or released) taken; ``taken_over``: a lease whose
  owner did not release it (expired, or this node's own name left by an earlier process).
  Either way the epoch goes up by one, and the row keeps the previous owner and the time the
  previous epoch ended (its expiry, or its release);
* ``released``: handed back by its owner, after its account's worker stopped;
* ``lost``: its owner's renewal found the lease another node's (or another epoch);
  ``renewed_failed``: found it still the owner's, but expired (a node paused past it);
* ``expired``: its owner's own monotonic deadline passed without a renewal (written by the
  owner once the database answers again).

Expiry is the database's business only: every comparison is with ``now()`` (the statement's
start) or ``clock_timestamp()``; no node's clock is ever written or compared.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from bot.store.backend import Connection

__all__ = [
    "Acquired",
    "LeaseEvent",
    "LeaseRow",
    "Loss",
    "claim",
    "ensure_accounts",
    "events",
    "find_out",
    "leases",
    "record",
    "release",
    "renew",
]


@dataclass(frozen=True, slots=True)
class Acquired:
    """A lease this node has just acquired at ``epoch``."""

    account_key: str
    epoch: int
    previous_owner: str | None  # None: it was free; else the owner it was taken over from

    @property
    def took_over(self) -> bool:
        return self.previous_owner is not None


@dataclass(frozen=True, slots=True)
class Loss:
    """A lease this node's renewal did not renew, and what the row says now."""

    account_key: str
    epoch: int  # the epoch this node held
    event: str  # lost | renewed_failed
    owner: str | None  # the row's owner now
    owner_epoch: int | None


@dataclass(frozen=True, slots=True)
class LeaseRow:
    """One account's lease as operators see it; ages are by the database's clock."""

    account_key: str
    owner: str | None
    epoch: int
    acquired_at: datetime | None
    held_seconds: float | None  # since the current owner acquired it
    renewed_seconds_ago: float | None
    expires_in_seconds: float  # negative: expired that long ago


@dataclass(frozen=True, slots=True)
class LeaseEvent:
    """One row of the lease history."""

    id: int
    account_key: str
    node_id: str
    epoch: int
    event: str
    at: datetime
    previous_owner: str | None
    previous_epoch_ended_at: datetime | None
    detail: str | None


def ensure_accounts(conn: Connection, keys: Collection[str]) -> None:
    """A (free) lease row for each of ``keys`` that has none yet."""
    conn.execute(
        "INSERT INTO leases (account_key) SELECT unnest(?::text[]) ON CONFLICT DO NOTHING",
        (sorted(keys),),
    )


_CLAIM = """
WITH free AS (
    SELECT account_key, owner, expires_at FROM leases
    WHERE account_key = ANY(?::text[]) AND NOT account_key = ANY(?::text[])
      AND (owner IS NULL OR owner = ? OR expires_at <= now())
    ORDER BY account_key
    LIMIT ?
    FOR UPDATE SKIP LOCKED
), taken AS (
    UPDATE leases l SET owner = ?, epoch = l.epoch + 1, acquired_at = now(),
        renewed_at = now(), expires_at = now() + ? * interval '1 second'
    FROM free f WHERE l.account_key = f.account_key
    RETURNING l.account_key, l.epoch, f.owner AS previous_owner, f.expires_at AS ended_at
), logged AS (
    INSERT INTO lease_events
        (account_key, node_id, epoch, event, at, previous_owner, previous_epoch_ended_at)
    SELECT account_key, ?, epoch,
        CASE WHEN previous_owner IS NULL THEN 'claimed' ELSE 'taken_over' END, now(),
        previous_owner, CASE WHEN epoch > 1 THEN ended_at END
    FROM taken
)
SELECT account_key, epoch, previous_owner FROM taken ORDER BY account_key
"""


def claim(
    conn: Connection,
    node_id: str,
    accounts: Collection[str],
    held: Collection[str],
    limit: int,
    ttl_seconds: float,
) -> list[Acquired]:
    """Take up to ``limit`` of ``accounts`` (not in ``held``) that are free, expired, or left
    under this node's name by an earlier process; each at its next epoch.

    ``FOR UPDATE SKIP LOCKED``: two nodes claiming at once never take the same row, and a row
    whose owner is storing an order (``bot.store.fence`` locks it) is skipped until it is done.
    """
    if limit <= 0:
        return []
    rows = conn.execute(
        _CLAIM,
        (sorted(accounts), sorted(held), node_id, limit, node_id, ttl_seconds, node_id),
    ).fetchall()
    return [Acquired(r["account_key"], int(r["epoch"]), r["previous_owner"]) for r in rows]


_MINE = "mine(account_key, epoch) AS (SELECT * FROM unnest(?::text[], ?::bigint[]))"


def _mine(held: Mapping[str, int]) -> tuple[list[str], list[int]]:
    keys = sorted(held)
    return keys, [held[k] for k in keys]


def renew(conn: Connection, node_id: str, held: Mapping[str, int], ttl_seconds: float) -> set[str]:
    """Renew, in one statement, every lease of ``held`` (account → epoch) that is still this
    node's at that epoch and unexpired; the accounts renewed."""
    if not held:
        return set()
    rows = conn.execute(
        f"WITH {_MINE} UPDATE leases l SET renewed_at = now(),"
        " expires_at = now() + ? * interval '1 second'"
        " FROM mine m WHERE l.account_key = m.account_key AND l.epoch = m.epoch"
        " AND l.owner = ? AND l.expires_at > now() RETURNING l.account_key",
        (*_mine(held), ttl_seconds, node_id),
    ).fetchall()
    return {r["account_key"] for r in rows}


def find_out(conn: Connection, node_id: str, missed: Mapping[str, int]) -> list[Loss]:
    """What became of leases a renewal missed (``missed``: account → the epoch held), each
    recorded as ``lost`` or ``renewed_failed`` in the history."""
    if not missed:
        return []
    rows = conn.execute(
        f"WITH {_MINE}, found AS ("
        " SELECT m.account_key, m.epoch, l.owner, l.epoch AS owner_epoch,"
        " CASE WHEN l.owner = ? AND l.epoch = m.epoch THEN 'renewed_failed' ELSE 'lost' END"
        " AS event FROM mine m LEFT JOIN leases l ON l.account_key = m.account_key"
        "), logged AS ("
        " INSERT INTO lease_events (account_key, node_id, epoch, event, detail)"
        " SELECT account_key, ?, epoch, event,"
        " 'now ' || COALESCE(owner, 'free') || ' at epoch ' || COALESCE(owner_epoch, 0)"
        " FROM found"
        ") SELECT account_key, epoch, event, owner, owner_epoch FROM found ORDER BY account_key",
        (*_mine(missed), node_id, node_id),
    ).fetchall()
    return [
        Loss(r["account_key"], int(r["epoch"]), r["event"], r["owner"], r["owner_epoch"])
        for r in rows
    ]


def release(conn: Connection, node_id: str, held: Mapping[str, int], why: str) -> set[str]:
    """Hand back, in one statement, the leases of ``held`` (account → epoch) still this
    node's and unexpired: free at once for any node; the accounts released."""
    if not held:
        return set()
    rows = conn.execute(
        f"WITH {_MINE}, gone AS ("
        " UPDATE leases l SET owner = NULL, expires_at = now() FROM mine m"
        " WHERE l.account_key = m.account_key AND l.epoch = m.epoch AND l.owner = ?"
        " AND l.expires_at > now() RETURNING l.account_key, l.epoch"
        "), logged AS ("
        " INSERT INTO lease_events (account_key, node_id, epoch, event, detail)"
        " SELECT account_key, ?, epoch, 'released', ? FROM gone"
        ") SELECT account_key FROM gone",
        (*_mine(held), node_id, node_id, why),
    ).fetchall()
    return {r["account_key"] for r in rows}


def record(
    conn: Connection, node_id: str, event: str, held: Mapping[str, int], detail: str
) -> None:
    """Write one ``event`` row per lease of ``held`` (account → epoch): this node's own word,
    e.g. ``expired`` once the database answers again."""
    if held:
        conn.execute(
            f"WITH {_MINE} INSERT INTO lease_events (account_key, node_id, epoch, event, detail)"
            " SELECT account_key, ?, epoch, ?, ? FROM mine",
            (*_mine(held), node_id, event, detail),
        )


def leases(conn: Connection) -> list[LeaseRow]:
    """Every account's lease, by key, with its ages by the database's clock."""
    rows = conn.execute(
        "SELECT account_key, owner, epoch, acquired_at,"
        " CASE WHEN owner IS NOT NULL THEN extract(epoch FROM now() - acquired_at)::float8 END"
        " AS held_seconds,"
        " CASE WHEN owner IS NOT NULL THEN extract(epoch FROM now() - renewed_at)::float8 END"
        " AS renewed_seconds_ago,"
        " CASE WHEN expires_at = '-infinity' THEN -1e9"
        " ELSE extract(epoch FROM expires_at - now())::float8 END AS expires_in_seconds"
        " FROM leases ORDER BY account_key"
    ).fetchall()
    return [
        LeaseRow(
            r["account_key"],
            r["owner"],
            int(r["epoch"]),
            r["acquired_at"],
            r["held_seconds"],
            r["renewed_seconds_ago"],
            float(r["expires_in_seconds"]),
        )
        for r in rows
    ]


def events(conn: Connection, account_key: str | None = None) -> list[LeaseEvent]:
    """The lease history, oldest first (one account's, or every account's)."""
    where, params = ("WHERE account_key = ?", (account_key,)) if account_key else ("", ())
    rows = conn.execute(
        "SELECT id, account_key, node_id, epoch, event, at, previous_owner,"
        f" previous_epoch_ended_at, detail FROM lease_events {where} ORDER BY id",
        params,
    ).fetchall()
    return [
        LeaseEvent(
            int(r["id"]),
            r["account_key"],
            r["node_id"],
            int(r["epoch"]),
            r["event"],
            r["at"],
            r["previous_owner"],
            r["previous_epoch_ended_at"],
            r["detail"],
        )
        for r in rows
    ]
